"""A second process compiling functions a first one compiled (one shared cache directory) imports no
torch._dynamo (graph/dynamo_free_refs.py) and times nothing: every CPU choice is read from the disk cache
(inductor/numpy/cpu_choice.py). Both processes check their results against eager."""
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent('''
    import json, sys, time
    import torch
    import torch.nn.functional as F
    import jit

    # one thread: on a loaded machine torch's thread pool can make a small op take 50 ms (a barrier waiting for
    # a descheduled thread), which would make the slowed compiled side below win anyway
    torch.set_num_threads(1)
    if sys.argv[1] == "first":
        # the first process must choose torch's autograd for the training step (a warm process that runs the
        # compiled side has to trace forward + backward again): its compiled side is slowed for the measurement
        from framejit.inductor import training
        real = training.compile_training

        def slowed(*args, **kwargs):
            compiled = real(*args, **kwargs)

            def run(*a):
                time.sleep(0.2)
                return compiled(*a)
            return run
        training.compile_training = slowed

    torch.manual_seed(0)
    x, a, b = torch.randn(64, 128), torch.randn(32, 48), torch.randn(48, 40)
    norm = torch.nn.LayerNorm(128)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    features, target = torch.randn(8, 16), torch.randn(8, 4)
    table, ids = torch.randn(50, 24), torch.randint(0, 50, (4, 6))

    def check(got, want):  # not torch.testing.assert_close: it imports DTensor, and with it sympy
        assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6), (got - want).abs().max()

    def softmax(x):
        return torch.softmax(x, -1)

    def matmul_gelu(a, b):
        return F.gelu(a @ b)

    def layer_norm(x):
        return norm(x)

    def embed(ids):  # its index check is a custom op with a Python fake kernel (graph/index_checks.py)
        return F.embedding(ids, table) * 2

    def loss(features, target):
        return F.mse_loss(model(features), target)

    with torch.no_grad():
        for fn, args in [(softmax, (x,)), (matmul_gelu, (a, b)), (layer_norm, (x,)), (embed, (ids,))]:
            before = [t.clone() for t in args]
            check(jit.compile(fn)(*args), fn(*args))
            assert all(torch.equal(t, u) for t, u in zip(args, before))
    jit.compile(loss)(features, target).backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    loss(features, target).backward()
    for g, p in zip(got, model.parameters()):
        check(g, p.grad)
    print(json.dumps({"dynamo": "torch._dynamo" in sys.modules, "sympy": "sympy" in sys.modules,
                      "graphs": jit.counters["graphs"],
                      "measured": jit.counters["cpu_choices_measured"],
                      "cached": jit.counters["cpu_choices_cached"]}))
''')


def _run(tmp_path, which: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAMEJIT_", "JIT_LOGS", "TRITON_"))}
    env.update(FRAMEJIT_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", SCRIPT, which], env=env, cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_second_process_reads_choices_and_imports_no_dynamo(tmp_path):
    first = _run(tmp_path, "first")
    assert first["graphs"] == 5
    # the training step's own choice, and those of its compiled forward and backward graphs (timed inside it)
    assert first["measured"] >= 5 and first["cached"] == 0
    second = _run(tmp_path, "second")
    assert second["graphs"] == 5
    assert second["measured"] == 0 and second["cached"] == 5  # no timing run: every choice came from disk
    assert second["dynamo"] is False
    # torch's Python meta kernels answered from the first process's results (graph/meta_memo.py): none ran
    # torch._check, which imports sympy
    assert second["sympy"] is False


TRAINING = textwrap.dedent('''
    import json, sys
    import torch
    import torch.nn.functional as F
    import jit

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.LayerNorm(32),
                                torch.nn.Dropout(0.1), torch.nn.Linear(32, 4))
    features, target = torch.randn(8, 16), torch.randn(8, 4)

    def loss(features, target):
        return F.cross_entropy(model(features), target.softmax(-1))

    with torch.random.fork_rng():
        jit.compile(loss)(features, target).backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    loss(features, target).backward()
    for g, p in zip(got, model.parameters()):
        torch.testing.assert_close(g, p.grad)
    print(json.dumps({"dynamo": "torch._dynamo" in sys.modules, "backward_graphs": jit.counters["backward_graphs"]}))
''')


def test_training_compile_imports_no_dynamo(tmp_path):
    """A training graph's forward and backward are traced on meta tensors (graph/autodiff/meta_trace.py), not by
    make_fx, which imports torch._dynamo: a fresh process compiling one (the compiled side forced) has none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAMEJIT_", "JIT_LOGS", "TRITON_"))}
    env.update(FRAMEJIT_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]), FRAMEJIT_CPU_BACKEND="numpy")
    done = subprocess.run([sys.executable, "-c", TRAINING], env=env, cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backward_graphs"] == 1  # the compiled forward and backward ran, not torch's autograd
    assert result["dynamo"] is False

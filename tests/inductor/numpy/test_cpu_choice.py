"""The default CPU backend keeps the faster of the generated NumPy code and the graph as captured
(inductor/numpy/cpu_choice.py). Timings are replaced by fixed ones here: which one wins on a real machine is measured
in benchmarks/, never asserted."""
import pytest
import torch
import torch.fx

import jit
from framejit.inductor import cache, inductor_backend
from framejit.inductor.numpy import cpu_choice


def _relu_shift(x):
    return torch.relu(x) - 0.5


def _noisy(x):
    return x + torch.rand_like(x)


@pytest.fixture(autouse=True)
def _own_cache_dir(monkeypatch, tmp_path):
    """A choice an earlier test stored on disk (or in memory) would be read instead of measured."""
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path))
    cache.clear_memory()
    yield
    cache.clear_memory()


@pytest.fixture
def timings(monkeypatch):
    """Make one side faster: per call, the NumPy code costs `costs['numpy']`, torch `costs['torch']`."""
    costs = {}
    calls = {"numpy": 0, "torch": 0}

    def fake(fn, inputs, repeat=1):
        side = "torch" if isinstance(fn, torch.fx.GraphModule) else "numpy"
        calls[side] += 1
        fn(*inputs)
        return costs[side]

    monkeypatch.setattr(cpu_choice, "_seconds", fake)
    monkeypatch.delenv("FRAMEJIT_CPU_BACKEND", raising=False)
    return costs, calls


def test_torch_kept_when_faster(timings):
    costs, calls = timings
    costs.update(numpy=2e-5, torch=1e-5)
    x = torch.randn(8, 8)
    chosen = inductor_backend(torch.fx.symbolic_trace(_relu_shift), [x])
    assert isinstance(chosen, torch.fx.GraphModule)
    # the graph as captured: torch's relu kernel, not the optimizer's lt/full/where
    assert torch.relu in {n.target for n in chosen.graph.nodes}
    assert calls["numpy"] >= 2 and calls["torch"] >= 2
    torch.testing.assert_close(chosen(x), _relu_shift(x))


def test_numpy_kept_when_faster(timings):
    costs, _ = timings
    costs.update(numpy=1e-5, torch=2e-5)
    x = torch.randn(8, 8)
    chosen = inductor_backend(torch.fx.symbolic_trace(_relu_shift), [x])
    assert "def run(" in chosen.source
    torch.testing.assert_close(chosen(x), _relu_shift(x))


def test_random_graph_is_not_run_twice(timings):
    costs, calls = timings
    costs.update(numpy=2e-5, torch=1e-5)
    x = torch.randn(8, 8)
    inductor_backend(torch.fx.symbolic_trace(_noisy), [x])
    assert calls == {"numpy": 0, "torch": 0}


@pytest.mark.parametrize("mode", ["numpy", "torch"])
def test_environment_forces_a_side(timings, monkeypatch, mode):
    costs, calls = timings
    monkeypatch.setenv("FRAMEJIT_CPU_BACKEND", mode)
    x = torch.randn(8, 8)
    chosen = inductor_backend(torch.fx.symbolic_trace(_relu_shift), [x])
    assert isinstance(chosen, torch.fx.GraphModule) == (mode == "torch")
    assert calls == {"numpy": 0, "torch": 0}


def test_default_backend_through_jit_matches_eager():
    """Whichever side a real measurement keeps, with a graph break in between, the result is eager's."""
    jit.reset()

    def f(x):
        y = torch.relu(x) - 0.5
        if y.sum() > 0:
            return torch.sigmoid(y) * x
        return y.abs() + 1

    compiled = jit.compile(f)
    for shape in [(16, 16), (256, 256)]:
        x = torch.randn(shape)
        torch.testing.assert_close(compiled(x), f(x))
        torch.testing.assert_close(compiled(-x.abs()), f(-x.abs()))
    jit.reset()


def test_sample_size_comes_from_a_warm_call(monkeypatch):
    """A cold first call (imports, first allocations) must not make every sample a single call."""
    repeats, seen = [], {"numpy": 0, "torch": 0}

    def fake(fn, inputs, repeat=1):
        side = "torch" if isinstance(fn, torch.fx.GraphModule) else "numpy"
        seen[side] += 1
        repeats.append(repeat)
        return 1e-3 if seen[side] == 1 else 5e-6

    monkeypatch.setattr(cpu_choice, "_seconds", fake)
    monkeypatch.delenv("FRAMEJIT_CPU_BACKEND", raising=False)
    inductor_backend(torch.fx.symbolic_trace(_relu_shift), [torch.randn(8, 8)])
    assert max(repeats) >= 50


def test_to_numpy_shares_memory_and_resolves_lazy_views():
    from framejit.inductor.runtime.numpy_graph import to_numpy
    x = torch.randn(3, 4)
    a = to_numpy(x)
    x[0, 0] = 7.0
    assert a[0, 0] == 7.0  # zero-copy
    assert (to_numpy(torch._neg_view(x)) == (-x).numpy()).all()
    c = torch.randn(3, dtype=torch.complex64)
    assert (to_numpy(c.conj()) == c.conj().resolve_conj().numpy()).all()
    g = torch.randn(2, requires_grad=True)
    assert (to_numpy(g) == g.detach().numpy()).all()
    b = torch.randn(4).bfloat16()
    assert (to_numpy(b) == b.view(torch.int16).numpy()).all()


def test_measured_on_copies_never_on_the_inputs(monkeypatch):
    """Every timed run gets private copies: a run that wrote to its inputs (here the fake timer does, on purpose)
    changes nothing the caller holds, and inputs that share memory still share it in the copies."""
    base = torch.randn(8, 8)
    x, xt = base, base.t()
    before = base.clone()
    seen = []

    def writing_timer(fn, inputs, repeat=1):
        seen.append(inputs)
        fn(*inputs)
        inputs[0].add_(1.0)
        return 1e-5
    monkeypatch.setattr(cpu_choice, "_seconds", writing_timer)
    monkeypatch.delenv("FRAMEJIT_CPU_BACKEND", raising=False)

    def f(a, b):
        return torch.relu(a) + b
    chosen = inductor_backend(torch.fx.symbolic_trace(f), [x, xt])
    assert len(seen) >= 2 * (cpu_choice.WARMUP + cpu_choice.MIN_ROUNDS)
    assert torch.equal(base, before)
    ours = base.untyped_storage().data_ptr()
    for a, b in seen:
        assert a.untyped_storage().data_ptr() != ours
        assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()  # still one storage
    torch.testing.assert_close(chosen(x, xt), f(x, xt))


@pytest.mark.parametrize("winner", ["numpy", "torch"])
def test_choice_is_read_back_from_the_disk_cache(timings, monkeypatch, winner):
    """A second compile of the same graph (memory cache dropped, as in a new process) times nothing and builds
    only the side that won."""
    costs, calls = timings
    costs.update(numpy=1e-5 if winner == "numpy" else 2e-5, torch=1e-5 if winner == "torch" else 2e-5)
    x = torch.randn(8, 8)
    first = inductor_backend(torch.fx.symbolic_trace(_relu_shift), [x])
    assert cpu_choice.stats["measured"] >= 1 and calls["numpy"] > 0
    cache.clear_memory()
    measured, cached = cpu_choice.stats["measured"], cpu_choice.stats["cached"]
    calls.update(numpy=0, torch=0)
    built = []
    from framejit.inductor import backends
    real_numpy = backends.numpy_backend
    monkeypatch.setattr(backends, "numpy_backend", lambda *a: built.append(1) or real_numpy(*a))
    again = inductor_backend(torch.fx.symbolic_trace(_relu_shift), [x])
    assert calls == {"numpy": 0, "torch": 0}
    assert cpu_choice.stats["measured"] == measured and cpu_choice.stats["cached"] == cached + 1
    assert isinstance(again, torch.fx.GraphModule) == isinstance(first, torch.fx.GraphModule) == (winner == "torch")
    assert built == ([] if winner == "torch" else [1])
    torch.testing.assert_close(again(x), _relu_shift(x))


def test_choice_is_keyed_by_input_layout(timings):
    costs, calls = timings
    costs.update(numpy=1e-5, torch=2e-5)
    inductor_backend(torch.fx.symbolic_trace(_relu_shift), [torch.randn(8, 8)])
    cache.clear_memory()
    calls.update(numpy=0, torch=0)
    inductor_backend(torch.fx.symbolic_trace(_relu_shift), [torch.randn(8, 8).t()])  # other strides: measured
    assert calls["numpy"] > 0 and calls["torch"] > 0


@pytest.mark.parametrize("winner", ["numpy", "torch"])
def test_a_graph_writing_its_inputs_is_timed_against_its_in_place_capture(timings, winner):
    """An optimizer-like graph writes its inputs: made functional (NumPy code or torch, values copied back after the
    call) it is timed against the graph as captured, which writes in place with torch's kernels; the timing runs on
    private copies, so compiling leaves the caller's tensors as they were, and either side writes eager's values."""
    costs, calls = timings
    costs.update(numpy=1e-5 if winner == "numpy" else 3e-5, torch=2e-5)

    def step(p, g, m):
        m.mul_(0.9).add_(g, alpha=0.1)
        p.sub_(m * 0.5)
        return (p.sum(),)

    p, g, m = torch.randn(6, 4), torch.randn(6, 4), torch.randn(6, 4)
    before = [p.clone(), m.clone()]
    chosen = inductor_backend(torch.fx.symbolic_trace(step), [p, g, m])
    assert torch.equal(p, before[0]) and torch.equal(m, before[1])
    assert isinstance(chosen, torch.fx.GraphModule) == (winner == "torch")
    pe, me = p.clone(), m.clone()
    got, want = chosen(p, g, m), step(pe, g, me)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(p, pe)
    torch.testing.assert_close(m, me)

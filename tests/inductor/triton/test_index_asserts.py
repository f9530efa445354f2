"""Index checks (graph/index_checks.py) in the Triton backend. On CUDA the check is part of the kernel that reads
the index: a device-side assert, as eager's own CUDA index kernels raise, with no torch call, no kernel of its own
and no host sync; the kernel is launched with debug on (Triton drops tl.device_assert otherwise) and without the
overflow asserts debug would add, and so compiles to exactly one `tt.assert`. On the CPU (Triton's interpreter,
which drops device asserts) the check stays a torch call on the host and raises eager's exception.

The CUDA-side modules are generated here by telling the backend its graph is on CUDA (`as_cuda`); their kernels
still run in the interpreter, on indices in range (negative ones included where the op counts from the end)."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from tests.inductor.generated import compiled
from tests.inductor.triton.support import DEVICE, assert_same, on_device

from framejit.graph.index_checks import CHECK_INDEX
from framejit.inductor.ir import FallbackKernel
from framejit.inductor.triton import fallback
from framejit.inductor.triton.codegen import DEBUG_OPTIONS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def rand(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def idx(*values):
    return torch.tensor(values)


CASES = {
    "cross_entropy": (lambda x, t: F.cross_entropy(x, t), lambda: [rand(4, 6), idx(5, -100, 0, 2)]),
    "nll_loss_none": (lambda x, t: F.nll_loss(x.log_softmax(-1), t, reduction="none"),
                      lambda: [rand(3, 5), idx(4, 0, 1)]),
    "gather": (lambda x, i: torch.gather(x, 1, i) * 2, lambda: [rand(3, 6), idx([0, 5], [2, 2], [4, 0])]),
    "index_select": (lambda x, i: torch.index_select(x, 0, i).exp(), lambda: [rand(4, 3), idx(3, 0, 3)]),
    "getitem_negative": (lambda x, i: x[i] + 1, lambda: [rand(5, 3), idx(-1, 0, 4, -5)]),
    "embedding": (lambda i, w: F.embedding(i, w), lambda: [idx([1, 9], [0, 4]), rand(10, 4)]),
    "index_add": (lambda x, i, s: x.index_add(0, i, s), lambda: [rand(4, 3), idx(3, 3, 0), rand(3, 3, seed=1)]),
    "scatter_add": (lambda x, i, s: x.scatter_add(1, i, s),
                    lambda: [rand(3, 6), idx([0, 5], [2, 2], [1, 1]), rand(3, 2, seed=1)]),
}


@pytest.fixture
def as_cuda(monkeypatch, tmp_path):
    """The Triton backend decides where index checks run as it would for a graph on CUDA. A cache of its own: the
    module cache's key names the device the tensors are on, which this pretends is another."""
    from framejit.inductor import cache
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path / "framejit-cache"))
    real = fallback.forced_by_env
    monkeypatch.setattr(fallback, "forced_by_env", lambda graph, device: real(graph, torch.device("cuda")))
    cache.clear_memory()
    yield
    cache.clear_memory()  # no module planned for pretend-CUDA is served to a later test on the CPU


def _with_assert(c) -> list:
    return [launcher for launcher in c.launch.values() if "tl.device_assert(" in launcher.ks.source]


@pytest.mark.parametrize("name", CASES)
def test_cuda_checks_indices_inside_the_kernel(name, as_cuda):
    fn, make = CASES[name]
    inputs = make()
    c, on = compiled("triton", fn, [t.clone() for t in inputs])
    assert_same(c(*on), fn(*inputs))
    assert not [k for k in c.lowered.kernels if isinstance(k, FallbackKernel)], c.source
    assert "# torch fallback" not in c.source and "framejit.check_index(" not in c.source
    asserting = _with_assert(c)
    assert asserting, c.source
    for launcher in c.launch.values():  # debug only where a kernel asserts
        want = DEBUG_OPTIONS if launcher in asserting else {}
        assert launcher.ks.options == want
        assert {k: launcher.kwargs[k] for k in DEBUG_OPTIONS if k in launcher.kwargs} == want


def test_cross_entropy_checks_its_labels_in_the_row_kernel(as_cuda):
    """The labels' check is part of the kernel reading the logits' rows, not a kernel (or a torch call) of its
    own: the label is loaded, asserted and compared with the class index there."""
    fn, make = CASES["cross_entropy"]
    c, on = compiled("triton", fn, make())
    (launcher,) = _with_assert(c)
    head = launcher.ks.source.split(")")[0]
    assert "x_ptr" in head and "t_ptr" in head
    assert "'Target is out of bounds.'" in launcher.ks.source


def test_wrapping_check_counts_from_the_end_once(as_cuda):
    """x[i] with i in [-size, size): asserted against that range, then made non-negative, and the load after it
    uses that index as is (masked to the source's range all the same)."""
    fn, make = CASES["getitem_negative"]
    c, on = compiled("triton", fn, make())
    (launcher,) = _with_assert(c)
    src = launcher.ks.source
    assert ">= -5) &" in src and src.count("tl.where(") == 1 and "'index is out of bounds for dimension 0 " \
        "with size 5'" in src


def test_unused_index_is_still_checked(as_cuda):
    """eager raises for x[i] even when nothing reads the result: the check keeps a kernel of its own."""
    def f(x, i):
        x[i]
        return x * 2
    c, on = compiled("triton", f, [rand(3, 4), idx(0, 2)])
    assert_same(c(*on), f(*on))
    assert len(_with_assert(c)) == 1


def test_dynamic_size_is_asserted_against_the_size_argument(as_cuda, fresh_jit):
    """x[i] with x's dim 0 dynamic: one module for every size, its assert comparing with the size the kernel
    takes as an argument, the values eager's (negative indices counted from each call's size)."""
    import jit
    from framejit.inductor.backends import triton_backend
    variants = []

    def capture(gm, inputs):
        out = triton_backend(gm, inputs)
        variants.append(out)
        return out
    capture.dynamic_sizes = True
    fn = lambda x, i: x[i] * 2
    compiled = jit.compile(fn, backend=capture)
    for n in (5, 7, 9):
        x, i = on_device(rand(n, 3, seed=n)), on_device(idx(0, -1, n - 1, 2))
        jit.mark_dynamic(x, 0)
        assert_same(compiled(x, i), fn(x, i))
    sources = [v.fn.source for s in variants for v in getattr(s, "variants", [])]
    dynamic = [src for src in sources if "ks0" in src]
    assert dynamic and all("tl.device_assert(" in src and ">= -ks0) & (" in src for src in dynamic), sources


_TTIR = r"""
import importlib.util, inspect, json, sys
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton._C.libtriton import ir
path, name, signature, constexprs, options = json.loads(sys.argv[1])
spec = importlib.util.spec_from_file_location("generated", path)
module = importlib.util.module_from_spec(spec)
sys.modules["generated"] = module
spec.loader.exec_module(module)
target = GPUTarget("cuda", 90, 32)
backend = make_backend(target)
options = backend.parse_options(dict(options))
src = ASTSource(getattr(module, name), signature, {(i,): v for i, v in constexprs})
context = ir.context()
ir.load_dialects(context)
backend.load_dialects(context)
args = [options, backend.get_codegen_implementation(options), backend.get_module_map(), context]
if "target" in inspect.signature(src.make_ir).parameters:
    args.insert(0, target)
print(str(src.make_ir(*args)).count("tt.assert"))
"""
_POINTER = {torch.float32: "*fp32", torch.int64: "*i64", torch.bool: "*i1", torch.int32: "*i32"}


def _asserts_compiled(launcher, path, options) -> int:
    """How many `tt.assert` Triton's front end emits for the launcher's kernel compiled for CUDA with `options`
    (TTIR: no GPU needed; in a process of its own, outside the interpreter this test process runs in)."""
    fn = launcher.fn
    names = list(fn.arg_names)
    signature = {n: _POINTER[dt] for n, dt in zip(names, launcher.ks.arg_dtypes)}
    constexprs = [(names.index(k), v) for k, v in launcher.ks.config.items() if k in names]
    signature.update({names[i]: "constexpr" for i, _ in constexprs})
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    arg = json.dumps([str(path), launcher.ks.name, signature, constexprs, options])
    out = subprocess.run([sys.executable, "-c", _TTIR, arg], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_the_assert_survives_compilation_only_with_the_launch_options(as_cuda):
    """Compiled as the launcher launches it (debug on, overflow checks off), the gather kernel holds exactly its
    one index assert; as a plain @triton.jit kernel would compile, none (the reason for the options)."""
    fn, make = CASES["gather"]
    c, on = compiled("triton", fn, make())
    (launcher,) = _with_assert(c)
    assert _asserts_compiled(launcher, c.path, launcher.ks.options) == 1
    assert _asserts_compiled(launcher, c.path, {}) == 0


OUT_OF_RANGE = {
    "cross_entropy": (CASES["cross_entropy"][0], lambda: [rand(4, 6), idx(5, -100, 6, 2)]),
    "gather": (CASES["gather"][0], lambda: [rand(3, 6), idx([0, 5], [2, 6], [4, 0])]),
    "getitem": (CASES["getitem_negative"][0], lambda: [rand(5, 3), idx(-1, 0, -6)]),
    "embedding": (CASES["embedding"][0], lambda: [idx([1, 10]), rand(10, 4)]),
}


@pytest.mark.skipif(DEVICE == "cuda", reason="on CUDA an index out of range is a device-side assert, as eager's: "
                                              "it ends the process's CUDA context")
@pytest.mark.parametrize("name", OUT_OF_RANGE)
def test_cpu_check_runs_in_torch_and_raises_eagers_exception(name):
    fn, make = OUT_OF_RANGE[name]
    inputs = make()
    with pytest.raises(Exception) as eager:
        fn(*inputs)
    c, on = compiled("triton", fn, [t.clone() for t in inputs])
    assert [k for k in c.lowered.kernels if isinstance(k, FallbackKernel) and k.target is CHECK_INDEX]
    assert "tl.device_assert(" not in c.source
    with pytest.raises(type(eager.value)) as got:
        c(*on)
    assert str(got.value) == str(eager.value)


_OUT_OF_RANGE_ON_CUDA = r"""
import torch
import jit
fn = jit.compile(lambda x, i: torch.gather(x, 1, i) * 2, backend="triton")
x = torch.randn(4, 8, device="cuda")
fn(x, torch.zeros(4, 2, dtype=torch.long, device="cuda"))  # compiled and run on indices in range
try:
    fn(x, torch.full((4, 2), 8, device="cuda"))
    torch.cuda.synchronize()
    print("NOT RAISED")
except RuntimeError as e:
    print("RAISED", e)
"""


@pytest.mark.skipif(DEVICE != "cuda", reason="a device-side assert needs a GPU (the TTIR test checks the kernel "
                                              "carries it)")
def test_out_of_range_index_triggers_the_device_assert_on_cuda():
    """The compiled gather's kernel, launched as the module launches it, stops on an index out of range as
    eager's CUDA gather does: a device-side assert, reported at the next synchronization (in a process of its
    own: the assert ends that process's CUDA context)."""
    out = subprocess.run([sys.executable, "-c", _OUT_OF_RANGE_ON_CUDA], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert "RAISED" in out.stdout and "device-side assert" in out.stdout + out.stderr, (out.stdout, out.stderr)

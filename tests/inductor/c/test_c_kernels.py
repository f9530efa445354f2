"""The NumPy backend's C kernels (inductor/c/) against eager torch: fused chains, reductions placed in the loop
nest or computed ahead, the float rules C spells differently from torch (NaN through max/min, relu(-0.0),
sign(nan), round half to even, floor division and remainder at inf and zero), integer wrap-around, layouts, and
what the module does with a bad call. Every graph here is checked to have run C code (`_c_source`)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jit
from framejit.inductor import export_numpy, numpy_backend
from framejit.inductor.c import codegen
from framejit.inductor.runtime import c_modules as build
from framejit.inductor.config import config

pytestmark = pytest.mark.skipif(build.compiler() is None, reason="no C compiler on this machine")


@pytest.fixture(autouse=True)
def _always_c():
    with config.override(c_kernels="always"):
        yield


def compiled(fn, *inputs):
    gm = torch.fx.symbolic_trace(fn)
    return numpy_backend(gm, list(inputs))


def c_source(compiled_graph) -> str:
    """The C the graph's module carries ('' when no kernel went to C)."""
    source = compiled_graph.source
    return source[source.index("_C = _c_module("):] if "_C = _c_module(" in source else ""


def check(fn, *inputs, rtol=1e-5, atol=1e-6, c=True):
    g = compiled(fn, *inputs)
    got, ref = g(*inputs), fn(*inputs)
    got, ref = (got, ref) if isinstance(ref, tuple) else ((got,), (ref,))
    for a, b in zip(got, ref):
        assert a.dtype == b.dtype and a.shape == b.shape
        if b.dtype.is_floating_point:
            torch.testing.assert_close(a, b, rtol=rtol, atol=atol, equal_nan=True)
        else:
            assert torch.equal(a, b), (a, b)
    assert bool(c_source(g)) == c
    return g


def test_fused_chain_is_one_loop_nest():
    x, b = torch.randn(32, 48), torch.randn(48)
    g = check(lambda x, b: torch.tanh(x * 2 + b).sigmoid() - x.exp() / 3, x, b)
    # one kernel, one loop over the columns (twice: for unit strides and for any)
    assert c_source(g).count("for (int64_t x1") == 2 and "if (s1_1 == 1 && s2_0 == 1)" in c_source(g)


def test_softmax_and_layer_norm_rows():
    x = torch.randn(16, 100) * 4
    w, b = torch.randn(100), torch.randn(100)
    g = check(lambda x: torch.softmax(x, -1), x)
    assert "malloc" not in c_source(g)  # the row max and sum sit inside the row loop, not computed ahead
    check(lambda x, w, b: F.layer_norm(x, (100,), w, b), x, w, b, atol=1e-5)
    check(lambda x: F.log_softmax(x, 0), x, atol=1e-5)


def test_column_sum_beside_rows_is_computed_ahead():
    x = torch.randn(24, 40)
    g = check(lambda x: x * 2 + x.sum(0), x, atol=1e-5)
    assert "malloc" in c_source(g)  # else recomputed once per row


@pytest.mark.parametrize("kind", ["sum", "mean", "amax", "amin", "prod", "any"])
def test_reductions_over_leading_dims_fold_rows(kind):
    """Reduced dims outside a kept innermost one are folded a row at a time into an array (NaN sticky for max
    and min), whatever the layout the array reaches the kernel in."""
    x = torch.randn(6, 5, 33)
    x[2, 1, 7] = math.nan
    fn = {"sum": lambda x: x.sum((0, 1)), "mean": lambda x: x.mean(0, keepdim=True) * 2,
          "amax": lambda x: x.amax(1) + x.amax((0, 1)), "amin": lambda x: x.amin(0, keepdim=True),
          "prod": lambda x: (x * 0.5 + 1).prod(0), "any": lambda x: (x > 2).any(0)}[kind]
    for t in (x, x.transpose(0, 1).contiguous().transpose(0, 1)):
        g = check(fn, t, rtol=1e-4)
        assert "c" in c_source(g) and "for (int64_t i = 0; i <" in c_source(g)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int32, torch.int64, torch.bool])
def test_reductions(dtype):
    x = (torch.randn(6, 7, 5) * 5).to(dtype)
    if dtype != torch.bool:
        check(lambda x: (x.sum((0, 2)), x.sum(1, keepdim=True), x.amax(2), x.amin((0, 1)), x.prod(2)), x,
              rtol=1e-4)
    check(lambda x: (x.any(1), x.all(0)), x)
    if dtype.is_floating_point:
        check(lambda x: (x.mean(1), x.mean()), x)


def test_nan_and_signed_zero_rules():
    x = torch.tensor([[float("nan"), 1.0, -0.0, 0.0, 2.5, -2.5, 0.5, float("inf")],
                      [3.0, float("-inf"), float("nan"), -1.0, 1.5, -0.5, 4.0, -0.0]])
    y = torch.tensor([[1.0, float("nan"), 0.0, -0.0, 2.0, -2.0, 0.0, 2.0]] * 2)
    g = check(lambda x, y: (torch.maximum(x, y), torch.minimum(x, y), torch.relu(x), torch.sign(x), x.round(),
                            x.amax(1), x.amin(0), x // y, torch.remainder(x, y)), x, y)
    assert "fj_floordivf" in c_source(g)
    relu = g(x, y)[2]
    assert torch.equal(torch.signbit(relu), torch.signbit(torch.relu(x)))  # relu(-0.0) is -0.0 in torch


def test_integer_wraparound_and_bitwise():
    a = torch.tensor([2**31 - 1, -(2**31), 5, -7], dtype=torch.int32).repeat(8)
    b = torch.tensor([1, -1, 3, 2], dtype=torch.int32).repeat(8)
    check(lambda a, b: (a + b, a * b, a - b, (a & b) | (a ^ 3), ~a, -a, a.abs(), torch.maximum(a, b)), a, b)


def test_layouts_cat_arange_where():
    x = torch.randn(20, 30)
    t = torch.randn(30, 20).t()  # transposed
    s = torch.randn(20, 60)[:, ::2]  # strided
    e = torch.randn(1, 30).expand(20, 30)  # broadcast (stride 0)
    check(lambda x, t, s, e: torch.where(x > 0, t, s) * e + torch.cat([x, t], 0)[10:30], x, t, s, e)
    check(lambda x: x + torch.arange(30, dtype=torch.float32) * 0.1, x)
    check(lambda x: torch.cat([x, x.t().reshape(20, 30)], 1).reshape(600, 2).sum(1), x, atol=1e-5)


def test_casts_and_mixed_dtypes():
    x = torch.randn(8, 9) * 100
    i = torch.randint(-50, 50, (8, 9))
    check(lambda x, i: (x.to(torch.int32), i.to(torch.float32) / 7, (x > i).to(torch.int64), x.double() * i,
                        x.to(torch.bool)), x, i)


def test_half_types_stay_numpy():
    x = torch.randn(8, 9, dtype=torch.bfloat16)
    check(lambda x: x * 2 + 1, x, rtol=1.6e-2, atol=5e-2, c=False)


def test_auto_leaves_small_kernels_to_numpy():
    with config.override(c_kernels="auto"):
        check(lambda x: x * 2 + 1, torch.randn(4, 5), c=False)
        check(lambda x: x * 2 + 1, torch.randn(64, codegen.MIN_ELEMENTS // 64))


def test_jit_compile_end_to_end():
    def f(x, w):
        h = F.gelu(x @ w)
        return F.softmax(h, -1).sum(0), F.silu(h).mean()
    x, w = torch.randn(16, 32), torch.randn(32, 64)
    loaded = build.stats["loaded"]
    for got, ref in zip(jit.compile(f, backend="numpy")(x, w), f(x, w)):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert build.stats["loaded"] > loaded


def test_bad_call_raises_instead_of_reading_wildly():
    g = compiled(lambda x: x * 2, torch.randn(4, 5))
    kernel = next(getattr(g.module._C, n) for n in dir(g.module._C) if not n.startswith("_"))
    out = np.empty((4, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="rank 1"):
        kernel(out, np.ones(5, dtype=np.float32), 0, 4)
    with pytest.raises(ValueError, match="rows 0:9 outside 0:4"):
        kernel(out, np.ones((4, 5), dtype=np.float32), 0, 9)
    with pytest.raises(TypeError, match="4 arguments expected"):
        kernel(out)


def test_compiled_once_per_source():
    x = torch.randn(4, 5)
    compiled(lambda x: x * 3 - 1, x)
    before = build.stats["compiled"]
    build._loaded.clear()
    compiled(lambda x: x * 3 - 1, x)  # the same kernels: the library on disk is loaded, not rebuilt
    assert build.stats["compiled"] == before


def test_export_numpy_has_no_c(tmp_path):
    path = export_numpy(lambda x: x * 2 + 1, torch.randn(64, 128), path=str(tmp_path / "m.py"))
    assert "_C = _c_module(" not in open(path).read()


def test_a_compiler_failure_leaves_numpy_code(monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("C kernels failed to compile: cc1: out of memory")
    monkeypatch.setattr(build, "_compile", broken)
    build._loaded.clear()
    with caplog.at_level("WARNING", logger="jit.inductor"):
        check(lambda x: x * 5 - 2, torch.randn(6, 7), c=False)
    assert "C kernels did not build" in caplog.text


def test_big_kernels_are_shared_out_in_blocks_of_rows():
    x, w = torch.randn(520, 300), torch.randn(300)
    g = check(lambda x, w: (torch.softmax(x, -1) * w, F.gelu(x).t() + 1), x, w, atol=1e-5)
    assert g.source.count("_run_blocks(lambda starts: [_C.") >= 2
    assert "Py_BEGIN_ALLOW_THREADS" in c_source(g)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_op_at_the_edges_is_torchs(approximate):
    """aten.gelu (a backward graph's) through mathlib's gelu: torch's own values where its kernels overflow (nan at
    -inf, nan or inf at +inf, inf past 2**127 for the exact form)."""
    x = torch.tensor([math.inf, -math.inf, 3.4e38, -3.4e38, -100.0, math.nan, 1.7e38, 1.8e38, 0.5, -0.0] * 50)
    g = torch.fx.Graph()
    g.output(g.call_function(torch.ops.aten.gelu.default, (g.placeholder("x"),), {"approximate": approximate}))
    gm = torch.fx.GraphModule(torch.nn.Module(), g)
    compiled_graph = numpy_backend(gm, [x])
    assert "fj_gelu" in c_source(compiled_graph)
    got, want = compiled_graph(x), F.gelu(x, approximate=approximate)
    torch.testing.assert_close(got, want, equal_nan=True, rtol=1e-6, atol=0)
    finite = ~want.isnan()
    assert torch.equal(got.signbit()[finite], want.signbit()[finite])


def test_intermediates_kept_between_calls_never_leak_into_results():
    """Big intermediates of C kernels are kept per thread from call to call (no page faults); what a call
    returns is never one of them, so an earlier result survives the next call."""
    x = torch.randn(300, 200)
    g = check(lambda x: torch.softmax(x * 3, -1) + torch.softmax(x, 0), x, atol=1e-5)
    assert "_scratch(" in g.source
    first = g(x)
    kept = first.clone()
    second = g(x * 2)
    assert torch.equal(first, kept) and not torch.equal(first, second)
    torch.testing.assert_close(second, torch.softmax(x * 6, -1) + torch.softmax(x * 2, 0), rtol=1e-5, atol=1e-5)

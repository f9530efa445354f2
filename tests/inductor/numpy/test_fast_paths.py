"""The NumPy backend's fast paths against eager: vectorized erf/gelu, row-blocked kernels on big arrays, row sums
as matrix-vector products, pow special cases, in-place attention, reused parameter arrays."""
import math
import re

import numpy as np
import pytest
import torch
import torch.fx
import torch.nn.functional as F

from framejit.inductor import numpy_backend
from framejit.inductor.config import config
from framejit.inductor.numpy.codegen import PRELUDE
from tests.inductor.opgraph import TOL

aten = torch.ops.aten
HELPERS: dict = {}
exec(PRELUDE, HELPERS)


@pytest.fixture(autouse=True)
def _numpy_code_only():
    """These are the NumPy code's own paths: big kernels would otherwise be written in C (inductor/c/)."""
    with config.override(c_kernels="never"):
        yield


def compile_fn(fn, *inputs):
    compiled = numpy_backend(torch.fx.symbolic_trace(fn), list(inputs))
    assert hasattr(compiled, "source"), "expected generated NumPy code, got a torch fallback"
    return compiled


def assert_matches(compiled, fn, *inputs, rtol=None, atol=None):
    ref = fn(*inputs)
    got = compiled(*inputs)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    tol = TOL.get(ref.dtype, (0, 0))
    torch.testing.assert_close(got, ref, rtol=rtol if rtol is not None else tol[0],
                               atol=atol if atol is not None else tol[1], equal_nan=True)


def _erf_points(dtype):
    special = [0.0, -0.0, 1e-30, -1e-30, 1e-300 if dtype == torch.float64 else 1e-38, 0.5, 0.999, 1.0, 1.001,
               3.99, 4.0, 5.9, 6.0, 7.99, 8.0, 26.0, 30.0, 1e10, math.inf, -math.inf, math.nan]
    dense = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    wide = torch.randn(100_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4
    return torch.cat([torch.tensor(special, dtype=torch.float64), -torch.tensor(special, dtype=torch.float64),
                      dense, wide]).to(dtype)


def test_erf_float64_matches_torch_to_double_precision():
    x = _erf_points(torch.float64)
    got = torch.from_numpy(HELPERS["_erf"](x.numpy()))
    ref = torch.erf(x)
    assert torch.equal(torch.isnan(got), torch.isnan(ref))
    ok = ~torch.isnan(ref)
    err = (got[ok] - ref[ok]).abs()
    assert err.max().item() <= 1e-15
    assert (err / ref[ok].abs().clamp_min(1e-300)).max().item() <= 5e-15  # relative, down to tiny arguments
    assert got[ok & (x.abs() >= 6)].abs().eq(1).all()


def test_erf_float32_matches_torch_within_a_few_ulp():
    x = _erf_points(torch.float32)
    got = torch.from_numpy(HELPERS["_erf"](x.numpy()))
    assert got.dtype == torch.float32
    ref = torch.erf(x)
    assert torch.equal(torch.isnan(got), torch.isnan(ref))
    ok = ~torch.isnan(ref)
    assert (got[ok] - ref[ok]).abs().max().item() <= 5e-7
    assert torch.equal(got[x == math.inf], torch.ones(2)) and torch.equal(got[x == -math.inf], -torch.ones(2))
    tiny = x[ok].abs() < 1e-3  # near 0 erf(x) ~ 2x/sqrt(pi): the error must shrink with x (relative accuracy)
    assert ((got[ok][tiny] - ref[ok][tiny]).abs() <= 1e-6 * ref[ok][tiny].abs() + 1e-45).all()


def test_erf_zero_dim_and_scalars():
    assert HELPERS["_erf"](np.float32(0.5)).dtype == np.float32
    assert abs(float(HELPERS["_erf"](np.asarray(0.5))) - math.erf(0.5)) < 1e-16
    assert abs(float(HELPERS["_gelu"](np.asarray(np.float32(1.0)))) - 0.8413447460685429) < 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(7,), (300, 1024), ()])
def test_erf_and_gelu_graphs(dtype, shape):
    x = (torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3).to(dtype)
    for fn in (lambda x: torch.erf(x), lambda x: F.gelu(x), lambda x: F.gelu(x * 2) + torch.erf(x)):
        assert_matches(compile_fn(fn, x), fn, x)


# ---- row-blocked kernels ---------------------------------------------------------------------------------------
def _r(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def layernorm(x, w, b):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * w + b


def softmax(x):
    e = torch.exp(x - x.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


ROW_CASES = {  # name -> (fn, inputs, expect row blocks)
    "pointwise-broadcast": (lambda x, w, c, r: torch.sigmoid(x * w + c) * r,
                            (_r(1000, 300), _r(300, seed=1), _r(1, 300, seed=2), _r(1000, 1, seed=3)), True),
    "layernorm": (layernorm, (_r(2000, 96), _r(96, seed=1), _r(96, seed=2)), True),
    "softmax-3d": (softmax, (_r(40, 50, 64),), True),
    "sum-drops-dim": (lambda x: (x * 2).sum(-1), (_r(5000, 40),), True),
    "mean-two-trailing-dims": (lambda x: (x.exp() - x.mean(dim=(1, 2), keepdim=True)), (_r(300, 20, 30),), True),
    "rmsnorm-float64": (lambda x, r, w: (x + r) * torch.rsqrt((x + r).pow(2).mean(-1, keepdim=True) + 1e-6) * w,
                        (_r(3000, 64, dtype=torch.float64), _r(3000, 64, seed=1, dtype=torch.float64),
                         _r(64, seed=2, dtype=torch.float64)), True),
    "float16": (lambda x, y: torch.tanh(x) * y + 1, (_r(1000, 200, dtype=torch.float16),
                                                     _r(1000, 200, seed=1, dtype=torch.float16)), True),
    "int-to-float": (lambda x: (x * 3 + 1).float().sqrt(), (torch.arange(200_000).reshape(2000, 100),), True),
    "transposed-input": (lambda x: torch.relu(x.t() - 0.5) * 2, (_r(500, 700),), None),
    # 100 rows, not thousands: np.sum down a leading axis adds rows one by one, so its float32 rounding drifts
    # from torch's cascade sum on long columns (a known difference, not a row-block one)
    "reduce-over-rows": (lambda x: x - x.sum(0, keepdim=True), (_r(100, 700),), False),
    "odd-row-count": (lambda x, y: torch.exp(x) + y, (_r(3001, 97), _r(3001, 97, seed=1)), True),
}


@pytest.fixture
def small_blocks(monkeypatch, tmp_path):
    """Blocks of 4096 elements, so test-sized arrays run in many blocks (and threads) and the last is partial;
    a private cache, so code generated with other block sizes is never reused."""
    from framejit.inductor import reset
    from framejit.inductor.numpy import row_blocks
    monkeypatch.setattr(row_blocks, "BLOCK_ELEMENTS", 4096)
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path))
    reset()
    yield
    reset()


@pytest.mark.parametrize("name", list(ROW_CASES))
def test_row_blocked_kernels_match_eager(name, small_blocks):
    fn, inputs, blocked = ROW_CASES[name]
    compiled = compile_fn(fn, *inputs)
    if blocked is not None:
        assert bool(re.search(r"^    _run_blocks\(", compiled.source, re.M)) == blocked, compiled.source
    assert_matches(compiled, fn, *inputs, rtol=1e-3 if inputs[0].dtype == torch.float16 else None)


def test_row_blocks_keep_nan_inf_and_empty_rows(small_blocks):
    x = _r(3000, 30)
    x[5, 3], x[2999, 0], x[100] = math.nan, math.inf, -math.inf
    fn = softmax
    assert_matches(compile_fn(fn, x), fn, x)
    e = torch.empty(0, 30)
    assert_matches(compile_fn(fn, e), fn, e)


# ---- row sums, pow, attention, parameters ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,dims", [((6, 7), -1), ((4, 5, 6), (1, 2)), ((3, 10_000), -1), ((9,), 0),
                                        ((5, 0), -1), ((4, 5, 6), 1)])
def test_row_sums_and_means(dtype, shape, dims):
    x = _r(*shape, dtype=dtype)
    for fn in (lambda x: x.sum(dims, keepdim=True) * 1, lambda x: x.mean(dims) + 0,
               lambda x: (x * x).sum(dims) + 0):
        assert_matches(compile_fn(fn, x), fn, x)


def test_row_sum_of_a_non_contiguous_operand():
    x = _r(64, 48)
    fn = lambda x: x.t().sum(-1, keepdim=True) * 1
    assert_matches(compile_fn(fn, x), fn, x)


@pytest.mark.parametrize("exponent", [2, 2.0, 0.5, -1, 1, 3, -0.5, -2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_pow_by_scalar(exponent, dtype):
    x = torch.tensor([0.0, -0.0, 1.5, -2.0, 3.0, math.inf, -math.inf, math.nan, 1e-20, 7.0]).to(dtype)
    if dtype == torch.int64 and (isinstance(exponent, float) is False and exponent < 0):
        return  # integers to negative integer powers raise in eager
    fn = lambda x: torch.pow(x, exponent)
    assert_matches(compile_fn(fn, x), fn, x)


@pytest.mark.parametrize("is_causal", [True, False])
def test_attention_in_place_softmax(is_causal):
    q, k, v = _r(2, 3, 9, 8), _r(2, 3, 11, 8, seed=1), _r(2, 3, 11, 8, seed=2)
    fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    compiled = compile_fn(fn, q, k, v)
    for _ in range(2):  # the cached causal mask is reused on the second call
        assert_matches(compiled, fn, q, k, v)


def test_parameter_arrays_reused_but_follow_updates():
    lin = torch.nn.Linear(16, 8)
    x = _r(4, 16)
    gm = torch.fx.symbolic_trace(lambda x, w, b: F.linear(x, w, b))
    with torch.no_grad():
        compiled = numpy_backend(gm, [x, lin.weight, lin.bias])
        run = lambda: compiled(x, lin.weight, lin.bias)
        torch.testing.assert_close(run(), lin(x))
        lin.weight.mul_(2)  # in place: same memory, the reused array sees it
        torch.testing.assert_close(run(), lin(x))
        lin.weight.data = torch.randn(8, 16)  # new storage: must not reuse the old array
        torch.testing.assert_close(run(), lin(x))
        torch.testing.assert_close(compiled(_r(4, 16, seed=5), lin.weight, lin.bias), lin(_r(4, 16, seed=5)))


# ---- row groups, row max/min ---------------------------------------------------------------------------------
GROUP_CASES = {  # name -> (fn, inputs, kernels expected in one group's loop)
    # the centred x and its square never exist whole; the weight and bias are read as blocks of copied rows
    "layernorm-affine": (layernorm, (_r(3000, 64), _r(64, seed=1), _r(1, 64, seed=2)), 2),
    # the exp is returned too: kept whole, and read block by block by the division in the same loop
    "softmax-and-exp": (lambda x: (lambda e: (e / e.sum(-1, keepdim=True), e))(torch.exp(x - x.amax(-1, True))),
                        (_r(2000, 48),), 2),
    # y (R, C) broadcast into (R, R, C): read whole, so its kernel may not share the consumer's loop
    "read-whole-breaks-group": (lambda x, z: (lambda y: (y.sum(-1, keepdim=True) + y) * z)(torch.exp(x)),
                                (_r(64, 64), _r(64, 64, 64, seed=1)), 1),
    "reduction-that-drops-dims": (lambda x, r: ((x + r) * (x + r)).sum(-1),
                                  (_r(4000, 20), _r(4000, 20, seed=1)), 1),
}


@pytest.mark.parametrize("name", list(GROUP_CASES))
def test_row_groups_match_eager(name, small_blocks):
    fn, inputs, per_group = GROUP_CASES[name]
    compiled = compile_fn(fn, *inputs)
    groups = re.findall(r"^def (rows_\w+)\(", compiled.source, re.M)
    assert groups, compiled.source
    first = compiled.source.split(f"def {groups[0]}(")[1].split("_run_blocks(")[0]
    calls = [line for line in first.splitlines() if line.startswith(" " * 12) and "_scratch[" not in line]
    assert len(calls) >= per_group, compiled.source
    ref, got = fn(*inputs), compiled(*inputs)
    for g, r in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)


def test_row_group_weight_updates_are_seen(small_blocks):
    """The per-thread copied rows of a weight are refilled on every call."""
    x, w, b = _r(3000, 64), _r(64, seed=1), _r(64, seed=2)
    compiled = compile_fn(layernorm, x, w, b)
    assert_matches(compiled, layernorm, x, w, b)
    w.mul_(3)
    assert_matches(compiled, layernorm, x, w, b)


@pytest.mark.parametrize("kind", ["amax", "amin"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                                   torch.int32, torch.int8, torch.bool])
@pytest.mark.parametrize("shape,dims,keepdim", [((6, 7), -1, True), ((4, 5, 6), (1, 2), False), ((1, 9), -1, False),
                                                ((3, 1), -1, True), ((0, 5), -1, True), ((9,), 0, False),
                                                ((4, 5, 6), 1, True)])
def test_row_max_min(kind, dtype, shape, dims, keepdim):
    x = (_r(*shape) * 50).to(dtype)
    fn = lambda x: getattr(torch, kind)(x, dims, keepdim) + 0 if dtype != torch.bool else \
        getattr(torch, kind)(x, dims, keepdim)
    assert_matches(compile_fn(fn, x), fn, x)


def test_row_max_of_non_contiguous_and_nan_rows():
    x = _r(40, 30)
    x[3, 7], x[5] = math.nan, -math.inf
    for fn in (lambda x: x.t().amax(-1, keepdim=True) * 1, lambda x: x[:, ::2].amin(-1) * 1,
               lambda x: x.amax(-1) * 1):
        assert_matches(compile_fn(fn, x), fn, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.float16, np.bool_])
def test_select_is_where_bit_for_bit(dtype):
    """`_select` (the bitwise pick for 4- and 8-byte numbers) against np.where: random masks, scalar and broadcast
    operands, NaN / inf / -0.0 kept exactly."""
    rng = np.random.default_rng(0)
    c = rng.random((256, 160)) < 0.5  # past the size where _select stops calling np.where
    a = rng.standard_normal((256, 160)) * 100
    b = rng.standard_normal((160,)) * 100
    if np.issubdtype(dtype, np.floating):
        a.flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
        b[:2] = [-0.0, np.nan]
    a, b = a.astype(dtype), b.astype(dtype)
    for x, y in [(a, b), (b, a), (dtype(0), a), (a, dtype(-1)), (a, a[::-1])]:
        got, ref = HELPERS["_select"](c, x, y), np.where(c, x, y)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        assert np.array_equal(got.view(np.uint8), np.ascontiguousarray(ref).view(np.uint8))


def test_relu_of_random_data_matches_eager():
    x = torch.randn(128, 128)
    x[0, :3] = torch.tensor([math.nan, -0.0, math.inf])
    fn = lambda x: torch.relu(x) - 0.5
    compiled = compile_fn(fn, x)
    assert "_select(" in compiled.source
    assert_matches(compiled, fn, x)

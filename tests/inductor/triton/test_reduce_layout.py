"""Reductions along any dim and layout (inductor/triton/tiling.reduction_layout, split.py): a reduction whose input
is contiguous along a kept dim (x.sum(0) of a row-major matrix, x.sum(1) of (B, T, C)) runs down columns, the
contiguous dim across the tile's lanes; one with too few columns to fill the GPU is split into chunks of rows.
Every result against eager, odd sizes, bf16, dynamic sizes; the structure asserted on the generated source."""
import pytest
import torch
import torch.nn.functional as F

from framejit.inductor.triton import split as triton_split
from tests.inductor.triton.support import check_fn
from tests.inductor.triton.test_dynamic import kernel_sources, run_sizes

BF16_TOL = (2e-2, 5e-2)


@pytest.fixture
def few_programs(monkeypatch):
    """Column reductions split at interpreter sizes: the real thresholds want thousands of rows."""
    monkeypatch.setattr(triton_split, "OUTER_PROGRAMS", 16)
    monkeypatch.setattr(triton_split, "OUTER_MIN_CHUNK", 16)
    monkeypatch.setattr(triton_split, "MIN_SPLIT_BYTES", 0)


def _kernels(fn) -> list:
    """The generated kernels' sources, in order."""
    return ["@triton.jit\n" + k for k in fn.source.split("\ndef call(")[0].split("\n@triton.jit\n")[1:]]


def _tol(dtype):
    return BF16_TOL if dtype == torch.bfloat16 else (1e-4, 1e-4)


COLUMN_OPS = {
    "sum": lambda x: x.sum(0),
    "mean": lambda x: x.mean(0),
    "amax": lambda x: x.amax(0),
    "amin": lambda x: x.amin(0),
    "var": lambda x: x.var(0),
    "std_keepdim": lambda x: x.std(0, keepdim=True),
    "argmax": lambda x: x.argmax(0),
    "softmax_dim0": lambda x: torch.softmax(x, 0),
}


@pytest.mark.parametrize("shape", [(37, 70), (300, 13), (5, 3)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", list(COLUMN_OPS))
def test_column_reductions_match_eager(op, dtype, shape):
    x = (torch.randn(shape) * 3 + 10).to(dtype)  # a large mean: a one-pass variance would lose digits
    if op == "argmax" and dtype == torch.bfloat16:
        x = torch.randperm(x.numel()).reshape(shape).to(dtype)  # ties in bf16: keep the winner unique
    check_fn(COLUMN_OPS[op], x, tol=_tol(dtype))


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "var"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_middle_dim_reductions_match_eager(op, dtype):
    x = (torch.randn(3, 45, 70) * 2 + 5).to(dtype)
    fn = check_fn(lambda x: getattr(x, op)(1), x, tol=_tol(dtype))
    assert "xindex = xoffset + tl.arange(0, XBLOCK)[None, :]" in _kernels(fn)[-1]


def test_column_sum_loads_along_the_contiguous_dim():
    """x.sum(0): outputs across the tile's axis 1, the load's address is xindex plus a row offset (coalesced and
    vectorizable across lanes), the sum folds axis 0."""
    fn = check_fn(lambda x: x.sum(0), torch.randn(300, 70))
    (k,) = _kernels(fn)
    assert "xindex = xoffset + tl.arange(0, XBLOCK)[None, :]" in k and "rbase = tl.arange(0, RBLOCK)[:, None]" in k
    assert "tl.load(x_ptr + (xindex + rindex * 70)" in k and "tl.sum(tmp1, 0)" in k
    assert [launcher.ks.mode for launcher in fn.launch.values()] == ["outer_persistent"]


def test_long_column_reduction_loops_down_the_rows(monkeypatch):
    from framejit.inductor.runtime import launch_configs
    monkeypatch.setattr(launch_configs, "outer_persistent_max", lambda itemsize: 16)
    x = torch.randn(300, 70) * 3 + 100
    fn = check_fn(lambda x: x.var(0), x, tol=(1e-4, 1e-3))
    (k,) = _kernels(fn)
    assert k.count("for roffset in range(0, 300, RBLOCK):") == 2  # two-pass: the mean, then the deviations
    assert "tl.full([RBLOCK, XBLOCK], 0, tl.float32)" in k
    assert [launcher.ks.mode for launcher in fn.launch.values()] == ["outer_looped"]


def test_row_reductions_keep_the_inner_layout():
    fn = check_fn(lambda x: x.sum(-1), torch.randn(70, 300))
    (k,) = _kernels(fn)
    assert "xindex = xoffset + tl.arange(0, XBLOCK)[:, None]" in k and "tl.sum(tmp1, 1)" in k
    fn = check_fn(lambda x: x.t().sum(0), torch.randn(70, 300))  # a column sum of a transposed view: rows
    assert "[:, None]" in _kernels(fn)[0].split("xindex = ")[1].split("\n")[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_pointwise_before_and_after_fuse(dtype):
    x, y, b = torch.randn(97, 70).to(dtype), torch.randn(97, 70).to(dtype), torch.randn(70).to(dtype)
    fn = check_fn(lambda x, y: (x * y).sum(0), x, y, tol=_tol(dtype))
    assert len(_kernels(fn)) == 1 and "tl.sum(" in _kernels(fn)[0] and ", 0)" in _kernels(fn)[0]
    fn = check_fn(lambda x, b: x.sum(0) + b, x, b, tol=_tol(dtype))
    assert len(_kernels(fn)) == 1
    fn = check_fn(lambda x, y, b: torch.relu((x - y).mean(0, keepdim=True) * b), x, y, b, tol=_tol(dtype))
    assert len(_kernels(fn)) == 1


SPLIT_CASES = {
    "sum": (lambda x: x.sum(0), (1024, 70)),
    "sum_bias": (lambda x: x.sum(0) + 1, (512, 33)),
    "mean_mid": (lambda x: x.mean(1), (3, 1024, 24)),
    "amax": (lambda x: x.amax(0), (1024, 70)),
    "amin_keepdim": (lambda x: x.amin(0, keepdim=True), (1024, 70)),
    "var": (lambda x: x.var(0), (1024, 70)),
    "mul_sum": (lambda x: (x * x).sum(0), (2048, 5)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", list(SPLIT_CASES))
def test_split_column_reductions_match_eager(case, dtype, few_programs):
    fn, shape = SPLIT_CASES[case]
    compiled = check_fn(fn, (torch.randn(shape) + 3).to(dtype), tol=_tol(dtype))
    assert "_part0" in compiled.source


def test_split_partials_are_chunk_major(few_programs):
    """The partial sums of x.sum(0) lie chunk-major, like x: the partial kernel stores `xindex` (contiguous across
    lanes) and the combining kernel is a column reduction of them."""
    fn = check_fn(lambda x: x.sum(0), torch.randn(1024, 64))
    assert "sum_dim_int_list_part0 = torch.empty_strided((64, 16), (1, 64)" in fn.source
    partial, combine = _kernels(fn)
    assert "tl.store(sum_dim_int_list_part0_ptr + xindex, " in partial
    assert "tl.load(sum_dim_int_list_part0_ptr + (xindex + rindex * 64)" in combine
    bf16 = check_fn(lambda x: x.sum(0), torch.randn(1024, 64).bfloat16(), tol=BF16_TOL)
    assert "(64, 16), (1, 64), dtype=torch.float32" in bf16.source  # float32 partials of a bf16 sum


def test_real_thresholds_leave_small_column_sums_alone():
    fn = check_fn(lambda x: x.sum(0), torch.randn(300, 70))
    assert "_part" not in fn.source  # 300 rows: below OUTER_MIN_CHUNK * 2, one kernel


def test_column_sum_with_rows_not_a_power_of_two_stays_one_kernel(few_programs):
    # 1021 is prime: no whole chunks; a sum of 1021 float32 values in another order: float32 sums' tolerance
    fn = check_fn(lambda x: x.sum(0), torch.randn(1021, 70), tol=_tol(torch.float32))
    assert len(_kernels(fn)) == 1


DYNAMIC = {
    "column_sum": (lambda x: x.sum(0) * 2, lambda t: (torch.randn(t, 48),), [0], True),
    "middle_mean": (lambda x: x.mean(1), lambda t: (torch.randn(2, t, 24),), [1], True),
    "column_var_dynamic_columns": (lambda x: x.var(0), lambda t: (torch.randn(30, t),), [1], True),
}


@pytest.mark.usefixtures("fresh_jit")
@pytest.mark.parametrize("case", list(DYNAMIC))
def test_dynamic_column_and_middle_reductions(case):
    fn, make, dims, outer = DYNAMIC[case]
    graph = run_sizes(fn, make, [5, 17, 40], dims)
    assert ("xindex = xoffset + tl.arange(0, XBLOCK)[None, :]" in kernel_sources(graph.variants[0])) == outer


# ---- cat / stack writes: one kernel, each element written once, strided slices read in place ---------------------
def rotate_half(x, cos, sin):
    d = x.shape[-1]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat((-x2, x1), -1) * sin


def rotate_interleaved(x, cos, sin):
    a, b = x[..., ::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)


def _one_kernel_no_buffers(fn):
    assert len(_kernels(fn)) == 1, fn.source
    call = fn.source.split("def call(")[1]
    assert call.count("torch.empty_strided") == 1 and "torch fallback" not in call, call  # the output only


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 7, 10), (1, 2, 5, 16)], ids=str)
def test_rotate_half_is_one_kernel(shape, dtype):
    x = torch.randn(shape).to(dtype)
    cos, sin = torch.randn(shape[-2:]).to(dtype), torch.randn(shape[-2:]).to(dtype)
    _one_kernel_no_buffers(check_fn(rotate_half, x, cos, sin, tol=_tol(dtype)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 7, 10), (1, 2, 5, 16)], ids=str)
def test_interleaved_rotary_is_one_kernel(shape, dtype):
    x = torch.randn(shape).to(dtype)
    cos, sin = torch.randn(shape[-2], shape[-1] // 2).to(dtype), torch.randn(shape[-2], shape[-1] // 2).to(dtype)
    fn = check_fn(rotate_interleaved, x, cos, sin, tol=_tol(dtype))
    _one_kernel_no_buffers(fn)
    # the stack's pieces share their loads: a and b once each, cos and sin once each, no per-piece masks
    assert _kernels(fn)[0].count("tl.load(x_ptr") == 2 and _kernels(fn)[0].count("tl.load(") == 4


def test_rotary_of_a_transposed_projection_reads_it_in_place():
    """q as a model makes it, (B, T, H, D) viewed as (B, H, T, D): read through its strides, no copy first."""
    q = torch.randn(2, 5, 3, 8)
    cos, sin = torch.randn(5, 8), torch.randn(5, 8)
    _one_kernel_no_buffers(check_fn(lambda q, c, s: rotate_half(q.transpose(1, 2), c, s), q, cos, sin))
    c2, s2 = torch.randn(5, 4), torch.randn(5, 4)
    _one_kernel_no_buffers(check_fn(lambda q, c, s: rotate_interleaved(q.transpose(1, 2), c, s), q, c2, s2))


STACKS = {
    "dim0": lambda a, b: torch.stack((a * 2, b + 1), 0),
    "middle": lambda a, b: torch.stack((a, torch.tanh(b), a - b), 1),
    "last_negative": lambda a, b: torch.stack([a.exp(), b], dim=-1),
    "sum_after": lambda a, b: torch.stack((a, b), -1).sum(-1),
}


@pytest.mark.parametrize("case", list(STACKS))
def test_stack_of_pointwise_pieces_matches_eager(case):
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    fn = check_fn(STACKS[case], a, b)
    assert "torch.stack" not in fn.source.split("def call(")[1]


def test_stack_of_different_dtypes_promotes():
    check_fn(lambda a, b: torch.stack((a, b), 1), torch.randn(4, 3), torch.randint(0, 5, (4, 3)))

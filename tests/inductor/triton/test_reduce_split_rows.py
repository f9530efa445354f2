"""Row reductions short of warps (inductor/triton/split.py `inner_split_count`): batch-norm statistics
x.mean((0, 2, 3)) / x.var((0, 2, 3)) of an NCHW tensor reduce N*H*W elements into C outputs; with too few rows to
fill the GPU they run as a kernel of partial results over whole chunks of the reduced dims (contiguous runs of H*W,
no permuted copy) plus a small combining kernel. Every result against eager (odd sizes, bf16, NaN, dynamic sizes);
the kernel structure asserted on the generated source; the real thresholds checked on the IR at benchmark sizes."""
import math

import pytest
import torch
import torch.nn.functional as F

from framejit.inductor.ir import Load, Reduce
from framejit.inductor.triton import split as triton_split
from tests.inductor.triton.support import assert_same, check_fn, on_device
from tests.inductor.triton.test_dynamic import run_sizes

BF16_TOL = (2e-2, 5e-2)


@pytest.fixture
def few_rows(monkeypatch):
    """Row reductions split at interpreter sizes: the real thresholds want hundreds of thousands of elements."""
    monkeypatch.setattr(triton_split, "FILL_WARPS", 256)
    monkeypatch.setattr(triton_split, "MIN_CHUNK", 32)
    monkeypatch.setattr(triton_split, "MIN_SPLIT_BYTES", 0)


def _kernels(fn) -> list:
    return ["@triton.jit\n" + k for k in fn.source.split("\ndef call(")[0].split("\n@triton.jit\n")[1:]]


def _tol(dtype):
    return BF16_TOL if dtype == torch.bfloat16 else (1e-5, 1e-5)


STATS = {
    "mean": lambda x: x.mean((0, 2, 3)),
    "var": lambda x: x.var((0, 2, 3)),
    "mean_and_var": lambda x: (x.mean((0, 2, 3)), x.var((0, 2, 3))),
    "var_keepdim_biased": lambda x: x.var((0, 2, 3), keepdim=True, unbiased=False),
    "std": lambda x: x.std((0, 2, 3)),
    "sum_keepdim": lambda x: x.sum((0, 2, 3), keepdim=True),
    "amax": lambda x: x.amax((0, 2, 3)),
    "centered_square_sum": lambda x: ((x - x.mean((0, 2, 3), keepdim=True)) ** 2).sum((0, 2, 3)),
}


# (8, 6, 5, 8): 320 reduced elements per channel, split; (3, 5, 7, 7): 147 (odd: no whole chunks), one kernel
@pytest.mark.parametrize("shape", [(8, 6, 5, 8), (16, 3, 4, 4), (3, 5, 7, 7)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", list(STATS))
def test_batch_norm_statistics_match_eager(op, dtype, shape, few_rows):
    x = (torch.randn(shape) * 3 + 10).to(dtype)  # a large mean: a one-pass variance would lose digits
    fn = check_fn(STATS[op], x, tol=_tol(dtype))
    assert ("_part0" in fn.source) == (shape != (3, 5, 7, 7))


@pytest.mark.parametrize("op", ["mean", "var", "amax"])
def test_nan_propagates_through_the_partials(op, few_rows):
    x = torch.randn(8, 6, 5, 8)
    x[3, 2, 1, 4] = float("nan")
    x[0, 4, 0, 0] = float("inf")
    fn = check_fn(STATS[op], x)
    assert "_part0" in fn.source


def test_channel_statistics_read_contiguous_rows_without_a_copy(few_rows):
    """mean((0, 2, 3)): a partial kernel whose rows are (channel, chunk) pairs reading runs of H*W along the tile's
    axis 1, and a combining kernel; no permuted copy of x, no buffer but the partials and the output."""
    fn = check_fn(STATS["mean"], torch.randn(8, 6, 5, 8))
    partial, combine = _kernels(fn)
    assert "xindex = xoffset + tl.arange(0, XBLOCK)[:, None]" in partial  # rows: the inner layout
    assert "tl.sum(" in partial and ", 1)" in partial and "tl.load(x_ptr" in partial
    assert "tl.load(x_ptr" not in combine and "/ 320.0" in combine
    call = fn.source.split("def call(")[1]
    assert call.count("torch.empty_strided") == 2 and "permute" not in call and "# torch fallback" not in call
    launches = {name: launcher.ks for name, launcher in fn.launch.items()}
    part = next(ks for ks in launches.values() if "x" in ks.params)
    assert part.xnumel > 6 and part.xnumel % 6 == 0 and part.rnumel * part.xnumel == 8 * 6 * 5 * 8


@pytest.mark.parametrize("registers", [True, False], ids=["chunk_in_registers", "looped_chunk"])
def test_variance_reads_x_once_through_chunk_statistics(registers, few_rows, monkeypatch):
    """var: one partial kernel stores each chunk's sum and its squared deviations from its own mean (x loaded once
    for both), one kernel combines them (Chan's update). Accurate where the mean dwarfs the spread; a chunk too
    long for registers is walked twice by the same kernel, still right."""
    if not registers:
        from framejit.inductor.runtime import launch_configs
        monkeypatch.setattr(launch_configs, "persistent_max", lambda itemsize: 16)
    x = torch.randn(8, 6, 5, 8, dtype=torch.float64).mul(0.01).add(1000).float()
    fn = check_fn(STATS["var"], x, tol=(1e-3, 1e-7))
    partial, combine = _kernels(fn)
    assert partial.count("tl.load(x_ptr") == (1 if registers else 2) and partial.count("tl.store(") == 2
    assert "x_ptr" not in combine
    # float64 truth: float32 two-pass rounding stays within 1e-2 here; one pass (E[x*x] - E[x]**2, each ~1e6 in
    # float32) would miss the 1e-4 variance entirely
    torch.testing.assert_close(fn(on_device(x)).double().cpu(), x.double().var((0, 2, 3)), rtol=1e-2, atol=0)


def test_mean_and_variance_share_one_pass_over_x(few_rows):
    """x.mean((0, 2, 3)) and x.var((0, 2, 3)): the mean's chunk sums and the variance's chunk statistics come
    from one kernel (side_outputs.merge_sibling_reductions), both results from one combining kernel."""
    fn = check_fn(STATS["mean_and_var"], torch.randn(8, 6, 5, 8) + 3)
    kernels = _kernels(fn)
    assert len(kernels) == 2 and sum(k.count("tl.load(x_ptr") for k in kernels) == 1


def test_normalizations_in_registers_are_not_split_for_programs(few_rows):
    fn = check_fn(lambda x: torch.softmax(x, -1), torch.randn(4, 1024))
    assert "_part" not in fn.source and len(_kernels(fn)) == 1


@pytest.mark.parametrize("case", ["center", "softmax"])
def test_long_normalizations_split_into_stored_statistics(case, few_rows, monkeypatch):
    """Rows too long for registers are read once per reduction and once for the epilogue anyway: split, each
    statistic is combined into a buffer of its own and the epilogue is a pointwise kernel over the input."""
    from framejit.inductor.runtime import launch_configs
    monkeypatch.setattr(launch_configs, "persistent_max", lambda itemsize: 64)
    fn = {"center": lambda x: (x - x.mean((0, 2, 3), keepdim=True)) * 2,
          "softmax": lambda x: torch.softmax(x.reshape(6, 640), -1)}[case]
    compiled = check_fn(fn, torch.randn(16, 6, 5, 8))
    kernels = _kernels(compiled)
    assert "_part0" in compiled.source and kernels[-1].startswith("@triton.jit\ndef pw_")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_batch_norm_training_is_statistics_then_one_pointwise_kernel(dtype, few_rows, monkeypatch):
    """F.batch_norm with batch statistics: a partial kernel of chunk sums and deviations (x read once), a kernel
    combining mean and variance, and the normalization as one pointwise kernel. The variance's combination is
    stored like the mean's (it was left inside the full-size epilogue, which could not be generated, and the
    graph was lowered one node per kernel: 0.2-0.3x torch.compile on the H100)."""
    from framejit.inductor.runtime import launch_configs
    monkeypatch.setattr(launch_configs, "persistent_max", lambda itemsize: 64)
    fn = lambda x, g, b: F.batch_norm(x, None, None, g, b, True)  # noqa: E731
    x = (torch.randn(16, 6, 5, 8) * 3 + 10).to(dtype)
    compiled = check_fn(fn, x, torch.rand(6).to(dtype) + 0.5, torch.randn(6).to(dtype), tol=_tol(dtype))
    kernels = _kernels(compiled)
    assert len(kernels) == 3 and kernels[-1].startswith("@triton.jit\ndef pw_"), kernels
    assert sum(k.count("tl.load(x_ptr") for k in kernels) == 2  # the statistics' pass and the epilogue's


def test_rows_enough_for_the_programs_are_not_split(few_rows):
    fn = check_fn(lambda x: x.sum(-1), torch.randn(4096, 40))  # 64 programs of 64 rows, 4 warps: FILL_WARPS
    assert "_part" not in fn.source
    fn = check_fn(lambda x: x.sum(-1), torch.randn(2048, 40))  # 128 warps, but chunks of 20 elements
    assert "_part" not in fn.source  # (chunks under MIN_CHUNK)


@pytest.mark.usefixtures("fresh_jit")
@pytest.mark.parametrize("split", [False, True])
def test_bf16_statistics_widen_x_in_registers(split, request):
    """The bf16 mean and variance as a model captures them (the graph upcasts x to float32 once, for both): each
    kernel loads bf16 x and widens it, no float32 copy of x is written (triton/fusion.py `_recomputed`)."""
    if split:
        request.getfixturevalue("few_rows")
    store = []

    def backend(gm, inputs):
        from framejit.inductor.backends import triton_backend
        store.append(triton_backend(gm, inputs))
        return store[-1]
    import jit
    x = on_device((torch.randn(8, 6, 5, 8) * 3 + 10).bfloat16())
    got = jit.compile(STATS["mean_and_var"], backend=backend)(x)
    assert_same(got, STATS["mean_and_var"](x), BF16_TOL)
    call = store[0].source.split("def call(")[1]
    assert "pw_" not in call and "(8, 6, 5, 8)" not in call and ("_part0" in call) == split


def test_narrowing_cast_read_by_many_kernels_is_stored():
    """A float32 input cast to bf16 and read by four kernels: four float32 reads would move more than one read,
    one bf16 write and four bf16 reads, so the cast keeps its buffer."""
    fn = check_fn(lambda x: (lambda y: (y.sum(-1), y.amax(-1) * 2, y.sum(0), y.amin(0) * 2))(x.bfloat16()),
                  torch.randn(6, 10), tol=BF16_TOL)
    assert "def pw_" in fn.source


@pytest.mark.usefixtures("fresh_jit")
def test_dynamic_batch_statistics_are_not_split(few_rows):
    """Dynamic sizes: a split for programs would make a size condition of a launch-shape choice; one kernel."""
    graph = run_sizes(STATS["mean_and_var"], lambda n: (torch.randn(n, 6, 4, 4) + 5,), [8, 13, 32], [0])
    assert "_part" not in graph.variants[0].fn.source


def _reduce(shape, axes, dtype=torch.float32) -> Reduce:
    out = tuple(s for d, s in enumerate(shape) if d not in axes)
    return Reduce("sum", Load("x", shape, dtype), axes, False, out, dtype)


def test_real_thresholds():
    """At the benchmark's sizes (benchmarks/broad.py): ResNet's first batch-norm statistics split into enough
    chunks to give ~1000 programs; a small tensor, and a reduction with thousands of rows, stay one kernel."""
    bn = _reduce((128, 64, 56, 56), (0, 2, 3))
    split = triton_split.inner_split_count(bn)
    assert split > 1 and triton_split.row_warps(64 * split, 128 * 56 * 56 // split, 4) >= triton_split.FILL_WARPS
    assert 128 * 56 * 56 // split <= 16384  # chunks held in registers: the variance's partial kernel reads x once
    assert triton_split.inner_split_count(_reduce((8, 64, 8, 8), (0, 2, 3))) == 1  # 128 KB: one launch
    assert triton_split.inner_split_count(_reduce((8192, 4096), (1,))) == 1  # 8192 rows fill the GPU
    assert triton_split.inner_split_count(_reduce((128, 2048, 7, 7), (0, 2, 3))) == 1  # 2048 rows of 6272
    assert triton_split.inner_split_count(_reduce((256, 16384), (1,))) == 1  # 256 programs of 16 warps
    assert triton_split.inner_split_count(_reduce((64, 262144), (1,))) > 1  # 64 programs of 8 rows' warps


# ---- argmax / argmin split into chunk winners (Splitter.arg_combine) ---------------------------------------------
# small shapes: the interpreter runs argmax's two-value combine one element pair at a time
@pytest.fixture
def few_programs(few_rows, monkeypatch):
    """Column reductions split at interpreter sizes too."""
    monkeypatch.setattr(triton_split, "OUTER_PROGRAMS", 16)
    monkeypatch.setattr(triton_split, "OUTER_MIN_CHUNK", 8)
    monkeypatch.setattr(triton_split, "MIN_CHUNK", 16)


ARGS = {
    "argmax0": lambda x: x.argmax(0),  # columns: 8 chunks of 8 rows
    "argmin0": lambda x: x.argmin(0),
    "argmax0_keepdim": lambda x: x.argmax(0, keepdim=True),
    "argmax_last": lambda x: x.t().contiguous().argmax(-1),  # rows: 12 rows of 4 chunks
    "argmin_last_keepdim": lambda x: x.t().contiguous().argmin(1, keepdim=True),
    "argmax_all": lambda x: x.argmax(),
    "argmax_of_product": lambda x: (x * x.flip(0)).argmax(0),
    "max_with_indices": lambda x: _pair(torch.max(x, 0)),
    "min_with_indices_last": lambda x: _pair(torch.min(x.t().contiguous(), 1)),
}


def _pair(r):
    return r[0], r[1]  # (a traced graph returning torch's tuple itself runs in torch)
SHAPE = (64, 12)


def _arg_input(kind: str, dtype, shape=SHAPE) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if kind == "ties":  # few distinct values: every column ties across chunks; the first index must win
        return torch.randint(0, 3, shape, generator=g).to(dtype)
    if kind == "nan":
        x = torch.randn(shape, generator=g).to(dtype)
        x[50, 3], x[40, 3], x[17, 5], x[30:, 9] = float("nan"), float("nan"), float("inf"), float("nan")
        return x
    if kind == "neg_inf":
        x = torch.full(shape, float("-inf")).to(dtype)
        x[:, :3] = float("inf")
        return x
    return (torch.randperm(math.prod(shape), generator=g).reshape(shape) % 250).to(dtype)  # exact in bf16


@pytest.mark.parametrize("kind", ["plain", "ties", "nan", "neg_inf"])
@pytest.mark.parametrize("op", list(ARGS))
def test_split_argmax_matches_eager(op, kind, few_programs):
    fn = check_fn(ARGS[op], _arg_input(kind, torch.float32))
    assert "_part0" in fn.source


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.int32, torch.int64], ids=str)
@pytest.mark.parametrize("op", ["argmax0", "argmin_last_keepdim", "max_with_indices"])
def test_split_argmax_other_dtypes(op, dtype, few_programs):
    fn = check_fn(ARGS[op], _arg_input("ties", dtype))
    assert "_part0" in fn.source


@pytest.mark.parametrize("shape", [(61, 7), (96, 5), (5, 3)], ids=str)
def test_argmax_without_whole_chunks_stays_one_kernel(shape, few_programs):
    fn = check_fn(lambda x: x.argmax(0), _arg_input("ties", torch.float32, shape))
    assert ("_part0" in fn.source) == (shape == (96, 5))  # 61 is prime; 5 rows are too few


def test_split_argmax_reads_its_input_once_more_only_at_the_winners(few_programs):
    """The partial kernel stores each chunk's winning index into the whole column; the combining kernel loads the
    values at those indices (a gather: rows x chunks elements), not the input again."""
    fn = check_fn(lambda x: x.argmax(0), _arg_input("plain", torch.float32))
    partial, combine = _kernels(fn)
    assert "h.argmax" in partial and "tl.load(x_ptr + (i2 * 12 + x1)" in partial
    assert "h.argmax" not in combine and "h.minimum" in combine and "tl.where(tmp0 < 0" in combine
    assert "argmax_default_part0 = torch.empty_strided((12, 8), (1, 12), dtype=torch.int64" in fn.source


def test_argmax_real_thresholds():
    """argmax(0) of the benchmark's 8192x4096 matrix: 64 programs of 64 columns unsplit, 1024 split."""
    r = Reduce("argmax", Load("x", (8192, 4096), torch.float32), (0,), False, (4096,), torch.int64)
    assert triton_split.outer_split_count(r) == 16


# ---- sibling reductions: max / min with indices in one kernel (triton/side_outputs.merge_sibling_reductions) -------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", ["max_last", "min_0_keepdim", "max_nan"])
def test_max_with_indices_is_one_kernel_reading_x_once(op, dtype):
    x = _arg_input("ties" if op != "max_nan" else "nan", dtype, (64, 12))
    fn = {"max_last": lambda x: _pair(torch.max(x, -1)),
          "min_0_keepdim": lambda x: _pair(torch.min(x, 0, keepdim=True)),
          "max_nan": lambda x: _pair(torch.max(x, 0))}[op]
    compiled = check_fn(fn, x, tol=_tol(dtype))
    (k,) = _kernels(compiled)
    assert k.count("tl.load(x_ptr") == 1 and k.count("tl.store(") == 2


def test_reductions_of_one_input_over_other_axes_stay_apart():
    """x.sum(-1) and x.amax(0) of a square matrix: outputs of one shape, one input, two reduction signatures."""
    fn = check_fn(lambda x: (x.sum(-1), x.amax(0)), torch.randn(12, 12))
    assert len(_kernels(fn)) == 2

"""Row reductions short of programs (inductor/triton/split.py `inner_split_count`): batch-norm statistics
x.mean((0, 2, 3)) / x.var((0, 2, 3)) of an NCHW tensor reduce N*H*W elements into C outputs; with too few rows to
fill the GPU they run as a kernel of partial results over whole chunks of the reduced dims (contiguous runs of H*W,
no permuted copy) plus a small combining kernel. Every result against eager (odd sizes, bf16, NaN, dynamic sizes);
the kernel structure asserted on the generated source; the real thresholds checked on the IR at benchmark sizes."""
import pytest
import torch

from framejit.inductor.ir import Load, Reduce
from framejit.inductor.triton import split as triton_split
from tests.inductor.triton.support import check_fn
from tests.inductor.triton.test_dynamic import run_sizes

BF16_TOL = (2e-2, 5e-2)


@pytest.fixture
def few_rows(monkeypatch):
    """Row reductions split at interpreter sizes: the real thresholds want hundreds of thousands of elements."""
    monkeypatch.setattr(triton_split, "FILL_PROGRAMS", 64)
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


def test_variance_is_two_pass_over_the_chunks(few_rows):
    """var: the mean's partials and combination stored first, then the squared deviations' partials read x again
    with the stored mean (two-pass: accurate where the mean is large), then their combination."""
    x = torch.randn(8, 6, 5, 8) * 0.01 + 1000
    fn = check_fn(STATS["var"], x, tol=(1e-3, 1e-6))
    assert len(_kernels(fn)) == 4 and sum("tl.load(x_ptr" in k for k in _kernels(fn)) == 2


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


def test_rows_enough_for_the_programs_are_not_split(few_rows):
    fn = check_fn(lambda x: x.sum(-1), torch.randn(4096, 40))  # 64 rows per program: FILL_PROGRAMS of them
    assert "_part" not in fn.source
    fn = check_fn(lambda x: x.sum(-1), torch.randn(2048, 40))  # 32 programs: chunks of 20 rows' elements each
    assert "_part" not in fn.source  # (chunks under MIN_CHUNK)


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
    assert split > 1 and triton_split.row_programs(64 * split, 128 * 56 * 56 // split, 4) >= \
        triton_split.FILL_PROGRAMS
    assert triton_split.inner_split_count(_reduce((8, 64, 8, 8), (0, 2, 3))) == 1  # 128 KB: one launch
    assert triton_split.inner_split_count(_reduce((8192, 4096), (1,))) == 1  # 8192 rows fill the GPU
    assert triton_split.inner_split_count(_reduce((128, 2048, 7, 7), (0, 2, 3))) == 1  # 2048 rows of 6272

"""Split reductions (inductor/triton/split.py): a reduction of many elements into a few outputs runs as a kernel
of partial results over chunks plus a kernel combining them, against eager torch."""
import pytest
import torch

from framejit.inductor.triton import split as triton_split
from tests.inductor.triton.support import check_fn


@pytest.fixture
def small_thresholds(monkeypatch, tmp_path):
    """The interpreter runs kernels in NumPy: the shapes here are 16x below the real thresholds, which
    `test_real_thresholds` keeps one case of. A cache of its own: code compiled at the real thresholds by other
    tests (the same graph and shapes) is not what these tests look for."""
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path / "framejit-cache"))
    monkeypatch.setattr(triton_split, "SERIAL_LENGTH", 1 << 12)
    monkeypatch.setattr(triton_split, "MIN_CHUNK", 256)


def _kernels(fn) -> int:
    return fn.source.count("\n@triton.jit\n")


def _positive_total(x):
    return (torch.tanh(x).sum() > 0) & (x.abs().sum() > 1)


def _data_dependent_head(x):
    y = torch.relu(x) - 0.5
    return y.sum() > 0, y


CASES = [
    (_positive_total, (128, 128)),
    (_data_dependent_head, (128, 128)),
    (lambda x: x.sum(), (64, 67)),                             # 4288 = 2**6 * 67: chunks of 67 * 4
    (lambda x: x.sum(0), (1 << 13, 4)),                        # few outputs over the leading dim (permuted)
    (lambda x: x.mean(dim=(0, 1), keepdim=True), (8, 512, 8)),  # keepdim's ones before the kept dim
    (lambda x: x.var(), (64, 128)),                            # the mean nested inside: stored, then broadcast
    (lambda x: ((x - x.mean()) ** 2).mean(), (75, 256)),
    (lambda x: (x.amax(), x.amin(dim=(0, 1), keepdim=True)), (75, 256)),
    (lambda x: ((x > 0).any(), (x > -10).all(), (x > 0).sum()), (64, 64)),
    (lambda x: x.sum(dim=(1, 2)), (3, 64, 128)),               # three rows of 2**13
]


@pytest.mark.parametrize("i", range(len(CASES)))
def test_split_reduction_matches_eager(i, small_thresholds):
    fn, shape = CASES[i]
    torch.manual_seed(i)
    compiled = check_fn(fn, torch.randn(shape))
    assert "_part0" in compiled.source  # the partial results' buffer: the reduction was split


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_sum_keeps_float32_partials(dtype, small_thresholds):
    x = torch.randn(128, 128).to(dtype)
    compiled = check_fn(lambda x: x.sum(), x, tol=(2e-2, 1e-1))
    assert "dtype=torch.float32" in compiled.source.split("_part0 = torch.empty_strided")[1].split("\n")[0]


def test_partial_kernel_loads_are_contiguous(small_thresholds):
    """The chunked view of a contiguous tensor is addressed by the linear index itself, not rebuilt from `//` and
    `%` (Triton's vectorizer cannot see through those)."""
    compiled = check_fn(lambda x: x.sum(), torch.randn(128, 128))
    partial = compiled.source.split("def red_")[1]
    assert "tl.load(x_ptr + i0," in partial


def test_length_without_a_power_of_two_factor_runs_in_torch(small_thresholds):
    # 4099 is prime: no chunking without ragged chunks, so the graph runs in torch rather than serially
    check_fn(lambda x: x.sum(), torch.randn(4099), expect_triton=False)


def test_real_thresholds():
    compiled = check_fn(_data_dependent_head, torch.randn(256, 256))
    assert "_part0" in compiled.source
    compiled = check_fn(lambda x: x.sum(), torch.randn(128, 256))  # 2**15 elements: below, one program
    assert "_part" not in compiled.source


def test_many_rows_stay_one_kernel():
    compiled = check_fn(lambda x: x.sum(-1), torch.randn(8, 4096))
    assert _kernels(compiled) == 1 and "_part" not in compiled.source


def test_column_normalization_is_not_split():
    """x / x.sum(0) over few columns: a column sum that alone would be split for programs, but its kernel writes the
    full shape back, which partials laid out by chunks cannot feed. One kernel, not one per node."""
    compiled = check_fn(lambda x: x / x.sum(0, keepdim=True), torch.rand(1024, 16))
    assert _kernels(compiled) == 1 and "_part0" not in compiled.source


def test_column_sum_written_in_another_shape_is_split(monkeypatch):
    """A bias gradient: sum over (0, 1) with keepdim, viewed as a vector and cast in the same kernel. Split for
    programs, its sums are combined in the shape the kernel writes (it was lowered again one node per kernel)."""
    monkeypatch.setattr(triton_split, "MIN_SPLIT_BYTES", 1 << 16)  # the interpreter's size, 64x below the GPU's
    compiled = check_fn(lambda x: x.sum((0, 1), keepdim=True).view(-1).float(), torch.randn(8, 512, 48).bfloat16(),
                        tol=(2e-2, 1.0))
    assert _kernels(compiled) == 2 and "_part0" in compiled.source

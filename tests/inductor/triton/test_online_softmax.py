"""Rows too long for registers (looped kernels): a softmax's or cross entropy's max and sum of exponentials come
from one loop over the row (inductor/triton/reduce.py `_online_softmax`), with the two-pass result's values and
special values (-inf elements, rows of -inf, +inf, NaN). The row length that forces the looped form is lowered
here so the interpreter's sizes reach it."""
import pytest
import torch
import torch.nn.functional as F

from framejit.inductor.runtime import launch_configs
from tests.inductor.triton.support import check_fn


@pytest.fixture(autouse=True)
def looped(monkeypatch):
    monkeypatch.setattr(launch_configs, "persistent_max", lambda itemsize: 16)


def _rows(dtype=torch.float32):
    x = torch.randn(7, 100, generator=torch.Generator().manual_seed(0)) * 4
    x[1, 3:90] = float("-inf")       # mostly -inf, the max in the first block
    x[2, :50] = float("-inf")        # a first block of -inf, then finite values
    x[3, :] = float("-inf")          # all -inf: NaN, as exp(-inf - -inf)
    x[4, 60] = float("inf")          # +inf: NaN
    x[5, 10] = float("nan")          # NaN
    x[6, 99] = 500.0                 # the max in the last block: every earlier sum rescaled
    return x.to(dtype)


def _one_loop(fn) -> bool:
    """The row kernel walks the row once (one `for roffset` loop before its epilogue's)."""
    kernel = next(k for k in fn.source.split("@triton.jit")[1:] if "for roffset" in k)
    return "accm" in kernel and kernel.count("tl.exp(") >= 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_of_long_rows(op, dtype):
    fn = check_fn(lambda x: getattr(torch, op)(x.float(), -1), _rows(dtype))
    assert _one_loop(fn), fn.source


def test_cross_entropy_of_long_rows():
    x = _rows()[[0, 1, 2, 6]]  # finite losses
    t = torch.tensor([5, 2, 70, 99])
    fn = check_fn(lambda x, t: F.cross_entropy(x, t, reduction="none"), x, t)
    assert _one_loop(fn)


def test_a_max_shared_with_other_work_is_reused():
    """The row max is stored too (a model returning it): the online loop's max is the one stored."""
    x = _rows()
    fn = check_fn(lambda x: (x.amax(-1, keepdim=True), (x - x.amax(-1, keepdim=True)).exp().sum(-1, keepdim=True)), x)
    assert fn.source.count("for roffset") == 1

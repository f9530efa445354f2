"""Independent reductions of one long row from one loop (inductor/triton/loop_fusion.py): a cross entropy with
label smoothing reads its logits once (row max, sum of exponentials and the plain row sum its smoothing term is
spelled with: graph/decompositions_losses.py `sum_of_log_softmax`), with eager's values and gradients; and the
fusion's refusals, on kernel text, where joining two loops would change a value."""
import pytest
import torch
import torch.nn.functional as F

from framejit.inductor.runtime import launch_configs
from framejit.inductor.triton.loop_fusion import fuse_loops
from tests.inductor.triton.support import check_fn

import jit


@pytest.fixture(autouse=True)
def looped(monkeypatch):
    monkeypatch.setattr(launch_configs, "persistent_max", lambda itemsize: 16)


def _logits():
    x = torch.randn(6, 100, generator=torch.Generator().manual_seed(0)) * 3
    x[1, 99] = 300.0  # the max in the last block
    return x


def _row_kernel(fn) -> str:
    return next(k for k in fn.source.split("@triton.jit")[1:] if "accm" in k)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_label_smoothing_reads_the_row_once(reduction):
    t = torch.tensor([5, 2, -100, 99, 0, 42])
    fn = check_fn(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1, reduction=reduction), _logits(), t)
    kernel = _row_kernel(fn)
    assert kernel.count("for roffset") == 1 and kernel.count("tl.load(x_ptr + (xindex * 100 + rindex)") == 1, kernel


def test_label_smoothing_gradient_matches_eager():
    x, t = _logits().requires_grad_(), torch.tensor([5, 2, 7, 99, 0, 42])
    loss = F.cross_entropy(x * 1.5, t, label_smoothing=0.2)
    loss.backward()
    want, x.grad = x.grad, None
    got = jit.compile(lambda x, t: F.cross_entropy(x * 1.5, t, label_smoothing=0.2), backend="numpy")(x, t)
    got.backward()
    torch.testing.assert_close(got, loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad, want, rtol=1e-5, atol=1e-7)


LOOP = "for roffset in range(0, 100, RBLOCK):"


def _loop(*body):
    return [LOOP] + [f"    {line}" for line in body]


def test_a_second_loop_joins_the_first():
    lines = ["acc1 = tl.full([XBLOCK, RBLOCK], 0, tl.float32)",
             *_loop("rindex = roffset + rbase", "tmp2 = tl.load(x_ptr + rindex, rmask, other=0)", "acc1 = acc1 + tmp2"),
             "red3 = tl.sum(acc1, 1)[:, None]",
             "acc4 = tl.full([XBLOCK, RBLOCK], 0, tl.float32)",
             *_loop("rindex = roffset + rbase", "tmp5 = tl.load(x_ptr + rindex, rmask, other=0)",
                    "tmp6 = tmp5 * tmp5", "acc4 = acc4 + tmp6"),
             "red7 = tl.sum(acc4, 1)[:, None]"]
    out = fuse_loops(lines)
    assert out.count(LOOP) == 1 and out.index("acc4 = tl.full([XBLOCK, RBLOCK], 0, tl.float32)") < out.index(LOOP)
    assert "    tmp6 = tmp2 * tmp2" in out and not any("tmp5 =" in line for line in out)  # one load, shared
    assert out[-2:] == ["red3 = tl.sum(acc1, 1)[:, None]", "red7 = tl.sum(acc4, 1)[:, None]"]


def test_a_loop_reading_the_first_result_stays_apart():
    lines = [*_loop("acc1 = acc1 + tl.load(x_ptr + rindex, rmask, other=0)"),
             "red3 = tl.sum(acc1, 1)[:, None]",
             *_loop("acc4 = acc4 + tl.load(x_ptr + rindex, rmask, other=0) - red3")]
    assert fuse_loops(lines) == lines


@pytest.mark.parametrize("where", ["first", "second", "between"])
def test_stores_keep_their_loops_apart(where):
    store = "tl.store(y_ptr + rindex, tmp2, rmask)"
    first = ["tmp2 = tl.load(x_ptr + rindex, rmask, other=0)"] + ([store] if where == "first" else [])
    second = ["tmp5 = tl.load(y_ptr + rindex, rmask, other=0)"] + ([store] if where == "second" else [])
    lines = [*_loop(*first), *(["tl.store(y_ptr + xindex, red1, xmask)"] if where == "between" else []),
             *_loop(*second)]
    assert fuse_loops(lines).count(LOOP) == 2


def test_accumulators_are_not_shared_as_common_lines():
    """Two loops whose lines read an accumulator updated in the loop: equal text, different values."""
    lines = [*_loop("tmp2 = acc1 * 2", "acc1 = acc1 + tmp2"), *_loop("tmp5 = acc1 * 2", "acc4 = acc4 + tmp5")]
    out = fuse_loops(lines)
    assert "    tmp5 = acc1 * 2" in out

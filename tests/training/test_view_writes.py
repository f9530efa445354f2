"""Writes through views of tensors the graph made (graph/autodiff/view_writes.py): `shifted[..., 1:] = ids[...,
:-1]` (T5's and BART's shift_right), `out[:, 0] = v`, `out[1].mul_(3)`, and autograd's own CopySlices backward
(an as_strided write) are made functional in the joint graph, so the region compiles with eager's values and
gradients. A write into an input's memory still keeps the region in torch."""
import pytest
import torch

import jit

TOL = dict(rtol=1e-5, atol=1e-6)


def shift_right(ids, w):
    shifted = ids.new_zeros(ids.shape)
    shifted[..., 1:] = ids[..., :-1].clone()
    shifted[..., 0] = 5
    shifted.masked_fill_(shifted == 3, 0)
    return w[shifted].square().mean()


def scatter_rows(x, w):
    logits = x @ w
    top, _ = torch.topk(logits.softmax(-1), 2, dim=-1)
    top /= top.sum(-1, keepdim=True)
    out = torch.zeros_like(logits)
    out[:, 0] = top[:, 0] * 2
    row = out[1]
    row.mul_(3)  # a write through a view of a tensor that needs grad: autograd's CopySlices
    view_after = out[:, 1:3]  # read after the writes: sees them
    return (out * logits).sum() + top.sum() + view_after.exp().sum()


def written_input(x, w):
    y = (x + 0.5) @ w
    x[0] = 1.0  # an input's memory: stays torch's
    return (y * x.sum()).sum()


def split_view_write(x, w):
    c = x.clone()
    a, b = c.split(2, dim=1)
    a[:, 0] = 0.0  # written through a split result: c sees it
    return ((x @ w) * c.sum()).sum() + b.sum()


CASES = {
    "split_view_write": (split_view_write, lambda: (torch.randn(3, 4), torch.randn(4, 4, requires_grad=True))),
    "shift_right": (shift_right, lambda: (torch.randint(0, 6, (2, 5)), torch.randn(6, 3, requires_grad=True))),
    "scatter_rows": (scatter_rows, lambda: (torch.randn(4, 3), torch.randn(3, 5, requires_grad=True))),
    "written_input": (written_input, lambda: (torch.randn(4, 3), torch.randn(3, 5, requires_grad=True))),
}


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_writes_through_views_match_eager(case, backend, fresh_jit):
    fn, make = CASES[case]
    torch.manual_seed(0)
    want_args = make()
    torch.manual_seed(0)
    got_args = make()
    want = fn(*want_args)
    want.backward()
    got = jit.compile(fn, backend=backend)(*got_args)
    got.backward()
    torch.testing.assert_close(got, want, **TOL)
    torch.testing.assert_close(got_args[1].grad, want_args[1].grad, **TOL)
    torch.testing.assert_close(got_args[0], want_args[0])
    if case != "written_input":
        assert jit.counters["backward_graphs"] >= 1

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


def _random_writes(seed: int):
    """A function writing a few random slices / selects of a fresh buffer with values that need grad, reading
    views of it before and after: eager's values and gradients are the reference."""
    rng = __import__("random").Random(seed)
    steps = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["slice", "select", "mul_", "add_"])
        dim = rng.randint(0, 1)
        a = rng.randint(-3, 2)
        b = rng.choice([None, a + rng.randint(1, 3) if a >= 0 else None])
        steps.append((kind, dim, a, b))

    def f(x, w):
        h = x @ w  # (4, 5), needs grad
        buf = torch.zeros(4, 5)
        before = buf[1:3]
        for kind, dim, a, b in steps:
            view = buf.select(dim, a) if kind == "select" else buf.narrow(dim, a % buf.shape[dim], 1) \
                if b is None else buf[a:b] if dim == 0 else buf[:, a:b]
            src = h.select(dim, a) if kind == "select" else (h[a:b] if dim == 0 else h[:, a:b]) \
                if b is not None else h.narrow(dim, a % h.shape[dim], 1)
            if kind in ("slice", "select"):
                view.copy_(src * 2)
            elif kind == "mul_":
                view.mul_(src)
            else:
                view.add_(src.sin())
        return (buf * h).sum() + before.square().sum() + buf[:, 2].exp().sum()
    return f


@pytest.mark.parametrize("seed", range(12))
def test_random_writes_through_views(seed, fresh_jit):
    fn = _random_writes(seed)
    torch.manual_seed(seed)
    x, w = torch.randn(4, 3), torch.randn(3, 5)
    w1, w2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    want = fn(x, w1)
    want.backward()
    got = jit.compile(fn, backend="numpy")(x, w2)
    got.backward()
    torch.testing.assert_close(got, want, **TOL)
    torch.testing.assert_close(w2.grad, w1.grad, **TOL)


def test_random_writes_compile(fresh_jit):
    """The writes above compile (the backward too), not only agree: autograd's own CopySlices writes through an
    `as_strided` of a flat buffer, respelled as a slice and a reshape."""
    compiled = 0
    for seed in range(12):
        jit.reset()
        torch.manual_seed(seed)
        x, w = torch.randn(4, 3), torch.randn(3, 5, requires_grad=True)
        jit.compile(_random_writes(seed), backend="numpy")(x, w).backward()
        compiled += jit.counters["backward_graphs"] > 0
    assert compiled >= 10, compiled

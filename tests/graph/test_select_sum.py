"""graph/select_sum.py: a one-hot selection sum, sum(where(arange(C) == idx, v, 0), d), becomes v read at idx,
with eager's values (+0.0 for a picked -0.0, 0 for an index matching no class), in every backend."""
import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

import jit
from framejit.graph.passes import optimize

aten = torch.ops.aten


def select_rows(x, idx):
    return torch.where(torch.arange(x.shape[1]) == idx[:, None], (x - x.amax(1, True)) * 2, 0).sum(1)


def select_cols_keepdim(x, idx):
    return torch.where(idx[None, :] == torch.arange(x.shape[0])[:, None], x.exp(), 0).sum(0, keepdim=True)


def select_bias(x, b, idx):  # an operand constant along the selected dim (b, per row) is used as it is
    return torch.where(torch.arange(x.shape[1]).view(1, -1) == idx.unsqueeze(1), x * b, 0.0).sum(-1)


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 7, generator=g)
    x[2, 3] = -0.0
    return x, torch.tensor([0, 6, 3, -1, 7])  # -1 and 7 match no class: the sum is 0


CASES = [
    (select_rows, lambda: _inputs()),
    (select_cols_keepdim, lambda: (_inputs()[0], torch.tensor([4, 0, 2, 9, 1, 1, -3]))),
    (select_bias, lambda: (_inputs()[0], torch.randn(5, 1), _inputs()[1])),
]


@pytest.mark.parametrize("fn,make", CASES, ids=[c[0].__name__ for c in CASES])
def test_the_row_sum_becomes_a_gather(fn, make):
    args = make()
    gm = optimize(fx.symbolic_trace(fn), list(args))
    targets = [n.target for n in gm.graph.nodes]
    assert aten.gather.default in targets and aten.eq.Tensor not in targets, gm.graph
    expected = fn(*args)
    got = gm(*args)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert torch.equal(torch.signbit(got), torch.signbit(expected))  # a picked -0.0 sums to +0.0


@pytest.mark.parametrize("backend", ["numpy", "triton"])
@pytest.mark.parametrize("fn,make", CASES, ids=[c[0].__name__ for c in CASES])
def test_backends_give_eagers_values(fn, make, backend, fresh_jit):
    args = make()
    got, expected = jit.compile(fn, backend=backend)(*args), fn(*args)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(torch.signbit(got), torch.signbit(expected))


def test_a_sum_with_two_matches_is_left_alone():
    """The iota compared against a value that varies along the summed dim selects several terms: no rewrite."""
    fn = lambda x, y: torch.where(torch.arange(7) == y, x, 0).sum(1)  # noqa: E731 - y: (5, 7)
    x, y = torch.randn(5, 7), torch.randint(0, 7, (5, 7))
    gm = optimize(fx.symbolic_trace(fn), [x, y])
    assert aten.gather.default not in [n.target for n in gm.graph.nodes]
    torch.testing.assert_close(gm(x, y), fn(x, y))


def test_cross_entropy_reads_the_target_logit():
    x, t = torch.randn(4, 9), torch.tensor([3, -100, 8, 0])
    fn = lambda x, t: F.cross_entropy(x, t)  # noqa: E731
    gm = optimize(fx.symbolic_trace(fn), [x, t])
    assert aten.gather.default in [n.target for n in gm.graph.nodes]
    torch.testing.assert_close(gm(x, t), fn(x, t))


def select_through_casts(x, idx):
    """The cross entropy's gradient under autocast, as its softmax's backward sums it: the one-hot is cast to bf16
    and back, negated, summed, and also read by another op."""
    onehot = torch.where(torch.arange(x.shape[1]) == idx[:, None], x * 3, 0.0).to(torch.bfloat16).float()
    return (-onehot).sum(1, keepdim=True), onehot * 2


def test_a_selection_sum_seen_through_negation_and_casts_with_other_readers():
    args = _inputs()
    gm = optimize(fx.symbolic_trace(select_through_casts), list(args))
    targets = [n.target for n in gm.graph.nodes]
    assert aten.gather.default in targets and aten.sum.dim_IntList not in targets, gm.graph
    for got, want in zip(gm(*args), select_through_casts(*args)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert torch.equal(torch.signbit(got), torch.signbit(want))


def test_with_in_place_ops_a_where_read_twice_is_left_alone():
    def fn(x, idx):
        picked = torch.where(torch.arange(x.shape[1]) == idx[:, None], x, 0.0)
        total = picked.sum(1)
        picked.add_(1)  # a second reader that writes: the sum must see the values before the write
        return total, picked
    args = _inputs()
    gm = optimize(fx.symbolic_trace(fn), list(args))
    assert aten.gather.default not in [n.target for n in gm.graph.nodes]
    for got, want in zip(gm(*args), fn(*args)):
        torch.testing.assert_close(got, want)

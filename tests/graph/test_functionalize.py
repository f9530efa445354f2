"""graph/functionalize.py: in-place ops on a graph's own unaliased intermediates become out-of-place ops (so the
graph can be compiled), and nothing else does. Each case runs against eager on the NumPy and default backends."""
import operator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import jit
from framejit.graph.effects import has_mutation
from framejit.graph.functionalize import functionalize_intermediates


def _captured(fn, *args):
    graphs = []

    def keep(gm, example_inputs):
        graphs.append(gm)
        return gm
    jit.reset()
    jit.compile(fn, backend=keep)(*args)
    jit.reset()
    return graphs[0]


def relu_chain(x):
    y = x * 2
    a = y + 1
    y.relu_()
    y += a
    return y, a


def functional_inplace(x):
    y = F.relu(x @ x.T, inplace=True)
    return torch.relu_(y * 3) - 1


def write_seen_by_a_view(x):
    y = x * 2
    v = y.view(-1)
    y.relu_()
    return v + 1, y


def write_to_an_input(x):
    x.relu_()
    return x * 2


def write_to_a_view(x):
    y = x * 2
    y[0].relu_()
    return y


def read_before_and_after(x):
    y = x + 1
    before = y * 3
    y.mul_(2)
    return before, y * 5


@pytest.mark.parametrize("fn,rewrites,mutation_left", [
    (relu_chain, 2, False), (functional_inplace, 2, False), (read_before_and_after, 1, False),
    (write_seen_by_a_view, 0, True), (write_to_an_input, 0, True), (write_to_a_view, 0, True)])
def test_what_is_rewritten(fn, rewrites, mutation_left):
    x = torch.randn(3, 3)
    gm = _captured(fn, x.clone())
    assert functionalize_intermediates(gm) == rewrites
    assert has_mutation(gm.graph) is mutation_left
    got, expected = gm(x.clone()), fn(x.clone())
    torch.testing.assert_close(tuple(got), expected if isinstance(expected, tuple) else (expected,))


@pytest.mark.parametrize("backend", ["numpy", "inductor"])
@pytest.mark.parametrize("fn", [relu_chain, functional_inplace, write_seen_by_a_view, write_to_an_input,
                                write_to_a_view, read_before_and_after])
def test_against_eager(backend, fn):
    jit.reset()
    x = torch.randn(4, 4)
    a, b = x.clone(), x.clone()
    torch.testing.assert_close(jit.compile(fn, backend=backend)(a), fn(b))
    torch.testing.assert_close(a, b)


def test_resnet_block_leaves_torch():
    block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True)).eval()
    with torch.no_grad():  # through a function of ours: torch.nn's own frames are not compiled
        gm = _captured(lambda x: block(x), torch.randn(1, 3, 8, 8))
    assert has_mutation(gm.graph)
    assert functionalize_intermediates(gm) == 1 and not has_mutation(gm.graph)
    assert operator.iadd not in {n.target for n in gm.graph.nodes}

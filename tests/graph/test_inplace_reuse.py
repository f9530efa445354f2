"""graph/inplace_reuse.py: elementwise ops of a captured CPU graph written into their own intermediates only
where nothing can tell (same values, dtype, shape and strides as eager; inputs untouched; autograd unaffected)."""
import pytest
import torch

import jit
from framejit.graph.inplace_reuse import reuse_intermediates
from framejit.graph.scalar_operands import hoist_scalar_operands


def _run(fn, *args):
    """fn compiled with a backend that reuses intermediates, then hoists numbers; (result, ops made in place)."""
    counts = []
    def backend(gm, example_inputs):
        counts.append(reuse_intermediates(gm))
        hoist_scalar_operands(gm)
        return gm
    jit.reset()
    out = jit.compile(fn, backend=backend)(*args)
    return out, sum(counts)


def _same(a, b):
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    return a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride() and torch.equal(a, b)


x44 = torch.randn(4, 4)
CASES = [
    ("chain", lambda x: torch.tanh(x) * 2 + 1, [x44], 2),
    ("unary after unary", lambda x: torch.sigmoid(torch.relu(x - 0.5)), [x44], 2),
    ("tensor operand, same layout", lambda x, y: torch.sigmoid(x) * y, [x44, torch.randn(4, 4)], 1),
    ("method spelling", lambda x: (x * 3).abs().exp(), [x44], 2),
    ("input is never written", lambda x: x * 2, [x44], 0),
    ("intermediate used twice", lambda x: (lambda t: t * 2 + t)(torch.tanh(x)), [x44], 1),
    ("intermediate returned", lambda x: (lambda t: (t, t * 2))(torch.tanh(x)), [x44], 0),
    ("view producer", lambda x: x.t() * 2 + 1, [x44], 1),
    ("broadcast grows the result", lambda x, y: torch.tanh(x) * y, [torch.randn(4, 1), torch.randn(4, 5)], 0),
    ("dtype changes", lambda x: (x * 2) / 3, [torch.arange(6)], 0),
    ("other operand transposed", lambda x, y: torch.tanh(x) + y.t(), [x44, torch.randn(4, 4)], 0),
    ("transposed intermediate, tensor operand", lambda x, y: torch.tanh(x.t()) + y, [x44, torch.randn(4, 4)], 0),
]


@pytest.mark.parametrize("name, fn, args, reused", CASES, ids=[c[0] for c in CASES])
def test_same_as_eager(name, fn, args, reused):
    originals = [a.clone() for a in args]
    expected = fn(*args)
    got, count = _run(fn, *args)
    assert _same(got, expected), name
    assert count == reused
    assert all(torch.equal(a, o) for a, o in zip(args, originals))  # inputs untouched


def test_nothing_in_place_when_autograd_records():
    x = torch.randn(5, requires_grad=True)
    fn = lambda x: torch.tanh(x) * 2 + 1  # noqa: E731 - tanh's backward reads its output
    got, count = _run(fn, x)
    assert count == 0
    got.sum().backward()
    torch.testing.assert_close(x.grad, 2 * (1 - torch.tanh(x.detach()) ** 2))

"""graph/scalar_operands.py: Python numbers in captured CPU graphs made 0-d tensors once, only where the result
(dtype and every bit) is what the wrapped number gives."""
import pytest
import torch

import jit
from framejit.graph.scalar_operands import hoist_scalar_operands


def _run_hoisted(fn, *args):
    """fn compiled with a backend that hoists; (result, number of operands hoisted)."""
    counts = []
    def backend(gm, example_inputs):
        counts.append(hoist_scalar_operands(gm))
        return gm
    jit.reset()
    out = jit.compile(fn, backend=backend)(*args)
    return out, sum(counts)


CASES = [
    ("float32 - 0.5", lambda x: x - 0.5, torch.randn(4, 5), 1),
    ("0.5 - float32", lambda x: 0.5 - x, torch.randn(4, 5), 1),
    ("float32 * int", lambda x: x * 3, torch.randn(4, 5), 1),
    ("bfloat16 + 0.1", lambda x: x + 0.1, torch.randn(4, 5).bfloat16(), 1),
    ("float16 / 3.3", lambda x: x / 3.3, torch.randn(4, 5).half(), 1),
    ("float64 * 1e-300", lambda x: x * 1e-300, torch.randn(4, 5, dtype=torch.float64), 1),
    ("torch.add", lambda x: torch.add(x, 1), torch.randn(7), 1),
    ("method mul", lambda x: x.mul(0.25), torch.randn(7), 1),
    ("int32 + int", lambda x: x + 3, torch.arange(6, dtype=torch.int32), 1),
    ("uint8 - 1 wraps", lambda x: x - 1, torch.arange(6, dtype=torch.uint8), 1),
    ("int64 + 2**62", lambda x: x + 2 ** 62, torch.arange(6), 1),
    ("int32 + 0.5 is float32", lambda x: x + 0.5, torch.arange(6, dtype=torch.int32), 0),
    ("int32 / 2 is float32", lambda x: x / 2, torch.arange(6, dtype=torch.int32), 0),
    ("bool + 1", lambda x: x + 1, torch.tensor([True, False]), 0),
    ("0-d float32 + 0.5 stays float32", lambda x: x.sum() + 0.5, torch.randn(3), 0),
    ("alpha keyword", lambda x: torch.add(x, 2, alpha=3), torch.randn(3), 0),
    ("two tensors", lambda x: x + x, torch.randn(3), 0),
    ("chain", lambda x: (torch.relu(x) - 0.5) * 2 + 1, torch.randn(8, 8), 3),
]


@pytest.mark.parametrize("name, fn, x, hoisted", CASES, ids=[c[0] for c in CASES])
def test_same_bits_and_dtype_as_eager(name, fn, x, hoisted):
    expected = fn(x)
    got, count = _run_hoisted(fn, x)
    assert got.dtype == expected.dtype and torch.equal(got, expected), name
    assert count == hoisted


@pytest.mark.filterwarnings("error")  # the meta run raises too: the frame runs eagerly, with no internal-error warning
def test_overflowing_integer_raises_as_eager():
    fn = lambda x: x + 2 ** 70  # noqa: E731
    with pytest.raises(OverflowError) as eager:
        fn(torch.arange(3))
    with pytest.raises(OverflowError) as compiled:
        _run_hoisted(fn, torch.arange(3))
    assert str(compiled.value) == str(eager.value)


def test_one_constant_per_number_and_autograd_unchanged():
    fn = lambda x: (x * 2 + 2) * 2  # noqa: E731
    x = torch.randn(5, requires_grad=True)
    got, count = _run_hoisted(fn, x)
    assert count == 3
    got.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((5,), 4.0))

"""A branch on a one-element tensor compared with a number is decided in Python from `.item()`
(jit/branch_condition.py): same branch as eager at the boundaries, the comparison left out of the graph only where
that is exact, and kept as a tensor wherever something else holds it."""
import math

import pytest
import torch

import jit
from tests.executor.break_helpers import fresh  # noqa: F401 - fresh: autouse fixture


def _graphs(fn, *args) -> list[str]:
    """The code of every graph captured for fn(*args)."""
    seen = []
    def backend(gm, example_inputs):
        seen.append(gm.code)
        return gm
    jit.compile(fn, backend=backend)(*args)
    return seen


def _check(fn, *args):
    expected = fn(*args)
    got = jit.compile(fn, backend="eager")(*args)
    if isinstance(expected, torch.Tensor):
        torch.testing.assert_close(got, expected, equal_nan=True)
    else:
        assert got == expected
    return got


def gt_zero(x):
    y = x * 2 - 1
    if y.sum() > 0:
        return y + 1
    return y - 1


def zero_lt(x):
    s = x.mean()
    if 0 < s:
        return "pos"
    return "not pos"


def method_ge(x):
    if x.max().ge(3):
        return x * 2
    return x


def torch_ne(x):
    if torch.ne(x.sum(), 0.5):
        return "ne"
    return "eq"


def eq_int(x):
    if x.argmax() == 2:
        return "two"
    return "other"


@pytest.mark.parametrize("fn, inputs", [
    (gt_zero, [torch.full((3, 3), 1.0), torch.full((3, 3), 0.0), torch.full((3, 3), 0.5)]),
    (zero_lt, [torch.tensor([1.0, -1.0]), torch.tensor([1.0, 2.0]), torch.tensor([-1.0, -2.0])]),
    (method_ge, [torch.tensor([1.0, 3.0]), torch.tensor([1.0, 2.9]), torch.tensor([math.nan, 5.0])]),
    (torch_ne, [torch.tensor([0.25, 0.25]), torch.tensor([0.5, 0.5]), torch.tensor([math.nan])]),
    (eq_int, [torch.tensor([0, 1, 5]), torch.tensor([4, 1, 0])]),
])
def test_branch_matches_eager_and_leaves_the_comparison_out_of_the_graph(fn, inputs):
    for x in inputs:
        _check(fn, x)
    first = _graphs(fn, inputs[0])[0]
    for op in (" > ", " < ", ".ge(", "torch.ne(", " == "):
        assert op not in first, first


def test_integer_tensor_against_integer_and_int64_extremes():
    def f(x):
        if x.sum() >= 2 ** 62:
            return "big"
        return "small"
    for x in (torch.tensor([2 ** 62, 0]), torch.tensor([2 ** 62 - 1, 0]), torch.tensor([-5])):
        _check(f, x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_a_number_not_exact_in_the_dtype_is_compared_as_torch_does(dtype):
    """0.1 is not a float32 / float16 / bfloat16 number: torch rounds it to the tensor's dtype first, so s == 0.1
    rounded is not > 0.1. The comparison stays in the graph."""
    def f(x):
        if x.sum() > 0.1:
            return "greater"
        return "not greater"
    x = torch.tensor([0.1], dtype=dtype)
    assert _check(f, x) == f(x)
    assert " > 0.1" in _graphs(f, x)[0]


def test_integer_tensor_against_a_float_stays_in_the_graph():
    def f(x):
        if x.sum() > 0.5:
            return "yes"
        return "no"
    for x in (torch.tensor([1]), torch.tensor([0]), torch.tensor([2 ** 60 + 1, 0])):
        _check(f, x)
    assert " > 0.5" in _graphs(f, torch.tensor([1]))[0]


def test_bfloat16_operand_exact_threshold():
    def f(x):
        y = (x * 3).sum()
        if y <= 1.5:
            return y * 2
        return y
    for v in (0.5, 0.25, 1.0 / 3):
        _check(f, torch.tensor([v, 0.0], dtype=torch.bfloat16))


def test_comparison_kept_where_something_else_holds_it():
    def f(x):
        c = x.sum() > 0
        if c:
            return c, x + 1
        return c, x - 1
    for x in (torch.ones(3), -torch.ones(3)):
        expected = f(x)
        got = jit.compile(f, backend="eager")(x)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_one_element_but_not_zero_dim():
    def f(x):
        if x.sum(dim=1, keepdim=True) > 1:
            return x * 2
        return x
    for x in (torch.ones(1, 3), torch.zeros(1, 3)):
        _check(f, x)
    assert " > " not in _graphs(f, torch.ones(1, 3))[0]


def test_many_elements_raise_as_eager():
    def f(x):
        if x > 0:
            return x
        return -x
    with pytest.raises(RuntimeError) as eager:
        f(torch.ones(3))
    with pytest.raises(RuntimeError) as compiled:
        jit.compile(f, backend="eager")(torch.ones(3))
    assert str(compiled.value) == str(eager.value)


def test_input_tensor_compared_directly():
    def f(x, y):
        if x > 0:
            return y + 1
        return y - 1
    for x in (torch.tensor(1.0), torch.tensor(-1.0), torch.tensor(0.0)):
        _check(f, x, torch.ones(2))


def test_default_backend_both_branches():
    for x in (torch.full((64, 64), 0.2), torch.full((64, 64), -0.2)):
        torch.testing.assert_close(jit.compile(gt_zero)(x), gt_zero(x))
    exp = jit.explain(gt_zero, torch.ones(2))
    assert (exp.graph_count, exp.graph_break_count) == (2, 1)

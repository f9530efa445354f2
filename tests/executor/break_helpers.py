"""Shared by the graph-break tests: a fresh jit state per test that fails the test on any internal compiler
error (an error falls back to eager, which would hide a broken split), and eager-vs-compiled runners."""
import pytest
import torch

import jit


@pytest.fixture(autouse=True)
def fresh(fresh_jit):
    yield
    assert jit.counters["compile_errors"] == 0, "an internal compiler error fell back to eager"


def clone(a):
    return a.detach().clone().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a


def both(fn, *args):
    """Eager result, compiled result (fresh copies of tensor args for each)."""
    expected = fn(*map(clone, args))
    got = jit.compile(fn, backend="eager")(*map(clone, args))
    return expected, got


def same(a, b) -> bool:
    """Equal results: tensors by value (and requires_grad), containers item by item, the rest by ==."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.requires_grad == b.requires_grad and torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def outcome(fn, *args):
    """('ok', result) or ('raised', exception type, message): what a call did, to compare eager with compiled."""
    try:
        return ("ok", fn(*args))
    except Exception as e:  # noqa: BLE001 - the exception is the outcome under test
        return ("raised", type(e), str(e))


def same_outcome(a, b) -> bool:
    return a[0] == b[0] and (same(a[1], b[1]) if a[0] == "ok" else a[1:] == b[1:])

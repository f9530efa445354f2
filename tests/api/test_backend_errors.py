"""A user's backend that fails is the user's error to see: its own exception (or a BackendError naming it) reaches
the caller, with no fallback to eager and no warning. Only framejit's own failures fall back."""
import warnings

import pytest
import torch

import jit
from jit import eval_frame


@pytest.fixture(autouse=True)
def clean(fresh_jit):
    yield
    assert eval_frame.get_callback() is None


class BackendBug(Exception):
    pass


def raising_backend(gm, example_inputs):
    raise BackendBug("my backend cannot do this graph")


def f(x):
    return torch.sin(x) * 2


@pytest.mark.parametrize("fullgraph", [False, True])
def test_a_backend_that_raises_propagates_its_own_exception(fullgraph):
    cf = jit.compile(f, backend=raising_backend, fullgraph=fullgraph)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "internal error ... running it eagerly" warning
        with pytest.raises(BackendBug, match="cannot do this graph") as info:
            cf(torch.randn(3))
    assert info.value.__traceback__ is not None
    assert any(tb.tb_frame.f_code is raising_backend.__code__ for tb in _frames(info.value.__traceback__))
    assert jit.counters["compile_errors"] == 0 and jit.counters["frames_compiled"] == 0
    with pytest.raises(BackendBug):  # not marked to run eagerly: the next call tries again and fails again
        cf(torch.randn(3))


def _frames(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_a_registered_backend_that_raises_propagates_too():
    jit.register_backend("raises_for_test", raising_backend)
    with pytest.raises(BackendBug):
        jit.compile(f, backend="raises_for_test")(torch.randn(3))


@pytest.mark.parametrize("result", [None, 3, "graph"])
def test_a_backend_returning_no_callable_is_a_backend_error_naming_it(result):
    def returns_no_callable(gm, example_inputs):
        return result

    cf = jit.compile(f, backend=returns_no_callable)
    with pytest.raises(jit.BackendError, match=rf"returns_no_callable \(.*test_backend_errors.py:\d+\) returned "
                                               rf"{type(result).__name__}, not a callable"):
        cf(torch.randn(3))
    assert jit.counters["compile_errors"] == 0


def test_a_fixed_size_backend_failing_for_a_later_size_raises_at_that_call():
    """A backend without dynamic_sizes gets a graph per size, built on the call that meets the size."""
    sizes = []

    def picky(gm, example_inputs):
        sizes.append(example_inputs[0].shape[0])
        if example_inputs[0].shape[0] > 4:
            raise BackendBug(f"too big: {example_inputs[0].shape[0]}")
        return gm.forward

    cf = jit.compile(f, backend=picky, dynamic=True)
    x = torch.randn(3)
    torch.testing.assert_close(cf(x), f(x))
    with pytest.raises(BackendBug, match="too big: 7"):
        cf(torch.randn(7))
    assert sizes == [3, 7]


def test_a_built_in_backend_failing_is_an_internal_error_with_one_warning(monkeypatch):
    from framejit.inductor.numpy import backend as numpy_steps

    def broken_build(gm, example_inputs):
        raise RuntimeError("lowering bug")

    monkeypatch.setattr(numpy_steps, "build", broken_build)
    cf = jit.compile(f, backend="numpy")
    x = torch.randn(3)
    with pytest.warns(RuntimeWarning, match="internal error while compiling f .*lowering bug"):
        torch.testing.assert_close(cf(x), f(x))
    torch.testing.assert_close(cf(x), f(x))
    assert jit.counters["compile_errors"] == 1

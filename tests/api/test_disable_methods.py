"""jit.disable on classmethods and staticmethods (either decorator order), bound methods and functions: the
method keeps its kind (cls and self bound as before), and its code is never compiled, called directly under
jit.optimize or from compiled code."""
import pytest
import torch

import jit
from jit import eval_frame


@pytest.fixture(autouse=True)
def clean(fresh_jit):
    yield
    assert eval_frame.get_callback() is None


class Tool:
    scale = 2.0

    @jit.disable
    @classmethod
    def disabled_above(cls, x):
        return x * cls.scale

    @classmethod
    @jit.disable
    def disabled_below(cls, x):
        return x * cls.scale + 1

    @jit.disable
    @staticmethod
    def static_above(x):
        return x - 1

    @staticmethod
    @jit.disable
    def static_below(x):
        return x - 2

    def method(self, x):
        return x.cos()

    @classmethod
    def plain_classmethod(cls, x):
        return x * cls.scale


class SubTool(Tool):
    scale = 3.0


METHODS = ["disabled_above", "disabled_below", "static_above", "static_below"]


def _code(name):
    return Tool.__dict__[name].__func__.__wrapped__.__code__


@pytest.mark.parametrize("name", METHODS)
def test_method_kind_is_kept(name):
    assert isinstance(Tool.__dict__[name], classmethod if "disabled" in name else staticmethod)
    x = torch.ones(2)
    expected = {"disabled_above": x * 3.0, "disabled_below": x * 3.0 + 1, "static_above": x - 1,
                "static_below": x - 2}[name]
    torch.testing.assert_close(getattr(SubTool, name)(x), expected)  # cls is the class it is called on
    torch.testing.assert_close(getattr(SubTool(), name)(x), expected)


@pytest.mark.parametrize("name", METHODS)
def test_disabled_methods_are_never_compiled(name):
    x = torch.ones(2)
    with jit.optimize(backend="eager"):
        out = getattr(SubTool, name)(x)
    torch.testing.assert_close(out, getattr(SubTool, name)(x))
    assert eval_frame.get_entries(_code(name)) == [] and jit.counters.frames_compiled == 0

    def user(x):
        return getattr(SubTool, name)(x.sin()) * 2

    compiled = jit.compile(user, backend="eager")
    torch.testing.assert_close(compiled(x), user(x))
    assert eval_frame.get_entries(_code(name)) == []
    assert jit.counters.graph_breaks >= 1  # the disabled call runs for real between graphs


def test_an_undisabled_classmethod_is_compiled_for_contrast():
    with jit.optimize(backend="eager"):
        SubTool.plain_classmethod(torch.ones(2))
    assert len(eval_frame.get_entries(Tool.plain_classmethod.__func__.__code__)) == 1


def test_bound_methods_and_callables_as_before():
    tool = Tool()
    disabled = jit.disable(tool.method)
    x = torch.ones(2)
    with jit.optimize(backend="eager"):
        torch.testing.assert_close(disabled(x), x.cos())
    assert eval_frame.get_entries(Tool.method.__code__) == [] and jit.counters.frames_compiled == 0
    with pytest.raises(TypeError, match="expects a callable"):
        jit.disable(3)

"""Exceptions in traced code (jit/opcodes/exceptions.py, jit/semantics/exceptions.py, Translator._throw): what
the corpus cannot say. An exception that leaves the compiled function raises as eager raises it (type, message,
the frame it comes from); a clause that breaks runs the raise for real; an exception object is never handed
back as a copy that lacks eager's traceback; places where Python itself catches an exception (hasattr, a
property's AttributeError before __getattr__, a generator's frame) answer as eager."""
import io
import traceback

import pytest
import torch

import jit

from .break_helpers import both, same


@pytest.fixture(autouse=True)
def fresh():
    jit.reset()
    jit.counters.clear()
    yield
    jit.reset()


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except Exception as e:  # noqa: BLE001 - compared with eager's
        return "raised", e


def _raises_as_eager(fn, make_args):
    """Eager and compiled raise the same type with the same args, from the same line (of a resume function
    where the raise runs after a break: the frame is named after what it continues)."""
    (ek, ee), (ck, ce) = _outcome(fn, *make_args()), _outcome(jit.compile(fn, backend="eager"), *make_args())
    assert ek == ck == "raised", (ee, ce)
    assert type(ce) is type(ee) and ce.args == ee.args
    last = traceback.extract_tb(ee.__traceback__)[-1], traceback.extract_tb(ce.__traceback__)[-1]
    assert (last[1].filename, last[1].lineno) == (last[0].filename, last[0].lineno)
    return ce


def reraise_escapes(x, d, log):
    y = x * 2
    try:
        v = d["missing"]
    except KeyError:
        log.append("clause")
        raise
    return y * v


def test_a_reraise_leaving_the_function_raises_as_eager():
    logs = []
    _raises_as_eager(reraise_escapes, lambda: (torch.ones(2), {"a": 1}, logs.append([]) or logs[-1]))
    assert logs[0] == logs[1] == ["clause"]  # the clause ran once, for real, after the raise ran for real
    assert jit.counters.graph_breaks >= 1


def _check_size(t):
    if t.shape[0] != 4:
        raise ValueError(f"expected 4 rows, got {t.shape[0]}")
    return t


def raise_in_a_helper_escapes(x):
    y = x + 1
    return _check_size(y) * 2


def not_caught_by_the_clause(x, d):
    try:
        v = d["missing"]
    except (IndexError, TypeError):
        v = 1
    return x * v


def test_an_escaping_raise_keeps_its_type_message_and_place():
    e = _raises_as_eager(raise_in_a_helper_escapes, lambda: (torch.ones(3),))
    assert str(e) == "expected 4 rows, got 3"
    _raises_as_eager(not_caught_by_the_clause, lambda: (torch.ones(2), {"a": 1}))


def test_the_reason_names_the_exception_and_fullgraph_refuses_it():
    with pytest.raises(jit.GraphBreakError, match="KeyError: 'missing'"):
        jit.compile(not_caught_by_the_clause, backend="eager", fullgraph=True)(torch.ones(2), {"a": 1})


def break_inside_the_clause(x, d):
    try:
        v = d["missing"]
    except KeyError as e:
        print("handling", e, file=io.StringIO())  # a break: the lookup then raises for real, and the clause runs
        v = len(str(e))
    return x * v


def test_a_break_inside_the_clause_runs_the_raise_for_real():
    expected, got = both(break_inside_the_clause, torch.ones(2), {"a": 1})
    assert same(expected, got)
    assert jit.counters.graph_breaks >= 1


def lookup_with_a_fallback(x, d):
    try:
        v = d["missing"]
    except KeyError as e:
        v = len(e.args[0])
    return x * v


def test_the_caught_lookup_is_guarded():
    cf = jit.compile(lookup_with_a_fallback, backend="eager")
    for d in ({"a": 1}, {"missing": 4}, {"a": 1}):
        args = (torch.ones(2), d)
        torch.testing.assert_close(cf(*args), lookup_with_a_fallback(*args))
    assert jit.counters.graph_breaks == 0


class _RaisingProperty:
    @property
    def value(self):
        raise AttributeError("not yet")


def hasattr_of_a_raising_property(x):
    try:
        found = hasattr(_RaisingProperty(), "value")  # hasattr swallows it: the clause must not see it
    except AttributeError:
        found = "caught"
    return x + 1, found


class _WithFallback:
    @property
    def value(self):
        raise AttributeError("not yet")

    def __getattr__(self, name):
        return 5


def property_then_getattr(x):
    try:
        v = _WithFallback().value  # Python asks __getattr__ after the property's AttributeError
    except AttributeError:
        v = -1
    return x * v


@pytest.mark.parametrize("fn", [hasattr_of_a_raising_property, property_then_getattr])
def test_exceptions_python_itself_catches(fn):
    expected, got = both(fn, torch.ones(2))
    assert same(expected, got)


def _numbers(d):
    yield 1
    yield d["missing"]
    yield 3


def generator_raising(x, d):
    gen, seen = _numbers(d), []
    try:
        for v in gen:
            seen.append(v)
    except KeyError as e:
        seen.append(str(e))
    seen.append(next(gen, "finished"))  # an exception leaving a generator finishes it
    return x * len(seen), seen


def test_an_exception_leaving_a_generator_finishes_it():
    expected, got = both(generator_raising, torch.ones(2), {"a": 1})
    assert same(expected, got) and got[1] == [1, "'missing'", "finished"]


def returns_a_new_exception(x):
    return x + 1, ValueError("bad value", 2)


def test_an_exception_object_made_in_the_trace_is_made_again_per_call():
    cf = jit.compile(returns_a_new_exception, backend="eager")
    (_, first), (_, second) = cf(torch.ones(2)), cf(torch.ones(2))
    assert type(first) is ValueError and first.args == ("bad value", 2) and first.__traceback__ is None
    assert first is not second
    assert jit.counters.graph_breaks == 0


def returns_a_caught_exception(x, d):
    try:
        d["missing"]
    except KeyError as e:
        caught = e
    return x + 1, caught


def test_a_raised_exception_handed_back_is_eagers_own():
    # its traceback exists only where it was raised for real: the frame runs eagerly rather than return a copy
    exp = jit.explain(returns_a_caught_exception, torch.ones(2), {"a": 1})
    assert any("outlives its except clause" in r.reason for r in exp.break_reasons), str(exp)
    _, caught = jit.compile(returns_a_caught_exception, backend="eager")(torch.ones(2), {"a": 1})
    assert type(caught) is KeyError and caught.__traceback__ is not None


class _Holder:
    pass


def attribute_error_details(x, obj):
    try:
        v = obj.scale
    except AttributeError as e:
        return x, str(e), e.name  # the message is modelled; `name` (set by the lookup) is read for real
    return x * v


def test_an_attribute_error_from_a_lookup_answers_as_eager():
    expected, got = both(attribute_error_details, torch.ones(2), _Holder())
    assert same(expected, got) and got[2] == "scale"
    exp = jit.explain(attribute_error_details, torch.ones(2), _Holder())
    assert any("attribute 'name'" in r.reason for r in exp.break_reasons), str(exp)


class _Custom(Exception):
    def __init__(self, code):
        super().__init__(f"code {code}")
        self.code = code


def custom_init_exception(x):
    try:
        raise _Custom(3)
    except _Custom as e:
        return x * e.code


def test_an_exception_class_with_its_own_init_breaks_and_answers_as_eager():
    expected, got = both(custom_init_exception, torch.ones(2))
    assert same(expected, got)
    exp = jit.explain(custom_init_exception, torch.ones(2))
    assert any("_Custom defines __init__" in r.reason for r in exp.break_reasons), str(exp)


def validates_after_work(x):
    y = x.add_(1)  # the graph before the raise has work to keep: an input changed in place
    raise ValueError(f"rejected {tuple(y.shape)}")


def raise_with_a_break_in_its_clause(x):
    y = x.cos()
    try:
        raise ValueError("retry")
    except ValueError as e:
        print("handled", e, file=io.StringIO())  # a break: the raise before it runs for real, then the clause
        y = y + 1
    return y


def raise_from_escapes(x, d):
    y = x * 2
    try:
        return y * d["missing"]
    except KeyError as e:
        raise RuntimeError("lookup failed") from e


def test_a_raise_is_the_instruction_a_break_runs_after_the_graph():
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm

    for fn in (validates_after_work, raise_from_escapes):
        make = (lambda: (torch.ones(2),)) if fn is validates_after_work else (lambda: (torch.ones(2), {"a": 1}))
        _raises_as_eager(fn, make)
        err = _outcome(jit.compile(fn, backend=backend), *make())[1]
        if fn is raise_from_escapes:
            assert type(err.__cause__) is KeyError and err.__cause__.args == ("missing",)
    assert len(graphs) == 2  # the work before each raise is compiled
    expected, got = both(raise_with_a_break_in_its_clause, torch.ones(2))
    assert same(expected, got)


def bare_raise(x):
    x.add_(1)
    raise


def test_a_bare_raise_re_raises_what_the_caller_handles():
    for fn in (bare_raise, jit.compile(bare_raise, backend="eager")):
        try:
            raise KeyError("outer")
        except KeyError:
            with pytest.raises(KeyError, match="outer"):
                fn(torch.ones(2))

"""@contextlib.contextmanager managers inlined (jit/semantics/context_managers.py): the generator runs to its yield
at the `with`, the rest at the exit, in the graph. A block that does not run whole in the trace (a break or an
exception inside it) makes that `with` a break that enters the real manager; everything compares with eager."""
import contextlib

import torch

import jit
from tests.executor.break_helpers import fresh, outcome, same_outcome  # noqa: F401 - fresh: autouse


@contextlib.contextmanager
def logged(log, name):
    log.append(("enter", name))
    try:
        yield name
    finally:
        log.append(("exit", name))


@contextlib.contextmanager
def never_yields(log):
    log.append("ran")
    if len(log) > 100:
        yield


@contextlib.contextmanager
def yields_twice(log):
    yield 1
    log.append("after first")
    yield 2


def compare(fn, *args, calls=2):
    """fn(x, log, *args) eager and compiled on fresh logs: outcomes (results or exceptions) and logs must match."""
    fast = jit.compile(fn, backend="eager")
    for _ in range(calls):
        eager_log, compiled_log = [], []
        expected = outcome(fn, torch.ones(3), eager_log, *args)
        got = outcome(fast, torch.ones(3), compiled_log, *args)
        assert same_outcome(expected, got), (expected, got)
        assert compiled_log == eager_log, (compiled_log, eager_log)
    return eager_log, expected


def no_yield(x, log):
    with never_yields(log):
        x = x + 1
    return x


def two_yields(x, log):
    with yields_twice(log) as one:
        x = x + one
    return x


def test_a_generator_that_does_not_yield_exactly_once_raises_as_eager():
    log, result = compare(no_yield)
    assert log == ["ran"] and result[1:] == (RuntimeError, "generator didn't yield")
    log, result = compare(two_yields)
    assert log == ["after first"] and result[1:] == (RuntimeError, "generator didn't stop")


def reenters(x, log):
    m = logged(log, "m")
    with m:
        x = x * 2
    with m:  # contextlib's managers are single use: AttributeError, as eager
        x = x + 1
    return x


def test_a_manager_entered_twice_raises_as_eager():
    log, result = compare(reenters)
    assert result[1] is AttributeError and log == [("enter", "m"), ("exit", "m")]


def block_raises(x, log):
    try:
        with logged(log, "m"):
            x = x * 2
            raise KeyError("k")
    except KeyError:
        x = x + 1
    return x


def test_an_exception_through_the_manager_runs_the_real_one():
    log, result = compare(block_raises)
    assert log == [("enter", "m"), ("exit", "m")] and result[0] == "ok"


def helper_with_break(x, log):
    with logged(log, "inner"):
        y = x * 3
        print("inside helper")
    return y


def calls_helper(x, log):
    with logged(log, "outer") as name:
        y = helper_with_break(x, log) + len(name)
    return y


def test_a_break_in_an_inlined_callees_block(capsys):
    # the break is at the call of the helper, inside the outer block: both `with`s enter their real managers, the
    # outer one in this frame, the inner one in the helper's own frame; each break says what was inside
    log, _ = compare(calls_helper)
    assert log == [("enter", "outer"), ("enter", "inner"), ("exit", "inner"), ("exit", "outer")]
    assert capsys.readouterr().out.count("inside helper") == 4
    exp = jit.explain(calls_helper, torch.ones(3), [])
    entered = [r for r in exp.break_reasons if "entered for real" in r.reason]
    lines = {int(r.location.rsplit(":", 1)[1]) for r in entered}
    first = calls_helper.__code__.co_firstlineno
    assert lines == {first + 1, helper_with_break.__code__.co_firstlineno + 1}, lines
    assert all("print()" in r.reason for r in entered)


def loop_of_managers(x, log):
    for i in range(3):
        with logged(log, i) as name:
            x = x + name
    return x


def test_managers_in_a_loop_are_one_graph():
    log, _ = compare(loop_of_managers)
    assert log == [e for i in range(3) for e in (("enter", i), ("exit", i))]
    exp = jit.explain(loop_of_managers, torch.ones(3), [])
    assert exp.graph_count == 1 and exp.graph_break_count == 0


def test_fullgraph_reports_the_break_inside_the_block():
    fast = jit.compile(helper_with_break, backend="eager", fullgraph=True)
    try:
        fast(torch.ones(3), [])
    except jit.GraphBreakError as e:
        assert "print()" in str(e)
    else:
        raise AssertionError("fullgraph=True did not raise")

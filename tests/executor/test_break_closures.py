"""Graph breaks in frames with closure cells: a local captured by a nested function (cell variable), a
`nonlocal` written by one, an argument that is also a cell, and frames that are themselves closures.

The frame and its resume function must share the very same cells: a closure made before the break keeps working
after it, and writes on either side are seen by the other. Each test compares with eager (results, side effects,
exceptions) over several calls, and checks that the frame was split (not run eagerly) and not recompiled."""
import inspect

import pytest
import torch

import jit
from tests.executor.break_helpers import fresh, outcome, same, same_outcome  # noqa: F401 - fresh: autouse


def compare(fn, *args, calls=3):
    """Run eager and compiled `calls` times each on the same arguments; return the compiled function."""
    fast = jit.compile(fn, backend="eager")
    for _ in range(calls):
        expected, got = outcome(fn, *args), outcome(fast, *args)
        assert same_outcome(expected, got), (expected, got)
    return fast


def assert_split(breaks: int, calls: int = 3):
    """The frame broke `breaks` times on the first call, nothing ran eagerly, later calls reused every entry."""
    c = jit.counters
    assert c["frames_run_eagerly"] == 0
    assert c["graph_breaks"] == breaks
    assert c["recompiles"] == 0
    assert c["cache_hits"] >= (calls - 1) * (breaks + 1)


def lambda_over_local(x):
    s = 2
    g = lambda t: t * s  # noqa: E731 - the issue's example
    y = g(x)
    print(y)
    return g(y)


def test_closure_made_before_the_break_is_called_after_it(capsys):
    compare(lambda_over_local, torch.ones(2))
    assert_split(1)
    assert capsys.readouterr().out.count("tensor([2., 2.])") == 6


def nonlocal_counter(x, log):
    total = x * 0
    calls = 0

    def add(v):
        nonlocal total, calls
        total = total + v
        calls += 1

    add(x)
    log.append(("before", calls))  # recorded; written to the caller's list before the break runs print
    print("mid")
    add(x * 2)
    log.append(("after", calls))
    return total, calls


def test_nonlocal_writes_on_both_sides_of_the_break():
    fast = jit.compile(nonlocal_counter, backend="eager")
    x = torch.arange(3.0)
    for _ in range(3):
        eager_log, compiled_log = [], []  # fresh each call: a list's length is part of the guards
        assert same(fast(x, compiled_log), nonlocal_counter(x, eager_log))
        assert compiled_log == eager_log == [("before", 1), ("after", 2)]
    assert_split(1)


def late_writer(x):
    s = x + 1
    get = lambda: s  # noqa: E731
    print("mid")
    s = s * 10          # written after the break, in the resume function: the closure sees it
    return get(), s


def test_write_after_the_break_is_seen_by_a_closure_made_before(capsys):
    compare(late_writer, torch.ones(2))
    assert_split(1)


def closure_after_break(x):
    s = x + 1
    print("mid")
    f = lambda: s * 2  # noqa: E731 - made in the resume function over the frame's cell
    s = s + 1
    return f(), s


def test_closure_made_in_the_resume_function(capsys):
    compare(closure_after_break, torch.ones(2))
    assert_split(1)


def argument_cell(x, k):
    def scaled():
        return x * k
    a = scaled()
    print("mid")
    x = x + 1            # x is an argument and a cell: the closure sees the new value
    return a, scaled()


def test_argument_that_is_also_a_cell(capsys):
    compare(argument_cell, torch.ones(2), 3)
    assert_split(1)


def breaks_inside_closure(x):
    n = x * 2

    def inner(y):
        nonlocal n
        z = y + n
        print("inner")   # the nested function breaks itself (it is a frame with free variables)
        n = n + 1
        return z

    a = inner(x)
    b = inner(x)
    return a, b, n


def test_a_closure_that_breaks_writes_its_nonlocal(capsys):
    compare(breaks_inside_closure, torch.ones(2))
    assert jit.counters["frames_run_eagerly"] == 0 and jit.counters["recompiles"] == 0
    assert jit.counters["graph_breaks"] >= 2  # the outer frame at the call, inner at its print
    assert capsys.readouterr().out.count("inner") == 12


def returns_a_closure(x):
    s = x + 1
    return lambda t: t + s  # noqa: E731 - no break: the closure and its cell are rebuilt on return


def test_returning_a_closure_without_a_break():
    fast = jit.compile(returns_a_closure, backend="eager")
    x = torch.ones(2)
    for _ in range(2):
        g = fast(x)
        assert torch.equal(g(x), returns_a_closure(x)(x))
        assert g.__closure__[0].cell_contents is not None
    assert jit.counters["frames_run_eagerly"] == 0 and jit.counters["graphs"] >= 1


def recursive_nested(x):
    def rec(k, t):
        return t if k == 0 else rec(k - 1, t * 2)  # rec is a cell holding the function itself
    print("r")
    return rec(3, x)


def test_recursive_nested_function_across_a_break(capsys):
    compare(recursive_nested, torch.ones(2))
    assert_split(1)


def deletes_cell(x):
    s = x + 1
    g = lambda: s  # noqa: E731
    a = g()
    print("d")
    del s
    return a, g()  # NameError, in eager and compiled alike


def test_deleted_cell_raises_the_same_error(capsys):
    compare(deletes_cell, torch.ones(2))
    assert jit.counters["compile_errors"] == 0


def loop_with_cell(x, steps):
    acc = x * 0

    def add(v):
        nonlocal acc
        acc = acc + v

    for i in range(steps):
        add(x * i)
        print("step", i)
    return acc


def test_break_in_a_loop_of_a_frame_with_cells(capsys):
    compare(loop_with_cell, torch.ones(2), 3)
    assert jit.counters["frames_run_eagerly"] == 0


SEEN = []


def closure_with_outside_effects(x, box):
    scale = 3

    def record(t):
        SEEN.append(scale)     # a global list: a break inside the nested function's call
        box.value = t * scale  # an attribute of an outside object
        return t * scale

    y = record(x)
    scale = 4
    z = record(y)
    return y + z


def test_side_effects_through_a_closure_match_eager():
    class Box:
        value = None

    eager_box, box = Box(), Box()
    SEEN.clear()
    expected = closure_with_outside_effects(torch.ones(2), eager_box)
    eager_seen = list(SEEN)
    SEEN.clear()
    got = jit.compile(closure_with_outside_effects, backend="eager")(torch.ones(2), box)
    assert same(got, expected) and SEEN == eager_seen == [3, 4]
    assert torch.equal(box.value, eager_box.value)
    assert jit.counters["frames_run_eagerly"] == 0


def make_stepper(weight, steps):
    def step(x):
        nonlocal steps
        steps = steps + 1
        y = x * weight
        print("step", steps)  # a frame with free variables that breaks
        steps = steps * 2     # written in its resume function
        return y + steps
    return step


def test_closure_frame_breaks_and_writes_its_free_variable(capsys):
    eager = make_stepper(torch.full((2,), 2.0), torch.zeros(()))
    compiled = make_stepper(torch.full((2,), 2.0), torch.zeros(()))
    fast = jit.compile(compiled, backend="eager")
    for _ in range(3):
        assert same(fast(torch.ones(2)), eager(torch.ones(2)))
    assert same(compiled.__closure__[0].cell_contents, eager.__closure__[0].cell_contents)
    assert eager.__closure__[0].cell_contents.item() == 14
    assert_split(1)


def test_closure_frame_with_an_int_free_variable_recompiles_but_matches(capsys):
    eager, compiled = make_stepper(torch.full((2,), 2.0), 0), make_stepper(torch.full((2,), 2.0), 0)
    fast = jit.compile(compiled, backend="eager")
    for _ in range(3):
        assert same(fast(torch.ones(2)), eager(torch.ones(2)))
    assert compiled.__closure__[0].cell_contents == eager.__closure__[0].cell_contents == 14
    assert jit.counters["frames_run_eagerly"] == 0  # the int is a constant of each compiled variant


def _line_of(fn, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if line.strip().startswith(text))


@pytest.mark.parametrize("fn,args,text", [(lambda_over_local, (torch.ones(2),), "print(y)"),
                                          (argument_cell, (torch.ones(2), 2), 'print("mid")')])
def test_explain_lists_the_break(fn, args, text, capsys):
    exp = jit.explain(fn, *args)
    assert (exp.graph_break_count, exp.graph_count) == (1, 2)
    [reason] = exp.break_reasons
    assert "print()" in reason.reason and reason.location.endswith(f"test_break_closures.py:{_line_of(fn, text)}")
    assert "Break reasons:" in str(exp) and reason.hint

"""Graph breaks at user context managers: a `with` over anything but torch's grad modes breaks at the `with`
itself (__enter__ runs for real, once), and the body resumes in a resume function that holds the real __exit__
where the original exception table expects it (so __exit__ runs once, also on exceptions, and may suppress).

Each test compares with eager: results, the order of __enter__/__exit__ calls and what __exit__ saw, side effects,
exceptions raised, grad mode; and checks that the frames were split and compiled, not run eagerly."""
import contextlib

import pytest
import torch

import jit
from tests.executor.break_helpers import fresh, outcome, same, same_outcome  # noqa: F401 - fresh: autouse


class Recorder:
    """A manager that logs enter/exit (with the exception type __exit__ saw) and may suppress exceptions."""

    def __init__(self, log, name="m", suppress=False):
        self.log, self.name, self.suppress = log, name, suppress

    def __enter__(self):
        self.log.append(("enter", self.name))
        return self

    def __exit__(self, exc_type, exc, tb):
        self.log.append(("exit", self.name, exc_type.__name__ if exc_type else None))
        return self.suppress


@contextlib.contextmanager
def scope(log, name):
    log.append(("enter", name))
    try:
        yield name
    finally:
        log.append(("exit", name))


class Timer:
    """A timer-like manager with no side effects outside itself: its state is read after the block."""

    def __enter__(self):
        self.start = 1.0
        return self

    def __exit__(self, *exc):
        self.elapsed = 2.5 - self.start


def compare(fn, x, *rest, calls=3):
    """fn(x, log, *rest) eager and compiled, `calls` times on fresh logs; results, logs and exceptions must
    match. Returns the log."""
    fast = jit.compile(fn, backend="eager")
    for _ in range(calls):
        eager_log, compiled_log = [], []
        expected, got = outcome(fn, x, eager_log, *rest), outcome(fast, x, compiled_log, *rest)
        assert same_outcome(expected, got), (expected, got)
        assert compiled_log == eager_log, (compiled_log, eager_log)
        assert torch.is_grad_enabled()
    return eager_log


def compiled_not_eager(min_breaks: int = 1, handlers: int = 0):
    """Every frame was compiled, except `handlers` resume functions that start in an exception handler (the
    executor does not trace exception handling: from the handler on, that resume function runs as written).
    (Recompiles are not checked: Recorder's methods see the log list grow, and a list's length is guarded.)"""
    c = jit.counters
    assert c["frames_run_eagerly"] == handlers, "a frame ran eagerly"
    assert c["graph_breaks"] >= min_breaks


def body_with_print(x, log):
    with Recorder(log) as r:
        y = x + 1
        print("inside", r.name)
        z = y * 2
    return z - 1


def test_break_inside_a_user_with_block(capsys):
    log = compare(body_with_print, torch.ones(2))
    assert log == [("enter", "m"), ("exit", "m", None)]
    compiled_not_eager(2)
    assert capsys.readouterr().out.count("inside m") == 6


def timed(x, log):
    t = Timer()
    with t:
        y = torch.relu(x) * 3
        z = y.sum()
    log.append(t.elapsed)
    return y, z


def test_timer_like_manager_body_is_compiled():
    log = compare(timed, torch.randn(4))
    assert log == [1.5]
    compiled_not_eager(1)
    exp = jit.explain(timed, torch.randn(4), [])
    kinds = [r.kind for r in exp.break_reasons]
    assert "context_manager" in kinds
    reason = exp.break_reasons[kinds.index("context_manager")]
    line = timed.__code__.co_firstlineno + 2
    assert reason.location.endswith(f"test_break_context_managers.py:{line}") and reason.hint
    assert "`with` over" in reason.reason
    assert sum("relu" in g.code for g in exp.graphs) == 1  # the body was captured in a graph


def contextlib_manager(x, log):
    with scope(log, "outer") as name:
        y = x * 2
        log.append(name)
        y = y + 1
    return y


def test_contextlib_contextmanager():
    # a @contextmanager block that runs whole in the trace is inlined: no break (jit/semantics/context_managers.py)
    log = compare(contextlib_manager, torch.ones(3))
    assert log == [("enter", "outer"), "outer", ("exit", "outer")]
    compiled_not_eager(0)
    assert jit.counters["graph_breaks"] == 0


@contextlib.contextmanager
def swallowing_key_errors():
    # Nothing before the yield touches outside state, so nothing stops the capture before the `with`.
    try:
        yield 1
    except KeyError:
        pass


def generator_manager_suppresses(x, log):
    with swallowing_key_errors() as one:
        y = x + one
        log.append("in block")
        raise KeyError("suppressed by the manager")
    return y * 2


def test_contextlib_manager_gets_a_generator_to_throw_into():
    # Its __exit__ calls self.gen.throw(exc): the replacement code must hand it a real generator, not an iterator
    # over values the trace collected.
    log = compare(generator_manager_suppresses, torch.ones(3))
    assert log == ["in block"]


def returns_inside(x, log):
    with Recorder(log):
        y = x * 2
        print("about to return")
        return y + 1


def test_return_from_inside_the_block(capsys):
    log = compare(returns_inside, torch.ones(2))
    assert log == [("enter", "m"), ("exit", "m", None)]
    compiled_not_eager(2)


def raises_at_the_break(x, log, text):
    with Recorder(log):
        y = x + 1
        n = int(text)   # the instruction at a break raises inside the block: __exit__ sees the exception
        y = y * n
    return y


@pytest.mark.parametrize("text", ["3", "bad"])
def test_exception_at_the_break_goes_through_exit_once(text):
    log = compare(raises_at_the_break, torch.ones(2), text)
    assert log == [("enter", "m"), ("exit", "m", None if text == "3" else "ValueError")]
    compiled_not_eager(1, handlers=0 if text == "3" else 1)


def suppressed(x, log, text):
    y = x * 2
    with Recorder(log, suppress=True):
        y = y + 1
        y = y * int(text)     # raises for bad text: __exit__ returns True, the block is left, execution goes on
        log.append("not reached when suppressed")
    return y - 1


@pytest.mark.parametrize("text", ["5", "bad"])
def test_exception_suppressed_by_the_manager(text):
    log = compare(suppressed, torch.ones(2), text)
    if text == "bad":
        assert log == [("enter", "m"), ("exit", "m", "ValueError")]
    compiled_not_eager(1, handlers=0 if text == "5" else 1)


def raises_in_body(x, log):
    with Recorder(log, suppress=False):
        y = x + 1
        print("body")
        if y.sum() > 0:       # a data-dependent branch in the resumed body
            raise KeyError("from the body")
    return y


def test_exception_raised_in_the_resumed_body_propagates_after_exit(capsys):
    log = compare(raises_in_body, torch.ones(2))
    assert log == [("enter", "m"), ("exit", "m", "KeyError")]
    assert jit.counters["graph_breaks"] >= 2


def user_inside_no_grad(x, log):
    with torch.no_grad():
        a = x * 2
        with Recorder(log, "inner"):
            b = a + x
            print("deep")
            c = b * 3
        d = c + 1
    return d, d.requires_grad, torch.is_grad_enabled()


def test_user_with_inside_no_grad(capsys):
    x = torch.ones(2, requires_grad=True)
    log = compare(user_inside_no_grad, x)
    assert log == [("enter", "inner"), ("exit", "inner", None)]
    compiled_not_eager(2)


def no_grad_inside_user(x, log):
    with Recorder(log, "outer"):
        a = x * 2
        with torch.no_grad():
            b = a * 3
            print("deep")
            c = b + 1
        d = a + c
    return d, c.requires_grad, d.requires_grad


def test_no_grad_inside_user_with(capsys):
    log = compare(no_grad_inside_user, torch.ones(2, requires_grad=True))
    assert log == [("enter", "outer"), ("exit", "outer", None)]
    compiled_not_eager(2)


def raises_under_no_grad_in_user(x, log):
    with Recorder(log, "outer", suppress=True):
        with torch.no_grad():
            _ = x * 2
            int("nope")     # raises at the break: no_grad is left, then __exit__ suppresses it
    return x + 1, torch.is_grad_enabled()


def test_exception_leaves_no_grad_then_reaches_user_exit():
    log = compare(raises_under_no_grad_in_user, torch.ones(2, requires_grad=True))
    assert log == [("enter", "outer"), ("exit", "outer", "ValueError")]


def nested_user_withs(x, log):
    with Recorder(log, "a"):
        y = x + 1
        with Recorder(log, "b") as b:
            y = y * 2
            log.append(b.name)
            y = y - 3
        y = y / 2
    return y


def test_nested_user_withs_enter_and_exit_in_order():
    log = compare(nested_user_withs, torch.ones(2))
    assert log == [("enter", "a"), ("enter", "b"), "b", ("exit", "b", None), ("exit", "a", None)]
    compiled_not_eager(2)


def with_in_loop(x, log, n):
    for i in range(n):
        with Recorder(log, f"step{i}"):
            x = x * 2
    return x


def test_user_with_inside_a_loop():
    log = compare(with_in_loop, torch.ones(2), 3)
    assert [e[1] for e in log if e[0] == "enter"] == ["step0", "step1", "step2"]
    assert jit.counters["frames_run_eagerly"] == 0


class Scale:
    """A manager that sets a global the body reads (like a custom autocast)."""
    factor = 1.0

    def __init__(self, factor):
        self.factor = factor

    def __enter__(self):
        self.saved, Scale.factor = Scale.factor, self.factor

    def __exit__(self, *exc):
        Scale.factor = self.saved


def autocast_like(x, log):
    a = x * Scale.factor
    with Scale(3.0):
        b = x * Scale.factor
    c = x * Scale.factor
    return a, b, c


def test_custom_autocast_like_manager_state_is_seen_by_the_body():
    compare(autocast_like, torch.ones(2))
    assert Scale.factor == 1.0
    compiled_not_eager(1)


def test_enter_runs_once_when_it_raises():
    class Refuses:
        entered = 0

        def __enter__(self):
            Refuses.entered += 1
            raise RuntimeError("no entry")

        def __exit__(self, *exc):
            raise AssertionError("never")

    def f(x):
        y = x + 1
        with Refuses():
            y = y * 2
        return y

    with pytest.raises(RuntimeError, match="no entry"):
        jit.compile(f, backend="eager")(torch.ones(2))
    assert Refuses.entered == 1


def test_fullgraph_reports_the_with():
    with pytest.raises(jit.GraphBreakError) as info:
        jit.compile(timed, backend="eager", fullgraph=True)(torch.ones(2), [])
    line = timed.__code__.co_firstlineno + 2
    assert "`with` over" in str(info.value) and f"test_break_context_managers.py:{line}" in str(info.value)


def test_same_results_as_eager_over_many_inputs():
    fast = jit.compile(body_with_print, backend="eager")
    for n in (1, 2, 3):
        x = torch.arange(float(n))
        assert same(fast(x, []), body_with_print(x, []))


def graph_raises_in_body(x, log, idx):
    with Recorder(log):
        print("resume inside the block")
        y = torch.index_select(x, 0, idx) + 1  # out of range: raised by the compiled graph, not while tracing
    return y


@pytest.mark.parametrize("index", [0, 7])
def test_exception_raised_by_the_graph_reaches_exit(index, capsys):
    log = compare(graph_raises_in_body, torch.ones(3), torch.tensor([index]))
    assert log == [("enter", "m"), ("exit", "m", None if index == 0 else "IndexError")]


def graph_raises_in_try(x, log, idx):
    try:
        print("resume inside the try")
        y = torch.index_select(x, 0, idx) * 2
    except IndexError:
        log.append("caught")
        y = x
    return y


@pytest.mark.parametrize("index", [1, 9])
def test_exception_raised_by_the_graph_reaches_the_frames_handler(index, capsys):
    log = compare(graph_raises_in_try, torch.ones(3), torch.tensor([index]))
    assert log == ([] if index == 1 else ["caught"])


LOCK = __import__("threading").Lock()


def under_a_lock(x, log):
    y = x * 2
    with LOCK:
        log.append(LOCK.locked())  # a call of a built-in: held inside the block
        z = torch.sin(y) + 1
        w = z * z
    log.append(LOCK.locked())
    return w - 1


def test_manager_with_a_builtin_exit_compiles_its_block():
    """threading.Lock's __exit__ is written in C: the block's body is compiled, and the frame breaks again at
    the __exit__ call (it runs for real), instead of running the rest of the block eagerly."""
    log = compare(under_a_lock, torch.randn(5))
    assert log == [True, False]
    compiled_not_eager(3)
    exp = jit.explain(under_a_lock, torch.randn(5), [])
    assert any("__exit__ built in" in r.reason and r.kind == "context_manager" for r in exp.break_reasons)
    assert sum("sin" in g.code for g in exp.graphs) == 1


def raises_under_a_lock(x, log):
    with LOCK:
        y = x * 2
        log.append(LOCK.locked())
        if y.sum() > 0:
            raise ValueError("positive")
        z = y + 1
    return z


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_builtin_exit_sees_the_exception(sign):
    log = compare(raises_under_a_lock, torch.full((3,), sign))
    assert log == [True] and not LOCK.locked()


def reads_a_buffer(x, log, buf):
    with buf:
        y = x + 1
        log.append(buf.getvalue())
        z = y * 3
    log.append(buf.closed)
    return z


def test_io_object_as_manager():
    import io
    fast = jit.compile(reads_a_buffer, backend="eager")
    for _ in range(2):
        eager_log, compiled_log = [], []
        expected = reads_a_buffer(torch.ones(2), eager_log, io.StringIO("text"))
        got = fast(torch.ones(2), compiled_log, io.StringIO("text"))
        assert torch.equal(got, expected) and compiled_log == eager_log == ["text", True]

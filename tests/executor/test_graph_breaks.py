"""Graph breaks: a frame split at code the executor cannot capture, the rest resumed in generated functions.

Each test compares with eager: results, printed output, side effects on inputs and modules, exceptions; and
counts graphs and breaks."""
import traceback

import pytest
import torch

import jit
from tests.executor.break_helpers import both, fresh  # noqa: F401 - fresh: autouse fixture


def print_in_middle(x):
    y = torch.sin(x) * 2
    print("y has shape", tuple(y.shape))
    return torch.cos(y) + 1


def test_print_in_the_middle(capsys):
    x = torch.randn(4)
    expected, got = both(print_in_middle, x)
    torch.testing.assert_close(got, expected)
    assert capsys.readouterr().out.count("y has shape (4,)") == 2  # once eager, once compiled
    exp = jit.explain(print_in_middle, x)
    assert (exp.graph_count, exp.graph_break_count) == (2, 1)
    [reason] = exp.break_reasons
    line = print_in_middle.__code__.co_firstlineno + 2
    assert "print()" in reason.reason and reason.location.endswith(f"test_graph_breaks.py:{line}")
    assert reason.hint


def branchy(x):
    y = x * 3
    if y.sum() > 0:
        return y.relu()
    return y.abs() - 1


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_data_dependent_branch_takes_both_paths(sign):
    x = torch.rand(5) * sign
    expected, got = both(branchy, x)
    torch.testing.assert_close(got, expected)
    assert jit.explain(branchy, x).graph_break_count == 1


def item_in_python(x):
    n = int(x.sum().item()) % 3
    out = x
    for _ in range(n):
        out = out * 2
    return out + n


def test_item_value_used_in_python():
    for v in (1.0, 2.0, 4.0):
        x = torch.full((3,), v)
        expected, got = both(item_in_python, x)
        torch.testing.assert_close(got, expected)


def helper_with_branch(t):
    if t.max() > 0.5:
        return t * 10
    return t


def calls_helper(x):
    a = x + 1
    b = helper_with_branch(a)
    return b - 1


def test_break_inside_inlined_function_breaks_the_caller_at_the_call():
    x = torch.rand(6)
    expected, got = both(calls_helper, x)
    torch.testing.assert_close(got, expected)
    exp = jit.explain(calls_helper, x)
    assert exp.graph_break_count >= 1
    assert any("helper_with_branch" in f for f in exp.frames)  # the callee was compiled on its own


def loop_with_print(x, steps):
    for i in range(steps):
        x = x * 2
        print("step", i)
        x = x + 1
    return x


def test_break_inside_a_loop(capsys):
    x = torch.ones(3)
    expected, got = both(loop_with_print, x, 4)
    torch.testing.assert_close(got, expected)
    out = capsys.readouterr().out
    assert out.count("step 3") == 2
    assert jit.counters.frames_compiled <= 1 + jit.config.cache_size_limit * 2


def append_to_input(xs, t):
    xs.append(t * 2)
    return len(xs), t + 1


def test_mutating_an_input_list():
    a, b = [1], [1]
    t = torch.ones(2)
    expected = append_to_input(a, t)
    got = jit.compile(append_to_input, backend="eager")(b, t)
    assert got[0] == expected[0] and torch.equal(got[1], expected[1])
    assert len(a) == len(b) == 2 and torch.equal(a[1], b[1])


class Counter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x) * self.calls


def test_module_attribute_write():
    torch.manual_seed(0)
    eager, compiled_src = Counter(), Counter()
    compiled_src.load_state_dict(eager.state_dict())
    fast = jit.compile(compiled_src, backend="eager")
    x = torch.randn(2, 3)
    for _ in range(3):
        torch.testing.assert_close(fast(x), eager(x))
    assert compiled_src.calls == eager.calls == 3


TOTAL = 0


def bump_global(x):
    global TOTAL
    TOTAL = TOTAL + 1
    return x * TOTAL


def test_global_write():
    global TOTAL
    TOTAL = 0
    fast = jit.compile(bump_global, backend="eager")
    x = torch.ones(2)
    torch.testing.assert_close(fast(x), x * 1)
    torch.testing.assert_close(fast(x), x * 2)
    assert TOTAL == 2


def fails_after_break(x):
    y = x + 1
    print("about to fail")
    return y + torch.ones(7)  # shape mismatch: raised in the resume function


def test_exception_after_a_break_propagates_with_a_readable_traceback():
    with pytest.raises(RuntimeError, match="size of tensor") as info:
        jit.compile(fails_after_break, backend="eager")(torch.ones(3))
    frames = traceback.extract_tb(info.value.__traceback__)
    # the resume function carries the user's name and line, as eager's traceback shows them
    assert frames[-1].name == "fails_after_break" and "torch.ones(7)" in frames[-1].line, frames


def raises_in_break_call(x):
    y = x * 2
    int("not a number")
    return y


def test_exception_raised_by_the_instruction_at_the_break():
    with pytest.raises(ValueError, match="invalid literal"):
        jit.compile(raises_in_break_call, backend="eager")(torch.ones(2))


def print_under_no_grad(x, w):
    a = x.sum() * 2
    with torch.no_grad():
        y = x @ w
        print("inside")
        z = y * 2
    return a + z, y.requires_grad, z.requires_grad, torch.is_grad_enabled()


def test_break_inside_no_grad_resumes_inside_the_block(capsys):
    x, w = torch.randn(2, 3, requires_grad=True), torch.randn(3, 2, requires_grad=True)
    expected, got = both(print_under_no_grad, x, w)
    assert got[1:] == expected[1:] == (False, False, True)
    torch.testing.assert_close(got[0], expected[0])
    assert got[0].requires_grad
    assert torch.is_grad_enabled()
    assert capsys.readouterr().out == "inside\n" * 2
    # split in two graphs; the resume function re-entered no_grad and compiled too (no eager fallback)
    assert jit.counters["graph_breaks"] == 1 and jit.counters["frames_compiled"] == 2
    assert jit.counters["compile_errors"] == 0


def print_under_enable_grad(x):
    with torch.enable_grad():
        y = x * 3
        print("inside")
        y = y + 1
    return y, torch.is_grad_enabled()


def test_break_inside_enable_grad_under_outer_no_grad(capsys):
    x = torch.randn(3, requires_grad=True)
    with torch.no_grad():
        expected, got = both(print_under_enable_grad, x)
        assert not torch.is_grad_enabled()
    assert got[0].requires_grad and expected[0].requires_grad and got[1] is expected[1] is False
    torch.testing.assert_close(got[0], expected[0])
    assert jit.counters["graph_breaks"] == 1 and jit.counters["compile_errors"] == 0


def nested_grad_modes(x, flag):
    with torch.no_grad():
        a = x + 1
        with torch.enable_grad():
            b = x * 2
            print("deep")
            c = b * a
        d = c + 1
    return d, c.requires_grad, d.requires_grad, torch.is_grad_enabled()


def test_break_inside_nested_grad_modes(capsys):
    x = torch.randn(4, requires_grad=True)
    expected, got = both(nested_grad_modes, x, True)
    assert got[1:] == expected[1:] == (True, False, True)
    torch.testing.assert_close(got[0], expected[0])
    assert jit.counters["compile_errors"] == 0


def raises_under_no_grad(x):
    with torch.no_grad():
        y = x * 3
        print("before")
        if y.sum() > -1e9:
            raise ValueError("boom")
    return y


def test_exception_inside_resumed_with_restores_grad_mode(capsys):
    with pytest.raises(ValueError, match="boom"):
        jit.compile(raises_under_no_grad, backend="eager")(torch.ones(2, requires_grad=True))
    assert torch.is_grad_enabled()


def print_in_user_context(x, log):
    with Recorder(log):
        y = x + 1
        print("inside")
    return y * 2


class Recorder:
    def __init__(self, log):
        self.log = log

    def __enter__(self):
        self.log.append("enter")

    def __exit__(self, *exc):
        self.log.append("exit")


def test_break_inside_user_context_manager_enters_it_once(capsys):
    eager_log, compiled_log = [], []
    expected = print_in_user_context(torch.ones(2), eager_log)
    got = jit.compile(print_in_user_context, backend="eager")(torch.ones(2), compiled_log)
    torch.testing.assert_close(got, expected)
    assert compiled_log == eager_log == ["enter", "exit"]


def handles_exception(x):
    try:
        return x / 0 if x.sum() > 100 else {}["missing"]
    except KeyError:
        return x - 1


def test_try_except_runs_eagerly_and_correctly():
    expected, got = both(handles_exception, torch.ones(2))
    torch.testing.assert_close(got, expected)


def test_fullgraph_refuses_to_break():
    with pytest.raises(jit.GraphBreakError) as info:
        jit.compile(print_in_middle, backend="eager", fullgraph=True)(torch.ones(2))
    line = print_in_middle.__code__.co_firstlineno + 2
    assert "print()" in str(info.value) and f"test_graph_breaks.py:{line}" in str(info.value)


def store_list_on(obj, xs, t):
    obj.items = xs  # a break (attribute write on an outside object) with the input list on the stack
    return t + len(obj.items)


def test_an_input_list_crossing_a_break_keeps_its_identity():
    class Box:
        pass
    xs = [1, 2]
    eager_box, box = Box(), Box()
    expected = store_list_on(eager_box, xs, torch.ones(2))
    got = jit.compile(store_list_on, backend="eager")(box, xs, torch.ones(2))
    torch.testing.assert_close(got, expected)
    assert box.items is xs


@jit.disable
def _parse(text):
    # runs for real: the instruction of a break that raises (int() of a constant alone is followed in the trace,
    # its ValueError caught by the clause without a break)
    return int(text)


def parse_in_try(x, text, log):
    y = x * 2
    try:
        n = _parse(text)        # raises for bad text: the break's instruction, caught below
        print("parsed", n)      # a break inside the try body
        z = y + n
    except ValueError as e:
        log.append(f"bad: {e}")
        z = y - 1
    finally:
        log.append("finally")
    return z * 3


@pytest.mark.parametrize("text", ["4", "zz"])
def test_break_inside_try_except_finally(text, capsys):
    eager_log, compiled_log = [], []
    expected = parse_in_try(torch.ones(2), text, eager_log)
    got = jit.compile(parse_in_try, backend="eager")(torch.ones(2), text, compiled_log)
    torch.testing.assert_close(got, expected)
    assert compiled_log == eager_log  # the handler and the finally block ran exactly once
    out = capsys.readouterr().out
    assert out.count("parsed") == (2 if text == "4" else 0)
    assert jit.counters["graph_breaks"] >= 1


def raises_at_break_under_no_grad(x):
    with torch.no_grad():
        y = x * 2
        print(int("nope"))
    return y


def test_exception_at_the_break_leaves_the_with_block():
    with pytest.raises(ValueError, match="nope"):
        jit.compile(raises_at_break_under_no_grad, backend="eager")(torch.ones(2, requires_grad=True))
    assert torch.is_grad_enabled()


def try_inside_no_grad(x):
    with torch.no_grad():
        try:
            y = x * 2
            print(_parse("bad"))
        except ValueError:
            y = x * 3
        y = y + 1
    return y, y.requires_grad, torch.is_grad_enabled()


def test_exception_at_the_break_caught_inside_a_with_block():
    x = torch.ones(2, requires_grad=True)
    expected, got = both(try_inside_no_grad, x)
    torch.testing.assert_close(got[0], expected[0])
    assert got[1:] == expected[1:] == (False, True)
    assert jit.counters["graph_breaks"] == 1


def unhandled_in_try(x):
    try:
        print(int("x"))
    except KeyError:
        return x
    return x + 1


def test_exception_not_matching_the_handler_propagates():
    with pytest.raises(ValueError):
        jit.compile(unhandled_in_try, backend="eager")(torch.ones(2))


def test_dead_locals_are_not_carried_across_a_break(capsys):
    """A tensor no later code reads is neither a graph output nor a parameter of the resume function
    (jit/liveness.py); one read later, or only by an exception handler, is both."""
    def f(x):
        scaled = x * 1000
        y = scaled.sum() + x
        kept = x - 1
        print("break")
        try:
            out = y * 2
        except RuntimeError:
            return kept
        return out

    graphs = []
    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm
    x = torch.randn(3)
    torch.testing.assert_close(jit.compile(f, backend=backend)(x), f(x))
    [output] = [n for n in graphs[0].graph.nodes if n.op == "output"]
    assert len(output.args[0]) == 2  # y and kept, not scaled
    [resume] = [c for c in jit._C.get_entries(f.__code__)[0].code.co_consts if hasattr(c, "co_varnames")]
    params = resume.co_varnames[:resume.co_argcount]
    assert {p for p in params if not p.startswith("___stack")} == {"y", "kept"}  # x is not read after the print

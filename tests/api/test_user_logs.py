"""Logs in the user's terms: a graph break names the user's innermost frame of their own code, the chain of calls
that led there and the catalogue's hint; a recompile names each failing guard once, by the value's user-visible
source (never a resume function's internal `___stack` parameter), without repeating every earlier entry."""
import inspect
import logging
import os

import pytest
import torch

import jit


@pytest.fixture(autouse=True)
def clean(fresh_jit):
    yield


def _messages(caplog, logger):
    return [r.getMessage() for r in caplog.records if r.name == logger]


def _line(fn, text):
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, line in enumerate(lines) if text in line)


def noisy(labels):
    print("labels", labels.shape)
    return labels


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.loss_fct = torch.nn.CrossEntropyLoss()

    def forward(self, x, labels):
        logits = self.lin(x)
        return self.loss_fct(logits, noisy(labels))


def test_recompile_log_names_a_resumed_stack_value_by_its_source(caplog, capsys):
    jit.set_logs("recompiles")
    x, labels = torch.randn(5, 4), torch.randint(0, 3, (5,))
    with caplog.at_level(logging.DEBUG, logger="jit"):
        for _ in range(2):
            model = Classifier()
            torch.testing.assert_close(jit.compile(model, backend="eager")(x, labels), model(x, labels))
    messages = _messages(caplog, "jit.recompiles")
    resumed = [m for m in messages if "<resume at line" in m]
    assert resumed, messages
    assert "'self.loss_fct' is a different object: expected <CrossEntropyLoss at" in resumed[0]
    assert not any("___stack" in m for m in messages), messages


SCALE = 1


def scaled(x):
    return x * SCALE


def test_recompile_log_says_each_failing_guard_once(caplog):
    global SCALE
    jit.set_logs("recompiles")
    fn = jit.compile(scaled, backend="eager")
    x = torch.ones(3)
    try:
        with caplog.at_level(logging.DEBUG, logger="jit"):
            for SCALE in range(1, 7):
                torch.testing.assert_close(fn(x), x * SCALE)
    finally:
        SCALE = 1
    messages = _messages(caplog, "jit.recompiles")
    assert len(messages) == 5 and "compile 6 of this frame" in messages[-1]
    # every entry fails on the same guard (the global's value): said once, with the latest entry's words
    assert all(m.count("changed") == 1 for m in messages), messages
    assert "global 'SCALE' changed: expected 5, got 6" in messages[-1]


def helper_that_prints(y):
    z = y * 2
    print("in helper")
    return z


def caller(x):
    y = x.sin()
    return helper_that_prints(y) + 1


def test_graph_break_log_shows_the_user_stack_and_the_hint(caplog, capsys):
    jit.set_logs("graph_breaks")
    with caplog.at_level(logging.DEBUG, logger="jit"):
        torch.testing.assert_close(jit.compile(caller, backend="eager")(torch.ones(2)), caller(torch.ones(2)))
    first = _messages(caplog, "jit.graph_breaks")[0]
    here = os.path.abspath(__file__)
    print_line, call_line = _line(helper_that_prints, 'print("in helper")'), _line(caller, "helper_that_prints(y)")
    assert first.startswith(f"Graph break in caller at {here}:{print_line}: print()")
    assert "hint: " in first
    stack = first.split("user stack (most recent call last):\n", 1)[1].splitlines()
    assert stack[0].strip() == f'File "{here}", line {call_line}, in caller'
    assert stack[1].strip() == f'File "{here}", line {print_line}, in helper_that_prints'


def _library_function():
    """A function whose file is inside torch's package: the skip rules count it as library code (only its file
    name is inside torch; nothing is written there)."""
    path = os.path.join(os.path.dirname(torch.__file__), "_framejit_log_test_library.py")
    source = "def library_step(x):\n    y = x + 1\n    print('inside a library')\n    return y\n"
    namespace = {}
    exec(compile(source, path, "exec"), namespace)
    return namespace["library_step"]


library_step = _library_function()


def calls_library(x):
    y = x.cos()
    return library_step(y) * 3


def test_a_break_inside_library_code_points_at_the_users_call(caplog, capsys):
    jit.set_logs("graph_breaks")
    x = torch.ones(2)
    explanation = jit.explain(calls_library, x)
    call_line = _line(calls_library, "library_step(y)")
    here = os.path.abspath(__file__)
    assert explanation.break_reasons[0].location == f"{here}:{call_line}"
    assert explanation.break_reasons[0].hint
    with caplog.at_level(logging.DEBUG, logger="jit"):
        torch.testing.assert_close(jit.compile(calls_library, backend="eager")(x), calls_library(x))
    first = _messages(caplog, "jit.graph_breaks")[0]
    assert f"at {here}:{call_line}:" in first
    assert "(then in library code: torch/_framejit_log_test_library.py:3, calls_library calling library_step)" \
        in first
    with pytest.raises(jit.GraphBreakError, match=rf"test_user_logs.py:{call_line}: print\(\)"):
        jit.compile(calls_library, backend="eager", fullgraph=True)(x)

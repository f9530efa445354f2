"""An import triggered inside compiled code runs the imported module as Python would, and none of its code is
compiled: not its top-level code, not the functions that code calls, not the __init__ a dataclass makes with
exec while it is imported. Compiled code after the import (and a call of that __init__ from compiled code,
which is inlined there like any user function) is unaffected."""
import importlib
import sys

import pytest
import torch

import jit

MODULE = '''
import dataclasses
import torch

CALLS = []

def helper(n):
    CALLS.append(n)
    return torch.arange(float(n)) * 2

TABLE = helper(3)

@dataclasses.dataclass
class Point:
    x: float
    y: float = 2.0

exec("def made(z):\\n    CALLS.append(z)\\n    return z + 1\\nMADE = made(1)\\n")
ORIGIN = Point(1.0)
'''


@pytest.fixture(autouse=True)
def clean(fresh_jit):
    yield


@pytest.fixture
def temp_module(tmp_path, monkeypatch):
    name = f"framejit_compiled_import_{id(tmp_path)}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield name
    sys.modules.pop(name, None)


def _load(name):
    return importlib.import_module(name)


def test_an_imported_modules_code_is_never_compiled(temp_module):
    def user(x):
        y = x.sin()
        module = _load(temp_module)  # the first call imports it
        return y + module.TABLE + module.MADE + module.ORIGIN.y

    explanation = jit.explain(user, torch.ones(3))
    module = sys.modules[temp_module]
    assert module.CALLS == [3, 1]  # its top-level code ran once, as Python runs it
    compiled_names = set(explanation.frames)
    assert not {"helper", "made", "__init__", "__create_fn__", "<module>"} & compiled_names, compiled_names
    assert all(n.startswith("_load") or ".user" in n for n in compiled_names), compiled_names
    assert jit.counters["compile_errors"] == 0

    sys.modules.pop(temp_module)
    jit.counters.clear()
    compiled = jit.compile(user, backend="eager")
    x = torch.randn(3)
    got = compiled(x)
    module = sys.modules[temp_module]  # imported again, by the compiled call
    torch.testing.assert_close(got, x.sin() + module.TABLE + 2 + 2.0)
    assert module.CALLS == [3, 1]
    assert jit.counters["compile_errors"] == 0
    init = module.Point.__init__.__code__
    assert jit.eval_frame.get_entries(init) == [] and jit.eval_frame.get_mode(init) == "ask"
    assert jit.eval_frame.get_entries(module.helper.__code__) == []


def test_dataclass_made_during_import_is_inlined_when_compiled_code_calls_it(temp_module):
    module = _load(temp_module)

    def user(x):
        p = module.Point(2.0)
        return x * p.x + p.y

    explanation = jit.explain(user, torch.ones(2))
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    compiled = jit.compile(user, backend="eager")
    torch.testing.assert_close(compiled(torch.ones(2)), torch.full((2,), 4.0))


def test_an_import_statement_of_a_new_module_breaks_there_and_the_rest_compiles(tmp_path, monkeypatch):
    # `import m` of a module not imported yet is a graph break at IMPORT_NAME: the import runs for real, the
    # rest of the function is compiled (it used to run the whole function eagerly, on every later call too)
    name = f"framejit_import_stmt_{id(tmp_path)}"
    (tmp_path / f"{name}.py").write_text("SCALE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    source = f"def f(x):\n    y = x + 1\n    import {name} as m\n    return y * m.SCALE\n"
    scope: dict = {}
    exec(compile(source, str(tmp_path / "user_code.py"), "exec"), scope)
    f = scope["f"]
    try:
        fast = jit.compile(f)
        for _ in range(3):
            torch.testing.assert_close(fast(torch.ones(2)), torch.full((2,), 6.0))
        assert jit.counters["graph_breaks"] == 1 and jit.counters["frames_run_eagerly"] == 0
        assert jit.counters["graphs"] == 2
    finally:
        sys.modules.pop(name, None)

"""An import run under the hook: nothing the imported module runs (its top-level code, the functions that code
calls, code made by exec while it runs) reaches the frame compiler; the importlib function running it is marked
SUSPEND once, so other frames pay nothing."""
import importlib
import sys
import threading

import pytest

from jit import eval_frame, skip_rules
from jit.convert_frame import FrameConverter, RunEagerly, Settings

MODULE = '''
def helper(n):
    return n * 2

VALUE = helper(21)

exec("def made(z):\\n    return z + 1\\nMADE = made(1)\\n")

class Box:
    def __init__(self, v):
        self.v = v

BOX = Box(VALUE)
'''


class Recorder:
    """A frame compiler that records which codes it was asked for and compiles none."""

    def __init__(self):
        self.asked = []

    def __call__(self, frame, settings):
        self.asked.append(frame.code.co_name)
        raise RunEagerly("recording only")


@pytest.fixture
def temp_module(tmp_path, monkeypatch):
    name = f"framejit_import_probe_{id(tmp_path)}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield name
    sys.modules.pop(name, None)


def test_a_module_imported_under_the_hook_runs_untouched(temp_module):
    recorder = Recorder()

    def user(n):
        module = importlib.import_module(temp_module)
        return module.VALUE + module.MADE + n

    def after(n):
        return n + 1

    with eval_frame.callback_installed(FrameConverter(Settings(), recorder)):
        assert user(1) == 42 + 2 + 1
        assert after(1) == 2  # frames after the import are intercepted again
    assert "user" in recorder.asked and "after" in recorder.asked
    assert not {"helper", "made", "__init__", "<module>"} & set(recorder.asked), recorder.asked
    find_and_load = sys.modules["_frozen_importlib"]._find_and_load.__code__
    assert eval_frame.get_mode(find_and_load) == "suspend"
    assert sys.modules[temp_module].BOX.v == 42


def test_reload_and_import_statements_are_suspended_too(temp_module):
    recorder = Recorder()
    namespace = {}
    exec(f"def user():\n    import {temp_module} as m\n    return m.VALUE\n", namespace)
    with eval_frame.callback_installed(FrameConverter(Settings(), recorder)):
        assert namespace["user"]() == 42
        importlib.reload(sys.modules[temp_module])
    assert recorder.asked == ["user"]


def test_suspension_is_per_thread_and_ends_with_the_import(temp_module):
    """A thread compiling while another imports keeps being intercepted."""
    recorder = Recorder()
    started, release = threading.Event(), threading.Event()

    def other_thread_work(x):
        return x - 1

    def busy():
        with eval_frame.callback_installed(FrameConverter(Settings(), recorder)):
            started.set()
            release.wait(10)
            other_thread_work(1)

    thread = threading.Thread(target=busy)
    thread.start()
    started.wait(10)
    with eval_frame.callback_installed(FrameConverter(Settings(), recorder)):
        importlib.import_module(temp_module)
    release.set()
    thread.join()
    assert "other_thread_work" in recorder.asked and "helper" not in recorder.asked


def test_the_import_codes_are_importlibs_own():
    bootstrap = sys.modules["_frozen_importlib"]
    assert skip_rules.runs_imports(bootstrap._find_and_load.__code__)
    assert not skip_rules.runs_imports(bootstrap._gcd_import.__code__)
    assert not skip_rules.runs_imports(test_the_import_codes_are_importlibs_own.__code__)

"""The hook on and off, nesting, threads, generators, recursion."""
import asyncio
import sys
import threading

import pytest

import jit
from jit import eval_frame

from .helpers import Replacer


def plain(x):
    return ("plain", x)


def fast(x):
    return ("fast", x)


def test_off_by_default_and_restored():
    r = Replacer().replace(plain, fast)
    assert plain(1) == ("plain", 1)
    with eval_frame.callback_installed(r.converter()):
        assert eval_frame.get_callback() is not None
        assert plain(1) == ("fast", 1)
    assert eval_frame.get_callback() is None
    assert plain(1) == ("plain", 1)


def test_restored_after_exception():
    r = Replacer().replace(plain, fast)
    try:
        with eval_frame.callback_installed(r.converter()):
            raise KeyError("boom")
    except KeyError:
        pass
    assert eval_frame.get_callback() is None


def test_nested_optimize_contexts_restore_in_order():
    outer, inner = jit.optimize(backend="eager"), jit.optimize(backend="eager", fullgraph=True)
    with outer:
        first = eval_frame.get_callback()
        with inner:
            assert eval_frame.get_callback() is not first
        assert eval_frame.get_callback() is first
    assert eval_frame.get_callback() is None


def test_same_context_object_reentrant():
    ctx = jit.optimize(backend="eager")
    with ctx:
        cb = eval_frame.get_callback()
        with ctx:
            assert eval_frame.get_callback() is cb
        assert eval_frame.get_callback() is cb
    assert eval_frame.get_callback() is None


def test_callback_is_per_thread():
    r = Replacer().replace(plain, fast)
    seen = {}

    def other():
        seen["cb"] = eval_frame.get_callback()
        seen["result"] = plain(2)

    with eval_frame.callback_installed(r.converter()):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert plain(2) == ("fast", 2)
    assert seen == {"cb": None, "result": ("plain", 2)}


def test_eight_threads_compiled_and_plain_at_once():
    r = Replacer().replace(plain, fast)
    conv = r.converter()
    errors, barrier = [], threading.Barrier(8)

    def worker(i):
        try:
            barrier.wait()
            for n in range(2000):
                if i % 2:
                    with eval_frame.callback_installed(conv):
                        assert plain(n) == ("fast", n)
                else:
                    assert plain(n) == ("plain", n)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(r.compiled) >= 1


def countdown(n):
    return 0 if n == 0 else 1 + countdown(n - 1)


def countdown_fast(n):
    # Same recursion, but the value proves the replacement ran at every level.
    return 0 if n == 0 else 2 + countdown(n - 1)


def test_recursion_depth_500_under_the_hook():
    r = Replacer().replace(countdown, countdown_fast)
    with eval_frame.callback_installed(r.converter()):
        assert countdown(500) == 1000
    assert countdown(500) == 500


def gen(n):
    yield from range(n)


async def coro(x):
    await asyncio.sleep(0)
    return x * 2


async def agen(n):
    for i in range(n):
        yield i


def test_generators_and_coroutines_untouched():
    calls = []

    def callback(code, fn, args):
        calls.append(code.co_name)
        return None

    async def collect():
        return [i async for i in agen(3)]

    with eval_frame.callback_installed(callback):
        assert list(gen(3)) == [0, 1, 2]
        assert asyncio.run(coro(4)) == 8
        assert asyncio.run(collect()) == [0, 1, 2]
    assert not {"gen", "coro", "agen"} & set(calls)
    for f in (gen, coro, agen):
        assert eval_frame.get_mode(f.__code__) == "skip"


def test_frames_created_inside_the_callback_are_not_intercepted():
    seen = []

    def helper():
        return 1

    def callback(code, fn, args):
        seen.append(code.co_name)
        helper()  # would recurse into the callback if the hook intercepted it
        return None

    with eval_frame.callback_installed(callback):
        plain(1)
    assert "plain" in seen and "helper" not in seen


def test_started_frames_and_class_bodies_untouched():
    seen = []

    def callback(code, fn, args):
        seen.append(code.co_name)
        return None

    with eval_frame.callback_installed(callback):
        class Local:  # class body: not CO_OPTIMIZED
            x = 1
        exec("y = 2", {})
    assert "Local" not in seen and "<module>" not in seen


def tracer_helper(event):
    return event.upper()


def test_a_tracer_and_a_profiler_own_frames_are_never_intercepted():
    # a sys.settrace / setprofile callback runs with the thread's tracing count raised: its frames (and what it
    # calls) run as they are, so a tracer that records events does not compile itself, event after event
    r = Replacer().replace(plain, fast).replace(tracer_helper, lambda event: "compiled")
    events = []

    def tracer(frame, event, arg):
        events.append(tracer_helper(event))
        return None

    for install in (sys.settrace, sys.setprofile):
        events.clear()
        install(tracer)
        try:
            with eval_frame.callback_installed(r.converter()):
                result = plain(1)
        finally:
            install(None)
        assert result == ("fast", 1)  # the traced program's own frame is still replaced
        assert events and "compiled" not in events  # the callback's helper ran as itself
    assert all(args == (1,) for args in r.compiled)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+ (tests/other_pythons.sh runs it)")
def test_sys_monitoring_callbacks_are_never_intercepted():
    r = Replacer().replace(plain, fast).replace(tracer_helper, lambda event: "compiled")
    mon, tool = sys.monitoring, 3
    seen = []
    mon.use_tool_id(tool, "framejit-test")
    try:
        mon.register_callback(tool, mon.events.PY_START, lambda code, offset: seen.append(tracer_helper("start")))
        mon.set_events(tool, mon.events.PY_START)
        with eval_frame.callback_installed(r.converter()):
            result = plain(1)
        mon.set_events(tool, 0)
    finally:
        mon.register_callback(tool, mon.events.PY_START, None)
        mon.free_tool_id(tool)
    assert result == ("fast", 1)
    assert seen and "compiled" not in seen

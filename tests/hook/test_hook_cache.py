"""Cache hits, misses, most-recently-used order, the cache limit, reset, skip rules."""
import gc
import os
import warnings
import weakref

import pytest

import jit
from jit import eval_frame, skip_rules
from jit.convert_frame import Settings

from .helpers import Replacer, same_first_arg


def square(x):
    return x * x


def square_fast(x):
    return ("fast", x * x)


def test_hit_miss_and_recompile_counts():
    jit.counters.clear()
    r = Replacer().replace(square, square_fast, guard_for=same_first_arg)
    with eval_frame.callback_installed(r.converter()):
        assert square(3) == ("fast", 9)
        assert square(3) == ("fast", 9)
        assert square(4) == ("fast", 16)
    assert len(r.compiled) == 2
    assert jit.counters.cache_hits == 1
    assert jit.counters.recompiles == 1
    assert jit.counters.frames_compiled == 2


def test_most_recently_used_entry_comes_first():
    r = Replacer().replace(square, square_fast, guard_for=same_first_arg)
    with eval_frame.callback_installed(r.converter()):
        for v in (1, 2, 3, 1):
            square(v)
    hits_by_first_arg = [e.hits for e in eval_frame.get_entries(square.__code__)]
    assert hits_by_first_arg == [2, 1, 1]  # the entry for 1 moved to the front on its hit
    assert len(r.compiled) == 3


def test_entries_of_other_settings_are_not_used():
    r = Replacer().replace(square, square_fast)
    with eval_frame.callback_installed(r.converter(backend="eager")):
        square(2)
    with eval_frame.callback_installed(r.converter(backend="inductor")):
        square(2)
    assert len(r.compiled) == 2


def test_cache_limit_warns_once_and_keeps_running(monkeypatch):
    monkeypatch.setattr(jit.config, "cache_size_limit", 3)
    r = Replacer().replace(square, square_fast, guard_for=same_first_arg)
    with eval_frame.callback_installed(r.converter()):
        for v in range(3):
            assert square(v) == ("fast", v * v)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert square(10) == 100  # over the limit: runs the original
            assert square(11) == 121
        assert square(1) == ("fast", 1)  # existing entries keep running
    assert len(r.compiled) == 3
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "cache_size_limit" in messages[0] and "square" in messages[0]
    assert eval_frame.get_mode(square.__code__) == "run_only"


def test_reset_frees_entries_and_their_code():
    r = Replacer().replace(square, square_fast)
    with eval_frame.callback_installed(r.converter()):
        square(2)
    [entry] = eval_frame.get_entries(square.__code__)
    code_ref = weakref.ref(entry.code)
    guard_ref = weakref.ref(entry.guard)
    del entry
    jit.reset()
    gc.collect()
    assert eval_frame.get_entries(square.__code__) == []
    assert code_ref() is None and guard_ref() is None
    with eval_frame.callback_installed(r.converter()):
        assert square(2) == ("fast", 4)  # compiles again after reset
    assert len(r.compiled) == 2


def test_skip_mode_means_the_callback_is_never_asked_again():
    calls = []

    def callback(code, fn, args):
        calls.append(code)
        return eval_frame.SKIP

    with eval_frame.callback_installed(callback):
        square(1)
        square(2)
    assert calls.count(square.__code__) == 1


def test_disable_turns_the_hook_off_inside():
    r = Replacer().replace(square, square_fast)

    @jit.disable
    def run_plain(x):
        return square(x)

    with eval_frame.callback_installed(r.converter()):
        assert run_plain(3) == 9
        assert square(3) == ("fast", 9)


def test_skip_rules():
    import json.decoder
    assert skip_rules.skip_reason(json.decoder.JSONDecoder.decode.__code__) == "standard library"
    assert skip_rules.skip_reason(os.path.join.__code__) is not None  # frozen on some builds
    assert skip_rules.skip_reason(pytest.raises.__code__) is not None
    assert skip_rules.skip_reason(jit.api.compile.__code__) is not None
    assert skip_rules.skip_reason(square.__code__) is None


def test_compile_settings_are_validated():
    with pytest.raises(jit.BackendError, match="unknown backend 'nope'"):
        jit.compile(square, backend="nope")
    with pytest.raises(TypeError, match="fullgraph"):
        jit.compile(square, fullgraph="yes")
    with pytest.raises(TypeError, match="function or an nn.Module"):
        jit.compile(42)
    assert Settings() == Settings("inductor", False, None)

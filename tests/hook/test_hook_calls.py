"""Arguments, closures, exceptions and tracebacks through replacement code."""
import sys
import traceback

import pytest

from jit import eval_frame
from jit.calling_convention import argument_names, as_replacement, bind_vector

from .helpers import Replacer


def signature_zoo(a, b=2, /, c=3, *args, d, e=5, **kwargs):
    return ("orig", a, b, c, args, d, e, kwargs)


def signature_zoo_fast(a, b=2, /, c=3, *args, d, e=5, **kwargs):
    return ("fast", a, b, c, args, d, e, kwargs)


@pytest.mark.parametrize("call_args,call_kwargs", [
    ((1,), {"d": 4}),
    ((1, 20, 30, 40, 50), {"d": 4, "e": 6, "z": 7}),
    ((1,), {"c": 9, "d": 4, "q": 1}),
])
def test_every_kind_of_parameter_reaches_the_replacement(call_args, call_kwargs):
    r = Replacer().replace(signature_zoo, signature_zoo_fast)
    expected = signature_zoo(*call_args, **call_kwargs)
    with eval_frame.callback_installed(r.converter()):
        got = signature_zoo(*call_args, **call_kwargs)
    assert got == ("fast",) + expected[1:]
    assert r.compiled[0] == bind_vector(signature_zoo, call_args, call_kwargs)


def test_argument_names_follow_co_varnames():
    assert argument_names(signature_zoo.__code__) == ("a", "b", "c", "d", "e", "args", "kwargs")


def make_counter(start):
    count = start

    def bump(by):
        nonlocal count
        count += by
        return count

    def bump_fast(by):
        nonlocal count
        count += 10 * by
        return count

    return bump, bump_fast


def test_closures_and_cells_reach_the_replacement():
    bump1, fast1 = make_counter(0)
    bump2, _ = make_counter(100)
    r = Replacer().replace(bump1, fast1)  # bump1 and bump2 share one code object
    with eval_frame.callback_installed(r.converter()):
        assert bump1(1) == 10
        assert bump2(1) == 110  # same code, the second closure's cell
        assert bump1(2) == 30
    assert bump1(1) == 31


def test_guard_receives_the_frame_function_last():
    # Functions sharing one code object share entries; a guard tells them apart by the function's cells.
    bump1, fast1 = make_counter(0)
    bump2, _ = make_counter(1000)
    seen = []

    def guard_for(args):
        def guard(by, fn):
            seen.append(fn)
            return fn.__closure__[0].cell_contents < 1000
        return guard

    r = Replacer().replace(bump1, fast1, guard_for=guard_for)
    with eval_frame.callback_installed(r.converter()):
        bump1(1)   # compiled; runs the new entry without a guard check
        bump1(1)   # guard passes for bump1's cell
        bump2(1)   # guard fails on bump2's cell -> compiled again
    assert seen[0] is bump1 and seen[-1] is bump2
    assert len(r.compiled) == 2


def cell_arg(x):
    def inner():
        return x
    return ("orig", inner())


def cell_arg_fast(x):
    def inner():
        return x * 2
    return ("fast", inner())


def test_argument_that_is_also_a_cell():
    r = Replacer().replace(cell_arg, cell_arg_fast)
    with eval_frame.callback_installed(r.converter()):
        assert cell_arg(21) == ("fast", 42)


def raises(x):
    return x


def raises_fast(x):
    raise ValueError(f"bad {x}")


def test_exception_from_replacement_propagates_with_traceback():
    r = Replacer().replace(raises, raises_fast)
    with eval_frame.callback_installed(r.converter()):
        with pytest.raises(ValueError, match="bad 3") as info:
            raises(3)
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "raises_fast"


def test_exception_from_callback_propagates():
    def callback(code, fn, args):
        if code is raises.__code__:
            raise LookupError("callback failed")
        return None

    with eval_frame.callback_installed(callback):
        with pytest.raises(LookupError, match="callback failed"):
            raises(1)
        assert signature_zoo(1, d=2)[0] == "orig"  # other frames still run after the error


def test_exception_from_guard_propagates():
    def bad_guard(*args):
        raise ArithmeticError("guard failed")

    def callback(code, fn, args):
        if code is raises.__code__:
            return eval_frame.CacheEntry(bad_guard, as_replacement(raises_fast.__code__))
        return None

    with eval_frame.callback_installed(callback):
        with pytest.raises(ValueError):
            raises(1)  # first call runs the new entry without a guard check
        with pytest.raises(ArithmeticError, match="guard failed"):
            raises(1)


def test_bad_callback_results_raise_typeerror_not_crash():
    def two_args(x, y):
        return x

    def returns_junk(code, fn, args):
        return 42 if code is raises.__code__ else None

    def wrong_signature(code, fn, args):
        if code is raises.__code__:
            return eval_frame.CacheEntry(lambda *a: True, two_args.__code__)
        return None

    for cb, message in ((returns_junk, "must return None, SKIP"), (wrong_signature, "plain positional")):
        with eval_frame.callback_installed(cb):
            with pytest.raises(TypeError, match=message):
                raises(1)


def test_as_replacement_rejects_other_arity():
    with pytest.raises(TypeError, match="takes"):
        as_replacement(raises.__code__, signature_zoo.__code__)


def test_refcounts_are_balanced_over_100k_calls():
    r = Replacer().replace(raises, signature_zoo_fast.__code__ and raises)  # identity replacement
    payload = object()
    with eval_frame.callback_installed(r.converter()):
        raises(payload)
        before = sys.getrefcount(payload)
        blocks = sys.getallocatedblocks()
        for _ in range(100_000):
            raises(payload)
        grew = sys.getallocatedblocks() - blocks
        after = sys.getrefcount(payload)
    assert after == before
    assert grew < 1000, f"{grew} blocks allocated and not freed over 100k calls"
    entry = eval_frame.get_entries(raises.__code__)[0]
    assert entry.hits == 100_001

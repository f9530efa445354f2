"""Issue 24: capture and guards cost what the code reads of a list or dict from outside, not the container's size
(jit/variables/outside.py). A module-level list appended to on every call compiles once, and a call costs the
same at any length; reads see the writes made before them; reading the length or every item still guards them."""
import random
import sys
import time
import warnings

import pytest
import torch

import jit


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    jit.reset()


def _define(source: str, **globals_):
    """The function `f` defined by `source` over its own module globals (a new code object each time, so its
    cache entries are its own), with the globals `globals_` and torch."""
    namespace = {"torch": torch, **globals_}
    exec(compile(source, f"<{source.splitlines()[0]}>", "exec"), namespace)  # noqa: S102 - test code
    return namespace["f"]


APPEND = """
def f(x):
    BIG.append(1)
    return x + 1
"""

STORE = """
def f(x):
    D["k"] = 1
    return x + 1
"""


def test_a_big_global_list_appended_to_compiles_once_and_ends_as_eager():
    big, eager_big = list(range(100_000)), list(range(100_000))
    fast, eager = jit.compile(_define(APPEND, BIG=big)), _define(APPEND, BIG=eager_big)
    x = torch.randn(3)
    for _ in range(5):
        torch.testing.assert_close(fast(x), eager(x))
    assert jit.counters.frames_compiled == 1 and jit.counters.recompiles == 0, jit.counters
    assert big == eager_big and len(big) == 100_005
    guards = jit.explain(_define(APPEND, BIG=list(range(1000))), x).guards
    assert not any("len(" in g or "[0]" in g for g in guards), guards  # the list's type only


def test_a_big_global_dict_stored_to_compiles_once_and_ends_as_eager():
    d, eager_d = {i: i for i in range(100_000)}, {i: i for i in range(100_000)}
    fast, eager = jit.compile(_define(STORE, D=d)), _define(STORE, D=eager_d)
    x = torch.randn(3)
    for _ in range(5):
        torch.testing.assert_close(fast(x), eager(x))
    assert jit.counters.frames_compiled == 1 and jit.counters.recompiles == 0, jit.counters
    assert d == eager_d and list(d)[-1] == "k" and len(d) == 100_001


def _per_call(fn, x, calls: int = 30) -> float:
    for _ in range(3):  # compile and warm up
        fn(x)
    best = float("inf")
    for _ in range(calls):
        t = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t)
    return best


def test_per_call_cost_does_not_grow_with_the_container():
    # the one timing assert the issue asks for: kept loose (2x), minimum over calls after warm-up
    x = torch.randn(3)
    small_list = _per_call(jit.compile(_define(APPEND, BIG=list(range(10)))), x)
    big_list = _per_call(jit.compile(_define(APPEND, BIG=list(range(100_000)))), x)
    small_dict = _per_call(jit.compile(_define(STORE, D={i: i for i in range(10)})), x)
    big_dict = _per_call(jit.compile(_define(STORE, D={i: i for i in range(100_000)})), x)
    assert big_list < 2 * small_list, (big_list, small_list)
    assert big_dict < 2 * small_dict, (big_dict, small_dict)


def test_reads_after_writes_see_them():
    src = """
def f(x):
    BIG.append(x * 2)
    last, before = BIG[-1], BIG[-2]
    BIG[-2] = before + 10
    return last + 1, BIG[-2], BIG[0]
"""
    big, eager_big = list(range(1000)), list(range(1000))
    fast, eager = jit.compile(_define(src, BIG=big)), _define(src, BIG=eager_big)
    for i in range(3):
        x = torch.full((2,), float(i))
        torch.testing.assert_close(fast(x), eager(x))
    assert jit.counters.frames_compiled == 2, jit.counters  # BIG[-2] is an int the first time, a tensor after
    assert len(big) == len(eager_big) == 1003
    for a, b in zip(big[-4:], eager_big[-4:]):
        torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b))


def test_pop_from_the_end_reaches_entry_items():
    src = """
def f(x):
    STACK.append(x)
    a = STACK.pop()
    b = STACK.pop()
    c = STACK.pop()
    STACK.append(b + c)
    return a * b * c, bool(STACK)
"""
    def make():
        return [torch.tensor(float(i)) for i in range(500)]

    stack, eager_stack = make(), make()
    fast, eager = jit.compile(_define(src, STACK=stack)), _define(src, STACK=eager_stack)
    for i in range(4):
        x = torch.tensor(float(i))
        got, expected = fast(x), eager(x)
        torch.testing.assert_close(got[0], expected[0])
        assert got[1] is expected[1] is True
    torch.testing.assert_close(stack, eager_stack)
    assert jit.counters.frames_compiled == 1, jit.counters  # the items read are tensors: guarded by metadata


def test_reading_the_length_guards_it():
    src = """
def f(x):
    BIG.append(1)
    return x + len(BIG)
"""
    big = list(range(100))
    fast = jit.compile(_define(src, BIG=big))
    for n in range(3):
        torch.testing.assert_close(fast(torch.zeros(2)), torch.full((2,), 101.0 + n))
    assert jit.counters.frames_compiled == 3 and jit.counters.recompiles == 2, jit.counters
    assert big == list(range(100)) + [1] * 3


def test_iterating_after_writes_sees_eager_contents():
    src = """
def f(x):
    BIG.append(2)
    BIG[0] = BIG[0] + 1
    total = 0
    for v in BIG:
        total += v
    return x + total, BIG.pop()
"""
    big, eager_big = list(range(50)), list(range(50))
    fast, eager = jit.compile(_define(src, BIG=big)), _define(src, BIG=eager_big)
    for _ in range(3):
        got, expected = fast(torch.zeros(2)), eager(torch.zeros(2))
        torch.testing.assert_close(got[0], expected[0])
        assert got[1] == expected[1]
    assert big == eager_big


def test_dict_reads_stores_and_deletes_keep_eager_order():
    src = """
def f(x):
    had = "a" in D
    v = D.pop("a", 0)
    D["a"] = v + 1           # deleted then stored: goes last, as in Python
    D[1] = D.get(1, 0) + 2   # stored over an entry key: keeps its place
    D.setdefault("n", 7)
    if "gone" in D:
        del D["gone"]
    return x * D["a"], had, bool(D)
"""
    def make():
        return {1: 1, "a": 5, "gone": 0, 2: 2}

    d, eager_d = make(), make()
    fast, eager = jit.compile(_define(src, D=d)), _define(src, D=eager_d)
    for _ in range(3):
        got, expected = fast(torch.ones(2)), eager(torch.ones(2))
        torch.testing.assert_close(got[0], expected[0])
        assert got[1:] == expected[1:]
        assert list(d.items()) == list(eager_d.items())


def test_a_missing_key_raises_as_eager():
    src = """
def f(x):
    try:
        return x * D["missing"]
    except KeyError:
        return x
"""
    d = {i: i for i in range(10_000)}
    fast = jit.compile(_define(src, D=d))
    torch.testing.assert_close(fast(torch.ones(2)), torch.ones(2))
    d["missing"] = 3
    torch.testing.assert_close(fast(torch.ones(2)), torch.full((2,), 3.0))  # KeyIn failed: compiled again
    assert jit.counters.frames_compiled == 2, jit.counters


def test_one_list_passed_twice_is_not_two_lists():
    # the trace keeps two outside lists apart (writes to one are not seen through the other): guarded so
    def f(x, a, b):
        a.append(1)
        b.append(2)
        return x + b[-2]

    fast = jit.compile(f)
    fast(torch.zeros(1), [0], [0])
    shared, eager_shared = [0], [0]
    torch.testing.assert_close(fast(torch.zeros(1), shared, shared), f(torch.zeros(1), eager_shared, eager_shared))
    assert shared == eager_shared == [0, 1, 2]
    assert jit.counters.frames_compiled == 2, jit.counters


def test_writes_to_a_list_inside_a_changed_list_reach_the_right_list():
    # xs[-1] names another list once xs is appended to: every object written is loaded before any write
    src = """
def f(x):
    XS.append([])
    XS[-2].append(5)
    XS[0].append(4)
    return x * len(XS[-1])
"""
    xs, eager_xs = [[1], [2]], [[1], [2]]
    fast, eager = jit.compile(_define(src, XS=xs)), _define(src, XS=eager_xs)
    for _ in range(2):
        torch.testing.assert_close(fast(torch.ones(2)), eager(torch.ones(2)))
        assert xs == eager_xs


def test_identity_and_type_checks_do_not_read_the_container():
    def f(x, cache=None, d=None):
        if cache is not None and isinstance(cache, list):
            cache.append(x)
        if d is not None and isinstance(d, dict):
            d["last"] = x
        return x + 1

    cache, d = list(range(10_000)), {i: i for i in range(10_000)}
    fast = jit.compile(f)
    for _ in range(3):
        fast(torch.ones(2), cache, d)
    assert jit.counters.frames_compiled == 1, jit.counters
    assert len(cache) == 10_003 and list(d)[-1] == "last" and len(d) == 10_001


def test_a_comprehension_resumed_after_a_break_keeps_its_list():
    # fuzz seed 1161: the list a comprehension builds reaches its resume function as an argument; it is rebuilt
    # from its items from then on, so it is read whole (and guarded) first
    def f(x0):
        try:
            x0 & x0  # float tensors: raises for real, the frame breaks and its rest runs eagerly
        except Exception:
            pass
        return [t * 2 for t in x0]

    fast = jit.compile(f, backend="eager")
    for n in (1, 1, 2, 3):
        x = torch.randn(n, 1, 1)
        got, expected = fast(x), f(x)
        assert len(got) == len(expected) == n
        torch.testing.assert_close(got, expected)


def test_a_tracer_logging_events_to_a_list_compiles_once():
    # the third case: a trace function appending to a long log on every call (called here as
    # sys.settrace would call it: whether the hook intercepts frames a trace callback runs is not this test's)
    events = list(range(50_000))

    def tracer(frame, event, arg):
        events.append(event)
        return None

    fast_tracer, frame = jit.compile(tracer), sys._getframe()
    for _ in range(4):
        assert fast_tracer(frame, "call", None) is None
    assert events[50_000:] == ["call"] * 4
    assert jit.counters.frames_compiled == 1, jit.counters


# Random sequences of the operations jit/semantics/outside_containers.py answers lazily (and some that read the
# whole container), on a list and a dict passed in: each call's result and the containers after it match eager's.
_LIST_OPS = ["L.append({v})", "L.append(x * {v})", "L.extend([{v}, {v}])", "r.append(L.pop())", "r.append(L[{i}])",
             "r.append(L[-{k}])", "L[{i}] = {v}", "L[-{k}] = x + {v}", "r.append(len(L))", "r.append(bool(L))",
             "L += [{v}]", "r.append(sum(1 for _ in L))"]
_DICT_OPS = ["D[{key}] = {v}", "D[{key}] = x * {v}", "r.append(D.get({key}, -1))", "r.append({key} in D)",
             "r.append(D.pop({key}, -2))", "D.setdefault({key}, {v})", "r.append(len(D))", "r.append(bool(D))",
             "r.append(list(D))"]


def _random_program(rng: random.Random) -> str:
    lines = ["def f(x, L, D):", "    r = []"]
    for _ in range(rng.randint(1, 12)):
        op = rng.choice(_LIST_OPS + _DICT_OPS).format(
            v=rng.randint(0, 9), i=rng.randint(0, 6), k=rng.randint(1, 6),
            key=rng.choice(["'a'", "'b'", "1", "2", "True", "None"]))
        lines += ["    try:", f"        {op}", "    except (IndexError, KeyError) as e:",
                  "        r.append(type(e).__name__)"]
    return "\n".join(lines + ["    return r", ""])


def _plain(v):
    if isinstance(v, torch.Tensor):
        return ("tensor", v.tolist())
    if isinstance(v, list):
        return [_plain(a) for a in v]
    if isinstance(v, dict):
        return [(k, _plain(a)) for k, a in v.items()]
    return v


@pytest.mark.parametrize("seed", range(40))
def test_random_list_and_dict_operations_match_eager(seed):
    rng = random.Random(seed)
    source = _random_program(rng)
    items = [rng.randint(0, 9) for _ in range(rng.randint(0, 6))]
    keys = rng.sample(["a", "b", 1, 2, None, "c"], rng.randint(0, 4))
    eager_args = (list(items), {k: rng.randint(0, 9) for k in keys})
    compiled_args = (list(eager_args[0]), dict(eager_args[1]))
    eager, fast = _define(source), jit.compile(_define(source), backend="eager")
    for call in range(4):
        x = torch.full((1,), float(call))
        expected, got = eager(x, *eager_args), fast(x, *compiled_args)
        assert _plain(got) == _plain(expected), source
        assert _plain(compiled_args) == _plain(eager_args), source

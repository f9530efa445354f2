"""jit/liveness.py: the locals a resume function is given, read off the bytecode of every CPython version
tests/other_pythons.sh runs (3.12 inlines comprehensions with LOAD_FAST_AND_CLEAR, 3.13 fuses LOAD_FAST pairs).
Each function marks its break point with a call of `here()`; liveness is asked for right after it."""
from jit.instructions import decode
from jit.liveness import live_locals


def here():
    pass


def _after_here(fn) -> int:
    insts = decode(fn.__code__)
    call = next(i for i, inst in enumerate(insts) if inst.opname == "LOAD_GLOBAL" and inst.arg[1] == "here")
    return next(i for i in range(call, len(insts)) if insts[i].opname == "POP_TOP") + 1


def _live(fn) -> set:
    return live_locals(fn.__code__, _after_here(fn))


def straight(x, y):
    a = x + 1
    b = y * 2
    here()
    return a + 1


def overwritten_first(x):
    a = x + 1
    here()
    a = 3
    return a


def either_branch(x, flag):
    a = x + 1
    b = x + 2
    c = x + 3
    here()
    if flag:
        return a
    return b


def in_a_loop(xs):
    total = 0
    last = None
    here()
    for x in xs:
        last = x
        total = total + x
    return total


def read_by_handler(x):
    a = x + 1
    b = x + 2
    here()
    try:
        b = 1 / x
    except ZeroDivisionError:
        return a
    return b


def deleted(x):
    a = x + 1
    here()
    del a
    return x


def comprehension(xs, k):
    scale = 2
    unused = k
    here()
    return [x * scale for x in xs]


def introspects(x):
    a = x + 1
    here()
    return locals()


def test_only_locals_read_later_are_live():
    assert _live(straight) == {"a"}
    assert _live(overwritten_first) == set()
    assert _live(either_branch) == {"a", "b", "flag"}


def test_loops_keep_what_the_loop_reads():
    assert _live(in_a_loop) == {"xs", "total"}  # total is read in the loop and after it; last is never read


def test_a_local_read_by_an_exception_handler_is_live():
    assert _live(read_by_handler) == {"a", "x"}


def test_del_needs_the_binding():
    assert _live(deleted) == {"a", "x"}


def test_comprehension_reads_its_outer_locals():
    live = _live(comprehension)
    # 3.11 runs the comprehension as a nested function: `scale` is a cell (cells are passed as the closure)
    assert "xs" in live and ("scale" in live or "scale" in comprehension.__code__.co_cellvars)
    assert "unused" not in live and "k" not in live


def test_locals_call_keeps_everything():
    assert _live(introspects) is None


def swaps(x, y):
    a = x
    here()
    a = y
    b = a + 1
    return b


def test_store_then_load_of_the_same_name_is_not_live():
    assert _live(swaps) == {"y"}

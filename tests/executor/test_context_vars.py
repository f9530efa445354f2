"""contextvars.ContextVar from outside the traced code (jit/semantics/context_vars.py): get, set and reset are
captured without a break, and after each call the var holds exactly what eager leaves in it. Eager and compiled
run each in a copy of one starting context, so they start from the same state and their states can be compared."""
import contextvars
import io

import pytest
import torch

import jit

CV = contextvars.ContextVar("cv", default=1)
UNSET = contextvars.ContextVar("unset")
HELD = contextvars.ContextVar("held")


@pytest.fixture(autouse=True)
def _fresh(fresh_jit):
    yield
    assert jit.counters["compile_errors"] == 0, "an internal compiler error fell back to eager"


def _state(ctx) -> dict:
    return {var.name: ctx[var] for var in (CV, UNSET, HELD) if var in ctx}


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except Exception as e:  # noqa: BLE001 - the exception is the outcome under test
        return "raised", type(e), str(e).split(" at 0x")[0]


def _run_both(fn, *args, start=None):
    """fn eager and compiled, each in its own copy of the context `start` builds: (eager outcome, its state after),
    (compiled outcome, its state after)."""
    base = contextvars.copy_context()
    if start is not None:
        base.run(start)
    ctx_eager, ctx_compiled = base.copy(), base.copy()
    expected = ctx_eager.run(_outcome, fn, *args)
    got = ctx_compiled.run(_outcome, jit.compile(fn, backend="eager"), *args)
    return (expected, _state(ctx_eager)), (got, _state(ctx_compiled))


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _check(fn, *args, start=None, breaks=0):
    expected, got = _run_both(fn, *args, start=start)
    assert _same(expected, got), (expected, got)
    assert jit.counters["frames_run_eagerly"] == 0
    assert jit.counters["graph_breaks"] == breaks if breaks is not None else jit.counters["graph_breaks"] >= 1
    return expected


def set_get_reset(x):
    tok = CV.set(3)
    y = x * CV.get()
    CV.reset(tok)
    return y * CV.get()


def set_left(x):
    CV.set(5)
    UNSET.set(x.shape[0])  # a var without a value at entry, left with one
    return x * CV.get()


def test_set_reset_and_set_left_leave_eager_state():
    assert _check(set_get_reset, torch.ones(2))[1] == {}
    assert _check(set_left, torch.ones(2))[1] == {"cv": 5, "unset": 2}
    assert _check(set_left, torch.ones(2), start=lambda: CV.set(7))[1] == {"cv": 5, "unset": 2}


def reset_to_a_value_set_before(x):
    CV.set(2)
    tok = CV.set(3)
    CV.set(4)
    CV.reset(tok)  # back to 2, not to what the var held at entry
    return x * CV.get()


def test_reset_restores_the_value_before_its_set():
    (outcome, state), _ = _run_both(reset_to_a_value_set_before, torch.ones(2))
    assert state == {"cv": 2}
    _check(reset_to_a_value_set_before, torch.ones(2))


def reads_entry_value(x):
    return x * CV.get() + UNSET.get(10)


def test_a_value_read_is_guarded():
    fast = jit.compile(reads_entry_value, backend="eager")
    x = torch.ones(1)
    ctx = contextvars.copy_context()
    assert ctx.run(fast, x).item() == 11
    ctx.run(CV.set, 4)
    assert ctx.run(fast, x).item() == 14
    ctx.run(UNSET.set, 0)
    assert ctx.run(fast, x).item() == 4
    assert jit.counters["recompiles"] == 2
    assert contextvars.copy_context().run(fast, x).item() == 11  # the first entry again
    assert jit.counters["recompiles"] == 2


def tensor_held(x):
    HELD.set(HELD.get() * x)  # a tensor the var holds is a graph input; the new one a graph output
    return HELD.get() + 1


def test_tensor_values():
    state = _check(tensor_held, torch.full((2,), 3.0), start=lambda: HELD.set(torch.ones(2)))[1]
    assert torch.equal(state["held"], torch.full((2,), 3.0))
    fast = jit.compile(tensor_held, backend="eager")
    ctx = contextvars.copy_context()
    ctx.run(HELD.set, torch.ones(2))
    for _ in range(3):
        ctx.run(fast, torch.full((2,), 2.0))
    assert torch.equal(ctx[HELD], torch.full((2,), 8.0)) and jit.counters["frames_compiled"] == 1


def list_held_changed_then_var_set(x):
    items = HELD.get()
    items.append(len(items))  # the list the var held at entry, changed in place
    HELD.set(["new"])
    return x * len(items)


def test_an_object_the_var_held_is_changed_before_the_var_is_set():
    fast = jit.compile(list_held_changed_then_var_set, backend="eager")
    old = [0]
    ctx = contextvars.copy_context()
    ctx.run(HELD.set, old)
    assert ctx.run(fast, torch.ones(1)).item() == 2
    assert old == [0, 1] and ctx[HELD] == ["new"]
    assert jit.counters["graph_breaks"] == 0


def token_returned(x):
    tok = CV.set(4)
    return x * CV.get(), tok, tok.var is CV, tok.old_value is contextvars.Token.MISSING


def test_a_token_that_outlives_the_call_is_real():
    (expected, eager_state), (got, state) = _run_both(token_returned, torch.ones(2))
    assert _same(expected[1][:1] + expected[1][2:], got[1][:1] + got[1][2:]) and state == eager_state == {"cv": 4}
    assert type(got[1][1]) is contextvars.Token and got[1][1].var is CV
    assert jit.counters["graph_breaks"] == 0


def token_across_a_break(x):
    tok = CV.set(6)
    print("value", CV.get(), file=io.StringIO())  # a break: the resume function resets with the real token
    y = x * CV.get()
    CV.reset(tok)
    return y * CV.get()


def reset_twice(x):
    tok = CV.set(2)
    CV.reset(tok)
    CV.reset(tok)  # eager's RuntimeError, raised by the real reset
    return x


def reset_with_another_vars_token(x):
    tok = UNSET.set(2)
    CV.reset(tok)
    return x


def test_tokens_used_at_a_break_and_wrong_resets():
    assert _check(token_across_a_break, torch.ones(2), breaks=None)[1] == {}
    jit.reset()
    jit.counters.clear()
    (expected, _), _ = _run_both(reset_twice, torch.ones(2))
    assert expected[:2] == ("raised", RuntimeError)
    _check(reset_twice, torch.ones(2), breaks=1)
    jit.reset()
    jit.counters.clear()
    (expected, _), _ = _run_both(reset_with_another_vars_token, torch.ones(2))
    assert expected[:2] == ("raised", ValueError)
    _check(reset_with_another_vars_token, torch.ones(2), breaks=1)


def missing_value(x):
    return x * UNSET.get()


def test_a_var_without_value_raises_lookup_error_as_eager():
    (expected, _), _ = _run_both(missing_value, torch.ones(2))
    assert expected[:2] == ("raised", LookupError)
    _check(missing_value, torch.ones(2), breaks=1)


class Holder:
    pass


def token_kept_on_an_outside_object(x, holder):
    holder.token = CV.set(8)  # a real Token, made before the attribute write that stores it
    return x * CV.get()


def test_a_token_stored_on_an_outside_object_is_real():
    holder = Holder()
    ctx = contextvars.copy_context()
    out = ctx.run(jit.compile(token_kept_on_an_outside_object, backend="eager"), torch.ones(1), holder)
    assert out.item() == 8 and ctx[CV] == 8 and type(holder.token) is contextvars.Token
    ctx.run(CV.reset, holder.token)
    assert CV not in ctx and jit.counters["graph_breaks"] == 0

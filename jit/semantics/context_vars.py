"""contextvars.ContextVar objects from outside the traced code (libraries keep per-call settings in them):
get, set and reset without a graph break.

A read is answered at trace time: what the traced code set last (the side-effect log, jit/side_effects.py), else
what the var held when the frame started, read through ContextVarValueSource and guarded like any value from
outside (a constant by value, so a call under another value recompiles; a tensor becomes a graph input read
each call), else get's argument, else the var's own default, else LookupError. `set` returns a TokenVar; `reset`
with one of those restores the value it recorded. The generated code writes the final value after the graph
(nothing when the calls left the var as it was), or replays every call for real when a Token outlives the trace
(jit/codegen.py), so a token kept or returned is a real one."""
from __future__ import annotations

import contextvars

from framejit.guards.kinds import IdMatch
from framejit.guards.sources import NO_VALUE, ConstSource, ContextVarValueSource
from jit.break_reasons import PythonError, unsupported
from jit.side_effects import AT_ENTRY
from jit.variables import Const, ContextVarVar, ObjectVar, TokenVar, Var
from jit.variables.builder import Builder

METHODS = ("get", "set", "reset")


def method(tx, var: ContextVarVar, name: str, args: list[Var], kwargs: dict) -> Var:
    if kwargs:
        unsupported("exception", f"TypeError: ContextVar.{name}() takes no keyword arguments")
    if name == "get" and len(args) <= 1:
        return get(tx, var, args[0] if args else None)
    if name == "set" and len(args) == 1:
        effects = tx.output.side_effects
        token = TokenVar(var, effects.context_var_value(var.obj))
        effects.context_var_set(var, var.obj, args[0], token)
        return token
    if name == "reset" and len(args) == 1:
        return reset(tx, var, args[0])
    unsupported("exception", f"TypeError: ContextVar.{name}() called with {len(args)} arguments")


def get(tx, var: ContextVarVar, default: Var | None) -> Var:
    current = tx.output.side_effects.context_var_value(var.obj)
    if current is AT_ENTRY:
        current = at_entry(tx, var)
    if current is not None:
        return current
    if default is not None:
        return default
    own = _own_default(var.obj)
    if own is not NO_VALUE:  # fixed when the var was made (and the var is guarded by identity): no guard
        return Builder(tx.output, guarded=False).wrap(own, ConstSource(own, f"default of {var.describe()}"))
    raise PythonError.of(LookupError, var.obj)


def at_entry(tx, var: ContextVarVar) -> Var | None:
    """What the var held when the frame started (None: no value), guarded through its source."""
    if var.source is None:
        unsupported("unsupported_value", f"{var.describe()} reached without a source")
    source = ContextVarValueSource(var.source)
    value = var.obj.get(NO_VALUE)  # tracing runs at the frame's start, in its thread and context
    if value is NO_VALUE:
        tx.builder.guard(IdMatch(source, NO_VALUE))
        return None
    return tx.builder.wrap(value, source)


def _own_default(real: contextvars.ContextVar):
    """The default the var was made with, or NO_VALUE (it has no attribute for it: ask it in an empty context)."""
    try:
        return contextvars.Context().run(real.get)
    except LookupError:
        return NO_VALUE


def reset(tx, var: ContextVarVar, token: Var) -> Var:
    if not isinstance(token, TokenVar):
        if token.python_type() is contextvars.Token:
            # whether a real Token was used already cannot be read (or guarded): the reset runs for real
            unsupported("side_effect", f"{var.describe()}.reset() with a Token made outside the traced code")
        unsupported("exception", f"TypeError: expected an instance of Token, got {token.describe()}")
    if token.used:  # eager's errors, raised by the real reset at the break (the token is then replayed for real)
        unsupported("exception", f"RuntimeError: {token.describe()} has already been used once")
    if token.var.obj is not var.obj:
        unsupported("exception", f"ValueError: {token.describe()} was created by a different ContextVar")
    tx.output.side_effects.context_var_reset(var.obj, token)
    return Const(None)


def token_attr(tx, token: TokenVar, name: str) -> Var:
    if name == "var":
        return token.var
    if name == "old_value":
        old = at_entry(tx, token.var) if token.old is AT_ENTRY else token.old
        return _missing() if old is None else old
    if name == "MISSING":
        return _missing()
    unsupported("unsupported_value", f"attribute {name!r} of {token.describe()}")


def _missing() -> Var:
    """Token.MISSING as reading it from the class gives it: an object compared by identity, with a source."""
    return ObjectVar(contextvars.Token.MISSING, ConstSource(contextvars.Token.MISSING, "Token.MISSING"))

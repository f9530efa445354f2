"""How a frame's arguments reach guards and replacement code.

Before a frame starts, its first `arg_count(code)` local slots hold the arguments in co_varnames order:
positional parameters, keyword-only parameters, then the *args tuple and the **kwargs dict. The hook passes
exactly those values, positionally, to a guard and to the replacement code. So a replacement is the same kind of
code object with every parameter turned into a plain positional one: `*args` arrives as a tuple, `**kwargs` as
a dict, keyword-only values in their slots. Defaults were already applied by CPython when it built the frame.
"""
from __future__ import annotations

import inspect
from types import CodeType, FunctionType

from jit._C import arg_count

_VARARGS = inspect.CO_VARARGS
_VARKEYWORDS = inspect.CO_VARKEYWORDS


def argument_names(code: CodeType) -> tuple[str, ...]:
    """Names of the argument vector's slots, in order."""
    return code.co_varnames[: arg_count(code)]


def as_replacement(code: CodeType, like: CodeType | None = None) -> CodeType:
    """`code` with its parameters flattened to the argument-vector convention of `like` (default: itself).

    The bytecode is untouched: LOAD_FAST indices stay valid because slot order does not change."""
    like = like or code
    n = arg_count(like)
    if arg_count(code) != n:
        raise TypeError(f"{code.co_qualname} takes {arg_count(code)} arguments, {like.co_qualname} takes {n}")
    return code.replace(
        co_argcount=n,
        co_posonlyargcount=0,
        co_kwonlyargcount=0,
        co_flags=code.co_flags & ~(_VARARGS | _VARKEYWORDS),
    )


def bind_vector(fn: FunctionType, args: tuple, kwargs: dict) -> tuple:
    """The argument vector CPython would build for `fn(*args, **kwargs)` (for tests and tools)."""
    sig = inspect.signature(fn)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    return tuple(bound.arguments[name] for name in argument_names(fn.__code__))

"""Exception objects in the traced code (jit.variables.ExceptionVar): making one by calling its class, what
`except` matches, its attributes and its text. Raising and catching are the translator's (jit/translator.py)
and the exception opcodes' (jit/opcodes/exceptions.py).

Only classes whose instances behave as BaseException's are modelled: built-in exception classes, and user
subclasses of them that define no special methods (a message, class attributes and plain methods are fine). A
class with its own __init__, __str__ or metaclass runs code we would have to model: a break."""
from __future__ import annotations

import inspect
import types
from typing import NoReturn

from jit.break_reasons import PythonError, unsupported
from jit.variables import BoundMethodVar, ClassVar, Const, ExceptionVar, UserFunctionVar, Var

# Built-in classes whose constructor keeps its positional arguments as they are (no errno mapping, no `value`
# or `code` taken from them): with arguments not known at compile time (a tensor), only these are modelled.
_ARGS_ONLY = frozenset({
    BaseException, Exception, ArithmeticError, AssertionError, AttributeError, BufferError, EOFError, IndexError,
    KeyError, LookupError, MemoryError, NotImplementedError, OverflowError, RecursionError, ReferenceError,
    RuntimeError, SystemError, TypeError, ValueError, ZeroDivisionError, FloatingPointError, Warning,
    UserWarning, DeprecationWarning, FutureWarning, RuntimeWarning, PendingDeprecationWarning})

# What a user class may hold without changing how its instances are made, printed or looked into.
_HARMLESS_DUNDERS = frozenset({"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__",
                               "__annotations__", "__firstlineno__", "__static_attributes__", "__slots__"})


def _builtin_base(cls: type) -> type:
    return next(c for c in cls.__mro__ if c.__module__ == "builtins")


def plain_class(cls: type) -> str | None:
    """None if instances of `cls` behave as its nearest built-in base's; else why not."""
    if type(cls) is not type:
        return f"{cls.__name__} has a metaclass"
    for c in cls.__mro__:
        if c.__module__ == "builtins":
            continue
        special = [n for n in vars(c) if n.startswith("__") and n.endswith("__") and n not in _HARMLESS_DUNDERS]
        if special:
            return f"{c.__name__} defines {special[0]}"
    return None


def construct(tx, cls: type, args: list[Var], kwargs: dict[str, Var]) -> ExceptionVar:
    """`cls(*args, **kwargs)` for an exception class: the exception object, not raised yet."""
    why = plain_class(cls)
    if why is not None:
        unsupported("unsupported_call", f"creating a {cls.__name__} ({why})")
    if all(a.is_const() for a in args) and all(v.is_const() for v in kwargs.values()):
        try:
            return ExceptionVar(cls, args, kwargs)
        except Exception as e:  # noqa: BLE001 - the constructor's own argument checks: eager raises here too
            unsupported("exception", f"{cls.__name__}() raised {type(e).__name__}: {e}")
    if kwargs or _builtin_base(cls) not in _ARGS_ONLY:
        unsupported("unsupported_call", f"creating a {cls.__name__} from values not known at compile time")
    return ExceptionVar(cls, args)


def raised_on_constants(e: Exception) -> NoReturn:
    """A real operation on constants (guarded, or literals) raised `e`: the traced code raises it at every call.
    Built-in classes that keep just their arguments are followed like any raise in the trace (an `except` may
    catch them, jit.break_reasons.PythonError); anything else is a break, so the operation raises for real."""
    if type(e) in _ARGS_ONLY:
        raise PythonError(ExceptionVar.of(type(e), *e.args, exact=type(e) is not AttributeError)) from None
    unsupported("exception", f"{type(e).__name__}: {e}")


def leaving_a_generator(exc: Var) -> Var:
    """An exception leaving a generator's frame goes on as it is, but a StopIteration becomes a RuntimeError
    (PEP 479): not modelled, a break. (3.12 spells this as a handler around the body, 3.11 inside the runtime:
    jit/semantics/iteration.py checks the same where the frame is left.)"""
    if not isinstance(exc, ExceptionVar) or issubclass(exc.cls, (StopIteration, StopAsyncIteration)):
        unsupported("exception", "StopIteration raised inside a generator (Python raises RuntimeError)")
    return exc


def classes_caught(classes: Var) -> tuple[type, ...]:
    """The operand of CHECK_EXC_MATCH (`except A:`, `except (A, B):`) as real classes. Anything but exception
    classes makes eager raise TypeError at the match: a break there."""
    value = classes.const() if classes.is_const() else None
    out = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(c, type) and issubclass(c, BaseException) for c in out):
        unsupported("exception", "an except clause naming something other than exception classes (TypeError)")
    return out


def matches(exc: ExceptionVar, classes: tuple[type, ...]) -> bool:
    # PyErr_GivenExceptionMatches walks the MRO (PyType_IsSubtype): no metaclass __subclasscheck__ is asked
    return any(c in exc.cls.__mro__ for c in classes)


_CONSTANT_TYPES = (str, int, float, bool, type(None))


def get_attr(tx, exc: ExceptionVar, name: str) -> Var:
    if name == "args":
        return exc.args_var
    if name == "__class__":
        return ClassVar(exc.cls)
    if name in ("__traceback__", "__context__", "__cause__", "__suppress_context__", "__notes__"):
        unsupported("exception", f"{exc.cls.__name__}.{name} (exists only where the exception is raised for real)")
    attr = inspect.getattr_static(exc.cls, name, None)
    if isinstance(attr, types.FunctionType):  # a plain method of a user subclass: inlined with self = exc
        return BoundMethodVar(UserFunctionVar(attr, None), exc)
    if isinstance(attr, _CONSTANT_TYPES) and attr is not None:
        return Const(attr)  # a class attribute (`code = 400` in a user subclass): no instance holds its own
    if callable(attr) or not exc.exact or exc.prototype is None:
        # with_traceback, add_note (they change the object), or a value eager's object holds that ours may not
        unsupported("unsupported_value", f"attribute {name!r} of {exc.describe()}")
    try:
        value = getattr(exc.prototype, name)  # what the constructor set: OSError's errno, StopIteration's value
    except AttributeError as e:
        raise PythonError.of(AttributeError, *e.args) from None
    if not isinstance(value, _CONSTANT_TYPES):
        unsupported("unsupported_value", f"attribute {name!r} of {exc.describe()}")
    return Const(value)


def as_text(exc: ExceptionVar, convert) -> Const:
    """str(e), repr(e), format(e, spec): what the real object made from the same constant arguments gives."""
    if exc.prototype is None:
        unsupported("unsupported_value", f"the text of {exc.describe()} (its arguments are not known at compile "
                                         "time)")
    try:
        return Const(convert(exc.prototype))
    except Exception as e:  # noqa: BLE001 - format(e, "x"): eager raises the same here
        unsupported("exception", f"{type(e).__name__}: {e}")

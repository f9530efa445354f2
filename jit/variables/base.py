"""The root of the symbolic value hierarchy, constants, and the NULL the 3.11+ call protocol pushes."""
from __future__ import annotations

from framejit.guards.sources import Source


class NotConstant(Exception):
    pass


class Var:
    source: Source | None = None

    def python_type(self) -> type:
        raise NotImplementedError(type(self).__name__)

    def is_const(self) -> bool:
        return False

    def const(self):
        """The Python value, if known at compile time (raises NotConstant otherwise)."""
        raise NotConstant(type(self).__name__)

    def describe(self) -> str:
        return type(self).__name__


class Const(Var):
    """A value fully known at compile time: numbers, strings, None, dtypes, devices, torch.Size, ranges, slices."""

    def __init__(self, value, source: Source | None = None):
        self.value = value
        self.source = source

    def python_type(self):
        return type(self.value)

    def is_const(self):
        return True

    def const(self):
        return self.value

    def describe(self):
        return f"constant {self.value!r}"

    def __repr__(self):
        return f"Const({self.value!r})"


class KnownObject(Var):
    """An object fixed at compile time and guarded by identity: a class, a Python module, a torch or builtin
    callable. Subclasses only name it."""

    def __init__(self, value, source: Source | None = None):
        self.value = value
        self.source = source

    def python_type(self):
        return type(self.value)

    def is_const(self):
        return True

    def const(self):
        return self.value

    def describe(self):
        name = getattr(self.value, "__qualname__", None) or getattr(self.value, "__name__", None) or repr(self.value)
        return f"{self.kind} {name}"

    kind = "object"


class _Null(Var):
    """The NULL pushed below a callable by PUSH_NULL / LOAD_GLOBAL / LOAD_METHOD (CPython 3.11+ calls)."""

    def __repr__(self):
        return "NULL"


NULL = _Null()


class LazyArg(Var):
    """An argument of the compiled frame not looked at yet: wrapped (and guarded) on first use, so arguments the
    code never reads cost no guard."""

    def __init__(self, value, source: Source):
        self.value = value
        self.source = source

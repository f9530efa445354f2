"""Callables the executor inlines (user functions, nested functions, bound methods, partials), builtins it
models, and cells."""
from __future__ import annotations

import functools
import types
from types import CodeType, FunctionType

from framejit.guards.kinds import AliasMatch
from jit.variables.base import KnownObject, Var


class UserFunctionVar(Var):
    """A Python function object that exists outside the frame: called by inlining its bytecode."""

    def __init__(self, fn: FunctionType, source=None, by_code: bool = False):
        self.fn = fn
        self.source = source
        self.by_code = by_code  # guarded by its code, not its identity: defaults and cells read through source

    def python_type(self):
        return type(self.fn)

    def describe(self):
        return f"function {self.fn.__qualname__}"


class CellVar(Var):
    """A closure cell created during tracing (MAKE_CELL / a nested def capturing a local)."""

    def __init__(self, contents: Var | None = None):
        self.contents = contents

    def python_type(self):
        return types.CellType


class ExternalCell:
    """A closure cell that exists outside the traced code (the frame's own free variables, or those of a
    function it calls): read lazily, guarded by `source` (its contents); `cell_source` is the cell object.
    A write (`nonlocal n; n += 1`, or a resume function storing a variable of the function it continues) is kept
    in `written` and stored into the real cell by the replacement code (jit/codegen.py) before anything else can
    see it: before the instruction run at a graph break, and before returning."""
    UNWRITTEN = object()
    DELETED = object()

    def __init__(self, cell, source, cell_source):
        self.cell, self.source, self.cell_source = cell, source, cell_source
        self.written = ExternalCell.UNWRITTEN


def external_cell(output, cell, source, cell_source) -> ExternalCell:
    """One ExternalCell per real cell in a capture, so that the frame and every function it inlines share what
    was written to it; a cell reached a second way is guarded to stay the same cell."""
    known = output.external_cells.get(id(cell))
    if known is not None:
        if known.cell_source != cell_source:
            output.guards.append(AliasMatch(cell_source, known.cell_source))
        return known
    known = output.external_cells[id(cell)] = ExternalCell(cell, source, cell_source)
    return known


class NestedFunctionVar(Var):
    """A function made by MAKE_FUNCTION inside the traced code: its code, defaults and cells are symbolic."""

    def __init__(self, code: CodeType, globals_: dict, name: str, defaults: tuple = (), kwdefaults: dict | None = None,
                 closure: tuple = ()):
        self.code, self.globals, self.name = code, globals_, name
        self.defaults, self.kwdefaults, self.closure = defaults, kwdefaults or {}, closure

    def python_type(self):
        return FunctionType

    def describe(self):
        return f"nested function {self.name}"


class BoundMethodVar(Var):
    def __init__(self, fn: Var, self_var: Var):
        self.fn, self.self_var = fn, self_var

    def python_type(self):
        return types.MethodType

    def describe(self):
        return f"bound method of {self.self_var.describe()}"


class CachedFunctionVar(Var):
    """A function wrapped by functools.lru_cache / functools.cache (transformers' `logger.warning_once`, version
    checks): called for real at compile time on constant arguments (jit/semantics/calls.py call_cached)."""

    def __init__(self, wrapper, source=None):
        self.wrapper, self.source = wrapper, source

    def python_type(self):
        return type(self.wrapper)

    def describe(self):
        return f"cached function {getattr(self.wrapper, '__qualname__', '?')}"


class PartialVar(Var):
    def __init__(self, fn: Var, args: list[Var], kwargs: dict[str, Var]):
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def python_type(self):
        return functools.partial

    def describe(self):
        return "functools.partial"


class BuiltinVar(KnownObject):
    """A builtin function the executor models directly (len, isinstance, math.sqrt, ...)."""
    kind = "builtin"
    fn = property(lambda self: self.value)


class MethodOnVar(Var):
    """`obj.name` where obj is a container built during tracing or an immutable constant (list.append,
    dict.items, str.join, tuple.index, ...)."""

    def __init__(self, obj: Var, name: str, generic: bool = False):
        self.obj, self.name = obj, name
        self.generic = generic  # bound as object.__getattribute__ binds it (guards/sources.AttrSource.generic)

    def python_type(self):
        """The type of the real bound method: methods of built-in types are builtin_function_or_method."""
        from jit.variables.outside import lazy  # (outside.py builds on containers, which come after this)
        if lazy(self.obj):  # a method of a list or dict from outside, not read whole for this
            return types.BuiltinMethodType
        real = self.obj.const() if self.obj.is_const() else getattr(self.obj, "obj", None)
        if real is not None:
            return type(object.__getattribute__(real, self.name) if self.generic else getattr(real, self.name))
        return types.BuiltinMethodType

    def describe(self):
        return f"{self.obj.describe()}.{self.name}"


class SuperVar(Var):
    """super() inside an inlined method: attribute lookup starts after `cls` in type(self).__mro__."""

    def __init__(self, cls: type, self_var: Var):
        self.cls, self.self_var = cls, self_var

    def python_type(self):
        return super

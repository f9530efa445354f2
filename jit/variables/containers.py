"""Tuples, lists, dicts and iterators built or unpacked during tracing. Items are Vars; the container itself is
symbolic, so mutating one created in the frame is free, and its final state is rebuilt on return."""
from __future__ import annotations

import torch

from jit.variables.base import Const, NotConstant, Var


class TupleVar(Var):
    def __init__(self, items: list[Var], source=None):
        self.items = list(items)
        self.source = source

    def python_type(self):
        return tuple

    def is_const(self):
        return all(i.is_const() for i in self.items)

    def const(self):
        return tuple(i.const() for i in self.items)

    def describe(self):
        return f"tuple of {len(self.items)}"


class NamedTupleVar(TupleVar):
    def __init__(self, cls: type, items: list[Var], source=None):
        super().__init__(items, source)
        self.cls = cls

    def python_type(self):
        return self.cls

    def const(self):
        if _from_tuple(self.cls):
            return self.cls(tuple(i.const() for i in self.items))
        return self.cls(*(i.const() for i in self.items))

    def field(self, name: str) -> Var:
        return self.items[self.cls._fields.index(name)]


class ListVar(Var):
    lazy = False  # a list from outside whose items are not all read (jit/variables/outside.py)

    def __init__(self, items: list[Var], source=None):
        self.items = list(items)
        self.source = source

    def python_type(self):
        return list

    def is_const(self):
        return all(i.is_const() for i in self.items)

    def const(self):
        return [i.const() for i in self.items]

    def describe(self):
        return f"list of {len(self.items)}"

    def held(self) -> list[Var]:
        """The item Vars the trace knows (an outside list read lazily knows only those read or written)."""
        return list(self.items)

    def written(self) -> list[Var]:
        """What the generated code stores when this list from outside was changed (jit/side_effects.py)."""
        return list(self.items)


class DictVar(Var):
    """Keys are compile-time constants (hashable Python values); values are Vars. Insertion order is kept."""

    lazy = False  # a dict from outside whose items are not all read (jit/variables/outside.py)

    def __init__(self, items: dict, source=None, cls: type = dict):
        self.items = dict(items)
        self.source = source
        self.cls = cls

    def python_type(self):
        return self.cls

    def is_const(self):
        return all(v.is_const() for v in self.items.values())

    def const(self):
        return self.cls((k, v.const()) for k, v in self.items.items())

    def describe(self):
        return f"dict of {len(self.items)}"

    def held(self) -> list[Var]:
        """The value Vars the trace knows (an outside dict read lazily knows only those read or written)."""
        return list(self.items.values())

    def written(self) -> list[Var]:
        """What the generated code stores when this dict from outside was changed (jit/side_effects.py)."""
        return list(self.items.values())


class DictViewVar(Var):
    """`d.keys()`, `d.values()` or `d.items()`: a live view over the DictVar (not a copy), so later writes to the
    dict show through it as they do in Python. Keys and items views are set-like."""

    def __init__(self, dict_var: DictVar, kind: str):
        self.dict_var, self.kind = dict_var, kind  # kind: "keys" | "values" | "items"

    def python_type(self):
        return type(getattr({}, self.kind)())

    def current(self) -> list[Var]:
        d = self.dict_var.items
        if self.kind == "keys":
            return [Const(k) for k in d]
        if self.kind == "values":
            return list(d.values())
        return [TupleVar([Const(k), v]) for k, v in d.items()]

    def is_const(self):
        # A values view compares by identity in Python (no __eq__), which a rebuilt copy would not keep; keys
        # are always constants.
        return self.kind == "keys" or self.kind == "items" and self.dict_var.is_const()

    def const(self):
        """A real view of the same kind over a dict equal to ours now (for set operations and comparisons)."""
        if not self.is_const():
            raise NotConstant(self.describe())
        if self.kind == "keys":
            return dict.fromkeys(self.dict_var.items).keys()
        return {k: v.const() for k, v in self.dict_var.items.items()}.items()

    def describe(self):
        if self.dict_var.lazy:  # a dict from outside not read whole: named, not counted
            return f"dict_{self.kind} of {self.dict_var.describe()}"
        return f"dict_{self.kind} of {len(self.dict_var.items)}"


class IteratorVar(Var):
    """An iterator over a sequence known at compile time (range, tuple, list, dict keys, zip, enumerate...)."""

    def __init__(self, items: list[Var]):
        self.items = list(items)
        self.pos = 0

    def python_type(self):
        return type(iter(()))

    def next(self) -> Var | None:
        if self.pos >= len(self.items):
            return None
        self.pos += 1
        return self.items[self.pos - 1]

    def remaining(self) -> list[Var]:
        rest = self.items[self.pos:]
        self.pos = len(self.items)
        return rest


class OutsideIteratorVar(IteratorVar):
    """An iterator from outside (the loop a resume function continues): the items it will still give, read from
    it without advancing it; what the traced code takes is taken from the real one after the graph (side
    effects). Loads as the real object."""

    def __init__(self, items: list[Var], source, real_type: type):
        super().__init__(items)
        self.source = source
        self.real_type = real_type

    def python_type(self):
        return self.real_type


def sequence_items(var: Var) -> list[Var] | None:
    """The items of a sequence-like Var when known at compile time, else None."""
    if isinstance(var, (TupleVar, ListVar)):
        return list(var.items)
    if isinstance(var, DictVar):
        return [Const(k) for k in var.items]
    if isinstance(var, DictViewVar):
        return var.current()
    from jit.variables.sets import SetVar  # sets.py builds on objects and tensors, which import this module's base
    if isinstance(var, SetVar):
        return var.ordered()
    if isinstance(var, IteratorVar):
        return var.remaining()
    if isinstance(var, Const):
        try:
            return [Const(v) for v in var.value]
        except TypeError:
            return None
    return None


__all__ = ["TupleVar", "NamedTupleVar", "ListVar", "DictVar", "DictViewVar", "IteratorVar", "sequence_items",
           "NotConstant"]


def _from_tuple(cls) -> bool:
    """Tuple types built from one tuple (structseqs, torch.Size) rather than from one argument per field."""
    return hasattr(cls, "n_fields") or cls is torch.Size

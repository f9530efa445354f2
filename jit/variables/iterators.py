"""Iterators that stay live, as Python's do: one over a list, tuple, dict or dict view made in the traced code
reads the container at each step (items appended during a loop are reached; a dict that changes size stops
it), and a generator made by calling a generator function runs its frame lazily, up to each yield, when its
consumer asks (jit/semantics/iteration.py steps both). Snapshot iterators over values computed once (zip,
enumerate, map, range) are containers.IteratorVar."""
from __future__ import annotations

import types

from jit.break_reasons import unsupported
from jit.variables.base import Const, Var
from jit.variables.containers import DictVar, DictViewVar, ListVar

_ITERATOR_TYPES = {list: type(iter([])), tuple: type(iter(())), "keys": type(iter({}.keys())),
                   "values": type(iter({}.values())), "items": type(iter({}.items()))}


class ContainerIteratorVar(Var):
    """iter(container) for a ListVar, TupleVar, DictVar (its keys) or DictViewVar: a position into the
    container as it is at each step."""

    def __init__(self, container: Var):
        self.container = container
        # an outside container read lazily is read whole now, while guards can still be added: the generated
        # code may need its length (jit/codegen.py places a real iterator), and every step reads it anyway
        self._items()
        self.pos = 0
        self.exhausted = False  # Python's list and dict iterators stay exhausted even if the container grows
        self.size = len(self.dict_items()) if self.size_checked() else None

    def size_checked(self) -> bool:
        """Python's dict iterators fail once the dict changed size; list and tuple iterators do not check."""
        return isinstance(self.container, (DictVar, DictViewVar))

    def dict_items(self) -> dict:
        c = self.container
        return (c if isinstance(c, DictVar) else c.dict_var).items

    def _items(self) -> list[Var]:
        c = self.container
        if isinstance(c, DictVar):
            return [Const(k) for k in c.items]
        return c.current() if isinstance(c, DictViewVar) else list(c.items)

    def python_type(self):
        c = self.container
        if isinstance(c, DictViewVar):
            return _ITERATOR_TYPES[c.kind]
        if isinstance(c, DictVar):
            return _ITERATOR_TYPES["keys"]
        return _ITERATOR_TYPES[list if isinstance(c, ListVar) else tuple]

    def container_length(self) -> int:
        return len(self._items())

    def next(self) -> Var | None:
        if self.exhausted:
            return None
        items = self._items()
        if self.size is not None and len(items) != self.size:
            self.exhausted = True
            unsupported("exception", "RuntimeError: dictionary changed size during iteration")
        if self.pos >= len(items):
            self.exhausted = True
            return None
        self.pos += 1
        return items[self.pos - 1]

    def describe(self):
        return f"iterator over {self.container.describe()}"


class GeneratorVar(Var):
    """The generator object returned by calling a generator function (a genexpr included) in the traced code.
    `frame` is the generator's own Translator, not started until the first next(); each step resumes it up to
    its next yield, so the generator's body interleaves with its consumer exactly as in Python.

    A generator not started yet is rebuilt by calling the function again with the same arguments (creating a
    generator runs none of its body); an exhausted one as an exhausted generator; one suspended part-way cannot
    be rebuilt (its frame's state exists only in the trace)."""

    def __init__(self, fn: Var, args: list[Var], kwargs: dict[str, Var], frame):
        self.fn, self.args, self.kwargs = fn, list(args), dict(kwargs)
        self.frame = frame  # jit.translator.Translator with is_generator set
        self.state = "created"  # "created" | "running" | "suspended" | "done"

    def python_type(self):
        return types.GeneratorType

    def describe(self):
        return f"generator {self.frame.code.co_qualname} ({self.state})"

"""Facts kept per code object for as long as that code object lives.

The executor remembers things per code object (its decoded instructions, live locals, resume functions, which
dims became dynamic, jit.disable). A plain dict or set keyed by code objects keeps every code it ever saw alive: a
service that compiles a fresh function per request, or a notebook re-running a cell, grew without bound (issue 24).
`CodeMap` holds its keys weakly, so an entry goes with its code object, and `clear()` empties it on jit.reset().

Keys are compared by identity, not with `==`: CPython's code objects compare equal when their bytecode, constants
and names match (not their file), so two functions exec'd from one source would share facts, and with weakref's
WeakKeyDictionary the death of one would delete the entry the other still uses."""
from __future__ import annotations

import weakref
from collections.abc import Iterator
from types import CodeType

_MISSING = object()


class CodeMap:
    """A mapping from code objects (by identity, held weakly) to values."""

    __slots__ = ("_items", "__weakref__")

    def __init__(self):
        self._items: dict[int, tuple[weakref.ref, object]] = {}  # id(code) -> (weak reference to it, value)

    def _remover(self, key: int):
        items = self._items  # not self: the callback must not keep the map alive

        def remove(ref):
            item = items.get(key)
            if item is not None and item[0] is ref:  # a newer code at the same address keeps its entry
                del items[key]
        return remove

    def get(self, code: CodeType, default=None):
        item = self._items.get(id(code))
        if item is None or item[0]() is not code:
            return default
        return item[1]

    def __getitem__(self, code: CodeType):
        value = self.get(code, _MISSING)
        if value is _MISSING:
            raise KeyError(code)
        return value

    def __setitem__(self, code: CodeType, value) -> None:
        key = id(code)
        item = self._items.get(key)
        if item is not None and item[0]() is code:
            self._items[key] = (item[0], value)
        else:
            self._items[key] = (weakref.ref(code, self._remover(key)), value)

    def setdefault(self, code: CodeType, default):
        value = self.get(code, _MISSING)
        if value is _MISSING:
            self[code] = value = default
        return value

    def pop(self, code: CodeType, default=None):
        value = self.get(code, _MISSING)
        if value is _MISSING:
            return default
        del self._items[id(code)]
        return value

    def __contains__(self, code) -> bool:
        return self.get(code, _MISSING) is not _MISSING

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __iter__(self) -> Iterator[CodeType]:
        for ref, _ in list(self._items.values()):
            code = ref()
            if code is not None:
                yield code

    def clear(self) -> None:
        self._items.clear()


class CodeSet:
    """A set of code objects (by identity, held weakly)."""

    __slots__ = ("_map",)

    def __init__(self):
        self._map = CodeMap()

    def add(self, code: CodeType) -> None:
        self._map[code] = True

    def discard(self, code: CodeType) -> None:
        self._map.pop(code)

    def __contains__(self, code) -> bool:
        return code in self._map

    def __len__(self) -> int:
        return len(self._map)

    def __iter__(self) -> Iterator[CodeType]:
        return iter(self._map)

    def clear(self) -> None:
        self._map.clear()

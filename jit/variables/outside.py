"""Lists and dicts from outside the frame, read lazily: the trace pays for what the code reads of them, not for
their size.

Builder.wrap guards such a container by its type only. An item is wrapped (with its own guard) when the code
reads it; the length is guarded when the code needs it (`len`, an index past what it may assume); a list's first
or last items need only `len >= n` (LenAtLeast), a dict's key only its presence (KeyIn). Appends, item stores,
pops from the end and a dict's stores and deletes are kept here as data (the side-effect log records the
container, jit/side_effects.py), so reads after writes see them, and the generated code replays them on the real
object (jit/rebuild.py: patch_list, patch_dict): a module-level log appended to on every call compiles once and
costs the same per call at any length.

Anything else (iteration, comparison, copying, sorting, a torch op over the items...) reads `items`, which wraps
the whole container as Builder.wrap did before (length or keys guarded, every item wrapped and guarded) and from
then on the Var is an ordinary ListVar / DictVar; the writes made so far are folded in. That must happen while
tracing: after the graph is compiled no new guard or graph input can be added (OutputGraph.sealed)."""
from __future__ import annotations

import collections
import typing

import torch

from framejit.guards.kinds import DictKeysMatch, KeyIn, LenAtLeast, LenMatch
from framejit.guards.sources import ItemSource, source_key
from jit.break_reasons import unsupported
from jit.variables.containers import DictVar, ListVar

# dict keys a lazy lookup takes: ones whose repr reads back as themselves in the guard code (ItemSource, KeyIn),
# and identity-hashed classes (`identity_key`), which the guard code names as constants
SIMPLE_KEYS = (str, int, bool, type(None))


class _Missing:
    def __repr__(self):
        return "<missing>"


MISSING = _Missing()  # a key a dict does not have
DELETED = _Missing()  # a key the traced code deleted from a dict (in a write log)


class OutsideListVar(ListVar):
    """A list from outside. Until `items` is read its contents are: the entry list less `dropped` items popped
    off its end, with `writes` stored over entry items, then `tail` (items appended). Entry items are numbered as
    Python indexes the entry list: from the start (>= 0) or, while the length is unknown, from the end (< 0).
    One element could then have two numbers: an index used beside a write numbered the other way is guarded
    to be another element (LenAtLeast), or the length is guarded and everything numbered from the start."""

    def __init__(self, real: list, source, builder):
        self.real, self.source, self.builder = real, source, builder
        self._items: list | None = None  # every item, once something needed them all
        self.length: int | None = None  # len at entry, once guarded
        self.at_least = 0  # len >= at_least guarded
        self.entry: dict[int, object] = {}  # entry index -> the item read there (a Var)
        self.writes: list[tuple[int, object]] = []  # (entry index, Var) stores over entry items, in order
        self.dropped = 0
        self.tail: list = []

    @property
    def lazy(self) -> bool:
        return self._items is None

    @property
    def items(self) -> list:
        self.read_whole()
        return self._items

    @items.setter
    def items(self, value) -> None:
        self._items = list(value)

    def read_whole(self) -> None:
        """Wrap every item now (guarded as Builder.wrap guarded a list before this module)."""
        if self._items is None:
            self._materialize()

    def describe(self):
        return f"list {self.source.name()}" if self.lazy else super().describe()

    def held(self) -> list:
        if not self.lazy:
            return list(self._items)
        return list(self.entry.values()) + [v for _, v in self.writes] + list(self.tail)

    def written(self) -> list:
        return list(self._items) if not self.lazy else [v for _, v in self.writes] + list(self.tail)

    # ---- reads and writes that need only part of the list ------------------------------------------------------

    def get(self, i: int):
        """self[i], or None when i is out of range (the length is then guarded: the caller raises as eager)."""
        where = self._locate(i)
        if where is None:
            return None
        kind, at = where
        return self.tail[at] if kind == "tail" else self._entry_item(at)

    def set(self, i: int, value) -> bool:
        """self[i] = value; False when i is out of range."""
        where = self._locate(i)
        if where is None:
            return False
        kind, at = where
        if kind == "tail":
            self.tail[at] = value
        else:
            self.writes.append((at, value))
        return True

    def append(self, value) -> None:
        self.tail.append(value)

    def extend(self, values: list) -> None:
        self.tail.extend(values)

    def pop_last(self):
        """self.pop(), or None when the list is empty (its length then guarded)."""
        if self.tail:
            return self.tail.pop()
        value = self.get(-1)
        if value is not None:
            self.dropped += 1
        return value

    def clear(self) -> None:
        self._items = []  # nothing of the old contents is read: no guard

    def size(self) -> int:
        self._need_length()
        return self.length - self.dropped + len(self.tail)

    def truth(self) -> bool:
        if self.tail:
            return True
        if self.length is None and len(self.real) > self.dropped:
            self._at_least(self.dropped + 1)
            return True
        return self.size() > 0

    # ---- entry indexes ---------------------------------------------------------------------------------------

    def _locate(self, i: int):
        """Where self[i] is now: ("tail", index into tail) or ("entry", entry index); None if out of range."""
        tail = len(self.tail)
        if self.length is not None:
            base = self.length - self.dropped
            n = i + base + tail if i < 0 else i
            if not 0 <= n < base + tail:
                return None
            return ("tail", n - base) if n >= base else ("entry", n)
        if i < 0 and -i <= tail:
            return "tail", tail + i
        # the entry index, and how long the entry list must be for it to be there and not in the tail
        at, need = (i + tail - self.dropped, self.dropped - i - tail) if i < 0 else (i, i + 1 + self.dropped)
        for w, _ in self.writes:
            if (w < 0) != (at < 0):  # xs[p] and xs[-k] are two elements when len(xs) > p + k
                need = max(need, (w if w >= 0 else at) + 1 - (at if w >= 0 else w))
        if len(self.real) < need:
            self._need_length()  # past the end now, or one element numbered both ways: count from the length
            return self._locate(i)
        self._at_least(need)
        return "entry", at

    def _entry_item(self, at: int):
        for w, value in reversed(self.writes):
            if w == at:
                return value
        item = self.entry.get(at)
        if item is None:
            item = self.entry[at] = self.builder.wrap(self.real[at], ItemSource(self.source, at))
        return item

    def _at_least(self, n: int) -> None:
        if n > self.at_least:
            self.at_least = n
            self.builder.guard(LenAtLeast(self.source, n))

    def _need_length(self) -> None:
        if self.length is not None:
            return
        self.length = n = len(self.real)
        self.builder.guard(LenMatch(self.source, list, n))
        # number everything from the start now (a negative index read first keeps its Var: the same object)
        entry: dict = {}
        for at, item in self.entry.items():
            entry.setdefault(at + n if at < 0 else at, item)
        self.entry = entry
        self.writes = [(at + n if at < 0 else at, value) for at, value in self.writes]

    def _materialize(self) -> None:
        _check_open(self.builder)
        self._need_length()
        items = [self._entry_item(i) for i in range(self.length)]  # writes included, each item guarded
        del items[self.length - self.dropped:]
        self._items = items + self.tail


class OutsideDictVar(DictVar):
    """A dict (or OrderedDict) from outside. Until `items` is read: the keys looked up (`entry`: key -> the
    Var read, or MISSING) and what the traced code stored and deleted (`log`, in order, for the generated code to
    replay; `now`: each written key's current value or DELETED)."""

    def __init__(self, real: dict, source, builder):
        self.real, self.source, self.builder, self.cls = real, source, builder, type(real)
        self._items: dict | None = None
        self.entry: dict = {}
        self.now: dict = {}
        self.log: list[tuple] = []
        self.length: int | None = None
        # a dict subclass's items are read as dict stores them (ItemSource.no_default): neither a defaultdict's
        # __missing__ nor the class's own __getitem__ (ModelOutput's, whose compiled frame would read the item
        # through itself) runs
        self.raw_reads = type(real) not in (dict, collections.OrderedDict)

    @property
    def lazy(self) -> bool:
        return self._items is None

    @property
    def items(self) -> dict:
        self.read_whole()
        return self._items

    @items.setter
    def items(self, value) -> None:
        self._items = dict(value)

    def read_whole(self) -> None:
        """Wrap every value now (keys guarded as Builder.wrap guarded a dict before this module)."""
        if self._items is None:
            self._materialize()

    def describe(self):
        return f"dict {self.source.name()}" if self.lazy else super().describe()

    def held(self) -> list:
        if not self.lazy:
            return list(self._items.values())
        return [v for v in self.entry.values() if v is not MISSING] + self.written()

    def written(self) -> list:
        if not self.lazy:
            return list(self._items.values())
        return [v for _, v in self.log if v is not DELETED]

    # ---- reads and writes by key ---------------------------------------------------------------------------

    def lookup(self, key):
        """self[key] now: a Var, or MISSING."""
        if key in self.now:
            value = self.now[key]
            return MISSING if value is DELETED else value
        return self._entry_value(key)

    def store(self, key, value) -> None:
        self.now[key] = value
        self.log.append((key, value))

    def delete(self, key) -> bool:
        """del self[key]; False (nothing done) when the key is missing."""
        if self.lookup(key) is MISSING:
            return False
        self.now[key] = DELETED
        self.log.append((key, DELETED))
        return True

    def clear(self) -> None:
        self._items = {}

    def size(self) -> int:
        if self.length is None:
            self.length = len(self.real)
            self.builder.guard(LenMatch(self.source, self.cls, self.length))
        n = self.length
        for key, value in self.now.items():  # each written key: was it there at entry (guarded), is it now
            n += (value is not DELETED) - (self._entry_value(key) is not MISSING)
        return n

    def truth(self) -> bool:
        if any(v is not DELETED for v in self.now.values()):
            return True
        if not self.now and self.length is None and self.real:
            self.builder.guard(LenAtLeast(self.source, 1))
            return True
        return self.size() > 0

    def _entry_value(self, key):
        value = self.entry.get(key)
        if value is None:
            present = dict.__contains__(self.real, key)  # (a defaultdict's __missing__ is the trace's to model)
            self.builder.guard(KeyIn(self.source, source_key(key), present))
            value = self.entry[key] = self.builder.wrap(dict.__getitem__(self.real, key), ItemSource(
                self.source, source_key(key), self.raw_reads)) if present else MISSING
        return value

    def _materialize(self) -> None:
        _check_open(self.builder)
        if self.cls is collections.defaultdict:  # a DictVar would raise KeyError where it makes the default
            unsupported("unsupported_value", f"a defaultdict ({self.source.name()}) read whole")
        if not all(isinstance(k, (str, int, float, bool, type(None), torch.dtype)) for k in self.real):
            unsupported("unsupported_value", "a dict with keys that are not simple constants")
        keys = tuple(self.real)  # the object's own order: an OrderedDict's moved keys are not dict.items' order
        self.builder.guard(DictKeysMatch(self.source, keys, self.cls))
        items = {}
        for key, value in ((k, dict.__getitem__(self.real, k)) for k in keys):
            known = self.entry.get(key)
            items[key] = known if known is not None and known is not MISSING else \
                self.builder.wrap(value, ItemSource(self.source, key, self.raw_reads))
        for key, value in self.log:  # replayed as Python would: a key stored again after a delete goes last
            if value is DELETED:
                del items[key]
            else:
                items[key] = value
        self._items = items


def lazy(var) -> bool:
    """An outside list or dict whose items have not all been read."""
    return isinstance(var, (ListVar, DictVar)) and var.lazy


def simple_key(key) -> bool:
    return type(key) in SIMPLE_KEYS or identity_key(key)


def identity_key(key) -> bool:
    """A class whose metaclass hashes and compares it by identity, or a typing special form (`typing.Union`, the
    keys of huggingface_hub's validator table): looked up as Python does, named in guard code by `const()`."""
    if isinstance(key, type):
        meta = type(key)
        return meta.__eq__ is type.__eq__ and meta.__hash__ is type.__hash__
    return isinstance(key, typing._SpecialForm)


def _check_open(builder) -> None:
    if builder.output.sealed:  # new guards or graph inputs now would be lost
        raise AssertionError("an outside container was read whole after its graph was compiled")

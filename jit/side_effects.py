"""Side effects as data: what the traced code changes in objects that exist outside it.

A change to an outside object does not break the graph. It is recorded here while tracing, later reads see it
(the container's Var holds the new items; attribute reads consult `attr`), and the generated code applies the
final state after the graph has run: before a break's instruction, or before the frame returns (jit/codegen.py,
ValueBuilder.apply_effects). Each object's final state is written once, in the order objects were first changed;
writes to different objects commute, and one object is one record however many names reach it.

Recorded: item stores, deletes and in-place methods on lists and dicts from outside (the frame's own **kwargs
included), items taken from iterators from outside (a loop in progress), and attribute writes and deletes on outside objects and modules whose type sets attributes the plain
way (object.__setattr__, directly or through a class's own __setattr__ that ends there)."""
from __future__ import annotations

DELETED = object()  # an attribute the traced code deleted


class SideEffects:
    def __init__(self):
        self._containers: dict[int, object] = {}  # id(real list/dict) -> its Var (items: the new contents)
        self._attrs: dict[tuple[int, str], tuple] = {}  # (id(real obj), name) -> (obj Var, name, value Var/DELETED)
        self._order: list[tuple] = []  # record keys in first-change order
        self._alive: list = []  # the real objects, kept alive while their ids are keys

    def __bool__(self) -> bool:
        return bool(self._order)

    def container_changed(self, var, real) -> None:
        """`var` (a ListVar / DictVar of the outside object `real`) had its items changed in place."""
        if id(real) not in self._containers:
            self._containers[id(real)] = var
            self._order.append(("items", id(real)))
            self._alive.append(real)

    def iterator_read(self, var, real) -> None:
        """`var` stands for the outside iterator `real`: what the traced code took from it is taken from the real
        one too (jit/codegen.py advances it by var.pos)."""
        if id(real) not in self._containers:
            self._containers[id(real)] = var
            self._order.append(("advance", id(real)))
            self._alive.append(real)

    def write_attr(self, obj_var, real, name: str, value) -> None:
        """`real.name = value` (or deleted, with DELETED) through object.__setattr__."""
        key = (id(real), name)
        if key not in self._attrs:
            self._order.append(("attr",) + key)
            self._alive.append(real)
        self._attrs[key] = (obj_var, name, value)

    def attr(self, real, name: str):
        """What the traced code last wrote to `real.name`: a Var, DELETED, or None when it did not."""
        record = self._attrs.get((id(real), name))
        return None if record is None else record[2]

    def records(self) -> list[tuple]:
        """In first-change order: ("items", container Var) and ("attr", object Var, name, value Var / DELETED)."""
        out = []
        for key in self._order:
            if key[0] in ("items", "advance"):
                out.append((key[0], self._containers[key[1]]))
            else:
                out.append(("attr",) + self._attrs[key[1:]])
        return out

    def roots(self) -> list:
        """Every value the writes store: graph outputs, built before anything is written."""
        out: list = []
        for record in self.records():
            if record[0] == "advance":
                continue
            if record[0] == "items":
                var = record[1]
                out += list(var.items.values()) if isinstance(var.items, dict) else list(var.items)
            elif record[3] is not DELETED:
                out.append(record[3])
        return out

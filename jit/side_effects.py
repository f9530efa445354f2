"""Side effects as data: what the traced code changes in objects that exist outside it.

A change to an outside object does not break the graph. It is recorded here while tracing, later reads see it
(the container's Var holds the new items; attribute reads consult `attr`), and the generated code applies the
final state after the graph has run: before a break's instruction, or before the frame returns (jit/codegen.py,
ValueBuilder.apply_effects). Each object's final state is written once, in the order objects were first changed
(ContextVars first: another write may store a Token their calls made); writes to different objects commute, and
one object is one record however many names reach it.

Recorded: item stores, deletes and in-place methods on lists and dicts from outside (the frame's own **kwargs
included), items taken from iterators from outside (a loop in progress), and attribute writes and deletes on outside objects and modules whose type sets attributes the plain
way (object.__setattr__, directly or through a class's own __setattr__ that ends there), and set / reset on
contextvars.ContextVar objects from outside (ContextVarLog)."""
from __future__ import annotations

DELETED = object()  # an attribute the traced code deleted


class _AtEntry:
    def __repr__(self):
        return "<value at entry>"


AT_ENTRY = _AtEntry()  # what a ContextVar held when the frame started (set or not): nothing to write back


class ContextVarLog:
    """One outside ContextVar the traced code set or reset: what `get` answers now (`current`: a Var, or AT_ENTRY
    after a reset back to the start), and the calls in order (("set", value Var, TokenVar), ("reset", TokenVar)),
    which the generated code replays for real when a token outlives the trace (its Token must be real)."""

    def __init__(self, var):
        self.var = var  # the ContextVarVar first changed
        self.current = AT_ENTRY
        self.calls: list[tuple] = []

    def tokens(self) -> list:
        return [call[2] for call in self.calls if call[0] == "set"]


class SideEffects:
    def __init__(self):
        self._containers: dict[int, object] = {}  # id(real list/dict) -> its Var (items: the new contents)
        self._attrs: dict[tuple[int, str], tuple] = {}  # (id(real obj), name) -> (obj Var, name, value Var/DELETED)
        self._context_vars: dict[int, ContextVarLog] = {}  # id(real ContextVar) -> its log
        self._order: list[tuple] = []  # record keys in first-change order
        self._alive: list = []  # the real objects, kept alive while their ids are keys
        self._changes = 0  # every write counts, however many the same object gets (see state)
        self._private: set[int] = set()  # ids of objects only the frame can see (its own **kwargs dict)
        self._private_changes = 0
        self.on_write = None  # on_write(kind, key) after every write (OutputGraph: what an error at an op leaves)

    def __bool__(self) -> bool:
        return bool(self._order)

    def _written(self, kind: str, key) -> None:
        self._changes += 1
        if kind == "items" and key in self._private:
            self._private_changes += 1
            return  # what an error leaves there is seen by no one
        if self.on_write is not None:
            self.on_write(kind, key)

    def container_changed(self, var, real, private: bool = False) -> None:
        """`var` (a ListVar / DictVar of the outside object `real`) had its items changed in place. `private`: an
        object only the frame sees (the dict Python made for its **kwargs at the call): applied after the graph
        as any other, but no one sees what an error in the graph leaves in it."""
        if private:
            self._private.add(id(real))
        if id(real) not in self._containers:
            self._containers[id(real)] = var
            self._order.append(("items", id(real)))
            self._alive.append(real)
        self._written("items", id(real))

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
        self._written("attr", key)

    def sets_attrs_of(self, real) -> bool:
        """Whether the traced code set or deleted any attribute of `real`."""
        return any(key[0] == id(real) for key in self._attrs)

    def attr(self, real, name: str):
        """What the traced code last wrote to `real.name`: a Var, DELETED, or None when it did not."""
        record = self._attrs.get((id(real), name))
        return None if record is None else record[2]

    def context_var_set(self, var, real, value, token) -> None:
        """`token = real.set(value)` (`var` its ContextVarVar; the TokenVar's `old` is what context_var_value gave
        before): later reads see `value`."""
        log = self._context_vars.get(id(real))
        if log is None:
            log = self._context_vars[id(real)] = ContextVarLog(var)
            self._order.append(("context_var", id(real)))
            self._alive.append(real)
        log.calls.append(("set", value, token))
        log.current = value
        self._written("context_var", id(real))

    def context_var_reset(self, real, token) -> None:
        """`real.reset(token)` with a token a set in this trace returned (so the var has a log)."""
        log = self._context_vars[id(real)]
        log.calls.append(("reset", token))
        log.current = token.old
        self._written("context_var", id(real))
        token.used = True

    def context_var_value(self, real):
        """What the traced code left in the ContextVar `real`: a Var, or AT_ENTRY when it did not change it (or
        reset it back)."""
        log = self._context_vars.get(id(real))
        return AT_ENTRY if log is None else log.current

    def attr_values(self) -> dict:
        """(id(real object), name) -> the value the traced code last wrote there (a Var or DELETED)."""
        return {key: record[2] for key, record in self._attrs.items()}

    def state(self) -> tuple:
        """Changes a later state() can be compared with: equal states mean nothing was written in between (items
        taken from outside iterators count as writes: they are taken from the real ones too)."""
        return (self._changes,) + tuple(self._containers[key[1]].pos for key in self._order if key[0] == "advance")

    def writes_shared_containers(self) -> bool:
        """Whether the trace changed the items of a list or dict that is not private to the frame."""
        return any(key[0] == "items" and key[1] not in self._private for key in self._order)

    def with_attrs_only(self, attrs: dict) -> "SideEffects":
        """A log of just these attribute writes ((id(real), name) -> value Var / DELETED), on the objects this
        log wrote them to: what the generated code applies on one path (jit/frame_compiler.py on errors)."""
        out = SideEffects()
        for key in self._order:
            if key[0] == "attr" and key[1:] in attrs:
                obj_var, name, _ = self._attrs[key[1:]]
                out._order.append(key)
                out._attrs[key[1:]] = (obj_var, name, attrs[key[1:]])
                out._changes += 1
        out._alive = list(self._alive)
        return out

    def pending(self, seen_outside: bool = False) -> bool:
        """Whether anything was written (the generated code would apply something); `seen_outside`: anything
        but the frame's private objects."""
        changes = self._changes - (self._private_changes if seen_outside else 0)
        return changes > 0 or any(self.state()[1:])

    def records(self) -> list[tuple]:
        """In first-change order: ("items", container Var), ("advance", iterator Var), ("attr", object Var, name,
        value Var / DELETED) and ("context_var", ContextVarLog)."""
        out = []
        for key in self._order:
            if key[0] in ("items", "advance"):
                out.append((key[0], self._containers[key[1]]))
            elif key[0] == "context_var":
                out.append((key[0], self._context_vars[key[1]]))
            else:
                out.append(("attr",) + self._attrs[key[1:]])
        return out

    def targets(self) -> list:
        """The Vars of the outside objects written to (lists, dicts, iterators, objects and modules)."""
        return [r[1] for r in self.records() if r[0] != "context_var"]

    def roots(self) -> list:
        """Every value the writes store: graph outputs, built before anything is written."""
        out: list = []
        for record in self.records():
            if record[0] == "advance":
                continue
            if record[0] == "context_var":  # every value set: the calls may be replayed (ContextVarLog)
                out += [call[1] for call in record[1].calls if call[0] == "set"]
                continue
            if record[0] == "items":
                out += record[1].written()
            elif record[3] is not DELETED:
                out.append(record[3])
        return out

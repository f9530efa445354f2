"""Sets made in the traced code ({...}, set(), set comprehensions, results of set operations).

Items are Vars keyed the way Python hashes them: constants by value (so 1 and True are one item, as in Python),
tensors, modules and objects whose class keeps object's __hash__/__eq__ by identity. Python iterates a set in
hash-table order, which for objects depends on their ids: only a set of constants can be iterated, in the order
a real set (`shadow`, given the same operations in the same order) has."""
from __future__ import annotations

from jit.break_reasons import unsupported
from jit.variables.base import Const, NotConstant, Var
from jit.variables.containers import TupleVar
from jit.variables.objects import ModuleVar, NewObjectVar, ObjectVar
from jit.variables.tensor import TensorVar


class _Identity:
    """A set key for an object hashed by identity."""
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, _Identity) and other.obj is self.obj


def _by_identity(cls: type) -> bool:
    return cls.__hash__ is object.__hash__ and cls.__eq__ is object.__eq__


def set_key(v: Var):
    """How Python would hash and compare `v` as a set item or dict key; unsupported where that runs user code or
    depends on tensor values."""
    if v.is_const():
        value = v.const()
        try:
            hash(value)
        except TypeError as e:
            unsupported("exception", f"TypeError: {e}")
        return value
    if type(v) is TupleVar:  # a tuple hashes and compares its items: (1, t) is the key (1, <t by identity>)
        return tuple(set_key(i) for i in v.items)
    if isinstance(v, TensorVar):
        return _Identity(v.node)  # Tensor.__hash__ is id(); two Vars of one node are one tensor
    if isinstance(v, ModuleVar) and _by_identity(type(v.module)):
        return _Identity(v.module)
    if isinstance(v, ObjectVar) and _by_identity(type(v.obj)):
        return _Identity(v.obj)
    if isinstance(v, NewObjectVar) and _by_identity(v.cls):
        return _Identity(v)
    unsupported("unsupported_value", f"{v.describe()} as a set item (its hash is user code or unknown)")


class SetVar(Var):
    def __init__(self, items=(), frozen: bool = False):
        self.items: dict = {}  # set_key -> Var, in insertion order
        self.shadow: set | None = set()  # the same set of constants, while every item is one
        self.frozen = frozen
        for v in items:
            self.add(v)

    @classmethod
    def of_constants(cls, values) -> SetVar:
        """A set result computed on constants (keeps the real result's order)."""
        out = cls((), frozen=isinstance(values, frozenset))
        out.items = {v: Const(v) for v in values}
        out.shadow = set(values)
        return out

    def python_type(self):
        return frozenset if self.frozen else set

    def add(self, v: Var) -> None:
        key = set_key(v)
        if key not in self.items:
            self.items[key] = v
        if self.shadow is not None and v.is_const():
            self.shadow.add(key)
        else:
            self.shadow = None

    def discard(self, v: Var) -> bool:
        key = set_key(v)
        if key not in self.items:
            return False
        del self.items[key]
        if self.shadow is not None:
            self.shadow.discard(key)
        return True

    def ordered(self) -> list[Var]:
        """The items in Python's iteration order."""
        if self.shadow is None:
            unsupported("unsupported_value", "iterating over a set that holds tensors or objects (Python's order "
                                             "follows their ids)")
        return [self.items[k] for k in self.shadow]

    def is_const(self):
        return self.shadow is not None

    def const(self):
        if self.shadow is None:
            raise NotConstant(self.describe())
        return frozenset(self.shadow) if self.frozen else set(self.shadow)

    def describe(self):
        return f"{'frozenset' if self.frozen else 'set'} of {len(self.items)}"

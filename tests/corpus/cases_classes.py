"""User classes: attributes, methods, properties, class/static methods, dataclasses and namedtuples."""
import collections
import dataclasses
import typing

import torch

from .case import CaseList, tensors, values

C = CaseList("classes")
T1 = tensors((3, 4))


class Scaler:
    factor_default = 2.0

    def __init__(self, factor=None):
        self.factor = self.factor_default if factor is None else factor

    def __call__(self, t):
        return t * self.factor

    def apply(self, t, shift=0.0):
        return self(t) + shift

    @property
    def double_factor(self):
        return self.factor * 2

    @classmethod
    def make(cls, factor):
        return cls(factor)

    @staticmethod
    def shift(t, by):
        return t + by


class OffsetScaler(Scaler):
    def __init__(self, factor, offset):
        super().__init__(factor)
        self.offset = offset

    def apply(self, t, shift=0.0):
        return super().apply(t, shift) + self.offset


@dataclasses.dataclass
class Pair:
    first: torch.Tensor
    second: torch.Tensor
    tag: str = "pair"

    def total(self):
        return self.first + self.second


@dataclasses.dataclass(frozen=True)
class Config:
    width: int = 4
    scale: float = 0.5


Point = collections.namedtuple("Point", ["x", "y"])


class Stats(typing.NamedTuple):
    mean: torch.Tensor
    std: torch.Tensor
    n: int


_SCALER = Scaler(3.0)


@C.add(T1)
def object_built_inside(x):
    s = Scaler(4.0)
    return s(x)


@C.add(T1)
def global_object(x):
    return _SCALER(x), _SCALER.factor


@C.add(T1)
def method_call(x):
    return Scaler(2.0).apply(x, shift=1.0)


@C.add(T1)
def property_access(x):
    return x * Scaler(1.5).double_factor


@C.add(T1)
def class_attribute(x):
    return x * Scaler.factor_default, Scaler().factor


@C.add(T1)
def classmethod_call(x):
    return Scaler.make(5.0)(x)


@C.add(T1)
def staticmethod_call(x):
    return Scaler.shift(x, 2), Scaler(1.0).shift(x, 3)


@C.add(T1)
def inheritance_super(x):
    return OffsetScaler(2.0, 10.0).apply(x, 1.0)


@C.add(T1)
def attribute_mutation(x):
    s = Scaler(1.0)
    s.factor = 7.0
    s.extra = x * 2
    return s(x) + s.extra


@C.add(T1)
def setattr_getattr_dynamic(x):
    s = Scaler(1.0)
    setattr(s, "factor", 3.0)
    return getattr(s, "factor") * x, hasattr(s, "extra")


@C.add(T1)
def dataclass_return(x):
    return Pair(x, x * 2)


@C.add(T1)
def dataclass_method(x):
    p = Pair(x, x + 1, tag="p")
    return p.total(), p.tag


@C.add(T1)
def dataclass_replace_fields(x):
    p = Pair(x, x)
    q = dataclasses.replace(p, second=x * 3)
    return q, [f.name for f in dataclasses.fields(q)]


@C.add(T1)
def frozen_dataclass_config(x):
    cfg = Config(width=2)
    return x[:, : cfg.width] * cfg.scale


@C.add(values(lambda: torch.ones(3), Config(scale=3.0)))
def dataclass_argument(x, cfg):
    return x * cfg.scale + cfg.width


@C.add(T1)
def namedtuple_return(x):
    return Point(x, x * 2)


@C.add(T1)
def namedtuple_access(x):
    p = Point(x, y=x + 1)
    a, b = p
    return p.x + p[1] + a + b, p._replace(x=x * 0)


@C.add(T1)
def typed_namedtuple(x):
    return Stats(x.mean(0), x.std(0), x.shape[0])


@C.add(T1)
def namedtuple_of_shapes(x):
    return Point(*x.shape), x.sum()


@C.add(T1)
def object_in_container(x):
    scalers = [Scaler(1.0), Scaler(2.0), OffsetScaler(3.0, 1.0)]
    return [s.apply(x) for s in scalers]


@C.add(T1)
def isinstance_user_class(x):
    s = OffsetScaler(1.0, 0.0)
    return x * isinstance(s, Scaler), isinstance(s, OffsetScaler), type(s).__name__


@C.add(T1)
def dunder_dict_and_vars(x):
    s = Scaler(2.0)
    return x * vars(s)["factor"], sorted(s.__dict__)


@C.add(T1)
def class_defined_inside(x):
    class Local:
        def __init__(self, t):
            self.t = t

        def grow(self):
            return self.t * 2

    return Local(x).grow()


@C.add(T1)
def tensor_subclass_check(x):
    return isinstance(x, torch.nn.Parameter), torch.nn.Parameter(x.clone()).detach() * 2


class _Pair(typing.NamedTuple):
    a: int
    b: int = 5
    KIND = "pair"

    def total(self):
        return self.a + self.b

    @property
    def twice(self):
        return self.a * 2


_Point = collections.namedtuple("_Point", "p q")


@C.add(T1)
def namedtuple_hasattr_fields(x):
    nt = _Pair(1)
    return x + 1, hasattr(nt, "_fields"), hasattr(_Point(1, 2), "_fields")


@C.add(T1)
def namedtuple_class_attributes(x):
    # A named tuple's class attributes are found through its MRO: _fields, methods, properties, constants.
    nt, pt = _Pair(1), _Point(2, 3)
    found = hasattr(nt, "_fields"), hasattr(pt, "_fields"), hasattr(nt, "__len__"), hasattr(nt, "mro")
    return (x * nt.total(), found, nt._fields, pt._fields, nt.twice, nt.KIND, hasattr(nt, "missing"),
            getattr(nt, "missing", 7), nt._field_defaults)


class _Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1


class _Base:
    scale = 4

    @property
    def bigger(self):
        return self.scale + 1


class _Derived(_Base):
    pass


_OUTSIDE_SLOTS, _OUTSIDE_OBJ = _Slotted(), _Derived()


@C.add(T1)
def attribute_lookup_order(x):
    # Unset __slots__ entries are missing (not an error to ask); class attributes come through the MRO; the
    # metaclass (type's mro, __name__) is not seen through an instance.
    s, outside_slots, outside_obj = _Slotted(), _OUTSIDE_SLOTS, _OUTSIDE_OBJ
    return (x * s.a, hasattr(s, "a"), hasattr(s, "b"), getattr(s, "b", 9), hasattr(outside_slots, "b"),
            outside_obj.bigger, hasattr(outside_obj, "mro"), hasattr(_Derived, "mro"), hasattr(outside_obj, "scale"))


@dataclasses.dataclass
class _Coord:
    a: int
    b: int = 0


class _Tag:
    def __init__(self, v):
        self.v = v

    def __eq__(self, other):
        return isinstance(other, _Tag) and self.v == other.v


class _Plain:
    pass


@C.add(T1)
def dataclass_and_list_equality(x):
    return x + 1, _Coord(1) == _Coord(1), [1, 1.0, True].count(1)


@C.add(T1)
def equality_follows_python_protocol(x):
    # == runs __eq__ (a dataclass's too), tries the reflected method, falls back to identity; containers compare
    # their items with identity first, then ==.
    p, q, t, n = _Coord(1), _Coord(1), _Tag(2), _Plain()
    return (x + 1, p == q, p != q, p == _Coord(2), _Tag(2) == t, t != _Tag(3), 3 == t, t == 3, n == n, n == _Plain(),
            None == p, p == None, [p] == [q], p in [q], [q].index(p), {"a": p} == {"a": q},
            [1, 1.0, True].count(1), 1 in [1.0], [1.0, 2].index(2.0), [3, 4, 3].index(3, 1))


class _Celsius:
    def __init__(self, degrees):
        self._k = 0
        self.degrees = degrees  # through the property's setter

    @property
    def degrees(self):
        return self._k - 273

    @degrees.setter
    def degrees(self, value):
        self._k = value + 273


class _Doubling:
    def __setattr__(self, name, value):
        object.__setattr__(self, name, value * 2)


class _Defaults:
    def __init__(self):
        self.real = 1

    def __getattr__(self, name):
        return len(name)


@C.add(T1)
def attribute_writes_and_fallbacks(x):
    # Writes go through the class: a property's setter, a custom __setattr__; reads of missing names go to
    # __getattr__.
    c, d, g = _Celsius(20), _Doubling(), _Defaults()
    d.a = 3
    return x + c.degrees, c._k, d.a, g.real, g.abc, hasattr(g, "anything"), getattr(g, "xy", None)


class _Bag:
    def __init__(self, items):
        self.items = list(items)

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def __add__(self, other):
        return _Bag(self.items + [other])

    def __radd__(self, other):
        return _Bag([other] + self.items)

    def __neg__(self):
        return _Bag(reversed(self.items))


class _Never:
    def __bool__(self):
        return False


@C.add(T1)
def user_object_protocols(x):
    # truth from __bool__ / __len__, len(), iteration, indexing, `in` through __iter__, operators and their
    # reflected forms, unary operators: each a Python method of the class, run as Python would.
    empty, bag = _Bag([]), _Bag([1, 2])
    more, front, back = bag + 3, 0 + bag, -bag
    return (x * len(bag), bool(empty), bool(bag), bool(_Never()), (1 if empty else 2), list(bag), bag[1], 2 in bag,
            9 in bag, more.items, front.items, back.items)

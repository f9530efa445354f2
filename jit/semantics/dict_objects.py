"""Instances of dict subclasses made in the traced code: transformers' ModelOutput (an OrderedDict dataclass with
its own __setattr__, __setitem__ and __getitem__), or any dict subclass written in Python.

Such an object is a NewObjectVar with attributes and, in `dict_var`, its items. The class's Python methods are
inlined as for any user object; what they reach of dict's and OrderedDict's own C methods (through super(),
dict.__setitem__(self, ...), or methods the class does not override) is answered here on the items. The
generated code rebuilds the object with both (jit/codegen.py, rebuild_object)."""
from __future__ import annotations

import collections

from jit.break_reasons import unsupported
from jit.variables import Const, DictVar, NewObjectVar, ObjectVar, Var

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class written in Python
_C_BASES = (dict, collections.OrderedDict, object)
# the C methods answered on the items; others (copy, fromkeys, __reversed__, move_to_end...) break at their call
SLOTS = ("__init__", "__getitem__", "__setitem__", "__delitem__", "__contains__", "__len__", "__iter__", "keys",
         "values", "items", "get", "pop", "setdefault", "update", "popitem", "clear")


def dict_backed_class(cls: type) -> bool:
    """A dict subclass whose C part is only dict's (or OrderedDict's): its items can be modelled as a DictVar."""
    return issubclass(cls, dict) and cls.__new__ is dict.__new__ and \
        all(k in _C_BASES or k.__flags__ & _HEAPTYPE for k in cls.__mro__)


def is_dict_object(v: Var) -> bool:
    """An instance of a dict-backed class made here, or one from outside (read through its source: the
    encoder_outputs transformers' generate() hands back to the model every step)."""
    return isinstance(v, NewObjectVar) and v.dict_var is not None or \
        isinstance(v, ObjectVar) and v.source is not None and dict_backed_class(type(v.obj))


# the C methods that change the items: on an object from outside they are a break (eager changes the object)
_WRITES = {"__init__", "__setitem__", "__delitem__", "pop", "setdefault", "update", "popitem", "clear"}


def _items(tx, obj: Var) -> DictVar:
    """The object's items: a made object's DictVar; for one from outside a lazily read dict over the real object
    (jit/variables/outside.py: each key looked up guarded, through the class's own __getitem__)."""
    if isinstance(obj, NewObjectVar):
        return obj.dict_var
    items = getattr(obj, "dict_items", None)
    if items is None:
        from jit.variables.outside import OutsideDictVar
        items = obj.dict_items = OutsideDictVar(obj.obj, obj.source, tx.builder)
    return items


def is_dict_slot(fn) -> bool:
    """`fn` is one of dict's or OrderedDict's own methods answered here."""
    name = getattr(fn, "__name__", None)
    return name in SLOTS and any(getattr(base, name, None) is fn for base in (dict, collections.OrderedDict))


def dict_slot(tx, obj: NewObjectVar, name: str, args: list, kwargs: dict) -> Var:
    """dict's (or OrderedDict's) method `name` called on the object's items."""
    from jit.semantics.containers_impl import container_method
    from jit.semantics.iteration import get_iter
    from jit.semantics.subscript import delete_item, get_item, set_item
    if isinstance(obj, ObjectVar) and name in _WRITES:
        unsupported("side_effect", f"{obj.python_type().__name__}.{name} on an object from outside the function")
    items = _items(tx, obj)
    if name == "__init__":
        if args or kwargs:
            container_method(tx, items, "update", list(args), kwargs)
        return Const(None)
    if name == "__setitem__":
        set_item(tx, items, args[0], args[1])
        return Const(None)
    if name == "__delitem__":
        delete_item(tx, items, args[0])
        return Const(None)
    if name == "__getitem__":
        return get_item(tx, items, args[0])
    if name == "__contains__":
        if not args[0].is_const():
            unsupported("unsupported_value", f"`in` on {obj.describe()} with a key not known at compile time")
        return Const(args[0].const() in items.items)
    if name == "__len__":
        return Const(len(items.items))
    if name == "__iter__":
        return get_iter(tx, items)
    if name in SLOTS:
        return container_method(tx, items, name, list(args), kwargs)
    unsupported("unsupported_call", f"{obj.python_type().__name__}.{name} is implemented in C")


def attrs_view(obj: NewObjectVar) -> DictVar:
    """obj.__dict__: a DictVar over the very attribute dict, so writes through it are the object's."""
    view = DictVar({})
    view.items = obj.attrs
    return view

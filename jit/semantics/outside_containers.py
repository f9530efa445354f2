"""The operations that read or change only part of a list or dict from outside (jit/variables/outside.py), so
they do not wrap the whole container: an index or key, a store, an append, a pop from the end, len, truth, `in`
on a dict. Each answers None (or False) when it does not apply; the caller then goes on to the general code,
which reads `items` (the whole container, guarded as before)."""
from __future__ import annotations

import collections

from jit.break_reasons import PythonError, unsupported
from jit.variables import Const, DictVar, ListVar, TupleVar, Var
from framejit.guards.kinds import IdMatch
from framejit.guards.sources import AttrSource
from jit.variables.objects import ClassVar, ObjectVar
from jit.variables.tensor import TensorVar
from jit.variables.outside import MISSING, OutsideDictVar, OutsideListVar, identity_key, lazy, simple_key


def _index(key: Var):
    """A plain int index (not a slice, not a bool), or None."""
    if isinstance(key, Const) and type(key.value) is int:
        return key.value
    return None


def _key(key: Var, builder=None):
    """A dict key the lazy lookup takes (its repr spells it in guard code), or MISSING."""
    if isinstance(key, Const) and simple_key(key.value):
        return key.value
    if isinstance(key, ClassVar) and identity_key(key.value):  # guarded by identity already
        return key.value
    if isinstance(key, ObjectVar) and key.source is not None and identity_key(key.obj) and builder is not None:
        builder.guard(IdMatch(key.source, key.obj))  # `typing.Union` read from outside: the very object
        return key.obj
    if isinstance(key, TensorVar) and key.source is not None and builder is not None:
        # a tensor hashes by identity: one from outside (an optimizer's `self.state[p]`) is guarded to be the very
        # object, which keys what it keys in every call
        real = next((v for _, v, var in builder.output.inputs if var is key), None)
        if real is not None:
            builder.guard(IdMatch(key.source, real))
            return real
    return MISSING


def get_item(obj: Var, key: Var, tx=None) -> Var | None:
    if not lazy(obj):
        return None
    if isinstance(obj, OutsideListVar):
        i = _index(key)
        if i is None:
            return None
        value = obj.get(i)
        if value is None:  # out of range: the length is guarded now, so it raises at every call
            raise PythonError.of(IndexError, "list index out of range")
        return value
    k = _key(key, obj.builder)
    if k is MISSING:
        return None
    value = obj.lookup(k)
    if value is MISSING:
        value = _default_value(obj) if tx is not None else None
        if value is None:
            raise PythonError.of(KeyError, k)
        tx.output.changed_in_place(obj)
        obj.store(k, value)
    return value


def _default_value(obj: OutsideDictVar) -> Var | None:
    """A defaultdict's __missing__: a new container from its factory (guarded to stay that factory), stored
    under the key; None for a plain dict or a defaultdict without a factory (KeyError)."""
    if obj.cls is not collections.defaultdict:
        return None
    factory = obj.real.default_factory
    obj.builder.guard(IdMatch(AttrSource(obj.source, "default_factory"), factory))
    if factory is None:
        return None
    if factory in (dict, list):
        return DictVar({}) if factory is dict else ListVar([])
    unsupported("unsupported_call", f"the default of a defaultdict made by {getattr(factory, '__qualname__', factory)}")


def set_item(obj: Var, key: Var, value: Var) -> bool:
    if not lazy(obj):
        return False
    if isinstance(obj, OutsideListVar):
        i = _index(key)
        return i is not None and obj.set(i, value)
    k = _key(key, obj.builder)
    if k is MISSING:
        return False
    obj.store(k, value)
    return True


def delete_item(obj: Var, key: Var) -> bool:
    if not isinstance(obj, OutsideDictVar) or not obj.lazy:
        return False  # (deleting from a list shifts what follows: the general path)
    k = _key(key, obj.builder)
    if k is MISSING:
        return False
    if not obj.delete(k):
        raise PythonError.of(KeyError, k)
    return True


def contains(container: Var, item: Var):
    """`item in container` for a dict: True / False, or None."""
    if not isinstance(container, OutsideDictVar) or not container.lazy:
        return None
    k = _key(item, container.builder)
    return None if k is MISSING else container.lookup(k) is not MISSING


def length(v: Var) -> Var | None:
    return Const(v.size()) if lazy(v) else None


def truth(v: Var):
    return v.truth() if lazy(v) else None


def inplace_add(a: Var, b: Var) -> Var | None:
    """`xs += ys` with ys a list or tuple: xs.extend(ys)."""
    if isinstance(a, OutsideListVar) and a.lazy and isinstance(b, (ListVar, TupleVar)) and b is not a:
        a.extend(list(b.items))
        return a
    return None


def method(obj: Var, name: str, args: list[Var], kwargs: dict) -> Var | None:
    if not lazy(obj) or kwargs:
        return None
    if isinstance(obj, OutsideListVar):
        return _list_method(obj, name, args)
    return _dict_method(obj, name, args)


def _list_method(obj: OutsideListVar, name: str, args: list[Var]) -> Var | None:
    if name == "append" and len(args) == 1:
        obj.append(args[0])
    elif name == "extend" and len(args) == 1 and isinstance(args[0], (ListVar, TupleVar)) and args[0] is not obj:
        obj.extend(list(args[0].items))
    elif name == "pop" and (not args or _index(args[0]) == -1):
        value = obj.pop_last()
        if value is None:
            raise PythonError.of(IndexError, "pop from empty list")
        return value
    elif name == "clear" and not args:
        obj.clear()
    else:
        return None
    return Const(None)


def _dict_method(obj: OutsideDictVar, name: str, args: list[Var]) -> Var | None:
    k = _key(args[0], obj.builder) if args else MISSING
    if name == "get" and 1 <= len(args) <= 2 and k is not MISSING:
        value = obj.lookup(k)
        return value if value is not MISSING else (args[1] if len(args) > 1 else Const(None))
    if name == "setdefault" and 1 <= len(args) <= 2 and k is not MISSING:
        value = obj.lookup(k)
        if value is MISSING:
            value = args[1] if len(args) > 1 else Const(None)
            obj.store(k, value)
        return value
    if name == "pop" and 1 <= len(args) <= 2 and k is not MISSING:
        value = obj.lookup(k)
        if value is MISSING:
            if len(args) > 1:
                return args[1]
            raise PythonError.of(KeyError, k)
        obj.delete(k)
        return value
    if name == "update" and len(args) == 1 and isinstance(args[0], DictVar) and not lazy(args[0]) and \
            all(simple_key(key) for key in args[0].items):
        for key, value in args[0].items.items():
            obj.store(key, value)
        return Const(None)
    if name == "clear" and not args:
        obj.clear()
        return Const(None)
    return None

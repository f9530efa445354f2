"""Methods of lists, tuples and dicts built during tracing (or read, not mutated, from outside)."""
from __future__ import annotations

import operator

from jit.break_reasons import PythonError, unsupported
from jit.semantics import operators as ops
from jit.semantics import outside_containers
from jit.semantics.iteration import items_of
from jit.variables import Const, DictVar, DictViewVar, GeneratorVar, ListVar, NamedTupleVar, SetVar, TupleVar, Var


def _index(tx, items, value, start: int = 0, stop: int | None = None) -> int:
    for i, item in list(enumerate(items))[start:stop]:
        if ops.equals(tx, item, value):  # what list.index compares with: identity, then ==
            return i
    unsupported("exception", "ValueError: value is not in the sequence")


# positional arguments each modelled method takes (min, max); keyword arguments: those named
_ARITY = {
    list: {"append": (1, 1), "extend": (1, 1), "insert": (2, 2), "pop": (0, 1), "index": (1, 3), "count": (1, 1),
           "copy": (0, 0), "reverse": (0, 0), "sort": (0, 0), "clear": (0, 0), "remove": (1, 1)},
    dict: {"keys": (0, 0), "values": (0, 0), "items": (0, 0), "get": (1, 2), "copy": (0, 0), "update": (0, 1),
           "setdefault": (1, 2), "pop": (1, 2), "popitem": (0, 0), "clear": (0, 0)},
}
_KEYWORDS = {(list, "sort"): {"key", "reverse"}, (dict, "update"): None}  # None: any keyword


def _check_arity(kind: type, name: str, args: list, kwargs: dict) -> None:
    """Python's TypeError for a modelled list / dict method called with arguments it does not take (`{}.update({},
    {})`), its message from the real method given as many placeholders."""
    low, high = _ARITY[kind].get(name, (0, len(args)))
    allowed = _KEYWORDS.get((kind, name), set())
    if low <= len(args) <= high and (allowed is None or set(kwargs) <= allowed):
        return
    try:
        getattr(kind(), name)(*[None] * len(args), **{k: None for k in kwargs})
    except TypeError as e:
        raise PythonError.of(TypeError, *e.args) from None


def container_method(tx, obj: Var, name: str, args: list[Var], kwargs: dict) -> Var:
    if isinstance(obj, (ListVar, DictVar)) and name in _ARITY[list if isinstance(obj, ListVar) else dict]:
        _check_arity(list if isinstance(obj, ListVar) else dict, name, args, kwargs)
    if (result := outside_containers.method(obj, name, args, kwargs)) is not None:
        return result  # a list or dict from outside, changed or read without reading it whole
    if isinstance(obj, NamedTupleVar) and name == "_asdict":
        return DictVar(dict(zip(obj.cls._fields, obj.items)))
    if isinstance(obj, NamedTupleVar) and name == "_replace":
        fields = list(obj.cls._fields)
        items = list(obj.items)
        for k, v in kwargs.items():
            items[fields.index(k)] = v
        return NamedTupleVar(obj.cls, items)
    if isinstance(obj, (ListVar, TupleVar)):
        items = obj.items
        if name == "append":
            items.append(args[0])
        elif name == "extend":
            items.extend(items_of(tx, args[0]))
        elif name == "insert":
            items.insert(args[0].const(), args[1])
        elif name == "pop":
            try:
                return items.pop(args[0].const() if args else -1)
            except IndexError as e:  # "pop from empty list", "pop index out of range": eager's message
                raise PythonError.of(IndexError, *e.args) from None
        elif name == "index":
            return Const(_index(tx, items, args[0], *(a.const() for a in args[1:])))
        elif name == "count":
            return Const(sum(1 for i in items if ops.equals(tx, i, args[0])))
        elif name == "copy":
            return ListVar(list(items))
        elif name == "reverse":
            items.reverse()
        elif name == "sort" and isinstance(obj, ListVar):
            from jit.semantics.builtins_impl import sort_items
            items[:] = sort_items(tx, items, kwargs.get("key"), kwargs.get("reverse", Const(False)).const())
        elif name == "clear":
            items.clear()
        elif name == "remove":
            del items[_index(tx, items, args[0])]
        else:
            unsupported("unsupported_call", f"list.{name}")
        return Const(None)
    if isinstance(obj, DictVar):
        d = obj.items
        if name in ("keys", "values", "items"):
            return DictViewVar(obj, name)
        if name == "get":
            key = args[0].const()
            return d.get(key, args[1] if len(args) > 1 else Const(None))
        if name == "copy":
            return DictVar(dict(d))
        if name == "update":
            if args:
                other = args[0]
                if not isinstance(other, DictVar):
                    unsupported("unsupported_value", "dict.update with a non-dict")
                d.update(other.items)
            d.update(kwargs)
            return Const(None)
        if name == "setdefault":
            return d.setdefault(args[0].const(), args[1] if len(args) > 1 else Const(None))
        if name == "pop":
            key = args[0].const()
            if key in d:
                return d.pop(key)
            if len(args) > 1:
                return args[1]
            raise PythonError.of(KeyError, key)
        if name == "popitem":
            if not d:
                unsupported("exception", "KeyError: 'popitem(): dictionary is empty'")
            key, value = d.popitem()  # the last one inserted, as Python's
            return TupleVar([Const(key), value])
        if name == "clear":
            d.clear()
            return Const(None)
    if isinstance(obj, GeneratorVar):
        from jit.semantics.iteration import generator_method
        return generator_method(tx, obj, name, args)
    if isinstance(obj, SetVar):
        if obj.frozen and (name.endswith("update") or name in ("add", "discard", "remove", "pop", "clear")):
            unsupported("exception", f"AttributeError: 'frozenset' object has no attribute '{name}'")
        return _set_method(tx, obj, name, args)
    if isinstance(obj, DictViewVar) and name == "isdisjoint":
        return Const(len(_as_set(tx, obj).items.keys() & _as_set(tx, args[0]).items.keys()) == 0)
    unsupported("unsupported_call", f"{obj.describe()}.{name}")


def _as_set(tx, v: Var) -> SetVar:
    return v if isinstance(v, SetVar) else SetVar(items_of(tx, v))


# set methods taking any iterables -> the operator they share their meaning with
_SET_METHOD_OPS = {"union": operator.or_, "intersection": operator.and_, "difference": operator.sub,
                   "symmetric_difference": operator.xor, "update": operator.ior, "intersection_update": operator.iand,
                   "difference_update": operator.isub, "symmetric_difference_update": operator.ixor,
                   "issubset": operator.le, "issuperset": operator.ge}


def _set_method(tx, s: SetVar, name: str, args: list[Var]) -> Var:
    if name in _SET_METHOD_OPS:
        op = _SET_METHOD_OPS[name]
        result = s
        for other in args:  # union(a, b) == s | a | b; update(a, b) updates with each in turn
            result = ops.binary(tx, op, result, _as_set(tx, other))
        if name in ("union", "intersection", "difference", "symmetric_difference") and result is s:
            result = _copy(s)  # s.union() with no arguments is a copy
        return Const(None) if name.endswith("update") else result
    if name == "isdisjoint":
        return Const(len(s.items.keys() & _as_set(tx, args[0]).items.keys()) == 0)
    if name == "add":
        s.add(args[0])
    elif name == "discard":
        s.discard(args[0])
    elif name == "remove":
        if not s.discard(args[0]):
            unsupported("exception", f"KeyError: {args[0].describe()}")
    elif name == "pop":
        if not s.items:
            unsupported("exception", "KeyError: 'pop from an empty set'")
        if s.shadow is None:
            unsupported("unsupported_value", "set.pop() on a set of tensors or objects (which one follows ids)")
        return s.items.pop(s.shadow.pop())  # the real set picks the same item Python would
    elif name == "clear":
        s.items, s.shadow = {}, set()
    elif name == "copy":
        return _copy(s)
    else:
        unsupported("unsupported_call", f"set.{name}")
    return Const(None)


def _copy(s: SetVar) -> SetVar:
    if s.frozen:
        return s  # frozenset.copy() is the frozenset itself
    out = SetVar()
    out.items = dict(s.items)
    out.shadow = None if s.shadow is None else set(s.shadow)
    return out

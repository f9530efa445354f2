"""Methods of lists, tuples and dicts built during tracing (or read, not mutated, from outside)."""
from __future__ import annotations

from jit.break_reasons import unsupported
from jit.semantics import operators as ops
from jit.semantics.iteration import items_of
from jit.variables import Const, DictVar, ListVar, NamedTupleVar, TupleVar, Var


def _index(tx, items, value) -> int:
    for i, item in enumerate(items):
        if ops.identical(tx, item, value):
            return i
    unsupported("exception", "ValueError: value is not in the sequence")


def container_method(tx, obj: Var, name: str, args: list[Var], kwargs: dict) -> Var:
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
            except IndexError:
                unsupported("exception", "IndexError: pop from empty list")
        elif name == "index":
            return Const(_index(tx, items, args[0]))
        elif name == "count":
            return Const(sum(1 for i in items if ops.identical(tx, i, args[0])))
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
        if name == "keys":
            return ListVar([Const(k) for k in d])
        if name == "values":
            return ListVar(list(d.values()))
        if name == "items":
            return ListVar([TupleVar([Const(k), v]) for k, v in d.items()])
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
            unsupported("exception", f"KeyError: {key!r}")
        if name == "clear":
            d.clear()
            return Const(None)
    unsupported("unsupported_call", f"{obj.describe()}.{name}")

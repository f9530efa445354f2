"""Builtins the executor models, one small function each, looked up by the builtin object."""
from __future__ import annotations

import abc
import collections
import enum
import inspect
import itertools
import math
import operator
import types

import torch

from framejit.guards.kinds import AttrAbsent
from jit.break_reasons import PythonError, unsupported
from jit.semantics import exceptions
from jit.semantics import operators as ops
from jit.semantics import outside_containers
from jit.semantics.iteration import items_of
from jit.variables import (ClassVar, Const, DictVar, DictViewVar, ExceptionVar, IteratorVar, ListVar, ModuleVar,
                           NewObjectVar, ObjectVar, SetVar, TupleVar, Var)
from jit.variables.base import LazyArg
from jit.variables.outside import lazy
from jit.variables.floats import FloatVar
from jit.variables.sizes import SizeVar
from jit.variables.tensor import TensorVar

BUILTINS: dict = {}


def builtin(*fns):
    def register(impl):
        for fn in fns:
            BUILTINS[fn] = impl
        return impl
    return register


def _consts(args, what):
    if not all(a.is_const() for a in args):
        unsupported("unsupported_value", f"{what} of values not known at compile time")
    return [a.const() for a in args]


@builtin(len)
def _len(tx, args, kwargs):
    (v,) = args
    if (n := outside_containers.length(v)) is not None:
        return n  # a list or dict from outside: its length guarded, its items not read
    if isinstance(v, (TupleVar, ListVar, DictVar)):
        return Const(len(v.items))
    if isinstance(v, (DictViewVar, SetVar)):
        return Const(len(v.dict_var.items if isinstance(v, DictViewVar) else v.items))
    if isinstance(v, TensorVar):
        if v.example.dim() == 0:
            unsupported("exception", "TypeError: len() of a 0-d tensor")
        if tx.output.dynamic:
            return tx.output.call("call_method", "size", (v, Const(0)), {})
        return Const(v.example.shape[0])
    if isinstance(v, ModuleVar):
        return Const(len(v.module))
    if isinstance(v, ClassVar) and isinstance(v.cls, enum.EnumMeta):
        return Const(len(v.cls))
    if v.is_const():
        return Const(len(v.const()))
    if ops.user_object(v) and (n := ops.call_dunder(tx, v, "__len__", [])) is not None:
        return n
    unsupported("unsupported_value", f"len() of {v.describe()}")


def _type_of(tx, v: Var):
    if isinstance(v, TensorVar):
        return v.tensor_type
    try:
        return v.python_type()
    except NotImplementedError:
        unsupported("unsupported_value", f"the type of {v.describe()}")


@builtin(isinstance)
def _isinstance(tx, args, kwargs):
    v, classes = args
    cls = classes.const() if classes.is_const() else tuple(c.const() for c in classes.items)
    if not lazy(v) and v.is_const() and not isinstance(v, (SizeVar, FloatVar)):  # (outside list or dict: type guarded)
        return Const(isinstance(v.const(), cls))  # the real check on the real value (a metaclass's included)
    # a dynamic size is an int whatever its value, a compiled float a float: asking its type pins nothing (a KV
    # cache's length checked by `isinstance(n, int)` in transformers recompiled every decoding step)
    for c in _flat(cls):
        check = getattr(type(c), "__instancecheck__", None)
        if check not in _PLAIN_INSTANCE_CHECKS:
            # a metaclass deciding membership in Python (typing's, a user's): its code may look at the value
            unsupported("unsupported_call", f"isinstance() with {type(c).__name__}.__instancecheck__")
    # type.__instancecheck__ and ABCMeta's (registrations, __subclasshook__) answer from type(v) here
    return Const(issubclass(_type_of(tx, v), cls))


# torch's Parameter check also accepts a plain tensor flagged `_is_param`, which tensors the traced code sees
# never are (the check it replaced compared types only)
_PLAIN_INSTANCE_CHECKS = (type.__instancecheck__, abc.ABCMeta.__instancecheck__,
                          type(torch.nn.Parameter).__instancecheck__)


def _flat(classes) -> list:
    """isinstance's second argument: a class, or tuples of them, nested."""
    return [c for item in classes for c in _flat(item)] if isinstance(classes, tuple) else [classes]


@builtin(issubclass)
def _issubclass(tx, args, kwargs):
    a, b = _consts(args, "issubclass()")
    return Const(issubclass(a, b))


@builtin(type)
def _type(tx, args, kwargs):
    if len(args) != 1:
        unsupported("unsupported_call", "type() with three arguments")
    return ClassVar(_type_of(tx, args[0]))


@builtin(range)
def _range(tx, args, kwargs):
    return Const(range(*_consts(args, "range()")))


@builtin(enumerate)
def _enumerate(tx, args, kwargs):
    start = (args[1] if len(args) > 1 else kwargs.get("start", Const(0))).const()
    return IteratorVar([TupleVar([Const(i + start), v]) for i, v in enumerate(items_of(tx, args[0]))])


@builtin(zip)
def _zip(tx, args, kwargs):
    strict = kwargs.get("strict", Const(False)).const()
    lists = [items_of(tx, a) for a in args]
    if strict and len({len(x) for x in lists}) > 1:
        unsupported("exception", "ValueError: zip() arguments have different lengths")
    return IteratorVar([TupleVar(list(t)) for t in zip(*lists)])


@builtin(itertools.chain)
def _chain(tx, args, kwargs):
    # the optimizers' hook loops: chain(global_hooks.values(), self._hooks.values())
    return IteratorVar([v for a in args for v in items_of(tx, a)])


@builtin(reversed)
def _reversed(tx, args, kwargs):
    return IteratorVar(list(reversed(items_of(tx, args[0]))))


@builtin(iter)
def _iter(tx, args, kwargs):
    from jit.semantics.iteration import get_iter
    return get_iter(tx, args[0])


@builtin(next)
def _next(tx, args, kwargs):
    from jit.semantics.iteration import next_item, return_value_of
    item = next_item(tx, args[0])
    if item is None:
        if len(args) > 1:
            return args[1]
        value = return_value_of(args[0])  # a generator's return value travels in its StopIteration
        raise PythonError(ExceptionVar(StopIteration, [] if ops.is_none(tx, value) else [value]))
    return item


def sort_items(tx, items: list, key, reverse: bool) -> list:
    """Sort Vars by constant keys (computed by calling `key` symbolically when given)."""
    from jit.semantics.calls import call
    keys = [call(tx, key, [i], {}) if key is not None and not (key.is_const() and key.const() is None) else i
            for i in items]
    order = sorted(range(len(items)), key=lambda k: _consts([keys[k]], "sort keys")[0], reverse=reverse)
    return [items[k] for k in order]


@builtin(sorted)
def _sorted(tx, args, kwargs):
    items = sort_items(tx, items_of(tx, args[0]), kwargs.get("key"), kwargs.get("reverse", Const(False)).const())
    return ListVar(items)


@builtin(filter)
def _filter(tx, args, kwargs):
    from jit.semantics.calls import call
    fn, items = args[0], items_of(tx, args[1])
    keep = [i for i in items if ops.truth(tx, i if fn.is_const() and fn.const() is None else call(tx, fn, [i], {}))]
    return IteratorVar(keep)


@builtin(setattr)
def _setattr(tx, args, kwargs):
    from jit.semantics.attributes import set_attr
    set_attr(tx, args[0], args[1].const(), args[2])
    return Const(None)


def _fold(tx, op, items):
    result = items[0]
    for item in items[1:]:
        result = ops.binary(tx, op, result, item)
    return result


def _minmax(pick):
    def impl(tx, args, kwargs):
        items = items_of(tx, args[0]) if len(args) == 1 else list(args)
        if any(isinstance(i, TensorVar) for i in items):
            if len(items) == 2 and all(isinstance(i, TensorVar) for i in items) and all(i.example.numel() == 1 for i in items):
                unsupported("data_dependent_branch", f"{pick.__name__}() of tensors compares their values")
            unsupported("data_dependent_branch", f"{pick.__name__}() over tensors compares their values")
        values = _consts(items, f"{pick.__name__}()")
        kw = {k: v.const() for k, v in zip(kwargs, _consts(list(kwargs.values()), f"{pick.__name__}(key=...)"))}
        return Const(pick(values, **kw)) if values else Const(pick((), **kw))
    return impl


builtin(min)(_minmax(min))
builtin(max)(_minmax(max))


@builtin(abs)
def _abs(tx, args, kwargs):
    return ops.unary(tx, operator.abs, args[0])


@builtin(sum)
def _sum(tx, args, kwargs):
    items = items_of(tx, args[0])
    start = args[1] if len(args) > 1 else kwargs.get("start", Const(0))
    return _fold(tx, operator.add, [start] + items)


@builtin(any, all)
def _any_all(tx, args, kwargs):
    from jit.semantics.iteration import get_iter, next_item
    stop_at = tx.current_builtin is any  # any() stops at the first true item, all() at the first false one
    it = get_iter(tx, args[0])  # stepped one item at a time: a generator runs no further than Python's would
    while (item := next_item(tx, it)) is not None:
        if ops.truth(tx, item) == stop_at:
            return Const(stop_at)
    return Const(not stop_at)


def _found(tx, obj: Var, name: str):
    """get_attr(obj, name), or None where the attribute is missing (guarded to stay missing)."""
    from jit.break_reasons import PythonError
    from jit.semantics.attributes import get_attr
    try:
        return get_attr(tx, obj, name)
    except PythonError as e:  # a lookup's miss, or an AttributeError raised by a property's code
        if not issubclass(e.exc_type, AttributeError):
            raise
    _guard_absent(tx, obj, name)
    return None


def _guard_absent(tx, obj: Var, name: str) -> None:
    """An outside object lacks `name` now; the compiled code relies on that. Objects are guarded by type (modules
    by identity), so an attribute set later would go unnoticed without a guard of its own."""
    if obj.source is None or not isinstance(obj, (ObjectVar, ModuleVar)):
        return  # made in the traced code (its attributes are all known) or a class, module... (guarded by identity)
    from jit.semantics.attributes import class_lookup
    real = obj.obj if isinstance(obj, ObjectVar) else obj.module
    cls = type(real)
    on_class = class_lookup(cls, name, None)
    # an unset __slots__ entry is missing without running user code (its descriptor is C); anything else found on
    # the class, or a __getattr__, decides by running code
    if on_class is not None and not isinstance(on_class, types.MemberDescriptorType) or (
            hasattr(cls, "__getattr__") and not isinstance(real, torch.nn.Module)):
        unsupported("unsupported_value", f"whether {cls.__name__}.{name} exists (looking it up runs user code)")
    tx.output.guards.append(AttrAbsent(obj.source, name))



@builtin(getattr)
def _getattr(tx, args, kwargs):
    from jit.semantics.attributes import get_attr
    obj, name = args[0], args[1].const()
    if len(args) > 2:
        found = _found(tx, obj, name)
        return args[2] if found is None else found
    return get_attr(tx, obj, name)


@builtin(hasattr)
def _hasattr(tx, args, kwargs):
    return Const(_found(tx, args[0], args[1].const()) is not None)


def _convert(pytype):
    def impl(tx, args, kwargs):
        if args and isinstance(args[0], TensorVar):
            unsupported("tensor_to_python", f"{pytype.__name__}() of a tensor")
        if pytype is str and len(args) == 1 and not kwargs and isinstance(args[0], ExceptionVar):
            return exceptions.as_text(args[0], str)
        values = _consts(args, f"{pytype.__name__}()")
        try:
            return Const(pytype(*values, **{k: v.const() for k, v in kwargs.items()}))
        except Exception as e:  # noqa: BLE001 - int("abc"): the user's code raises here too
            exceptions.raised_on_constants(e)
    return impl


for _t in (int, float, str, complex):
    builtin(_t)(_convert(_t))


@builtin(bool)
def _bool(tx, args, kwargs):
    if not args:
        return Const(False)
    if isinstance(args[0], TensorVar):
        unsupported("tensor_to_python", "bool() of a tensor")
    return Const(ops.truth(tx, args[0]))  # containers, views, objects: Python's truth rules, not a constant


@builtin(set)
def _set(tx, args, kwargs):
    return SetVar(items_of(tx, args[0]) if args else [])


@builtin(round)
def _round(tx, args, kwargs):
    if isinstance(args[0], TensorVar):
        unsupported("tensor_to_python", "round() of a tensor")
    return Const(round(*_consts(args, "round()")))


@builtin(divmod, pow)
def _numeric(tx, args, kwargs):
    if any(isinstance(a, TensorVar) for a in args):
        if tx.current_builtin is pow:
            return ops.binary(tx, operator.pow, args[0], args[1])
        unsupported("unsupported_call", "divmod() of tensors")
    return Const(tx.current_builtin(*_consts(args, "divmod()/pow()")))


@builtin(tuple)
def _tuple(tx, args, kwargs):
    return TupleVar(items_of(tx, args[0]) if args else [])


@builtin(list)
def _list(tx, args, kwargs):
    return ListVar(items_of(tx, args[0]) if args else [])


@builtin(dict)
def _dict(tx, args, kwargs):
    out = {}
    if args:
        src = args[0]
        if isinstance(src, DictVar):
            out.update(src.items)
        else:
            for pair in items_of(tx, src):
                k, v = items_of(tx, pair)
                out[k.const()] = v
    out.update(kwargs)
    return DictVar(out)


@builtin(callable)
def _callable(tx, args, kwargs):
    # Python's rule: the object's type defines __call__ (an instance attribute named __call__ does not count).
    # A class is callable through its metaclass, which _type_of gives for a ClassVar.
    return Const(any("__call__" in vars(k) for k in _type_of(tx, args[0]).__mro__))


@builtin(print)
def _print(tx, args, kwargs):
    unsupported("side_effect", "print() writes to a stream")


@builtin(id)
def _id(tx, args, kwargs):
    unsupported("unsupported_call", "id() of a traced value")


@builtin(object.__setattr__)
def _object_setattr(tx, args, kwargs):
    from jit.semantics.attributes import object_setattr
    obj, name, value = args
    if isinstance(obj, (ObjectVar, ModuleVar)):
        from jit.semantics.attributes import outside_setattr
        outside_setattr(tx, obj, name.const(), value)
        return Const(None)
    if not isinstance(obj, NewObjectVar):
        unsupported("side_effect", f"object.__setattr__ on {obj.describe()}")
    object_setattr(tx, obj, name.const(), value)
    return Const(None)


@builtin(object.__getattribute__)
def _object_getattribute(tx, args, kwargs):
    if len(args) != 2 or kwargs or not args[1].is_const() or not isinstance(args[1].const(), str):
        unsupported("unsupported_call", "object.__getattribute__ with other than (object, constant name)")
    from jit.semantics.attributes import generic_attr
    return generic_attr(tx, args[0], args[1].const())  # AttributeMissing as get_attr raises it


@builtin(super)
def _super(tx, args, kwargs):
    from jit.variables import SuperVar
    if args:
        cls, self_var = args[0].const(), args[1]
    else:
        if "__class__" not in tx.cells or not tx.code.co_argcount:
            unsupported("unsupported_call", "super() outside a method")
        from jit.opcodes.loads_stores import _cell_contents
        cls = _cell_contents(tx, "__class__").const()
        first = tx.code.co_varnames[0]
        if first in tx.cells:
            self_var = _cell_contents(tx, first)
        elif first in tx.locals:
            self_var = tx.locals[first]
            if isinstance(self_var, LazyArg):  # super() is the frame's first read of self
                self_var = tx.locals[first] = tx.builder.wrap(self_var.value, self_var.source)
        else:
            unsupported("exception", "super(): the first argument was deleted (RuntimeError)")
    return SuperVar(cls, self_var)


def _pure(tx, args, kwargs):
    """A pure function of constants (math.*, operator.* on numbers, ord, hash of constants...)."""
    fn = tx.current_builtin
    if fn in (repr, ascii, format) and args and isinstance(args[0], ExceptionVar):
        spec = _consts(args[1:], "format()")
        return exceptions.as_text(args[0], lambda e: fn(e, *spec))
    if any(isinstance(a, TensorVar) for a in args):
        if getattr(fn, "__module__", None) == "_operator" or fn in vars(operator).values():
            return tx.output.call("call_function", fn, tuple(args), kwargs)
        unsupported("tensor_to_python", f"{getattr(fn, '__name__', fn)}() of a tensor")
    try:
        return Const(fn(*_consts(args, f"{getattr(fn, '__name__', fn)}()"),
                        **dict(zip(kwargs, _consts(list(kwargs.values()), "keyword arguments")))))
    except (ValueError, TypeError, ArithmeticError) as e:
        exceptions.raised_on_constants(e)


PURE_MODULES = (math, operator)
for _module in PURE_MODULES:
    for _fn in vars(_module).values():
        if callable(_fn) and not isinstance(_fn, type) and not getattr(_fn, "__name__", "_").startswith("_"):
            BUILTINS.setdefault(_fn, _pure)
for _fn in (ord, chr, hash, frozenset, slice, bin, hex, oct, format, repr, ascii):
    BUILTINS[_fn] = _pure


@builtin(map)
def _map(tx, args, kwargs):
    from jit.semantics.calls import call
    fn, iterables = args[0], [items_of(tx, a) for a in args[1:]]
    return IteratorVar([call(tx, fn, list(group), {}) for group in zip(*iterables)])


@builtin(__import__("functools").reduce)
def _reduce(tx, args, kwargs):
    from jit.semantics.calls import call
    fn, items = args[0], items_of(tx, args[1])
    acc = args[2] if len(args) > 2 else items.pop(0)
    for item in items:
        acc = call(tx, fn, [acc, item], {})
    return acc


def _dict_method(tx, args, kwargs):
    """dict.__setitem__(obj, k, v), OrderedDict.keys(obj)...: on an instance of a dict subclass made here."""
    from jit.semantics.dict_objects import dict_slot, is_dict_object
    fn = tx.current_builtin
    if not args or not is_dict_object(args[0]):
        unsupported("unsupported_call", f"{fn.__qualname__} on {args[0].describe() if args else 'nothing'}")
    return dict_slot(tx, args[0], fn.__name__, args[1:], kwargs)


for _base in (dict, collections.OrderedDict):
    from jit.semantics.dict_objects import SLOTS as _SLOTS
    for _name in _SLOTS:
        BUILTINS.setdefault(getattr(_base, _name), _dict_method)


@builtin(inspect.signature)
def _signature(tx, args, kwargs):
    """inspect.signature of a Python function or bound method the traced code holds: computed now, from the
    function object itself (fixed: functions are guarded by identity or code), as a constant."""
    from jit.variables import BoundMethodVar, NestedFunctionVar, UserFunctionVar
    if len(args) != 1 or kwargs:
        unsupported("unsupported_call", "inspect.signature with options")
    fn = args[0]
    if isinstance(fn, BoundMethodVar) and isinstance(fn.fn, UserFunctionVar):
        self_var = fn.self_var
        real_self = self_var.module if isinstance(self_var, ModuleVar) else \
            self_var.obj if isinstance(self_var, ObjectVar) else None  # (an empty ModuleList is falsy)
        target = fn.fn.fn.__get__(real_self) if real_self is not None else None
        if target is None:  # bound to an object made here: the signature skips the first parameter all the same
            sig = inspect.signature(fn.fn.fn)
            return Const(sig.replace(parameters=list(sig.parameters.values())[1:]))
        return Const(inspect.signature(target))
    if isinstance(fn, UserFunctionVar):
        return Const(inspect.signature(fn.fn))
    if isinstance(fn, NestedFunctionVar):
        unsupported("unsupported_call", "inspect.signature of a function made in the traced code")
    if fn.is_const() and callable(fn.const()):
        return Const(inspect.signature(fn.const()))
    unsupported("unsupported_call", f"inspect.signature of {fn.describe()}")


def bind_function(fn, obj, cls=None):
    """function.__get__(obj, cls), as the executor models it (`bind_function` itself is never called)."""
    raise AssertionError("modelled")


@builtin(bind_function)
def _bind_function(tx, args, kwargs):
    from jit.variables import BoundMethodVar
    if kwargs or not 2 <= len(args) <= 3:
        unsupported("unsupported_call", "function.__get__ with other arguments")
    fn, obj = args[0], args[1]
    if isinstance(obj, Const) and obj.value is None:
        return fn  # a function looked up on its class: itself
    return BoundMethodVar(fn, obj)


from jit.semantics import optim_steps  # noqa: E402,F401  (registers its models here)

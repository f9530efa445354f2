"""Python operators on Vars. Anything involving a tensor becomes a graph node; everything else is computed at
compile time on constants, or on containers built during tracing."""
from __future__ import annotations

import operator
import types

from framejit.guards.kinds import AliasMatch, IdMatch, NotAlias
from jit.break_reasons import unsupported
from jit import compiled_floats
from jit.semantics import outside_containers
from jit.semantics.exceptions import raised_on_constants
from jit.variables import (Const, ContextVarVar, DictVar, DictViewVar, ListVar, ModuleVar, NewObjectVar,
                           ObjectVar, SetVar, TupleVar, UserFunctionVar, Var)
from jit.variables.builder import is_numpy_scalar
from jit.variables.sets import set_key
from jit.variables.base import KnownObject
from jit.variables.floats import FloatVar
from jit.variables.sizes import SizeVar
from jit.variables.tensor import TensorVar

_INPLACE_TO_PLAIN = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
                     operator.itruediv: operator.truediv, operator.ifloordiv: operator.floordiv,
                     operator.imod: operator.mod, operator.ipow: operator.pow, operator.imatmul: operator.matmul,
                     operator.ilshift: operator.lshift, operator.irshift: operator.rshift,
                     operator.iand: operator.and_, operator.ior: operator.or_, operator.ixor: operator.xor}


def _const_seq(v: Var):
    if isinstance(v, Const) and isinstance(v.value, (tuple, list)) and not isinstance(v.value, str):
        return (TupleVar if isinstance(v.value, tuple) else ListVar)([Const(x) for x in v.value])
    return v


_SIZE_ARITHMETIC = {operator.add, operator.sub, operator.mul, operator.floordiv, operator.mod}
_SIZE_COMPARISONS = {operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne}


def _size_binary(tx, op, a: Var, b: Var) -> Var | None:
    """Arithmetic on dynamic sizes stays symbolic; comparisons become guards. None: not a case for sizes."""
    def is_int(v):
        return isinstance(v, SizeVar) or isinstance(v, Const) and type(v.value) is int
    if not (is_int(a) and is_int(b)):
        return None
    op = _INPLACE_TO_PLAIN.get(op, op)
    if op in _SIZE_ARITHMETIC:
        return tx.output.size_op(op, a, b)
    if op in _SIZE_COMPARISONS:
        return tx.output.size_compare(op, a, b)
    return None


def binary(tx, op, a: Var, b: Var) -> Var:
    if (isinstance(a, FloatVar) or isinstance(b, FloatVar)) and (floated := compiled_floats.binary(tx, op, a, b)) is not None:
        return floated
    if (isinstance(a, SizeVar) or isinstance(b, SizeVar)) and (sized := _size_binary(tx, op, a, b)) is not None:
        return sized
    if op not in (operator.eq, operator.ne) and (user_object(a) or user_object(b)):
        return _user_binary(tx, op, a, b)
    if isinstance(a, TensorVar) or isinstance(b, TensorVar):
        if not isinstance(a, TensorVar) and op in _INPLACE_TO_PLAIN:
            op = _INPLACE_TO_PLAIN[op]  # `n += t` with a Python number n rebinds n; nothing is mutated
        return tx.output.call("call_function", op, (torch_operand(a), torch_operand(b)), {})
    if op is operator.iadd and (extended := outside_containers.inplace_add(a, b)) is not None:
        tx.output.changed_in_place(a)
        return extended
    views = isinstance(a, (DictViewVar, SetVar)) or isinstance(b, (DictViewVar, SetVar))
    # on constants the real operator gives the answer; `l += [3]` / `l *= 2` must change the list l itself
    if a.is_const() and b.is_const() and not (isinstance(a, ListVar) and op in _INPLACE_TO_PLAIN) and \
            not (_holds_sizes(a) or _holds_sizes(b)):
        # keys and items views are set-like: `a.keys() - b.keys()`, `d.keys() & other`, `d.items() == s` fold to
        # sets and bools over real views of the same contents (any iterable works on the other side)
        if op in _INPLACE_TO_PLAIN and isinstance(a, SetVar):
            return _set_inplace(tx, op, a, b)
        try:
            result = op(a.const(), b.const())
        except Exception as e:  # noqa: BLE001 - the user's code raises here too
            raised_on_constants(e)
        from jit.semantics.iteration import constant_result
        return constant_result(result)  # a new list, dict or set is an object of its own
    if views and not (isinstance(a, DictViewVar) and a.kind == "values" or
                      isinstance(b, DictViewVar) and b.kind == "values"):
        return _set_binary(tx, op, a, b)
    a, b = _const_seq(a), _const_seq(b)
    if op in (operator.eq, operator.ne) and not (isinstance(a, (TupleVar, ListVar)) and isinstance(b, (TupleVar, ListVar))):
        return _rich_eq(tx, op, a, b)
    return _sequence_op(tx, op, a, b)


def equals(tx, a: Var, b: Var) -> bool:
    """Python's PyObject_RichCompareBool(a, b, Py_EQ), which list.index/count/remove, `in` and container
    equality use: the same object is equal without asking; otherwise `a == b`, then its truth."""
    if identical(tx, a, b):
        return True
    if isinstance(a, TensorVar) or isinstance(b, TensorVar):
        unsupported("data_dependent_branch", "comparing a tensor with == inside a container operation")
    return truth(tx, binary(tx, operator.eq, a, b))


def _rich_eq(tx, op, a: Var, b: Var) -> Var:
    """`a == b` / `a != b` where a value is not a constant: Python's protocol (a subclass's reflected method
    first, then a's, then b's reflected, then identity), with __eq__/__ne__ written in Python inlined (a
    dataclass's too) and object's default meaning identity."""
    from jit.semantics.builtins_impl import _type_of
    if isinstance(a, DictVar) and isinstance(b, DictVar):
        same = list(a.items) == list(b.items) or (set(a.items) == set(b.items) and
                                                   all(equals(tx, a.items[k], b.items[k]) for k in a.items))
        return Const(same == (op is operator.eq))
    ta, tb = _type_of(tx, a), _type_of(tx, b)
    name = "__eq__" if op is operator.eq else "__ne__"
    tries = [(a, ta, b), (b, tb, a)]
    if tb is not ta and issubclass(tb, ta) and _method(tb, name) is not _method(ta, name):
        tries.reverse()
    for x, x_type, y in tries:
        result = _dunder(tx, x, x_type, y, _type_of(tx, y), name)
        if result is not None:
            return result
    same = identical(tx, a, b)  # both answered NotImplemented: identity decides
    return Const(same if op is operator.eq else not same)


# built-in types whose == answers for types unrelated to them: a mappingproxy compares as the mapping it wraps
# (`d.keys().mapping == d` is True; Dynamo's test_dicts), so NotImplemented is not its answer
_COMPARES_WITH_OTHERS = (types.MappingProxyType,)


def _dunder(tx, x: Var, x_type: type, y: Var, y_type: type, name: str) -> Var | None:
    """x.__eq__(y) or x.__ne__(y); None for NotImplemented."""
    method = _method(x_type, name)
    if method is object.__ne__:  # object's __ne__ inverts __eq__ unless that is NotImplemented
        result = _dunder(tx, x, x_type, y, y_type, "__eq__")
        return None if result is None else Const(not truth(tx, result))
    if method is object.__eq__:
        return None  # True for the same object, else NotImplemented: the identity fallback gives the same
    if isinstance(method, types.FunctionType):
        from jit.semantics.calls import inline_function
        result = inline_function(tx, UserFunctionVar(method, None), [x, y], {})
        return None if isinstance(result, Const) and result.value is NotImplemented else result
    if x_type.__module__ == "builtins" and not issubclass(y_type, x_type) and not issubclass(x_type, y_type) and \
            x_type not in _COMPARES_WITH_OTHERS:
        return None  # a built-in type's comparison answers NotImplemented for a type it does not know
    unsupported("unsupported_value", f"{x_type.__name__}.{name} (implemented in C) on {x.describe()}")


def _method(cls: type, name: str):
    from jit.semantics.attributes import class_lookup
    return class_lookup(cls, name, None)


# operator -> the name its dunders share (__add__, __radd__, __iadd__); comparisons reflect to their mirror
_DUNDER = {operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "truediv",
           operator.floordiv: "floordiv", operator.mod: "mod", operator.pow: "pow", operator.matmul: "matmul",
           operator.lshift: "lshift", operator.rshift: "rshift", operator.and_: "and", operator.or_: "or",
           operator.xor: "xor"}
_MIRROR = {operator.lt: ("__lt__", "__gt__"), operator.gt: ("__gt__", "__lt__"), operator.le: ("__le__", "__ge__"),
           operator.ge: ("__ge__", "__le__")}


def _holds_sizes(v: Var) -> bool:
    """A tuple or list with dynamic sizes among its items (x.size()[:-1] + (n,)): folding it to a constant would pin
    them; the sequence operators below keep them symbolic."""
    return isinstance(v, (TupleVar, ListVar)) and any(isinstance(i, SizeVar) for i in v.items)


def user_object(v: Var) -> bool:
    """An instance of a user class (made here or read from outside) whose operators may be Python methods."""
    if isinstance(v, NewObjectVar):
        return True
    return isinstance(v, ObjectVar) and type(v.obj).__module__ not in ("builtins", "numpy") and \
        not isinstance(v.obj, type)


def call_dunder(tx, obj: Var, name: str, args: list[Var]) -> Var | None:
    """type(obj).name(obj, *args) when it is a Python function (inlined); None when the class has no such method
    or it answered NotImplemented; a break when it is implemented in C (its meaning is not modelled)."""
    from jit.semantics.calls import inline_function
    cls = obj.python_type()
    method = _method(cls, name)
    if method is None or method in (object.__eq__, object.__ne__):
        return None
    if not isinstance(method, types.FunctionType):
        from jit.semantics.dict_objects import dict_slot, is_dict_object, is_dict_slot
        if is_dict_object(obj) and is_dict_slot(method):
            return dict_slot(tx, obj, name, args, {})
        if user_object(obj):
            unsupported("unsupported_call", f"{cls.__name__}.{name} is implemented in C")
        return None  # a built-in type's operator answers NotImplemented for a type it does not know
    result = inline_function(tx, UserFunctionVar(method, None), [obj, *args], {})
    return None if isinstance(result, Const) and result.value is NotImplemented else result


def _user_binary(tx, op, a: Var, b: Var) -> Var:
    """Python's binary operator protocol with a user object on one side: a.__iop__ for `a op= b`, then a.__op__(b)
    and b.__rop__(a) (the reflected one first when type(b) is a subclass of type(a) that overrides it)."""
    from jit.semantics.builtins_impl import _type_of
    plain = _INPLACE_TO_PLAIN.get(op, op)
    if plain in _MIRROR:
        forward, reflected = _MIRROR[plain]
    elif plain in _DUNDER:
        forward, reflected = f"__{_DUNDER[plain]}__", f"__r{_DUNDER[plain]}__"
    else:
        unsupported("unsupported_value", f"operator {op.__name__} on {a.describe()} and {b.describe()}")
    if op is not plain and (result := call_dunder(tx, a, f"__i{_DUNDER[plain]}__", [b])) is not None:
        return result
    ta, tb = _type_of(tx, a), _type_of(tx, b)
    tries = [(a, forward, b), (b, reflected, a)]
    if tb is not ta and issubclass(tb, ta) and _method(tb, reflected) is not _method(ta, reflected):
        tries.reverse()
    for x, name, y in tries:
        if isinstance(x, TensorVar):
            continue  # a tensor's operator hands a non-tensor object back as NotImplemented
        if (result := call_dunder(tx, x, name, [y])) is not None:
            return result
    unsupported("exception", f"TypeError: unsupported operand types for {op.__name__}: {ta.__name__}, {tb.__name__}")


def _sequence_op(tx, op, a: Var, b: Var) -> Var:
    seqs = (TupleVar, ListVar)
    if op in (operator.add, operator.iadd) and isinstance(a, seqs) and isinstance(b, seqs):
        if op is operator.iadd and isinstance(a, ListVar):
            tx.output.changed_in_place(a)
            a.items.extend(b.items)
            return a
        if type(a) is type(b) or (isinstance(a, TupleVar) and isinstance(b, TupleVar)):
            return (ListVar if isinstance(a, ListVar) else TupleVar)(a.items + b.items)
    if op in (operator.mul, operator.imul) and isinstance(a, seqs) and b.is_const():
        count = b.const()
        if not isinstance(count, int):  # (t,) * 0.5: eager raises TypeError here
            unsupported("exception", f"TypeError: can't multiply sequence by non-int of type "
                                     f"'{type(count).__name__}'")
        if op is operator.imul and isinstance(a, ListVar):
            tx.output.changed_in_place(a)
            a.items[:] = a.items * count
            return a
        # a new plain list or tuple (an outside list's or a named tuple's product is one: fuzz seed 555512)
        return (ListVar if isinstance(a, ListVar) else TupleVar)(a.items * count)
    if op in (operator.eq, operator.ne) and isinstance(a, seqs) and isinstance(b, seqs):
        same = _sequences_equal(tx, a, b)
        return Const(same if op is operator.eq else not same)
    if op in (operator.lt, operator.le, operator.gt, operator.ge) and a.is_const() and b.is_const():
        try:
            return Const(op(a.const(), b.const()))
        except TypeError as e:  # `tuple(x.shape) > 0`: the user's code raises here too (fuzz seed 491633)
            raised_on_constants(e)
    unsupported("unsupported_value", f"operator {op.__name__} on {a.describe()} and {b.describe()}")


def _sequences_equal(tx, a: Var, b: Var) -> bool:
    """Python's sequence equality, item by item up to the first difference: each item comparison is made as the
    code would make it, so a dynamic size compared with a number becomes a guard on that relation
    (`x.shape == (3,)`), not a pinned size and never an unguarded answer."""
    if isinstance(a, ListVar) != isinstance(b, ListVar):
        return False  # [3] == (3,) is False; torch.Size and tuples compare as tuples
    if len(a.items) != len(b.items):
        return False
    for x, y in zip(a.items, b.items):
        if isinstance(x, TensorVar) or isinstance(y, TensorVar):
            unsupported("unsupported_value", "comparing sequences that hold tensors")
        if x is y:
            continue
        same = binary(tx, operator.eq, x, y)
        if not (isinstance(same, Const) and isinstance(same.value, bool)):
            unsupported("unsupported_value", f"comparing {x.describe()} with {y.describe()} in a sequence")
        if not same.value:
            return False
    return True


_SET_ALGEBRA = {operator.or_, operator.and_, operator.sub, operator.xor}  # union, intersection, difference, ^
_SET_ORDER = {operator.eq, operator.ne, operator.le, operator.lt, operator.ge, operator.gt}


def _set_items(tx, v: Var) -> dict | None:
    """key -> Var of a set or a keys/items view (None for anything else)."""
    if isinstance(v, SetVar):
        return dict(v.items)
    if isinstance(v, DictViewVar) and v.kind != "values":
        return {set_key(i): i for i in v.current()}
    return None


def _set_binary(tx, op, a: Var, b: Var) -> Var:
    """Set algebra and comparisons where an operand holds tensors or objects: computed on the items' keys
    (identity for those), as Python's set does."""
    if op in _INPLACE_TO_PLAIN and isinstance(a, SetVar):
        return _set_inplace(tx, op, a, b)
    left, right = _set_items(tx, a), _set_items(tx, b)
    if left is None or right is None:
        unsupported("unsupported_value", f"operator {op.__name__} on {a.describe()} and {b.describe()}")
    op = _INPLACE_TO_PLAIN.get(op, op)
    if op in _SET_ORDER:  # equality and subset relations of the two sets of keys
        return Const(op(frozenset(left), frozenset(right)))
    if op not in _SET_ALGEBRA:
        unsupported("exception", f"TypeError: unsupported operand for {op.__name__}: {a.describe()}, {b.describe()}")
    out = SetVar(frozen=isinstance(a, SetVar) and a.frozen)
    for _, v in _combine(op, left, right):
        out.add(v)
    return out


def _combine(op, left: dict, right: dict) -> list:
    if op is operator.or_:
        return list(left.items()) + [(k, v) for k, v in right.items() if k not in left]
    if op is operator.and_:
        return [(k, v) for k, v in left.items() if k in right]
    if op is operator.sub:
        return [(k, v) for k, v in left.items() if k not in right]
    return [(k, v) for k, v in left.items() if k not in right] + [(k, v) for k, v in right.items() if k not in left]


def _set_inplace(tx, op, a: SetVar, b: Var) -> Var:
    """`s |= t` and friends: set.__ior__ mutates s when t is a set. A frozenset, or t a dict view, falls back to
    the plain operator (a new object, rebinding s), as Python's NotImplemented protocol does."""
    plain = _INPLACE_TO_PLAIN[op]
    if a.frozen or isinstance(b, DictViewVar):
        return binary(tx, plain, a, b)
    if not isinstance(b, SetVar) or plain not in _SET_ALGEBRA:
        unsupported("exception", f"TypeError: unsupported operand for {op.__name__}: {a.describe()}, {b.describe()}")
    if a.shadow is not None and b.shadow is not None:
        known = {**b.items, **a.items}
        op(a.shadow, b.shadow)  # the real in-place update, so the set's order follows Python's
        a.items = {k: known[k] for k in a.shadow}
        return a
    kept = _combine(plain, dict(a.items), dict(b.items))
    a.items, a.shadow = {}, None  # holds objects now: not iterable anyway (see SetVar)
    for _, v in kept:
        a.add(v)
    return a


def torch_operand(v: Var) -> Var:
    """A NumPy scalar as torch's arithmetic reads it beside a tensor: an integer as an int, a float or a bool as a
    float (np.bool_(True) + int tensor is a float tensor, as 1.0 would make it; checked against eager for every
    operator); np.float64 thus behaves as the Python float it subclasses."""
    if isinstance(v, Const) and is_numpy_scalar(v.value):
        import numpy as np
        if isinstance(v.value, np.integer):
            return Const(int(v.value))
        if isinstance(v.value, (np.floating, np.bool_)):
            return Const(float(v.value))
        unsupported("unsupported_value", f"{type(v.value).__name__} with a tensor (torch drops its imaginary part)")
    return v


def unary(tx, op, a: Var) -> Var:
    if user_object(a):
        result = call_dunder(tx, a, f"__{op.__name__}__", [])
        if result is None:
            unsupported("exception", f"TypeError: bad operand type for unary {op.__name__}: {a.describe()}")
        return result
    if isinstance(a, TensorVar):
        return tx.output.call("call_function", op, (a,), {})
    if isinstance(a, FloatVar) and op in (operator.neg, operator.pos):
        return compiled_floats.float_op(tx.output, op, a)
    if a.is_const():
        try:
            return Const(op(a.const()))
        except Exception as e:  # noqa: BLE001 - the user's code raises here too (-() is a TypeError)
            raised_on_constants(e)
    unsupported("unsupported_value", f"operator {op.__name__} on {a.describe()}")


def truth(tx, v: Var) -> bool:
    if isinstance(v, TensorVar):
        from jit.semantics.known_truth import known_truth
        known = known_truth(v.node, v.example)
        if known is not None:  # a uniform draw compared with a number outside [0, 1) (LayerDrop at p = 0)
            return known
        unsupported("data_dependent_branch", f"the truth value of {v.describe()} decides a branch")
    if (known := outside_containers.truth(v)) is not None:
        return known
    if isinstance(v, (TupleVar, ListVar, DictVar)):
        return len(v.items) > 0
    if isinstance(v, DictViewVar):
        return len(v.dict_var.items) > 0
    if isinstance(v, SetVar):
        return len(v.items) > 0
    if v.is_const():
        return bool(v.const())
    if isinstance(v, ModuleVar):
        return len(v.module) > 0 if hasattr(type(v.module), "__len__") else True
    if isinstance(v, (ObjectVar, NewObjectVar)):
        return _object_truth(tx, v)
    return True


def _object_truth(tx, v: Var) -> bool:
    """Python's truth of an object: type(v).__bool__, else __len__ != 0, else True; Python methods inlined."""
    from jit.semantics.calls import inline_function
    cls = v.python_type()
    for name in ("__bool__", "__len__"):
        method = _method(cls, name)
        if method is None:
            continue
        if not isinstance(method, types.FunctionType):
            unsupported("unsupported_value", f"the truth value of a {cls.__name__} object ({name} in C)")
        result = inline_function(tx, UserFunctionVar(method, None), [v], {})
        if not (isinstance(result, Const) and type(result.value) in (bool, int)):
            unsupported("unsupported_value", f"{cls.__name__}.{name} returned {result.describe()}")
        return bool(result.value)
    return True


def is_none(tx, v: Var) -> bool:
    return isinstance(v, Const) and v.value is None


def _real(v: Var):
    """The real object behind a Var that stands for one existing object."""
    if isinstance(v, KnownObject):
        return v.value
    for kind, attr in ((ModuleVar, "module"), (ObjectVar, "obj"), (ContextVarVar, "obj"), (UserFunctionVar, "fn")):
        if isinstance(v, kind):
            return getattr(v, attr)
    raise LookupError


def identical(tx, a: Var, b: Var) -> bool:
    if a is b:
        return True
    if isinstance(a, TensorVar) and isinstance(b, TensorVar):
        if a.node is not b.node and _is_input(a) and _is_input(b):
            _relate(tx, a, b, False)  # one tensor passed twice later is one input (AliasMatch): `is` would hold
        return a.node is b.node
    if not isinstance(a, _CONTAINERS) and not isinstance(b, _CONTAINERS) and a.is_const() and b.is_const():
        return a.const() is b.const() or (type(a.const()) is type(b.const()) and a.const() == b.const()
                                          and isinstance(a.const(), (int, float, str, bool, type(None))))
    if _is_input(a) and _is_input(b) and isinstance(a, _CONTAINERS) and isinstance(b, _CONTAINERS):
        # Builder makes one Var per outside container object, so two Vars are two objects (while guarded so)
        _relate(tx, a, b, False)
        return False
    try:
        same = _real(a) is _real(b)
    except LookupError:
        return False
    if a.source is not None and b.source is not None:
        _relate(tx, a, b, same)
    else:
        _pin(tx, a)
        _pin(tx, b)
    return same


_CONTAINERS = (TupleVar, ListVar, DictVar)


def _is_input(v: Var) -> bool:
    """Read from outside the frame (not made by the traced code)."""
    if isinstance(v, TensorVar):
        return v.node.op == "placeholder" and v.source is not None
    return v.source is not None


def _relate(tx, a: Var, b: Var, same: bool) -> None:
    """`a is b` was decided on two values read from outside: what it relied on is only whether the two sources
    are one object (cheaper than pinning each object's identity, and objects made per call keep one entry)."""
    tx.output.guards.append((AliasMatch if same else NotAlias)(a.source, b.source))


def _pin(tx, v: Var) -> None:
    """An object from outside compared by identity: the answer holds for this very object only, and objects and
    closures are otherwise guarded by type or code, so pin its identity."""
    if v.source is not None and (isinstance(v, ObjectVar) or isinstance(v, UserFunctionVar) and v.by_code):
        tx.output.guards.append(IdMatch(v.source, _real(v)))


def contains(tx, container: Var, item: Var) -> bool:
    if isinstance(container, SetVar):
        return set_key(item) in container.items
    if isinstance(container, DictViewVar) and container.kind == "keys":
        container = container.dict_var
    if (found := outside_containers.contains(container, item)) is not None:
        return found
    if isinstance(container, DictVar) and item.is_const():
        return _const_contains(item.const(), container.items)  # an unhashable key raises TypeError
    if isinstance(container, DictViewVar) and container.kind == "items":
        return _item_in_items(tx, container.dict_var, item)
    if isinstance(container, DictViewVar):  # values: a scan, as over a list
        container = ListVar(container.current())
    if isinstance(container, (TupleVar, ListVar)):
        return any(equals(tx, x, item) for x in container.items)  # in order: stops at the first equal item
    if container.is_const() and item.is_const():
        return _const_contains(item.const(), container.const())  # `'a' in 4` raises TypeError (fuzz seed 661313)
    if isinstance(container, ModuleVar) and item.is_const():
        return _const_contains(item.const(), container.module)
    if user_object(container):  # __contains__, else a scan of what __iter__ gives
        result = call_dunder(tx, container, "__contains__", [item])
        if result is not None:
            return truth(tx, result)
        if _method(container.python_type(), "__iter__") is not None:
            from jit.semantics.iteration import items_of
            return any(equals(tx, x, item) for x in items_of(tx, container))
    unsupported("unsupported_value", f"`in` on {container.describe()}")


def _const_contains(item, container) -> bool:
    try:
        return item in container
    except Exception as e:  # noqa: BLE001 - the user's code raises here too
        raised_on_constants(e)


def _item_in_items(tx, d: DictVar, item: Var) -> bool:
    """`(k, v) in d.items()`: looks k up, then compares d[k] with v (identity first, as Python does)."""
    pair = _const_seq(item)
    if not isinstance(pair, TupleVar) or len(pair.items) != 2:
        return False
    key, value = pair.items
    if not key.is_const() or key.const() not in d.items:
        if not key.is_const():
            unsupported("unsupported_value", f"looking up {key.describe()} in a dict")
        return False
    found = d.items[key.const()]
    if identical(tx, found, value):
        return True
    if isinstance(found, TensorVar) or isinstance(value, TensorVar):
        unsupported("data_dependent_branch", "`in` over dict items compares tensor values")
    if found.is_const() and value.is_const():
        return found.const() == value.const()
    unsupported("unsupported_value", f"comparing {found.describe()} with {value.describe()}")

"""x[key], x[key] = v, del x[key]."""
from __future__ import annotations

import enum
import operator
import types

import torch

from framejit.guards.sources import ModuleDictSource
from jit import clamped_sizes
from jit.break_reasons import PythonError, unsupported
from jit.semantics import outside_containers
from jit.semantics.exceptions import raised_on_constants
from jit.variables import ClassVar, Const, DictVar, ListVar, ModuleVar, NamedTupleVar, NewObjectVar, TupleVar, Var
from jit.variables.sizes import SizeSliceVar, SizeVar
from jit.variables.tensor import TensorVar


def make_slice(parts: list[Var]) -> Var:
    if any(isinstance(p, SizeVar) for p in parts) and all(p.is_const() for p in parts):
        return SizeSliceVar(parts)
    if all(p.is_const() for p in parts):
        return Const(slice(*(p.const() for p in parts)))
    unsupported("unsupported_value", "a slice whose bounds are tensors or unknown values")


def _const_key(key: Var):
    if not key.is_const():
        unsupported("unsupported_value", f"indexing a Python container with {key.describe()}")
    return key.const()


def _index_error(obj: Var, k) -> PythonError:
    """The IndexError eager raises for obj[k] (its message names list or tuple): the same lookup on a stand-in of
    the same kind and length."""
    try:
        (tuple if isinstance(obj, TupleVar) else list)([None] * len(obj.items))[k]
    except IndexError as e:
        return PythonError.of(IndexError, *e.args)
    raise AssertionError(f"index {k!r} is in range")


def get_item(tx, obj: Var, key: Var) -> Var:
    if isinstance(obj, TensorVar):
        clamped_sizes.guard_index_bounds(tx.output, obj, key)
        return tx.output.call("call_function", operator.getitem, (obj, key), {})
    if (picked := outside_containers.get_item(obj, key, tx)) is not None:
        return picked
    if isinstance(obj, (TupleVar, ListVar)):
        k = _const_key(key)
        try:
            picked = obj.items[k]
        except IndexError:  # the length is guarded: it raises at every call, with eager's message
            raise _index_error(obj, k) from None
        except TypeError as e:
            unsupported("exception", f"TypeError: {e}")
        if isinstance(k, slice):
            return ListVar(picked) if isinstance(obj, ListVar) else TupleVar(picked)
        return picked
    if isinstance(obj, DictVar):
        k = _const_key(key)
        try:
            missing = k not in obj.items  # the keys are guarded (or the dict made here): it raises at every call
        except TypeError as e:  # an unhashable key (a slice before 3.12): eager's TypeError, whatever the dict
            raise PythonError.of(TypeError, str(e)) from None
        if missing:
            raise PythonError.of(KeyError, k)
        return obj.items[k]
    if isinstance(obj, ModuleVar):
        return _module_item(tx, obj, _const_key(key))
    if isinstance(obj, ClassVar) and isinstance(obj.cls, enum.EnumMeta):  # Color["RED"]: a member by name
        try:
            return Const(obj.cls[_const_key(key)])
        except KeyError as e:
            unsupported("exception", f"KeyError: {e}")
    if isinstance(obj, ClassVar) and isinstance(getattr(obj.cls, "__class_getitem__", None), types.BuiltinMethodType) \
            and (args := _type_arguments(key)) is not None:
        return Const(obj.cls[args])  # list[Tensor] (typing.cast's first argument): a types.GenericAlias
    if isinstance(obj, Const):
        try:
            return Const(obj.value[_const_key(key)])
        except Exception as e:  # noqa: BLE001 - a constant indexed by a constant: it raises so at every call
            raised_on_constants(e)
    from jit.semantics.operators import call_dunder, user_object
    if user_object(obj) and (result := call_dunder(tx, obj, "__getitem__", [key])) is not None:
        return result
    unsupported("unsupported_value", f"indexing {obj.describe()}")


def _type_arguments(key: Var):
    """The arguments of a subscripted builtin generic (`dict[str, Tensor]`): classes and constants, or None."""
    if isinstance(key, ClassVar):
        return key.cls
    if isinstance(key, Const):
        return key.value
    if isinstance(key, TupleVar):
        items = [_type_arguments(k) for k in key.items]
        return None if any(i is None for i in items) else tuple(items)
    return None


def _module_item(tx, var: ModuleVar, key) -> Var:
    mod = var.module
    if isinstance(mod, torch.nn.ModuleDict) and isinstance(key, str):
        return tx.builder.wrap(mod[key], ModuleDictSource(var.source, "_modules", key) if var.source else None)
    if isinstance(mod, (torch.nn.ModuleList, torch.nn.Sequential)):
        keys = list(mod._modules)
        if isinstance(key, slice):
            return ListVar([tx.builder.wrap(mod._modules[k], ModuleDictSource(var.source, "_modules", k)
                                            if var.source else None) for k in keys[key]])
        if isinstance(key, int):
            try:
                k = keys[key]
            except IndexError:
                unsupported("exception", f"IndexError: index {key} is out of range")
            return tx.builder.wrap(mod._modules[k], ModuleDictSource(var.source, "_modules", k) if var.source else None)
    if isinstance(mod, torch.nn.ParameterList) and isinstance(key, int):
        keys = list(mod._parameters)
        return tx.builder.wrap(mod._parameters[keys[key]], ModuleDictSource(var.source, "_parameters", keys[key]))
    unsupported("unsupported_value", f"indexing {type(mod).__name__}")


def set_item(tx, obj: Var, key: Var, value: Var) -> None:
    if isinstance(obj, TensorVar):
        clamped_sizes.guard_index_bounds(tx.output, obj, key)
        tx.output.call("call_function", operator.setitem, (obj, key, value), {})
        return
    from jit.semantics.operators import call_dunder
    if isinstance(obj, NewObjectVar) and call_dunder(tx, obj, "__setitem__", [key, value]) is not None:
        return  # type(obj).__setitem__ inlined, or a dict subclass's items
    if obj.source is not None and isinstance(obj, (ListVar, DictVar)) and not isinstance(obj, NamedTupleVar):
        tx.output.changed_in_place(obj)
    elif obj.source is not None:
        unsupported("side_effect", f"item assignment on {obj.describe()} that exists outside the function")
    if outside_containers.set_item(obj, key, value):
        return
    if isinstance(obj, ListVar) and not isinstance(obj, NamedTupleVar):
        k = _const_key(key)
        try:
            obj.items[k] = value if not isinstance(k, slice) else list(value.items)
        except (IndexError, TypeError, AttributeError) as e:
            unsupported("exception", f"{type(e).__name__}: {e}")
        return
    if isinstance(obj, DictVar):
        try:
            obj.items[_const_key(key)] = value
        except TypeError as e:  # an unhashable key (`d[:] = x` before 3.12): eager's TypeError (generator seed 720742)
            raise PythonError.of(TypeError, str(e)) from None
        return
    unsupported("unsupported_value", f"item assignment on {obj.describe()}")


def delete_item(tx, obj: Var, key: Var) -> None:
    from jit.semantics.operators import call_dunder
    if isinstance(obj, NewObjectVar) and call_dunder(tx, obj, "__delitem__", [key]) is not None:
        return
    if not isinstance(obj, (ListVar, DictVar)) or isinstance(obj, NamedTupleVar):
        unsupported("side_effect" if obj.source is not None else "unsupported_value", f"del on {obj.describe()}")
    tx.output.changed_in_place(obj)
    if outside_containers.delete_item(obj, key):
        return
    k = _const_key(key)
    try:
        del obj.items[k]
    except (IndexError, KeyError) as e:
        unsupported("exception", f"{type(e).__name__}: {e}")

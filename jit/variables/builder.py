"""Wrap a real value read from outside the frame into a Var, recording the guards that pin what we relied on.

Tensors become graph inputs (guarded on type, dtype, device, sizes, strides, requires_grad); Python constants
are specialized on (guarded by value); modules, functions, classes and Python modules by identity; tuples by type
and length, their items each with their own source; lists and dicts with a source by type, read lazily
(jit/variables/outside.py); any other object by type."""
from __future__ import annotations

import builtins
import collections
import contextvars
import enum
import functools
import sys
import types

import torch

from framejit.guards.kinds import (AliasMatch, DictKeysMatch, IdMatch, IteratorMatch, LenMatch, TypeMatch, ValueMatch,
                          remaining_items)
from framejit.guards.sources import AttrSource, ConstSource, ItemSource, Source
from jit.break_reasons import unsupported
from jit.variables import (BoundMethodVar, BuiltinVar, CachedFunctionVar, ClassVar, Const, ContextVarVar, DictVar,
                           ListVar, ModuleVar, NamedTupleVar, ObjectVar, PartialVar, PythonModuleVar, TorchCallableVar, TupleVar,
                           UserFunctionVar, Var)
from jit.variables.containers import OutsideIteratorVar
from jit.variables.outside import OutsideDictVar, OutsideListVar

CONSTANT_TYPES = (int, float, bool, str, complex, bytes, type(None), type(Ellipsis), type(NotImplemented), range, slice,
                  torch.dtype, torch.device, torch.memory_format, torch.layout, torch.Size)
BUILTIN_FUNCTIONS = {v for v in vars(builtins).values() if isinstance(v, types.BuiltinFunctionType)}


_BUILTIN_CALLABLES = (types.BuiltinFunctionType, types.BuiltinMethodType, types.MethodDescriptorType,
                      types.WrapperDescriptorType)


def is_torch_callable(value) -> bool:
    if isinstance(value, (torch._C._VariableFunctionsClass, )):
        return False
    module = getattr(value, "__module__", None) or ""
    if isinstance(value, (types.BuiltinFunctionType, types.BuiltinMethodType, types.MethodDescriptorType,
                          types.WrapperDescriptorType)) and (module.startswith("torch") or
                                                            getattr(value, "__self__", None) is torch._C._VariableFunctions):
        return True
    if isinstance(value, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
        return True
    if isinstance(value, types.FunctionType) and module.startswith("torch.nn.functional"):
        return True
    return isinstance(value, types.FunctionType) and module == "torch.functional"


class Builder:
    def __init__(self, output, guarded: bool = True):
        self.output = output
        self.guarded = guarded

    def guard(self, g) -> None:
        if self.guarded and g.source is not None:
            self.output.guards.append(g)

    def by_structure(self, source) -> bool:
        """Modules read from the frame's arguments are guarded by class and contents, not identity, once the frame
        met a second instance (jit.dynamic.note_module_changes): one entry serves every layer of a model."""
        return self.guarded and source is not None and self.output.modules_by_structure and source.root_is_local()

    def wrap(self, value, source: Source | None) -> Var:
        if isinstance(value, torch.Tensor):
            if source is None:
                unsupported("unsupported_value", "a tensor reached without a source (a constant tensor in code)")
            return self.output.add_tensor_input(value, source)
        if type(value) is float and source is not None and self.guarded and \
                source.name() in self.output.dynamic_floats:
            from jit.compiled_floats import add_input  # changed between calls (jit/variables/floats.py)
            return add_input(self.output, value, source)
        if isinstance(value, CONSTANT_TYPES) or is_numpy_scalar(value) or (
                type(value) is frozenset and len(value) <= 64 and all(isinstance(v, CONSTANT_TYPES) for v in value)):
            self.guard(ValueMatch(source, value))  # (a frozenset of constants is one too: `in` on a module's set)
            return Const(value, source)
        if isinstance(value, enum.Enum):  # a member is a singleton: the same object, whatever its value
            self.guard(IdMatch(source, value))
            return Const(value, source)
        if type(value) in (tuple, list, dict, collections.OrderedDict) or _is_namedtuple(value) or (
                type(value) is collections.defaultdict and source is not None):
            return self._container(value, source)
        if type(value) in _ITERATOR_TYPES and source is not None and self.guarded and self.output.read_iterators:
            return self._iterator(value, source)
        if isinstance(value, torch.nn.Module):
            if self.by_structure(source):
                self.guard(TypeMatch(source, type(value)))  # what it holds is guarded where it is read
            else:
                self.guard(IdMatch(source, value))
            return ModuleVar(value, source)
        if isinstance(value, types.ModuleType):
            self.guard(IdMatch(source, value))
            return PythonModuleVar(value, source)
        if is_torch_callable(value):
            self.guard(IdMatch(source, value))
            return TorchCallableVar(value, source)
        if isinstance(value, functools._lru_cache_wrapper):
            self.guard(IdMatch(source, value))
            return CachedFunctionVar(value, source)
        if isinstance(value, types.FunctionType) and value in _modelled_functions():
            self.guard(IdMatch(source, value))  # a library function answered by its model (inspect.signature)
            return BuiltinVar(value, source)
        if isinstance(value, types.FunctionType):
            if "<locals>" in value.__qualname__ and source is not None:
                # Made anew by each call of the function around it (a closure handed to a resume function after a
                # graph break is a new object every call): what it does is its code, defaults and cells, so guard
                # the code and read the rest through the source (jit.semantics.calls.inline_function).
                self.guard(TypeMatch(source, types.FunctionType))
                self.guard(IdMatch(AttrSource(source, "__code__"), value.__code__))
                return UserFunctionVar(value, source, by_code=True)
            self.guard(IdMatch(source, value))
            return UserFunctionVar(value, source)
        if isinstance(value, type):
            self.guard(IdMatch(source, value))
            return ClassVar(value, source)
        from jit.semantics.builtins_impl import BUILTINS
        if _hashable(value) and value in BUILTINS:
            self.guard(IdMatch(source, value))
            return BuiltinVar(value, source)
        # (the name read only off built-in callables: any other object's __getattr__ is user code, and may
        # answer anything for __name__)
        if _hashable(value) and (value in BUILTIN_FUNCTIONS or isinstance(value, _BUILTIN_CALLABLES) and
                                 value is getattr(builtins, str(getattr(value, "__name__", "")), None)):
            self.guard(IdMatch(source, value))
            return BuiltinVar(value, source)
        if isinstance(value, type):
            self.guard(IdMatch(source, value))
            return ClassVar(value, source)
        if isinstance(value, types.MethodType):
            fn = self.wrap(value.__func__, AttrSource(source, "__func__") if source else None)
            obj = self.wrap(value.__self__, AttrSource(source, "__self__") if source else None)
            return BoundMethodVar(fn, obj)
        if isinstance(value, functools.partial):
            self.guard(TypeMatch(source, functools.partial))
            fn = self.wrap(value.func, AttrSource(source, "func") if source else None)
            args = [self.wrap(a, ItemSource(AttrSource(source, "args"), i) if source else None)
                    for i, a in enumerate(value.args)]
            kwargs = {k: self.wrap(v, ItemSource(AttrSource(source, "keywords"), k) if source else None)
                      for k, v in value.keywords.items()}
            return PartialVar(fn, args, kwargs)
        if isinstance(value, contextvars.ContextVar):  # what it holds is read through its own source
            self.guard(IdMatch(source, value))
            return ContextVarVar(value, source)
        # Anything else (a built-in callable such as a C-implemented `with` manager's bound __exit__ handed to a
        # resume function included) is opaque: loading it is fine, calling it is a break at that call.
        self.guard(TypeMatch(source, type(value)))
        return ObjectVar(value, source)


    def _iterator(self, value, source: Source) -> Var:
        """A tuple, list, dict-view or range iterator from outside: the items it will still give (guarded to be
        the same objects), each wrapped as a constant of this compile."""
        remaining = remaining_items(value)
        reduced = value.__reduce__()
        seq = reduced[1][0]
        items = list(seq[reduced[2] if len(reduced) > 2 else 0:])
        if len(items) > 256:
            unsupported("unsupported_value", f"an iterator from outside with {len(items)} items left")
        self.guard(IteratorMatch(source, type(value), remaining))
        var = OutsideIteratorVar([self.wrap(item, ConstSource(item, f"{source.name()}[+{i}]"))
                                  for i, item in enumerate(items)], source, type(value))
        self.output.side_effects.iterator_read(var, value)
        return var

    def _container(self, value, source: Source | None) -> Var:
        """A list, tuple or dict from outside. One object reached through two sources (`o.l` and `l`) is one Var,
        with the sources guarded to stay one object, so `is` and writes through either see the same thing."""
        known = self.output.outside_containers.get(id(value)) if source is not None else None
        if known is not None and known[0] is value:
            if known[1].source != source:
                self.guard(AliasMatch(source, known[1].source))
            if isinstance(known[1], (OutsideListVar, OutsideDictVar)) and self.guarded and not known[1].builder.guarded:
                # first reached by trusted library code: what the user's code reads of it from now on is guarded
                self.guard(TypeMatch(known[1].source, type(value)))
                known[1].builder = self
            return known[1]
        if type(value) in (list, dict, collections.OrderedDict, collections.defaultdict) and source is not None:
            # read lazily: the type here, what the code reads of it where it reads it (jit/variables/outside.py)
            self.guard(TypeMatch(source, type(value)))
            var = (OutsideListVar if type(value) is list else OutsideDictVar)(value, source, self)
        elif type(value) in (dict, collections.OrderedDict):
            if not all(isinstance(k, (str, int, float, bool, type(None), torch.dtype)) for k in value):
                unsupported("unsupported_value", "a dict with keys that are not simple constants")
            self.guard(DictKeysMatch(source, tuple(value), type(value)))
            var = DictVar({k: self.wrap(v, ItemSource(source, k) if source else None) for k, v in value.items()},
                          source, type(value))
        else:
            self.guard(LenMatch(source, type(value), len(value)))
            items = [self.wrap(v, ItemSource(source, i) if source else None) for i, v in enumerate(value)]
            if _is_namedtuple(value):
                var = NamedTupleVar(type(value), items, source)
            else:
                var = (TupleVar if type(value) is tuple else ListVar)(items, source)
        if source is not None:
            self.output.outside_containers[id(value)] = (value, var)
        return var


# iterators whose remaining items __reduce__ gives without advancing them (dict item iterators make new tuples)
_ITERATOR_TYPES = {type(iter(())), type(iter([])), type(iter({}.keys())), type(iter({}.values())),
                   type(iter(range(0))), type(iter(collections.OrderedDict().keys())),
                   type(iter(collections.OrderedDict().values()))}


def _modelled_functions() -> dict:
    from jit.semantics.builtins_impl import BUILTINS
    return BUILTINS


def is_numpy_scalar(value) -> bool:
    """A NumPy number or bool (np.float64(2.0), np.int32(3), np.bool_(True)): an immutable constant."""
    np = sys.modules.get("numpy")  # a NumPy value can only exist once NumPy was imported
    return np is not None and isinstance(value, (np.number, np.bool_))


def _hashable(value) -> bool:
    try:
        hash(value)
        return True
    except TypeError:
        return False


def _is_namedtuple(value) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields") and type(value) is not tuple

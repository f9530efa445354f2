"""Attribute reads and writes.

Objects from outside are read for real at compile time, following Python's own order (data descriptors on the
class, then the instance dict, then the class), and each value read is wrapped with its source so it is guarded.
Properties and methods are not called for real: they are user code, so they are inlined."""
from __future__ import annotations

import functools
import inspect
import types

import torch

from framejit.guards.sources import AttrSource, ConstSource, ModuleDictSource, TypeSource
from jit.break_reasons import AttributeMissing, PythonError, unsupported
from jit.side_effects import DELETED
from jit.variables import (BoundMethodVar, BuiltinVar, CachedFunctionVar, ClassVar, Const, ContextVarVar, DictVar, DictViewVar,
                           ExceptionVar, GeneratorVar, ListVar, SetVar, MethodOnVar, ModuleVar, TokenVar, NamedTupleVar,
                           NewObjectVar, ObjectVar, PartialVar, PythonModuleVar, SuperVar, TorchCallableVar, TupleVar, UserFunctionVar,
                           Var)
from jit.variables.builder import Builder
from jit.variables.tensor import TensorMethodVar, TensorVar

_MISSING = object()
_TRUSTED_MODULE_PREFIXES = ("torch", "math", "operator", "functools", "itertools", "collections", "numpy",
                            "typing", "dataclasses", "builtins")


def _tensor_attr(tx, t: TensorVar, name: str) -> Var:
    ex = t.example
    if name == "shape":
        if tx.output.dynamic:  # through x.size(), so that dynamic dims come back as sizes computed by the graph
            return tx.output.call("call_method", "size", (t,), {})
        return Const(ex.shape)
    if name == "dtype":
        return Const(ex.dtype)
    if name == "device":
        return Const(t.device)
    if name == "ndim":
        return Const(ex.dim())
    if name == "requires_grad":
        return Const(ex.requires_grad)
    if name == "is_cuda":
        return Const(t.device.type == "cuda")
    if name == "is_cpu":
        return Const(t.device.type == "cpu")
    if name in ("is_meta", "is_mps", "is_xpu", "is_hpu"):
        return Const(t.device.type == name[3:])
    if name in ("is_nested", "is_sparse", "is_quantized", "is_mkldnn", "is_sparse_csr"):
        return Const(getattr(ex, name))  # layout facts: the example has the input's (guarded by type and layout)
    if name == "layout":
        return Const(ex.layout)
    if name == "is_leaf":
        return Const(ex.is_leaf)
    if name in ("T", "mT", "H", "mH", "real", "imag", "data"):
        if name == "data":
            return tx.output.call("call_method", "detach", (t,), {})
        return tx.output.call("call_function", getattr, (t, Const(name)), {})
    if name == "grad" and t.source is not None:
        return _input_grad(tx, t)
    if name in ("grad", "grad_fn", "_base", "_version"):
        unsupported("unsupported_value", f"tensor.{name} (autograd state)")
    if callable(getattr(torch.Tensor, name, None)):
        return TensorMethodVar(t, name)
    if not hasattr(torch.Tensor, name):
        # no such attribute on tensors (hasattr(x, "jax") in transformers): missing, unless an input tensor
        # carries it in its own __dict__, which a tensor made in the graph never does
        real = next((v for _, v, var in tx.output.inputs if var is t), None)
        if real is None or name not in getattr(real, "__dict__", {}):
            raise AttributeMissing(f"'Tensor' object has no attribute '{name}'")
    unsupported("unsupported_value", f"tensor attribute {name!r}")


def _input_grad(tx, t: TensorVar) -> Var:
    """`p.grad` of a tensor from outside (an optimizer's step, gradient clipping, a loop logging gradient norms):
    the gradient as it is when the graph runs, read and guarded through `p.grad` (None, or a tensor input of its
    own). Nothing the trace does moves it: a backward or a write to `.grad` breaks the graph before."""
    real = next((v for _, v, var in tx.output.inputs if var is t), None)
    if real is None:
        unsupported("unsupported_value", "tensor.grad (autograd state) of a tensor made by the graph")
    return tx.builder.wrap(real.grad, AttrSource(t.source, "grad"))


def _bind_class_attr(tx, attr, self_var: Var, cls: type, name: str, fn_source) -> Var:
    """A value found on the class, as seen through an instance."""
    if isinstance(attr, staticmethod):
        return UserFunctionVar(attr.__func__, None) if isinstance(attr.__func__, types.FunctionType) \
            else tx.builder.wrap(attr.__func__, None)
    if isinstance(attr, classmethod):
        return BoundMethodVar(UserFunctionVar(attr.__func__, None), ClassVar(cls))
    if isinstance(attr, types.FunctionType):
        return BoundMethodVar(UserFunctionVar(attr, fn_source), self_var)
    if isinstance(attr, functools._lru_cache_wrapper):  # @functools.cache on a method: binds as a function does
        return BoundMethodVar(CachedFunctionVar(attr, fn_source), self_var)
    if isinstance(attr, property):
        if attr.fget is None:
            unsupported("exception", f"property {name!r} has no getter")
        from jit.semantics.calls import inline_function
        try:
            return inline_function(tx, UserFunctionVar(attr.fget, None), [self_var], {})
        except PythonError as e:
            _getattr_after(self_var, cls, name, e)
            raise
    if isinstance(attr, (types.BuiltinFunctionType, types.WrapperDescriptorType, types.MethodDescriptorType)):
        # a C method (an outside object's, or tuple.__len__ of a named tuple): found, so hasattr holds; calling it
        # is where the break comes, unless the container it belongs to models it
        return MethodOnVar(self_var, name, isinstance(class_lookup(cls, "__getattribute__"), types.FunctionType))
    return None


def _getattr_after(var: Var, cls: type, name: str, e: PythonError) -> None:
    """Lookup code (a property's getter, a __getattribute__) raised `e`. After an AttributeError Python asks
    type(obj).__getattr__(obj, name), whose answer or error replaces it: nn.Module's raises its own message for a
    name that is none of its parameters, buffers or submodules; any other is not modelled here (a break)."""
    fallback = class_lookup(cls, "__getattr__", None)
    if fallback is None or not issubclass(e.exc_type, AttributeError):
        return
    if fallback is torch.nn.Module.__getattr__ and isinstance(var, ModuleVar) and \
            not any(name in var.module.__dict__.get(d, ()) for d in ("_parameters", "_buffers", "_modules")):
        raise AttributeMissing(f"'{cls.__name__}' object has no attribute '{name}'") from None
    unsupported("unsupported_value", f"{name!r} raised AttributeError: {cls.__name__}.__getattr__ decides")


def _class_attr_value(tx, attr, source, cls: type | None = None, name: str = "") -> Var:
    """A plain value stored on a class (a constant, a nested class...), seen through an instance. Guarded through
    `type(obj).name` when `source` is given, unless the class defining it is library code (trusted like the
    globals of inlined library code): a user class attribute changed after compiling must recompile."""
    if hasattr(type(attr), "__get__") and not isinstance(attr, (type, types.FunctionType)):
        # Some other descriptor (cached_property, a user descriptor, a slot of an object created here): its
        # __get__ would compute the value; we do not model that.
        unsupported("unsupported_value", f"descriptor {type(attr).__name__} on a class")
    owner = next((k for k in cls.__mro__ if name in vars(k)), cls) if cls is not None else None
    trusted = owner is None or owner.__module__.split(".")[0] in _TRUSTED_MODULE_PREFIXES
    return Builder(tx.output, guarded=source is not None and not trusted).wrap(attr, source)


def _object_attr(tx, var: Var, obj, name: str) -> Var:
    if name == "__dict__":
        # the real dict, read through its source, does not hold the writes the trace recorded for after the graph:
        # the two may not meet (Dynamo's test_dicts: `obj.c = 3` then `obj.__dict__.items()` missed c)
        if tx.output.side_effects.sets_attrs_of(obj):
            unsupported("side_effect", f"reading {type(obj).__name__}.__dict__ after setting its attributes here")
        tx.output.dicts_read.add(id(obj))
    written = tx.output.side_effects.attr(obj, name)  # the traced code wrote it (no data descriptor: checked then)
    if written is DELETED:
        raise AttributeMissing(f"'{type(obj).__name__}' object has no attribute '{name}'")
    if written is not None:
        return written
    cls = type(obj)
    attr = class_lookup(cls, name)
    is_data_descriptor = attr is not _MISSING and (hasattr(type(attr), "__set__") or hasattr(type(attr), "__delete__"))
    if is_data_descriptor and isinstance(attr, property):
        return _bind_class_attr(tx, attr, var, cls, name, None)
    if is_data_descriptor and not isinstance(attr, (types.MemberDescriptorType, types.GetSetDescriptorType)):
        # a user data descriptor wins over the instance dict, and its __get__ is code we do not run
        unsupported("unsupported_value", f"data descriptor {type(attr).__name__} {cls.__name__}.{name}")
    # a class with its own __getattribute__ in Python: what is read here is what object.__getattribute__ finds
    # (this function is its model), so the source reads it that way too (AttrSource.generic)
    generic = isinstance(class_lookup(cls, "__getattribute__"), types.FunctionType)
    try:
        instance_dict = object.__getattribute__(obj, "__dict__") if generic else getattr(obj, "__dict__", None)
    except AttributeError:  # __slots__ only
        instance_dict = None
    if instance_dict is not None and name in instance_dict:
        return tx.builder.wrap(instance_dict[name], AttrSource(var.source, name, generic) if var.source else None)
    if isinstance(obj, torch.nn.Module):
        for store in ("_parameters", "_buffers", "_modules"):
            d = obj.__dict__.get(store)
            if d is not None and name in d:
                value = d[name]
                if value is None:
                    return Const(None)
                return tx.builder.wrap(value, ModuleDictSource(var.source, store, name) if var.source else None)
    if isinstance(attr, (types.MemberDescriptorType, types.GetSetDescriptorType)):
        # __slots__ entries and C-level attributes: the value lives on the instance; read it for real.
        try:
            value = getattr(obj, name)
        except AttributeError as e:
            raise AttributeMissing(str(e))
        return tx.builder.wrap(value, AttrSource(var.source, name, generic) if var.source else None)
    if attr is not _MISSING:
        fn_source = AttrSource(TypeSource(var.source), name) if var.source else None
        bound = _bind_class_attr(tx, attr, var, cls, name, fn_source)
        if bound is not None:
            return bound
        return _class_attr_value(tx, attr, fn_source, cls, name)
    if hasattr(cls, "__getattr__") and not isinstance(obj, torch.nn.Module):
        return _fallback_getattr(tx, var, cls, name)
    raise AttributeMissing(f"'{cls.__name__}' object has no attribute '{name}'")


def _fallback_getattr(tx, var: Var, cls: type, name: str) -> Var:
    """What Python does when normal lookup finds nothing: type(obj).__getattr__(obj, name), inlined."""
    method = class_lookup(cls, "__getattr__")
    if not isinstance(method, types.FunctionType):
        unsupported("unsupported_value", f"{cls.__name__}.__getattr__ for {name!r}")
    from jit.semantics.calls import inline_function
    return inline_function(tx, UserFunctionVar(method, None), [var, Const(name)], {})


def _new_object_attr(tx, var: NewObjectVar | NamedTupleVar, name: str) -> Var:
    """An attribute of an object made in the traced code (a named tuple too: its fields are read before this):
    its own attributes, then its class's through the MRO, as object.__getattribute__ finds them."""
    if isinstance(var, NewObjectVar) and name in var.attrs:
        return var.attrs[name]
    if isinstance(var, NewObjectVar) and name == "__dict__" and _has_instance_dict(var.cls):
        from jit.semantics.dict_objects import attrs_view
        return attrs_view(var)
    attr = class_lookup(var.cls, name)
    if attr is _MISSING or isinstance(attr, types.MemberDescriptorType):  # a __slots__ entry never assigned
        if class_lookup(var.cls, "__getattr__", None) is not None:
            return _fallback_getattr(tx, var, var.cls, name)
        raise AttributeMissing(f"'{var.cls.__name__}' object has no attribute '{name}'")
    bound = _bind_class_attr(tx, attr, var, var.cls, name, None)
    return bound if bound is not None else _class_attr_value(tx, attr, None)


def object_setattr(tx, obj: NewObjectVar, name: str, value: Var) -> None:
    """object.__setattr__ on an object made in the traced code: a data descriptor on the class takes the write
    (a property's setter is inlined), else the instance's own attributes do."""
    attr = class_lookup(obj.cls, name)
    if isinstance(attr, property):
        if attr.fset is None:
            unsupported("exception", f"AttributeError: property {name!r} of {obj.cls.__name__!r} object has no setter")
        from jit.semantics.calls import inline_function
        inline_function(tx, UserFunctionVar(attr.fset, None), [obj, value], {})
        return
    if attr is not _MISSING and hasattr(type(attr), "__set__") and not isinstance(attr, types.MemberDescriptorType):
        unsupported("unsupported_value", f"data descriptor {type(attr).__name__} {obj.cls.__name__}.{name}")
    if not isinstance(attr, types.MemberDescriptorType) and not _has_instance_dict(obj.cls):
        unsupported("exception", f"AttributeError: {obj.cls.__name__!r} object has no attribute {name!r}")
    obj.attrs[name] = value


def _has_instance_dict(cls: type) -> bool:
    """Instances of a class get a __dict__ unless every class in its MRO declares __slots__ (object aside)."""
    return any("__slots__" not in vars(k) for k in cls.__mro__[:-1])


def class_lookup(cls: type, name: str, missing=_MISSING):
    """What type(obj).name finds through the MRO, without running descriptors (the metaclass is not searched:
    an instance does not see it)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return missing


def _class_attr(tx, var: ClassVar, name: str) -> Var:
    attr = inspect.getattr_static(var.cls, name, _MISSING)
    if attr is _MISSING:
        raise AttributeMissing(f"type object '{var.cls.__name__}' has no attribute '{name}'")
    if isinstance(attr, staticmethod):
        return tx.builder.wrap(attr.__func__, None) if not isinstance(attr.__func__, types.FunctionType) \
            else UserFunctionVar(attr.__func__, None)
    if isinstance(attr, classmethod):
        return BoundMethodVar(UserFunctionVar(attr.__func__, None), var)
    if isinstance(attr, types.FunctionType):
        return UserFunctionVar(attr, None)
    source = AttrSource(var.source, name) if var.source else ConstSource(getattr(var.cls, name), f"{var.cls.__name__}.{name}")
    return tx.builder.wrap(getattr(var.cls, name), source)


def _python_module_attr(tx, var: PythonModuleVar, name: str) -> Var:
    try:
        value = getattr(var.mod, name)
    except AttributeError:
        raise AttributeMissing(f"module '{var.mod.__name__}' has no attribute '{name}'")
    trusted = var.mod.__name__.split(".")[0] in _TRUSTED_MODULE_PREFIXES
    builder = Builder(tx.output, guarded=not trusted)
    source = AttrSource(var.source, name) if var.source else ConstSource(value, f"{var.mod.__name__}.{name}")
    return builder.wrap(value, source)


def _super_attr(tx, var: SuperVar, name: str) -> Var:
    if isinstance(var.self_var, ClassVar):  # super() in a classmethod or __new__: the class's own MRO
        mro = var.self_var.value.__mro__
    elif isinstance(var.self_var, NewObjectVar):
        mro = var.self_var.cls.__mro__
    else:
        mro = type(var.self_var.module if isinstance(var.self_var, ModuleVar) else
                   var.self_var.obj if isinstance(var.self_var, ObjectVar) else None).__mro__
    if var.cls not in mro:
        unsupported("unsupported_value", f"super() of {var.self_var.describe()} outside {var.cls.__name__}'s MRO")
    for klass in mro[mro.index(var.cls) + 1:]:
        if name in klass.__dict__:
            attr = klass.__dict__[name]
            if isinstance(attr, (types.BuiltinFunctionType, types.WrapperDescriptorType, types.MethodDescriptorType)):
                # a C method of a base (object.__getattribute__): bound to this very function, not looked up
                # on the object again (which would find the subclass's override)
                return BoundMethodVar(BuiltinVar(attr), var.self_var)
            bound = _bind_class_attr(tx, attr, var.self_var, klass, name, None)
            if bound is not None:
                return bound
            return _class_attr_value(tx, attr, None)
    raise AttributeMissing(f"'super' object has no attribute '{name}'")


_CONTAINER_METHODS = {
    ListVar: {"append", "extend", "pop", "insert", "index", "count", "copy", "reverse", "clear", "remove", "sort"},
    TupleVar: {"index", "count"},
    DictVar: {"keys", "values", "items", "get", "update", "setdefault", "copy", "pop", "popitem", "clear"},
    DictViewVar: {"isdisjoint"},
    SetVar: {"add", "discard", "remove", "pop", "clear", "copy", "isdisjoint"} | set(
        ["union", "intersection", "difference", "symmetric_difference", "update", "intersection_update",
         "difference_update", "symmetric_difference_update", "issubset", "issuperset"]),
}


_FUNCTION_ATTRS = {"__wrapped__", "__defaults__", "__kwdefaults__", "__dict__", "__annotations__",
                   "__type_params__"}


def generic_attr(tx, obj: Var, name: str) -> Var:
    """object.__getattribute__(obj, name): the lookup without a class's own __getattribute__."""
    if isinstance(obj, ObjectVar):
        return _object_attr(tx, obj, obj.obj, name)
    return get_attr(tx, obj, name)


def get_attr(tx, obj: Var, name: str) -> Var:
    if name == "__class__" and isinstance(obj, (NewObjectVar, ObjectVar, ModuleVar)):
        return ClassVar(obj.python_type())  # the type is fixed: guarded (ObjectVar, ModuleVar) or created here
    if isinstance(obj, TensorVar):
        return _tensor_attr(tx, obj, name)
    if isinstance(obj, NamedTupleVar):
        fields = getattr(obj.cls, "_fields", None) or getattr(obj.cls, "__match_args__", ())
        if name in fields:
            return obj.items[list(fields).index(name)]
        if name in _CONTAINER_METHODS[TupleVar] or name in ("_asdict", "_replace"):
            return MethodOnVar(obj, name)
        return _new_object_attr(tx, obj, name)  # the class's own attributes through its MRO: _fields, methods...
    for kind, names in _CONTAINER_METHODS.items():
        if isinstance(obj, kind) and name in names:  # (NamedTupleVar, the one other subclass, is handled above)
            return MethodOnVar(obj, name)
    if isinstance(obj, ContextVarVar):
        from jit.semantics import context_vars
        if name in context_vars.METHODS:
            return MethodOnVar(obj, name)
        if name == "name":
            return Const(obj.obj.name)  # read-only, and the var is guarded by identity
    if isinstance(obj, TokenVar):
        from jit.semantics import context_vars
        return context_vars.token_attr(tx, obj, name)
    if isinstance(obj, GeneratorVar) and callable(getattr(types.GeneratorType, name, None)):
        return MethodOnVar(obj, name)  # send/close step it (containers_impl); throw is a break at its call
    if isinstance(obj, ModuleVar):
        return _object_attr(tx, obj, obj.module, name)
    if isinstance(obj, ObjectVar):
        custom = class_lookup(type(obj.obj), "__getattribute__")
        if isinstance(custom, types.FunctionType):  # type(obj).__getattribute__(obj, name), as Python does
            from jit.semantics.calls import inline_function
            try:
                return inline_function(tx, UserFunctionVar(custom, None), [obj, Const(name)], {})
            except PythonError as e:
                _getattr_after(obj, type(obj.obj), name, e)
                raise
        return _object_attr(tx, obj, obj.obj, name)
    if isinstance(obj, NewObjectVar):
        return _new_object_attr(tx, obj, name)
    if isinstance(obj, ExceptionVar):
        from jit.semantics import exceptions
        return exceptions.get_attr(tx, obj, name)
    if isinstance(obj, ClassVar):
        return _class_attr(tx, obj, name)
    if isinstance(obj, PythonModuleVar):
        return _python_module_attr(tx, obj, name)
    if isinstance(obj, SuperVar):
        return _super_attr(tx, obj, name)
    if isinstance(obj, (UserFunctionVar, TorchCallableVar, BuiltinVar)):
        target = getattr(obj, "fn")
        if name in ("__name__", "__qualname__", "__module__", "__doc__", "__code__"):
            return Const(getattr(target, name))  # fixed for the function (guarded by identity or code)
        if isinstance(target, torch._ops.OpOverloadPacket) and isinstance(getattr(target, name, None),
                                                                           torch._ops.OpOverload):
            # `torch.ops.aten.add.Tensor`: an overload of the packet, itself a torch callable (the graph's target)
            overload = getattr(target, name)
            source = AttrSource(obj.source, name) if obj.source is not None else ConstSource(overload, str(overload))
            return tx.builder.wrap(overload, source)
        if isinstance(obj, UserFunctionVar) and name == "__get__":
            # `func.__get__(obj, cls)`: the function bound to obj (LRScheduler's wrapper around opt.step calls it)
            from jit.semantics.builtins_impl import bind_function
            return PartialVar(BuiltinVar(bind_function, None), [obj], {})
        if isinstance(obj, UserFunctionVar) and name in _FUNCTION_ATTRS and hasattr(target, name):
            # functools.wraps' __wrapped__, defaults, the function's __dict__: read through the function
            value = getattr(target, name)
            source = AttrSource(obj.source, name) if obj.source is not None else \
                ConstSource(value, f"{target.__qualname__}.{name}")
            return tx.builder.wrap(value, source)
    if isinstance(obj, Const):
        try:
            value = getattr(obj.value, name)
        except AttributeError as e:
            raise AttributeMissing(str(e))
        if isinstance(obj.value, list) and callable(value):  # a constant list mutated in place: make it symbolic
            unsupported("unsupported_value", f"list.{name} on a constant list")
        if callable(value) and not isinstance(value, type):
            return MethodOnVar(obj, name)
        return Const(value)
    unsupported("unsupported_value", f"attribute {name!r} of {obj.describe()}")


def set_attr(tx, obj: Var, name: str, value: Var) -> None:
    """`obj.name = value`: type(obj).__setattr__, which for most classes is object's (object_setattr)."""
    if isinstance(obj, NewObjectVar):
        setter = class_lookup(obj.cls, "__setattr__")
        if setter is object.__setattr__:
            object_setattr(tx, obj, name, value)
        elif isinstance(setter, types.FunctionType):
            from jit.semantics.calls import inline_function
            inline_function(tx, UserFunctionVar(setter, None), [obj, Const(name), value], {})
        else:
            unsupported("unsupported_call", f"{obj.cls.__name__}.__setattr__ is implemented in C")
        return
    if isinstance(obj, TensorVar):
        unsupported("unsupported_value", f"setting tensor attribute {name!r}")
    if isinstance(obj, (ObjectVar, ModuleVar)):
        real = obj.obj if isinstance(obj, ObjectVar) else obj.module
        setter = class_lookup(type(real), "__setattr__")
        if setter is object.__setattr__ or setter is torch.nn.Module.__setattr__:
            outside_setattr(tx, obj, name, value)
        elif isinstance(setter, types.FunctionType):  # a class's own __setattr__ (ModelOutput's), inlined
            from jit.semantics.calls import inline_function
            inline_function(tx, UserFunctionVar(setter, None), [obj, Const(name), value], {})
        else:
            unsupported("side_effect", f"{type(real).__name__}.__setattr__ is implemented in C")
        return
    unsupported("side_effect", f"setting attribute {name!r} on {obj.describe()}")


def outside_setattr(tx, obj: Var, name: str, value: Var, delete: bool = False) -> None:
    """object.__setattr__ (or __delattr__) on an object or module from outside: recorded (jit/side_effects.py)
    and applied after the graph runs. A data descriptor on the class (a property's setter, a slot) or, on a
    module, a parameter, buffer or submodule name or value, takes the write another way: a break."""
    real = obj.obj if isinstance(obj, ObjectVar) else obj.module
    what = f"{'deleting' if delete else 'setting'} attribute {name!r} on {obj.describe()}"
    if obj.source is None or not _has_instance_dict(type(real)):
        unsupported("side_effect", what)
    attr = class_lookup(type(real), name)
    if attr is not _MISSING and (hasattr(type(attr), "__set__") or hasattr(type(attr), "__delete__")):
        unsupported("side_effect", f"{what}: a data descriptor ({type(attr).__name__}) takes it")
    if isinstance(real, torch.nn.Module) and (
            any(name in real.__dict__.get(d, ()) for d in ("_parameters", "_buffers", "_modules")) or
            isinstance(value, (TensorVar, ModuleVar)) or value.python_type() is torch.nn.Parameter):
        unsupported("side_effect", f"{what}: a parameter, buffer or submodule")
    if id(real) in tx.output.dicts_read:
        unsupported("side_effect", f"{what} after reading its __dict__")
    if delete and tx.output.side_effects.attr(real, name) is DELETED:
        raise AttributeMissing(name)
    tx.output.side_effects.write_attr(obj, real, name, DELETED if delete else value)

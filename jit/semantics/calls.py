"""Calls: torch functions and tensor methods become graph nodes; user functions, methods, nn.Module forwards and
class constructors are inlined; builtins are modelled (semantics/builtins_impl.py)."""
from __future__ import annotations

import collections
import enum
import functools
import inspect
import operator
import sys
import types
import weakref

import torch

from framejit.guards.kinds import InferenceMatch, LenMatch, StateMatch
from framejit.guards.sources import AttrSource, ConstSource, ItemSource
from jit import skip_rules
from jit import autocast
from jit.break_reasons import unsupported
from jit import compiled_floats
from jit.semantics import context_managers, foreach
from jit.variables import (NULL, BoundMethodVar, BuiltinVar, CachedFunctionVar, CellVar, ClassVar, Const, ContextVarVar, DictVar,
                           GeneratorVar, GradModeVar, ListVar, MethodOnVar, ModuleVar, NamedTupleVar, NestedFunctionVar,
                           NewObjectVar, ObjectVar, PartialVar, TorchCallableVar, TupleVar, UserFunctionVar, Var)
from jit.variables.builder import Builder
from jit.variables.floats import FloatVar
from jit.variables.tensor import TensorMethodVar, TensorVar

# Tensor methods that turn values into Python data: the captured graph cannot return them to Python code.
_TO_PYTHON = {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "data_ptr", "__len__"}
_FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.linspace, torch.logspace,
              torch.eye, torch.rand, torch.randn, torch.randint, torch.randperm, torch.tensor, torch.as_tensor,
              torch.scalar_tensor, torch.empty_strided, torch.tril_indices, torch.triu_indices}
_RANDOM = {torch.rand, torch.randn, torch.randint, torch.randperm, torch.rand_like, torch.randn_like,
           torch.randint_like, torch.bernoulli, torch.multinomial, torch.normal, torch.poisson}
# Calls into torch's autograd engine: they run eagerly (a break), never as a graph node.
_AUTOGRAD_METHODS = {"backward", "register_hook", "retain_grad", "register_post_accumulate_grad_hook"}
_AUTOGRAD_FUNCTIONS = {torch.autograd.backward, torch.autograd.grad}
_PURE_PYTHON_RESULT = {torch.is_tensor, torch.is_floating_point, torch.is_complex, torch.numel, torch.result_type,
                       torch.promote_types, torch.can_cast, torch.broadcast_shapes, torch.get_default_dtype,
                       torch.is_grad_enabled, torch.finfo, torch.iinfo}


# Functions libraries call to ask how they run, answered while tracing: TorchScript and torch.jit.trace state is
# read now (a function of nothing; None: ask it); torch.compiler.is_compiling() is True inside captured code, as
# under torch.compile, so libraries take their compile-friendly paths. Code run eagerly at a break sees the real
# (False) answer, as it does under torch.compile.
_STATE_QUERIES = {torch._C._get_tracing_state: None, torch._C._is_tracing: None, torch.jit.is_scripting: None,
                  torch.jit.is_tracing: None, torch._C._len_torch_function_stack: None,
                  torch._C._len_torch_dispatch_stack: None,
                  torch.compiler.is_compiling: True,
                  torch.compiler.is_dynamo_compiling: False, torch.compiler.is_exporting: False,
                  # the name of a third-party device backend (torch.optim asks which devices have foreach kernels)
                  torch._C._get_privateuse1_backend_name: None}


_HAS_TORCH_FUNCTION = {torch.overrides.has_torch_function, torch.overrides.has_torch_function_unary,
                       torch.overrides.has_torch_function_variadic}


def _state_query(fn: Var, args, kwargs) -> Var | None:
    target = _callee(fn)
    try:
        hashable_target = target is not None and hash(target) is not None
    except TypeError:
        return None
    if hashable_target and target in _HAS_TORCH_FUNCTION and not kwargs:
        # plain tensors and parameters (types guarded) override no __torch_function__
        tensors = [t for a in args for t in (a.items if isinstance(a, (TupleVar, ListVar)) else [a])]
        if all(isinstance(t, TensorVar) and t.tensor_type in (torch.Tensor, torch.nn.Parameter) or
               isinstance(t, Const) and not isinstance(t.value, torch.Tensor) for t in tensors):
            return Const(False)
    try:
        known = target is not None and target in _STATE_QUERIES
    except TypeError:  # unhashable
        return None
    if not known or args or kwargs:
        return None
    answer = _STATE_QUERIES[target]
    return Const(target() if answer is None else answer)


def _callee(fn: Var):
    """The real callable behind a callee Var, or None."""
    for attr in ("value", "fn", "obj"):
        target = getattr(fn, attr, None)
        if callable(target) and not isinstance(target, Var):
            return target
    return None


# autocast queries: (device type or None for the first argument's, asks for the dtype)
_AUTOCAST_QUERIES = {torch.is_autocast_enabled: ("cuda", False), torch.get_autocast_dtype: (None, True),
                     torch.is_autocast_cpu_enabled: ("cpu", False), torch.get_autocast_cpu_dtype: ("cpu", True),
                     torch.get_autocast_gpu_dtype: ("cuda", True)}


def _autocast_query(tx, fn, values: tuple) -> Var:
    """The traced autocast state's answer (jit/autocast.py). Whether autocast is on at entry is guarded for every
    frame; the dtype of a device whose autocast is off is guarded here, where the code relied on it."""
    device, wants_dtype = _AUTOCAST_QUERIES[fn]
    try:
        fn(*values)  # eager's argument checks
        device = str(values[0]) if values else device
        state = tx.output.autocast
        answer = state.dtype(device) if wants_dtype else state.enabled(device)
    except (TypeError, RuntimeError) as e:
        unsupported("exception", f"{fn.__name__}{values!r} raised {type(e).__name__}: {e}")
    if wants_dtype and not state.enabled(device) and not state.open_blocks:  # else the traced block's dtype
        tx.output.guards.append(StateMatch(None, fn, values, answer))
    return Const(answer)


def _has_tensor(values) -> bool:
    for v in values:
        if isinstance(v, TensorVar):
            return True
        if isinstance(v, (TupleVar, ListVar)) and _has_tensor(v.items):
            return True
        if isinstance(v, DictVar) and _has_tensor(v.items.values()):
            return True
    return False


def call(tx, fn: Var, args: list[Var], kwargs: dict[str, Var]) -> Var:
    if (answer := _state_query(fn, args, kwargs)) is not None:
        return answer
    if isinstance(fn, Const) and fn.value is context_managers.NULL_EXIT:  # leaving `with nullcontext()`
        return Const(None)
    if isinstance(fn, TorchCallableVar):
        return call_torch(tx, fn.fn, args, kwargs)
    if isinstance(fn, TensorMethodVar):
        return call_tensor_method(tx, fn.tensor, fn.name, args, kwargs)
    if isinstance(fn, (UserFunctionVar, NestedFunctionVar)):
        return inline_function(tx, fn, args, kwargs)
    if isinstance(fn, BoundMethodVar):
        from jit.semantics import autograd_functions
        if autograd_functions.is_apply(fn.fn, fn.self_var):
            return autograd_functions.call_apply(tx, fn.self_var.cls, list(args), kwargs)
        return call(tx, fn.fn, [fn.self_var] + list(args), kwargs)
    if isinstance(fn, ModuleVar):
        return call_module(tx, fn, args, kwargs)
    if isinstance(fn, BuiltinVar):
        return call_builtin(tx, fn.fn, args, kwargs)
    if isinstance(fn, ClassVar):
        return construct(tx, fn.cls, args, kwargs)
    if isinstance(fn, PartialVar):
        return call(tx, fn.fn, fn.args + list(args), {**fn.kwargs, **kwargs})
    if isinstance(fn, CachedFunctionVar):
        return call_cached(tx, fn, args, kwargs)
    if isinstance(fn, MethodOnVar):
        return call_method_on(tx, fn.obj, fn.name, args, kwargs)
    if isinstance(fn, context_managers.ExitVar):
        return context_managers.exit_(tx, fn)
    if isinstance(fn, context_managers.InferenceExitVar):
        return context_managers.exit_inference_mode(tx, fn)
    if isinstance(fn, context_managers.GeneratorExitVar):
        return context_managers.exit_generator_manager(tx, fn, args)
    if isinstance(fn, autocast.AutocastExitVar):
        tx.output.autocast.exit()
        return Const(None)
    if isinstance(fn, (ObjectVar, NewObjectVar)):
        cls = fn.python_type()
        method = inspect.getattr_static(cls, "__call__", None)
        if isinstance(method, types.FunctionType):
            return inline_function(tx, UserFunctionVar(method, None), [fn] + list(args), kwargs)
    if isinstance(fn, ObjectVar) and type(fn.obj) is weakref.ReferenceType and fn.source is not None and \
            not args and not kwargs:
        # a weakref from outside: its referent, read through the call (guarded there: a dead or retargeted
        # reference recompiles)
        from framejit.guards.sources import CallResultSource
        return tx.builder.wrap(fn.obj(), CallResultSource(fn.source))
    if fn is NULL:
        unsupported("unsupported_opcode", "call protocol mismatch")
    if isinstance(fn, ObjectVar) and getattr(fn.obj, "__name__", None) == "__exit__":  # a C-implemented manager's
        owner = type(getattr(fn.obj, "__self__", None)).__name__
        unsupported("context_manager", f"leaving a `with` over {owner} (__exit__ built in)")
    unsupported("unsupported_call", f"calling {fn.describe()}")


def call_cached(tx, fn: CachedFunctionVar, args: list[Var], kwargs: dict[str, Var]) -> Var:
    """A functools.lru_cache'd function on arguments known now: called for real, here. Its cache hands every
    later call with these arguments the same result, so the result is a constant of the compiled code (an object
    referenced as it is), and what its first call did (transformers' `warning_once` printing) happens once, as in
    eager. Arguments only the compiled code knows (tensors, values computed in the function): its undecorated
    function is traced instead, as its cache would give what it computes."""
    known = _cache_arguments(tx, list(args) + list(kwargs.values()))
    if known is None:
        wrapped = getattr(fn.wrapper, "__wrapped__", None)
        if not isinstance(wrapped, types.FunctionType):
            unsupported("unsupported_call", f"{fn.describe()} on values known only when the code runs")
        return inline_function(tx, UserFunctionVar(wrapped, None), list(args), kwargs)
    values, named = known[:len(args)], dict(zip(kwargs, known[len(args):]))
    try:
        result = fn.wrapper(*values, **named)
    except Exception as e:  # noqa: BLE001 - eager's call raises it too (a list argument: unhashable)
        from jit.semantics.exceptions import raised_on_constants
        raised_on_constants(e)
    return Builder(tx.output, guarded=False).wrap(result, ConstSource(result, f"result of {fn.describe()}"))


def _cache_arguments(tx, args: list[Var]) -> list | None:
    """The real objects behind `args` (a cache key hashes them by value or identity), or None where one is known
    only at run time. Objects from outside are pinned by identity: another object is another key."""
    from framejit.guards.kinds import IdMatch
    values = []
    for a in args:
        if a.is_const() and not isinstance(a, TensorVar):
            values.append(a.const())
        elif isinstance(a, (ObjectVar, ModuleVar)) and a.source is not None:
            real = a.obj if isinstance(a, ObjectVar) else a.module
            tx.output.guards.append(IdMatch(a.source, real))
            values.append(real)
        elif isinstance(a, ClassVar):
            values.append(a.cls)
        else:
            return None
    return values


# ---- torch ------------------------------------------------------------------------------------------------------

def call_torch(tx, fn, args: list[Var], kwargs: dict[str, Var]) -> Var:
    if foreach.is_foreach(fn):
        return foreach.call(tx, fn, list(args), dict(kwargs))
    if fn is torch.set_grad_enabled:
        enabled = args[0].const() if args else kwargs["mode"].const()
        manager = GradModeVar(enabled, torch.set_grad_enabled)
        manager.prior = torch.is_grad_enabled()
        context_managers.set_grad(tx, enabled)
        return manager
    if fn is torch.is_grad_enabled:
        return Const(torch.is_grad_enabled())
    if fn is torch.is_inference_mode_enabled and not args and not kwargs:
        # the trace enters traced inference_mode blocks for real; outside them the answer is the entry state's
        answer = torch.is_inference_mode_enabled()
        if not tx.output.open_contexts:
            tx.output.guards.append(StateMatch(None, fn, (), answer))
        return Const(answer)
    if fn in _AUTOCAST_QUERIES and all(a.is_const() for a in args) and not kwargs:
        return _autocast_query(tx, fn, tuple(a.const() for a in args))
    if fn in _AUTOGRAD_FUNCTIONS:
        unsupported("autograd", f"torch.autograd.{fn.__name__}() runs the autograd engine")
    if fn in (torch.manual_seed, torch.seed, torch.set_default_dtype, torch.set_printoptions):
        unsupported("side_effect", f"torch.{fn.__name__} changes global state")
    if fn in _PURE_PYTHON_RESULT and not _has_tensor(list(args) + list(kwargs.values())) and \
            all(a.is_const() for a in [*args, *kwargs.values()]):
        return Const(fn(*(a.const() for a in args), **{k: v.const() for k, v in kwargs.items()}))
    if not _has_tensor(list(args) + list(kwargs.values())):
        if isinstance(fn, types.FunctionType) and fn not in _FACTORIES:
            # a helper written in Python inside torch (F._none_or_dtype, F._canonical_mask's checks): its code
            return inline_function(tx, UserFunctionVar(fn, None), list(args), kwargs)
        if fn not in _FACTORIES and not getattr(fn, "__name__", "").endswith("_like"):
            if all(a.is_const() for a in args) and all(v.is_const() for v in kwargs.values()) and \
                    fn in _PURE_PYTHON_RESULT:
                return Const(fn(*(a.const() for a in args)))
        return tx.output.call_factory(fn, args, kwargs)
    if getattr(fn, "__name__", None) in _SCALED_PRODUCTS and isinstance(kwargs.get("value"), (TensorVar, FloatVar)) \
            and args:
        return _scaled_product(tx, fn.__name__, args[0], list(args[1:]), kwargs)
    return tx.output.call("call_function", fn, tuple(args), kwargs)


_SCALED_PRODUCTS = {"addcdiv": "div", "addcdiv_": "div", "addcmul": "mul", "addcmul_": "mul"}


def _scaled_product(tx, name: str, self_var: TensorVar, args: list, kwargs: dict) -> Var:
    """`p.addcdiv_(a, b, value=t)` with `t` a 0-dim tensor (or a compiled float, jit/variables/floats.py): eager
    reads t with .item() (a device sync, and a value no trace can know); here it stays a tensor. Eager's kernel
    computes `p + (t * a) op b` (fused for addcmul), which is the op with value 1 on `t * a`: that form keeps the
    kernel's rounding (torch.optim's Adam passes its step size as a tensor where the step counter is one:
    `torch.compiler.is_compiling()` is True in a trace)."""
    if len(args) != 2 or set(kwargs) != {"value"}:
        unsupported("unsupported_call", f"{name} with a tensor value and arguments {len(args)}, {sorted(kwargs)}")
    value = kwargs["value"]
    if isinstance(value, FloatVar):
        value = compiled_floats.scalar_operand(tx, value, self_var)
        if value is None:  # (specialized: the number itself)
            return tx.output.call("call_method", name, (self_var, *args), {"value": Const(kwargs["value"].const())})
    scaled = tx.output.call("call_function", operator.mul, (value, args[0]), {})
    return tx.output.call("call_method", name, (self_var, scaled, args[1]), {})


def call_tensor_method(tx, tensor: TensorVar, name: str, args, kwargs) -> Var:
    if name in _TO_PYTHON:
        unsupported("tensor_to_python", f"tensor.{name}() turns a tensor into Python data")
    if name in _AUTOGRAD_METHODS:
        unsupported("autograd", f"tensor.{name}() runs or changes torch's autograd engine")
    if name == "get_device":
        return Const(tensor.device.index if tensor.device.type != "cpu" else -1)
    if name == "type":
        return _tensor_type(tx, tensor, args, kwargs)
    if name == "new" and len(args) == 1 and not kwargs and _is_size(args[0]):
        # `x.new(torch.Size)` is a shape where `x.new((5, 8))` is data; the graph would hold the Size as a tuple
        return tx.output.call("call_method", "new_empty", (tensor, args[0]), {})
    if name == "is_inference" and not args and not kwargs:
        # an input's meta example is never an inference tensor: ask the real one (a tensor made in the graph
        # answers from its example, made in the traced mode)
        real = next((v for _, v, var in tx.output.inputs if var is tensor), None)
        if real is not None and tensor.source is not None:
            tx.output.guards.append(InferenceMatch(tensor.source, real.is_inference()))
            return Const(real.is_inference())
    if name in _SCALED_PRODUCTS and isinstance(kwargs.get("value"), (TensorVar, FloatVar)):
        return _scaled_product(tx, name, tensor, list(args), kwargs)
    if any(isinstance(a, FloatVar) for a in list(args) + list(kwargs.values())):
        result, args = compiled_floats.tensor_method(tx, tensor, name, args, kwargs, call_tensor_method)
        if result is not None:
            return result
    return tx.output.call("call_method", name, (tensor, *args), kwargs)



def _is_size(v: Var) -> bool:
    return isinstance(v, NamedTupleVar) and v.python_type() is torch.Size or \
        isinstance(v, Const) and type(v.value) is torch.Size


def _tensor_type(tx, tensor: TensorVar, args, kwargs) -> Var:
    """`t.type()`: the legacy type name ('torch.HalfTensor', 'torch.cuda.HalfTensor'), from the tensor's dtype and
    device (its meta example would name 'torch.meta...'); `t.type(T)` with T a dtype, a legacy tensor class or
    its name: `t.to(dtype)` where T is on the tensor's device (a copy only where the dtype changes, as eager)."""
    kwargs = {k: v for k, v in kwargs.items() if k != "non_blocking"}
    target = args[0] if args else kwargs.pop("dtype", None)
    if target is None and not kwargs:
        name = torch.empty(0, dtype=tensor.example.dtype).type()
        device = tensor.device.type
        return Const(name if device == "cpu" else name.replace("torch.", f"torch.{device}.", 1))
    if len(args) > 1 or kwargs or not target.is_const():
        unsupported("unsupported_call", "tensor.type() with arguments not known at compile time")
    target = target.const()
    if isinstance(target, str):
        resolved = torch
        for part in target.split(".")[1:] if target.startswith("torch.") else [None]:
            resolved = getattr(resolved, part, None) if part else None
        target = resolved
    if isinstance(target, torch.dtype):
        dtype, device = target, tensor.device.type
    elif isinstance(target, type) and isinstance(getattr(target, "dtype", None), torch.dtype) and \
            hasattr(target, "is_cuda"):
        dtype, device = target.dtype, "cuda" if target.is_cuda else "cpu"
    else:
        unsupported("unsupported_call", f"tensor.type({target!r}): not a dtype or tensor type")
    if device != tensor.device.type:
        unsupported("unsupported_call", f"tensor.type() to a {device} type moves a {tensor.device.type} tensor")
    return call_tensor_method(tx, tensor, "to", [Const(dtype)], {})


# ---- modules and classes ----------------------------------------------------------------------------------------

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def call_module(tx, var: ModuleVar, args, kwargs) -> Var:
    m = var.module
    if m._backward_hooks or getattr(m, "_backward_pre_hooks", None) or _global_module_hooks():
        unsupported("unsupported_call", f"{type(m).__name__} has backward hooks, or global module hooks are set")
    if m._forward_hooks or m._forward_pre_hooks:
        return _call_with_forward_hooks(tx, var, args, kwargs)
    # a hook registered after compiling must run: guard that there is none
    if tx.builder.by_structure(var.source):  # another instance of the class may have hooks
        for store in _HOOK_DICTS:
            if hasattr(m, store):
                tx.builder.guard(LenMatch(AttrSource(var.source, store), type(getattr(m, store)), 0))
    elif var.source is not None:  # this very module (guarded by identity): its own hook dicts, checked at once
        tx.output.hook_dicts.extend(getattr(m, store) for store in _HOOK_DICTS if hasattr(m, store))
    return _inline_forward(tx, var, list(args), kwargs)


def _inline_forward(tx, var: ModuleVar, args: list, kwargs: dict) -> Var:
    forward = inspect.getattr_static(type(var.module), "forward")
    if not isinstance(forward, types.FunctionType):
        unsupported("unsupported_call", f"{type(var.module).__name__}.forward is not a Python function")
    return inline_function(tx, UserFunctionVar(forward, None), [var] + args, kwargs)


_FORWARD_HOOK_STORES = ("_forward_pre_hooks", "_forward_hooks", "_forward_pre_hooks_with_kwargs",
                        "_forward_hooks_with_kwargs", "_forward_hooks_always_called")


def _call_with_forward_hooks(tx, var: ModuleVar, args, kwargs) -> Var:
    """nn.Module.__call__ with forward pre-hooks and hooks (transformers' gradient checkpointing makes the input
    embeddings' output require grad in one; PEFT and activation capture use them): each hook is traced as a call,
    in Module._call_impl's order, its result replacing the arguments or the output where it returns one. The hook
    dicts are guarded by their keys and each hook by its source, so adding or removing one recompiles."""
    m = var.module
    shared = tx.builder.by_structure(var.source) if var.source is not None else False
    if var.source is None or m._forward_hooks_always_called or \
            shared and (m._forward_pre_hooks_with_kwargs or m._forward_hooks_with_kwargs):
        unsupported("unsupported_call", f"{type(m).__name__} has forward hooks (on a module made in the function, "
                                        "called even on errors, or with kwargs on one of several layers)")
    from framejit.guards.kinds import DictKeysMatch
    from framejit.guards.sources import DictValueSource
    hooks = {}
    for store in _FORWARD_HOOK_STORES:
        d = getattr(m, store)
        source = AttrSource(var.source, store)
        if shared:  # one compiled entry for every layer: the hooks in order, whatever their handles' numbers
            tx.output.guards.append(LenMatch(source, type(d), len(d)))
        else:
            tx.output.guards.append(DictKeysMatch(source, tuple(d), type(d)))
        if store in _FORWARD_HOOK_STORES[:2]:
            hooks[store] = [(k, tx.builder.wrap(v, DictValueSource(source, i) if shared else ItemSource(source, k)))
                            for i, (k, v) in enumerate(d.items())]
    for store in ("_backward_hooks", "_backward_pre_hooks"):  # still none: registering one recompiles
        if hasattr(m, store):
            tx.output.guards.append(LenMatch(AttrSource(var.source, store), type(getattr(m, store)), 0))
    args, kwargs = TupleVar(list(args)), dict(kwargs)
    for key, hook in hooks["_forward_pre_hooks"]:
        if key in m._forward_pre_hooks_with_kwargs:
            got = call(tx, hook, [var, args, DictVar(dict(kwargs))], {})
            if not (isinstance(got, Const) and got.value is None):
                if not isinstance(got, TupleVar) or len(got.items) != 2 or not isinstance(got.items[1], DictVar):
                    unsupported("unsupported_call", "a forward pre-hook with kwargs returned other than (args, kwargs)")
                from jit.semantics.iteration import unpack
                args, kwargs = TupleVar(list(unpack(tx, got.items[0], None))), dict(got.items[1].items)
        else:
            got = call(tx, hook, [var, args], {})
            if not (isinstance(got, Const) and got.value is None):
                args = got if isinstance(got, TupleVar) else TupleVar([got])
    result = _inline_forward(tx, var, list(args.items), kwargs)
    for key, hook in hooks["_forward_hooks"]:
        if key in m._forward_hooks_with_kwargs:
            got = call(tx, hook, [var, args, DictVar(dict(kwargs)), result], {})
        else:
            got = call(tx, hook, [var, args, result], {})
        if not (isinstance(got, Const) and got.value is None):
            result = got
    return result


def _global_module_hooks() -> bool:
    from torch.nn.modules import module as m
    return bool(m._global_forward_hooks or m._global_forward_pre_hooks or m._global_backward_hooks)


def _fresh_module(cls: type, args, kwargs) -> torch.nn.Module:
    """A torch.nn module made inside the function (`loss_fct = CrossEntropyLoss()` in every transformers head),
    made here, once, from its constant arguments: one that holds no parameters or buffers is its arguments and
    flags, so the one object stands for eager's new one per call (the generated code never hands it out: a module
    without a source cannot be rebuilt there, so returning or storing it breaks the graph). Its construction draws
    no random numbers the program would see (the generator is restored)."""
    if not all(a.is_const() for a in args) or not all(v.is_const() for v in kwargs.values()):
        unsupported("unsupported_call", f"creating a {cls.__name__} from values not known at compile time")
    try:
        with torch.random.fork_rng(devices=[]):
            module = cls(*(a.const() for a in args), **{k: v.const() for k, v in kwargs.items()})
    except Exception as e:  # noqa: BLE001 - eager raises it at the call: there
        unsupported("unsupported_call", f"creating a {cls.__name__}: {type(e).__name__}: {e}")
    if any(True for _ in module.parameters()) or any(b is not None for b in module.buffers()):
        unsupported("unsupported_call", f"creating a {cls.__name__} inside the function (it holds parameters "
                                        "or buffers)")
    return module


def construct(tx, cls: type, args, kwargs) -> Var:
    from jit.semantics.builtins_impl import BUILTINS
    if cls in BUILTINS:
        return call_builtin(tx, cls, args, kwargs)
    if cls in context_managers.GRAD_MODE_CLASSES:
        return GradModeVar(context_managers.GRAD_MODE_CLASSES[cls], cls)
    if autocast.is_autocast_class(cls) or cls is torch.inference_mode:
        if tx.output.managers_opaque:
            unsupported("context_manager", f"a {cls.__name__} block with a graph break inside runs for real")
        if cls is torch.inference_mode:
            mode = (args[0] if args else kwargs.get("mode", Const(True)))
            if not mode.is_const() or not isinstance(mode.const(), bool):
                unsupported("context_manager", "torch.inference_mode used as a decorator")
            return context_managers.InferenceModeVar(mode.const())
        return autocast.make(cls, args, kwargs)
    if cls is torch.set_grad_enabled:
        return call_torch(tx, cls, args, kwargs)
    if cls is torch.autograd.profiler.record_function:
        return context_managers.profiler_range(args, kwargs)
    if cls is torch.Size:
        from jit.semantics.iteration import items_of
        parts = [v for a in args for v in (items_of(tx, a) if isinstance(a, (TupleVar, ListVar)) else [a])]
        if not all(v.is_const() for v in parts):  # a size read off a tensor's values: Python needs the number
            unsupported("tensor_to_python", "torch.Size of values computed in the graph")
        return Const(torch.Size(*(a.const() for a in args)))
    if _pure_constructor(cls) and all(a.is_const() for a in args) and all(v.is_const() for v in kwargs.values()):
        try:
            return Const(cls(*(a.const() for a in args), **{k: v.const() for k, v in kwargs.items()}))
        except (ValueError, TypeError, OverflowError, KeyError) as e:
            unsupported("exception", f"{cls.__name__}() raised {type(e).__name__}: {e}")
    if cls in (torch.device, torch.dtype) or cls is slice:
        return Const(cls(*(a.const() for a in args)))
    if cls in (torch.finfo, torch.iinfo) and all(a.is_const() for a in args) and not kwargs:
        try:  # torch.finfo(x.dtype).min: a constant of the dtype
            return Const(cls(*(a.const() for a in args)))
        except TypeError as e:
            unsupported("exception", f"{cls.__name__}() raised TypeError: {e}")
    if cls is functools.partial:
        return PartialVar(args[0], list(args[1:]), dict(kwargs))
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _namedtuple(tx, cls, args, kwargs)
    if issubclass(cls, BaseException):
        from jit.semantics import exceptions
        return exceptions.construct(tx, cls, list(args), dict(kwargs))
    if issubclass(cls, torch.nn.Module) and cls.__module__.startswith("torch.nn.modules."):
        return ModuleVar(_fresh_module(cls, args, kwargs))
    if issubclass(cls, torch.nn.Module) or cls.__module__.startswith("torch"):
        unsupported("unsupported_call", f"creating a {cls.__name__} inside the function")
    from jit.semantics.dict_objects import dict_backed_class
    dict_backed = dict_backed_class(cls)
    if type(cls) not in (type, __import__("abc").ABCMeta) or (cls.__new__ is not object.__new__ and not dict_backed):
        unsupported("unsupported_call", f"creating a {cls.__name__} (custom metaclass or __new__)")
    obj = NewObjectVar(cls)
    if dict_backed:
        obj.dict_var = DictVar({})
    init = inspect.getattr_static(cls, "__init__")
    if isinstance(init, types.FunctionType):
        inline_function(tx, UserFunctionVar(init, None), [obj] + list(args), kwargs)
    elif dict_backed and init in (dict.__init__, collections.OrderedDict.__init__):
        from jit.semantics.dict_objects import dict_slot
        dict_slot(tx, obj, "__init__", list(args), kwargs)
    elif init is not object.__init__:
        unsupported("unsupported_call", f"{cls.__name__}.__init__ is implemented in C")
    elif args or kwargs:
        unsupported("exception", f"TypeError: {cls.__name__}() takes no arguments")
    return obj


def _pure_constructor(cls: type) -> bool:
    """Calling cls on constants makes an immutable constant and runs no user code: NumPy scalar types
    (np.float64(2.0)), and an Enum class looking a member up by value (Color(2))."""
    np = sys.modules.get("numpy")
    if np is not None and issubclass(cls, (np.number, np.bool_)):
        return True
    if not isinstance(cls, enum.EnumMeta) or not cls.__members__:
        return False  # an Enum class without members called with names and values makes a new class
    missing_owner = next(c for c in cls.__mro__ if "_missing_" in vars(c))  # what a failed lookup runs
    return missing_owner.__module__ == "enum"


def _namedtuple(tx, cls, args, kwargs) -> Var:
    fields = cls._fields
    values = dict(zip(fields, args))
    values.update(kwargs)
    for f in fields:
        if f not in values:
            if f in cls._field_defaults:
                values[f] = tx.builder.wrap(cls._field_defaults[f], None) if not isinstance(
                    cls._field_defaults[f], torch.Tensor) else unsupported("unsupported_value", "tensor default")
            else:
                unsupported("exception", f"TypeError: {cls.__name__}() missing argument {f!r}")
    return NamedTupleVar(cls, [values[f] for f in fields])


def call_builtin(tx, fn, args, kwargs) -> Var:
    from jit.semantics.builtins_impl import BUILTINS
    impl = BUILTINS.get(fn)
    if impl is None:
        unsupported("unsupported_call", f"builtin {getattr(fn, '__qualname__', fn)}")
    tx.current_builtin = fn
    try:
        return impl(tx, list(args), kwargs)
    except (ValueError, TypeError, ArithmeticError, LookupError, OverflowError, AttributeError) as e:
        # The builtin raised on constants: the user's code raises here too; let it run for real.
        unsupported("exception", f"{getattr(fn, '__name__', fn)}() raised {type(e).__name__}: {e}")


def call_method_on(tx, obj: Var, name: str, args, kwargs) -> Var:
    if isinstance(obj, Const):
        from jit.semantics.iteration import constant_result, drained
        args = [drained(tx, a) for a in args]  # "-".join(map(str, xs)): an iterator's items, known here
        if not all(a.is_const() for a in args) or not all(v.is_const() for v in kwargs.values()):
            unsupported("unsupported_value", f"{type(obj.value).__name__}.{name}() with non-constant arguments")
        try:
            result = getattr(obj.value, name)(*(a.const() for a in args), **{k: v.const() for k, v in kwargs.items()})
        except Exception as e:  # noqa: BLE001 - "abc".index("z"): the user's code raises here too
            from jit.semantics.exceptions import raised_on_constants
            raised_on_constants(e)
        return constant_result(result)
    if isinstance(obj, ContextVarVar):
        from jit.semantics import context_vars
        return context_vars.method(tx, obj, name, list(args), kwargs)
    from jit.semantics.dict_objects import dict_slot, is_dict_object
    if is_dict_object(obj):
        return dict_slot(tx, obj, name, args, kwargs)
    if isinstance(obj, ObjectVar):
        unsupported("unsupported_call", f"{type(obj.obj).__name__}.{name} is implemented in C")
    if obj.source is not None and name not in ("index", "count", "keys", "values", "items", "get", "copy"):
        if not isinstance(obj, (ListVar, DictVar)) or isinstance(obj, NamedTupleVar):
            unsupported("side_effect", f"{name}() on a {type(obj).__name__[:-3].lower()} that exists outside the "
                                       "function")
        tx.output.changed_in_place(obj)
    from jit.semantics.containers_impl import container_method
    return container_method(tx, obj, name, args, kwargs)


# ---- inlining ---------------------------------------------------------------------------------------------------

def _bind(code, defaults: tuple, kwdefaults: dict, args: list, kwargs: dict, name: str) -> dict:
    nargs, nkw = code.co_argcount, code.co_kwonlyargcount
    names = code.co_varnames
    positional, kwonly = names[:nargs], names[nargs:nargs + nkw]
    has_varargs, has_varkw = bool(code.co_flags & inspect.CO_VARARGS), bool(code.co_flags & inspect.CO_VARKEYWORDS)
    bound: dict = {}
    for i, value in enumerate(args[:nargs]):
        bound[positional[i]] = value
    extra = list(args[nargs:])
    if extra and not has_varargs:
        unsupported("exception", f"TypeError: {name}() takes {nargs} positional arguments but {len(args)} were given")
    varkw = {}
    for key, value in kwargs.items():
        if key in bound:
            unsupported("exception", f"TypeError: {name}() got multiple values for argument {key!r}")
        if (key in positional and positional.index(key) >= code.co_posonlyargcount) or key in kwonly:
            bound[key] = value
        elif has_varkw:
            varkw[key] = value
        else:
            unsupported("exception", f"TypeError: {name}() got an unexpected keyword argument {key!r}")
    first_default = nargs - len(defaults)
    for i, pname in enumerate(positional):
        if pname not in bound:
            if i >= first_default:
                bound[pname] = defaults[i - first_default]
            else:
                unsupported("exception", f"TypeError: {name}() missing required argument {pname!r}")
    for kname in kwonly:
        if kname not in bound:
            if kname in kwdefaults:
                bound[kname] = kwdefaults[kname]
            else:
                unsupported("exception", f"TypeError: {name}() missing keyword-only argument {kname!r}")
    index = nargs + nkw
    if has_varargs:
        bound[names[index]] = TupleVar(extra)
        index += 1
    if has_varkw:
        bound[names[index]] = DictVar(varkw)
    return bound


def inline_function(tx, fn: Var, args: list, kwargs: dict) -> Var:
    from jit.translator import Translator
    from jit.variables.functions import external_cell
    if isinstance(fn, UserFunctionVar):
        real = fn.fn
        code, f_globals = real.__code__, real.__globals__
        # A function guarded by identity keeps its defaults; one guarded by its code (made per call of the
        # function around it, see Builder.wrap) may differ in them from call to call.
        defaults_builder = Builder(tx.output, guarded=fn.by_code)
        base = fn.source or ConstSource(real, real.__qualname__)
        defaults = tuple(defaults_builder.wrap(d, ItemSource(AttrSource(base, "__defaults__"), i))
                         for i, d in enumerate(real.__defaults__ or ()))
        kwdefaults = {k: defaults_builder.wrap(v, ItemSource(AttrSource(base, "__kwdefaults__"), k))
                      for k, v in (real.__kwdefaults__ or {}).items()}
        closure = []
        for i, (c, cname) in enumerate(zip(real.__closure__ or (), code.co_freevars)):
            cell_source = ItemSource(AttrSource(fn.source, "__closure__"), i) if fn.by_code else ConstSource(c, cname)
            closure.append(external_cell(tx.output, c, AttrSource(cell_source, "cell_contents"), cell_source))
        name = real.__qualname__
    else:
        code, f_globals = fn.code, fn.globals
        defaults, kwdefaults, closure, name = fn.defaults, fn.kwdefaults, list(fn.closure), fn.name
    if code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE):
        unsupported("generator", f"calling coroutine function {name}")
    bound = _bind(code, defaults, kwdefaults, list(args), dict(kwargs), name)
    cells: dict = {}
    for cellname in code.co_cellvars:
        cells[cellname] = CellVar(bound.pop(cellname, None))
    for freename, cell in zip(code.co_freevars, closure):
        cells[freename] = cell
    namespace = None if f_globals is tx.output.frame_globals else f_globals
    trusted = skip_rules.skip_reason(code) is not None
    builtins_ = f_globals.get("__builtins__", __builtins__)
    if isinstance(builtins_, types.ModuleType):
        builtins_ = builtins_.__dict__
    child = Translator(tx.output, code, f_globals, builtins_, bound, cells, globals_namespace=namespace,
                       trusted=trusted, parent=tx)
    if code.co_flags & inspect.CO_GENERATOR:
        # Calling a generator function runs none of its body: the generator's frame runs lazily, a yield at a
        # time, as its consumer asks (jit/semantics/iteration.py), so the body interleaves with the consumer as
        # in Python and a generator handed on (contextlib's `self.gen`) stays a generator.
        child.is_generator = True
        return GeneratorVar(fn, list(args), dict(kwargs), child)
    return child.run()


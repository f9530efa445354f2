"""The FX graph a frame's torch work is captured into, its inputs (each with a Source) and its guards.

Each torch call is run once on meta tensors to learn the result's shape, dtype, strides and requires_grad; the
real device is tracked beside it, because meta tensors have none."""
from __future__ import annotations

import operator
import re

import torch
import torch.fx

from guards.kinds import AliasMatch, Guard, IdMatch, TensorMatch
from guards.sources import ConstSource, ModuleDictSource, Source
from jit.break_reasons import unsupported
from jit.variables import Const, DictVar, ListVar, NamedTupleVar, NewObjectVar, TupleVar, Var
from jit.variables.tensor import TensorVar

_STRUCTSEQ_BASES = (tuple,)


class OutputGraph:
    def __init__(self, frame_globals: dict | None = None):
        self.frame_globals = frame_globals
        self.instructions = 0
        self.graph = torch.fx.Graph()
        self.tracer = torch.fx.proxy.GraphAppendingTracer(self.graph)
        self.guards: list[Guard] = []
        self.inputs: list[tuple[Source, torch.Tensor, TensorVar]] = []  # (how the replacement loads it, value, var)
        self._input_by_id: dict[int, TensorVar] = {}
        self._names: set[str] = set()

    # ---- inputs ----------------------------------------------------------------------------------------------

    def add_tensor_input(self, value: torch.Tensor, source: Source) -> TensorVar:
        existing = self._input_by_id.get(id(value))
        if existing is not None:
            self.guards.append(AliasMatch(source, existing.source))
            return existing
        load = source
        if isinstance(source, ModuleDictSource) and source.store in ("_parameters", "_buffers"):
            # Parameters and buffers: the same object as when compiled (one `is` per call). load_state_dict
            # copies into them in place, so new weights are seen without recompiling; the graph is handed the
            # object itself. A parameter replaced by another object fails the guard and recompiles.
            self.guards.append(IdMatch(source, value))
            load = ConstSource(value, source.name())
        else:
            self.guards.append(TensorMatch(source, type(value), value.dtype, value.device, tuple(value.shape),
                                           tuple(value.stride()), value.requires_grad))
        name = self._unique(re.sub(r"\W+", "_", source.name()).strip("_") or "input")
        proxy = self.tracer.create_proxy("placeholder", name, (), {})
        example = torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device="meta",
                                      requires_grad=value.requires_grad)
        proxy.node.meta["val"] = example
        var = TensorVar(proxy, example, value.device, source, type(value))
        self.inputs.append((load, value, var))
        self._input_by_id[id(value)] = var
        return var

    def _unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    # ---- operations ------------------------------------------------------------------------------------------

    def call(self, kind: str, target, args: tuple, kwargs: dict) -> Var:
        """Record `target(*args, **kwargs)` (kind 'call_function') or `args[0].target(*args[1:])` ('call_method')."""
        proxy_args, proxy_kwargs = to_proxy(args), to_proxy(kwargs)
        meta_args, meta_kwargs = to_meta(args), to_meta(kwargs)
        try:
            if kind == "call_method":
                result = getattr(meta_args[0], target)(*meta_args[1:], **meta_kwargs)
            else:
                result = target(*meta_args, **meta_kwargs)
        except NotImplementedError as e:
            unsupported("unsupported_call", f"{_name(target)} has no shape rule on meta tensors ({_first_line(e)})")
        except (RuntimeError, TypeError, ValueError, IndexError) as e:
            unsupported("operator_error", f"{_name(target)}: {_first_line(e)}")
        device = result_device(kind, target, args, kwargs)
        proxy = self.tracer.create_proxy(kind, target, proxy_args, proxy_kwargs)
        if not is_side_effecting(proxy.node):
            for a in args:
                if isinstance(a, TensorVar) and a.example is result:
                    # The op returned its input object (dropout in eval, .contiguous() of a contiguous tensor,
                    # .float() of a float tensor): eager hands back the same tensor, so do we, with no node.
                    self.graph.erase_node(proxy.node)
                    return a
        return self.wrap_result(proxy, result, device)

    def call_factory(self, fn, args, kwargs) -> Var:
        """A torch call with no tensor inputs (torch.zeros, torch.arange, torch.randn...): its example is made on
        the meta device, so tracing allocates nothing and consumes no random numbers."""
        proxy_args, proxy_kwargs = to_proxy(tuple(args)), to_proxy(kwargs)
        meta_args, meta_kwargs = to_meta(tuple(args)), to_meta(kwargs)
        try:
            result = fn(*meta_args, **{**meta_kwargs, "device": "meta"})
        except TypeError as e:
            unsupported("unsupported_call", f"{_name(fn)} without tensor arguments ({_first_line(e)})")
        except (RuntimeError, ValueError, NotImplementedError) as e:
            unsupported("operator_error", f"{_name(fn)}: {_first_line(e)}")
        device = result_device("call_function", fn, tuple(args), kwargs)
        proxy = self.tracer.create_proxy("call_function", fn, proxy_args, proxy_kwargs)
        return self.wrap_result(proxy, result, device)

    def wrap_result(self, proxy, result, device) -> Var:
        if isinstance(result, torch.Tensor):
            proxy.node.meta["val"] = result
            return TensorVar(proxy, result, device, tensor_type=torch.Tensor)
        if isinstance(result, (tuple, list)) and any(isinstance(r, torch.Tensor) for r in result):
            proxy.node.meta["val"] = result
            items = [self.wrap_result(proxy[i], r, device) if isinstance(r, torch.Tensor) else Const(r)
                     for i, r in enumerate(result)]
            if hasattr(type(result), "n_fields"):  # torch.return_types (structseq)
                return NamedTupleVar(type(result), items)
            return TupleVar(items) if isinstance(result, tuple) else ListVar(items)
        if _is_python_data(result):
            if not is_side_effecting(proxy.node):  # setitem, grad-mode switches: kept, their value is None
                proxy.node.graph.erase_node(proxy.node)
            return Const(result)
        unsupported("unsupported_value", f"operation returned {type(result).__name__}")

    # ---- the finished graph ----------------------------------------------------------------------------------

    def graph_module(self, outputs: list[TensorVar]) -> torch.fx.GraphModule:
        self.graph.output(tuple(o.proxy.node for o in outputs))
        remove_dead_code(self.graph)
        gm = torch.fx.GraphModule(torch.nn.Module(), self.graph, class_name="CapturedGraph")
        return gm


def _is_python_data(value) -> bool:
    if value is None or isinstance(value, (int, float, bool, complex, str, torch.Size, torch.dtype, torch.device)):
        return True
    return isinstance(value, (tuple, list)) and all(_is_python_data(v) for v in value)


def _name(target) -> str:
    return target if isinstance(target, str) else getattr(target, "__qualname__", getattr(target, "__name__", str(target)))


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def to_proxy(value):
    return _map(value, lambda t: t.proxy)


def to_meta(value):
    return _map(value, lambda t: t.example)


def _map(value, tensor_fn):
    if isinstance(value, TensorVar):
        return tensor_fn(value)
    if isinstance(value, Var):
        if isinstance(value, NamedTupleVar):
            return tuple(_map(v, tensor_fn) for v in value.items)
        if isinstance(value, TupleVar):
            return tuple(_map(v, tensor_fn) for v in value.items)
        if isinstance(value, ListVar):
            return [_map(v, tensor_fn) for v in value.items]
        if isinstance(value, DictVar):
            return {k: _map(v, tensor_fn) for k, v in value.items.items()}
        if value.is_const():
            return _map(value.const(), tensor_fn)
        unsupported("unsupported_value", f"cannot pass {value.describe()} to a torch operation")
    if isinstance(value, tuple):
        return tuple(_map(v, tensor_fn) for v in value)
    if isinstance(value, list):
        return [_map(v, tensor_fn) for v in value]
    if isinstance(value, dict):
        return {k: _map(v, tensor_fn) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_map(value.start, tensor_fn), _map(value.stop, tensor_fn), _map(value.step, tensor_fn))
    return value


def tensors_in(value, out: list | None = None) -> list:
    """Every TensorVar inside a Var (containers, new objects) or a plain tuple/list/dict of them, in order."""
    out = [] if out is None else out
    if isinstance(value, TensorVar):
        out.append(value)
    elif isinstance(value, (TupleVar, ListVar)):
        for v in value.items:
            tensors_in(v, out)
    elif isinstance(value, DictVar):
        for v in value.items.values():
            tensors_in(v, out)
    elif isinstance(value, NewObjectVar):
        for v in value.attrs.values():
            tensors_in(v, out)
    elif isinstance(value, (tuple, list)):
        for v in value:
            tensors_in(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            tensors_in(v, out)
    return out


def _as_device(value) -> torch.device | None:
    if isinstance(value, Var):
        if isinstance(value, TensorVar):
            return value.device
        if not value.is_const():
            return None
        value = value.const()
    if isinstance(value, torch.device):
        return value
    if isinstance(value, str):
        try:
            return torch.device(value)
        except RuntimeError:
            return None
    if isinstance(value, int) and not isinstance(value, bool):
        return torch.device("cuda", value)
    return None


def result_device(kind: str, target, args: tuple, kwargs: dict) -> torch.device:
    """The real device of an operation's result: explicit device arguments first, then torch's rule that CPU
    scalars (0-dim tensors) follow the other operands."""
    if "device" in kwargs and (d := _as_device(kwargs["device"])) is not None:
        return d
    if kind == "call_method":
        if target == "cuda":
            return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cuda")
        if target == "cpu":
            return torch.device("cpu")
        if target == "to":
            for a in args[1:]:
                if (d := _as_device(a)) is not None and not isinstance(a, Const) or isinstance(a, Const) and \
                        isinstance(a.const(), (str, torch.device)) and _as_device(a) is not None:
                    return _as_device(a)
    tensors = tensors_in(list(args) + list(kwargs.values()))
    if not tensors:
        return torch.get_default_device() if hasattr(torch, "get_default_device") else torch.device("cpu")
    for t in tensors:
        if t.device.type != "cpu":
            return t.device
    return tensors[0].device


_SIDE_EFFECT_TARGETS = {torch._C._set_grad_enabled, operator.setitem, operator.iadd, operator.isub, operator.imul,
                        operator.itruediv, operator.ifloordiv, operator.imod, operator.ipow, operator.imatmul,
                        operator.iand, operator.ior, operator.ixor, operator.ilshift, operator.irshift}


def is_side_effecting(node: torch.fx.Node) -> bool:
    if node.op in ("placeholder", "output"):
        return True
    if node.target in _SIDE_EFFECT_TARGETS:
        return True
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if name.endswith("_") and not name.endswith("__"):
        return True
    return "out" in node.kwargs


def remove_dead_code(graph: torch.fx.Graph) -> None:
    """Drop nodes nothing uses, keeping in-place operations and grad-mode switches."""
    for node in reversed(list(graph.nodes)):
        if not node.users and not is_side_effecting(node):
            graph.erase_node(node)


def has_work(graph: torch.fx.Graph) -> bool:
    return any(n.op not in ("placeholder", "output") for n in graph.nodes)

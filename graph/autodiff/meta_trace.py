"""The joint trace's recorder: every aten op a function runs on meta tensors, its forward and torch's autograd
backward alike, recorded into an FX graph — what `make_fx(tracing_mode="fake")` gives, without importing
torch._dynamo. In torch 2.13 make_fx imports it three ways (`_MakefxTracer._trace_inner` unconditionally, its
fake-input conversion for a `ConstantSource`, `ProxyTorchDispatchMode.__init__` through torch._inductor.config),
and FakeTensorMode's constructor imports torch._dynamo.config: ~1.4 s of CPU in a process that never uses Dynamo.

Meta tensors know no device, so the inputs must all be on one device (`device_of`; the caller traces anything
else with make_fx), and every `device="meta"` a recorded call carries is that device once the graph is done
(`place_on`). node.meta["val"] holds meta tensors, the optimizer's own convention (graph/shape_prop.py).
Tensors from outside the trace (a forward graph's constants) become get_attr constants of the traced module, as
make_fx makes them; an op in `decompositions` runs its decomposition (unless that returns NotImplemented), whose
ops are recorded one by one; an op returning several tensors is one node and a getitem node per tensor."""
from __future__ import annotations

import operator
from typing import Callable

import torch
import torch.fx as fx
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from framejit.graph import dynamo_free_refs, meta_memo
from framejit.graph.dce import drop_unused

_META = torch.device("meta")


def device_of(tensors: list) -> torch.device | None:
    """The one device all `tensors` are on, or None."""
    devices = {t.device for t in tensors if isinstance(t, torch.Tensor)}
    return devices.pop() if len(devices) == 1 else None


def _meta_copy(t: torch.Tensor, requires_grad: bool = False) -> torch.Tensor:
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta", requires_grad=requires_grad)


class OtherDevice(Exception):
    """The traced function makes a tensor on another device than its inputs' (make_fx's fake tensors can trace
    it, meta tensors cannot tell the two apart)."""


def _same(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index or 0) == (b.index or 0)


class _Recorder(TorchDispatchMode):
    def __init__(self, graph: fx.Graph, root: torch.nn.Module, decompositions: dict, device: torch.device):
        super().__init__()
        self.graph, self.root, self.decompositions, self.device = graph, root, decompositions, device
        self.nodes: dict = {}      # id(tensor) -> (tensor, node): the tensors are kept, so ids are not reused
        self.constants: dict = {}  # id(outside tensor) -> (tensor, its meta copy)

    def track(self, value, node: fx.Node) -> None:
        node.meta["val"] = value
        if isinstance(value, torch.Tensor):
            self.nodes[id(value)] = (value, node)  # an in-place op's result is its argument: later uses read this
        elif isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                if isinstance(item, torch.Tensor):
                    self.track(item, self.graph.call_function(operator.getitem, (node, i)))

    def _known(self, t: torch.Tensor):
        """(meta tensor to compute with, node) of a tensor; a tensor from outside becomes a constant."""
        found = self.nodes.get(id(t))
        if found is not None:
            return found
        if t.device.type == "meta":
            raise RuntimeError("a meta tensor from outside the traced function")
        kept = self.constants.get(id(t))
        if kept is None:
            name = f"_tensor_constant{len(self.constants)}"
            setattr(self.root, name, t)
            node = self.graph.get_attr(name)
            kept = self.constants[id(t)] = (t, _meta_copy(t))
            node.meta["val"] = kept[1]
            self.nodes[id(kept[1])] = (kept[1], node)
        return self.nodes[id(kept[1])]

    def _on_meta(self, func, args, kwargs: dict) -> dict:
        """The call's keyword arguments with a tensor it makes on the inputs' device made on meta instead (a
        factory: `arange(n, device=cpu)`, `zeros(3)` on the default device; a copy `_to_copy(x, device=cpu)`)."""
        device = kwargs.get("device")
        if device is None:
            if any(isinstance(t, torch.Tensor) for t in pytree.tree_leaves(args)) or \
                    not any(a.name == "device" for a in func._schema.arguments):
                return kwargs  # made where its tensor arguments are (on meta), or makes no tensor itself
            device = torch.get_default_device()
        device = torch.device(device)
        if device.type == "meta":
            return kwargs
        if not _same(device, self.device):
            raise OtherDevice(f"{func} makes a tensor on {device}, the inputs are on {self.device}")
        return {**kwargs, "device": _META}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        decomposition = self.decompositions.get(func)
        if decomposition is not None:
            with self:  # the decomposition's own ops are recorded
                out = decomposition(*args, **kwargs)
            if out is not NotImplemented:
                return out
        meta_args, meta_kwargs = pytree.tree_map_only(torch.Tensor, lambda t: self._known(t)[0], (args, kwargs))
        node_args, node_kwargs = pytree.tree_map_only(torch.Tensor, lambda t: self._known(t)[1], (args, kwargs))
        out = func(*meta_args, **self._on_meta(func, meta_args, meta_kwargs))
        self.track(out, self.graph.call_function(func, tuple(node_args), dict(node_kwargs)))
        return out


dynamo_free_refs.free(_Recorder.__dict__["__torch_dispatch__"])  # its wrapper would import torch._dynamo


def trace_on_meta(fn: Callable, primals: list, tangents: list, decompositions: dict,
                  device: torch.device) -> fx.GraphModule:
    """The graph of `fn(primals, tangents)` (lists of tensors on `device`; a primal requiring grad is a leaf that
    does), returning a list of tensors: placeholders the primals then the tangents, output that list. Raises
    OtherDevice where `fn` makes a tensor on another device."""
    dynamo_free_refs.seed()  # torch's decompositions run here, whatever the memo answers
    graph, root = fx.Graph(), torch.nn.Module()
    recorder = _Recorder(graph, root, decompositions, device)
    metas = []
    for i, x in enumerate(list(primals) + list(tangents)):
        meta = _meta_copy(x, requires_grad=i < len(primals) and x.requires_grad)
        recorder.track(meta, graph.placeholder(f"primals_{i + 1}" if i < len(primals) else
                                               f"tangents_{i - len(primals) + 1}"))
        metas.append(meta)
    with meta_memo.remembering(), recorder:  # the kernels the recorder runs answered from memory where they can
        outs = fn(metas[:len(primals)], metas[len(primals):])
    graph.output([recorder._known(o)[1] if isinstance(o, torch.Tensor) else o for o in outs])
    drop_unused(graph)  # what autograd computed and nothing reads (an op that may raise on its values stays)
    return fx.GraphModule(root, graph)


def place_on(gm: fx.GraphModule, device: torch.device) -> None:
    """Every `device="meta"` argument of a recorded call made `device` (the inputs' device)."""
    def real(d):
        return device if d == _META else d

    for node in gm.graph.nodes:
        if node.op == "call_function":
            node.args, node.kwargs = pytree.tree_map_only(torch.device, real, (node.args, node.kwargs))
    gm.recompile()

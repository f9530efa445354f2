"""The joint graph: a captured forward graph and its backward, traced as one FX graph from torch's own autograd.

The forward is first optimized as for inference (graph/passes.py: layer_norm, softmax, gelu... become core ops),
then a function that runs it and calls `torch.autograd.grad(outputs, inputs, tangents)` is traced op by op on
meta tensors (meta_trace.py: make_fx's trace without its torch._dynamo import; make_fx on fake tensors where the
inputs span devices), so nothing is computed and no random number is drawn. Every backward formula is torch's own, applied
to the ops the forward really computes, so no derivative rule of ours can be wrong or missing. The few backward
ops that are not core ops (tanh_backward, _log_softmax_backward_data, slice_backward...) are decomposed by torch's
decomposition table during the trace (DECOMPOSED), the spellings torch leaves (t, detach, mul.Scalar) are mapped
onto core ops after it (SPELLINGS), and in-place ops on the trace's own fresh tensors (dropout's `bernoulli_`)
become their out-of-place twins, so the partitioner sees values, not memory.

Graphs autograd cannot be traced for here are reported by `unsupported_reason`: they run as captured, in torch.
"""
from __future__ import annotations

import logging
import operator
from dataclasses import dataclass

import torch
import torch.fx as fx
from torch._decomp import get_decompositions

from framejit.graph.autodiff.view_writes import functionalize_view_write, is_view, twin_call
from framejit.graph.autodiff.meta_trace import OtherDevice, device_of, place_on, trace_on_meta
from framejit.graph.dce import drop_unused
from framejit.graph.effects import has_mutation, is_random
from framejit.graph.functionalize import AUGMENTED, METADATA_WRITES, dense_order, functionalize_intermediates, storage_id
from framejit.graph.size_variants import copy_module

log = logging.getLogger("jit.graph")

aten = torch.ops.aten


class NotDifferentiable(Exception):
    """The joint graph cannot be built; the message says why (the region then runs in torch's autograd)."""


# backward (and a few forward) aten ops decomposed while tracing, into ops graph/core_ops.py names
DECOMPOSED = get_decompositions([
    aten._log_softmax, aten._log_softmax_backward_data, aten._softmax, aten._softmax_backward_data,
    aten.nll_loss_forward, aten.nll_loss_backward, aten.tanh_backward, aten.sigmoid_backward,
    aten.threshold_backward, aten.gelu_backward, aten.silu_backward, aten.native_layer_norm,
    aten.native_layer_norm_backward, aten.native_dropout_backward, aten.slice_backward, aten.select_backward,
    aten.rsub, aten.masked_fill, aten.mse_loss_backward, aten.zeros_like, aten.ones_like, aten.new_zeros,
    aten.transpose.int, aten.t, aten.mean.dim, aten.clamp, aten.squeeze.dim, aten._safe_softmax, aten.new_ones,
    aten.ones, aten.tril, aten.triu,
])


def _slice_backward(grad, input_sizes, dim, start, end, step):
    """The gradient of a slice as cat(zeros, grad, zeros): core ops (torch's own rule makes a slice_scatter)."""
    if step != 1:
        return NotImplemented
    size = input_sizes[dim]
    start = min(max(start + size if start < 0 else start, 0), size)
    end = min(max(end + size if end < 0 else end, start), size)
    parts = []
    for length in (start, None, size - end):
        if length is None:
            parts.append(grad)
        elif length:
            shape = list(input_sizes)
            shape[dim] = length
            parts.append(torch.full(shape, 0, dtype=grad.dtype, device=grad.device))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim)


DECOMPOSED[aten.slice_backward.default] = _slice_backward


def _softmax_int(x, dim, dtype=None):
    # what _safe_softmax's decomposition calls (CPU attention's math path): the table's _softmax, after the cast
    return aten._softmax.default(x if dtype is None else x.to(dtype), dim, False)


DECOMPOSED[aten.softmax.int] = _softmax_int


def _identity(node: fx.Node) -> fx.Node:
    return node.args[0]


def _permute_t(node: fx.Node):
    ndim = node.args[0].meta["val"].dim()
    return aten.permute.default, (node.args[0], list(range(ndim))[::-1]), {}


def _full_like(node: fx.Node):
    val = node.meta["val"]
    return aten.full.default, (list(val.shape), node.args[1]), {"dtype": val.dtype, "device": val.device}


def _scalar_tensor(node: fx.Node):
    val = node.meta["val"]
    return aten.full.default, ([], node.args[0]), {"dtype": val.dtype, "device": val.device}


def _sum_all(node: fx.Node):
    return aten.sum.dim_IntList, (node.args[0], list(range(node.args[0].meta["val"].dim()))), node.kwargs


def _cast(node: fx.Node):
    """_to_copy(x, dtype=d, device=x's device) is the core cast `_to_copy(x, dtype=d)` (a copy to another device
    or layout stays as it is)."""
    x, kwargs = node.args[0], dict(node.kwargs)
    if kwargs.pop("device", x.meta["val"].device) != x.meta["val"].device or kwargs.pop("layout", None) not in (
            None, torch.strided) or kwargs.pop("pin_memory", False) or kwargs.pop("non_blocking", False) or \
            set(kwargs) - {"dtype"}:
        return aten._to_copy.default, node.args, node.kwargs
    return aten._to_copy.default, (x,), {"dtype": kwargs.get("dtype", x.meta["val"].dtype)}


def _to_dtype(node: fx.Node):
    """x.to(dtype) as torch's decompositions spell it (gelu's and tanh's backward): x itself where the dtype is
    already x's, else the core cast. A copy or memory format asked for stays as it is."""
    x, (dtype, non_blocking, copy, memory_format) = node.args[0], (list(node.args[1:]) + [False, False, None])[:4]
    dtype, copy = node.kwargs.get("dtype", dtype), node.kwargs.get("copy", copy)
    memory_format = node.kwargs.get("memory_format", memory_format)
    if copy or memory_format not in (None, torch.preserve_format) or set(node.kwargs) - {"dtype", "non_blocking",
                                                                                         "copy", "memory_format"}:
        return node.target, node.args, node.kwargs
    return x if dtype == x.meta["val"].dtype else (aten._to_copy.default, (x,), {"dtype": dtype})


def _conj_physical(node: fx.Node):
    """conj_physical of a real tensor (tanh's backward decomposition) is a copy."""
    x = node.args[0]
    if x.meta["val"].is_complex():
        return node.target, node.args, node.kwargs
    return aten._to_copy.default, (x,), {"dtype": x.meta["val"].dtype}


def _copy(node: fx.Node):
    """copy(dst, src), the out-of-place twin of `dst.copy_(src)` (view_writes.py): src's values in dst's dtype,
    broadcast to dst's shape. A copy across devices stays as it is."""
    dst, src = node.args[0], node.args[1]
    d, s = dst.meta["val"], src.meta.get("val") if isinstance(src, fx.Node) else None
    if not isinstance(s, torch.Tensor) or s.device != d.device:
        return node.target, node.args, node.kwargs
    if tuple(s.shape) == tuple(d.shape):  # a new value, never src's node: eager's two objects stay two
        return aten._to_copy.default, (src,), {"dtype": d.dtype}
    value = src
    if s.dtype != d.dtype:
        with node.graph.inserting_before(node):
            value = node.graph.call_function(aten._to_copy.default, (src,), {"dtype": d.dtype})
        value.meta = {"val": torch.empty_strided(s.shape, s.stride(), dtype=d.dtype, device=s.device)}
    return aten.expand.default, (value, list(d.shape)), {}


def _index_put_mask(node: fx.Node):
    """index_put(x, [mask], v) with one boolean mask over x's leading dims and one value: where(mask, v, x) (with
    accumulate, x + where(mask, v, 0)), `x[x > 0] = 1` made functional. Other forms stay as they are."""
    x, indices, values = node.args[:3]
    accumulate = node.args[3] if len(node.args) > 3 else node.kwargs.get("accumulate", False)
    if len(indices) != 1 or not isinstance(indices[0], fx.Node) or not isinstance(values, fx.Node):
        return node.target, node.args, node.kwargs
    mask, xv, v = indices[0].meta.get("val"), x.meta["val"], values.meta.get("val")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or not isinstance(v, torch.Tensor) or \
            v.numel() != 1 or v.dtype != xv.dtype or tuple(mask.shape) != tuple(xv.shape[:mask.dim()]):
        return node.target, node.args, node.kwargs
    graph, m = node.graph, indices[0]
    if mask.dim() < xv.dim():  # the mask over the leading dims: broadcast along the others
        shape = list(mask.shape) + [1] * (xv.dim() - mask.dim())
        with graph.inserting_before(node):
            m = graph.call_function(aten.view.default, (m, shape))
        m.meta = {"val": mask.view(shape)}
    v0 = values
    if v.dim():
        with graph.inserting_before(node):
            v0 = graph.call_function(aten.view.default, (values, []))
        v0.meta = {"val": v.view([])}
    if not accumulate:
        return aten.where.self, (m, v0, x), {}
    with graph.inserting_before(node):
        zero = graph.call_function(aten.full.default, ([], 0), {"dtype": xv.dtype, "device": xv.device})
        zero.meta = {"val": torch.empty((), dtype=xv.dtype, device=xv.device)}
        picked = graph.call_function(aten.where.self, (m, v0, zero))
        picked.meta = {"val": torch.empty(xv.shape, dtype=xv.dtype, device=xv.device)}
    return aten.add.Tensor, (x, picked), {}


def _tensor_overload(target):
    return lambda node: (target, node.args, node.kwargs)


# spellings torch's trace leaves that are core ops under another name: op -> node -> replacement node, or
# (target, args, kwargs) of the core call
SPELLINGS = {
    aten.detach.default: _identity, aten.alias.default: _identity, aten.lift_fresh_copy.default: _identity,
    aten.t.default: _permute_t, aten._unsafe_view.default: _tensor_overload(aten.view.default),
    aten.mul.Scalar: _tensor_overload(aten.mul.Tensor), aten.add.Scalar: _tensor_overload(aten.add.Tensor),
    aten.div.Scalar: _tensor_overload(aten.div.Tensor), aten.sub.Scalar: _tensor_overload(aten.sub.Tensor),
    aten._to_copy.default: _cast, aten.to.dtype: _to_dtype, aten.conj_physical.default: _conj_physical,
    aten.full_like.default: _full_like, aten.scalar_tensor.default: _scalar_tensor, aten.sum.default: _sum_all,
    aten.copy.default: _copy, aten.index_put.default: _index_put_mask,
}


@dataclass
class Joint:
    """Placeholders: one primal per forward input, then one tangent per forward output. Output: the forward's
    outputs, then the gradient of each input in `input_grad` order that autograd computes (`grad_of`)."""
    gm: fx.GraphModule
    num_inputs: int
    num_outputs: int
    output_grad: tuple   # per output: differentiable (its tangent may be read)
    grad_of: tuple       # input index of each gradient output


def unsupported_reason(gm: fx.GraphModule, example_inputs: list) -> str | None:
    """Why autograd over `gm` must stay torch's, or None. Such a region runs as captured."""
    if not all(isinstance(x, torch.Tensor) for x in example_inputs):
        return "non-tensor graph inputs"
    if any(n.target is torch._C._set_grad_enabled for n in gm.graph.nodes):
        return "grad mode changes inside the graph"
    if any(n.target in (torch.autograd.grad_mode._enter_inference_mode, torch.autograd.grad_mode._exit_inference_mode)
           for n in gm.graph.nodes):
        return "inference mode changes inside the graph"
    if any(_integer_softmax(n) for n in gm.graph.nodes):  # fuzz seed 478532
        return "softmax of an integer tensor (torch's decomposition fills -inf into it; eager's kernel raises, " \
            "or returns an empty tensor)"
    if has_mutation(gm.graph):
        probe = copy_module(gm)
        functionalize_intermediates(probe)
        if has_mutation(probe.graph) and not _writes_fresh_tensors_only(probe, example_inputs):
            return "the graph mutates a tensor in place (an input, or a view)"
    return None


def _attends(gm: fx.GraphModule) -> bool:
    """The graph calls scaled_dot_product_attention (torch's function or its aten op)."""
    return any(n.op == "call_function" and getattr(n.target, "__name__", "").split(".")[0] ==
               "scaled_dot_product_attention" for n in gm.graph.nodes)


def _integer_softmax(node: fx.Node) -> bool:
    if node.op not in ("call_function", "call_method") or not node.args or not isinstance(node.args[0], fx.Node):
        return False
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if name.split(".")[0].lstrip("_") not in ("softmax", "log_softmax"):
        return False
    x, dtype = node.args[0].meta.get("val"), node.kwargs.get("dtype")
    return isinstance(x, torch.Tensor) and not (dtype or x.dtype).is_floating_point


def _writes_fresh_tensors_only(gm: fx.GraphModule, example_inputs: list) -> bool:
    """Every remaining effect is a tensor write (an in-place method, `x[i] = v`, `x += y`) into memory the graph
    made: no input's or constant's storage. The joint trace then makes the writes through views functional
    (view_writes.py) or declines."""
    from framejit.graph.effects import is_impure
    outside = set()
    for n in gm.graph.nodes:
        val = n.meta.get("val")
        if n.op in ("placeholder", "get_attr") and isinstance(val, torch.Tensor):
            outside.add(storage_id(val))
    for n in gm.graph.nodes:
        if n.op not in ("call_function", "call_method") or not is_impure(n):
            continue
        in_place = n.op == "call_method" and isinstance(n.target, str) and n.target.endswith("_") and \
            not n.target.endswith("__") and "out" not in n.kwargs
        if n.op == "call_method" and n.target in METADATA_WRITES:
            return False  # sizes or strides, not values (`t.unsqueeze_(0)` of a view: fuzz seed 503968)
        if not (in_place or n.op == "call_function" and (n.target in AUGMENTED or n.target is operator.setitem)):
            return False
        written = n.args[0].meta.get("val") if n.args and isinstance(n.args[0], fx.Node) else None
        if not isinstance(written, torch.Tensor) or written.is_inference() or storage_id(written) in outside:
            return False
    return True


def _output_reason(gm: fx.GraphModule) -> str | None:
    from framejit.graph.normalize import EAGER_OUTPUTS
    for i, out in enumerate(gm.meta.get(EAGER_OUTPUTS, ())):
        if out.strides is None:
            return f"output {i} is not a tensor"
        if out.alias is not None:
            return f"output {i} is a view of an input"  # autograd's view tracking stays torch's
        if out.shares:
            return f"output {i} shares memory with another output"
    return None


def _autocast_off() -> list:
    """Autocast switched off for the trace (the graph's casts are explicit nodes); the devices to switch on again."""
    on = [d for d in ("cpu", "cuda") if torch.is_autocast_enabled(d)]
    for d in on:
        torch.set_autocast_enabled(d, False)
    return on


def trace_joint(gm: fx.GraphModule, example_inputs: list) -> Joint:
    """The joint graph of `gm` for inputs like `example_inputs` (their requires_grad says which gradients)."""
    from framejit.graph.passes import optimize
    reason = unsupported_reason(gm, example_inputs)
    if reason:
        raise NotDifferentiable(reason)
    forward = copy_module(gm)
    functionalize_intermediates(forward)
    detached = [x.detach() for x in example_inputs]
    optimize(forward, detached, for_autodiff=True)
    reason = _output_reason(forward)
    if reason:
        raise NotDifferentiable(reason)
    _index_lists_as_constants(forward, device_of(list(example_inputs)))
    wants = [x.requires_grad and (x.is_floating_point() or x.is_complex()) for x in example_inputs]
    outputs = next(n for n in forward.graph.nodes if n.op == "output").args[0]
    outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    if not all(isinstance(o, fx.Node) and isinstance(o.meta.get("val"), torch.Tensor) for o in outputs):
        raise NotDifferentiable("an output is not a tensor computed by the graph")
    # tangents live where their outputs do (contiguous: the runtime hands gradients over contiguous)
    tangents = [torch.zeros(o.meta["val"].shape, dtype=o.meta["val"].dtype, device=_device_of(o, example_inputs))
                for o in outputs]
    record: dict = {}

    def joint(primals: list, tangents: list):
        with torch.enable_grad():
            outs = fx.Interpreter(forward).run(*primals)
            outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
            diff = [i for i, o in enumerate(outs) if o.requires_grad]
            inputs = [i for i, w in enumerate(wants) if w]
            grads = torch.autograd.grad([outs[i] for i in diff], [primals[i] for i in inputs],
                                        [tangents[i] for i in diff], allow_unused=True) if diff and inputs else ()
        record["output_grad"] = tuple(i in diff for i in range(len(outs)))
        record["grad_of"] = tuple(i for i, g in zip(inputs, grads) if g is not None)
        return outs + [g for g in grads if g is not None]

    on = _autocast_off()
    device = device_of(list(example_inputs) + tangents)
    try:
        traced = None
        if device is not None and device.type == "cuda" and _attends(forward):
            # on meta tensors torch picks SDPA's math form (bmm, softmax: the attention matrices saved for the
            # backward); fake tensors of the real device keep the fused kernels (flash / cuDNN) and their backward
            device = None
        if device is not None:  # recorded on meta tensors: no torch._dynamo import (meta_trace.py)
            try:
                traced = trace_on_meta(joint, list(example_inputs), tangents, DECOMPOSED, device)
            except OtherDevice as e:  # fake tensors cost seconds more (their first use imports torch._dynamo)
                log.info("joint trace with fake tensors: %s", e)
                device = None
        if traced is None:  # several devices (a CPU scalar beside CUDA tensors): fake tensors know each one's
            from torch.fx.experimental.proxy_tensor import make_fx
            traced = make_fx(joint, decomposition_table=DECOMPOSED, tracing_mode="fake",
                             _allow_non_fake_inputs=True)(list(example_inputs), tangents)
    except Exception as e:  # an op fake tensors or autograd cannot trace: torch's autograd keeps the region
        raise NotDifferentiable(f"the joint trace failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}") \
            from e
    finally:
        for d in on:
            torch.set_autocast_enabled(d, True)
    _functionalize(traced)
    _respell(traced)
    if device is not None:
        place_on(traced, device)
    drop_unused(traced.graph)
    traced.graph.lint()
    traced.recompile()
    return Joint(traced, len(example_inputs), len(outputs), record["output_grad"], record["grad_of"])


def trace_functional(gm: fx.GraphModule, example_inputs: list) -> fx.GraphModule | None:
    """An inference graph whose in-place writes all land in memory it made itself (BART's shift_tokens_right: `y =
    x.new_zeros(s); y[:, 1:] = x[:, :-1]; y[:, 0] = start`), traced as trace_joint traces a forward (core aten
    ops, those writes made functional by view_writes.py) with no gradient asked for; None where the graph has no
    such writes or they do not all become functional (the backend then runs it in torch, as captured)."""
    if not has_mutation(gm.graph) or not all(isinstance(x, torch.Tensor) for x in example_inputs):
        return None
    probe = copy_module(gm)
    functionalize_intermediates(probe)
    if not has_mutation(probe.graph) or not _writes_fresh_tensors_only(probe, example_inputs):
        return None
    from framejit.graph.normalize import EAGER_OUTPUTS, eager_outputs
    if EAGER_OUTPUTS not in gm.meta:  # what eager returns, from the graph as captured: the traced one's output
        gm.meta[EAGER_OUTPUTS] = eager_outputs(gm)  # may be a view eager's is not (`t.copy_(x0)`: an expand of x0)
    try:
        traced = trace_joint(gm, [x.detach() for x in example_inputs]).gm
    except NotDifferentiable:
        return None
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if has_mutation(traced.graph) or any(p.users for p in placeholders[len(example_inputs):]):
        return None
    for p in placeholders[len(example_inputs):]:  # the tangents: no gradient is taken
        traced.graph.erase_node(p)
    traced.meta.update(gm.meta)
    traced.graph.lint()
    traced.recompile()
    return traced


def _index_lists_as_constants(gm: fx.GraphModule, device) -> None:
    """`x[..., [-2], :]`: a list of ints in an index becomes a tensor constant of the graph. Indexing makes the
    list a tensor inside torch, where the trace cannot see it (on meta tensors, its values are lost)."""
    def constant(item):
        if isinstance(item, list) and item and all(type(i) in (int, bool) for i in item):
            name = f"_index_list{len(constants)}"
            dtype = torch.bool if all(type(i) is bool for i in item) else torch.long
            gm.register_buffer(name, torch.tensor(item, dtype=dtype, device=device or "cpu"))
            constants.append(name)
            with gm.graph.inserting_before(node):
                made = gm.graph.get_attr(name)
            made.meta["val"] = getattr(gm, name)
            return made
        return item

    constants: list = []
    for node in list(gm.graph.nodes):
        if node.target is operator.getitem and len(node.args) == 2 and isinstance(node.args[0], fx.Node) and \
                isinstance(node.args[0].meta.get("val"), torch.Tensor):
            index = node.args[1]
            new = tuple(constant(i) for i in index) if isinstance(index, tuple) else constant(index)
            if new is not index and (not isinstance(index, tuple) or any(a is not b for a, b in zip(new, index))):
                node.args = (node.args[0], new)
    if constants:
        gm.recompile()


def _device_of(node: fx.Node, example_inputs: list) -> torch.device:
    """The real device of an output (meta values of the optimized graph say 'meta' for some)."""
    val = node.meta["val"]
    if val.device.type != "meta":
        return val.device
    devices = {x.device for x in example_inputs}
    return devices.pop() if len(devices) == 1 else torch.device("cpu")


def _respell(gm: fx.GraphModule) -> None:
    for node in list(gm.graph.nodes):
        rule = SPELLINGS.get(node.target) if node.op == "call_function" else None
        if rule is None:
            continue
        made = rule(node)
        if not isinstance(made, fx.Node):
            target, args, kwargs = made
            with gm.graph.inserting_before(node):
                made = gm.graph.call_function(target, tuple(args), dict(kwargs))
            made.meta = dict(node.meta)
        node.replace_all_uses_with(made)
        gm.graph.erase_node(node)


def _functional_twin(target):
    """aten.foo_.overload -> the overload of aten.foo with the same argument names and types (bernoulli_.float ->
    bernoulli.p), or None."""
    schema = target._schema
    packet = getattr(aten, schema.name.split("::")[1].rstrip("_"), None)
    if packet is None:
        return None
    names = [(a.name, str(a.type)) for a in schema.arguments]  # clamp_.Tensor's twin is clamp.Tensor, not .default
    for overload in packet.overloads():
        op = getattr(packet, overload)
        if [(a.name, str(a.type)) for a in op._schema.arguments] == names and not op._schema.is_mutable:
            return op
    return None


def _functionalize(gm: fx.GraphModule) -> None:
    """In-place ops on fresh tensors the trace made (`empty_like(x).bernoulli_(p).div_(q)`, dropout on the CPU)
    made out of place; a write anywhere else (an input, a view, a tensor with views) makes the region torch's."""
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    for node in list(gm.graph.nodes):
        schema = getattr(node.target, "_schema", None)
        if node.op != "call_function" or schema is None or not schema.is_mutable:
            continue
        x = node.args[0] if node.args else None
        twin = _functional_twin(node.target)
        if twin is not None and isinstance(x, fx.Node) and is_view(x) and functionalize_view_write(gm, node, twin):
            order = {n: i for i, n in enumerate(gm.graph.nodes)}
            continue  # a write through a slice or select of a fresh tensor (view_writes.py)
        if twin is None or not isinstance(x, fx.Node) or x.op != "call_function" or is_view(x) or \
                any(is_view(u) for u in x.users if u is not node):
            raise NotDifferentiable(f"in-place {node.target} in the joint graph")
        args = list(node.args)  # defaults spelled out: the twin's overload may have none (bernoulli.p's p)
        for a in schema.arguments[len(args):]:
            if a.kwarg_only or a.name in node.kwargs or not a.has_default_value():
                break
            args.append(a.default_value)
        later = [u for u in x.users if u is not node and order.get(u, -1) > order[node]]  # readers after it
        xval = x.meta.get("val")
        if is_random(node) and isinstance(xval, torch.Tensor) and not xval.is_contiguous():
            new = _drawn_in_memory_order(gm.graph, node, twin, args, xval)
        else:
            new = twin_call(gm.graph, node, twin, tuple(args), node.kwargs)
        node.replace_all_uses_with(new)
        for user in later:
            user.replace_input_with(x, new)
        gm.graph.erase_node(node)
        order[new] = order[node]


def _drawn_in_memory_order(graph: fx.Graph, node: fx.Node, twin, args: list, xval: torch.Tensor) -> fx.Node:
    """The out-of-place twin of an in-place random op on a non-contiguous tensor: eager's `bernoulli_` draws in
    the tensor's memory order (dropout on a transposed input: `empty_like(x)` keeps x's strides), where
    `bernoulli.p` draws in a fresh contiguous tensor's order (fuzz seed 678426: the mask came out transposed).
    The twin runs on the tensor viewed in memory order, which is contiguous, and is viewed back."""
    order = dense_order(xval)
    if order is None or any(isinstance(a, fx.Node) for a in args[1:]) or node.kwargs:
        raise NotDifferentiable(f"in-place {node.target} on a tensor whose memory order no view makes contiguous")
    inverse = sorted(range(len(order)), key=order.__getitem__)
    with graph.inserting_before(node):
        permuted = graph.call_function(aten.permute.default, (args[0], list(order)))
    permuted.meta["val"] = xval.permute(order)
    drawn = twin_call(graph, node, twin, (permuted, *args[1:]), {})
    drawn.meta["val"] = permuted.meta["val"].new_empty(permuted.meta["val"].shape)
    with graph.inserting_before(node):
        back = graph.call_function(aten.permute.default, (drawn, inverse))
    back.meta = dict(node.meta)
    back.meta["val"] = drawn.meta["val"].permute(inverse)
    return back


def random_nodes(gm: fx.GraphModule) -> list:
    return [n for n in gm.graph.nodes if is_random(n)]

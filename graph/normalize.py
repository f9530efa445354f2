"""Normalization: rewrite a captured FX graph's torch-level calls into core ops (`graph.core_ops`).

Three steps, in order:
1. Common nn.Module calls (from `symbolic_trace`) become functional calls on get_attr parameters, so one table
   (`graph.decompositions`) serves modules, functions and methods alike.
2. Shape propagation on meta tensors (`graph.shape_prop`).
3. Each non-core call is rewritten by its table rule; calls computing a plain Python value from shapes
   (x.size(0), x.shape[-1] // 2) become constants: numbers for static sizes, SymInts (graph/symbolic_sizes.py)
   where they depend on dynamic ones.
A call with no rule, a rule that declines, or a rule whose result's shape/dtype differs from the original is left
as it is: the backend runs it in eager torch, which is slower but never wrong.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, NamedTuple

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from framejit.graph.builder import Builder
from framejit.graph.core_ops import is_core
from framejit.graph.decompositions import DECOMPOSITIONS
from framejit.graph.effects import has_mutation, is_removable
from framejit.graph import symbolic_shapes
from framejit.graph.shape_prop import propagate

aten = torch.ops.aten


def _attr(graph: fx.Graph, prefix: str, module: nn.Module, name: str) -> Any:
    return graph.get_attr(f"{prefix}.{name}") if getattr(module, name, None) is not None else None


# nn.Module type -> (functional, builds its (args, kwargs) from the module, the call's input and the get_attr maker)
MODULE_RULES: dict[type, tuple[Callable, Callable]] = {
    nn.Linear: (F.linear, lambda m, x, attr: ((x, attr("weight"), attr("bias")), {})),
    nn.LayerNorm: (F.layer_norm, lambda m, x, attr: ((x, list(m.normalized_shape), attr("weight"), attr("bias"),
                                                      m.eps), {})),
    nn.GELU: (F.gelu, lambda m, x, attr: ((x,), {"approximate": m.approximate})),
    nn.ReLU: (F.relu, lambda m, x, attr: ((x,), {})),
    nn.SiLU: (F.silu, lambda m, x, attr: ((x,), {})),
    nn.Tanh: (torch.tanh, lambda m, x, attr: ((x,), {})),
    nn.Sigmoid: (torch.sigmoid, lambda m, x, attr: ((x,), {})),
    nn.Dropout: (F.dropout, lambda m, x, attr: ((x, m.p), {"training": m.training})),
    nn.Embedding: (F.embedding, lambda m, x, attr: ((x, attr("weight"), m.padding_idx, m.max_norm), {})),
    nn.Softmax: (F.softmax, lambda m, x, attr: ((x, m.dim), {})),
    nn.Identity: (None, lambda m, x, attr: x),
    **{conv: (fn, lambda m, x, attr: ((x, attr("weight"), attr("bias"), m.stride, m.padding, m.dilation, m.groups),
                                      {}))
       for conv, fn in [(nn.Conv1d, F.conv1d), (nn.Conv2d, F.conv2d), (nn.Conv3d, F.conv3d)]},
}


def modules_to_functions(gm: fx.GraphModule) -> None:
    """Replace call_module nodes of the modules in MODULE_RULES by the equivalent functional call."""
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        module = gm.get_submodule(node.target)
        entry = MODULE_RULES.get(type(module))
        if entry is None or (isinstance(module, nn.Softmax) and module.dim is None) \
                or getattr(module, "padding_mode", "zeros") != "zeros":
            continue
        fn, make = entry
        with gm.graph.inserting_before(node):
            made = make(module, node.args[0], lambda name: _attr(gm.graph, node.target, module, name))
            if fn is None:
                node.replace_all_uses_with(made)
            else:
                args, kwargs = made
                node.replace_all_uses_with(gm.graph.call_function(fn, args, kwargs))
        gm.graph.erase_node(node)


def _is_shape_value(value: Any) -> bool:
    """A Python value derived from shapes (int, torch.Size, dtype...), safe to bake into the graph."""
    if isinstance(value, (bool, int, float, torch.dtype)):  # not torch.device: meta values say "meta"
        return True
    if isinstance(value, (tuple, list, torch.Size)):
        return all(_is_shape_value(v) for v in value)
    return False


# Answers that differ between the meta tensor and the real input: never bake them in.
_DEVICE_QUERIES = {"device", "get_device", "is_cuda", "is_cpu", "is_meta", "is_mps", "is_xpu", "data_ptr"}


def _reads_shapes(node: fx.Node) -> bool:
    """Calls that only compute Python values from their inputs (x.size(), operator.floordiv, getattr, len):
    other Python calls (random.random) must not be baked in even when they return a number."""
    if node.op == "call_method":
        return node.target not in _DEVICE_QUERIES
    if node.target is getattr and node.args[1] in _DEVICE_QUERIES:
        return False
    return getattr(node.target, "__module__", None) in ("_operator", "operator", "builtins")


def _rule_for(node: fx.Node) -> Any:
    if node.op == "call_function":
        try:
            return DECOMPOSITIONS.get(node.target)
        except TypeError:  # an unhashable target
            return None
    if node.op == "call_method":
        return DECOMPOSITIONS.get(node.target)
    return None


def _same_meta(a: Any, b: Any) -> bool:
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return False
    return a.shape == b.shape and a.dtype == b.dtype


_NAMED_ITEMS = {"values": 0, "indices": 1}  # torch.return_types of max / min over a dim


def _item_index(user: fx.Node) -> int | None:
    if user.op != "call_function":
        return None
    if user.target is operator.getitem and isinstance(user.args[1], int):
        return user.args[1]
    if user.target is getattr and len(user.args) == 2:
        return _NAMED_ITEMS.get(user.args[1])
    return None


def _rewire_items(gm: fx.GraphModule, node: fx.Node, builder: Builder, items: Any) -> bool:
    """A rule returning several tensors (split, chunk, unbind, max over a dim): only rewire when every use is
    `node[i]`, or `node.values` / `node.indices` of the (values, indices) torch returns as a named tuple."""
    users = list(node.users)
    index = {u: _item_index(u) for u in users}
    if not all(i is not None and -len(items) <= i < len(items)
               and _same_meta(builder.val(items[i]), u.meta.get("val")) for u, i in index.items()):
        builder.undo()
        return False
    for user in users:
        user.replace_all_uses_with(items[index[user]])
        gm.graph.erase_node(user)
    gm.graph.erase_node(node)
    return True


def rewrite_node(gm: fx.GraphModule, node: fx.Node, mutation: bool = False, symbolic: bool = False,
                 device: torch.device | None = None) -> bool:
    """Rewrite one node by its decomposition rule. Returns whether it was replaced. With `mutation` (the graph
    writes to some tensor), a rule that answers with an existing node (an alias, as eval dropout does) is refused.
    `device` is where the graph's inputs live, for rules that match a device's own kernel at its edges."""
    rule = _rule_for(node)
    if rule is None:
        return False
    builder = Builder(gm.graph, symbolic, device)
    with gm.graph.inserting_before(node):
        try:
            result = rule(builder, *node.args, **node.kwargs)
        except Exception:  # Decline, or a rule tripping on an unforeseen argument: keep the eager call
            builder.undo()
            return False
    if isinstance(result, (tuple, list)):
        return _rewire_items(gm, node, builder, result)
    if mutation and isinstance(result, fx.Node) and result not in builder.created:
        builder.undo()
        return False
    if result is node or not _same_meta(builder.val(result), node.meta.get("val")):
        builder.undo()  # the safety net: a rule must reproduce eager's shape and dtype exactly
        return False
    with gm.graph.inserting_before(node):
        result = _in_eager_layout(builder, node, result)
    node.replace_all_uses_with(result)
    gm.graph.erase_node(node)
    return True


# the memory formats a clone can lay a tensor of each rank out in
_FORMATS_BY_RANK = {4: (torch.contiguous_format, torch.channels_last), 5: (torch.contiguous_format, torch.channels_last_3d)}


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors of one shape address memory alike (a size-1 dim's stride is never used)."""
    return a.numel() <= 1 or all(n == 1 or x == y for n, x, y in zip(a.shape, a.stride(), b.stride()))


def _in_eager_layout(builder: Builder, node: fx.Node, result: fx.Node) -> fx.Node:
    """`result` laid out as eager lays out `node`'s value. A rule reproduces the values, not always the strides:
    masked_fill and softmax return contiguous tensors where their `where` / `exp` spelling follows a transposed
    input. Users read the layout -- a `view` succeeds or raises by it, `rand_like` and dropout draw in memory
    order, and the layout flows on through pointwise users -- so a differing one becomes eager's by a clone in
    that memory format (fused into the computing kernel, it costs nothing). A layout no memory format names is
    left as the rule made it."""
    want, got = node.meta.get("val"), builder.val(result)
    if want.layout != torch.strided or _same_layout(want, got):
        return result
    for fmt in _FORMATS_BY_RANK.get(want.dim(), (torch.contiguous_format,)):
        if want.is_contiguous(memory_format=fmt):
            return builder.op(aten.clone.default, result, memory_format=fmt)
    return result


class EagerOutput(NamedTuple):
    """What eager returns for one flat graph output, recorded from the graph as captured (meta values): the input
    it is a view of (("input", placeholder index), ("attr", get_attr target), None for a tensor of its own,
    "unknown" where propagation could not tell) and its strides (None where unknown). The rewrites after this point
    change both (x * 1 -> x makes an output an input; softmax spelled as amax, exp, sum, div keeps its input's
    layout where eager's softmax returns a contiguous tensor), so backends compare their result with this."""
    alias: Any
    strides: tuple | None
    shares: tuple = ()  # indices of earlier flat outputs sharing its memory (the same tensor, or views of one)
    offset: int | None = None  # its storage offset (where it shares memory: its place beside the others)
    same: tuple = ()  # indices of earlier flat outputs that are this very tensor (the same node returned again)


# gm.meta key of the EagerOutput per flat output
EAGER_OUTPUTS = "eager_outputs"


def eager_outputs(gm: fx.GraphModule) -> tuple:
    """The EagerOutput of each flat output of `gm` (meta values propagated). Aliasing is read from the meta
    tensors' storages, which views share with their base exactly as eager's tensors do."""
    owners = {}
    index = 0
    for node in gm.graph.nodes:
        val = node.meta.get("val")
        key = None
        if node.op == "placeholder":
            key, index = ("input", index), index + 1
        elif node.op == "get_attr":
            key = ("attr", node.target)
        if key is not None and isinstance(val, torch.Tensor):
            owners.setdefault(val.untyped_storage()._cdata, key)
    out = next(n for n in gm.graph.nodes if n.op == "output")
    result, storages = [], []
    leaves = torch.utils._pytree.tree_flatten(out.args[0])[0]
    for n, leaf in enumerate(leaves):
        val = leaf.meta.get("val") if isinstance(leaf, fx.Node) else None
        storage = val.untyped_storage()._cdata if isinstance(val, torch.Tensor) else None
        storages.append(storage)
        if isinstance(val, torch.Tensor):
            shares = tuple(j for j, other in enumerate(storages[:-1]) if other == storage)
            same = tuple(j for j in shares if leaves[j] is leaf)
            result.append(EagerOutput(owners.get(storage), tuple(val.stride()), shares, val.storage_offset(), same))
        else:
            result.append(EagerOutput("unknown" if isinstance(leaf, fx.Node) and val is None else None, None))
    return tuple(result)


def normalize(gm: fx.GraphModule, example_inputs: list | tuple) -> fx.GraphModule:
    """Rewrite `gm` in place into core ops as far as the table allows; every node ends with meta["val"]."""
    modules_to_functions(gm)
    propagate(gm, example_inputs)
    if EAGER_OUTPUTS not in gm.meta:  # recorded once, from the graph as captured
        gm.meta[EAGER_OUTPUTS] = eager_outputs(gm)
    mutation = has_mutation(gm.graph)
    dynamic = symbolic_shapes.is_dynamic(gm)
    devices = {t.device for t in example_inputs if isinstance(t, torch.Tensor)}
    device = devices.pop() if len(devices) == 1 else None
    for node in list(gm.graph.nodes):
        if node.op not in ("call_function", "call_method") or is_core(node.target):
            continue
        value = node.meta.get("val")
        if _is_shape_value(value) and _reads_shapes(node) and is_removable(node):
            if dynamic:  # sizes that depend on dynamic dims become SymInts (B * T stays s0 * s1)
                value = symbolic_shapes.size_value(node, value)
            for user in list(node.users):
                user.args = fx.node.map_arg(user.args, lambda n: value if n is node else n)
                user.kwargs = fx.node.map_arg(user.kwargs, lambda n: value if n is node else n)
            gm.graph.erase_node(node)
            continue
        # several results, some None where the op computes nothing (a backward's output_mask)
        several = isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value) and \
            all(v is None or isinstance(v, torch.Tensor) for v in value)
        if isinstance(value, torch.Tensor) or several:
            rewrite_node(gm, node, mutation, dynamic, device)
    gm.graph.lint()
    gm.recompile()
    return gm

"""In-place ops on a graph's own intermediates rewritten out of place: `y = conv(x); y.relu_(); z = y + s`
becomes `y = conv(x); y2 = relu(y); z = y2 + s`.

A captured graph that writes to a tensor in place is run by torch as captured (backends cannot reorder or fuse
around a write), so `nn.ReLU(inplace=True)` and `out += identity` in every torchvision CNN would keep the whole
model out of the generated code. Where nothing else can see the write, the in-place op is the out-of-place one
with later readers pointed at its result:
  * the written tensor is an intermediate that is no view (its meta value has no base): a fresh tensor made by
    this graph, so no input, parameter, buffer or earlier tensor shares its memory;
  * no view of it exists (no other user's value shares its storage), so no alias would miss the write;
  * the out-of-place op gives what the in-place one leaves in the tensor: the same shape and dtype (an in-place
    op neither broadcasts its receiver nor changes its dtype);
  * uses before the write keep the old node; uses after it (and of the in-place op's own result) take the new one.
Writes to inputs, to views, to tensors with views, and `out=` calls stay as they are (and keep the graph in torch).
"""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

from framejit.graph.effects import is_impure
from framejit.graph.shape_prop import meta_tensor

# augmented assignment on a tensor: x += y is x.add_(y)
AUGMENTED = {operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
              operator.itruediv: operator.truediv, operator.ifloordiv: operator.floordiv, operator.imod: operator.mod,
              operator.ipow: operator.pow, operator.iand: operator.and_, operator.ior: operator.or_,
              operator.ixor: operator.xor, operator.ilshift: operator.lshift, operator.irshift: operator.rshift}
# in-place ops that change a tensor's view of its memory (sizes, strides, storage) or its autograd flags, not its
# values: no out-of-place twin computes what they do
METADATA_WRITES = frozenset({"unsqueeze_", "squeeze_", "t_", "transpose_", "swapdims_", "swapaxes_", "resize_",
                             "resize_as_", "as_strided_", "set_", "detach_", "requires_grad_"})
# in-place methods whose out-of-place twin is not the name without the underscore, or has none to use
_NO_TWIN = METADATA_WRITES | {"copy_", "fill_", "zero_", "share_memory_",
            "random_", "uniform_", "normal_", "bernoulli_", "exponential_", "geometric_", "cauchy_", "log_normal_",
            "index_put_", "put_", "masked_scatter_", "scatter_", "scatter_add_", "scatter_reduce_", "index_add_",
            "index_copy_", "index_fill_", "map_", "apply_", "record_stream"}


def storage_id(t: torch.Tensor) -> int:
    """The identity of the memory a (meta) tensor lives in: equal for views of one another."""
    return t.untyped_storage()._cdata


def written(node: fx.Node):
    """The tensor an in-place call writes: its `out=` argument, else its first."""
    out = node.kwargs.get("out")
    return out if isinstance(out, fx.Node) else node.args[0] if node.args else None


def out_of_place(node: fx.Node, outs: bool = False) -> tuple | None:
    """(kind, target, args, kwargs) of the out-of-place twin of in-place `node`, or None. `outs`: a torch
    function's `out=` call too (`torch.maximum(m, v, out=m)`: torch.optim's amsgrad), its twin the call without."""
    if outs and node.op == "call_function" and isinstance(node.kwargs.get("out"), fx.Node) and \
            getattr(node.target, "__module__", "") == "torch" and not getattr(node.target, "__name__", "").endswith("_"):
        return "call_function", node.target, node.args, {k: v for k, v in node.kwargs.items() if k != "out"}
    if node.op == "call_method" and isinstance(node.target, str):
        name = node.target
        if not name.endswith("_") or name.endswith("__") or name in _NO_TWIN or not hasattr(torch.Tensor, name[:-1]):
            return None
        if "out" in node.kwargs:
            return None
        return "call_method", name[:-1], node.args, node.kwargs
    if node.op != "call_function":
        return None
    if node.target in AUGMENTED:
        return "call_function", AUGMENTED[node.target], node.args, node.kwargs
    if node.kwargs.get("inplace") is True and "out" not in node.kwargs:  # F.relu(y, inplace=True)
        return "call_function", node.target, node.args, {**node.kwargs, "inplace": False}
    name = getattr(node.target, "__name__", "")
    twin = getattr(torch, name[:-1], None) if name.endswith("_") and not name.endswith("__") else None
    if twin is not None and name not in _NO_TWIN and getattr(node.target, "__module__", "") in ("torch",) \
            and "out" not in node.kwargs:
        return "call_function", twin, node.args, node.kwargs  # torch.relu_(y)
    return None


def _fresh_without_views(x: fx.Node, write: fx.Node) -> bool:
    """x is an intermediate no other tensor aliases: its memory is no earlier node's (not a view, and not
    `detach()`, which shares memory without being a view), and none of its other users is a view of it."""
    val = meta_tensor(x)
    if x.op not in ("call_function", "call_method") or val is None or val._base is not None or val.is_inference():
        return False
    storage = storage_id(val)
    for earlier in x.graph.nodes:
        if earlier is x:
            break
        e = earlier.meta.get("val")
        if any(isinstance(t, torch.Tensor) and not t.is_inference() and storage_id(t) == storage
               for t in (e if isinstance(e, (tuple, list)) else [e])):
            return False  # x shares memory with an input or an earlier tensor
    for user in x.users:
        if user is write or user.op == "output":  # the output reads the final value, whichever node holds it
            continue
        if user.args and user.args[0] is x and is_impure(user):
            continue  # a later write to x itself (x.relu_(); x += y): it follows the new node, rewritten next
        out = user.meta.get("val")
        outs = out if isinstance(out, (tuple, list)) else [out]
        if any(isinstance(o, torch.Tensor) and not o.is_inference() and storage_id(o) == storage for o in outs):
            return False  # a view of x (or an op handing x back): it would miss the write
    return True


def twin_value(node: fx.Node, kind: str, target, args, kwargs) -> torch.Tensor | None:
    """The out-of-place call's meta value, where it has the written tensor's shape and its dtype or one that casts
    to it (an in-place op computes in the promoted dtype and casts: `step *= mu` of a float32 tensor by a 0-dim
    float64 one; place_twin adds the cast); else None."""
    x = meta_tensor(written(node))
    load = lambda v: fx.node.map_arg(v, lambda n: n.meta.get("val"))  # noqa: E731
    a, kw = load(args), load(kwargs)
    try:
        with torch.no_grad():
            out = getattr(a[0], target)(*a[1:], **kw) if kind == "call_method" else target(*a, **kw)
    except Exception:  # noqa: BLE001 - no twin for these arguments: leave the write
        return None
    if not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != x.dtype and (
            out.dtype.is_complex and not x.dtype.is_complex or not torch.can_cast(out.dtype, x.dtype)):
        return None
    return out


def place_twin(node: fx.Node, twin: tuple, value: torch.Tensor, name: str) -> fx.Node:
    """The out-of-place `twin` of in-place `node` (out_of_place's tuple; `value` its twin_value), inserted before
    node, its result in the written tensor's layout: eager's in-place op leaves the tensor's strides as they were,
    and later ops follow them (`x.t().masked_fill_(m, 1) * 2` is transposed), where an out-of-place twin may
    return contiguous memory (masked_fill does). A dense layout is restored by permuting to its order, making that
    contiguous and permuting back (fused into the computing kernel, it costs nothing); the result's node is
    returned."""
    kind, target, args, kwargs = twin
    graph = node.graph
    with graph.inserting_before(node):
        new = graph.create_node(kind, target, args, kwargs, name=name)
    new.meta = {k: v for k, v in node.meta.items() if k != "mutates"}
    new.meta["val"] = value
    x = meta_tensor(written(node))
    if value.dtype != x.dtype:  # computed in the promoted dtype, stored in the written tensor's
        with graph.inserting_before(node):
            cast = graph.call_method("to", (new, x.dtype))
        cast.meta["val"] = value = value.to(x.dtype)
        new = cast
    order = dense_order(x)
    if order is None or all(n == 1 or a == b for n, a, b in zip(value.shape, value.stride(), x.stride())):
        return new
    inverse = tuple(sorted(range(len(order)), key=order.__getitem__))
    result = new
    with graph.inserting_before(node):
        for method, margs in (("permute", (order,)), ("contiguous", ()), ("permute", (inverse,))):
            nxt = graph.call_method(method, (result, *margs))
            nxt.meta["val"] = getattr(result.meta["val"], method)(*margs)
            result = nxt
    return result


def dense_order(t: torch.Tensor | None) -> tuple | None:
    """The dims of dense, non-overlapping `t`, outermost first (dims of equal stride in their own order); None
    where `t` is not such a permutation of a contiguous tensor."""
    if t is None or t.layout != torch.strided:
        return None
    order = tuple(sorted(range(t.dim()), key=lambda d: -t.stride(d)))
    step = 1
    for d in reversed(order):
        if t.shape[d] != 1 and t.stride(d) != step:
            return None
        step *= t.shape[d]
    return order


def functionalize_intermediates(gm: fx.GraphModule) -> int:
    """Rewrite in-place ops on unaliased intermediates out of place (see the module's doc); returns how many."""
    count = 0
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    for node in list(gm.graph.nodes):
        if not node.args or not isinstance(node.args[0], fx.Node):
            continue
        twin = out_of_place(node)
        if twin is None or not _fresh_without_views(node.args[0], node):
            continue
        value = twin_value(node, *twin)
        if value is None:
            continue
        x = node.args[0]
        new = place_twin(node, twin, value, f"{x.name}_out")  # a fresh tensor: its own storage
        made = node.prev
        while made not in order:  # the twin and any layout nodes after it sit where the write was
            order[made] = order[node]
            made = made.prev
        node.replace_all_uses_with(new)
        for user in list(x.users):
            if user is not new and user is not node and order.get(user, len(order)) > order[node]:
                user.replace_input_with(x, new)
        gm.graph.erase_node(node)
        count += 1
    if count:
        gm.graph.lint()
        gm.recompile()
    return count

"""Writes through views of a fresh tensor in the joint graph made functional: `y = x.new_zeros(s); y[..., 1:] =
x[..., :-1]; y[..., 0] = start` (T5's and BART's shift_right) traces to `copy_(slice(y, -1, 1), ...)` and
`fill_(select(y, -1, 0), start)`, which the partitioner and the backends cannot take (they reason about values).

For an in-place op on `v = view_k(...view_1(base))`, where base is a tensor the graph made (no input, no view) and
each view_i is a slice with step 1, a select, a detach or a reshape of a contiguous tensor: the op's out-of-place twin gives the view's new value, each view
is undone from the inside out by assembling its parent from the new part and the old parent's other parts
(`cat(parent[:start], part, parent[end:])` along the view's dim: core ops), and every later reader of base or of
any view of it (a chain of view ops from base) reads the new base, or the same chain of views replayed on it.
Anything else (a view with a step, an `as_strided`, a base that is an input) is declined: the region runs as
captured, in torch's autograd."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

aten = torch.ops.aten


def is_view(node: fx.Node) -> bool:
    """An aten op whose result aliases its input without writing it (slice, select, detach, view...)."""
    schema = getattr(node.target, "_schema", None)
    return node.op == "call_function" and schema is not None and bool(schema.returns) and \
        schema.returns[0].alias_info is not None and not schema.returns[0].alias_info.is_write


def _chain(x: fx.Node) -> list | None:
    """The view ops from a fresh base to x, base first; None where x is not such a view."""
    chain = []
    while is_view(x):
        chain.append(x)
        x = x.args[0]
        if not isinstance(x, fx.Node):
            return None
    if x.op != "call_function" or getattr(x.target, "_schema", None) is not None and x.target._schema.is_mutable:
        return None  # a placeholder or constant (an input's memory), or an in-place op's result
    if x.target is operator.getitem:  # one result of a multi-result op: fresh only if the op makes new tensors
        producer = getattr(x.args[0], "target", None)
        schema = getattr(producer, "_schema", None)
        if schema is None or schema.is_mutable or any(r.alias_info is not None for r in schema.returns):
            return None  # split / unbind / chunk results are views of their input
    return [x] + chain[::-1]


def _val(node: fx.Node):
    return node.meta.get("val")


def _bounds(view: fx.Node):
    """(dim, start, end) the slice or select `view` takes of its parent along dim, or None."""
    shape = _val(view.args[0]).shape
    if view.target is aten.select.int:
        dim, index = view.args[1], view.args[2]
        dim = dim % len(shape)
        index = index + shape[dim] if index < 0 else index
        return dim, index, index + 1
    if view.target is aten.slice.Tensor:
        args = list(view.args) + [0, None, None, 1][len(view.args) - 1:]
        dim, start, end, step = args[1:5]
        if step != 1:
            return None
        dim = dim % len(shape)
        n = shape[dim]
        start = 0 if start is None else start
        end = n if end is None else end
        start = min(max(start + n if start < 0 else start, 0), n)
        end = min(max(end + n if end < 0 else end, start), n)
        return dim, start, end
    return None


def _contiguous_reshape(view: fx.Node) -> bool:
    """`view(parent, shape)` of a contiguous parent: every element of it, which `view` back to the parent's shape
    undoes (the new part is contiguous: a copy or a cat)."""
    parent = _val(view.args[0])
    return view.target is aten.view.default and isinstance(parent, torch.Tensor) and parent.is_contiguous()


def _add(graph: fx.Graph, target, args, like=None) -> fx.Node:
    node = graph.call_function(target, tuple(args))
    args_val = fx.node.map_arg(node.args, _val)
    try:
        node.meta["val"] = target(*args_val)
    except Exception:  # noqa: BLE001 - the meta value is a nicety for later passes
        if like is not None:
            node.meta["val"] = _val(like)
    return node


_IDENTITY = (aten.detach.default, aten.alias.default)


def _undo(graph: fx.Graph, view: fx.Node, parent: fx.Node, part: fx.Node) -> fx.Node | None:
    """The parent of `view` with the view's elements replaced by `part`."""
    if view.target in _IDENTITY:  # all of the parent, as it is
        return part
    if view.target is aten.view.default:  # all of the parent, reshaped: reshaped back
        return _add(graph, aten.view.default, (part, list(_val(parent).shape)))
    bounds = _bounds(view)
    if bounds is None:
        return None
    dim, start, end = bounds
    if view.target is aten.select.int:
        part = _add(graph, aten.unsqueeze.default, (part, dim))
    n = _val(parent).shape[dim]
    pieces = []
    if start > 0:
        pieces.append(_add(graph, aten.slice.Tensor, (parent, dim, 0, start)))
    pieces.append(part)
    if end < n:
        pieces.append(_add(graph, aten.slice.Tensor, (parent, dim, end, n)))
    return pieces[0] if len(pieces) == 1 else _add(graph, aten.cat.default, (pieces, dim), like=parent)


def _views_of(base: fx.Node) -> dict:
    """Every node reached from base through view ops -> its chain of views from base."""
    found, todo = {base: []}, [base]
    while todo:
        node = todo.pop()
        for user in node.users:
            if is_view(user) and user.args[0] is node and user not in found:
                found[user] = found[node] + [user]
                todo.append(user)
    return found


def _as_indexing(graph: fx.Graph, view: fx.Node) -> fx.Node | None:
    """`as_strided(b, size, stride, offset)` over a contiguous b (autograd's CopySlices backward writes through
    one) as the selects and the slice that take the same elements: the leading dims selected at the offset's
    index, the first kept dim sliced. None where it is no such view."""
    b = view.args[0]
    bv = _val(b)
    size, stride = list(view.args[1]), list(view.args[2])
    offset = view.args[3] if len(view.args) > 3 else 0
    if not isinstance(bv, torch.Tensor) or not bv.is_contiguous() or bv.storage_offset() != 0 or \
            not all(type(v) is int for v in size + stride + [offset]):
        return None
    shape, strides = list(bv.shape), list(bv.stride())
    if len(shape) == 1 and stride == list(torch.empty(size, device="meta").stride()):
        # a contiguous block of a flat buffer (autograd's CopySlices keeps the base's storage flat)
        numel = 1
        for n in size:
            numel *= n
        if offset + numel > shape[0]:
            return None
        with graph.inserting_before(view):
            out = b if (offset, numel) == (0, shape[0]) else _add(graph, aten.slice.Tensor, (b, 0, offset,
                                                                                             offset + numel))
            return out if list(size) == [numel] else _add(graph, aten.view.default, (out, list(size)))
    k = len(shape) - len(size)
    if k < 0 or stride != strides[k:] or size[1:] != shape[k + 1:]:
        return None
    index = []
    for d in range(k):
        index.append(offset // strides[d])
        offset %= strides[d]
    if k < len(shape):
        start, rest = divmod(offset, strides[k])
        if rest or start + (size[0] if size else 1) > shape[k]:
            return None
    elif offset:
        return None
    if any(i >= n for i, n in zip(index, shape)):
        return None
    out = b
    with graph.inserting_before(view):
        for i in index:
            out = _add(graph, aten.select.int, (out, 0, i))
        if k < len(shape) and (start, size[0]) != (0, shape[k]):
            out = _add(graph, aten.slice.Tensor, (out, 0, start, start + size[0]))
    return out if out is not b else None


def twin_call(graph: fx.Graph, node: fx.Node, twin, args: tuple, kwargs: dict) -> fx.Node:
    """In-place `node`'s value out of place: `twin(*args)`, cast back to the written tensor's dtype where the twin
    promotes (`t *= x64` keeps t's float32, `t.mul_(x32)` a bfloat16 t: the twin alone would be wider). Inserted
    before `node`."""
    val = lambda a: a.meta.get("val") if isinstance(a, fx.Node) else a
    written = val(node.args[0])
    with graph.inserting_before(node):
        made = graph.call_function(twin, args, kwargs)
    made.meta = dict(node.meta)
    try:
        result = twin(*fx.node.map_aggregate(args, val), **fx.node.map_aggregate(kwargs, val))
    except Exception:  # noqa: BLE001 - no meta kernel: the written tensor's own meta value stands
        return made
    if not isinstance(result, torch.Tensor) or result.dtype == written.dtype:
        return made
    made.meta = {**node.meta, "val": result}
    with graph.inserting_before(node):
        cast = graph.call_function(aten._to_copy.default, (made,), {"dtype": written.dtype})
    cast.meta = dict(node.meta)
    return cast


def functionalize_view_write(gm: fx.GraphModule, node: fx.Node, twin) -> bool:
    """Rewrite in-place `node` (its first argument a view of a fresh base) with its out-of-place `twin`, as the
    module's doc says; False where it cannot (the graph then means what it did: at most an as_strided
    respelled as the indexing it is)."""
    graph = gm.graph
    x = node.args[0]
    if x.target is aten.as_strided.default:
        same = _as_indexing(graph, x)
        if same is None:
            return False
        x.replace_all_uses_with(same)
        graph.erase_node(x)
    chain = _chain(node.args[0])
    if chain is None or len(chain) < 2 or any(v.target not in _IDENTITY and not _contiguous_reshape(v) and
                                              _bounds(v) is None for v in chain[1:]):
        return False
    if any(not isinstance(_val(n), torch.Tensor) for n in chain):
        return False
    base = chain[0]
    aliases = _views_of(base)
    order = {n: i for i, n in enumerate(graph.nodes)}
    part = twin_call(graph, node, twin, node.args, node.kwargs)
    with graph.inserting_before(node):
        for view in reversed(chain[1:]):
            part = _undo(graph, view, view.args[0], part)
            if part is None:
                raise AssertionError("bounds were checked above")
    new_base = part
    replayed: dict = {base: new_base}
    # each alias's view call as it is now (the loop below rewires readers, views among them)
    calls = {a: (chain[-2] if len(chain) > 1 else base, a.target, tuple(a.args[1:]), dict(a.kwargs), dict(a.meta))
             for a, chain in aliases.items() if chain}

    def replay(alias: fx.Node) -> fx.Node:
        """alias's chain of views replayed on the new base (placed at the write, before every later reader)."""
        if alias not in replayed:
            parent, target, rest, kwargs, meta = calls[alias]
            parent = replay(parent)
            with graph.inserting_before(node):
                made = graph.call_function(target, (parent,) + rest, kwargs)
            made.meta = meta
            replayed[alias] = made
        return replayed[alias]

    # (what the reader reads, the reader, the alias whose new value replaces it); a reader of both an alias and
    # the in-place op's result (`add(add_(view, 1), base)`) has each input replaced by its own new value
    late = [(alias, user, alias) for alias in aliases for user in list(alias.users)
            if user is not node and order.get(user, -1) > order[node]]
    late += [(node, user, node.args[0]) for user in list(node.users)]  # the op returns its written argument
    for old, user, alias in late:
        user.replace_input_with(old, replay(alias))
    graph.erase_node(node)
    return True

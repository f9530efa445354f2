"""Symbolic shape propagation: each node's shape as a tuple of ints and SymInts (graph/symbolic_sizes.py).

node.meta["val"] holds a meta tensor at the hints (torch's meta kernels only take plain ints); the shape that
holds for every size goes beside it in node.meta["sym_shape"], from one rule per core op (graph/core_ops.py),
each checked against the meta value at the hints. Placeholders get theirs from `assign_symbols`: one symbol per
distinct hint among the dynamic dims (node.meta["dynamic_dims"], set by the frontend), as the frontend's guards
share them. An op without a rule keeps its hint shape, pinned by a condition on every size its inputs depend on:
correct, only not general.

Shapes given as arguments (view, expand, full, arange) are taken as they are: sizes derived from dynamic ones
reach them as SymInts, since the decompositions compute them with `Builder.size()`. A number the optimizer
computed from hints without a SymInt would be wrong at other sizes; graph/size_variants.py catches that."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.fx as fx

from framejit.graph.core_ops import GROUPS
from framejit.graph.symbolic_sizes import Expr, SymInt, concrete, decide, hint, is_symbolic

aten = torch.ops.aten
KEY = "sym_shape"


@dataclass
class Symbols:
    """The dynamic sizes of one compile: symbol name -> (input position, dim, hint), in order of appearance."""
    where: dict
    equal: list  # (input position, dim, symbol name) of further dims sharing a symbol


def dynamic_placeholders(gm: fx.GraphModule) -> list:
    return [(i, n) for i, n in enumerate(n for n in gm.graph.nodes if n.op == "placeholder")
            if n.meta.get("dynamic_dims")]


def assign_symbols(gm: fx.GraphModule, example_inputs: list) -> Symbols:
    """Give each dynamic input dim its symbol (sharing one per hint) and set the placeholders' sym_shape."""
    where, equal, by_hint = {}, [], {}
    for i, node in enumerate(n for n in gm.graph.nodes if n.op == "placeholder"):
        x = example_inputs[i]
        dims = node.meta.get("dynamic_dims") or ()
        if not isinstance(x, torch.Tensor):
            continue
        shape = []
        for d, n in enumerate(x.shape):
            if d not in dims or n < 2:
                shape.append(n)
                continue
            name = by_hint.get(n)
            if name is None:
                name = by_hint[n] = f"s{len(where)}"
                where[name] = (i, d, n)
            else:
                equal.append((i, d, name))
            shape.append(SymInt(Expr.symbol(name), n))
        node.meta[KEY] = tuple(shape)
    return Symbols(where, equal)


def clear(gm: fx.GraphModule) -> None:
    for n in gm.graph.nodes:
        if n.op != "placeholder":
            n.meta.pop(KEY, None)


def shape_of(node) -> tuple:
    """The symbolic shape of a tensor-valued node (computed on first use), or of a constant's."""
    if not isinstance(node, fx.Node):
        return tuple(getattr(node, "shape", ()))
    got = node.meta.get(KEY)
    if got is None:
        got = node.meta[KEY] = _infer(node)
    return got


def propagate(gm: fx.GraphModule) -> None:
    """(Re)compute every node's sym_shape, in graph order, each checked against its meta value."""
    clear(gm)
    for n in gm.graph.nodes:
        if n.op in ("call_function", "call_method", "get_attr") and isinstance(n.meta.get("val"), torch.Tensor):
            shape_of(n)


def layout_strides(shape: tuple, meta_strides: tuple) -> tuple:
    """Symbolic strides for a layout whose hint strides are `meta_strides`: a permutation of a dense layout
    (what kernels and library calls produce) keeps its dim order; anything else is pinned to its hints."""
    if not any(isinstance(n, SymInt) for n in shape):
        return meta_strides
    order = sorted(range(len(shape)), key=lambda d: (meta_strides[d], -d))  # innermost first
    out, step = [0] * len(shape), 1
    for d in order:
        out[d] = step
        step = step * shape[d]
    if tuple(hint(s) for s in out) == tuple(meta_strides) or all(
            hint(n) == 1 or hint(s) == m for n, s, m in zip(shape, out, meta_strides)):
        return tuple(out)
    for n in shape:
        concrete(n, "a layout that is not a permutation of a dense one")
    return meta_strides


# ---- inference --------------------------------------------------------------------------------------------------
def _hints(shape) -> tuple:
    return tuple(hint(s) for s in shape)


def _infer(node: fx.Node) -> tuple:
    val = node.meta.get("val")
    meta_shape = tuple(val.shape) if isinstance(val, torch.Tensor) else None
    rule = RULES.get(node.target) if node.op == "call_function" else None
    if rule is not None:
        try:
            shape = rule(node, *node.args, **node.kwargs)
        except (Unknown, IndexError, TypeError, ValueError, KeyError):
            shape = None
        if shape is not None:
            shape = tuple(shape)
            if meta_shape is not None and _hints(shape) != meta_shape:
                raise AssertionError(f"symbolic shape of {node.format_node()} is {shape}, meta says {meta_shape}")
            return shape
    if meta_shape is None:
        return ()
    return _pinned(node, meta_shape)


def _pinned(node: fx.Node, meta_shape) -> tuple:
    """The hint shape, made exact by pinning every size the node's inputs depend on."""
    why = f"{node.name} ({_name(node.target)}) has no symbolic shape rule"
    for a in node.all_input_nodes:
        if isinstance(a.meta.get("val"), torch.Tensor):
            for n in shape_of(a):
                concrete(n, why)
        else:
            _pinned(a, None)
    fx.node.map_aggregate((node.args, node.kwargs), lambda v: concrete(v, why) if isinstance(v, SymInt) else v)
    return meta_shape


def is_dynamic(gm: fx.GraphModule) -> bool:
    return any(isinstance(s, SymInt) for n in gm.graph.find_nodes(op="placeholder") for s in n.meta.get(KEY, ()))


_SIZE_METHODS = {"size": lambda s, d=None: s if d is None else s[d], "dim": len, "ndimension": len,
                 "numel": math.prod, "nelement": math.prod}
_SIZE_ATTRS = {"shape": lambda s: s, "ndim": len}


def size_value(node: fx.Node, hint_value):
    """The value of a node computing Python data from sizes (x.size(1), x.shape, B * T), with SymInts for what
    depends on dynamic sizes; anything it cannot follow is pinned to `hint_value`."""
    value = _follow(node)
    if value is not None and _same_hints(value, hint_value):
        return value
    _pinned(node, None)
    return hint_value


def _follow(node: fx.Node):
    args, kwargs = node.args, node.kwargs
    tensor = args[0] if args and isinstance(args[0], fx.Node) and isinstance(args[0].meta.get("val"),
                                                                             torch.Tensor) else None
    try:
        if tensor is not None and not any(isinstance(a, fx.Node) for a in list(args[1:]) + list(kwargs.values())):
            shape = shape_of(tensor)
            if node.op == "call_method" and node.target in _SIZE_METHODS:
                value = _SIZE_METHODS[node.target](shape, *args[1:], **kwargs)
                return tuple(value) if isinstance(value, tuple) else value
            if node.op == "call_function" and node.target is getattr and args[1] in _SIZE_ATTRS:
                return _SIZE_ATTRS[args[1]](shape)
        if not node.all_input_nodes and node.op == "call_function":
            return node.target(*args, **kwargs)
    except (TypeError, IndexError, ValueError):
        pass
    return None


def _same_hints(value, hint_value) -> bool:
    if isinstance(value, (tuple, list)):
        return isinstance(hint_value, (tuple, list)) and len(value) == len(hint_value) and all(
            _same_hints(v, h) for v, h in zip(value, hint_value))
    return hint(value) == hint_value if isinstance(value, SymInt) else value == hint_value


def _name(target) -> str:
    return getattr(target, "__name__", str(target))


class Unknown(Exception):
    pass


def _t(x) -> tuple:
    if isinstance(x, fx.Node):
        return shape_of(x)
    return ()  # a Python scalar operand


def broadcast_shapes(*shapes) -> tuple:
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        dim = 1
        for s in shapes:
            j = len(s) - ndim + i
            if j < 0:
                continue
            n = s[j]
            if _static_one(n):
                continue
            if _static_one(dim):
                dim = n
            elif not decide(dim, "==", n, "broadcast dims must match"):
                raise Unknown("broadcast mismatch")
        out.append(dim)
    return tuple(out)


def _pointwise(node, *args, **kwargs):
    return broadcast_shapes(*[_t(a) for a in list(args) + list(kwargs.values()) if isinstance(a, fx.Node)])


def _same(node, x, *args, **kwargs):
    return _t(x)


def _dims(dim, ndim):
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return sorted(d % max(ndim, 1) for d in dims)


def _reduce(node, x, dim=None, keepdim=False, **kwargs):
    shape = _t(x)
    if len(shape) == 0:
        return ()
    dims = _dims(dim, len(shape))
    return tuple(1 if d in dims else n for d, n in enumerate(shape) if keepdim or d not in dims)


def view_shape(src: tuple, target: list) -> tuple:
    """The symbolic shape of a view of `src` to `target` (ints, SymInts, at most one -1): the target itself,
    with -1 resolved as the element count over the rest (B*T*C // C simplifies to B*T)."""
    target = list(target)
    holes = [i for i, t in enumerate(target) if not isinstance(t, SymInt) and t == -1]
    if holes:
        known = math.prod(t for i, t in enumerate(target) if i != holes[0])
        target[holes[0]] = math.prod(src) // known
    return tuple(target)


def _static_one(n) -> bool:
    return not isinstance(n, SymInt) and n == 1


def _view(node, x, shape):
    return view_shape(_t(x), list(shape))


def _permute(node, x, dims):
    s = _t(x)
    return tuple(s[d % len(s)] for d in dims)


def expand_shape(src: tuple, sizes: list) -> tuple:
    """The shape of src.expand(sizes): a dim that is not 1 is kept whatever number the sizes give for it."""
    lead = len(sizes) - len(src)
    out = list(sizes[:lead])
    for d, n in enumerate(sizes[lead:]):
        have = src[d]
        out.append(have if (not isinstance(n, SymInt) and n == -1) or not _static_one(have) else n)
    return tuple(out)


def _expand(node, x, sizes, implicit=False):
    return expand_shape(_t(x), list(sizes))


def slice_bounds(item: slice, size) -> tuple:
    """slice.indices(size) for a positive step, with SymInts: (start, stop, step), clamped into [0, size]."""
    if not is_symbolic((item.start, item.stop, size)):
        return item.indices(size)
    step = 1 if item.step is None else item.step
    return _bound(item.start, size, 0), _bound(item.stop, size, size), step


def _bound(i, size, default):
    if i is None:
        return default
    if not isinstance(i, SymInt) and i < 0:
        return max(i + size, 0)
    return min(i, size)


def _slice(node, x, dim=0, start=None, end=None, step=1):
    s = list(_t(x))
    dim %= len(s)
    start, end, step = slice_bounds(slice(start, end, step), s[dim])
    s[dim] = max((end - start + step - 1) // step, 0)
    return tuple(s)


def _select(node, x, dim, index):
    s = list(_t(x))
    del s[dim % len(s)]
    return tuple(s)


def _unsqueeze(node, x, dim):
    s = list(_t(x))
    s.insert(dim % (len(s) + 1), 1)
    return tuple(s)


def _squeeze(node, x, dims=None):
    s = _t(x)
    dims = _dims(dims, len(s)) if dims is not None else range(len(s))
    return tuple(n for d, n in enumerate(s) if not (d in dims and _static_one(n)))


def _cat(node, tensors, dim=0):
    shapes = [_t(t) for t in tensors]
    shapes = [s for s in shapes if not (len(s) == 1 and not isinstance(s[0], SymInt) and s[0] == 0)]
    out = list(shapes[0])
    dim %= len(out)
    out[dim] = sum(s[dim] for s in shapes)
    return tuple(out)


def _full(node, size, value, **kwargs):
    return tuple(size)


def _arange(node, start, end=None, step=1, **kwargs):
    if end is None:
        start, end = 0, start
    if any(isinstance(v, float) for v in (start, end, step)):
        if any(isinstance(v, SymInt) for v in (start, end, step)):
            raise Unknown("float arange over sizes")
        return None
    n = (end - start + step - 1) // step if step > 0 else (start - end - step - 1) // (-step)
    return (n if decide(n, ">", 0, "arange's length") else 0,)


def _mm(node, a, b):
    return (_t(a)[0], _t(b)[1])


def _bmm(node, a, b):
    return (_t(a)[0], _t(a)[1], _t(b)[2])


def _addmm(node, bias, a, b, **kwargs):
    return (_t(a)[0], _t(b)[1])


def _embedding(node, weight, idx, *args, **kwargs):
    return _t(idx) + _t(weight)[1:]


def _sdpa(node, q, k, v, *args, **kwargs):
    return _t(q)[:-1] + _t(v)[-1:]


# ---- indexing (issue 20): a take replaces one dim by the index's dims; stores keep their first operand's shape
def _take(node, x, dim, idx, *args, **kwargs):
    shape = _t(x)
    dim = dim % max(len(shape), 1)
    return shape[:dim] + (_t(idx) if len(_t(idx)) else (1,)) + shape[dim + 1:]


def _index(node, x, indices):
    found = [k for k, i in enumerate(indices) if i is not None]
    if len(found) != 1:
        raise Unknown("several index tensors")
    shape = _t(x)
    return shape[:found[0]] + _t(indices[found[0]]) + shape[found[0] + 1:]


def _gather(node, x, dim, idx, *args, **kwargs):
    return _t(idx)


def _indexing_rules() -> dict:
    from framejit.graph.index_checks import CHECK_INDEX
    stores = (aten.scatter.src, aten.scatter.value, aten.scatter_add.default, aten.scatter_reduce.two,
              aten.index_add.default, aten.index_put.default)
    return {CHECK_INDEX: _same, aten.gather.default: _gather, aten.index_select.default: _take,
            aten.embedding_dense_backward.default: lambda node, grad, idx, n, *a: (n, _t(grad)[-1]),
            aten.index.Tensor: _index, **{op: _same for op in stores}}


RULES: dict = {}
for _group, _fn in [("pointwise_unary", _same), ("pointwise_binary", _pointwise), ("ternary", _pointwise),
                    ("convert", _same)]:
    for _target in GROUPS[_group]:
        RULES[_target] = _fn
for _target in GROUPS["reductions"]:
    RULES[_target] = _reduce
for _target in GROUPS["scans"]:
    RULES[_target] = _same
RULES.update({
    aten.relu.default: _same, aten.gelu.default: _same, aten.clone.default: _same, aten.alias.default: _same,
    aten.detach.default: _same, aten.view.default: _view, aten.reshape.default: _view,
    aten._unsafe_view.default: _view, aten.permute.default: _permute, aten.expand.default: _expand,
    aten.slice.Tensor: _slice, aten.select.int: _select, aten.unsqueeze.default: _unsqueeze,
    aten.squeeze.dims: _squeeze, aten.squeeze.dim: _squeeze, aten.squeeze.default: _squeeze, aten.cat.default: _cat,
    aten.full.default: _full, aten.arange.start_step: _arange, aten.arange.start: _arange,
    aten.arange.default: _arange, aten.mm.default: _mm, aten.bmm.default: _bmm, aten.addmm.default: _addmm,
    aten.embedding.default: _embedding, aten.scaled_dot_product_attention.default: _sdpa,
    aten.sum.default: _reduce, aten.mean.dim: _reduce, aten.mean.default: _reduce, aten.prod.default: _reduce,
    aten.any.default: _reduce, aten.all.default: _reduce, aten.pow.Scalar: _pointwise,
    aten.add.Scalar: _pointwise, aten.sub.Scalar: _pointwise, aten.mul.Scalar: _pointwise,
    aten.div.Scalar: _pointwise, aten.div.Scalar_mode: _pointwise, aten.remainder.Scalar: _pointwise,
})
RULES.update(_indexing_rules())
del _group, _fn, _target

"""One-hot selection sums become gathers: `sum(where(arange(C) == idx, v, 0), d)` is `v` read at `idx`.

The loss decompositions pick each row's target value this way (decompositions_losses.py: no gather, and autograd
derives softmax minus one-hot from it). Computed as written, it is a third pass over a logits-sized tensor after
the max and the sum of exponentials: the cross entropy of 2048 x 32768 floats read the logits three times. Every
term but one is a zero, so the sum is the one selected value, and that value is v's expression evaluated at the
index: the gather is pushed through v's pointwise ops down to the tensors that vary along d, and each of those is
read at one place per row.

Exactly eager's values: the sum of zeros and one value x is x, except that -0.0 + 0.0 is +0.0 (so the picked
value gets `+ 0.0`), and an index outside [0, C) matches nothing (so it gives 0).

Between the sum and the `where` may sit unary ops that keep a zero a zero (a negation, casts between floating
dtypes: `sum(neg(float(bf16(where(...)))))` is the cross entropy's gradient under autocast, summed for the
softmax's backward); the picked value goes through them, and their zeros of either sign still sum to +0.0. The
`where` and the ops between may have other readers (that gradient is also read by the softmax's backward): they
stay for those, the sum's pass goes. With in-place ops in the graph the picked value is read where the `where`
reads its operands, and only a `where` no other node reads qualifies.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from framejit.graph.builder import Builder
from framejit.graph.core_ops import CONVERT, POINTWISE_BINARY, POINTWISE_UNARY, TERNARY
from framejit.graph.effects import has_mutation
from framejit.graph.shape_prop import meta_tensor
from framejit.graph.symbolic_shapes import is_dynamic

aten = torch.ops.aten
_ELEMENTWISE = POINTWISE_UNARY | POINTWISE_BINARY | TERNARY | CONVERT
_SHAPE_ONLY = {aten.view.default, aten.unsqueeze.default, aten.expand.default}


def _aligned(shape: tuple, ndim: int) -> tuple:
    """`shape` right-aligned to `ndim` dims, as broadcasting reads it."""
    return (1,) * (ndim - len(shape)) + tuple(shape)


def _is_iota(x: Any, shape: tuple, dim: int) -> bool:
    """x holds 0, 1, ..., C-1 along `dim` and is constant along every other dim of `shape`."""
    t = meta_tensor(x)
    if t is None or t.dim() > len(shape):
        return False
    size = _aligned(tuple(t.shape), len(shape))
    if size[dim] != shape[dim] or any(s != 1 for i, s in enumerate(size) if i != dim):
        return False
    while x.target in _SHAPE_ONLY:  # views that only add or spread dims of size 1
        x = x.args[0]
    return (x.op == "call_function" and x.target == aten.arange.start_step  # the step may be left to its default
            and tuple(x.args) in ((0, shape[dim], 1), (0, shape[dim])) and meta_tensor(x).dim() == 1)


def _index_operand(x: Any, shape: tuple, dim: int) -> bool:
    """x is an integer tensor constant along `dim` (size 1 there, or fewer dims)."""
    t = meta_tensor(x)
    if t is None or t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        return False
    return t.dim() <= len(shape) and _aligned(tuple(t.shape), len(shape))[dim] == 1


def _keeps_zero(node: fx.Node) -> bool:
    """node maps a floating zero to a zero (of either sign): a negation or a cast between floating dtypes."""
    if node.op != "call_function" or len(node.args) != 1:
        return False
    if node.target is aten.neg.default:
        return not node.kwargs
    t = meta_tensor(node)
    return (node.target in CONVERT and set(node.kwargs) <= {"dtype"} and t is not None
            and t.dtype.is_floating_point)


def _match(node: fx.Node, mutation: bool) -> tuple | None:
    """(value, index, dim, keepdim, between, select) of a selection sum, or None: `between` the unary ops from the
    `where` (`select`) up to the sum, innermost first."""
    if any(v is not None for v in node.kwargs.values()) or len(node.args) < 2 or len(node.args[1]) != 1:
        return None
    select, between = node.args[0], []
    while isinstance(select, fx.Node) and _keeps_zero(select) and not (mutation and len(select.users) != 1):
        between.append(select)
        select = select.args[0]
    between.reverse()
    if not (isinstance(select, fx.Node) and select.target == aten.where.self):
        return None
    if mutation and len(select.users) != 1:
        return None
    cond, value, zero = select.args
    out, v = meta_tensor(select), meta_tensor(value)
    top = meta_tensor(between[-1]) if between else v
    if out is None or v is None or not v.dtype.is_floating_point or meta_tensor(node).dtype != top.dtype:
        return None
    z = meta_tensor(zero)
    if not (isinstance(zero, fx.Node) and zero.target == aten.full.default and z is not None and z.dim() == 0
            and zero.args[1] == 0):
        return None
    shape, dim = tuple(out.shape), node.args[1][0] % out.dim()
    if not (isinstance(cond, fx.Node) and cond.target == aten.eq.Tensor and tuple(meta_tensor(cond).shape) == shape):
        return None
    a, b = cond.args
    for iota, index in ((a, b), (b, a)):
        if _is_iota(iota, shape, dim) and _index_operand(index, shape, dim):
            keepdim = node.args[2] if len(node.args) > 2 else False
            return value, index, dim, keepdim, between, select
    return None


class _Picker:
    """Builds `value` read at `index` along `dim`: pointwise ops are rebuilt over their operands read there;
    operands constant along `dim` are used as they are; anything else is gathered."""

    def __init__(self, b: Builder, index: fx.Node, shape: tuple, dim: int):
        self.b, self.index, self.shape, self.dim = b, index, shape, dim
        self.done: dict[fx.Node, Any] = {}

    def __call__(self, x: Any) -> Any:
        if not isinstance(x, fx.Node):
            return x
        if x not in self.done:
            self.done[x] = self._pick(x)
        return self.done[x]

    def _pick(self, x: fx.Node) -> Any:
        t = meta_tensor(x)
        ndim = len(self.shape)
        if t is not None and t.dim() <= ndim and _aligned(tuple(t.shape), ndim)[self.dim] == 1:
            return x  # the same at every position along dim
        if x.op == "call_function" and x.target in _ELEMENTWISE:
            args = fx.node.map_arg(x.args, self)
            return self.b.op(x.target, *args, **x.kwargs)
        full = x
        if t.dim() < ndim:
            full = self.b.op(aten.view.default, full, list(_aligned(tuple(t.shape), ndim)))
        if tuple(t.shape) != self.shape:
            full = self.b.op(aten.expand.default, full, list(self.shape))
        return self.b.op(aten.gather.default, full, self.dim, self.index)


def pick_selected_values(gm: fx.GraphModule) -> bool:
    """Rewrite every one-hot selection sum in gm (module docstring). Returns changed."""
    graph = gm.graph
    if is_dynamic(gm):
        return False
    mutation, changed = has_mutation(graph), False
    for node in list(graph.find_nodes(op="call_function", target=aten.sum.dim_IntList)):
        found = _match(node, mutation)
        if found is None:
            continue
        b = Builder(graph)
        try:
            result = _rewrite(b, node, *found)
        except (RuntimeError, TypeError, IndexError, ValueError):  # a meta kernel rejects a node made here
            b.undo()
            continue
        if meta_tensor(result).shape != meta_tensor(node).shape or meta_tensor(result).dtype != meta_tensor(node).dtype:
            b.undo()
            continue
        node.replace_all_uses_with(result)
        graph.erase_node(node)
        changed = True
    return changed


def _rewrite(b: Builder, node: fx.Node, value: fx.Node, index: fx.Node, dim: int, keepdim: bool,
             between: list, select: fx.Node) -> fx.Node:
    """The picked value replacing selection sum `node` (see the module docstring), built right after the `where`
    (its operands read where it reads them)."""
    graph = node.graph
    shape = tuple(meta_tensor(select).shape)
    picked_shape = list(shape)
    picked_shape[dim] = 1
    with graph.inserting_before(select.next):
        idx = index
        if meta_tensor(idx).dim() < len(shape):
            idx = b.op(aten.view.default, idx, list(_aligned(tuple(meta_tensor(idx).shape), len(shape))))
        if list(meta_tensor(idx).shape) != picked_shape:
            idx = b.op(aten.expand.default, idx, picked_shape)
        inside = b.op(aten.logical_and.default, b.op(aten.ge.Scalar, idx, 0),
                      b.op(aten.lt.Scalar, idx, shape[dim]))
        zero = b.op(aten.full.default, [], 0, dtype=meta_tensor(idx).dtype)
        safe = b.op(aten.where.self, inside, idx, zero)
        picked = _Picker(b, safe, shape, dim)(value)
        for op in between:
            picked = b.op(op.target, picked, **op.kwargs)
        picked = b.op(aten.add.Tensor, picked, 0.0)  # -0.0 picked: the sum with zeros gives +0.0
        nothing = b.op(aten.full.default, [], 0, dtype=meta_tensor(node).dtype)
        result = b.op(aten.where.self, inside, picked, nothing)
        if not keepdim:
            result = b.op(aten.squeeze.dims, result, [dim])
    return result

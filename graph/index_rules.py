"""Decomposition rules of the indexing ops (issue 20): gather, index_select, x[idx], scatter / scatter_add /
scatter_reduce(sum), index_add, index_put. Registered into graph/decompositions.py's table (its own module to keep
that one small).

Every rule puts `check_index` (graph/index_checks.py) in front of its index operand: the check raises what eager
raises for an index out of range, and hands the indexed op indices in [0, size), so the code generators never
read or write outside a buffer and never wrap a negative index themselves. What a rule cannot spell (several index
tensors, in-place forms, a reduce other than sum) stays a call eager torch runs."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from framejit.graph.builder import Builder, Decline
from framejit.graph.decompositions import rule
from framejit.graph.index_checks import CHECK_INDEX
from framejit.graph.symbolic_shapes import slice_bounds

aten = torch.ops.aten
INDEX_DTYPES = (torch.int64, torch.int32)


def checked(b: Builder, x: Any, dim: int, index: Any, wrap: bool, kind: str, dtypes=INDEX_DTYPES,
            shown: int | None = None) -> Any:
    """`index` for dim `dim` of `x`, checked against its size (eager's exception for `kind` when out of range,
    naming dimension `shown`, by default `dim`)."""
    if b.tensor(index).dtype not in dtypes:
        raise Decline("an index tensor of another dtype")
    return b.op(CHECK_INDEX, index, b.size(x)[dim], dim if shown is None else shown, wrap, kind)


def _dim(b: Builder, x: Any, dim: int) -> int:
    ndim = b.tensor(x).dim()
    if ndim == 0:
        raise Decline("indexing a 0-d tensor")
    return dim % ndim


@rule(torch.gather, "gather")
def _gather(b: Builder, x: Any, dim: int, index: Any, *, sparse_grad: bool = False) -> Any:
    if sparse_grad or b.tensor(index).dim() != b.tensor(x).dim():
        raise Decline("sparse or 0-d gather")
    dim = _dim(b, x, dim)
    return b.op(aten.gather.default, x, dim, checked(b, x, dim, index, False, "bounds", (torch.int64,)))


@rule(torch.index_select, "index_select")
def _index_select(b: Builder, x: Any, dim: int, index: Any) -> Any:
    if b.tensor(index).dim() > 1:
        raise Decline("index_select with a matrix of indices")
    dim = _dim(b, x, dim)
    return b.op(aten.index_select.default, x, dim, checked(b, x, dim, index, False, "self"))


def getitem_tensor(b: Builder, x: Any, items: list) -> Any:
    """x[..., idx, ...]: slices (and an Ellipsis) around one integer index tensor, as the basic slicing then one
    `index.Tensor` over the index's dim. Integers and None beside a tensor place the result's dims by NumPy's
    rules, bool masks have sizes that depend on values: those stay eager's."""
    tensors = [i for i, item in enumerate(items) if isinstance(item, fx.Node)]
    if len(tensors) != 1 or any(not (isinstance(item, slice) or item is Ellipsis)
                                for i, item in enumerate(items) if i != tensors[0]):
        raise Decline("advanced indexing beyond one index tensor among slices")
    meta = b.tensor(x)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + [slice(None)] * (meta.dim() - len(items) + 1) + items[at + 1:]
    if len(items) > meta.dim():
        raise Decline("too many indices")
    out = x
    for dim, item in enumerate(items):
        if isinstance(item, slice) and item != slice(None):
            if item.step is not None and item.step <= 0:
                raise Decline("non-positive slice step")
            start, stop, step = slice_bounds(item, b.size(out)[dim])
            out = b.op(aten.slice.Tensor, out, dim, start, max(start, stop), step)
    k = tensors[0]
    index = checked(b, out, k, items[k], True, "getitem", shown=0)  # eager names the index tensor's position
    return b.op(aten.index.Tensor, out, [None] * k + [index])


def _one_index(indices: Any) -> int:
    """Position of the one index tensor in index_put's list (the others None), or Decline."""
    found = [i for i, t in enumerate(indices) if t is not None]
    if len(found) != 1 or not isinstance(indices[found[0]], fx.Node):
        raise Decline("index_put with several index tensors")
    return found[0]


@rule(torch.index_put, "index_put")
def _index_put(b: Builder, x: Any, indices: Any, values: Any, accumulate: bool = False) -> Any:
    k = _one_index(indices)
    if k >= b.tensor(x).dim():
        raise Decline("too many indices")
    index = checked(b, x, k, indices[k], True, "getitem", shown=0)
    return b.op(aten.index_put.default, x, [None] * k + [index], values, accumulate)


def _same_dtype(b: Builder, x: Any, src: Any) -> None:
    if isinstance(b.val(src), torch.Tensor) and b.tensor(src).dtype != b.tensor(x).dtype:
        raise Decline("a source of another dtype")  # eager raises: it runs there


@rule(torch.scatter_add, "scatter_add")
def _scatter_add(b: Builder, x: Any, dim: int, index: Any, src: Any) -> Any:
    _same_dtype(b, x, src)
    if b.tensor(index).dim() != b.tensor(x).dim():
        raise Decline("0-d scatter")
    dim = _dim(b, x, dim)
    return b.op(aten.scatter_add.default, x, dim, checked(b, x, dim, index, False, "bounds", (torch.int64,)), src)


@rule(torch.scatter, "scatter")
def _scatter(b: Builder, x: Any, dim: int, index: Any, src: Any = None, *, value: Any = None,
             reduce: Any = None) -> Any:
    if reduce is not None:
        raise Decline("scatter with reduce=")  # deprecated spelling; scatter_reduce is the lowered one
    if src is None:
        src = value
    _same_dtype(b, x, src)
    if b.tensor(index).dim() != b.tensor(x).dim():
        raise Decline("0-d scatter")
    dim = _dim(b, x, dim)
    index = checked(b, x, dim, index, False, "bounds", (torch.int64,))
    if isinstance(b.val(src), torch.Tensor):
        return b.op(aten.scatter.src, x, dim, index, src)
    return b.op(aten.scatter.value, x, dim, index, src)


@rule(torch.scatter_reduce, "scatter_reduce")
def _scatter_reduce(b: Builder, x: Any, dim: int, index: Any, src: Any, reduce: str, *,
                    include_self: bool = True) -> Any:
    if reduce != "sum" or not include_self:
        raise Decline("scatter_reduce other than a sum including self")
    return _scatter_add(b, x, dim, index, src)


@rule(torch.index_add, "index_add")
def _index_add(b: Builder, x: Any, dim: int, index: Any, source: Any, *, alpha: Any = 1) -> Any:
    _same_dtype(b, x, source)
    if b.tensor(index).dim() > 1:
        raise Decline("index_add with a matrix of indices")
    dim = _dim(b, x, dim)
    index = checked(b, x, dim, index, False, "bounds")
    return b.op(aten.index_add.default, x, dim, index, source, alpha=alpha)

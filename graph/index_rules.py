"""Decomposition rules of the indexing ops (issue 20): gather, index_select, x[idx], scatter / scatter_add /
scatter_reduce(sum), index_add, index_put, and flip / roll (reads at moved indices). Registered into
graph/decompositions.py's table (its own module to keep that one small).

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
from framejit.graph.symbolic_sizes import concrete

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


# ---- flip and roll: reads at moved indices, so they fuse into their neighbours' kernels -------------------------
def _flip_dims(b: Builder, x: Any, dims: Any) -> list:
    """flip's dims made non-negative; Decline where eager raises (duplicates, out of range, a 0-d tensor)."""
    ndim = b.tensor(x).dim()
    dims = [dims] if isinstance(dims, int) else list(dims)
    if ndim == 0 or not all(isinstance(d, int) and -ndim <= d < ndim for d in dims) or \
            len({d % ndim for d in dims}) != len(dims):
        raise Decline("flip of a 0-d tensor or with dims eager rejects")
    return [d % ndim for d in dims]


def _reversed(b: Builder, x: Any, dims: list) -> Any:
    """x with each of `dims` read backwards: an index_select by a descending arange, in range by construction
    (no check), which the code generators fuse as a load at `n - 1 - i`."""
    if b.device is None:
        raise Decline("the reversed indices must be made on the inputs' device, which is unknown")
    out = x
    for d in dims:
        n = concrete(b.size(x)[d], "flip reads its dim backwards from its last index")
        out = b.op(aten.index_select.default, out, d,
                   b.op(aten.arange.start_step, n - 1, -1, -1, dtype=torch.int64, device=b.device))
    return out if dims else b.op(aten.clone.default, x)


@rule(torch.flip, "flip")
def _flip(b: Builder, x: Any, *dims: Any) -> Any:
    return _reversed(b, x, _flip_dims(b, x, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims))


@rule(torch.fliplr, "fliplr")
def _fliplr(b: Builder, x: Any) -> Any:
    if b.tensor(x).dim() < 2:
        raise Decline("fliplr of fewer than 2 dims (eager raises)")
    return _reversed(b, x, [1])


@rule(torch.flipud, "flipud")
def _flipud(b: Builder, x: Any) -> Any:
    if b.tensor(x).dim() < 1:
        raise Decline("flipud of a 0-d tensor (eager raises)")
    return _reversed(b, x, [0])


@rule(torch.roll, "roll")
def _roll(b: Builder, x: Any, shifts: Any, dims: Any = None) -> Any:
    """Each rolled dim as cat(x[n - s:], x[:n - s]) (views and a cat, fused into one read); dims=None rolls the
    flattened tensor and views it back, as eager does."""
    shifts = [shifts] if isinstance(shifts, int) else list(shifts)
    meta = b.tensor(x)
    if dims is None:
        if len(shifts) != 1 or meta.dim() == 0:
            raise Decline("roll of a 0-d tensor or several shifts without dims")
        flat = b.op(aten.view.default, b.op(aten.clone.default, x, memory_format=torch.contiguous_format), [-1])
        return b.op(aten.view.default, _roll(b, flat, shifts, [0]), list(b.size(x)))
    dims = [dims] if isinstance(dims, int) else list(dims)
    if meta.dim() == 0 or len(dims) != len(shifts) or not all(isinstance(s, int) for s in shifts) or \
            not all(isinstance(d, int) and -meta.dim() <= d < meta.dim() for d in dims):
        raise Decline("roll with shifts and dims eager rejects or that are not numbers")
    out = x
    for s, d in zip(shifts, dims):
        d %= meta.dim()
        n = concrete(b.size(x)[d], "roll cuts its dim at the shift")
        s = s % n if n else 0
        if s:
            out = b.op(aten.cat.default, [b.op(aten.slice.Tensor, out, d, n - s, n, 1),
                                          b.op(aten.slice.Tensor, out, d, 0, n - s, 1)], d)
    return out if out is not x else b.op(aten.clone.default, x)

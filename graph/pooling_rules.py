"""Decomposition rules of 2-D pooling (issue 20): max_pool2d (with and without indices), avg_pool2d and
adaptive_avg_pool2d, spelled as core ops over the kh * kw strided slices of the (padded) input, one per window
offset, so the pool fuses with the convolution epilogue before it and whatever reads it.

max_pool2d is a chain of `where((v > best) | isnan(v), v, best)` from the first offset, offsets in row-major order:
exactly eager's CPU kernel (`val > maxval || isnan(val)`), which keeps the first of equal maxima and the last NaN;
autograd through the chain routes each gradient to that one element, as max_pool2d's backward does through its
indices (a chain of `maximum` would split it between ties). avg_pool2d sums the offsets in the same order, in
float32 for half types, rounded once (large windows tiling the plane as one reduction over a (..., oh, kh, ow, kw)
view); adaptive sizes that do not divide the input as the mean of each bin.
ceil_mode and count_include_pad=False with padding stay eager's."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from framejit.graph.builder import Builder, Decline
from framejit.graph.decompositions import _cast, _mean, _opmath, rule

aten = torch.ops.aten


def _pair(v: Any, default: Any = None) -> tuple:
    if v is None:
        return default
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    if len(v) == 1:
        return (v[0], v[0])
    if len(v) != 2 or not all(isinstance(n, int) for n in v):
        raise Decline("pooling parameters that are not int pairs")
    return v


def _geometry(b: Builder, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any) -> tuple:
    """(kernel, stride, padding, dilation, output (h, w)) of a pooling without ceil_mode."""
    meta = b.tensor(x)
    if meta.dim() not in (3, 4):
        raise Decline("pooling of an input that is not (N, )C, H, W")
    k = _pair(kernel_size)
    s = _pair(stride, k) if stride not in ((), []) else k
    p, d = _pair(padding), _pair(dilation)
    h, w = b.size(x)[-2:]
    out = tuple((n + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate((h, w)))
    if any(o <= 0 for o in out) or any(2 * p[i] > k[i] for i in range(2)):
        raise Decline("pooling sizes eager rejects")
    return k, s, p, d, out


def _pad(b: Builder, x: Any, p: tuple, value: float) -> Any:
    """x with `p` rows / columns of `value` on each side of its last two dims (cat with constant blocks)."""
    dtype = b.tensor(x).dtype
    for axis, n in ((-2, p[0]), (-1, p[1])):
        if n:
            shape = list(b.size(x))
            shape[axis] = n
            block = b.op(aten.full.default, shape, value, dtype=dtype)
            x = b.op(aten.cat.default, [block, x, block], b.tensor(x).dim() + axis)
    return x


def _windows(b: Builder, x: Any, k: tuple, s: tuple, d: tuple, out: tuple):
    """(i, j, the strided slice of x holding offset (i, j) of every window), row-major."""
    ndim = b.tensor(x).dim()
    for i in range(k[0]):
        rows = b.op(aten.slice.Tensor, x, ndim - 2, i * d[0], i * d[0] + (out[0] - 1) * s[0] + 1, s[0])
        for j in range(k[1]):
            yield i, j, b.op(aten.slice.Tensor, rows, ndim - 1, j * d[1], j * d[1] + (out[1] - 1) * s[1] + 1, s[1])


def _positions(b: Builder, x: Any, i: int, j: int, k, s, p, d, out) -> Any:
    """The flat index into the unpadded (H, W) plane of offset (i, j) of each window: max_pool2d's indices."""
    width = b.size(x)[-1]
    rows = b.op(aten.arange.start_step, i * d[0] - p[0], i * d[0] - p[0] + out[0] * s[0], s[0], dtype=torch.int64)
    cols = b.op(aten.arange.start_step, j * d[1] - p[1], j * d[1] - p[1] + out[1] * s[1], s[1], dtype=torch.int64)
    rows = b.op(aten.mul.Tensor, b.op(aten.unsqueeze.default, rows, 1), width)
    return b.op(aten.add.Tensor, rows, cols)


def _max_pool(b: Builder, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
              return_indices: bool) -> Any:
    if ceil_mode:
        raise Decline("max_pool2d with ceil_mode")
    meta = b.tensor(x)
    if not meta.dtype.is_floating_point:
        raise Decline("max_pool2d of an integer tensor")
    k, s, p, d, out = _geometry(b, x, kernel_size, stride, padding, dilation)
    if return_indices and any(p):
        raise Decline("max_pool2d indices with padding")  # eager's first index is the window's first real one
    full = list(b.size(x)[:-2]) + list(out)
    planes = None if return_indices else _planes(b, x)
    if planes is not None:  # (N, C) as one dim: a kernel decodes three coordinates per element, not four
        x = b.op(aten.view.default, x, planes)
    best = index = None
    for i, j, v in _windows(b, _pad(b, x, p, float("-inf")), k, s, d, out):
        at = _positions(b, x, i, j, k, s, p, d, out) if return_indices else None
        if best is None:  # the chain's first step from -inf takes v whatever it is (a copy: never x's memory)
            best, index = (v if k[0] * k[1] > 1 else b.op(aten.clone.default, v)), at
            continue
        take = b.op(aten.logical_or.default, b.op(aten.gt.Tensor, v, best), b.op(aten.isnan.default, v))
        best = b.op(aten.where.self, take, v, best)
        if return_indices:
            index = b.op(aten.where.self, take, at, index)
    if planes is not None:
        best = b.op(aten.view.default, best, full)
    if return_indices:
        return best, b.op(aten.expand.default, index, full)
    return best


def _planes(b: Builder, x: Any) -> list | None:
    """[N * C, H, W] for a contiguous (N, C, H, W) input of static sizes, else None."""
    meta = b.tensor(x)
    sizes = b.size(x)
    if meta.dim() != 4 or not meta.is_contiguous() or not all(type(n) is int for n in sizes):
        return None
    return [sizes[0] * sizes[1], sizes[2], sizes[3]]


@rule(F.max_pool2d, F._max_pool2d, torch.max_pool2d)
def _max_pool2d(b: Builder, x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                ceil_mode: bool = False, return_indices: bool = False) -> Any:
    return _max_pool(b, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@rule(F.max_pool2d_with_indices)
def _max_pool2d_with_indices(b: Builder, x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
                             dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = True) -> Any:
    return _max_pool(b, x, kernel_size, stride, padding, dilation, ceil_mode, True)


# windows of at least this many elements are summed as a reduction (above); smaller ones (avg_pool2d(2)) as a sum
# of strided slices, whose rows of a few elements would make a reduction tile of a few hundred elements
WINDOW_REDUCTION = 16


def _avg_pool(b: Builder, x: Any, k: tuple, s: tuple, p: tuple, out: tuple, divisor: Any) -> Any:
    y, dtype = _opmath(b, x)
    lead, (h, w) = list(b.size(y)[:-2]), b.size(y)[-2:]
    if s == k and not any(p) and k[0] * k[1] >= WINDOW_REDUCTION and all(isinstance(n, int) for n in (h, w)) and \
            (h, w) == (out[0] * k[0], out[1] * k[1]):
        # large windows tiling the plane (an adaptive pool whose size divides the input's: 56x56 to 7x7): one sum
        # over (kh, kw) of the (..., oh, kh, ow, kw) view, a reduction reading every element once in runs of kw,
        # where kh * kw strided slices would each read one element per window per load
        tiles = b.op(aten.view.default, y, lead + [out[0], k[0], out[1], k[1]])
        total = b.op(aten.sum.dim_IntList, tiles, [len(lead) + 1, len(lead) + 3])
        return _cast(b, b.op(aten.div.Tensor, total, divisor), dtype)
    total = None
    for _, _, v in _windows(b, _pad(b, y, p, 0.0), k, s, (1, 1), out):
        total = v if total is None else b.op(aten.add.Tensor, total, v)
    return _cast(b, b.op(aten.div.Tensor, total, divisor), dtype)


@rule(F.avg_pool2d, torch._C._nn.avg_pool2d)
def _avg_pool2d(b: Builder, x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                count_include_pad: bool = True, divisor_override: Any = None) -> Any:
    if ceil_mode or not b.tensor(x).dtype.is_floating_point:
        raise Decline("avg_pool2d with ceil_mode or of an integer tensor")
    k, s, p, _, out = _geometry(b, x, kernel_size, stride, padding, 1)
    if any(p) and not count_include_pad and divisor_override is None:
        raise Decline("avg_pool2d not counting its padding")
    return _avg_pool(b, x, k, s, p, out, divisor_override or k[0] * k[1])


@rule(F.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool2d)
def _adaptive_avg_pool2d(b: Builder, x: Any, output_size: Any) -> Any:
    meta = b.tensor(x)
    if meta.dim() not in (3, 4) or not meta.dtype.is_floating_point:
        raise Decline("adaptive_avg_pool2d of an input that is not (N, )C, H, W floats")
    h, w = b.size(x)[-2:]
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    oh, ow = (h if size[0] is None else size[0]), (w if size[1] is None else size[1])
    if (oh, ow) == (1, 1):  # torchvision's global pool: a mean over the plane, accumulated as eager's in float32
        y, dtype = _opmath(b, x)
        return _cast(b, _mean(b, y, [-2, -1], True), dtype)
    if h % oh == 0 and w % ow == 0:
        k = (h // oh, w // ow)
        return _avg_pool(b, x, k, k, (0, 0), (oh, ow), k[0] * k[1])
    # windows of different sizes (eager's bin i covers [floor(i * n / o), ceil((i + 1) * n / o))): the mean of
    # each band of rows, then of each band of columns of those, each bin a slice (a rectangle's mean either way)
    y, dtype = _opmath(b, x)
    for axis, n, o in ((-2, h, oh), (-1, w, ow)):
        if not all(isinstance(v, int) for v in (n, o)):
            raise Decline("adaptive_avg_pool2d with uneven windows over dynamic sizes")
        dim = b.tensor(y).dim() + axis
        bands = [_mean(b, b.op(aten.slice.Tensor, y, dim, i * n // o, -(-(i + 1) * n // o), 1), [dim], True)
                 for i in range(o)]
        y = bands[0] if o == 1 else b.op(aten.cat.default, bands, dim)
    return _cast(b, y, dtype)

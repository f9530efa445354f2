"""Pointwise composites that torch runs as one kernel: lerp, addcmul, addcdiv (the update ops of torch.optim's
Adam, AdamW, RMSprop, Adagrad). Registered into `graph.decompositions` (imported at its end), in the same rule form.

Each rule spells eager's kernel: the same operation order, computed in the op-math type (float32 for float16 /
bfloat16) and rounded once. lerp picks its formula by the weight, as ATen's does: `start + w * (end - start)`
where |w| < 0.5, else `end - (end - start) * (1 - w)`, which is exact at w = 1. ATen's kernels end in a fused
multiply-add (the vectorized CPU code's fmadd, nvcc's contraction): for float32 the last multiply and add are
computed in float64 and rounded once, which is what the fused one gives (the product of two floats is exact in a
double); in float64 they round twice, a last-bit difference from eager's."""
from __future__ import annotations

from typing import Any

import torch

from framejit.graph.builder import Builder, Decline
from framejit.graph.decompositions import rule
from framejit.graph.opmath import cast as _cast, fused_multiply_add as _fused_multiply_add, opmath as _opmath, \
    opmath_scalar as _opmath_scalar

aten = torch.ops.aten


def _same_float_tensors(b: Builder, *xs: Any) -> torch.dtype:
    dtypes = {b.tensor(x).dtype for x in xs}
    if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
        raise Decline("operands of different dtypes, or not floating")
    return dtypes.pop()


def _in_opmath(b: Builder, x: Any) -> Any:
    return _opmath(b, x)[0]


@rule(torch.addcmul, "addcmul")
def _addcmul(b: Builder, x: Any, t1: Any, t2: Any, value: Any = 1) -> Any:
    return _scaled(b, x, t1, t2, value, aten.mul.Tensor)


@rule(torch.addcdiv, "addcdiv")
def _addcdiv(b: Builder, x: Any, t1: Any, t2: Any, value: Any = 1) -> Any:
    return _scaled(b, x, t1, t2, value, aten.div.Tensor)


def _scaled(b: Builder, x: Any, t1: Any, t2: Any, value: Any, combine: Any) -> Any:
    """x + value * t1 (combine) t2, in that order (ATen's addcmul / addcdiv CPU kernels)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Decline("value is not a Python number")
    dtype = _same_float_tensors(b, x, t1, t2)
    out = b.tensor(x).shape
    if torch.broadcast_shapes(out, b.tensor(t1).shape, b.tensor(t2).shape) != out:
        raise Decline("the products broadcast beyond self")
    _, rounded = _opmath(b, x)
    x, t1, t2 = (_in_opmath(b, v) for v in (x, t1, t2))
    scaled = b.op(aten.mul.Tensor, t1, _opmath_scalar(value, dtype))
    if combine == aten.mul.Tensor:
        return _cast(b, _fused_multiply_add(b, scaled, t2, x, dtype), rounded)
    return _cast(b, b.op(aten.add.Tensor, x, b.op(combine, scaled, t2)), rounded)


@rule(torch.lerp, "lerp")
def _lerp(b: Builder, start: Any, end: Any, weight: Any) -> Any:
    dtype = _same_float_tensors(b, start, end)
    if b.tensor(start).shape != b.tensor(end).shape:
        raise Decline("lerp operands broadcast")
    _, rounded = _opmath(b, start)
    start, end = _in_opmath(b, start), _in_opmath(b, end)
    diff = b.op(aten.sub.Tensor, end, start)
    if isinstance(weight, (int, float)) and not isinstance(weight, bool):
        w = _opmath_scalar(weight, dtype)
        if abs(w) < 0.5:
            return _cast(b, _fused_multiply_add(b, diff, w, start, dtype), rounded)
        # end + (w - 1) * diff, the coefficient rounded as the kernel's own subtraction rounds it
        return _cast(b, _fused_multiply_add(b, diff, _opmath_scalar(w - 1, dtype), end, dtype), rounded)
    if _same_float_tensors(b, weight) != dtype or b.tensor(weight).dim() and b.tensor(weight).shape != b.tensor(end).shape:
        raise Decline("a tensor weight of another dtype or shape")
    w = _in_opmath(b, weight)
    small = b.op(aten.lt.Scalar, b.op(aten.abs.default, w), 0.5)
    coeff = b.op(aten.where.self, small, w, b.op(aten.sub.Tensor, w, 1))
    base = b.op(aten.where.self, small, start, end)
    return _cast(b, _fused_multiply_add(b, coeff, diff, base, dtype), rounded)

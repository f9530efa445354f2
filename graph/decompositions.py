"""The decomposition table: each torch-level callable (function, Tensor method name, operator.*) mapped to a
small function that rebuilds it from core ops (`graph.core_ops`).

A rule gets a `Builder` and the node's own args/kwargs (Nodes or constants), returns the node holding the result,
and raises `Decline` when its preconditions fail (the call then stays and runs in eager torch). `normalize`
also checks each result's shape and dtype against the original call, so a wrong rule cannot slip through silently.
Keys: a callable (torch.add, F.gelu, operator.add) for call_function, a string (method name) for call_method.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F

from framejit.graph.builder import Builder, Decline
from framejit.graph.opmath import cast as _cast, fused_multiply_add as _fused_multiply_add, opmath as _opmath, \
    opmath_scalar as _opmath_scalar
from framejit.graph.index_checks import CHECK_INDEX
from framejit.graph.symbolic_shapes import broadcast_shapes, expand_shape, slice_bounds, view_shape
from framejit.graph.symbolic_sizes import concrete

aten = torch.ops.aten
Rule = Callable[..., Any]
DECOMPOSITIONS: dict[Any, Rule] = {}


def rule(*keys: Any) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for key in keys:
            DECOMPOSITIONS[key] = fn
        return fn
    return register


def _dims(dim: Any, ndim: int) -> list[int]:
    """A dim argument (int, list, None = all) as a sorted list of non-negative dims."""
    if dim is None:
        return list(range(ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return sorted(d % max(ndim, 1) for d in dims)


def _shape_args(shape: tuple) -> list:
    """view(2, 3) and view((2, 3)) spell the same shape."""
    return list(shape[0]) if len(shape) == 1 and isinstance(shape[0], (list, tuple, torch.Size)) else list(shape)


# ---- pointwise: one aten op each --------------------------------------------------------------------------
_UNARY = {
    aten.abs.default: (torch.abs, operator.abs, "abs", "__abs__"),
    aten.neg.default: (torch.neg, operator.neg, "neg", "__neg__", torch.negative),
    aten.exp.default: (torch.exp, "exp"), aten.log.default: (torch.log, "log"),
    aten.log1p.default: (torch.log1p, "log1p"), aten.expm1.default: (torch.expm1, "expm1"),
    aten.sqrt.default: (torch.sqrt, "sqrt"), aten.rsqrt.default: (torch.rsqrt, "rsqrt"),
    aten.reciprocal.default: (torch.reciprocal, "reciprocal"), aten.sin.default: (torch.sin, "sin"),
    aten.cos.default: (torch.cos, "cos"), aten.tanh.default: (torch.tanh, F.tanh, "tanh"),
    aten.sigmoid.default: (torch.sigmoid, F.sigmoid, "sigmoid"), aten.erf.default: (torch.erf, "erf"),
    aten.floor.default: (torch.floor, "floor"), aten.ceil.default: (torch.ceil, "ceil"),
    aten.trunc.default: (torch.trunc, "trunc"), aten.sign.default: (torch.sign, "sign"),
    aten.logical_not.default: (torch.logical_not, "logical_not"),
    aten.bitwise_not.default: (torch.bitwise_not, operator.invert, "bitwise_not", "__invert__"),
    aten.isnan.default: (torch.isnan, "isnan"),
}


def _unary(target: Any) -> Rule:
    def build(b: Builder, x: Any) -> Any:
        b.tensor(x)
        return b.op(target, x)
    return build


for _target, _keys in _UNARY.items():
    rule(*_keys)(_unary(_target))


@rule(torch.round, "round")
def _round(b: Builder, x: Any, decimals: int = 0) -> Any:
    if decimals:
        raise Decline("round with decimals")
    b.tensor(x)
    return b.op(aten.round.default, x)


# (tensor-tensor overload, overload taking a Python scalar second (None: use a 0-d tensor, the aten schema
# rejects scalars), the overload for swapped operands ("same" when commutative, None: 0-d tensor first), keys)
_BINARY = [
    (aten.mul.Tensor, aten.mul.Tensor, "same", (torch.mul, torch.multiply, operator.mul, "mul", "__mul__", "__rmul__")),
    (aten.div.Tensor, aten.div.Tensor, None, (torch.div, torch.true_divide, "div", "__truediv__")),
    (aten.remainder.Tensor, None, None, (torch.remainder, operator.mod, "remainder", "__mod__")),
    (aten.pow.Tensor_Tensor, aten.pow.Tensor_Scalar, None, (torch.pow, operator.pow, "pow", "__pow__")),
    (aten.maximum.default, None, "same", (torch.maximum, "maximum")),
    (aten.minimum.default, None, "same", (torch.minimum, "minimum")),
    (aten.atan2.default, None, None, (torch.atan2, "atan2")),
    (aten.eq.Tensor, aten.eq.Scalar, aten.eq.Scalar, (torch.eq, operator.eq, "eq", "__eq__")),
    (aten.ne.Tensor, aten.ne.Scalar, aten.ne.Scalar, (torch.ne, operator.ne, "ne", "__ne__")),
    (aten.lt.Tensor, aten.lt.Scalar, aten.gt.Scalar, (torch.lt, operator.lt, "lt", "__lt__")),
    (aten.le.Tensor, aten.le.Scalar, aten.ge.Scalar, (torch.le, operator.le, "le", "__le__")),
    (aten.gt.Tensor, aten.gt.Scalar, aten.lt.Scalar, (torch.gt, operator.gt, "gt", "__gt__")),
    (aten.ge.Tensor, aten.ge.Scalar, aten.le.Scalar, (torch.ge, operator.ge, "ge", "__ge__")),
    (aten.logical_and.default, None, "same", (torch.logical_and, "logical_and")),
    (aten.logical_or.default, None, "same", (torch.logical_or, "logical_or")),
    (aten.logical_xor.default, None, "same", (torch.logical_xor, "logical_xor")),
    (aten.bitwise_and.Tensor, None, "same", (torch.bitwise_and, operator.and_, "bitwise_and", "__and__")),
    (aten.bitwise_or.Tensor, None, "same", (torch.bitwise_or, operator.or_, "bitwise_or", "__or__")),
    (aten.bitwise_xor.Tensor, None, "same", (torch.bitwise_xor, operator.xor, "bitwise_xor", "__xor__")),
]


def _binary(tensor_op: Any, scalar_op: Any, swapped: Any) -> Rule:
    def build(b: Builder, x: Any, y: Any) -> Any:
        x_is_tensor = isinstance(b.val(x), torch.Tensor)
        y_is_tensor = isinstance(b.val(y), torch.Tensor)
        if x_is_tensor and y_is_tensor:
            return b.op(tensor_op, x, y)
        if x_is_tensor:
            return b.op(scalar_op, x, y) if scalar_op is not None else b.op(tensor_op, x, b.scalar(y, x))
        if y_is_tensor and swapped == "same":  # commutative: scalar * x == x * scalar
            return b.op(scalar_op, y, x) if scalar_op is not None else b.op(tensor_op, y, b.scalar(x, y))
        if y_is_tensor and swapped is not None:  # 2 < x  ==  x > 2
            return b.op(swapped, y, x)
        if y_is_tensor:
            return b.op(tensor_op, b.scalar(x, y), y)
        raise Decline("no tensor operand")
    return build


for _t, _s, _sw, _keys in _BINARY:
    rule(*_keys)(_binary(_t, _s, _sw))
@rule(operator.truediv)
def _truediv(b: Builder, x: Any, y: Any) -> Any:
    if isinstance(b.val(x), torch.Tensor):
        return _binary(aten.div.Tensor, aten.div.Tensor, None)(b, x, y)
    return _rtruediv(b, y, x)


@rule("__rtruediv__")
def _rtruediv(b: Builder, x: Any, y: Any) -> Any:
    """y / x for a Python number y: Tensor.__rtruediv__ is reciprocal(x) * y in eager, two roundings (torch.div(y, x)
    is one division)."""
    b.tensor(x)
    if isinstance(b.val(y), torch.Tensor):
        return _binary(aten.div.Tensor, None, None)(b, y, x)
    return b.op(aten.mul.Tensor, b.op(aten.reciprocal.default, x), y)


def _float32_pair(b: Builder, x: Any, y: Any) -> bool:
    return all(isinstance(b.val(v), torch.Tensor) and b.val(v).dtype == torch.float32 for v in (x, y))


@rule(torch.add, operator.add, "add", "__add__", "__radd__")
def _add(b: Builder, x: Any, y: Any, alpha: Any = 1) -> Any:
    if alpha != 1 and _float32_pair(b, x, y) and isinstance(alpha, (int, float)):
        # eager's kernel: fma(y, alpha, x), alpha rounded to float32 (torch.optim's `p.add_(g, alpha=-lr)`)
        return _fused_multiply_add(b, y, _opmath_scalar(alpha, torch.float32), x, torch.float32)
    if alpha != 1:
        y = _binary(aten.mul.Tensor, aten.mul.Tensor, "same")(b, y, alpha)
    return _binary(aten.add.Tensor, aten.add.Tensor, "same")(b, x, y)


@rule(torch.sub, torch.subtract, operator.sub, "sub", "__sub__")
def _sub(b: Builder, x: Any, y: Any, alpha: Any = 1) -> Any:
    if alpha != 1 and _float32_pair(b, x, y) and isinstance(alpha, (int, float)):
        return _fused_multiply_add(b, y, -_opmath_scalar(alpha, torch.float32), x, torch.float32)  # add, -alpha
    if alpha != 1:
        y = _binary(aten.mul.Tensor, aten.mul.Tensor, "same")(b, y, alpha)
    if isinstance(b.val(x), torch.Tensor):
        return _binary(aten.sub.Tensor, aten.sub.Tensor, None)(b, x, y)
    # scalar - x: IEEE subtraction is exactly addition of the negation
    return b.op(aten.add.Tensor, b.op(aten.neg.default, y), x)


rule("__rsub__")(lambda b, x, y: _sub(b, y, x))


@rule(operator.floordiv, torch.floor_divide, "__floordiv__", "floor_divide")
def _floordiv(b: Builder, x: Any, y: Any) -> Any:
    if not isinstance(b.val(x), torch.Tensor):
        raise Decline("scalar // tensor")
    return b.op(aten.div.Tensor_mode, x, y, rounding_mode="floor")


@rule(torch.where, "where")
def _where(b: Builder, cond: Any, x: Any, y: Any) -> Any:
    b.tensor(cond)
    x_is_tensor, y_is_tensor = isinstance(b.val(x), torch.Tensor), isinstance(b.val(y), torch.Tensor)
    if not (x_is_tensor or y_is_tensor):
        raise Decline("where of two scalars")
    x = x if x_is_tensor else b.scalar(x, y)
    y = y if y_is_tensor else b.scalar(y, x)
    return b.op(aten.where.self, cond, x, y)


@rule(torch.square, "square")
def _square(b: Builder, x: Any) -> Any:
    if b.tensor(x).dtype == torch.bool:
        raise Decline("square of bool promotes to int64")
    return b.op(aten.mul.Tensor, x, x)


@rule(torch.masked_fill, "masked_fill")
def _masked_fill(b: Builder, x: Any, mask: Any, value: Any) -> Any:
    meta = b.tensor(x)
    if isinstance(b.val(value), torch.Tensor):
        if b.tensor(value).dim() != 0:
            raise Decline("masked_fill with a value that is not 0-d")  # eager raises: it runs there
        # a 0-d tensor value, cast to x's dtype as eager does (masked_fill(mask, t[i, j]) in attention code)
        fill = _cast(b, value, None if b.tensor(value).dtype == meta.dtype else meta.dtype)
        return b.op(aten.where.self, mask, fill, x)
    # the fill value is cast to x's dtype (no promotion), unlike where's scalar operands
    fill = b.op(aten.full.default, [], value, dtype=meta.dtype)
    return b.op(aten.where.self, mask, fill, x)


@rule(torch.clamp, torch.clip, "clamp", "clip")
def _clamp(b: Builder, x: Any, min: Any = None, max: Any = None) -> Any:
    # maximum, then minimum: NaN anywhere propagates and min > max gives max, as eager's clamp. Tensor bounds
    # and promoting ones (an int tensor clamped by 0.5) compute in the promoted dtype (issue 20)
    dtype = b.tensor(x).dtype
    for bound in (min, max):
        if bound is not None:
            dtype = torch.result_type(torch.empty((), dtype=dtype), b.val(bound))
    if dtype == torch.bool:
        raise Decline("clamp of booleans")  # eager has no bool kernel for it
    out = _cast(b, x, None if dtype == b.tensor(x).dtype else dtype)
    for bound, op in ((min, aten.maximum.default), (max, aten.minimum.default)):
        if bound is None:
            continue
        if isinstance(b.val(bound), torch.Tensor):
            bound = _cast(b, bound, None if b.tensor(bound).dtype == dtype else dtype)
        else:
            bound = b.scalar(bound, out)
        out = b.op(op, out, bound)
    return out


@rule(torch.clamp_min, "clamp_min")
def _clamp_min(b: Builder, x: Any, min: Any) -> Any:
    return _clamp(b, x, min, None)


@rule(torch.clamp_max, "clamp_max")
def _clamp_max(b: Builder, x: Any, max: Any) -> Any:
    return _clamp(b, x, None, max)


# ---- activations -------------------------------------------------------------------------------------------
@rule(F.relu, torch.relu, "relu")
def _relu(b: Builder, x: Any, inplace: bool = False) -> Any:
    if inplace:
        raise Decline("in-place relu")
    # where(x < 0, 0, x) keeps NaN as NaN, as relu does
    return b.op(aten.where.self, b.op(aten.lt.Scalar, x, 0), b.scalar(0, x), x)


@rule(F.silu)
def _silu(b: Builder, x: Any, inplace: bool = False) -> Any:
    if inplace:
        raise Decline("in-place silu")
    x, rounded = _opmath(b, x)
    return _cast(b, b.op(aten.mul.Tensor, x, b.op(aten.sigmoid.default, x)), rounded)


@rule(F.gelu)
def _gelu(b: Builder, x: Any, approximate: str = "none") -> Any:
    x, rounded = _opmath(b, x)
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.op(aten.mul.Tensor, b.op(aten.mul.Tensor, x, x), x)
        inner = b.op(aten.mul.Tensor, b.op(aten.add.Tensor, x, b.op(aten.mul.Tensor, cube, 0.044715)),
                     math.sqrt(2 / math.pi))
        gate = b.op(aten.add.Tensor, b.op(aten.tanh.default, inner), 1)
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        gate = b.op(aten.add.Tensor, b.op(aten.erf.default, b.op(aten.mul.Tensor, x, 1 / math.sqrt(2))), 1)
    out = b.op(aten.mul.Tensor, b.op(aten.mul.Tensor, x, 0.5), gate)
    if b.device is None:
        raise Decline("gelu at +inf depends on the device's kernel, and the device is unknown")
    numel = b.tensor(x).numel()
    width = 1 if type(numel) is int and numel == 1 else 16  # one element: eager's scalar path (fuzz seed 582858)
    if math.isnan(_eager_gelu_at_inf(b.device.type, rounded or b.tensor(x).dtype, approximate, width)):
        out = b.op(aten.where.self, b.op(aten.eq.Scalar, x, math.inf), b.scalar(math.nan, out), out)
    return _cast(b, out, rounded)


@functools.cache
def _eager_gelu_at_inf(device_type: str, dtype: torch.dtype, approximate: str, width: int) -> float:
    """What torch's own gelu kernel returns at +inf. The formula gives inf; some vectorized CPU kernels give nan
    (float32 and bfloat16 exact gelu in torch 2.13, float16 in 2.11), and the compiled code returns what eager
    does, so the kernel itself is asked, once per device type, dtype, approximation and width: 16 elements take
    the vectorized path, a single one (a 0-dim tensor) the scalar path, which gives inf."""
    probe = torch.full((width,), math.inf, dtype=dtype, device=device_type)
    return F.gelu(probe, approximate=approximate)[0].item()


@rule(F.softmax, torch.softmax, "softmax")
def _softmax(b: Builder, x: Any, dim: Any = None, _stacklevel: int = 3, dtype: Any = None) -> Any:
    if dim is None:
        raise Decline("softmax without dim")
    if not (dtype or b.tensor(x).dtype).is_floating_point:
        raise Decline("softmax of an integer tensor: eager's kernel raises, or returns an empty tensor (fuzz seed 478532)")
    x, rounded = _opmath(b, _cast(b, x, dtype))
    dim = dim % max(b.tensor(x).dim(), 1)
    # the max shift is detached: a constant mathematically, so a training graph's backward skips amax's gradient
    shift = b.op(aten.detach.default, b.op(aten.amax.default, x, [dim], True))
    shifted = b.op(aten.sub.Tensor, x, shift)
    e = b.op(aten.exp.default, shifted)
    return _cast(b, b.op(aten.div.Tensor, e, b.op(aten.sum.dim_IntList, e, [dim], True)), rounded)


@rule(F.dropout, torch.dropout, "dropout")
def _dropout(b: Builder, x: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:
    if (training and p > 0) or inplace:
        raise Decline("training dropout is random: runs in eager torch")
    return x


# ---- reductions --------------------------------------------------------------------------------------------
@rule(torch.sum, "sum")
def _sum(b: Builder, x: Any, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Any:
    return b.op(aten.sum.dim_IntList, x, _dims(dim, b.tensor(x).dim()), keepdim, dtype=dtype)


@rule(torch.mean, "mean")
def _mean(b: Builder, x: Any, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Any:
    x = _cast(b, x, dtype)
    meta = b.tensor(x)
    if not meta.is_floating_point():
        raise Decline("mean of an integer tensor is an error in eager")
    x, rounded = _opmath(b, x)
    dims = _dims(dim, meta.dim())
    count = math.prod(b.size(x)[d] for d in dims)
    return _cast(b, b.op(aten.div.Tensor, b.op(aten.sum.dim_IntList, x, dims, keepdim), count), rounded)


def _variance(b: Builder, x: Any, dim: Any, unbiased: Any, keepdim: bool, correction: Any) -> Any:
    meta = b.tensor(x)
    if not meta.is_floating_point():
        raise Decline("var of a non-float tensor")
    if isinstance(dim, bool):  # var(x, True) is the legacy spelling of var(x, unbiased=True)
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    x, rounded = _opmath(b, x)
    dims = _dims(dim, meta.dim())
    count = math.prod(b.size(x)[d] for d in dims)
    centered = b.op(aten.sub.Tensor, x, b.op(aten.div.Tensor, b.op(aten.sum.dim_IntList, x, dims, True), count))
    squares = b.op(aten.sum.dim_IntList, b.op(aten.mul.Tensor, centered, centered), dims, keepdim)
    return _cast(b, b.op(aten.div.Tensor, squares, max(count - correction, 0)), rounded)


@rule(torch.var, "var")
def _var(b: Builder, x: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
         correction: Any = None) -> Any:
    return _variance(b, x, dim, unbiased, keepdim, correction)


@rule(torch.std, "std")
def _std(b: Builder, x: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
         correction: Any = None) -> Any:
    x, rounded = _opmath(b, x)  # the root of the variance before rounding, as eager's std
    return _cast(b, b.op(aten.sqrt.default, _variance(b, x, dim, unbiased, keepdim, correction)), rounded)


@rule(torch.var_mean)
def _var_mean(b: Builder, x: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
              correction: Any = None) -> Any:
    if isinstance(dim, bool):  # var_mean(x, True): the legacy unbiased flag, over every dim
        dim, unbiased = None, dim
    return _variance(b, x, dim, unbiased, keepdim, correction), _mean(b, x, dim, keepdim)


@rule(torch.std_mean)
def _std_mean(b: Builder, x: Any, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
              correction: Any = None) -> Any:
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return _std(b, x, dim, unbiased, keepdim, correction=correction), _mean(b, x, dim, keepdim)


@rule(torch.amax, "amax")
def _amax(b: Builder, x: Any, dim: Any = (), keepdim: bool = False) -> Any:
    return b.op(aten.amax.default, x, _dims(_all_if_empty(dim), b.tensor(x).dim()), keepdim)


@rule(torch.amin, "amin")
def _amin(b: Builder, x: Any, dim: Any = (), keepdim: bool = False) -> Any:
    return b.op(aten.amin.default, x, _dims(_all_if_empty(dim), b.tensor(x).dim()), keepdim)


def _all_if_empty(dim: Any) -> Any:
    """amax/amin's `dim=()` means every dim; `dim=0` is dim 0 (`dim or None` read it as every dim, and the rule's
    result then failed normalize's shape check: x.amax(0) ran in torch)."""
    return None if isinstance(dim, (tuple, list)) and len(dim) == 0 else dim


@rule(torch.argmax, "argmax")
def _argmax(b: Builder, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return b.op(aten.argmax.default, x, None if dim is None else dim % max(b.tensor(x).dim(), 1), keepdim)


@rule(torch.argmin, "argmin")
def _argmin(b: Builder, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return b.op(aten.argmin.default, x, None if dim is None else dim % max(b.tensor(x).dim(), 1), keepdim)


def _extreme(reduce_op: Any, index_op: Any, pointwise_op: Any) -> Rule:
    """max/min have three meanings: over everything, elementwise against a tensor, (values, indices) over a dim."""
    def build(b: Builder, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
        meta = b.tensor(x)
        if dim is None:
            return b.op(reduce_op, x, list(range(meta.dim())), False)
        if isinstance(b.val(dim), torch.Tensor):
            return b.op(pointwise_op, x, dim)
        dim = dim % max(meta.dim(), 1)
        if meta.dtype == torch.bool:
            raise Decline("argmax / argmin take no bool input, though max / min over a dim do")
        return (b.op(reduce_op, x, [dim], keepdim), b.op(index_op, x, dim, keepdim))
    return build


rule(torch.max, "max")(_extreme(aten.amax.default, aten.argmax.default, aten.maximum.default))
rule(torch.min, "min")(_extreme(aten.amin.default, aten.argmin.default, aten.minimum.default))


@rule(torch.any, "any")
def _any(b: Builder, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return b.op(aten.any.dims, x, _dims(dim, b.tensor(x).dim()), keepdim)


@rule(torch.all, "all")
def _all(b: Builder, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    return b.op(aten.all.dims, x, _dims(dim, b.tensor(x).dim()), keepdim)


@rule(torch.prod, "prod")
def _prod(b: Builder, x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    meta = b.tensor(x)
    if dim is None:  # over everything: flatten, then one prod over dim 0
        return b.op(aten.prod.dim_int, _view_or_copy(b, x, [-1]), 0, False, dtype=dtype)
    return b.op(aten.prod.dim_int, x, dim % max(meta.dim(), 1), keepdim, dtype=dtype)


# ---- views -------------------------------------------------------------------------------------------------
def _view_or_copy(b: Builder, x: Any, shape: list) -> Any:
    meta = b.tensor(x)
    try:
        meta.view(shape)
    except RuntimeError:  # strides do not allow a view: copy to contiguous first, as reshape does
        meta.reshape(shape)
        x = b.op(aten.clone.default, x, memory_format=torch.contiguous_format)
    return b.op(aten.view.default, x, _view_size(b, x, shape))


def _view_size(b: Builder, x: Any, shape: list) -> list:
    """The view's target with -1 resolved; SymInts kept (graph/symbolic_shapes.py)."""
    return list(view_shape(b.size(x), list(shape)))


@rule("view")
def _view(b: Builder, x: Any, *shape: Any) -> Any:
    if len(shape) == 1 and isinstance(shape[0], torch.dtype):
        raise Decline("view as another dtype")
    shape = _shape_args(shape)
    b.tensor(x).view(shape)  # raises where torch's view would
    return b.op(aten.view.default, x, _view_size(b, x, shape))


@rule(torch.reshape, "reshape")
def _reshape(b: Builder, x: Any, *shape: Any) -> Any:
    return _view_or_copy(b, x, _shape_args(shape))


@rule(torch.flatten, "flatten")
def _flatten(b: Builder, x: Any, start_dim: int = 0, end_dim: int = -1) -> Any:
    size = b.size(x)
    if not size:
        return _view_or_copy(b, x, [1])
    start, end = start_dim % len(size), end_dim % len(size)
    return _view_or_copy(b, x, list(size[:start]) + [math.prod(size[start:end + 1])] + list(size[end + 1:]))


@rule("view_as", "reshape_as")
def _reshape_as(b: Builder, x: Any, other: Any) -> Any:
    return _view_or_copy(b, x, list(b.size(other)))


@rule(torch.permute, "permute")
def _permute(b: Builder, x: Any, *dims: Any) -> Any:
    ndim = b.tensor(x).dim()
    return b.op(aten.permute.default, x, [d % ndim for d in _shape_args(dims)])


@rule(torch.transpose, torch.swapaxes, "transpose", "swapaxes")
def _transpose(b: Builder, x: Any, dim0: int, dim1: int) -> Any:
    ndim = b.tensor(x).dim()
    order = list(range(ndim))
    order[dim0 % ndim], order[dim1 % ndim] = order[dim1 % ndim], order[dim0 % ndim]
    return b.op(aten.permute.default, x, order)


@rule(torch.t, "t")
def _t(b: Builder, x: Any) -> Any:
    return x if b.tensor(x).dim() < 2 else _transpose(b, x, 0, 1)


@rule(torch.unsqueeze, "unsqueeze")
def _unsqueeze(b: Builder, x: Any, dim: int) -> Any:
    return b.op(aten.unsqueeze.default, x, dim % (b.tensor(x).dim() + 1))


@rule(torch.squeeze, "squeeze")
def _squeeze(b: Builder, x: Any, dim: Any = None) -> Any:
    meta = b.tensor(x)
    dims = [d for d in range(meta.dim()) if meta.shape[d] == 1] if dim is None else _dims(dim, meta.dim())
    return b.op(aten.squeeze.dims, x, dims)


@rule("expand")
def _expand(b: Builder, x: Any, *sizes: Any) -> Any:
    sizes = _shape_args(sizes)
    b.tensor(x).expand(sizes)  # raises where torch's expand would
    return b.op(aten.expand.default, x, list(expand_shape(b.size(x), sizes)))


@rule("expand_as")
def _expand_as(b: Builder, x: Any, other: Any) -> Any:
    return b.op(aten.expand.default, x, list(b.size(other)))


@rule("contiguous")
def _contiguous(b: Builder, x: Any, memory_format: Any = torch.contiguous_format) -> Any:
    if memory_format is not torch.contiguous_format:
        raise Decline("channels-last contiguous")
    return x if b.tensor(x).is_contiguous() else b.op(aten.clone.default, x, memory_format=torch.contiguous_format)


@rule(torch.detach, "detach")
def _detach(b: Builder, x: Any) -> Any:
    b.tensor(x)
    return b.op(aten.detach.default, x)


@rule(torch.clone, "clone")
def _clone(b: Builder, x: Any, *, memory_format: Any = torch.preserve_format) -> Any:
    return b.op(aten.clone.default, x, memory_format=memory_format)


@rule(torch.cat, torch.concat, torch.concatenate)
def _cat(b: Builder, tensors: Any, dim: int = 0) -> Any:
    tensors = list(tensors)
    # torch's legacy rule: a 1-D empty operand (transformers' KV cache starts as `torch.tensor([])`) is skipped
    # by the shape checks and adds nothing, but still takes part in type promotion. Dropped here, with the
    # promotion kept as a cast, so backends see the cat they can generate.
    legacy = [t for t in tensors if tuple(b.tensor(t).shape) == (0,)]
    kept = [t for t in tensors if tuple(b.tensor(t).shape) != (0,)]
    if not legacy or not kept:
        return b.op(aten.cat.default, tensors, dim)
    dtype = functools.reduce(torch.promote_types, [b.tensor(t).dtype for t in tensors])
    out = b.op(aten.cat.default, kept, dim)
    return out if b.tensor(out).dtype == dtype else b.op(aten._to_copy.default, out, dtype=dtype)


# ---- stack: a cat of unsqueezed pieces (backends write each piece into its slot of one output, no copies) ----
@rule(torch.stack, "stack")
def _stack(b: Builder, tensors: Any, dim: int = 0, *, out: Any = None) -> Any:
    tensors = list(tensors)
    if out is not None or not tensors:
        raise Decline("stack with out= or of no tensors")
    dim = dim % (b.tensor(tensors[0]).dim() + 1)
    return _cat(b, [b.op(aten.unsqueeze.default, t, dim) for t in tensors], dim)


def _pieces_of(b: Builder, x: Any, dim: int) -> None:
    """split, chunk and unbind size their pieces (and count them) from the size of `dim`, computed here at the
    hints: where that size is dynamic it is pinned, so the code serves that size only."""
    concrete(b.size(x)[dim], "split / chunk / unbind pieces are sized from it")


@rule(torch.split, "split")
def _split(b: Builder, x: Any, split_size_or_sections: Any, dim: int = 0) -> Any:
    meta = b.tensor(x)
    dim = dim % meta.dim()
    _pieces_of(b, x, dim)
    pieces = [t.shape[dim] for t in meta.split(split_size_or_sections, dim)]
    starts = [sum(pieces[:i]) for i in range(len(pieces))]
    return tuple(b.op(aten.slice.Tensor, x, dim, s, s + n, 1) for s, n in zip(starts, pieces))


@rule(torch.chunk, "chunk")
def _chunk(b: Builder, x: Any, chunks: int, dim: int = 0) -> Any:
    meta = b.tensor(x)
    return _split(b, x, [t.shape[dim] for t in meta.chunk(chunks, dim)], dim)


# argmax/argmin keep torch's dim=None (flattened) meaning; a given dim is made non-negative.


@rule(torch.unbind, "unbind")
def _unbind(b: Builder, x: Any, dim: int = 0) -> Any:
    meta = b.tensor(x)
    _pieces_of(b, x, dim % meta.dim())
    return tuple(b.op(aten.select.int, x, dim % meta.dim(), i) for i in range(meta.shape[dim]))


@rule(operator.getitem)
def _getitem(b: Builder, x: Any, index: Any) -> Any:
    meta = b.tensor(x)
    items = list(index) if isinstance(index, tuple) else [index]
    if any(isinstance(i, fx.Node) for i in items):
        from framejit.graph.index_rules import getitem_tensor  # x[idx]: issue 20's indexing rules
        return getitem_tensor(b, x, items)
    if any(not (i is None or i is Ellipsis or isinstance(i, (int, slice))) or isinstance(i, bool) for i in items):
        raise Decline("advanced indexing")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        used = sum(1 for i in items if i is not None and i is not Ellipsis)
        items[at:at + 1] = [slice(None)] * (meta.dim() - used)
    out, dim = x, 0
    for item in items:
        if item is None:
            out = b.op(aten.unsqueeze.default, out, dim)
            dim += 1
        elif isinstance(item, int):  # indices are made non-negative here so that backends need not
            out = b.op(aten.select.int, out, dim, item % max(b.size(out)[dim], 1))
        else:
            if item != slice(None):
                if item.step is not None and item.step <= 0:
                    raise Decline("non-positive slice step")
                start, stop, step = slice_bounds(item, b.size(out)[dim])  # clamped, non-negative
                out = b.op(aten.slice.Tensor, out, dim, start, max(start, stop), step)
            dim += 1
    return out


# ---- dtype conversions -------------------------------------------------------------------------------------
def _convert_to(dtype: torch.dtype) -> Rule:
    def build(b: Builder, x: Any, memory_format: Any = torch.preserve_format) -> Any:
        if memory_format is not torch.preserve_format:
            raise Decline("conversion with a memory_format")
        return _cast(b, x, dtype)
    return build


for _name, _dtype in [("float", torch.float32), ("double", torch.float64), ("half", torch.float16),
                      ("bfloat16", torch.bfloat16), ("int", torch.int32), ("long", torch.int64),
                      ("bool", torch.bool)]:
    rule(_name)(_convert_to(_dtype))


@rule("to", "type")
def _to(b: Builder, x: Any, *args: Any, **kwargs: Any) -> Any:
    dtype = kwargs.pop("dtype", None)
    if len(args) == 1 and isinstance(args[0], torch.dtype) and dtype is None:
        dtype = args[0]
    elif args:
        raise Decline("to(device / tensor)")
    if kwargs or dtype is None:
        raise Decline("to with device, copy or memory_format")
    return _cast(b, x, dtype)


# ---- matrix products and the other extern calls ------------------------------------------------------------
@rule(torch.matmul, operator.matmul, "matmul", "__matmul__", torch.mm, "mm", torch.bmm, "bmm")
def _matmul(b: Builder, x: Any, y: Any) -> Any:
    a, c = b.tensor(x), b.tensor(y)
    if a.dim() == 0 or c.dim() == 0:
        raise Decline("matmul of a scalar")
    if a.dim() == 1 and c.dim() == 1:  # dot product
        return b.op(aten.sum.dim_IntList, b.op(aten.mul.Tensor, x, y), [0], False)
    if a.dim() == 1:  # (k) @ (..., k, n): a row vector, squeezed back out
        out = _matmul(b, b.op(aten.unsqueeze.default, x, 0), y)
        return b.op(aten.squeeze.dims, out, [b.tensor(out).dim() - 2])
    if c.dim() == 1:
        out = _matmul(b, x, b.op(aten.unsqueeze.default, y, 1))
        return b.op(aten.squeeze.dims, out, [b.tensor(out).dim() - 1])
    if a.dim() == 2 and c.dim() == 2:
        return b.op(aten.mm.default, x, y)
    sa, sc = b.size(x), b.size(y)
    if c.dim() == 2:  # (..., m, k) @ (k, n): fold the batch into rows, one mm
        rows = _view_or_copy(b, x, [-1, sa[-1]])
        return b.op(aten.view.default, b.op(aten.mm.default, rows, y), list(sa[:-1]) + [sc[-1]])
    torch.broadcast_shapes(a.shape[:-2], c.shape[:-2])
    batch = list(broadcast_shapes(sa[:-2], sc[:-2]))
    count = math.prod(batch)
    lhs = _view_or_copy(b, b.op(aten.expand.default, x, batch + list(sa[-2:])), [count] + list(sa[-2:]))
    rhs = _view_or_copy(b, b.op(aten.expand.default, y, batch + list(sc[-2:])), [count] + list(sc[-2:]))
    return b.op(aten.view.default, b.op(aten.bmm.default, lhs, rhs), batch + [sa[-2], sc[-1]])


@rule(F.linear)
def _linear(b: Builder, x: Any, weight: Any, bias: Any = None) -> Any:
    a, w = b.tensor(x), b.tensor(weight)
    if w.dim() != 2 or a.dim() < 1:
        raise Decline("linear with a non-matrix weight")
    wt = b.op(aten.permute.default, weight, [1, 0])
    sa = b.size(x)
    rows = x if a.dim() == 2 else _view_or_copy(b, x, [-1, sa[-1]])
    out = b.op(aten.mm.default, rows, wt) if bias is None else b.op(aten.addmm.default, bias, rows, wt)
    return out if a.dim() == 2 else b.op(aten.view.default, out, list(sa[:-1]) + [b.size(weight)[0]])


@rule(torch.addmm, "addmm")
def _addmm(b: Builder, bias: Any, x: Any, y: Any, *, beta: Any = 1, alpha: Any = 1) -> Any:
    return b.op(aten.addmm.default, bias, x, y, beta=beta, alpha=alpha)


def _conv(n: int) -> Rule:
    def build(b: Builder, x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
              dilation: Any = 1, groups: int = 1) -> Any:
        if isinstance(padding, str):
            raise Decline("string padding")
        expand = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * n
        return b.op(aten.convolution.default, x, weight, bias, expand(stride), expand(padding), expand(dilation),
                    False, [0] * n, groups)
    return build


rule(F.conv1d, torch.conv1d)(_conv(1))
rule(F.conv2d, torch.conv2d)(_conv(2))
rule(F.conv3d, torch.conv3d)(_conv(3))


@rule(F.embedding)
def _embedding(b: Builder, index: Any, weight: Any, padding_idx: Any = None, max_norm: Any = None,
               norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Any:
    if max_norm is not None:
        raise Decline("embedding with max_norm renormalizes the weight in place")
    if sparse:
        raise Decline("sparse embedding gradients")
    # padding_idx and scale_grad_by_freq change only the gradient, which a training graph derives from this op
    if padding_idx is not None and padding_idx < 0:
        padding_idx += b.tensor(weight).shape[0]
    padding_idx = -1 if padding_idx is None else padding_idx
    # eager's "index out of range in self" for a bad index; the lowered gather then reads only in-range rows
    index = b.op(CHECK_INDEX, index, b.size(weight)[0], 0, False, "self")
    if padding_idx == -1 and not scale_grad_by_freq:
        return b.op(aten.embedding.default, weight, index)
    return b.op(aten.embedding.default, weight, index, padding_idx, scale_grad_by_freq)


@rule(F.scaled_dot_product_attention)
def _sdpa(b: Builder, q: Any, k: Any, v: Any, attn_mask: Any = None, dropout_p: float = 0.0,
          is_causal: bool = False, scale: Any = None, enable_gqa: bool = False) -> Any:
    if dropout_p:
        raise Decline("attention dropout is random")
    return b.op(aten.scaled_dot_product_attention.default, q, k, v, attn_mask, 0.0, is_causal, scale=scale,
                enable_gqa=enable_gqa)


@rule(torch.arange)
def _arange(b: Builder, start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None,
            layout: Any = None, pin_memory: Any = None, requires_grad: bool = False) -> Any:
    # arange(n) and arange(a, b, c) are the one core op arange.start_step (a GPT's position ids)
    if requires_grad or layout not in (None, torch.strided):
        raise Decline("arange with requires_grad or a non-strided layout")
    if end is None:
        start, end = 0, start
    return b.op(aten.arange.start_step, start, end, step, dtype=dtype, device=device)


# ---- indexing ops (issue 20): their own modules, registered here before the Tensor-method aliases ----------
from framejit.graph import index_rules, pooling_rules  # noqa: E402,F401  (registers their rules)
# ---- log-space reductions and losses: their own module, registered into this table ----------------------
from framejit.graph import decompositions_losses  # noqa: E402,F401  (imported for its rules)
# ---- layer, rms, batch, group and instance norm: their own module, registered into this table ----------------
from framejit.graph import decompositions_norms  # noqa: E402,F401  (imported for its rules)
# ---- lerp, addcmul, addcdiv: their own module, registered into this table ---------------------------------------
from framejit.graph import decompositions_pointwise  # noqa: E402,F401  (imported for its rules)

# A bytecode tracer records `x.view(...)` as call_function(torch.Tensor.view, (x, ...)): the same rule applies.
for _key in [k for k in DECOMPOSITIONS if isinstance(k, str)]:
    _method = getattr(torch.Tensor, _key, None)
    if _method is not None and _method not in DECOMPOSITIONS:
        DECOMPOSITIONS[_method] = DECOMPOSITIONS[_key]

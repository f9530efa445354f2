"""Decomposition rules for the normalization layers: layer_norm and rms_norm over the last dims (with aten's
native_layer_norm and its backward), and over channels of convolutional nets (issue 20) batch_norm, group_norm and
instance_norm. Registered into the one table of `graph.decompositions` (imported at its end), in
the same rule form.

Why: kept as torch calls, each is a kernel of its own between generated ones (a conv's output read back, the
ReLU after it another kernel). Spelled in core ops, the statistics are reductions the backends already generate,
the normalization and its affine fuse with what follows (`conv2d + batch_norm + relu`: one pointwise kernel
after the convolution), and a training graph's backward is derived from these ops by autograd.

  * batch_norm with running statistics in eval mode: `x * scale + shift` per channel, with
    scale = weight * rsqrt(running_var + eps) and shift = bias - running_mean * scale computed on the C values
    (the form torch's CPU inference kernel computes);
  * batch statistics (training=True, or no running statistics): mean and biased variance over every dim but the
    channel dim, (x - mean) * rsqrt(var + eps), then the affine. Training *with* running statistics declines:
    eager writes the updated running mean and variance into the buffers, and a graph that writes its inputs
    runs in torch anyway (inductor/prepare.py; `nn.BatchNorm*` in training mode also counts
    `num_batches_tracked += 1`, a write into a buffer), so the call is left to eager's kernel;
  * group_norm: x viewed as (N, G, C/G, *spatial), statistics over the dims after G, the affine through the same
    view of weight and bias, viewed back: one reduction shape, so the Triton backend computes it as one
    normalization kernel;
  * instance_norm: batch statistics per (sample, channel) over the spatial dims; with running statistics and
    use_input_stats=False, eval-mode batch_norm.

float16 / bfloat16 inputs compute in float32 (parameters of either width, as eager's mixed-type kernels take)
and round once at the end, as eager's kernels do. Argument checks eager performs before computing (the ValueError
for one value per channel in training, a channel count that groups do not divide) are left to eager: the rule
declines and the call raises there."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from framejit.graph.builder import Builder, Decline
from framejit.graph.decompositions import _cast, _shape_args, _view_or_copy, rule

aten = torch.ops.aten
HALF = (torch.float16, torch.bfloat16)


def _compute_dtype(b: Builder, x: Any, params: list) -> tuple:
    """(the dtype the rule computes in, the dtype its result is rounded to or None); declines dtypes eager would
    not mix: parameters of x's dtype, or float32 / a half type beside a half-type x."""
    dtype = b.tensor(x).dtype
    if not dtype.is_floating_point:
        raise Decline("normalization of a non-float tensor")
    for p in params:
        if p is None:
            continue
        pdt = b.tensor(p).dtype
        if pdt != dtype and not (dtype in HALF and pdt in HALF + (torch.float32,)):
            raise Decline(f"a {pdt} parameter beside a {dtype} input")
    return (torch.float32, dtype) if dtype in HALF else (dtype, None)


def _per_channel(b: Builder, p: Any, ndim: int, compute: torch.dtype) -> Any:
    """A (C,) parameter as (1, C, 1, ...) against an ndim-dim input, in the compute dtype."""
    if b.tensor(p).dim() != 1:
        raise Decline("a per-channel parameter that is not 1-d")
    p = _cast(b, p, None if b.tensor(p).dtype == compute else compute)
    return b.op(aten.view.default, p, [1, b.size(p)[0]] + [1] * (ndim - 2))


def _affine(b: Builder, out: Any, weight: Any, bias: Any, ndim: int, compute: torch.dtype) -> Any:
    if weight is not None:
        out = b.op(aten.mul.Tensor, out, _per_channel(b, weight, ndim, compute))
    if bias is not None:
        out = b.op(aten.add.Tensor, out, _per_channel(b, bias, ndim, compute))
    return out


def _batch_statistics(b: Builder, x: Any, dims: list, eps: float) -> Any:
    """(x - mean) * rsqrt(var + eps), mean and biased variance over `dims` (two passes: the squares are of
    deviations, so the variance stays accurate where the mean is large)."""
    count = math.prod(b.size(x)[d] for d in dims)
    centered = b.op(aten.sub.Tensor, x, b.op(aten.div.Tensor, b.op(aten.sum.dim_IntList, x, dims, True), count))
    var = b.op(aten.div.Tensor, b.op(aten.sum.dim_IntList, b.op(aten.mul.Tensor, centered, centered), dims, True),
               count)
    return b.op(aten.mul.Tensor, centered, b.op(aten.rsqrt.default, b.op(aten.add.Tensor, var, eps)))


def _more_than_one(b: Builder, sizes: list, what: str) -> None:
    """Eager raises ValueError before computing when a statistic would be over one value: left to it."""
    n = math.prod(sizes)
    if type(n) is not int or n <= 1:
        raise Decline(f"eager checks {what} on the sizes of each call")


def _running(b: Builder, x: Any, mean: Any, var: Any, weight: Any, bias: Any, eps: float,
             compute: torch.dtype) -> Any:
    """Normalization by running statistics: x * scale + shift, scale and shift per channel."""
    ndim = b.tensor(x).dim()
    if b.tensor(mean).dim() != 1 or b.tensor(var).dim() != 1:
        raise Decline("running statistics that are not 1-d")
    mean, var = (_cast(b, s, None if b.tensor(s).dtype == compute else compute) for s in (mean, var))
    scale = b.op(aten.rsqrt.default, b.op(aten.add.Tensor, var, eps))
    if weight is not None:
        scale = b.op(aten.mul.Tensor, scale, _cast(b, weight, None if b.tensor(weight).dtype == compute else compute))
    shift = b.op(aten.neg.default, b.op(aten.mul.Tensor, mean, scale))
    if bias is not None:
        shift = b.op(aten.add.Tensor, shift, _cast(b, bias, None if b.tensor(bias).dtype == compute else compute))
    shape = [1, b.size(x)[1]] + [1] * (ndim - 2)
    scale, shift = (b.op(aten.view.default, s, shape) for s in (scale, shift))
    return b.op(aten.add.Tensor, b.op(aten.mul.Tensor, x, scale), shift)


@rule(F.batch_norm)
def _batch_norm(b: Builder, x: Any, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
                training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Any:
    meta = b.tensor(x)
    if meta.dim() < 2 or not isinstance(training, bool):
        raise Decline("batch_norm of fewer than 2 dims")  # eager raises its own error
    compute, rounded = _compute_dtype(b, x, [running_mean, running_var, weight, bias])
    x = _cast(b, x, None if meta.dtype == compute else compute)
    if not training:
        if running_mean is None or running_var is None:
            raise Decline("eval-mode batch_norm without running statistics")  # eager raises
        out = _running(b, x, running_mean, running_var, weight, bias, eps, compute)
        return _cast(b, out, rounded)
    if running_mean is not None or running_var is not None:
        raise Decline("training batch_norm updates its running statistics in place (the graph would write its "
                      "inputs)")
    size = b.size(x)
    _more_than_one(b, [size[0]] + list(size[2:]), "more than one value per channel")
    dims = [0] + list(range(2, meta.dim()))
    out = _affine(b, _batch_statistics(b, x, dims, eps), weight, bias, meta.dim(), compute)
    return _cast(b, out, rounded)


@rule(torch.batch_norm)
def _torch_batch_norm(b: Builder, x: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any,
                      training: bool, momentum: float, eps: float, cudnn_enabled: bool = True) -> Any:
    return _batch_norm(b, x, running_mean, running_var, weight, bias, training, momentum, eps)


@rule(F.group_norm, torch.group_norm)
def _group_norm(b: Builder, x: Any, num_groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5,
                cudnn_enabled: bool = True) -> Any:
    meta = b.tensor(x)
    size = b.size(x)
    if meta.dim() < 2 or not isinstance(num_groups, int) or num_groups <= 0:
        raise Decline("group_norm arguments eager rejects")
    channels = size[1]
    if type(channels) is not int or channels % num_groups:
        raise Decline("channels not divisible by the groups")  # eager raises
    compute, rounded = _compute_dtype(b, x, [weight, bias])
    if b.device is not None and b.device.type == "cuda" and \
            any(p is not None and b.tensor(p).dtype != meta.dtype for p in (weight, bias)):
        # CUDA's kernel raises "expected scalar type" for parameters of another dtype (the CPU's computes in the
        # wider type): eager's kernel raises it
        raise Decline("group_norm parameters of another dtype than the input on CUDA")
    x = _cast(b, x, None if meta.dtype == compute else compute)
    grouped = [size[0], num_groups, channels // num_groups] + list(size[2:])
    out = _batch_statistics(b, _view_or_copy(b, x, grouped), list(range(2, len(grouped))), eps)
    for p, op in ((weight, aten.mul.Tensor), (bias, aten.add.Tensor)):
        if p is not None:
            if b.tensor(p).dim() != 1:
                raise Decline("a per-channel parameter that is not 1-d")
            p = _cast(b, p, None if b.tensor(p).dtype == compute else compute)
            p = b.op(aten.view.default, p, [1, num_groups, channels // num_groups] + [1] * (meta.dim() - 2))
            out = b.op(op, out, p)
    # rounded before the view back: every op then has the grouped shape, one normalization kernel (Triton)
    return b.op(aten.view.default, _cast(b, out, rounded), list(size))


@rule(F.instance_norm)
def _instance_norm(b: Builder, x: Any, running_mean: Any = None, running_var: Any = None, weight: Any = None,
                   bias: Any = None, use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5) -> Any:
    meta = b.tensor(x)
    if meta.dim() < 3 or not isinstance(use_input_stats, bool):
        raise Decline("instance_norm of fewer than 3 dims")
    compute, rounded = _compute_dtype(b, x, [running_mean, running_var, weight, bias])
    x = _cast(b, x, None if meta.dtype == compute else compute)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise Decline("instance_norm without input or running statistics")  # eager raises
        return _cast(b, _running(b, x, running_mean, running_var, weight, bias, eps, compute), rounded)
    if running_mean is not None or running_var is not None:
        raise Decline("instance_norm updates its running statistics in place (the graph would write its inputs)")
    _more_than_one(b, list(b.size(x)[2:]), "more than one spatial element")
    out = _batch_statistics(b, x, list(range(2, meta.dim())), eps)
    return _cast(b, _affine(b, out, weight, bias, meta.dim(), compute), rounded)


# ---- normalizations over the last dims: layer_norm, rms_norm, native_layer_norm ----------------------------------
def _normalize_last(b: Builder, x: Any, ndims: int, eps: float, rms: bool) -> tuple:
    """(x normalized over its last `ndims` dims, the mean or None for rms, rstd), statistics kept as size-1 dims."""
    meta = b.tensor(x)
    dims = list(range(meta.dim() - ndims, meta.dim()))
    count = math.prod(b.size(x)[d] for d in dims)
    mean = None
    if not rms:
        mean = b.op(aten.div.Tensor, b.op(aten.sum.dim_IntList, x, dims, True), count)
        x = b.op(aten.sub.Tensor, x, mean)
    power = b.op(aten.div.Tensor, b.op(aten.sum.dim_IntList, b.op(aten.mul.Tensor, x, x), dims, True), count)
    rstd = b.op(aten.rsqrt.default, b.op(aten.add.Tensor, power, eps))
    return b.op(aten.mul.Tensor, x, rstd), mean, rstd


def _layer_affine(b: Builder, out: Any, weight: Any, bias: Any) -> Any:
    if weight is not None:
        out = b.op(aten.mul.Tensor, out, weight)
    return out if bias is None else b.op(aten.add.Tensor, out, bias)


@rule(F.layer_norm, torch.layer_norm)
def _layer_norm(b: Builder, x: Any, normalized_shape: Any, weight: Any = None, bias: Any = None,
                eps: float = 1e-5, cudnn_enable: bool = True) -> Any:
    if not b.tensor(x).is_floating_point() or b.tensor(x).dtype in HALF:
        raise Decline("layer_norm accumulates half types in float32")
    out = _normalize_last(b, x, len(_shape_args((normalized_shape,))), eps, rms=False)[0]
    return _layer_affine(b, out, weight, bias)


@rule(aten.native_layer_norm.default)
def _native_layer_norm(b: Builder, x: Any, normalized_shape: Any, weight: Any, bias: Any, eps: float) -> Any:
    """(out, mean, rstd), the statistics kept over the normalized dims (size 1), as the aten op returns them."""
    meta = b.tensor(x)
    if meta.dtype not in (torch.float32, torch.float64) or \
            tuple(meta.shape[meta.dim() - len(normalized_shape):]) != tuple(normalized_shape):
        raise Decline("native_layer_norm of half types or a shape eager rejects")
    out, mean, rstd = _normalize_last(b, x, len(normalized_shape), eps, rms=False)
    return _layer_affine(b, out, weight, bias), mean, rstd


@rule(F.rms_norm, torch.rms_norm)
def _rms_norm(b: Builder, x: Any, normalized_shape: Any, weight: Any = None, eps: Any = None) -> Any:
    meta = b.tensor(x)
    if meta.dtype not in (torch.float32, torch.float64):
        raise Decline("rms_norm of half types")
    eps = torch.finfo(meta.dtype).eps if eps is None else eps
    out = _normalize_last(b, x, len(_shape_args((normalized_shape,))), eps, rms=True)[0]
    return out if weight is None else b.op(aten.mul.Tensor, out, weight)


# ---- layer_norm's backward, as graphs traced at the aten level hold it (a custom autograd.Function's backward) ----
@rule(aten.native_layer_norm_backward.default)
def _layer_norm_backward(b: Builder, grad: Any, x: Any, normalized_shape: Any, mean: Any, rstd: Any, weight: Any,
                         bias: Any, output_mask: Any) -> Any:
    """(d_input, d_weight, d_bias), each None where output_mask says so: torch's formula, with
    x_hat = (x - mean) * rstd and g = grad * weight over the N normalized elements,
    d_input = rstd / N * (N * g - sum(g) - x_hat * sum(g * x_hat)), d_weight = sum over the leading dims of
    grad * x_hat, d_bias of grad. Computed in float32 for half operands, each result rounded to its operand's dtype."""
    meta = b.tensor(x)
    inner = len(normalized_shape)
    axis = meta.dim() - inner
    if axis < 0 or tuple(meta.shape[axis:]) != tuple(normalized_shape) or not meta.is_floating_point() or \
            b.tensor(grad).dtype != meta.dtype:
        raise Decline("a layer_norm backward eager would reject or of mixed dtypes")
    inner_dims, outer_dims = list(range(axis, meta.dim())), list(range(axis))
    n = math.prod(b.size(x)[axis:])
    compute = torch.float32 if meta.dtype in HALF else meta.dtype
    up = lambda t: _cast(b, t, compute if b.tensor(t).dtype != compute else None)  # noqa: E731
    xf, gf = up(x), up(grad)
    x_hat = b.op(aten.mul.Tensor, b.op(aten.sub.Tensor, xf, up(mean)), up(rstd))
    g = gf if weight is None else b.op(aten.mul.Tensor, gf, up(weight))
    d_input = d_weight = d_bias = None
    if output_mask[0]:
        inner_sum = b.op(aten.sub.Tensor, b.op(aten.sub.Tensor, b.op(aten.mul.Tensor, g, n),
                                               b.op(aten.sum.dim_IntList, g, inner_dims, True)),
                         b.op(aten.mul.Tensor, x_hat,
                              b.op(aten.sum.dim_IntList, b.op(aten.mul.Tensor, g, x_hat), inner_dims, True)))
        d_input = b.op(aten.mul.Tensor, b.op(aten.div.Tensor, up(rstd), n), inner_sum)
        d_input = _cast(b, d_input, meta.dtype if meta.dtype != compute else None)

    def over_rows(t: Any, like: Any) -> Any:
        out = b.op(aten.sum.dim_IntList, t, outer_dims, False) if outer_dims else b.op(aten.clone.default, t)
        dtype = b.tensor(like).dtype
        return _cast(b, out, dtype if dtype != compute else None)
    if output_mask[1] and weight is not None:
        d_weight = over_rows(b.op(aten.mul.Tensor, gf, x_hat), weight)
    if output_mask[2] and bias is not None:
        d_bias = over_rows(gf, bias)
    return d_input, d_weight, d_bias

"""Decomposition rules for log-space reductions and losses (issue 20): logsumexp, log_softmax, cross_entropy, nll_loss,
and the constant pad that Hugging Face's causal-LM loss applies to its labels. Registered into the one table of
`graph.decompositions` (imported at its end), in the same rule form.

Why decompose rather than keep torch's kernels: spelled in core ops, a loss fuses with the layers before it (one
pass over the logits: max, sum of exponentials and the picked class are reductions over the same rows), and a
training graph's backward is derived by torch's autograd from these core ops (softmax minus one-hot), so no
backward op of the loss is left to run in torch.

Picking the target class is a reduction over the class dim: sum(where(arange(C) == target, logp, 0)) selects
exactly one value per row (the zeros add nothing), with no gather, inside the same row kernel.
The max that stabilizes the exponentials goes through `aten.detach`: it is a constant shift mathematically, so
autograd need not differentiate through amax (torch's own log_softmax backward does not either).

A class label outside [0, C) that is not ignore_index raises eager's IndexError ("Target 5 is out of bounds."):
the labels go through `check_index` (graph/index_checks.py) with ignored ones made 0, before any class is picked.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from framejit.graph.builder import Builder, Decline
from framejit.graph.index_checks import CHECK_INDEX
from framejit.graph.decompositions import _cast, _dims, _opmath, rule

aten = torch.ops.aten


def _stop_gradient(b: Builder, x: Any) -> Any:
    return b.op(aten.detach.default, x)


@rule(torch.logsumexp, "logsumexp")
def _logsumexp(b: Builder, x: Any, dim: Any, keepdim: bool = False) -> Any:
    meta = b.tensor(x)
    if meta.is_complex():
        raise Decline("complex logsumexp")
    if not meta.is_floating_point():  # integers and bool: eager computes in the default float dtype
        x = _cast(b, x, torch.get_default_dtype())
    dims = _dims(dim, meta.dim())
    if not dims and meta.dim():
        raise Decline("logsumexp over no dims")
    x, rounded = _opmath(b, x)
    if meta.dim() == 0:
        return _cast(b, x, rounded)
    shift = _stop_gradient(b, b.op(aten.amax.default, x, dims, True))
    # an infinite max (a row of -inf, or +inf in it) shifts by 0 instead, as eager: -inf rows give -inf, not nan
    shift = b.op(aten.where.self, b.op(aten.eq.Scalar, b.op(aten.abs.default, shift), math.inf), b.scalar(0, shift),
                 shift)
    total = b.op(aten.sum.dim_IntList, b.op(aten.exp.default, b.op(aten.sub.Tensor, x, shift)), dims, keepdim)
    kept = shift if keepdim else b.op(aten.squeeze.dims, shift, dims)
    return _cast(b, b.op(aten.add.Tensor, b.op(aten.log.default, total), kept), rounded)


def log_softmax_of(b: Builder, x: Any, dim: int) -> Any:
    """log_softmax of x (already in its compute dtype) along `dim`: x - max - log(sum(exp(x - max)))."""
    _, shifted, log_total = _log_softmax_parts(b, x, dim)
    return b.op(aten.sub.Tensor, shifted, log_total)


def _log_softmax_parts(b: Builder, x: Any, dim: int) -> tuple:
    """(max, x - max, log(sum(exp(x - max)))) along `dim`, the dim kept; the max outside autograd."""
    top = _stop_gradient(b, b.op(aten.amax.default, x, [dim], True))
    shifted = b.op(aten.sub.Tensor, x, top)
    total = b.op(aten.sum.dim_IntList, b.op(aten.exp.default, shifted), [dim], True)
    return top, shifted, b.op(aten.log.default, total)


def sum_of_log_softmax(b: Builder, x: Any, dim: int) -> Any:
    """sum(log_softmax(x)) along `dim` (not kept) as sum(x) - C * (max + log(sum(exp(x - max)))): the row sum then
    reads x alone, so it joins the max and the sum of exponentials in one pass over the row (label smoothing)
    instead of a second pass after them. Every term of the direct sum carries the same rounding of the
    logsumexp, so the two agree to the same order."""
    top, _, log_total = _log_softmax_parts(b, x, dim)
    lse = b.op(aten.add.Tensor, top, log_total)  # kept dims, all three: reductions of one shape share a kernel
    out = b.op(aten.sub.Tensor, b.op(aten.sum.dim_IntList, x, [dim], True), b.op(aten.mul.Tensor, lse, b.size(x)[dim]))
    return b.op(aten.squeeze.dims, out, [dim])


@rule(F.log_softmax, torch.log_softmax, "log_softmax")
def _log_softmax(b: Builder, x: Any, dim: Any = None, _stacklevel: int = 3, dtype: Any = None) -> Any:
    if dim is None:
        raise Decline("log_softmax without dim")
    if not (dtype or b.tensor(x).dtype).is_floating_point:
        raise Decline("log_softmax of an integer tensor: eager's kernel raises, or returns an empty tensor (fuzz seed 478532)")
    x, rounded = _opmath(b, _cast(b, x, dtype))
    return _cast(b, log_softmax_of(b, x, dim % max(b.tensor(x).dim(), 1)), rounded)


def _along(b: Builder, vector: Any, ndim: int, dim: int) -> Any:
    """A 1-D tensor laid along `dim` of an ndim-dim tensor (size 1 elsewhere), for broadcasting."""
    shape = [1] * ndim
    shape[dim] = b.size(vector)[0]
    return b.op(aten.view.default, vector, shape)


def _class_ids(b: Builder, classes: int, ndim: int, dim: int) -> Any:
    if b.device is None:
        raise Decline("the class ids must be made on the inputs' device, which is unknown")
    ids = b.op(aten.arange.start_step, 0, classes, 1, dtype=torch.int64, device=b.device)
    return _along(b, ids, ndim, dim)


def _legacy_reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        raise Decline("the legacy size_average / reduce arguments")
    if reduction not in ("mean", "sum", "none"):
        raise Decline(f"reduction {reduction!r}")
    return reduction


def _check_class_target(b: Builder, logp: Any, target: Any, weight: Any) -> int:
    """The class dim; declines where eager would raise for the shapes or dtypes (the call then stays eager's)."""
    x, t = b.tensor(logp), b.tensor(target)
    if not x.is_floating_point() or x.dim() == 0:
        raise Decline("loss of a non-float or 0-d input")
    dim = 1 if x.dim() >= 2 else 0
    expected = tuple(x.shape[:dim]) + tuple(x.shape[dim + 1:])
    if t.dtype != torch.int64 or tuple(t.shape) != expected:
        raise Decline("class targets that eager rejects (dtype or shape)")
    if weight is not None:
        w = b.tensor(weight)
        if w.dtype != x.dtype or tuple(w.shape) != (x.shape[dim],):
            raise Decline("a class weight that eager rejects")
    return dim


def _reduce_all(b: Builder, x: Any) -> Any:
    return b.op(aten.sum.dim_IntList, x, list(range(b.tensor(x).dim())), False)


def _nll(b: Builder, logp: Any, target: Any, weight: Any, ignore_index: int, reduction: str, dim: int,
         smoothing: float = 0.0, total_weight: list | None = None, row_sums: Any = None) -> Any:
    """nll_loss of `logp` (log-probabilities in their compute dtype), with cross_entropy's label smoothing term
    when `smoothing` > 0, as torch's LossNLL.cpp defines them: per element -w[t] * logp[t], 0 where t is
    ignore_index; the mean divides by the sum of the weights picked (appended to `total_weight` when given:
    aten.nll_loss_forward returns it too). `row_sums`: the smoothing's sum of logp along dim, where the caller has
    a better spelling of it (sum_of_log_softmax)."""
    ndim = b.tensor(logp).dim()
    classes = b.size(logp)[dim]
    valid = b.op(aten.ne.Scalar, target, ignore_index)
    # a label outside [0, C) raises as eager's does; an ignored one may be anything (made 0 for the check)
    checked = b.op(CHECK_INDEX, b.op(aten.mul.Tensor, target, valid), classes, dim, False, "target")
    onehot = b.op(aten.eq.Tensor, _class_ids(b, classes, ndim, dim), b.op(aten.unsqueeze.default, checked, dim))
    zero = b.scalar(0, logp)
    picked = b.op(aten.sum.dim_IntList, b.op(aten.where.self, onehot, logp, zero), [dim], False)
    dtype = b.tensor(logp).dtype
    if weight is None:
        picked_weight = _cast(b, valid, dtype)
    else:
        weight = _cast(b, weight, dtype)  # a half weight joins float32 log-probabilities
        row = b.op(aten.sum.dim_IntList, b.op(aten.where.self, onehot, _along(b, weight, ndim, dim), zero), [dim],
                   False)
        picked_weight = b.op(aten.where.self, valid, row, zero)
    losses = b.op(aten.where.self, valid, b.op(aten.neg.default, b.op(aten.mul.Tensor, picked, picked_weight)), zero)
    loss = _reduced(b, losses, reduction, lambda: _reduce_all(b, picked_weight))
    if total_weight is not None:  # 0 for reduction "none", as eager's kernel leaves it
        total_weight.append(b.op(aten.full.default, [], 0, dtype=dtype) if reduction == "none" else
                            _reduce_all(b, picked_weight))
    if not smoothing:
        return loss
    if row_sums is None:
        spread = logp if weight is None else b.op(aten.mul.Tensor, logp, _along(b, weight, ndim, dim))
        row_sums = b.op(aten.sum.dim_IntList, spread, [dim], False)
    smooth = b.op(aten.neg.default, row_sums)
    smooth = b.op(aten.where.self, valid, smooth, zero)
    count = (lambda: _reduce_all(b, _cast(b, valid, dtype))) if weight is None else \
        (lambda: _reduce_all(b, picked_weight))
    smooth = _reduced(b, smooth, reduction, count)
    spread = b.op(aten.div.Tensor, b.op(aten.mul.Tensor, smooth, smoothing), classes)  # C may be a dynamic size
    return b.op(aten.add.Tensor, b.op(aten.mul.Tensor, loss, 1 - smoothing), spread)


def _reduced(b: Builder, losses: Any, reduction: str, divisor: Any) -> Any:
    if reduction == "none":
        return losses
    total = _reduce_all(b, losses)
    return total if reduction == "sum" else b.op(aten.div.Tensor, total, divisor())


@rule(F.nll_loss)
def _nll_loss(b: Builder, x: Any, target: Any, weight: Any = None, size_average: Any = None,
              ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> Any:
    reduction = _legacy_reduction(size_average, reduce, reduction)
    dim = _check_class_target(b, x, target, weight)
    x, rounded = _opmath(b, x)
    return _cast(b, _nll(b, x, target, weight, ignore_index, reduction, dim), rounded)


@rule(F.cross_entropy)
def _cross_entropy(b: Builder, x: Any, target: Any, weight: Any = None, size_average: Any = None,
                   ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                   label_smoothing: float = 0.0) -> Any:
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise Decline("label_smoothing outside [0, 1]: eager raises")
    meta = b.tensor(x)
    if meta.is_floating_point() and b.tensor(target).dtype == meta.dtype:
        return _cross_entropy_probs(b, x, target, weight, reduction, label_smoothing)
    dim = _check_class_target(b, x, target, weight)
    x, rounded = _opmath(b, x)
    logp = log_softmax_of(b, x, dim)
    row_sums = None
    if rounded is not None:  # eager's log_softmax hands its nll_loss log-probabilities rounded to the input dtype
        logp = _cast(b, _cast(b, logp, rounded), b.tensor(x).dtype)
    elif label_smoothing and weight is None:
        row_sums = sum_of_log_softmax(b, x, dim)
    return _cast(b, _nll(b, logp, target, weight, ignore_index, reduction, dim, label_smoothing,
                         row_sums=row_sums), rounded)


# the aten spellings: what CUDA's autocast records for cross_entropy (its ops replayed, jit/autocast.py), and what
# graphs traced at the aten level hold
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}  # at::Reduction


@rule(aten._log_softmax.default)
def _aten_log_softmax(b: Builder, x: Any, dim: int, half_to_float: bool) -> Any:
    if half_to_float and (b.device is None or b.device.type != "cuda"):
        raise Decline("half-to-float log_softmax: only CUDA's kernel has it (the CPU's raises)")
    x, rounded = _opmath(b, x)
    out = log_softmax_of(b, x, dim % max(b.tensor(x).dim(), 1))
    return out if half_to_float else _cast(b, out, rounded)


def _softmax_grads(b: Builder, grad: Any, out: Any, dim: int, input_dtype: Any) -> tuple:
    """(grad, out, dim, the dtype to round to) of a softmax / log_softmax backward call; Decline for the
    half-to-float form (another input dtype than the gradient's) and mixed operands, which only CUDA's kernel takes."""
    g, o = b.tensor(grad), b.tensor(out)
    if g.dtype != o.dtype or input_dtype != g.dtype or tuple(g.shape) != tuple(o.shape) or not g.is_floating_point():
        raise Decline("a softmax backward of mixed dtypes or shapes (half-to-float)")
    grad, rounded = _opmath(b, grad)
    return grad, _opmath(b, out)[0], dim % max(g.dim(), 1), rounded


@rule(aten._softmax_backward_data.default)
def _softmax_backward(b: Builder, grad: Any, out: Any, dim: int, input_dtype: Any) -> Any:
    """y * (g - sum(g * y)): torch's own formula, written as its decomposition orders it."""
    grad, out, dim, rounded = _softmax_grads(b, grad, out, dim, input_dtype)
    scaled = b.op(aten.mul.Tensor, grad, out)
    total = b.op(aten.sum.dim_IntList, scaled, [dim], True)
    return _cast(b, b.op(aten.sub.Tensor, scaled, b.op(aten.mul.Tensor, out, total)), rounded)


@rule(aten._log_softmax_backward_data.default)
def _log_softmax_backward(b: Builder, grad: Any, out: Any, dim: int, input_dtype: Any) -> Any:
    """g - exp(y) * sum(g)."""
    grad, out, dim, rounded = _softmax_grads(b, grad, out, dim, input_dtype)
    total = b.op(aten.sum.dim_IntList, grad, [dim], True)
    return _cast(b, b.op(aten.sub.Tensor, grad, b.op(aten.mul.Tensor, b.op(aten.exp.default, out), total)), rounded)


def _aten_nll_loss(ndims: tuple) -> Any:
    def build(b: Builder, x: Any, target: Any, weight: Any, reduction: int, ignore_index: int) -> Any:
        if b.tensor(x).dim() not in ndims:
            raise Decline("an input of the rank the kernel rejects")
        dim = _check_class_target(b, x, target, weight)
        x, rounded = _opmath(b, x)
        total: list = []
        loss = _nll(b, x, target, weight, ignore_index, _REDUCTIONS[reduction], dim, total_weight=total)
        return _cast(b, loss, rounded), _cast(b, total[0], rounded)
    return build


rule(aten.nll_loss_forward.default)(_aten_nll_loss((1, 2)))
rule(aten.nll_loss2d_forward.default)(_aten_nll_loss((4,)))


@rule(aten.logsumexp.default)
def _aten_logsumexp(b: Builder, x: Any, dim: Any, keepdim: bool = False) -> Any:
    return _logsumexp(b, x, dim, keepdim)


def _cross_entropy_probs(b: Builder, x: Any, target: Any, weight: Any, reduction: str, smoothing: float) -> Any:
    """Class probabilities as targets: -sum_c w_c * p_c * logp_c per element; the mean divides by the element
    count (numel / C), not by weights (torch's cross_entropy_loss_prob_target)."""
    meta, t = b.tensor(x), b.tensor(target)
    if meta.dim() == 0 or tuple(t.shape) != tuple(meta.shape):
        raise Decline("probability targets of another shape")
    if weight is not None and (b.tensor(weight).dtype != meta.dtype or tuple(b.tensor(weight).shape) != (
            meta.shape[1 if meta.dim() >= 2 else 0],)):
        raise Decline("a class weight that eager rejects")
    dim = 1 if meta.dim() >= 2 else 0
    classes = b.size(x)[dim]
    x, rounded = _opmath(b, x)
    target = _cast(b, target, torch.float32 if rounded is not None else None)
    logp = log_softmax_of(b, x, dim)
    if rounded is not None:
        logp = _cast(b, _cast(b, logp, rounded), torch.float32)
    if smoothing:  # target * (1 - smoothing) + smoothing / C, with C a size (dynamic, maybe) and not a number
        spread = b.op(aten.add.Tensor, b.op(aten.mul.Tensor, b.op(aten.mul.Tensor, target, 1 - smoothing), classes),
                      smoothing)
        target = b.op(aten.div.Tensor, spread, classes)
    terms = b.op(aten.mul.Tensor, logp, target)
    if weight is not None:
        terms = b.op(aten.mul.Tensor, terms, _along(b, _cast(b, weight, b.tensor(x).dtype), meta.dim(), dim))
    if reduction == "none":
        return _cast(b, b.op(aten.neg.default, b.op(aten.sum.dim_IntList, terms, [dim], False)), rounded)
    total = b.op(aten.neg.default, _reduce_all(b, terms))
    if reduction == "mean":
        if meta.numel() == 0:
            raise Decline("an empty mean: eager fills nan")
        rows = [n for d, n in enumerate(b.size(x)) if d != dim]
        total = b.op(aten.div.Tensor, total, math.prod(rows))
    return _cast(b, total, rounded)


def _scan(target: Any) -> Any:
    def build(b: Builder, x: Any, dim: int, *, dtype: Any = None) -> Any:
        meta = b.tensor(x)
        if meta.is_complex():
            raise Decline("a scan of complex values")
        return b.op(target, x, dim % max(meta.dim(), 1), dtype=dtype)
    return build


rule(torch.cumsum, "cumsum")(_scan(aten.cumsum.default))
rule(torch.cumprod, "cumprod")(_scan(aten.cumprod.default))


@rule(F.pad, torch._C._nn.pad)
def _pad(b: Builder, x: Any, pad: Any, mode: str = "constant", value: Any = None) -> Any:
    """Constant padding as cat(full, x, full) per padded dim (transformers pads its labels with ignore_index)."""
    meta = b.tensor(x)
    pad = list(pad)
    if mode != "constant" or len(pad) % 2 or len(pad) // 2 > meta.dim() or any(
            not isinstance(p, int) or p < 0 for p in pad):
        raise Decline("pad other than a non-negative constant pad")
    if b.device is None:
        raise Decline("the padding must be made on the inputs' device, which is unknown")
    out = x
    for i in range(len(pad) // 2):
        dim, before, after = meta.dim() - 1 - i, pad[2 * i], pad[2 * i + 1]
        parts = []
        for width in (before, None, after):
            if width is None:
                parts.append(out)
            elif width:
                shape = list(b.size(out))
                shape[dim] = width
                parts.append(b.op(aten.full.default, shape, 0 if value is None else value, dtype=meta.dtype,
                                  device=b.device))
        if len(parts) > 1:
            out = b.op(aten.cat.default, parts, dim)
    return out if out is not x else b.op(aten.clone.default, x)

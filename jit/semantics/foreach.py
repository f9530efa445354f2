"""`torch._foreach_*` ops (torch.optim's multi-tensor paths, clip_grad_norm_'s norms): one op over lists of tensors,
traced as the per-tensor op on each element. Their values are the per-tensor ops' (the foreach kernels are the same
arithmetic, launched as one); what is fused afterwards is the backend's to decide, across elements as well.

Argument forms, by position (after the first list, `self`):
  * a list or tuple: one value per element (`_foreach_mul_(exp_avg_sqs, grads)`, per-element scalars);
  * addcmul / addcdiv's scalars: a list of numbers or a 1-D tensor (one per element: Adam's stacked step sizes
    under compilation), or one number;
  * anything else is the same for every element: a number, a 0-dim tensor (`_foreach_mul_(grads, clip_coef)`).
`_foreach_pow(scalar, exponents)` takes the scalar first. In-place forms return None, the others a list."""
from __future__ import annotations

import torch

from jit.break_reasons import unsupported
from jit.variables import Const, ListVar, TupleVar, Var
from jit.variables.tensor import TensorVar

PREFIX = "_foreach_"
_UNSUPPORTED = {"mm", "powsum"}
_PER_TENSOR_SCALARS = {"addcmul", "addcdiv"}  # the fourth argument (scalars / value) has one per element


def is_foreach(fn) -> bool:
    return getattr(fn, "__name__", "").startswith(PREFIX) and getattr(torch, fn.__name__, None) is fn


def call(tx, fn, args: list, kwargs: dict) -> Var:
    from jit.semantics.calls import call_tensor_method, call_torch
    from jit.semantics.subscript import get_item
    name = fn.__name__[len(PREFIX):]
    in_place = name.endswith("_")
    op = name.rstrip("_")
    if op in _UNSUPPORTED or not args:
        unsupported("unsupported_call", f"torch.{fn.__name__}")
    scalar_first = op == "pow" and not _is_list(args[0])
    lists = [a for a in args if _is_list(a)]
    n = len(lists[0].items) if lists else None
    if n is None or any(len(a.items) != n for a in lists):
        unsupported("unsupported_call", f"torch.{fn.__name__} over lists of different lengths (eager raises)")
    selves = (args[1] if scalar_first else args[0]).items
    if not all(isinstance(t, TensorVar) for t in selves):
        unsupported("unsupported_call", f"torch.{fn.__name__} over a list that is not all tensors")
    kwargs = dict(kwargs)
    per_element_value = None
    if op in _PER_TENSOR_SCALARS:
        scalars = args[3] if len(args) > 3 else kwargs.pop("scalars", kwargs.pop("value", None))
        args = args[:3]
        per_element_value = scalars
    results = []
    for i in range(n):
        item_args = [_element(tx, a, i, get_item) for a in args]
        item_kwargs = {k: _element(tx, v, i, get_item) for k, v in kwargs.items()}
        if per_element_value is not None:
            value = per_element_value
            if _is_list(value) or isinstance(value, TensorVar) and value.example.dim() == 1:
                value = _element(tx, value, i, get_item, index_tensor=True)
            item_kwargs["value"] = value
        results.append(_one(tx, op, in_place, item_args, item_kwargs, scalar_first, call_torch, call_tensor_method))
    return Const(None) if in_place else ListVar(results)


def _is_list(v: Var) -> bool:
    return isinstance(v, (ListVar, TupleVar))


def _element(tx, v: Var, i: int, get_item, index_tensor: bool = False) -> Var:
    if _is_list(v):
        return v.items[i]
    if index_tensor:
        return get_item(tx, v, Const(i))
    return v


def _one(tx, op: str, in_place: bool, args: list, kwargs: dict, scalar_first: bool, call_torch, call_tensor_method):
    if op == "norm":
        ord_ = args[1] if len(args) > 1 else kwargs.pop("ord", Const(2))
        return call_torch(tx, torch.linalg.vector_norm, [args[0], ord_], kwargs)
    if op == "max":
        return call_tensor_method(tx, args[0], "max", [], {})
    if op == "pow" and scalar_first:
        return call_torch(tx, torch.pow, args, kwargs)
    if in_place and hasattr(torch.Tensor, op + "_"):
        return call_tensor_method(tx, args[0], op + "_", args[1:], kwargs)
    target = getattr(torch, op, None)
    if target is None:
        unsupported("unsupported_call", f"torch._foreach_{op}")
    result = call_torch(tx, target, args, kwargs)
    # an in-place form with no in-place method (`_foreach_maximum_`): the result written into the element
    return call_tensor_method(tx, args[0], "copy_", [result], {}) if in_place else result

"""Python numbers in a captured CPU graph's arithmetic, passed as 0-d tensors made once.

torch turns a Python number operand into a fresh 0-d tensor on every call (a "wrapped number"): on a 64x64 float
tensor `x - 0.5` costs ~2.5 us against ~2.0 us for `x - c` with `c` a 0-d tensor made ahead of time. That
matters where the captured graph itself runs (on the CPU, where it beat the generated NumPy code: small tensors).

A 0-d tensor is not a wrapped number in type promotion, so the swap is made only where the result is the same:
  * the tensor operand has at least one dim (two 0-d tensors promote like dimensioned ones: f32 0-d + f64 0-d is
    f64, but f32 0-d + 0.5 is f32);
  * the number is of the tensor's kind: a float or int with a floating tensor, an int with an integer tensor
    (an int tensor + 0.5 is float32 by the default dtype; + a float64 0-d tensor it would be float64).
Wrapped numbers are themselves float64 / int64 0-d tensors, so the constant is made in those dtypes and the
kernels convert it exactly as before (TensorIterator reads any one-element CPU operand as a scalar)."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

from framejit.graph.shape_prop import meta_tensor

_FUNCTIONS = {operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul,
              torch.div, torch.true_divide}
_METHODS = {"add", "sub", "mul", "div", "true_divide", "add_", "sub_", "mul_", "div_"}  # in place: graph/inplace_reuse
_DIVISIONS = {operator.truediv, torch.div, torch.true_divide, "div", "true_divide", "div_"}


def _constant_for(number, like: torch.Tensor, target) -> torch.Tensor | None:
    if isinstance(number, bool) or not isinstance(number, (int, float)) or like.dim() == 0:
        return None
    if like.dtype.is_floating_point:
        dtype = torch.float64
    elif like.dtype.is_complex or like.dtype == torch.bool or not isinstance(number, int) or target in _DIVISIONS:
        return None
    else:
        dtype = torch.int64
    try:
        return torch.tensor(number, dtype=dtype)
    except (OverflowError, RuntimeError):
        return None


def hoist_scalar_operands(gm: fx.GraphModule) -> int:
    """Rewrite gm (a captured graph on CPU tensors) in place; the number of operands replaced."""
    graph, made, count = gm.graph, {}, 0
    for node in list(graph.nodes):
        target = node.target
        if node.kwargs or len(node.args) != 2 or not (
                node.op == "call_function" and target in _FUNCTIONS or node.op == "call_method" and target in _METHODS):
            continue
        a, b = node.args
        tensor, position = (meta_tensor(a), 1) if meta_tensor(a) is not None else (meta_tensor(b), 0)
        number = node.args[position]
        if tensor is None or tensor.device.type not in ("cpu", "meta") or isinstance(number, fx.Node):
            continue
        constant = _constant_for(number, tensor, target)
        if constant is None:
            continue
        key = (constant.dtype, number, type(number))
        attr = made.get(key)
        if attr is None:
            attr = made[key] = f"_scalar_{len(made)}"
            setattr(gm, attr, constant)  # a plain attribute: a buffer would be read through Module.__getattr__
        with graph.inserting_before(node):
            ref = graph.create_node("get_attr", attr)  # graph.get_attr warns on an attribute that is no buffer
        node.args = (a, ref) if position == 1 else (ref, b)
        count += 1
    if count:
        gm.recompile()
    return count

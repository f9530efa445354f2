"""A data-dependent branch on a one-element tensor compared with a number (`if loss > 0.5:`, `if y.sum() > 0:`),
decided in Python from the tensor's value.

At such a break the graph would compute the comparison as a tensor and the jump would convert it with bool(): on
the CPU that is two more torch calls (~2 us on a 64x64 function whose eager run is ~10 us), on a GPU one more
kernel. Instead the graph returns the operand, and the break code pushes `operand.item() > c` for the jump: one
C call and a float comparison. It is exact when torch's comparison is a comparison of the two values as they are:
the operand is floating (a number compared with it is converted to its dtype, so `c` must be exactly
representable there) or integer with an integer `c` in range (an integer tensor compared with a float compares in
floating point, so that stays in the graph). The comparison must be used by the jump alone; anything else that
holds it still gets the tensor."""
from __future__ import annotations

import operator

import bytecode as bc
import torch

from jit.var_graph import reachable
from jit.variables.base import Var
from jit.variables.tensor import ItemCompareVar, TensorVar

# FX targets and method names of the comparisons -> the bytecode comparison
_COMPARE = {"gt": bc.Compare.GT, "lt": bc.Compare.LT, "ge": bc.Compare.GE, "le": bc.Compare.LE,
            "eq": bc.Compare.EQ, "ne": bc.Compare.NE, "greater": bc.Compare.GT, "less": bc.Compare.LT,
            "greater_equal": bc.Compare.GE, "less_equal": bc.Compare.LE, "not_equal": bc.Compare.NE}
_FUNCTIONS = {getattr(m, n): n for m in (operator, torch) for n in _COMPARE if hasattr(m, n)}
_FLIPPED = {bc.Compare.GT: bc.Compare.LT, bc.Compare.LT: bc.Compare.GT, bc.Compare.GE: bc.Compare.LE,
            bc.Compare.LE: bc.Compare.GE, bc.Compare.EQ: bc.Compare.EQ, bc.Compare.NE: bc.Compare.NE}


def _comparison(node: torch.fx.Node):
    """(operand node, bytecode comparison, number) when `node` compares a tensor with a number, else None."""
    if node.kwargs or len(node.args) != 2:
        return None
    if node.op == "call_function":
        name = _FUNCTIONS.get(node.target)
    elif node.op == "call_method":
        name = node.target if node.target in _COMPARE else None
    else:
        return None
    if name is None:
        return None
    a, b = node.args
    op = _COMPARE[name]
    if isinstance(b, torch.fx.Node) and not isinstance(a, torch.fx.Node):  # `0 < s`: s > 0
        a, b, op = b, a, _FLIPPED[op]
    if not isinstance(a, torch.fx.Node) or isinstance(b, bool) or not isinstance(b, (int, float)):
        return None
    return a, op, b


def _exact_number(number, dtype: torch.dtype):
    """`number` as torch compares it with a tensor of `dtype`, if that is the same number; else None."""
    if dtype.is_floating_point:
        try:
            same = float(torch.tensor(number, dtype=dtype)) == number
        except (OverflowError, RuntimeError):
            return None
        return number if same else None
    if dtype == torch.bool or dtype.is_complex or not isinstance(number, int):
        return None
    info = torch.iinfo(dtype)
    return number if info.min <= number <= info.max else None


def item_compare(cond, others: list, inputs: list) -> Var:
    """`cond` (the value a conditional jump tests) as an ItemCompareVar where it can be decided from .item(),
    else unchanged. `others`: every other value the break keeps live (the condition must not be among them);
    `inputs`: the graph's (source, value, TensorVar) inputs, for an operand that is one."""
    if not isinstance(cond, TensorVar) or any(v is cond for v in reachable(others)):
        return cond
    if cond.example.numel() != 1 or cond.perturbed.numel() != 1:
        return cond
    found = _comparison(cond.node)
    if found is None:
        return cond
    node, op, number = found
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor) or val.numel() != 1:
        return cond
    number = _exact_number(number, val.dtype)
    if number is None:
        return cond
    if node.op == "placeholder":
        operand = next((var for _, _, var in inputs if var.node is node), None)
        if operand is None:
            return cond
    else:
        operand = TensorVar(torch.fx.Proxy(node, cond.proxy.tracer), val, cond.device)
    return ItemCompareVar(operand, op, number)

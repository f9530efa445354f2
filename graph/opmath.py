"""One eager op spelled as several core ops, computed as eager's kernel computes it: half types in float32 and
rounded once (`opmath`), a kernel's fused multiply-add in float64 and rounded once for float32 operands, Python
scalars as the kernel holds them. Shared by the decomposition modules (graph/decompositions*.py)."""
from __future__ import annotations

from typing import Any

import torch

from framejit.graph.builder import Builder

aten = torch.ops.aten


def opmath(b: Builder, x: Any) -> tuple[Any, Any]:
    """(x as eager's kernel computes with it, the dtype to round the rule's result to, or None). torch's CPU kernels
    compute one op (softmax, gelu, mean, var...) on float16/bfloat16 in float32 and round its result once; spelled
    as several core ops in the half type, every op would round (a mean's sum overflows float16 at 65504, squares
    in a variance overflow at 256). So a rule builds its core ops on float32 and casts the result back."""
    dtype = b.tensor(x).dtype
    if dtype in (torch.float16, torch.bfloat16):
        return cast(b, x, torch.float32), dtype
    return x, None


def cast(b: Builder, x: Any, dtype: Any) -> Any:
    return x if dtype is None else b.op(aten._to_copy.default, x, dtype=dtype)


def fused_multiply_add(b: Builder, x: Any, y: Any, z: Any, dtype: torch.dtype) -> Any:
    """x * y + z rounded once for float32 operands (y may be a Python number); in the operands' type otherwise."""
    if dtype != torch.float32:
        return b.op(aten.add.Tensor, b.op(aten.mul.Tensor, x, y), z)
    wide = [cast(b, v, torch.float64) if isinstance(v, torch.fx.Node) else v for v in (x, y, z)]
    return cast(b, b.op(aten.add.Tensor, b.op(aten.mul.Tensor, wide[0], wide[1]), wide[2]), torch.float32)


def opmath_scalar(value: float, dtype: torch.dtype) -> float:
    """`value` as the kernel holds it: rounded to float32 for float32 and the half types, a double for float64."""
    return value if dtype == torch.float64 else float(torch.tensor(value, dtype=torch.float32))

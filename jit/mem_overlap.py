"""Writes into memory the same op reads: eager checks the overlap when the op runs and raises ("some elements of
the input tensor and the written-to tensor refer to a single memory location": `x.mul_(x[0])`, `t[...] = x`
with t a view of x), but meta tensors carry no addresses, so the trace's shape run accepts them and the compiled
graph would raise later, outside any `try` around the op (generator seed 715054). Where an in-place op's or an
item assignment's source shares memory with its destination (same storage, overlapping byte ranges; a tensor
updated by itself, `x.add_(x)`, excluded), the op runs eagerly instead: it then raises, or not, exactly as eager
does. Such writes are rare outside tests; a break costs nothing in correctness."""
from __future__ import annotations

import operator

from jit.break_reasons import unsupported
from jit.variables.tensor import TensorVar

_IN_PLACE_OPERATORS = {operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv,
                       operator.imod, operator.ipow, operator.iand, operator.ior, operator.ixor,
                       operator.ilshift, operator.irshift, operator.imatmul}


def _span(t) -> tuple[int, int] | None:
    """[first byte, past the last byte] a tensor's elements cover in its storage; None when it has none."""
    if t.numel() == 0:
        return None
    lo = hi = t.storage_offset()
    for size, stride in zip(t.shape, t.stride()):
        lo += min(0, (size - 1) * stride)
        hi += max(0, (size - 1) * stride)
    return lo * t.element_size(), (hi + 1) * t.element_size()


def _overlap(a, b) -> bool:
    if a.untyped_storage()._cdata != b.untyped_storage()._cdata:
        return False
    sa, sb = _span(a), _span(b)
    return sa is not None and sb is not None and sa[0] < sb[1] and sb[0] < sa[1]


def check_write(kind: str, target, args: tuple, kwargs: dict) -> None:
    """Break where the call writes into a tensor that one of its other tensor arguments overlaps."""
    if kind == "call_method" and isinstance(target, str) and target.endswith("_") and not target.startswith("__"):
        dest = args[0]
    elif kind == "call_function" and (target is operator.setitem or target in _IN_PLACE_OPERATORS):
        dest = args[0]
    else:
        return
    if not isinstance(dest, TensorVar):
        return
    rest = list(args[2:] if target is operator.setitem else args[1:]) + list(kwargs.values())
    for src in rest:
        if isinstance(src, TensorVar) and src is not dest and _overlap(dest.example, src.example):
            unsupported("operator_error", f"{getattr(target, '__name__', target)} writes into memory it reads "
                                          "(eager checks the overlap when the op runs)")

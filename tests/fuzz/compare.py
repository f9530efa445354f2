"""What "the same result" means between an eager run and a compiled one.

Like tests/corpus/runner.assert_same (exact Python types, container structure, dict key order, tensor dtype and
shape first, then values, NaN equal to NaN), with two differences a fuzzer needs: tolerances depend on the dtype
(float16/bfloat16 arithmetic fused into fewer roundings legitimately differs more), and every difference comes
back as a (category, message) pair rather than an AssertionError, so a minimizer can ask whether the *same*
kind of failure persists. Aliasing is compared by identity and by memory: an output that is (a view of) an input
in eager must be (a view of) it when compiled, and outputs whose elements overlap in eager must overlap
compiled -- and not overlap where eager's do not.
"""
from __future__ import annotations

import math
from typing import Any

import torch

# (rtol, atol) per floating dtype; atol is scaled by the largest finite magnitude of the expected tensor, so a
# sum of large values is judged relative to its size, not to 1.
TOLERANCES = {torch.float64: (1e-6, 1e-6), torch.float32: (1e-4, 1e-5), torch.float16: (1e-2, 1e-2),
              torch.bfloat16: (5e-2, 5e-2)}
PY_FLOAT_TOL = 1e-3  # a Python float came from .item() of some dtype: judged loosely, relative and absolute

Difference = tuple[str, str]  # (category, message)


def diff(expected: Any, actual: Any, path: str = "result", floor: torch.dtype | None = None) -> Difference | None:
    """The first difference between two results, or None.

    `floor`: the least precise floating dtype the computation went through. A float32 result computed from
    float16 intermediates is judged with float16's tolerances: a compiler may keep a fused chain's intermediates
    in float32 instead of rounding each to float16 (Inductor does, unless emulate_precision_casts is set)."""
    return _diff(expected, actual, path, TOLERANCES.get(floor, (0.0, 0.0)))


def _diff(expected: Any, actual: Any, path: str, floor: tuple) -> Difference | None:
    if type(expected) is not type(actual):
        return "type", f"{path}: type {type(actual).__name__}, expected {type(expected).__name__}"
    if isinstance(expected, torch.Tensor):
        return _tensor_diff(expected, actual, path, floor)
    if isinstance(expected, (tuple, list)):
        if len(expected) != len(actual):
            return "type", f"{path}: length {len(actual)}, expected {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            found = _diff(e, a, f"{path}[{i}]", floor)
            if found:
                return found
        return None
    if isinstance(expected, dict):
        if list(expected) != list(actual):
            return "type", f"{path}: keys {list(actual)}, expected {list(expected)}"
        for k in expected:
            found = _diff(expected[k], actual[k], f"{path}[{k!r}]", floor)
            if found:
                return found
        return None
    if isinstance(expected, (set, frozenset)):
        return None if expected == actual else ("value", f"{path}: {actual!r}, expected {expected!r}")
    if isinstance(expected, float):
        tol = max(PY_FLOAT_TOL, *floor)
        same = (math.isnan(expected) and math.isnan(actual)) or math.isclose(expected, actual, rel_tol=tol, abs_tol=tol)
        return None if same else ("value", f"{path}: {actual!r}, expected {expected!r}")
    if expected != actual:
        return "value", f"{path}: {actual!r}, expected {expected!r}"
    return None


def _tensor_diff(expected: torch.Tensor, actual: torch.Tensor, path: str, floor: tuple) -> Difference | None:
    if expected.dtype != actual.dtype:
        return "dtype", f"{path}: dtype {actual.dtype}, expected {expected.dtype}"
    if expected.shape != actual.shape:
        return "shape", f"{path}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    for attr in ("device", "requires_grad"):
        if getattr(expected, attr) != getattr(actual, attr):
            return "tensor-meta", f"{path}: {attr} {getattr(actual, attr)}, expected {getattr(expected, attr)}"
    bad = _mismatches(expected.detach(), actual.detach(), floor)
    if bad is None:
        return None
    where = tuple(bad[0].tolist()) if bad.numel() else ()
    return "value", (f"{path}: {bad.shape[0]} of {expected.numel()} values differ ({expected.dtype}); "
                     f"first at {where}: {actual[where].item()!r}, expected {expected[where].item()!r}")


def _mismatches(expected: torch.Tensor, actual: torch.Tensor, floor: tuple) -> torch.Tensor | None:
    """Indices of differing elements (an N x ndim tensor), or None when all agree."""
    if expected.dtype not in TOLERANCES:
        ne = expected != actual
        return ne.nonzero() if bool(ne.any()) else None
    e, a = expected.double(), actual.double()
    rtol, atol = (max(t, f) for t, f in zip(TOLERANCES[expected.dtype], floor))
    finite = e[torch.isfinite(e)]
    scale = max(1.0, float(finite.abs().max())) if finite.numel() else 1.0
    close = (e - a).abs() <= atol * scale + rtol * e.abs()
    same_special = (e == a) | (torch.isnan(e) & torch.isnan(a))
    bad = ~(close | same_special)
    return bad.nonzero() if bool(bad.any()) else None


# ---- aliasing -----------------------------------------------------------------------------------------------


def _objects(value: Any, out: list) -> list:
    """Tensors and mutable containers in a value, in traversal order."""
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (list, dict)):
        out.append(value)
        for v in value.values() if isinstance(value, dict) else value:
            _objects(v, out)
    elif isinstance(value, tuple):
        for v in value:
            _objects(v, out)
    return out


def _memory(t: torch.Tensor) -> tuple[int, int] | None:
    """The bytes t's elements span, first to last; None for a tensor without elements. Views whose elements are
    disjoint (x.unbind(0)'s rows) do not share memory in this sense: a write through one cannot be seen through
    the other, so a compiler may return them as separate tensors."""
    if t.numel() == 0:
        return None
    last = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()))
    return t.data_ptr(), t.data_ptr() + (last + 1) * t.element_size()


def alias_pattern(value: Any) -> list[tuple[int, int]]:
    """For each tensor or container: (index of the first earlier one that IS it, index of the first earlier
    tensor whose elements' memory overlaps its own); its own index where there is none."""
    objs = _objects(value, [])
    spans = [_memory(o) if isinstance(o, torch.Tensor) else None for o in objs]
    pattern = []
    for i, (obj, span) in enumerate(zip(objs, spans)):
        same = next(j for j in range(i + 1) if objs[j] is obj)
        overlap = next((j for j in range(i) if span and spans[j] and spans[j][0] < span[1] and span[0] < spans[j][1]),
                       i)
        pattern.append((same, overlap))
    return pattern


def alias_diff(expected_inputs_and_result: Any, actual_inputs_and_result: Any) -> Difference | None:
    e, a = alias_pattern(expected_inputs_and_result), alias_pattern(actual_inputs_and_result)
    if e == a:
        return None
    first = next((i for i, (x, y) in enumerate(zip(e, a)) if x != y), min(len(e), len(a)))
    return "aliasing", (f"object {first} (inputs first, then the result, in order): (identical to, shares memory "
                        f"with) {a[first] if first < len(a) else None}, expected {e[first] if first < len(e) else None}")

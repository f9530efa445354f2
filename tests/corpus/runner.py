"""Differential runner: one case, run eagerly and through `compile_fn`, on fresh identical inputs.

`compile_fn(f)` is anything with the `jit.compile` shape: it takes a function (or an nn.Module) and returns a
callable. The check is strict on purpose: exact Python types, container structure, dict key order, tensor
dtype/shape/values/requires_grad, aliasing between outputs, and the state of every input afterwards (so a
tracer that forgets to replay an in-place write or a list.append fails here).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch

from . import (cases_builtins, cases_breaks, cases_classes, cases_containers, cases_control_flow,
               cases_functions, cases_grad_mode, cases_library, cases_loops, cases_math, cases_modules,
               cases_returns, cases_shapes, cases_tensor_ops, cases_torch_functions)
from .case import Case, ModuleCase

_CATEGORY_MODULES = (cases_tensor_ops, cases_torch_functions, cases_shapes, cases_containers, cases_control_flow,
                     cases_loops, cases_builtins, cases_math, cases_functions, cases_classes, cases_grad_mode,
                     cases_returns, cases_breaks, cases_library)


def function_cases() -> list[Case]:
    return [c for m in _CATEGORY_MODULES for c in m.C.cases]


def module_cases() -> list[ModuleCase]:
    return list(cases_modules.MODULE_CASES)


def all_cases() -> list[Case | ModuleCase]:
    return function_cases() + module_cases()


def case_id(case: Case | ModuleCase) -> str:
    """Stable pytest id: 'category-name'."""
    return f"{case.category}-{case.name}"


def _is_namedtuple(v: Any) -> bool:
    return isinstance(v, tuple) and hasattr(type(v), "_fields")


def assert_same(expected: Any, actual: Any, path: str = "result") -> None:
    """Recursive comparison; the AssertionError names the path of the first difference (e.g. result[1]['a'])."""
    if type(expected) is not type(actual):
        raise AssertionError(f"{path}: type {type(actual).__name__}, expected {type(expected).__name__}")
    if isinstance(expected, torch.Tensor):
        # Tensor metadata first: assert_close would accept a float64 result where float32 was expected.
        for attr in ("dtype", "shape", "device", "requires_grad"):
            e, a = getattr(expected, attr), getattr(actual, attr)
            if e != a:
                raise AssertionError(f"{path}: tensor {attr} {a}, expected {e}")
        try:
            torch.testing.assert_close(actual.detach(), expected.detach(), equal_nan=True)
        except AssertionError as err:
            raise AssertionError(f"{path}: tensor values differ\n{err}") from None
    elif _is_namedtuple(expected) or dataclasses.is_dataclass(expected):
        names = expected._fields if _is_namedtuple(expected) else [f.name for f in dataclasses.fields(expected)]
        for name in names:
            assert_same(getattr(expected, name), getattr(actual, name), f"{path}.{name}")
    elif isinstance(expected, (tuple, list)):
        if len(expected) != len(actual):
            raise AssertionError(f"{path}: length {len(actual)}, expected {len(expected)}")
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, f"{path}[{i}]")
    elif isinstance(expected, dict):
        # Insertion order is observable in Python, so it is part of the result.
        if list(expected) != list(actual):
            raise AssertionError(f"{path}: keys {list(actual)}, expected {list(expected)}")
        for k in expected:
            assert_same(expected[k], actual[k], f"{path}[{k!r}]")
    elif isinstance(expected, float) and expected != expected:
        if actual == actual:
            raise AssertionError(f"{path}: {actual!r}, expected nan")
    elif expected != actual:
        raise AssertionError(f"{path}: {actual!r}, expected {expected!r}")


def _tensor_ids(v: Any, out: list[int]) -> list[int]:
    """Identity pattern of tensors in a result, in traversal order: [0, 0] means one tensor returned twice."""
    if isinstance(v, torch.Tensor):
        out.append(id(v))
    elif isinstance(v, (tuple, list)):
        for x in v:
            _tensor_ids(x, out)
    elif isinstance(v, dict):
        for x in v.values():
            _tensor_ids(x, out)
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        for f in dataclasses.fields(v):
            _tensor_ids(getattr(v, f.name), out)
    return out


def _alias_pattern(v: Any) -> list[int]:
    ids = _tensor_ids(v, [])
    first: dict[int, int] = {}
    return [first.setdefault(i, len(first)) for i in ids]


def _run(fn: Callable, args: tuple, kwargs: dict) -> tuple[str, Any]:
    # An exception is a result too: eager raising X means compiled must raise X.
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - compared, not swallowed
        return "raised", err


def _compare_runs(name: str, eager: tuple[str, Any], compiled: tuple[str, Any], e_inputs: Any,
                  c_inputs: Any) -> None:
    (ek, ev), (ck, cv) = eager, compiled
    if ek != ck or (ek == "raised" and type(ev) is not type(cv)):
        raise AssertionError(f"{name}: eager {ek} {ev!r}, compiled {ck} {cv!r}")
    if ek == "raised":
        return
    assert_same(ev, cv)
    assert_same(e_inputs, c_inputs, "inputs after the call")
    # Inputs first, then the result: catches an output that should BE an input (or another output) but is a copy.
    expected_aliases, actual_aliases = _alias_pattern((e_inputs, ev)), _alias_pattern((c_inputs, cv))
    if expected_aliases != actual_aliases:
        raise AssertionError(f"tensor identity among inputs and outputs differs: {actual_aliases}, "
                             f"expected {expected_aliases}")


def check_case(case: Case | ModuleCase, compile_fn: Callable[[Callable], Callable]) -> None:
    """Raise AssertionError (message starts with the case name) if compiled and eager disagree."""
    try:
        if isinstance(case, ModuleCase):
            _check_module(case, compile_fn)
        else:
            _check_function(case, compile_fn)
    except AssertionError as err:
        raise AssertionError(f"[{case.name}] {err}") from None


def _check_function(case: Case, compile_fn: Callable) -> None:
    e_args, e_kwargs = case.make_inputs()
    c_args, c_kwargs = case.make_inputs()
    eager = _run(case.fn, e_args, e_kwargs)
    compiled = _run(compile_fn(case.fn), c_args, c_kwargs)
    _compare_runs(case.name, eager, compiled, (e_args, e_kwargs), (c_args, c_kwargs))


def _check_module(case: ModuleCase, compile_fn: Callable) -> None:
    # Two instances, not one: a module that mutates its buffers must not see the other run's writes.
    e_mod, c_mod = case.make_module(), case.make_module()
    e_args, e_kwargs = case.make_inputs()
    c_args, c_kwargs = case.make_inputs()
    eager = _run(e_mod, e_args, e_kwargs)
    compiled = _run(compile_fn(c_mod), c_args, c_kwargs)
    _compare_runs(case.name, eager, compiled, (e_args, e_kwargs), (c_args, c_kwargs))
    assert_same(dict(e_mod.state_dict()), dict(c_mod.state_dict()), "state_dict after the call")
    if e_mod.training != c_mod.training:
        raise AssertionError(f"module.training {c_mod.training}, expected {e_mod.training}")


def failures(compile_fn: Callable[[Callable], Callable], cases: list | None = None) -> dict[str, str]:
    """Every failing case's message, keyed by 'category/name': a progress report while the tracer grows.
    Non-AssertionErrors (the compiler crashing) are reported too, prefixed with their type."""
    out: dict[str, str] = {}
    for case in all_cases() if cases is None else cases:
        try:
            check_case(case, compile_fn)
        except AssertionError as err:
            out[f"{case.category}/{case.name}"] = str(err)
        except Exception as err:  # noqa: BLE001 - a crash inside compile_fn is a failure to report, not to hide
            out[f"{case.category}/{case.name}"] = f"{type(err).__name__}: {err}"
    return out

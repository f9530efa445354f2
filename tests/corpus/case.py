"""Case records and the input builders every category file shares.

Inputs come from a private seeded torch.Generator on each call, so eager and compiled runs get identical but
separate tensors (in-place mutation in one run cannot leak into the other) and the global RNG is never touched.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

Inputs = tuple[tuple, dict]


@dataclass
class Case:
    name: str
    fn: Callable
    make_inputs: Callable[[], Inputs]
    # FX graphs a perfect tracer produces: 1 for straight tensor code, 0 with no tensor work,
    # None where capture must break (data-dependent control flow, .item() feeding Python, print).
    graphs: int | None = 1
    category: str = ""


@dataclass
class ModuleCase:
    name: str
    make_module: Callable[[], torch.nn.Module]
    make_inputs: Callable[[], Inputs]
    graphs: int | None = 1
    category: str = "modules"


def randn(*shape: int, seed: int = 0, dtype=torch.float32, requires_grad: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype).requires_grad_(requires_grad)


def randint(low: int, high: int, *shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, shape, generator=g)


def tensors(*shapes: tuple[int, ...], **kwargs: Any) -> Callable[[], Inputs]:
    """make_inputs for N float tensors of the given shapes; extra kwargs are passed to the function as is."""

    def make() -> Inputs:
        return tuple(randn(*s, seed=i + 1) for i, s in enumerate(shapes)), dict(kwargs)

    return make


def values(*args: Any, **kwargs: Any) -> Callable[[], Inputs]:
    """make_inputs for fixed Python arguments; callables in args are called each time (fresh tensors), other
    values are deep-copied so the eager and compiled runs never share a mutable list or dict."""

    def fresh(v: Any) -> Any:
        return v() if callable(v) else copy.deepcopy(v)

    def make() -> Inputs:
        return tuple(fresh(x) for x in args), {k: fresh(v) for k, v in kwargs.items()}

    return make


@dataclass
class CaseList:
    """Collects a category's cases through a decorator, so each case is its function plus one line."""

    category: str
    cases: list = field(default_factory=list)

    def add(self, make_inputs: Callable[[], Inputs], graphs: int | None = 1, name: str | None = None):
        def register(fn: Callable) -> Callable:
            self.cases.append(Case(name or fn.__name__, fn, make_inputs, graphs, self.category))
            return fn

        return register

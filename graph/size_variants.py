"""One compiled graph for a range of sizes: variants keyed by the conditions their compile recorded.

A backend that takes symbolic sizes builds generated code once for the sizes of the first call, recording every
size-dependent choice as a condition (graph/symbolic_sizes.py). The result serves every later call whose sizes
satisfy those conditions; a call that satisfies none of the variants' conditions compiles a new variant (logged
under JIT_LOGS=dynamic with the condition that failed), up to MAX_VARIANTS, after which the graph runs as
captured (it computes its sizes at run time, so it is right for every size).

Each new variant is checked: its code is generated a second time for other sizes that satisfy its conditions
and the two texts must be the same. A number that depends on a size but reached the code without being
symbolic (a size read through C code, a choice made on a hint without a condition) makes the texts differ; the
variant is then pinned to exactly its sizes, which is always correct."""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.fx as fx

from framejit.graph import fx_sources, symbolic_shapes
from framejit.graph.symbolic_sizes import Condition, Conditions, Expr, recording

log = logging.getLogger("jit.dynamic")
MAX_VARIANTS = 8
PERTURBATIONS = (1, 2, 3, -1, 5, -2, 8, 13)
_graph_ids = itertools.count(1)


@dataclass
class Built:
    """What a backend's build step returns: `text` (its generated code with sizes as symbols; None when there
    is nothing to compare, e.g. a third-party backend) and `load()`, which makes the callable."""
    text: str | None
    load: Callable[[], Callable]
    exact: bool = False  # the code holds numbers for these sizes only: pin every symbol


@dataclass
class Variant:
    fn: Callable
    conditions: list
    symbols: symbolic_shapes.Symbols
    check: Callable = None
    check_source: str = ""
    pinned: list = field(default_factory=list)


def copy_module(gm: fx.GraphModule) -> fx.GraphModule:
    """A fresh GraphModule over a copy of gm's graph (passes rewrite graphs in place)."""
    graph = fx.Graph()
    graph.output(graph.graph_copy(gm.graph, {}))
    return fx.GraphModule(gm, graph, class_name=type(gm).__name__)


def _env(symbols: symbolic_shapes.Symbols) -> dict:
    return {name: h for name, (_, _, h) in symbols.where.items()}


def _pin(name: str, value: int, why: str) -> Condition:
    return Condition(Expr.symbol(name), "==", Expr.number(value), True, why)


def _pin_all(symbols, conditions: Conditions, why: str) -> list:
    for name, (_, _, h) in symbols.where.items():
        conditions.add(_pin(name, h, why))
    return list(symbols.where)


def _check_function(symbols, conditions: list, nargs: int):
    """One generated function answering whether a call's sizes satisfy the variant (cheap: a few shape reads)."""
    lines = [f"def check({', '.join(f'a{i}' for i in range(nargs))}):"]
    for name, (i, d, _) in symbols.where.items():
        lines.append(f"    {name} = a{i}.shape[{d}]")
    tests = [f"a{i}.shape[{d}] == {name}" for i, d, name in symbols.equal]
    tests += [f"({c.code()})" for c in conditions]
    lines.append(f"    return {' and '.join(tests) if tests else 'True'}")
    source = "\n".join(lines) + "\n"
    scope: dict = {}
    exec(compile(source, "<framejit-size-check>", "exec"), scope)
    return scope["check"], source


def _perturbed(symbols, conditions: list) -> tuple[dict, list]:
    """Other sizes satisfying every condition: each symbol moved in turn to the first offset that keeps them
    all (sizes >= 2, distinct symbols apart). Returns (sizes, the symbols that could not move)."""
    env, stuck = _env(symbols), []
    for name in env:
        for step in PERTURBATIONS:
            moved = dict(env, **{name: env[name] + step})
            if moved[name] >= 2 and moved[name] not in {v for k, v in moved.items() if k != name} and \
                    all(c.check(moved) for c in conditions):
                env = moved
                break
        else:
            stuck.append(name)
    return env, stuck


def _perturbed_inputs(symbols, example_inputs: list, env: dict) -> list:
    sizes = {(i, d): env[name] for name, (i, d, _) in symbols.where.items()}
    sizes.update({(i, d): env[name] for i, d, name in symbols.equal})
    out = list(example_inputs)
    for i, x in enumerate(example_inputs):
        dims = {d: n for (j, d), n in sizes.items() if j == i}
        if dims:
            shape = [dims.get(d, n) for d, n in enumerate(x.shape)]
            out[i] = torch.empty(shape, dtype=x.dtype, device=x.device, requires_grad=x.requires_grad)
    return out


def compile_variant(gm: fx.GraphModule, example_inputs: list, build: Callable[..., Built]) -> Variant:
    """Build gm for the sizes of example_inputs, with symbolic sizes; check the code at other sizes."""
    work = copy_module(gm)
    symbols = symbolic_shapes.assign_symbols(work, example_inputs)
    with recording() as conditions:
        built = build(work, example_inputs)
    pinned = []
    if built.exact:
        pinned = _pin_all(symbols, conditions, "the backend compiles for fixed sizes")
    elif built.text is not None and symbols.where:
        why = _differs_elsewhere(gm, example_inputs, build, symbols, conditions, built.text)
        if why:
            log.info("dynamic: generated code is not the same at other sizes (%s); this variant serves %s only",
                     why, _sizes_text(symbols))
            pinned = _pin_all(symbols, conditions, why)
    fn = built.load()
    check, source = _check_function(symbols, list(conditions), len(example_inputs))
    return Variant(fn, list(conditions), symbols, check, source, pinned)


def _differs_elsewhere(gm, example_inputs, build, symbols, conditions, text) -> str | None:
    env, stuck = _perturbed(symbols, list(conditions))
    for name in stuck:  # its conditions allow no other value: checked by pinning it
        conditions.add(_pin(name, env[name], "its other conditions leave it no other value"))
    if len(stuck) == len(env):
        return None
    work = copy_module(gm)
    inputs = _perturbed_inputs(symbols, example_inputs, env)
    other = symbolic_shapes.assign_symbols(work, inputs)
    if list(other.where) != list(symbols.where) or other.equal != symbols.equal:
        return "the sizes share symbols differently"
    try:
        with recording() as again:
            built = build(work, inputs)
    except Exception as e:  # noqa: BLE001 - any failure at other sizes means the code relied on these
        return f"building for {_env_text(env)} failed: {type(e).__name__}: {e}"
    if built.text != text:
        return f"the code for {_env_text(env)} differs{_first_difference(text, built.text)}"
    if {c.key() for c in again} != {c.key() for c in conditions}:
        return f"the conditions for {_env_text(env)} differ"
    return None


def _first_difference(a: str, b: str | None) -> str:
    if b is None:
        return ""
    for x, y in zip(a.splitlines(), b.splitlines()):
        if x != y:
            return f": {x.strip()!r} vs {y.strip()!r}"
    return ""


def _env_text(env: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in env.items())


def _sizes_text(symbols) -> str:
    return _env_text(_env(symbols)) or "these sizes"


class SizeVariants:
    """Callable with gm's signature: picks the variant whose conditions the call's sizes satisfy."""

    def __init__(self, gm: fx.GraphModule, example_inputs: list, build: Callable[..., Built],
                 fallback: Callable, limit: int = MAX_VARIANTS, name: str = "graph"):
        self.gm, self.build, self.fallback, self.limit = gm, build, fallback, limit
        self.name = f"{name} {next(_graph_ids)}"
        self.variants: list[Variant] = []
        self.warned = False
        self._add(example_inputs, "first call")

    def _add(self, args, why: str) -> Variant:
        with fx_sources.recording() as made:  # a variant compiled at run time, outside any frame's compile
            variant = compile_variant(self.gm, list(args), self.build)
        fx_sources.release_with(self, made)
        self.variants.append(variant)
        log.info("dynamic: %s: compiled variant %d for %s (%s); it serves sizes where %s", self.name,
                 len(self.variants), _sizes_text(variant.symbols), why,
                 " and ".join(c.code() for c in variant.conditions) or "any sizes")
        return variant

    def __call__(self, *args):
        for v in self.variants:
            if v.check(*args):
                return v.fn(*args)
        if len(self.variants) >= self.limit:
            if not self.warned:
                self.warned = True
                log.warning("dynamic: %s: %d size variants compiled; other sizes run the captured graph as is",
                            self.name, len(self.variants))
            return self.fallback(*args)
        return self._add(args, self._why_not(args)).fn(*args)

    def _why_not(self, args) -> str:
        """The first condition of the newest variant that these sizes break, in words."""
        v = self.variants[-1]
        env = {name: args[i].shape[d] for name, (i, d, _) in v.symbols.where.items()}
        for i, d, name in v.symbols.equal:
            if args[i].shape[d] != env[name]:
                return f"input {i} dim {d} no longer equals {name}"
        for c in v.conditions:
            if not c.check(env):
                return f"{c.code()} fails at {_env_text(env)}" + (f" ({c.why})" if c.why else "")
        return "sizes changed"


def dynamic_graph(gm: fx.GraphModule) -> bool:
    return bool(symbolic_shapes.dynamic_placeholders(gm))


def fixed_shape_build(backend: Callable) -> Callable[..., Built]:
    """A build step for a backend that compiles fixed shapes only: the graph specialized to the call's sizes
    (graph/specialize_sizes.py), integer outputs returned beside the backend's tensors, the variant pinned."""
    def build(gm: fx.GraphModule, example_inputs: list) -> Built:
        from framejit.graph.specialize_sizes import specialize
        fixed, constants = specialize(gm, list(example_inputs))
        compiled = backend(fixed, list(example_inputs))
        if not constants:
            return Built(None, lambda: compiled, exact=True)
        total = len(constants) + len(fixed.graph.find_nodes(op="output")[0].args[0])

        def variant(*a):
            tensors = iter(compiled(*a))
            return tuple(constants[i] if i in constants else next(tensors) for i in range(total))
        return Built(None, lambda: variant, exact=True)
    return build



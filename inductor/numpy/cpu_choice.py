"""On the CPU the default backend keeps whichever runs a graph faster: the generated NumPy code or the graph as
captured, in torch.

Neither wins everywhere. NumPy code fuses a chain of pointwise ops into few passes (1.6x eager on a 1024x1024
tanh chain), but a NumPy call costs about what a torch op does on small arrays, some ufuncs are several times
slower than torch's vectorized kernels (exp-based sigmoid, row reductions), and torch runs ops on all cores. So at
compile time both run on the example inputs, alternately, a few times within a small budget, and the faster one
is kept — the way an autotuner picks between a library kernel and a generated one. The captured graph runs with
its elementwise chains written into their own intermediates (graph/inplace_reuse.py) and its Python-number
operands made 0-d tensors once (graph/scalar_operands.py). The decision is logged
(JIT_LOGS=inductor). FRAMEJIT_CPU_BACKEND=numpy or =torch skips the measurement.

Nothing measured ever touches the caller's tensors: both versions run on copies of the inputs (same sizes,
strides, offsets, and inputs sharing memory still share it), so a graph that writes to an input cannot change it
several times. Graphs whose running twice would be observable otherwise are not measured and keep the NumPy
code: random ops (the run would advance the generator) and graphs that mutate tensors (those never reach NumPy
code: both versions run torch).

Only warm calls count: each side runs WARMUP times first (imports, first allocations, lazy initialisation: a cold
first call once made a 42 us NumPy softmax beat torch's 15 us one). The decision is stored in the disk cache
(inductor/cache.py, kind "choice") under a key of the captured graph, its inputs' and constants' layouts and this
machine, so another process compiling the same graph measures nothing and builds only the side it will run
(`stats` and jit.counters' cpu_choices_measured / cpu_choices_cached count which happened)."""
from __future__ import annotations

import logging
import os
import platform
import time
from typing import Callable

import torch

from framejit.graph.inplace_reuse import reuse_intermediates
from framejit.graph.scalar_operands import hoist_scalar_operands
from framejit.graph import symbolic_sizes
from .. import cache
from ..config import config
from ..counters import bump

log = logging.getLogger("jit.inductor")
WARMUP = 2           # uncounted calls of each side before any is timed
ROUNDS = 7
MIN_ROUNDS = 3       # rounds always run, whatever the budget says: one sample of each is too noisy to decide
BUDGET_S = 0.2       # measuring one graph stops after this much time (beyond the warm-up calls)
MIN_SAMPLE_S = 5e-4  # a sample repeats a fast graph until it lasts this long: one 5 us call is mostly noise
stats = {"measured": 0, "cached": 0}  # choices timed here / read from the cache (also in jit.counters)


def _seconds(fn, inputs, repeat: int = 1) -> float:
    """Seconds per call of fn(*inputs), over `repeat` calls."""
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn(*inputs)
    return (time.perf_counter() - t0) / repeat


def _measurable(gm: torch.fx.GraphModule, inputs: list, writes: bool = False) -> bool:
    """Timing gm over private copies of the inputs tells its speed: no random draws; no writes, unless they are
    `writes` of values into inputs (graph/input_writes.py made them functional for the other side), which each
    run repeats into the copies."""
    from framejit.graph.effects import has_mutation, is_random
    return (all(isinstance(x, torch.Tensor) for x in inputs) and (writes or not has_mutation(gm.graph))
            and not any(is_random(n) for n in gm.graph.nodes))


def private_copies(inputs: list) -> list:
    """Copies of `inputs` laid out as they are: each distinct storage copied once, every tensor rebuilt over its
    copy at its own offset, sizes and strides, so inputs that alias still alias and nothing reads or writes the
    caller's memory."""
    storages: dict = {}
    copies = []
    for x in inputs:
        if not isinstance(x, torch.Tensor) or x.layout != torch.strided:
            copies.append(x)
            continue
        source = x.untyped_storage()
        key = (source.data_ptr(), source.nbytes())
        if key not in storages:
            storages[key] = source.clone()
        copy = torch.empty(0, dtype=x.dtype, device=x.device)
        copy.set_(storages[key], x.storage_offset(), x.size(), x.stride())
        copies.append(copy)
    return copies


def choice_key(gm: torch.fx.GraphModule, example_inputs: list, kind: str) -> str:
    """The disk-cache key of a choice: the graph as captured (before any backend rewrites it), its inputs' and
    constants' shapes, strides and dtypes, the kind of choice, the versions inductor/cache.py keys on, and this
    machine (a cache directory may be shared by machines that time differently)."""
    constants = []
    for node in gm.graph.find_nodes(op="get_attr"):
        value = getattr(gm, node.target, None)
        if isinstance(value, torch.Tensor):
            constants.append([node.target, list(value.shape), list(value.stride()), str(value.dtype)])
    # platform.processor() would spawn `uname -p` (~50 ms); torch's vector capability names the CPU's class
    machine = [platform.machine(), torch.backends.cpu.get_cpu_capability(), os.cpu_count(), torch.get_num_threads()]
    text = symbolic_sizes.text(gm.graph) + repr(constants) + repr(machine)
    return cache.make_key(text, example_inputs, f"cpu-choice-{kind}-c-{config.c_kernels}")


def _cached(key: str | None, sides: tuple) -> str | None:
    payload = cache.get(key, kind="choice") if key is not None else None
    side = payload.get("side") if isinstance(payload, dict) else None
    if side not in sides:
        return None
    stats["cached"] += 1
    bump("cpu_choices_cached")
    log.info("CPU graph: running %s (measured by an earlier compile: %s)", side, payload.get("timings"))
    return side


def _store(key: str | None, side: str, timings: str) -> None:
    stats["measured"] += 1
    bump("cpu_choices_measured")
    if key is not None:
        cache.put(key, {"side": side, "timings": timings}, kind="choice")


def _torch_version(captured):
    torch_version = captured()
    reuse_intermediates(torch_version)
    hoist_scalar_operands(torch_version)
    return torch_version


def choose(generate: Callable[[], Callable], captured, inputs: list, key: str | None = None, writes: bool = False):
    """`generate()` (NumPy code) or `captured()` (a GraphModule of the graph as captured), whichever runs
    `inputs` faster; read from the cache under `key` (`choice_key`) when an earlier compile measured it, so only
    the side that will run is built. `writes`: the captured graph writes into its inputs (an optimizer's step),
    which `generate()`'s callable does functionally, copying the values back."""
    mode = config.cpu_backend
    if mode == "torch":
        return _torch_version(captured)
    cached = None if mode == "numpy" else _cached(key, ("numpy", "torch"))
    if cached == "torch":
        return _torch_version(captured)
    generated = generate()
    if mode == "numpy" or cached == "numpy" or isinstance(generated, torch.fx.GraphModule):
        return generated
    torch_version = _torch_version(captured)
    if not _measurable(torch_version, inputs, writes):
        return generated
    inputs = private_copies(inputs)
    try:
        with torch.no_grad():
            for _ in range(WARMUP):  # first-run costs are paid once a process, by whichever side runs: not timed
                _seconds(generated, inputs)
                _seconds(torch_version, inputs)
            # the sample size comes from a warm call: a 7 us graph timed one call at a time lost to torch at 16 us
            warm = min(_seconds(generated, inputs), _seconds(torch_version, inputs))
            repeat = max(1, min(1000, int(MIN_SAMPLE_S / max(warm, 1e-7))))
            best_np = best_torch = float("inf")
            spent = 2 * warm
            for round_ in range(ROUNDS):
                a, b = _seconds(generated, inputs, repeat), _seconds(torch_version, inputs, repeat)
                best_np, best_torch = min(best_np, a), min(best_torch, b)
                spent += (a + b) * repeat
                if spent > BUDGET_S and round_ + 1 >= MIN_ROUNDS:
                    break
    except Exception as e:  # the real call will raise it (or not) as eager would; measuring decides nothing
        log.info("CPU graph not measured (%s: %s); keeping the NumPy code", type(e).__name__, e)
        return generated
    keep_torch = best_torch < best_np
    timings = f"NumPy code {best_np * 1e6:.1f} us, torch {best_torch * 1e6:.1f} us per call"
    log.info("CPU graph: %s: running %s", timings, "torch" if keep_torch else "the NumPy code")
    _store(key, "torch" if keep_torch else "numpy", timings)
    return torch_version if keep_torch else generated


TRAINING_BUDGET_S = 0.5  # a training graph runs once per step, thousands of times: worth a longer look


def choose_training(compile_: Callable[[], Callable], captured, inputs: list, key: str | None = None):
    """For a graph that needs gradients: `compile_()` (forward and backward compiled, inductor/training.py) or
    `captured()` run under torch's autograd as captured, whichever ran a forward + backward on copies of `inputs`
    faster; read from the cache under `key` when an earlier compile measured it (then the trace of forward and
    backward is skipped too where torch won). The backward graph of a training region is torch's autograd
    decomposed into core ops, which on the CPU can lose to eager's fused backward kernels (layer_norm's,
    softmax's) by more than the NumPy code gains. Random ops are measured under a forked generator, so the
    caller's stream is untouched."""
    mode = config.cpu_backend
    if mode == "numpy":
        return compile_()
    if mode == "torch":
        return captured()
    cached = _cached(key, ("compiled", "torch"))
    if cached == "torch":
        return captured()
    compiled = compile_()
    if cached == "compiled":
        return compiled
    torch_version = captured()
    if not all(isinstance(x, torch.Tensor) for x in inputs):
        return compiled
    # both run on private copies (aliasing kept): a graph writing to its inputs (BatchNorm's statistics) writes
    # to the copies only
    copies = [c.requires_grad_(x.requires_grad) if c.is_floating_point() or c.is_complex() else c
              for c, x in zip(private_copies([x.detach() for x in inputs]), inputs)]
    wanted = [c for c in copies if c.requires_grad]

    def step(fn) -> float:
        t0 = time.perf_counter()
        outs = fn(*copies)
        outs = outs if isinstance(outs, (tuple, list)) else [outs]
        diff = [o for o in outs if isinstance(o, torch.Tensor) and o.requires_grad]
        if diff:
            torch.autograd.grad(diff, wanted, [torch.ones_like(o) for o in diff], allow_unused=True)
        return time.perf_counter() - t0

    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            for _ in range(WARMUP):  # first-run costs, the backward's compile among them: not timed
                step(compiled)
                step(torch_version)
            best_compiled = best_torch = float("inf")
            spent = 0.0
            for round_ in range(ROUNDS):
                a, b = step(compiled), step(torch_version)
                best_compiled, best_torch = min(best_compiled, a), min(best_torch, b)
                spent += a + b
                if spent > TRAINING_BUDGET_S and round_ + 1 >= MIN_ROUNDS:
                    break
    except Exception as e:  # noqa: BLE001 - the real call raises it (or not) as eager would
        log.info("CPU training graph not measured (%s: %s); keeping the compiled forward and backward",
                 type(e).__name__, e)
        return compiled
    keep_torch = best_torch < best_compiled
    timings = f"compiled forward + backward {best_compiled * 1e6:.1f} us, torch's autograd {best_torch * 1e6:.1f} us"
    log.info("CPU training graph: %s per step: running %s", timings,
             "the captured graph under torch's autograd" if keep_torch else "the compiled forward and backward")
    _store(key, "torch" if keep_torch else "compiled", timings)
    return torch_version if keep_torch else compiled

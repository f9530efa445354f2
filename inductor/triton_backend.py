"""Graph -> compiled Triton callable: lowering with the Triton fusion plan, module generation, the module file,
ahead-of-time kernel compilation. Returns None (the caller runs the graph in torch) when the graph cannot be
generated: correct first, every gap is a fallback, never a wrong answer."""
import logging
import math
import os
import time

import torch

from . import cache
from .ir import Kernel
from .lowering import lower_graph
from .triton_codegen import reduces_in, supported
from .triton_fusion import plan_triton_fusion
from .triton_launch import autotune_enabled
from .triton_module import generate, probe_extern_layouts
from .triton_rewrites import rewrite_half_norms
from .triton_runtime import CompiledTritonGraph, import_module, write_module

log = logging.getLogger("jit.inductor.triton")
output_code_log = logging.getLogger("jit.output_code")
stats = {"compiled": 0, "fallback_graphs": 0, "warm_files": 0}


def _device(example_inputs):
    tensors = [x for x in example_inputs if isinstance(x, torch.Tensor)]
    devices = {x.device for x in tensors}
    if len(devices) != 1:
        return None
    device = devices.pop()
    if device.type == "cuda" or (device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"):
        return device
    return None


# A reduction kernel runs one program per output row; with a handful of rows each program walks its whole row
# alone. On the H100, `y.sum()` of 16M floats took ~1.9 ms that way against ~0.05 ms in torch, whose reduction
# splits the row across the GPU. Until a split (two-stage) reduction is generated, such graphs run in torch.
SERIAL_ROWS, SERIAL_LENGTH = 64, 1 << 16


def _refuse_serial_reductions(lowered) -> None:
    for k in lowered.kernels:
        for e in reduces_in(k.expr) if isinstance(k, Kernel) else ():
            rows = max(1, math.prod(e.shape))
            length = math.prod(e.arg.shape) // rows
            if rows < SERIAL_ROWS and length >= SERIAL_LENGTH:
                raise NotImplementedError(f"a reduction of {length} elements into {rows} output(s) would run "
                                          "serially in one program per output")


def compile_triton(gm: torch.fx.GraphModule, example_inputs: list, autotune=None):
    if not all(isinstance(x, torch.Tensor) and supported(x.dtype) for x in example_inputs):
        log.info("Triton backend runs this graph as is: a non-tensor or unsupported-dtype input")
        return None
    device = _device(example_inputs)
    if device is None:
        log.info("Triton backend runs this graph as is: inputs on several devices or not on a GPU")
        return None
    t0 = time.perf_counter()
    try:
        rewrite_half_norms(gm)
        lowered = lower_graph(gm, example_inputs, plan=plan_triton_fusion)
        _refuse_serial_reductions(lowered)
        probe_extern_layouts(lowered, example_inputs, gm)  # library results' real strides, not meta's
        source, kernels = generate(lowered)
    except NotImplementedError as e:
        stats["fallback_graphs"] += 1
        log.info("Triton backend runs this graph as is: %s", e)
        return None
    stem = "_".join(k.name for k in kernels[:3]) or "graph"
    path, warm = write_module(source, stem)
    stats["warm_files"] += warm
    key = cache.make_key(str(gm.graph), example_inputs, "triton")
    output_code_log.info("Triton code for graph (cache key %s, file %s):\n%s", key[:16], path, source)
    module = import_module(path)
    compiled = CompiledTritonGraph(module, lowered, kernels, gm, device, path,
                                   autotune=autotune_enabled() if autotune is None else autotune)
    codegen_s = time.perf_counter() - t0
    compile_s = compiled.precompile()
    log.info("Triton graph %s: %d kernels, codegen %.3f s, kernel compile %.3f s", path.name, len(kernels),
             codegen_s, compile_s)
    stats["compiled"] += 1
    return compiled

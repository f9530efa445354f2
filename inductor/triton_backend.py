"""Graph -> compiled Triton callable: lowering with the Triton fusion plan, module generation, the module file,
ahead-of-time kernel compilation. Returns None (the caller runs the graph in torch) when the graph cannot be
generated: correct first, every gap is a fallback, never a wrong answer."""
import logging
import os
import time

import torch

from graph import symbolic_sizes
from graph.attention import rewrite_causal_attention

from . import cache
from .lowering import lower_graph
from .triton_codegen import supported
from .triton_fusion import plan_triton_fusion
from .triton_launch import autotune_enabled
from .triton_module import generate, probe_extern_layouts
from .triton_rewrites import rewrite_half_norms
from .triton_runtime import CompiledTritonGraph, import_module, write_module
from .triton_split import split_reductions

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


def compile_triton(gm: torch.fx.GraphModule, example_inputs: list, autotune=None):
    generated = generate_triton(gm, example_inputs)
    return None if generated is None else load_triton(gm, generated, autotune)


def generate_triton(gm: torch.fx.GraphModule, example_inputs: list):
    """Lower and generate the module's source: (lowered, source, kernels, device, seconds), or None."""
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
        rewrite_causal_attention(gm, example_inputs)  # naive softmax(q k^T) v -> one fused SDPA call
        lowered = lower_graph(gm, example_inputs, plan=plan_triton_fusion)
        lowered.kernels = split_reductions(lowered.kernels)  # y.sum() of 16M: not one program walking 16M
        probe_extern_layouts(lowered, example_inputs, gm)  # library results' real strides, not meta's
        source, kernels = generate(lowered)
    except NotImplementedError as e:
        stats["fallback_graphs"] += 1
        log.info("Triton backend runs this graph as is: %s", e)
        return None
    return lowered, source, kernels, device, time.perf_counter() - t0


def load_triton(gm: torch.fx.GraphModule, generated, autotune=None):
    """Write the module file, import it, compile its kernels: the callable."""
    lowered, source, kernels, device, codegen_s = generated
    stem = "_".join(k.name for k in kernels[:3]) or "graph"
    path, warm = write_module(source, stem)
    stats["warm_files"] += warm
    key = cache.make_key(symbolic_sizes.text(gm.graph), [], "triton")
    output_code_log.info("Triton code for graph (cache key %s, file %s):\n%s", key[:16], path, source)
    module = import_module(path)
    compiled = CompiledTritonGraph(module, lowered, kernels, gm, device, path,
                                   autotune=autotune_enabled() if autotune is None else autotune)
    compile_s = compiled.precompile()
    log.info("Triton graph %s: %d kernels, codegen %.3f s, kernel compile %.3f s", path.name, len(kernels),
             codegen_s, compile_s)
    stats["compiled"] += 1
    return compiled

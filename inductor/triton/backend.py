"""Graph -> compiled Triton callable, in three stages:

  PLAN    rewrites (triton/rewrites.py, graph/attention.py, graph/pad_matmul.py); lowering with the Triton fusion
          plan and split reductions (planner.lower_round); library layouts probed (probe.py); side outputs,
          residual sums, fused matmul sites, views and in-place outputs (planner.plan_module -> plan.ModulePlan)
  WRITE   the kernels of the plan (kernels.py: codegen.py per kernel, twins kept once), in rounds with PLAN:
          a kernel the code generator rejects is split from its fusion or runs in torch (fallback.py) and the
          graph is planned again (per-kernel fallback)
  WRITE   the host code of the finished plan (host.py), then the module file, its import and ahead-of-time kernel
          compilation (runtime/triton_graph.py).

Correct first, every gap is a fallback, never a wrong answer: a kernel the code generator cannot express runs its
ops in torch inside the module, and only what no module can hold returns None (the caller runs the graph in
torch)."""
import logging
import time
from typing import Callable, NamedTuple

import torch

from framejit.graph import symbolic_sizes
from framejit.graph.core_ops import read_by_torch_calls_only
from framejit.graph.attention import drop_constant_sdpa_masks, rewrite_causal_attention
from framejit.graph.pad_matmul import pad_misaligned_matmuls, pad_misaligned_operands
from framejit.graph.size_variants import Built
from framejit.graph.symbolic_shapes import is_dynamic

from .. import cache, prepare
from ..config import config
from ..ir import FallbackKernel, deep_expressions
from ..runtime.launch_configs import autotune_enabled
from ..runtime.triton_graph import CompiledTritonGraph, ModuleFacts, host_shortcuts, import_module, write_module
from . import fallback, host, host_scalars, module_cache, planner, probe
from .kernels import UnsupportedKernels, write_kernels
from .rewrites import channels_last_convolutions, rewrite_half_norms
from .spelling import op_name

log = logging.getLogger("jit.inductor.triton")
torch_log = logging.getLogger("jit.inductor")  # the backends' common "runs in torch" lines
output_code_log = logging.getLogger("jit.output_code")
stats = {"compiled": 0, "fallback_graphs": 0, "fallback_ops": 0, "warm_files": 0}


class Generated(NamedTuple):
    lowered: object       # the LoweredGraph; None for a module read from the cache (module_cache.py)
    source: str
    kernels: list         # codegen.KernelSource per distinct kernel
    device: torch.device
    seconds: float        # planning and code generation (reading the cache)
    autotune: bool
    facts: ModuleFacts    # what the host needs of `lowered`
    replan: Callable | None = None  # a module read from the cache: plans the graph again for its LoweredGraph


def _device(gm: torch.fx.GraphModule, example_inputs):
    """The GPU the graph's inputs are on. Beside them may sit 0-dim CPU tensors that only torch calls read (the
    philox seed and offset float32 efficient attention saves for its backward): those calls take them as eager
    does, and no generated kernel touches them."""
    placeholders = gm.graph.find_nodes(op="placeholder")
    scalars = set(gm.meta.get(host_scalars.HOST_SCALARS, ()))  # passed as Python floats (host_scalars.py)
    devices = {x.device for x, node in zip(example_inputs, placeholders) if isinstance(x, torch.Tensor) and not (
        x.device.type == "cpu" and x.dim() == 0 and (read_by_torch_calls_only(node) or node.name in scalars))}
    if len(devices) != 1:
        return None
    device = devices.pop()
    if device.type == "cuda" or (device.type == "cpu" and config.triton_interpret):
        return device
    return None


def build(gm: torch.fx.GraphModule, example_inputs: list, autotune: bool | None) -> Built:
    """The generated module's source (sizes as symbols, kernels taking them as arguments) and how to load it."""
    reason = prepare.needs_torch_runtime(gm, example_inputs)
    if reason is not None:
        torch_log.info("graph runs in torch: %s", reason)
        return Built("", lambda: gm)
    as_captured = prepare.as_captured(gm)
    gm = prepare.optimize(gm, example_inputs)
    device = next((x.device for x in example_inputs if isinstance(x, torch.Tensor) and x.dim()), None)
    split = host_scalars.split(gm, example_inputs, device) if device is not None else None
    # scalar arithmetic on 0-dim CPU tensors: Python on the host, scalar kernel arguments; where the rest cannot be
    # generated so (a view of a scalar returned), the graph as it is
    generated = None if split is None else generate_triton(split.gm, split.example_inputs, autotune)
    if generated is not None:
        log.info("Triton graph: host scalars computed in Python:\n%s", split.source)
        return Built(generated[1] + "\n# host scalars:\n" + split.source, lambda: prepare.copy_aliased_outputs(
            split.wrap(load_triton(split.gm, generated)), gm))
    generated = generate_triton(gm, example_inputs, autotune)
    if generated is None:
        return Built("", as_captured)
    return Built(generated[1], lambda: prepare.copy_aliased_outputs(load_triton(gm, generated), gm))


def compile_triton(gm: torch.fx.GraphModule, example_inputs: list, autotune=None):
    generated = generate_triton(gm, example_inputs, autotune)
    return None if generated is None else load_triton(gm, generated)


def generate_triton(gm: torch.fx.GraphModule, example_inputs: list, autotune=None):
    """Lower and generate the module's source (a `Generated`), or read it from the cache (module_cache.py); None
    where the graph runs as is.
    `autotune` (None: FRAMEJIT_AUTOTUNE): the module will time its choices (fused Triton matmul call sites are
    generated for it); load_triton builds it so."""
    if autotune is None:
        autotune = autotune_enabled()
    if not all(isinstance(x, torch.Tensor) for x in example_inputs):
        log.info("Triton backend runs this graph as is: a non-tensor input")
        return None  # inputs of a dtype with no Triton type are fine: only torch fallbacks read them
    device = _device(gm, example_inputs)
    if device is None:
        log.info("Triton backend runs this graph as is: inputs on several devices or not on a GPU")
        return None
    t0 = time.perf_counter()
    try:
        _rewrite(gm, example_inputs, device)                                      # PLAN: graph rewrites
        key = None if is_dynamic(gm) else module_cache.key(gm, example_inputs, device, autotune)
        stored = module_cache.load(key) if key else None
        if stored is not None:  # planned and written by an earlier compile (this process or another)
            source, kernels, facts = stored
            log.info("Triton graph: module read from the cache (key %s)", key[:16])
            return Generated(None, source, kernels, device, time.perf_counter() - t0, autotune, facts,
                             _replanner(gm, example_inputs, autotune, device))
        with deep_expressions():
            plan, written = _plan_and_write_kernels(gm, example_inputs, autotune, device)  # PLAN, WRITE kernels
            source = host.write_module(plan, written)                                 # WRITE host code
    except NotImplementedError as e:
        stats["fallback_graphs"] += 1
        log.info("Triton backend runs this graph as is: %s", e)
        return None
    lowered, kernels = plan.lowered, written.kernels
    fallbacks = [k for k in lowered.kernels if isinstance(k, FallbackKernel)]
    if fallbacks and not kernels:  # nothing generated: torch's own kernels for the whole graph do as well
        stats["fallback_graphs"] += 1
        log.info("Triton backend runs this graph as is: every op runs in torch (%s: %s)",
                 op_name(fallbacks[0].target), fallbacks[0].reason)
        return None
    for k in fallbacks:
        log.info("Triton graph: torch fallback %s (%s)", op_name(k.target), k.reason)
    stats["fallback_ops"] += len(fallbacks)
    facts = ModuleFacts.of(lowered)
    if key:
        module_cache.store(key, source, kernels, facts)
    return Generated(lowered, source, kernels, device, time.perf_counter() - t0, autotune, facts)


def _replanner(gm: torch.fx.GraphModule, example_inputs: list, autotune: bool, device: torch.device) -> Callable:
    """Plans gm again (for the LoweredGraph of a module read from the cache) on inputs laid out as these were,
    without keeping these alive."""
    layouts = [(x.shape, x.stride(), x.dtype, x.device) for x in example_inputs]

    def replan():
        inputs = [torch.empty_strided(*layout[:2], dtype=layout[2], device=layout[3]) for layout in layouts]
        return _plan_and_write_kernels(gm, inputs, autotune, device)[0].lowered
    return replan


def _rewrite(gm: torch.fx.GraphModule, example_inputs: list, device: torch.device) -> None:
    rewrite_half_norms(gm)
    rewrite_causal_attention(gm, example_inputs)  # naive softmax(q k^T) v -> one fused SDPA call
    drop_constant_sdpa_masks(gm, example_inputs)  # an all-True or causal constant mask -> none
    pad_misaligned_operands(gm, device)  # the gradient of GPT-2's (8192, 50257) logits, read by two products
    pad_misaligned_matmuls(gm, device)  # its LM head and the backward's (768, 50257) weight gradient
    channels_last_convolutions(gm, device)  # cuDNN's NHWC kernels, eager's NCHW result


def _plan_and_write_kernels(gm: torch.fx.GraphModule, example_inputs: list, autotune: bool,
                            device: torch.device):
    """(ModulePlan, WrittenKernels) once every kernel of the plan is written: rounds of lowering, planning and
    writing kernels, each round sending the kernels that failed to torch or out of their fusion (fallback.py);
    NotImplementedError where that does not converge."""
    forced = fallback.forced_by_env(gm.graph, device)
    shortcuts = host_shortcuts()  # FRAMEJIT_TRITON_HOST_SHORTCUTS, read once for the probe and the plan
    groups: list = []  # node sets whose fused kernel failed: lowered one node per kernel
    for _ in range(fallback.MAX_ROUNDS):
        keep = frozenset().union(*groups)
        # PLAN: lowering with the fusion plan, split reductions; library results' real strides, not meta's; side
        # outputs, residual sums, fused matmul sites, views and in-place outputs
        lowered, origin, failures = planner.lower_round(gm, example_inputs, keep, forced)
        probe.probe_extern_layouts(lowered, example_inputs, gm, shortcuts)
        plan = planner.plan_module(lowered, autotune, shortcuts)
        try:  # WRITE kernels: each failure reported, the round's others written all the same
            written = write_kernels(plan)
        except UnsupportedKernels as e:
            failures += [([origin[b] for b in bufs if b in origin], why) for bufs, why in e.failures]
        if not failures:
            return plan, written
        groups = fallback.respond(failures, forced, groups, keep)
    raise NotImplementedError(f"kernels still failing after {fallback.MAX_ROUNDS} lowering rounds: {failures[0][1]}")


def load_triton(gm: torch.fx.GraphModule, generated: Generated):
    """Write the module file, import it, compile its kernels: the callable."""
    stem = "_".join(k.name for k in generated.kernels[:3]) or "graph"
    path, warm = write_module(generated.source, stem)
    stats["warm_files"] += warm
    key = cache.make_key(symbolic_sizes.text(gm.graph), [], "triton")
    output_code_log.info("Triton code for graph (cache key %s, file %s):\n%s", key[:16], path, generated.source)
    module = import_module(path)
    compiled = CompiledTritonGraph(module, generated.lowered, generated.kernels, gm, generated.device, path,
                                   autotune=generated.autotune, facts=generated.facts, replan=generated.replan)
    compile_s = compiled.precompile()
    log.info("Triton graph %s: %d kernels, codegen %.3f s, kernel compile %.3f s", path.name,
             len(generated.kernels), generated.seconds, compile_s)
    stats["compiled"] += 1
    return compiled

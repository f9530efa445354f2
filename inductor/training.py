"""Training: a captured graph whose inputs require grad (grad mode on) compiled as a forward and a backward graph,
both through the backend's own inference path, joined by one torch.autograd.Function per region.

  captured graph ─► graph/autodiff/joint.py (forward + torch's autograd traced by make_fx, core ops)
                 ─► graph/autodiff/partition.py (min-cut: the forward's outputs + the values it saves)
                 ─► compile(forward)  now;  compile(backward) at the first backward, on its real inputs
  call ─► CompiledRegion ─► _RegionFunction.apply: compiled forward, save_for_backward, non-differentiable outputs
  backward ─► compiled backward (autocast off: the graph's casts are explicit); create_graph=True: the captured
              graph run again under torch's autograd, with the forward's random state restored

What the joint trace cannot handle (in-place writes to inputs, outputs that are views of inputs, grad-mode
switches inside the graph, non-tensor inputs, a failed trace) runs as captured, under torch's autograd, with the
reason logged (JIT_LOGS=inductor). A graph with dynamic sizes is specialized per size (graph/size_variants.py's
fixed-shape build): the partition is a plan for fixed byte counts. `jit.counters["backward_graphs"]` counts the
compiled backward graphs; JIT_LOGS=graph prints both graphs and what the forward saves.

Under FSDP2 (fully_shard) its hooks (all-gather, reduce-scatter) run eagerly around a compiled block, which reads
the unsharded `nn.Parameter`s FSDP2 sets before each forward (DTensors never reach a graph): a lone compiled block
is guarded by their identity, which holds since FSDP2 keeps one unsharded Parameter per parameter after the first
all-gather and refills its storage; from a second block of the class on, by structure (jit/dynamic.py).
"""
from __future__ import annotations

import logging
import sys
import threading
import warnings
from typing import Callable

import torch
import torch.fx as fx

from framejit.graph.autodiff.joint import NotDifferentiable, trace_joint
from framejit.graph.autodiff.partition import Partition, partition
from framejit.graph.core_ops import read_by_torch_calls_only
from framejit.graph.layout_free import reads_any_layout, rows_padded
from framejit.graph.effects import has_mutation, is_random
from framejit.graph import grad_mode
from framejit.graph.grad_mode import detach_no_grad_blocks
from framejit.graph.input_writes import functionalize_input_writes, writing_call
from framejit.graph.size_variants import SizeVariants, copy_module, dynamic_graph, fixed_shape_build

from . import counters
from .config import config
from .first_call_check import computes_in_half, disagreement, scale

log = logging.getLogger("jit.inductor")
graph_log = logging.getLogger("jit.graph")
Compiler = Callable[[fx.GraphModule, list], Callable]
MAX_SIZES = 8  # size variants of one training graph before it runs as captured


def compile_training(gm: fx.GraphModule, example_inputs: list, compile_inference: Compiler,
                     written: tuple = ()) -> Callable:
    """A callable with gm's inputs and outputs whose outputs have a compiled backward. `compile_inference` is the
    backend's own path (gm, example_inputs) -> callable, used for both graphs. `written`: inputs the caller writes
    to after each call (the backward must not read them)."""
    out = next(n for n in reversed(gm.graph.nodes) if n.op == "output")
    if not isinstance(out.args[0], (tuple, list)):  # a graph returning one value (torch.compile's, symbolic_trace's)
        tupled = copy_module(gm)
        result = next(n for n in reversed(tupled.graph.nodes) if n.op == "output")
        result.args = ((result.args[0],),)
        tupled.recompile()
        compiled = compile_training(tupled, example_inputs, compile_inference, written)
        return lambda *args: compiled(*args)[0]
    if any(n.op == "call_function" and n.target is grad_mode.SWITCH for n in gm.graph.nodes):
        switch_free = copy_module(gm)  # `with torch.no_grad():` inside (rotary embeddings): its reads detached
        if detach_no_grad_blocks(switch_free, torch.is_grad_enabled()):
            gm = switch_free
    writes = None if written else functionalize_input_writes(gm, example_inputs)
    if writes is not None:  # BatchNorm's running statistics: the graph returns them, written back after it
        log.info("training graph: %d input(s) written in place are returned by the graph and written back after it",
                 len(writes.written))
        functional = compile_training(writes.gm, example_inputs, compile_inference, writes.written)
        return writing_call(functional, gm, writes)
    if dynamic_graph(gm):
        build = fixed_shape_build(lambda g, ex: _compile_fixed(g, ex, compile_inference, written))
        return SizeVariants(gm, example_inputs, build, gm.forward, limit=MAX_SIZES, name="training graph")
    return _compile_fixed(gm, example_inputs, compile_inference, written)


def _compile_fixed(gm: fx.GraphModule, example_inputs: list, compile_inference: Compiler,
                   written: tuple = ()) -> Callable:
    try:
        joint = trace_joint(gm, example_inputs)
        if not any(joint.output_grad):  # nothing differentiable comes out: the inference path serves
            return _detaching(compile_inference(copy_module(gm), _detached(example_inputs)))
        plan = partition(joint, written)
    except NotDifferentiable as e:
        log.info("training graph runs in torch (autograd as captured): %s", e)
        return gm
    if graph_log.isEnabledFor(logging.DEBUG):
        saved = ", ".join(f"{s.name} ({s.nbytes} B{', input' if s.input_index is not None else ''})"
                          for s in plan.saved)
        graph_log.debug("training forward graph:\n%s\ntraining backward graph:\n%s\npartition saved %d values, "
                        "%d bytes beyond the inputs (%d forward nodes recomputed in the backward): %s",
                        plan.forward.code, plan.backward.code, len(plan.saved), plan.saved_bytes(),
                        plan.recomputed, saved)
    forward = compile_inference(plan.forward, _detached(example_inputs))
    return CompiledRegion(plan, forward, compile_inference, gm, _devices(example_inputs))


def _detached(values: list) -> list:
    return [x.detach() if isinstance(x, torch.Tensor) else x for x in values]


def _graph_inputs(values) -> list:
    """What a region's compiled graphs are called with (grad mode is off there): parameters as themselves, since
    a backend may treat them apart (the NumPy runtime views their memory without pinning the storage's size:
    FSDP2 frees parameters by resizing storages), everything else detached."""
    return [x.detach() if isinstance(x, torch.Tensor) and x.requires_grad and not isinstance(x, torch.nn.Parameter)
            else x for x in values]


def _detaching(compiled: Callable) -> Callable:
    def run(*args):
        return compiled(*_detached(args))
    run.source = getattr(compiled, "source", None)
    return run


def _devices(values: list) -> tuple:
    return tuple(sorted({x.device.type for x in values if isinstance(x, torch.Tensor)}))


def _suspended(fn: Callable) -> Callable:
    """fn run with framejit's frame hook off on this thread, when jit drives this compile (inductor never imports
    jit: it is looked up)."""
    hook = sys.modules.get("jit._C")
    return hook.run_suspended(fn) if hook is not None else fn


def _misdescribed(backward: fx.GraphModule, saved: list) -> str | None:
    """Why the backward cannot be compiled for these saved values, if it cannot: one has another shape than its
    meta kernel promised (cuDNN attention's logsumexp: (B, H, T) for a promised (B, H, T, 1)) and an op other
    than a torch call reads it. A torch call (the attention's backward) takes it as it is; generated code would
    index it by the promised layout."""
    for node, t in zip(backward.graph.find_nodes(op="placeholder"), saved):
        val = node.meta.get("val")
        if isinstance(t, torch.Tensor) and isinstance(val, torch.Tensor) and tuple(t.shape) != tuple(val.shape) \
                and not read_by_torch_calls_only(node):
            return f"saved value {node.name} has shape {tuple(t.shape)} where its trace says {tuple(val.shape)}"
    return None


def _laid_out(t: torch.Tensor, layout) -> torch.Tensor:
    """t with the strides the backward graph was traced for (a copy only where they differ)."""
    if layout is None or t.numel() <= 1 or tuple(t.shape) != layout[0] or t.stride() == layout[1]:
        return t  # another shape than traced: a torch call's result its meta kernel misdescribes (above)
    out = torch.empty_strided(t.shape, layout[1], dtype=t.dtype, device=t.device)
    return out.copy_(t)


class _AutocastOff:
    """Autocast switched off around a graph call (its casts are explicit nodes, as in the forward)."""

    def __enter__(self):
        self.on = [d for d in ("cpu", "cuda") if torch.is_autocast_enabled(d)]
        for d in self.on:
            torch.set_autocast_enabled(d, False)

    def __exit__(self, *exc):
        for d in self.on:
            torch.set_autocast_enabled(d, True)


class _RandomState:
    """The generators' state before a forward that draws random numbers, for a recompute that must draw the same."""

    def __init__(self, devices: tuple):
        self.cuda = "cuda" in devices
        self.cpu_state = torch.get_rng_state()
        self.cuda_state = torch.cuda.get_rng_state() if self.cuda else None

    def restored(self):
        fork = torch.random.fork_rng(devices=[torch.cuda.current_device()] if self.cuda else [])
        state = self

        class Restore:
            def __enter__(self):
                fork.__enter__()
                torch.set_rng_state(state.cpu_state)
                if state.cuda:
                    torch.cuda.set_rng_state(state.cuda_state)

            def __exit__(self, *exc):
                return fork.__exit__(*exc)
        return Restore()


class CompiledRegion:
    """One compiled training region: its forward compiled, its backward compiled at the first backward."""

    def __init__(self, plan: Partition, forward: Callable, compile_inference: Compiler, captured: fx.GraphModule,
                 devices: tuple):
        self.plan, self.forward, self.compile_inference = plan, forward, compile_inference
        self.captured, self.devices = captured, devices
        self.random = any(is_random(n) for n in plan.forward.graph.nodes)
        self.backward = None
        # the shape and strides the trace gave each saved value: the backward graph's views are only valid over
        # those, and the compiled forward may lay a value out otherwise (eager's conv output vs the NumPy code's).
        # None for a value only torch calls read: a library's result as the library made it (efficient
        # attention's backward rejects a logsumexp laid out as its meta kernel says)
        self.saved_layouts = [(tuple(n.meta["val"].shape), n.meta["val"].stride())
                              if isinstance(n.meta.get("val"), torch.Tensor) and not read_by_torch_calls_only(n) else None
                              for n in plan.backward.graph.find_nodes(op="placeholder")][:len(plan.saved)]
        self.lock = threading.Lock()
        self.layouts_adopted = False
        self.warned_double = False
        self.source = getattr(forward, "source", None)
        # first_call_check.py: generated graphs checked once against themselves run in torch (a forward drawing
        # random numbers draws them otherwise than torch: not comparable; a graph writing to its inputs would
        # write twice)
        check = config.check_first_call
        self.forward_unchecked = check and not self.random and self.source is not None and \
            not has_mutation(plan.forward.graph)
        self.backward_unchecked = check and not has_mutation(plan.backward.graph)
        self.half = check and computes_in_half(plan.forward.graph)  # float32 results inherit bf16 rounding

    def __call__(self, *args):
        return _RegionFunction.apply(self, *args)

    def checked_forward(self, inputs: list, results: list) -> list:
        """The first forward's results, or the graph's run in torch where they disagree (then the forward runs
        in torch from now on)."""
        self.forward_unchecked = False
        want = _in_torch(self.plan.forward, inputs)
        why = want is not None and disagreement(results, want, scale(inputs), self.half)
        if not why:
            return results
        _warn_disagreement("forward", why, self.captured)
        self.forward = lambda *args: _in_torch(self.plan.forward, args, raising=True)
        return want

    def checked_backward(self, results: list, want: list, level: float) -> list:
        """The first backward's results, or the graph's run in torch (`want`) where they disagree (then the
        backward runs in torch from now on). `level`: the scale of its saved values and tangents."""
        why = disagreement(results, want, level, self.half)
        if not why:
            return results
        _warn_disagreement("backward", why, self.captured)
        self.backward = self.plan.backward
        return want

    def adopt_saved_layouts(self, saved: list) -> None:
        """Before the backward is compiled: a saved value the compiled forward made in another layout than the
        trace's (the LM head's product left in its padded buffer, graph/pad_matmul.py) is taken as it comes where
        that layout is the traced contiguous one with padded rows (torch's kernels, run for the first-call check
        or as a fallback, then give results laid out as from the traced one) and every backward op reading it
        takes any layout (graph/layout_free.py): its placeholder is described so, and later calls copy only a
        value that comes otherwise."""
        with self.lock:
            if self.backward is not None or self.layouts_adopted:
                return
            self.layouts_adopted = True
            nodes = self.plan.backward.graph.find_nodes(op="placeholder")
            for i, (t, layout, node) in enumerate(zip(saved, self.saved_layouts, nodes)):
                if layout is None or not isinstance(t, torch.Tensor) or tuple(t.shape) != layout[0] or \
                        t.stride() == layout[1] or not rows_padded(t, layout[1]) or \
                        not all(reads_any_layout(u) for u in node.users):
                    continue
                self.saved_layouts[i] = (layout[0], t.stride())
                node.meta["val"] = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
                log.info("training graph: saved value %s read by the backward in the forward's layout %s",
                         node.name, t.stride())

    def compiled_backward(self, saved: list, tangents: list) -> Callable:
        with self.lock:
            if self.backward is None:
                reason = _misdescribed(self.plan.backward, saved)
                if reason:  # the graph as traced, in torch
                    log.info("training graph: backward runs in torch: %s", reason)
                    self.backward = self.plan.backward
                else:
                    self.backward = self.compile_inference(self.plan.backward, saved + tangents)
                counters.bump("backward_graphs")
        return self.backward

    def recompute_grads(self, inputs: tuple, random_state, grads: tuple) -> list:
        """Gradients with create_graph=True: the captured graph again under torch's autograd (differentiable
        again), on the same inputs and, where it draws random numbers, the same random state."""
        if not self.warned_double:
            self.warned_double = True
            log.info("training graph: backward with create_graph=True (double backward) runs through torch's "
                     "autograd: the captured graph is run again for it")
        plan = self.plan
        with torch.enable_grad(), _AutocastOff():
            if random_state is not None:
                with random_state.restored():
                    outs = self.captured(*inputs)
            else:
                outs = self.captured(*inputs)
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        diff = [i for i, d in enumerate(plan.output_grad) if d]
        wanted = [inputs[i] for i in plan.grad_of]
        if not wanted:
            return [None] * len(inputs)
        got = torch.autograd.grad([outs[i] for i in diff], wanted, [grads[i] for i in diff], create_graph=True,
                                  allow_unused=True)
        result = [None] * len(inputs)
        for i, g in zip(plan.grad_of, got):
            result[i] = g
        return result


def _in_torch(graph: fx.GraphModule, args, raising: bool = False) -> list | None:
    """The graph's results run in torch, op by op (autocast off: its casts are nodes); None where the run does
    not fit in memory beside the generated one's results (the check is skipped, not the step failed)."""
    try:
        with torch.no_grad(), _AutocastOff():
            return list(graph(*args))
    except torch.OutOfMemoryError:
        if raising:
            raise
        log.info("training graph: first-call check skipped: out of memory for the graph run in torch")
        return None


def _warn_disagreement(which: str, why: str, captured: fx.GraphModule) -> None:
    warnings.warn(f"framejit: the generated {which} of a training graph disagrees with the same graph run in torch "
                  f"on its first call ({why}); it runs in torch from now on. Please report this with the model "
                  f"(FRAMEJIT_CHECK_FIRST_CALL=0 skips the check).", RuntimeWarning, stacklevel=2)
    log.info("training graph whose generated %s disagreed:\n%s", which, captured.code)


class _RegionFunction(torch.autograd.Function):
    """The node a compiled region adds to autograd's graph (one per region: graph breaks make one each)."""

    @staticmethod
    def forward(ctx, region: CompiledRegion, *args):
        plan = region.plan
        ctx.random_state = _RandomState(region.devices) if region.random else None
        inputs = _graph_inputs(args)
        results = region.forward(*inputs)
        if region.forward_unchecked:
            results = region.checked_forward(inputs, list(results))
        outputs = list(results[:plan.num_outputs])
        extra = iter(results[plan.num_outputs:])
        # saved inputs are the caller's tensors themselves (no copy; autograd checks their versions as eager's)
        ctx.save_for_backward(*[args[s.input_index] if s.input_index is not None else next(extra)
                                for s in plan.saved])
        ctx.region, ctx.inputs = region, args  # inputs: for a create_graph backward only
        ctx.mark_non_differentiable(*[o for o, d in zip(outputs, plan.output_grad) if not d])
        ctx.set_materialize_grads(False)  # which outputs got no gradient decides which inputs get None
        ctx.output_meta = [(o.shape, o.dtype, o.device) for o in outputs]
        return tuple(outputs)

    @staticmethod
    def backward(ctx, *grads):
        # autograd runs this inside whatever frame called .backward(), perhaps one the frame hook watches (a
        # compiled function calling loss.backward()): the compiler's code and the generated code are never compiled
        return _suspended(_backward)(ctx, *grads)


def _backward(ctx, *grads):
    region = ctx.region
    plan = region.plan
    arrived = [g is not None for g in grads]
    # an output no gradient reached gets zeros (the backward was compiled for contiguous tangents)
    grads = [g.contiguous() if g is not None else torch.zeros(shape, dtype=dtype, device=device)
             for g, (shape, dtype, device) in zip(grads, ctx.output_meta)]
    if torch.is_grad_enabled():  # create_graph=True: gradients that are differentiable again
        return (None, *region.recompute_grads(ctx.inputs, ctx.random_state, grads))
    saved = _graph_inputs(ctx.saved_tensors)
    if region.backward is None:
        region.adopt_saved_layouts(saved)
    saved = [_laid_out(t, layout) for t, layout in zip(saved, region.saved_layouts)]
    tangents = [g for g, d in zip(grads, plan.output_grad) if d]
    backward = region.backward or region.compiled_backward(saved, tangents)
    want = level = None
    if region.backward_unchecked:
        region.backward_unchecked = False
        if backward is not plan.backward:
            want = _in_torch(plan.backward, saved + tangents)
            # measured now: the generated backward frees its inputs
            level = scale(saved + tangents) if want is not None else None
    boxed = getattr(backward, "call_boxed", None)
    if boxed is not None and hasattr(ctx, "maybe_clear_saved_tensors"):
        # autograd lets go of the saved values (unless retain_graph) and the compiled backward frees each after
        # its last use, as eager's backward frees a node's saved values when the node has run
        ctx.maybe_clear_saved_tensors()
        args = saved + tangents
        del saved, tangents
        with _AutocastOff():
            results = boxed(args)
    else:
        with _AutocastOff():
            results = backward(*saved, *tangents)
    if want is not None:
        results = region.checked_backward(list(results), want, level)
    out = [None] * len(ctx.inputs)
    for i, g, reads in zip(plan.grad_of, results, plan.grad_tangents):
        if any(arrived[k] for k in reads):  # else eager's autograd never reaches input i: None
            out[i] = g
    return (None, *out)

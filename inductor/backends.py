"""Backend entry points in torch.compile's convention: backend(gm, example_inputs) -> callable."""
import logging
import os
import tempfile

import torch
import torch.fx

from graph import symbolic_sizes
from graph.functionalize import functionalize_intermediates
from graph.size_variants import Built, SizeVariants, dynamic_graph
from graph.symbolic_shapes import is_dynamic

from . import cache, dtypes, training
from .lowering import lower_graph
from .ir import FallbackKernel, contiguous_strides
from .numpy_codegen import generate
from .runtime import CompiledNumpyGraph, alias_plan, load_module

output_code_log = logging.getLogger("jit.output_code")
log = logging.getLogger("jit.inductor")
_modules: dict = {}  # cache key -> executed generated module (its source lives in `cache`)


def _as_captured(gm) -> "callable":
    """A callable running gm's graph as it was captured. The optimizer rewrites gm in place into core ops
    (relu -> lt, full, where), so a graph a backend then declines must not run those: eager's own kernels are
    faster. Only the Graph is copied now; the module is built if a backend declines."""
    graph = torch.fx.Graph()
    graph.output(graph.graph_copy(gm.graph, {}))
    return lambda: torch.fx.GraphModule(gm, graph)


def _optimize(gm, example_inputs):
    """Run the graph optimizer (graph/passes.py) when it is available; it normalizes to the core aten op set."""
    try:
        from graph import passes
    except ImportError:
        return gm
    optimize = getattr(passes, "optimize", None)
    if optimize is None:
        return gm
    result = optimize(gm, example_inputs)
    return result if isinstance(result, torch.fx.GraphModule) else gm


def _numpy_source(gm, example_inputs):
    """(LoweredGraph, generated source, cache key), reusing cached source when the key matches."""
    symbolic = is_dynamic(gm)
    key = cache.make_key(symbolic_sizes.text(gm.graph), example_inputs, "numpy")
    lowered = lower_graph(gm, example_inputs)
    alias_plan(lowered)  # raises where eager returns a view of an input that the code cannot
    if any(len(getattr(o, "shape", None) or ()) > 1 and 0 in o.shape for o in lowered.outputs) and any(
            isinstance(x, torch.Tensor) and x.numel() == 0 and x.stride() != contiguous_strides(x.shape)
            for x in example_inputs):
        # an empty result's strides follow the input's degenerate ones in eager's CPU kernels (isfinite of an
        # empty expand: (0, 1)) and not in the meta kernels (1, 1), and a caller can read them: torch makes it
        raise NotImplementedError("an empty output from an empty input of another layout")
    # with dynamic sizes, generating the source records the conditions the module is valid under: no reuse
    payload = None if symbolic else cache.get(key)
    if payload is None:
        source = generate(lowered)
        # sources that call eager fallbacks are cheap to rebuild and depend on live torch callables: memory only
        if not symbolic:
            cache.put(key, {"source": source},
                      disk=not any(isinstance(k, FallbackKernel) for k in lowered.kernels))
    else:
        source = payload["source"]
    return lowered, source, key


_INFERENCE_SWITCHES = (torch.autograd.grad_mode._enter_inference_mode, torch.autograd.grad_mode._exit_inference_mode)


def _needs_torch_runtime(gm: torch.fx.GraphModule, example_inputs: list) -> str | None:
    """Why a graph must run in torch rather than NumPy, if it must: NumPy code records no autograd history and
    writes results into new arrays, so graphs that need gradients or mutate their inputs stay in torch."""
    from graph.effects import has_mutation
    needs_grad = any(isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs)
    switches_grad = any(n.target is torch._C._set_grad_enabled for n in gm.graph.nodes)
    if needs_grad and (torch.is_grad_enabled() or switches_grad):
        return "inputs require grad (autograd needs torch ops)"
    if switches_grad and torch.is_grad_enabled():
        return "grad mode changes inside the graph"
    if any(n.target in _INFERENCE_SWITCHES for n in gm.graph.nodes):
        return "inference mode changes inside the graph"  # its tensors must be inference tensors, made by torch
    if has_mutation(gm.graph) and (functionalize_intermediates(gm) == 0 or has_mutation(gm.graph)):
        # writes into the graph's own intermediates (ReLU(inplace=True), out += x) were made out of place
        # first; what is left writes to inputs or to aliased tensors
        return "the graph mutates a tensor in place"
    return None


def _copy_aliased_outputs(compiled, gm: torch.fx.GraphModule):
    """Outputs the optimizer reduced to an input or to a view of another output (x * 1 -> x; `y.expand(1, n) * 1`
    -> a view of y), or merged with an earlier output (CSE of `x / x` computed twice), must still be new tensors,
    as in eager: the optimized graph's aliasing (its meta values) against eager's (EagerOutput)."""
    from graph.normalize import EAGER_OUTPUTS, eager_outputs
    out = next(n for n in gm.graph.nodes if n.op == "output")
    single = not isinstance(out.args[0], (tuple, list))
    results = (out.args[0],) if single else out.args[0]
    eager = gm.meta.get(EAGER_OUTPUTS)
    now = eager_outputs(gm) if eager is not None else ()
    aliased = [i for i, r in enumerate(results) if isinstance(r, torch.fx.Node) and (
        r.op == "placeholder" or eager is not None and i < len(eager) and eager[i].alias is None and (
            any(results[j] is r and j not in eager[i].shares for j in range(i)) or
            i < len(now) and (now[i].alias not in (None, "unknown") or
                              any(j not in eager[i].shares for j in now[i].shares))))]
    if not aliased:
        return compiled

    def run(*args):
        result = compiled(*args)
        if single:
            return result.clone()
        outputs = list(result)
        for i in aliased:
            outputs[i] = outputs[i].clone()
        return type(result)(outputs)

    run.source = getattr(compiled, "source", None)
    return run


def numpy_backend(gm: torch.fx.GraphModule, example_inputs: list):
    """Compile gm to a generated NumPy module. Returns a callable with gm's inputs and outputs. A graph with
    dynamic sizes compiles to modules that read their sizes from the inputs, one per set of size conditions."""
    if training.wants_training(gm, example_inputs):
        return training.compile_training(gm, example_inputs, numpy_backend)
    if dynamic_graph(gm):
        return SizeVariants(gm, example_inputs, _numpy_build, gm.forward, name="NumPy graph")
    return _numpy_build(gm, example_inputs).load()


numpy_backend.dynamic_sizes = True


def _numpy_build(gm: torch.fx.GraphModule, example_inputs: list) -> Built:
    """The generated source (Built.text, with dynamic sizes as symbols) and how to load it; a graph NumPy
    cannot run loads as the graph itself (which computes its sizes at run time: right for any size)."""
    as_is = Built("", lambda: gm)
    reason = _needs_torch_runtime(gm, example_inputs)
    if reason is not None:
        log.info("graph runs in torch: %s", reason)
        return as_is
    if not all(isinstance(x, torch.Tensor) and x.device.type == "cpu" and dtypes.supported(x.dtype)
               for x in example_inputs):
        return as_is  # non-tensor, non-CPU or exotic-dtype inputs: NumPy cannot hold them, keep the graph as is
    as_captured = _as_captured(gm)
    gm = _optimize(gm, example_inputs)
    try:
        lowered, source, key = _numpy_source(gm, example_inputs)
    except NotImplementedError as e:
        log.info("NumPy backend runs this graph as is: %s", e)
        return Built("", as_captured)

    def load():
        output_code_log.info("NumPy code for graph (cache key %s):\n%s", key[:16], source)
        module = _modules.get(key)
        if module is None:
            module = _modules[key] = load_module(source, f"<framejit-numpy-{key[:16]}>")
        compiled = CompiledNumpyGraph(module, lowered, gm, example_inputs)  # aliasing as eager's: alias_plan
        compiled.source = source
        return compiled
    return Built(source, load)


def triton_backend(gm: torch.fx.GraphModule, example_inputs: list, autotune: bool | None = None):
    """Compile gm to Triton kernels (inductor/triton_*.py). CUDA tensors, or CPU tensors under Triton's
    interpreter (TRITON_INTERPRET=1, the tests' way to run kernels without a GPU); anything else runs as is."""
    if training.wants_training(gm, example_inputs):
        return training.compile_training(gm, example_inputs, lambda g, ex: triton_backend(g, ex, autotune))
    if dynamic_graph(gm):
        return SizeVariants(gm, example_inputs, lambda g, ex: _triton_build(g, ex, autotune), gm.forward,
                            name="Triton graph")
    return _triton_build(gm, example_inputs, autotune).load()


triton_backend.dynamic_sizes = True


def _triton_build(gm: torch.fx.GraphModule, example_inputs: list, autotune: bool | None) -> Built:
    """The generated module's source (sizes as symbols, kernels taking them as arguments) and how to load it."""
    from .triton_backend import generate_triton, load_triton
    reason = _needs_torch_runtime(gm, example_inputs)
    if reason is not None:
        log.info("graph runs in torch: %s", reason)
        return Built("", lambda: gm)
    as_captured = _as_captured(gm)
    gm = _optimize(gm, example_inputs)
    generated = generate_triton(gm, example_inputs, autotune)
    if generated is None:
        return Built("", as_captured)
    return Built(generated[1], lambda: _copy_aliased_outputs(load_triton(gm, generated), gm))


def inductor_backend(gm: torch.fx.GraphModule, example_inputs: list):
    """The default backend: Triton kernels for CUDA tensors; for CPU tensors NumPy code or the graph as captured,
    whichever measured faster (cpu_choice.py). Graphs needing gradients compile forward and backward alike."""
    if training.wants_training(gm, example_inputs):
        return training.compile_training(gm, example_inputs, inductor_backend)
    if any(isinstance(x, torch.Tensor) and x.device.type == "cuda" for x in example_inputs):
        return triton_backend(gm, example_inputs)
    if any(isinstance(x, torch.Tensor) and x.device.type != "cpu" for x in example_inputs):
        return gm
    from .cpu_choice import choose
    captured = _as_captured(gm)  # before numpy_backend rewrites gm into core ops
    return choose(numpy_backend(gm, example_inputs), captured, example_inputs)


inductor_backend.dynamic_sizes = True


def export_numpy(gm_or_fn, *example_inputs, path: str) -> str:
    """Write a standalone module (imports numpy, never torch) computing the graph: `run(list_of_arrays)`
    returns the outputs as arrays. Raises NotImplementedError naming any op that would need eager torch."""
    gm = gm_or_fn if isinstance(gm_or_fn, torch.fx.GraphModule) else torch.fx.symbolic_trace(gm_or_fn)
    gm = _optimize(gm, list(example_inputs))
    lowered = lower_graph(gm, list(example_inputs))
    needs_torch = [k.source[0] for k in lowered.kernels if isinstance(k, FallbackKernel)]
    if needs_torch:
        raise NotImplementedError("export_numpy: these ops have no NumPy lowering and would need torch: "
                                  + "; ".join(needs_torch))
    if any(getattr(b, "attr", None) for b in lowered.inputs):
        raise NotImplementedError("export_numpy: graphs with constant attributes (get_attr "
                                  + ", ".join(b.attr for b in lowered.inputs if b.attr) + ") are not supported; "
                                  "pass them as inputs")
    source = generate(lowered)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(source)
    os.replace(tmp, path)
    return path


def reset() -> None:
    """Drop every compiled module and cached source held in memory (files on disk stay valid)."""
    _modules.clear()
    cache.clear_memory()

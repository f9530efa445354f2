"""The NumPy backend's steps: a graph that must stay in torch or has inputs NumPy cannot hold runs as is; else
optimized, lowered (core fusion plan, NumPy's dtype table), its source generated or read from the cache, and
loaded as a `CompiledNumpyGraph` (runtime/numpy_graph.py). `export_numpy` writes the source as a standalone
module instead."""
import logging
import os
import tempfile

import torch
import torch.fx

from framejit.graph import symbolic_sizes
from framejit.graph.size_variants import Built
from framejit.graph.symbolic_shapes import is_dynamic

from .. import cache, prepare
from ..ir import FallbackKernel, contiguous_strides
from ..lowering import lower_graph
from ..runtime.numpy_graph import CompiledNumpyGraph, alias_plan, load_module
from . import dtypes

output_code_log = logging.getLogger("jit.output_code")
log = logging.getLogger("jit.inductor")
_modules: dict = {}  # cache key -> executed generated module (its source lives in `cache`)


def numpy_source(gm, example_inputs):
    """(LoweredGraph, generated source, cache key), reusing cached source when the key matches."""
    symbolic = is_dynamic(gm)
    key = cache.make_key(symbolic_sizes.text(gm.graph), example_inputs, "numpy")
    lowered = lower_graph(gm, example_inputs, dtypes.supported)
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
        from .codegen import generate  # only where the cache has no source: a warm process never imports it
        source = generate(lowered)
        # sources that call eager fallbacks are cheap to rebuild and depend on live torch callables: memory only
        if not symbolic:
            cache.put(key, {"source": source},
                      disk=not any(isinstance(k, FallbackKernel) for k in lowered.kernels))
    else:
        source = payload["source"]
    return lowered, source, key


def build(gm: torch.fx.GraphModule, example_inputs: list) -> Built:
    """The generated source (Built.text, with dynamic sizes as symbols) and how to load it; a graph NumPy
    cannot run loads as the graph itself (which computes its sizes at run time: right for any size)."""
    as_is = Built("", lambda: gm)
    reason = prepare.needs_torch_runtime(gm, example_inputs)
    if reason is not None:
        log.info("graph runs in torch: %s", reason)
        return as_is
    if not all(isinstance(x, torch.Tensor) and x.device.type == "cpu" and dtypes.supported(x.dtype)
               for x in example_inputs):
        return as_is  # non-tensor, non-CPU or exotic-dtype inputs: NumPy cannot hold them, keep the graph as is
    as_captured = prepare.as_captured(gm)
    gm = prepare.optimize(gm, example_inputs)
    try:
        lowered, source, key = numpy_source(gm, example_inputs)
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


def export_numpy(gm_or_fn, *example_inputs, path: str) -> str:
    """Write a standalone module (imports numpy, never torch) computing the graph: `run(list_of_arrays)`
    returns the outputs as arrays. Raises NotImplementedError naming any op that would need eager torch."""
    gm = gm_or_fn if isinstance(gm_or_fn, torch.fx.GraphModule) else torch.fx.symbolic_trace(gm_or_fn)
    gm = prepare.optimize(gm, list(example_inputs))
    lowered = lower_graph(gm, list(example_inputs), dtypes.supported)
    needs_torch = [k.source[0] for k in lowered.kernels if isinstance(k, FallbackKernel)]
    if needs_torch:
        raise NotImplementedError("export_numpy: these ops have no NumPy lowering and would need torch: "
                                  + "; ".join(needs_torch))
    if any(b.attr for b in lowered.inputs):
        raise NotImplementedError("export_numpy: graphs with constant attributes (get_attr "
                                  + ", ".join(b.attr for b in lowered.inputs if b.attr) + ") are not supported; "
                                  "pass them as inputs")
    from .codegen import generate
    source = generate(lowered)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(source)
    os.replace(tmp, path)
    return path


def reset() -> None:
    """Drop the executed modules held in memory."""
    _modules.clear()

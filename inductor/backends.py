"""The backends the registry names (jit/backends.py: `inductor.backends:inductor_backend`, `:numpy_backend`,
`:triton_backend`), in torch.compile's convention: backend(gm, example_inputs) -> callable. Each is a `Built`
step (source text + loader, numpy/backend.py and triton/backend.py), so a dynamic-size graph goes through
graph/size_variants.py."""
import sys

import torch
import torch.fx

from framejit.graph.size_variants import SizeVariants, dynamic_graph

from . import cache, prepare


def _training(gm: torch.fx.GraphModule, example_inputs: list, backend, compile_training=None):
    """A graph that needs gradients: inside DistributedDataParallel one region per gradient bucket
    (ddp_buckets.py), else `compile_training()` (default: training.py's forward and backward by `backend`).
    Their modules are imported here, for such graphs only (~35 ms an inference process does not pay)."""
    from . import ddp_buckets, training
    if (bucketed := ddp_buckets.compile_bucketed(gm, example_inputs, backend)) is not None:
        return bucketed
    if compile_training is not None:
        return compile_training()
    return training.compile_training(gm, example_inputs, backend)


def _writing_inputs(gm: torch.fx.GraphModule, example_inputs: list, backend):
    """A graph that writes to its inputs (a buffer's `add_`, BatchNorm's statistics under no_grad): `backend` over
    the graph made functional, the written values copied back after each call (graph/input_writes.py); None
    where there are no such writes or they cannot move (the graph then runs in torch as captured)."""
    from framejit.graph.input_writes import functionalize_input_writes, writing_call
    writes = functionalize_input_writes(gm, example_inputs)
    if writes is None:
        return None
    return writing_call(backend(writes.gm, example_inputs), gm, writes)


def _writing_fresh_tensors(gm: torch.fx.GraphModule, example_inputs: list, backend):
    """A graph whose in-place writes all land in memory it made (`y[:, 1:] = x[:, :-1]` into `y = x.new_zeros(s)`):
    `backend` over it traced functional (graph/autodiff/joint.py `trace_functional`); None where there are no such
    writes or they stay (the graph then runs in torch as captured). The tracing module is imported for such
    graphs only."""
    from framejit.graph.effects import has_mutation
    if not has_mutation(gm.graph) or dynamic_graph(gm):
        return None
    from framejit.graph.autodiff.joint import trace_functional
    traced = trace_functional(gm, example_inputs)
    return None if traced is None else backend(traced, example_inputs)


def export_numpy(gm_or_fn, *example_inputs, path: str) -> str:
    """inductor.export_numpy: numpy/backend.py's `export_numpy` (a standalone NumPy module of the graph)."""
    from .numpy.backend import export_numpy as export
    return export(gm_or_fn, *example_inputs, path=path)


def numpy_backend(gm: torch.fx.GraphModule, example_inputs: list):
    """Compile gm to a generated NumPy module. Returns a callable with gm's inputs and outputs. A graph with
    dynamic sizes compiles to modules that read their sizes from the inputs, one per set of size conditions.
    The NumPy backend's modules (lowering, IR, runtime) are imported here: a process whose CPU choices all read
    torch from the cache never loads them."""
    from .numpy import backend as numpy_steps
    if prepare.wants_training(gm, example_inputs):
        return _training(gm, example_inputs, numpy_backend)
    if (writing := _writing_inputs(gm, example_inputs, numpy_backend)) is not None:
        return writing
    if (writing := _writing_fresh_tensors(gm, example_inputs, numpy_backend)) is not None:
        return writing
    if dynamic_graph(gm):
        return SizeVariants(gm, example_inputs, numpy_steps.build, gm.forward, name="NumPy graph")
    return numpy_steps.build(gm, example_inputs).load()


numpy_backend.dynamic_sizes = True


def triton_backend(gm: torch.fx.GraphModule, example_inputs: list, autotune: bool | None = None):
    """Compile gm to Triton kernels (inductor/triton/). CUDA tensors, or CPU tensors under Triton's
    interpreter (TRITON_INTERPRET=1, the tests' way to run kernels without a GPU); anything else runs as is."""
    from .triton import backend as triton_steps  # imported on first use: `import inductor` needs no triton
    if prepare.wants_training(gm, example_inputs):
        return _training(gm, example_inputs, lambda g, ex: triton_backend(g, ex, autotune))
    for writes in (_writing_inputs, _writing_fresh_tensors):
        if (writing := writes(gm, example_inputs, lambda g, ex: triton_backend(g, ex, autotune))) is not None:
            return writing
    if dynamic_graph(gm):
        return SizeVariants(gm, example_inputs, lambda g, ex: triton_steps.build(g, ex, autotune), gm.forward,
                            name="Triton graph")
    return triton_steps.build(gm, example_inputs, autotune).load()


triton_backend.dynamic_sizes = True


def inductor_backend(gm: torch.fx.GraphModule, example_inputs: list):
    """The default backend: Triton kernels for CUDA tensors; for CPU tensors NumPy code or the graph as captured,
    whichever measured faster (numpy/cpu_choice.py). Graphs needing gradients compile forward and backward alike
    (training.py); inside DistributedDataParallel, one region per gradient bucket (ddp_buckets.py)."""
    if prepare.wants_training(gm, example_inputs):
        if any(isinstance(x, torch.Tensor) and x.device.type != "cpu" for x in example_inputs):
            return _training(gm, example_inputs, inductor_backend)
        from . import training
        from .numpy import cpu_choice

        def on_cpu():
            captured = prepare.as_captured(gm)  # before the joint trace rewrites gm into core ops
            key = cpu_choice.choice_key(gm, example_inputs, "training")
            return cpu_choice.choose_training(
                lambda: training.compile_training(gm, example_inputs, inductor_backend), captured, example_inputs, key)
        return _training(gm, example_inputs, inductor_backend, on_cpu)
    if any(isinstance(x, torch.Tensor) and x.device.type == "cuda" for x in example_inputs):
        return triton_backend(gm, example_inputs)
    if any(isinstance(x, torch.Tensor) and x.device.type != "cpu" for x in example_inputs):
        return gm
    from .numpy import cpu_choice
    captured = prepare.as_captured(gm)  # before numpy_backend rewrites gm into core ops
    if (writing := _writing_inputs(gm, example_inputs, inductor_backend)) is not None:
        # the graph as captured writes in place with torch's kernels and copies nothing back: an optimizer's step
        # of small parameters runs faster so (a small GPT's AdamW: 2.2 ms against 5.6 made functional)
        key = cpu_choice.choice_key(gm, example_inputs, "writes")
        return cpu_choice.choose(lambda: writing, captured, example_inputs, key, writes=True)
    key = cpu_choice.choice_key(gm, example_inputs, "inference")
    return cpu_choice.choose(lambda: numpy_backend(gm, example_inputs), captured, example_inputs, key)


inductor_backend.dynamic_sizes = True


def reset() -> None:
    """Drop every compiled module and cached source held in memory (files on disk stay valid)."""
    numpy_steps = sys.modules.get(f"{__package__}.numpy.backend")
    if numpy_steps is not None:
        numpy_steps.reset()
    cache.clear_memory()

"""The backend registry. A backend follows torch.compile's convention, backend(gm, example_inputs) -> callable,
so third-party backends plug in. Built-in names point at modules imported on first use, keeping `import jit`
light and letting `jit` reach `inductor` only through this table."""
from __future__ import annotations

import importlib
from collections.abc import Callable

from jit.errors import BackendError

Backend = Callable  # (torch.fx.GraphModule, list) -> callable


def _eager(gm, example_inputs):
    """Run the captured graph as it is: the reference for every other backend."""
    return gm.forward


_eager.dynamic_sizes = True  # runs graphs that compute sizes at run time as they are


_registry: dict[str, Backend | str] = {
    "eager": _eager,
    "inductor": "inductor.backends:inductor_backend",
    "numpy": "inductor.backends:numpy_backend",
    "triton": "inductor.backends:triton_backend",
}


def register_backend(name: str, fn: Backend | None = None):
    """Register `fn` under `name` (also usable as a decorator)."""
    if not isinstance(name, str) or not name:
        raise TypeError("backend name must be a non-empty string")

    def add(f: Backend) -> Backend:
        if not callable(f):
            raise TypeError(f"backend {name!r} must be callable")
        _registry[name] = f
        return f

    return add(fn) if fn is not None else add


def list_backends() -> list[str]:
    return sorted(_registry)


def check_backend(backend) -> None:
    """Fail early, at jit.compile time, on a backend that can never work."""
    if callable(backend):
        return
    if not isinstance(backend, str) or backend not in _registry:
        raise BackendError(f"unknown backend {backend!r}; known: {', '.join(list_backends())}, or pass a callable "
                           "backend(gm, example_inputs) -> callable")


def lookup_backend(backend) -> Backend:
    check_backend(backend)
    if callable(backend):
        return backend
    target = _registry[backend]
    if isinstance(target, str):
        module_name, attr = target.split(":")
        try:
            target = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise BackendError(f"backend {backend!r} could not be loaded from {module_name}.{attr}: {e}") from e
        _registry[backend] = target
        _loaded_modules.add(module_name)
    return target


_loaded_modules: set[str] = set()


def reset_backends() -> None:
    """Let each backend module that was loaded drop what it holds in memory (its `reset()`, if it has one)."""
    import sys
    for name in _loaded_modules:
        reset = getattr(sys.modules.get(name), "reset", None)
        if callable(reset):
            reset()


def compile_graph(backend: Backend, gm, example_inputs: list):
    """backend(gm, example_inputs), for graphs with dynamic sizes too. A backend declaring `dynamic_sizes = True`
    takes such a graph as it is (the built-in ones compile it once per set of size conditions,
    graph/size_variants.py). Any other backend gets the graph specialized to each call's input sizes, compiled
    once per size up to jit.config.cache_size_limit sizes; further sizes run the graph as captured."""
    if getattr(backend, "dynamic_sizes", False) or \
            not any(n.meta.get("dynamic_dims") for n in gm.graph.nodes if n.op == "placeholder"):
        return _direct(backend(gm, example_inputs))
    from graph.size_variants import SizeVariants, fixed_shape_build
    from jit.config import config
    name = getattr(backend, "__name__", type(backend).__name__)
    return SizeVariants(gm, example_inputs, fixed_shape_build(backend), gm.forward, limit=config.cache_size_limit,
                        name=f"graph for backend {name}")


def _direct(compiled):
    """A GraphModule a backend returns (the graph as captured, a declined graph) called through its forward: the
    same code without nn.Module.__call__'s hook checks, ~1.5 us per call, which is as much as a small graph's
    ops. Modules with hooks of their own keep __call__."""
    import torch.fx
    if isinstance(compiled, torch.fx.GraphModule) and not (compiled._forward_hooks or compiled._forward_pre_hooks):
        return compiled.forward
    return compiled

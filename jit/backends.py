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
    "inductor": "framejit.inductor.backends:inductor_backend",
    "numpy": "framejit.inductor.backends:numpy_backend",
    "triton": "framejit.inductor.backends:triton_backend",
}
_BUILT_IN = dict(_registry)  # what framejit ships: its failures are compiler errors (eager fallback), a user's are not


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


def is_built_in(backend: Backend) -> bool:
    """One of framejit's own backends (by identity, or by the `module:attr` it is loaded from)."""
    where = f"{getattr(backend, '__module__', '')}:{getattr(backend, '__qualname__', '')}"
    return any(backend is target or where == target for target in _BUILT_IN.values())


class UserBackendFailed(Exception):
    """A user's backend raised, or returned no callable, while a frame was being compiled. That is no compiler
    error: jit/convert_frame.py re-raises `error` to the caller as it is, instead of falling back to eager."""

    def __init__(self, error: Exception):
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


class _UserBackend:
    """A user's backend, its result checked; a failure while the frame compiles is remembered (`failed`) so that
    compile_graph can tell it from a failure of our own code around it. Later calls (a graph compiled per size on
    a call, graph/size_variants.py) raise the backend's error to that call as it is."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.compiling = True
        self.failed: Exception | None = None

    def __call__(self, gm, example_inputs):
        try:
            compiled = self.backend(gm, example_inputs)
            if not callable(compiled):
                raise BackendError(f"backend {describe(self.backend)} returned {type(compiled).__name__}, not a "
                                   "callable: a backend returns the function that runs the graph, "
                                   "backend(gm, example_inputs) -> callable (torch.compile's convention)")
        except Exception as e:
            if self.compiling:
                self.failed = e
            raise
        return compiled


def describe(backend: Backend) -> str:
    """A backend as the user wrote it: its qualified name and where it is defined."""
    name = getattr(backend, "__qualname__", None) or type(backend).__qualname__
    code = getattr(backend, "__code__", None) or getattr(getattr(backend, "__call__", None), "__code__", None)
    return f"{name} ({code.co_filename}:{code.co_firstlineno})" if code is not None else name


def compile_graph(backend: Backend, gm, example_inputs: list):
    """backend(gm, example_inputs), for graphs with dynamic sizes too. A backend declaring `dynamic_sizes = True`
    takes such a graph as it is (the built-in ones compile it once per set of size conditions,
    graph/size_variants.py). Any other backend gets the graph specialized to each call's input sizes, compiled
    once per size up to jit.config.cache_size_limit sizes; further sizes run the graph as captured.
    A user's backend that raises or returns no callable: UserBackendFailed (the backend's own error inside)."""
    if is_built_in(backend):
        return _compile_graph(backend, gm, example_inputs, getattr(backend, "dynamic_sizes", False),
                              getattr(backend, "__name__", type(backend).__name__))
    user = _UserBackend(backend)
    try:
        return _compile_graph(user, gm, example_inputs, getattr(backend, "dynamic_sizes", False),
                              getattr(backend, "__name__", type(backend).__name__))
    except Exception as e:
        if user.failed is e:
            raise UserBackendFailed(e) from None
        raise
    finally:
        user.compiling, user.failed = False, None


def _compile_graph(backend: Backend, gm, example_inputs: list, dynamic_sizes: bool, name: str):
    if dynamic_sizes or not any(n.meta.get("dynamic_dims") for n in gm.graph.nodes if n.op == "placeholder"):
        return _direct(backend(gm, example_inputs))
    from framejit.graph.size_variants import SizeVariants, fixed_shape_build
    from jit.config import config
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


# jit.compile(mode=...): each mode a set of the built-in backends' switches (inductor/config.py)
MODES = {
    "default": {},
    "reduce-overhead": {"cuda_graphs": True},
    "max-autotune": {"autotune": True, "cuda_graphs": True},
    "max-autotune-no-cudagraphs": {"autotune": True, "cuda_graphs": False},
}


def switches():
    """inductor's switch table (inductor/config.py), imported on first use (`import jit` stays light)."""
    return importlib.import_module("framejit.inductor.config")


def compile_options(backend, mode, options) -> tuple:
    """jit.compile's `mode` and `options` checked and merged into ((switch, value), ...), sorted (settings that
    compare equal share cache entries). Options set the built-in backends' switches; `print(jit.config)` lists
    them."""
    if mode is None and options is None:
        return ()
    if mode is not None and mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict of switch names to values, got {type(options).__name__}")
    merged = dict(MODES[mode or "default"])
    merged.update(options or {})
    if merged and not (isinstance(backend, str) and backend in _BUILT_IN):
        raise ValueError(f"mode= and options= set framejit's built-in backends' switches; backend {backend!r} "
                         f"takes its own configuration")
    table = switches()
    for name, value in merged.items():
        if name not in table.SWITCHES:
            raise ValueError(f"unknown option {name!r}; options: {', '.join(table.SWITCHES)}")
        merged[name] = table.checked(name, value)
    return tuple(sorted(merged.items()))


def with_options(options: tuple, fn):
    """fn run with the built-in backends' switches set as `options` (compiles, and calls that compile more:
    a new size's variant, Triton kernels at their first launch, a training backward)."""
    if not options:
        return fn
    config = switches().config
    values = dict(options)

    def run(*args, **kwargs):
        with config.override(**values):
            return fn(*args, **kwargs)
    run.source = getattr(fn, "source", None)
    return run

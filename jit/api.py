"""jit.compile, jit.optimize, jit.disable, jit.reset."""
from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable

from jit import skip_rules, _C, backends, convert_frame, dynamic
from jit.convert_frame import Settings


def _settings(backend, fullgraph, dynamic, mode=None, options=None) -> Settings:
    backends.check_backend(backend)
    if not isinstance(fullgraph, bool):
        raise TypeError(f"fullgraph must be True or False, got {fullgraph!r}")
    if dynamic is not None and not isinstance(dynamic, bool):  # `1 in (True, False)` holds: check the type
        raise TypeError(f"dynamic must be None, True or False, got {dynamic!r}")
    return Settings(backend, fullgraph, dynamic, backends.compile_options(backend, mode, options))


class optimize:
    """Intercept every Python frame called inside: `with jit.optimize(): model(x)` or `@jit.optimize()`.

    Nestable (the innermost settings win), per thread, and restored on exceptions."""

    def __init__(self, backend="inductor", *, fullgraph: bool = False, dynamic: bool | None = None,
                 mode: str | None = None, options: dict | None = None):
        self._callback = convert_frame.converter_for(_settings(backend, fullgraph, dynamic, mode, options))
        self._saved = threading.local()

    def __enter__(self):
        stack = self._saved.__dict__.setdefault("stack", [])
        stack.append(_C.set_callback(self._callback))
        return self

    def __exit__(self, *exc):
        _C.set_callback(self._saved.stack.pop())
        return False

    def __call__(self, fn: Callable) -> Callable:
        if not callable(fn):
            raise TypeError(f"jit.optimize(...) decorates a callable, got {type(fn).__name__}")
        optimized = _under_callback(fn, self._callback)
        optimized._jit_optimized = fn
        return optimized


def compile(fn=None, *, backend="inductor", fullgraph: bool = False, dynamic: bool | None = None,
            mode: str | None = None, options: dict | None = None):
    """Compile a function or an nn.Module: `jit.compile(fn)`, `@jit.compile`, `@jit.compile(backend="eager")`.

    An nn.Module comes back module-like: an instance of a subclass of its own class sharing its state (same
    parameters, buffers, state_dict keys and attributes), whose calls run under the compiler.

    `mode` ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs") and `options` (a dict of
    the built-in backends' switches, listed by `print(jit.config)`) set how this function's graphs compile."""
    ctx = optimize(backend, fullgraph=fullgraph, dynamic=dynamic, mode=mode, options=options)
    if fn is None:
        return lambda f: _compile_one(f, ctx)
    return _compile_one(fn, ctx)


def _compile_one(fn, ctx: optimize):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(fn, torch.nn.Module):
        from jit.compiled_module import compiled_module
        return compiled_module(fn, ctx)
    if not callable(fn):
        raise TypeError(f"jit.compile expects a function or an nn.Module, got {type(fn).__name__}")
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is not None:
        # a function of a skipped library named by the user (`jit.compile(opt.step)`): its own frame is compiled;
        # what it calls is inlined as any library code is
        skip_rules.request(code)
    return ctx(fn)


def disable(fn: Callable | None = None):
    """Never compile `fn`, nor anything it calls (decorator too). The hook is off for the duration of the call.

    Takes functions, bound methods and other callables, and classmethod / staticmethod objects (above or below
    `@classmethod` / `@staticmethod`): those come back as the same kind of method around the disabled function."""
    if fn is None:
        return disable
    if isinstance(fn, (classmethod, staticmethod)):
        return type(fn)(disable(fn.__func__))
    if not callable(fn):
        raise TypeError(f"jit.disable expects a callable, got {type(fn).__name__}")
    code = getattr(fn, "__code__", None)
    if code is not None:
        convert_frame.disable_code(code)

    disabled = _under_callback(fn, None)
    disabled._jit_disabled = fn
    return disabled


def _under_callback(fn: Callable, callback) -> Callable:
    """`fn` called with `callback` as this thread's hook callback (None: hook off), the previous one restored."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        previous = _C.set_callback(callback)
        try:
            return fn(*args, **kwargs)
        finally:
            _C.set_callback(previous)

    return run


def reset() -> None:
    """Drop every cache entry and compiled artifact held in memory; the next calls compile afresh."""
    _C.reset()
    convert_frame.reset()
    dynamic.reset()
    backends.reset_backends()
    for name in _FORGETFUL:
        module = sys.modules.get(name)  # loaded with the executor, on the first compile
        if module is not None:
            module.forget()


# Modules remembering things per code object, per signature or per generated graph; each has a `forget()`.
_FORGETFUL = ("jit.eager_check", "jit.instructions", "jit.liveness", "jit.resume", "framejit.graph.fx_sources")

"""torch's Python reference and meta kernels run without importing torch._dynamo.

Many of torch's Python kernels (the type-promotion wrapper of torch._refs, meta kernels registered in
torch._meta_registrations, decompositions) are wrapped by `torch._disable_dynamo` (torch/_compile.py). Its wrapper
looks up `fn.__dynamo_disable` on the wrapped function and, when absent, imports torch._dynamo to build it:
the first meta propagation of `softmax`, `amax` or `layer_norm` in a process costs the import of all of Dynamo
(~1.4 s on the 2-core CPU, more than the rest of a warm compile). We never call Dynamo, and while it is not
imported there is nothing to disable, so each such function gets, in that attribute, a stand-in that calls it
directly. The moment anything else imports torch._dynamo (a user's torch.compile), the stand-in removes itself
and hands the call back to torch's own wrapper, which then builds the real disabled function as it always did.

Robust across torch versions: a wrapper of another shape (a newer torch's C fast path that never imports
Dynamo) is not recognised and left alone; a function missed by the walk still works (it imports Dynamo, slower)."""
from __future__ import annotations

import functools
import sys
import types

import torch

_ATTR = "__dynamo_disable"  # the name torch's wrapper caches under (no class body: not name-mangled)
_MODULE_PREFIXES = ("torch._refs", "torch._prims", "torch._decomp", "torch._meta_registrations")
_seeded = False
stats = {"seeded": 0}


class _UntilDynamoLoads:
    """Stands in for `torch._dynamo.disable(fn)` while torch._dynamo is not imported."""

    __slots__ = ("fn", "wrapper")

    def __init__(self, fn, wrapper):
        self.fn, self.wrapper = fn, wrapper

    def __call__(self, *args, **kwargs):
        if "torch._dynamo" in sys.modules:  # Dynamo may trace this call: torch's own disabled function from now on
            if self.fn.__dict__.get(_ATTR) is self:
                del self.fn.__dict__[_ATTR]
            return self.wrapper(*args, **kwargs)
        return self.fn(*args, **kwargs)


def _wrapper_code():
    """The code object of `torch._disable_dynamo`'s wrapper, if it is the lazily importing kind we know."""
    make = getattr(getattr(torch, "_compile", None), "_disable_dynamo", None)
    if make is None:
        return None
    code = make(lambda: None).__code__  # decorating imports nothing: only calling the result would
    return code if "fn" in code.co_freevars and _ATTR in code.co_consts + code.co_names else None


def _wrapped_fn(wrapper):
    cell = wrapper.__closure__[wrapper.__code__.co_freevars.index("fn")]
    return cell.cell_contents


def _stand_in(wrapper) -> None:
    fn = _wrapped_fn(wrapper)
    if isinstance(fn, types.FunctionType) and _ATTR not in fn.__dict__:
        fn.__dict__[_ATTR] = _UntilDynamoLoads(fn, wrapper)
        stats["seeded"] += 1


def free(wrapper) -> None:
    """Give one `_disable_dynamo` wrapper its stand-in: our own TorchDispatchMode subclasses get their
    `__torch_dispatch__` wrapped so by the base class (torch/utils/_python_dispatch.py, `__init_subclass__`)."""
    code = _wrapper_code()
    if code is not None and isinstance(wrapper, types.FunctionType) and wrapper.__code__ is code and \
            "torch._dynamo" not in sys.modules:
        _stand_in(wrapper)


def seed() -> None:
    """Give every `_disable_dynamo` wrapper reachable from torch's reference, decomposition and meta tables its
    stand-in (once per process; ~20 ms)."""
    global _seeded
    if _seeded:
        return
    _seeded = True
    code = _wrapper_code()
    if code is None or "torch._dynamo" in sys.modules:
        return
    roots = [v for name, m in list(sys.modules.items()) if m is not None and name.startswith(_MODULE_PREFIXES)
             for v in list(vars(m).values()) if callable(v)]
    decomp = sys.modules.get("torch._decomp")
    if decomp is not None:
        roots += list(decomp.decomposition_table.values()) + list(decomp.meta_table.values())
    seen: set = set()
    stack = roots
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, functools.partial):
            stack.append(obj.func)
            continue
        if not isinstance(obj, types.FunctionType):
            continue
        if obj.__code__ is code:
            _stand_in(obj)
        for cell in obj.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if callable(value):
                stack.append(value)
        wrapped = obj.__dict__.get("__wrapped__")
        if wrapped is not None:
            stack.append(wrapped)

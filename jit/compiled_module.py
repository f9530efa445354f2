"""jit.compile(module): a module-like callable that *is* the module, as far as users can tell.

We build an instance of a one-off subclass of the module's own class and give it the original's __dict__: the
same parameters, buffers, submodules, hooks and training flag, so state_dict keys, load_state_dict, .to(),
isinstance and custom methods all behave exactly as on the original. Only __call__ differs: it runs the module
under the compiler (torch's own __call__ machinery is skipped by the skip rules; forward is compiled)."""
from __future__ import annotations

import copyreg
import sys
import types

from jit import skip_rules


def compiled_module(module, ctx):
    cls = type(module)
    # DistributedDataParallel's forward is torch's bookkeeping (buffer broadcast, the reducer's preparation, bucket
    # rebuilds): it runs eagerly, as torch's frames do, and what it calls, the wrapped module, is compiled. Tracing
    # it would capture none of its work and break the graph at its profiler ranges.
    compiled_forward_of = _wrapped_by_ddp(module) or cls
    forward = getattr(compiled_forward_of, "forward", None)
    if isinstance(getattr(forward, "__code__", None), types.CodeType):
        # a torch.nn module's own forward lives in torch, whose frames are skipped: the user named it, compile it
        skip_rules.request(forward.__code__)

    def __call__(self, *args, **kwargs):
        with ctx:
            return cls.__call__(self, *args, **kwargs)

    namespace = {
        "__call__": __call__,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "_orig_mod": property(lambda self: module, doc="the module this compiled view shares its state with"),
        "__reduce_ex__": lambda self, protocol: _reduce_as(module, protocol),
    }
    subclass = type(cls.__name__, (cls,), namespace)
    compiled = object.__new__(subclass)
    object.__setattr__(compiled, "__dict__", module.__dict__)
    return compiled


def _wrapped_by_ddp(module):
    """The class of the module a DistributedDataParallel wraps, or None for any other module (looked up: `import
    jit` stays light, and a program that never imported torch.distributed has no DDP)."""
    ddp = sys.modules.get("torch.nn.parallel.distributed")
    if ddp is None or not isinstance(module, ddp.DistributedDataParallel):
        return None
    return type(module.module)


def _reduce_as(module, protocol: int):
    """Pickle (and torch.save) the compiled view as the module it shares its state with: it loads back as that
    module, an instance of the original class, without framejit. The module's own reduction, except that from
    protocol 2 on it is `copyreg.__newobj__(cls, ...)`, which pickle refuses for an object whose class is not
    `cls` (CPython's save_reduce: "args[0] from __newobj__ args has the wrong class"): the same call is spelled
    `cls.__new__(cls, ...)`, or `copyreg._reconstructor` (what protocols 0 and 1 use) when it has no arguments."""
    reduced = module.__reduce_ex__(protocol)
    if isinstance(reduced, tuple) and reduced[0] is copyreg.__newobj__:
        cls, *args = reduced[1]
        call = (copyreg._reconstructor, (cls, object, None)) if not args else (cls.__new__, (cls, *args))
        return (*call, *reduced[2:])
    return reduced

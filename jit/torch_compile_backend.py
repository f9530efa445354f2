"""framejit's default backend under torch.compile's name lookup: `torch.compile(model, backend="framejit")`.

pyproject.toml registers `framejit_backend` in the `torch_dynamo_backends` entry-point group, which torch.compile
reads to resolve backend names. It is called with torch.compile's convention, backend(gm, example_inputs), where
the example inputs are fake tensors (metadata without memory) and, once torch.compile traces sizes symbolically,
symbolic ints. Our backends compile from real example inputs (the CPU backend times both versions of a graph at
compile time, inductor/cpu_choice.py), so this adapter hands them zero-filled tensors of the same metadata; a graph
over symbolic sizes runs as captured (our size handling works on graphs our executor captured). framejit itself
never calls torch.compile: this module is only the door torch.compile comes in through."""
from __future__ import annotations

import logging

from jit.backends import lookup_backend

log = logging.getLogger("jit.inductor")


def framejit_backend(gm, example_inputs: list, **options):
    """torch.compile's backend(gm, example_inputs) -> callable, compiled by framejit's "inductor" backend."""
    if options:
        raise TypeError(f"the framejit backend takes no options, got {', '.join(sorted(options))}")
    real = [_materialize(x) for x in example_inputs]
    if any(x is _SYMBOLIC for x in real):
        log.debug("framejit under torch.compile: a graph over symbolic sizes runs as captured")
        return gm.forward
    return lookup_backend("inductor")(gm, real)


_SYMBOLIC = object()


def _materialize(x):
    """A real tensor with x's metadata (x may be a fake tensor without memory); Python numbers as they are;
    _SYMBOLIC for a symbolic size or a tensor with one."""
    import torch
    if isinstance(x, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return _SYMBOLIC
    if not isinstance(x, torch.Tensor):
        return x
    dims = (*x.shape, *x.stride(), x.storage_offset())
    if not all(type(d) is int for d in dims):
        return _SYMBOLIC
    span = sum((n - 1) * s for n, s in zip(x.shape, x.stride())) + 1 if x.numel() else 0
    size = x.storage_offset() + span
    storage = torch.zeros(size, dtype=x.dtype, device=x.device)
    real = storage.as_strided(tuple(x.shape), tuple(x.stride()), x.storage_offset())
    if x.requires_grad:
        real.requires_grad_(True)
    return real

"""Library layouts, probed once at compile time: each library call (and each torch fallback spelled as an aten
call) runs now on the example inputs and stand-ins of its other operands, and its buffer gets the strides the
library really returns instead of the ones meta tensors promise (`probe_extern_layouts`)."""
import logging

import torch

from framejit.graph import symbolic_sizes
from framejit.graph.shape_prop import fetch_attr
from framejit.graph.symbolic_shapes import layout_strides

from ..ir import (ExternKernel, ExternKind, FallbackKernel, Layout, LoweredGraph, contiguous_strides, dense, loads_in,
                  static_shape)
from ..runtime import attention as runtime_attention
from ..runtime.triton_graph import make_fallback
from ..views import torch_view
from .plan import replace_items
from .spelling import extern_call, fallback_call

log = logging.getLogger("jit.inductor.triton")


def at_hints(values) -> tuple:
    return tuple(symbolic_sizes.hint(v) for v in values)


def all_layouts(lg) -> dict:
    layouts = {b.name: b.layout for b in lg.inputs}
    for k in lg.kernels:
        if k.out.layout is not None:
            layouts[k.out.name] = k.out.layout
    return layouts


def same_strides(shape, a, b) -> bool:
    """Equal strides, dims of size 1 aside (their stride never moves an address)."""
    return all(x == y or n == 1 for x, y, n in zip(a, b, shape))


_INDEX_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def probe_extern_layouts(lg: LoweredGraph, example_inputs: list, gm, shortcuts: bool) -> int:
    """Run each library call once, now, on the graph's inputs and zero-filled stand-ins of its other operands, and
    give its buffer the strides the library really returns. cuDNN/flash attention returns (B, T, H, D) memory
    order for a (B, H, T, D) result, CPU convolutions of channels-last inputs return channels-last; meta tensors
    say contiguous for both, and a layout promised wrongly costs a copy per call (`fixed_layout`) and often a
    second one in the generated kernel that puts the result back the way the user's `.contiguous()` wanted.
    Generated kernels then index the real layout; `fixed_layout` still guards each call, except results whose
    layout follows from their sizes (FRESH_RESULTS) seen exactly so (`lg.exact_layouts`). Torch fallbacks spelled
    as aten calls are probed the same way (meta kernels mostly, not always, predict eager's strides), except
    random ops (a probe would move the generator) and in-place ones. `shortcuts`: the host's short spellings
    (FRAMEJIT_TRITON_HOST_SHORTCUTS), as the module will run the calls. Returns how many layouts changed. Zeros,
    not garbage, for stand-ins and integer inputs: an embedding's indices must stay in range."""
    values = {}
    inputs = iter(example_inputs)
    for buf in lg.inputs:
        if buf.attr:
            values[buf.name] = fetch_attr(gm, buf.attr)
        else:
            values[buf.name] = next(inputs)
    layouts = all_layouts(lg)
    device = next((v.device for v in values.values() if isinstance(v, torch.Tensor)), None)
    changed = 0
    lg.exact_layouts.clear()
    for k in lg.kernels:
        if not (isinstance(k, ExternKernel) or _probed_fallback(k)):
            continue
        items, env = {}, {"torch": torch, "runtime_attention": runtime_attention}
        args = [replace_items(a, items, {}) for a in (k.args if isinstance(k, ExternKernel) else k.inputs)]
        try:
            for name in {b for a in args for b in loads_in(a)}:
                if name in values:
                    v = values[name]
                    # integer operands are indices (embedding, gather): zeros stay in range whatever inputs the
                    # backend was handed (a size variant's stand-ins); an out-of-range index is a device-side
                    # assert on the GPU, which no `except` recovers from
                    index = isinstance(v, torch.Tensor) and v.dtype in _INDEX_DTYPES
                    env[name] = torch.zeros_like(v) if index else v
                elif name in items:
                    env[name] = torch.zeros(items[name].shape, dtype=items[name].dtype, device=device)
                else:
                    lay = layouts[name]
                    env[name] = torch.empty_strided(lay.shape, lay.strides, dtype=lay.dtype, device=device).zero_()
            if isinstance(k, ExternKernel):
                code = extern_call(ExternKernel(k.out, k.kind, args, k.params, k.source), shortcuts=shortcuts)
            else:
                code = fallback_call(k, [torch_view(a) for a in args])
                env["fallbacks"] = {k.out.name: make_fallback(k)}  # a call with no spelling, as the module makes it
            with torch.no_grad():
                got = eval(code, env)  # the same expression the module will run
        except Exception as e:  # noqa: BLE001  (a probe that fails changes nothing: the meta layout stays)
            log.info("layout probe of %s failed: %s", k.out.name, e)
            continue
        if isinstance(k, FallbackKernel) and k.multi:
            changed += _probed_items(k, got)
            del env, got
            continue
        lay = k.out.layout
        stride = tuple(got.stride())
        shape, strides = at_hints(lay.shape), at_hints(lay.strides)  # the probe ran at the hints
        if tuple(got.shape) == shape and got.dtype == lay.dtype and \
                not same_strides(shape, stride, strides) and dense(shape, stride):
            k.out.layout = Layout(tuple(lay.shape), layout_strides(tuple(lay.shape), stride), lay.dtype)
            layouts[k.out.name] = k.out.layout
            changed += 1
        if isinstance(k, ExternKernel) and k.kind in FRESH_RESULTS and static_shape(lay.shape) and \
                tuple(got.shape) == shape and got.dtype == lay.dtype and got.storage_offset() == 0 and \
                stride == tuple(k.out.layout.strides):
            lg.exact_layouts.add(k.out.name)
        del env, got
    return changed


# Library calls whose result is a new tensor laid out by its sizes alone: mm/bmm, addmm (and linear over them)
# allocate their output contiguous whatever their operands' strides. With fixed sizes, the layout the probe saw is the one every call gets (no `fixed_layout`).
# Not SDPA (its backend, and so its output's memory order, follows the inputs' alignment and the user's
# `sdpa_kernel` settings at run time), convolutions (the inputs' memory format) or torch fallbacks.
FRESH_RESULTS = (ExternKind.MATMUL, ExternKind.ADDMM)


def _probed_fallback(k) -> bool:
    """A torch call the probe may run ahead: one that writes nothing and draws no random numbers (SDPA without
    dropout draws none, and its backward replays the forward's seed: graph/effects.is_random)."""
    return isinstance(k, FallbackKernel) and k.pure and \
        not (isinstance(k.target, torch._ops.OpOverload) and k.target._schema.is_mutable)


def _probed_items(k: FallbackKernel, got) -> int:
    """Strides of a tuple-valued fallback's dense tensor elements as the call returned them (cuDNN attention's
    output and its backward's three gradients come in (B, T, H, D) memory order where meta tensors say
    contiguous: a copy each per layer and call), for the planner to lay its elements out by (static sizes only:
    the strides are kept as numbers, with the sizes they go with: an element of other sizes than its meta tensor,
    cuDNN's logsumexp, keeps the meta layout). Returns how many elements are not laid out contiguously."""
    k.item_strides = {}
    for i, t in enumerate(got if isinstance(got, (tuple, list)) else ()):
        if isinstance(t, torch.Tensor) and t.numel() > 1 and dense(tuple(t.shape), tuple(t.stride())):
            k.item_strides[i] = (tuple(t.shape), tuple(t.stride()))
    return sum(1 for shape, st in k.item_strides.values() if st != tuple(contiguous_strides(shape)))


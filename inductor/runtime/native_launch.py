"""Compiled Triton kernels launched through our own C launcher (inductor._launch, csrc/launch.c).

Triton launches a compiled kernel through a C module it generates for the kernel's signature and builds with gcc
on first use: ~0.3 s per new signature on a fresh cache, serial when a graph has one kernel, and most of the
first call of a small graph (a layer norm's 0.57 s first call on the H100 spent 0.34 s in that gcc run). Our
launcher is built once with the package and reads the signature as data: `argument_codes` turns Triton's
signature (`CompiledKernel.src.signature`) into one code per argument, and the binary is loaded with Triton's own
`load_binary` (its CUDA utilities, built once per Triton install, not per kernel).

What it covers is what the generated modules produce: one CTA per program, no cluster launch, cooperative grid,
programmatic dependent launch, global or profile scratch, tensor descriptors or tuple arguments. A kernel needing
any of those keeps Triton's launcher (`native_kernel` returns None), as does everything under
FRAMEJIT_NATIVE_LAUNCH=0.

Pointers are not checked for being device memory (Triton's launcher asks the driver per pointer, ~0.5 us each):
every tensor a generated module passes is a graph input guarded on its device or a buffer the module allocated
there."""
from __future__ import annotations


import torch
from ..config import SWITCHES, config

try:
    from . import _launch
except ImportError:  # the extension not built (a source checkout without `setup.py build_ext`)
    _launch = None

ENV = SWITCHES["native_launch"].variable

# Triton's scalar types -> the launcher's codes (launch.c: Kernel's doc); pointers are "p"/"P", constexprs "-"
SCALAR_CODES = {"i1": "b", "i8": "b", "i16": "h", "i32": "i", "i64": "l", "u1": "B", "u8": "B", "u16": "H",
                "u32": "I", "u64": "L", "fp16": "e", "bf16": "r", "fp32": "f", "f32": "f", "fp64": "d",
                "constexpr": "-"}

# device index -> torch's current raw CUDA stream there, what every launch goes to (absent from CPU-only builds)
current_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def enabled() -> bool:
    return _launch is not None and config.native_launch


def argument_codes(signature: list, specialization: tuple) -> str | None:
    """The launcher's codes for a kernel whose parameters have Triton types `signature` (in order, constexprs
    included), compiled for arguments specialized as `specialization` (runtime/triton_graph._specialization: True for a
    16-byte aligned pointer). None if a type has no code."""
    codes = []
    for i, ty in enumerate(signature):
        if not isinstance(ty, str):
            return None  # a tuple argument
        if ty.startswith("*"):
            codes.append("P" if i < len(specialization) and specialization[i] is True else "p")
        elif ty in SCALAR_CODES:
            codes.append(SCALAR_CODES[ty])
        else:
            return None  # tensor descriptors, TMA descriptors
    return "".join(codes)


def _plain(metadata) -> bool:
    """A kernel launched as one CTA per program, with no scratch memory: what launch.c does."""
    return getattr(metadata, "num_ctas", 1) == 1 and not getattr(metadata, "launch_pdl", False) and \
        not getattr(metadata, "launch_cooperative_grid", False) and \
        not getattr(metadata, "global_scratch_size", 0) and not getattr(metadata, "profile_scratch_size", 0) and \
        not getattr(metadata, "tensordesc_meta", None)


def native_kernel(kernel, specialization: tuple, device: int):
    """An `inductor._launch.Kernel` running Triton's compiled `kernel` on CUDA device `device`, called as
    `k(grid_x, grid_y, grid_z, *args)` (constexprs may be left off the end) or bound to a grid; None where our
    launcher does not cover it. Raises Triton's OutOfResources where Triton's own loading would."""
    metadata, signature = getattr(kernel, "metadata", None), getattr(getattr(kernel, "src", None), "signature", None)
    binary, name = getattr(kernel, "kernel", None), getattr(kernel, "name", None)
    if not enabled() or current_stream is None or metadata is None or not isinstance(signature, dict) or \
            not isinstance(binary, bytes) or not _plain(metadata):
        return None
    codes = argument_codes(list(signature.values()), specialization)
    if codes is None:
        return None
    from triton.runtime.driver import driver
    from triton.runtime.errors import OutOfResources
    utils = driver.active.utils
    max_shared = utils.get_device_properties(device)["max_shared_mem"]
    if metadata.shared > max_shared:
        raise OutOfResources(metadata.shared, max_shared, "shared memory")
    with torch.cuda.device(device):  # loads into that device's context, whichever thread compiles
        _module, function, _regs, _spills, max_threads = utils.load_binary(name, binary, metadata.shared, device)
    if metadata.num_warps * 32 > max_threads:
        raise OutOfResources(metadata.num_warps * 32, max_threads, "threads")
    return _launch.Kernel(function, codes, metadata.num_warps, metadata.shared, device, current_stream, name)

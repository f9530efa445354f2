"""Scans (cumsum, cumprod) as generated Triton kernels instead of library calls.

Lowering (lowering.py, shared with NumPy) makes a scan a library call on its computed operand. On the GPU that is
torch's scan kernel after a kernel that stores the operand; here a scan whose rows fit in registers becomes one
Triton kernel instead: its operand's expression evaluated over a persistent row tile (the scanned dim along the
tile's reduction axis; down columns where the operand is contiguous along a kept dim, tiling.reduction_layout),
then `tl.cumsum` / `tl.cumprod` along that axis, in the result's compute dtype (float32 for half types, rounded
once at the store, as torch's CUDA scan accumulates). Masked lanes load 0 and lie past the row's last element,
so they change no live prefix.

Kept as the library call: 0-d operands, dynamic sizes, rows longer than one persistent tile (a scan carrying its
prefix across loop blocks is not written), and anything the code generator rejects (a reduction in the operand):
each decided here by planning the kernel, so the per-kernel fallback never meets a scan it cannot split."""
from ..ir import ExternKernel, ExternKind, Kernel, Op
from .codegen import KernelWriter
from .dtypes import supported

SCANS = {ExternKind.CUMSUM: "cumsum", ExternKind.CUMPROD: "cumprod"}


def as_kernel(k, layouts: dict):
    """The generated kernel computing library scan `k`, or `k` itself where the library call stays."""
    if not isinstance(k, ExternKernel) or k.kind not in SCANS or k.params.get("dim") is None:
        return k
    (x,) = k.args
    out = k.out.layout
    shape = tuple(x.shape)
    if not all(type(s) is int for s in shape + tuple(out.shape)) or not all(shape) or shape[k.params["dim"]] < 2:
        return k
    if not (supported(out.dtype) and supported(x.dtype)):
        return k
    kernel = Kernel(k.out, Op(SCANS[k.kind], [x], shape, out.dtype, out.dtype, (k.params["dim"],)), k.source)
    try:
        writer = KernelWriter(kernel, layouts, "scan_probe")
        writer.generate()
    except NotImplementedError:
        return k
    return kernel if writer.mode == "persistent" else k

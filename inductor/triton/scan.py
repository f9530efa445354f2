"""Scans (cumsum, cumprod) as generated Triton kernels instead of library calls.

Lowering (lowering.py, shared with NumPy) makes a scan a library call on its computed operand. On the GPU that is
torch's scan kernel after a kernel that stores the operand; here a scan whose rows fit in registers becomes one
Triton kernel instead: its operand's expression evaluated over a persistent row tile (the scanned dim along the
tile's reduction axis; down columns where the operand is contiguous along a kept dim, tiling.reduction_layout),
then `tl.cumsum` / `tl.cumprod` along that axis, in the result's compute dtype (float32 for half types, rounded
once at the store, as torch's CUDA scan accumulates). Masked lanes load 0 and lie past the row's last element,
so they change no live prefix.

Its operand was stored by a kernel of its own (a library call reads memory); where a pointwise kernel's buffer
is read by the scan alone, that kernel's expression is inlined into the scan (`fuse_producers`): `(x * 2).cumsum(1)`
reads x once and writes once. Likewise a pointwise kernel that alone reads the scan's result, element for element
(same shape, no view between), takes the scan into its own kernel (`fuse_epilogues`): position ids,
`mask.cumsum(-1) - 1`, are one kernel.

Kept as the library call: 0-d operands, dynamic sizes, rows longer than one persistent tile (a scan carrying its
prefix across loop blocks is not written), and anything the code generator rejects (a reduction in the operand):
each decided here by planning the kernel, so the per-kernel fallback never meets a scan it cannot split."""
from ..ir import ExternKernel, ExternKind, Kernel, Load, Op, View, loads_in, readers_of, rebuild, reduces_in, walk
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


def _is_scan(k) -> bool:
    return isinstance(k, Kernel) and any(isinstance(e, Op) and e.name in SCANS.values() for e in walk(k.expr))


def _pointwise(k) -> bool:
    return isinstance(k, Kernel) and not (k.is_view or k.side_outputs or k.scatter is not None or
                                          reduces_in(k.expr))


def fuse_producers(kernels: list, outputs: list, layouts: dict) -> list:
    """`kernels` with each pointwise kernel whose buffer only a scan kernel reads (and no graph output) inlined
    into that scan kernel, where the scan kernel still generates."""
    readers = readers_of(kernels)
    returned = {b for o in outputs if isinstance(o, (Load, View)) for b in loads_in(o)}
    producer = {k.out.name: k for k in kernels if _pointwise(k)}
    dropped, result = set(), list(kernels)
    for i, k in enumerate(kernels):
        if not _is_scan(k):
            continue
        inline = {b for b in loads_in(k.expr) if b in producer and readers.get(b) == [i] and b not in returned}
        if not inline:
            continue
        fused = _inlined(k, inline, producer, layouts)
        if fused is not None:
            result[i] = fused
            dropped |= inline
    return [k for k in result if k.out.name not in dropped]


def fuse_epilogues(kernels: list, outputs: list, layouts: dict) -> list:
    """`kernels` with each scan kernel whose buffer only one pointwise kernel reads, directly at the same
    coordinates (a Load of the scan's shape, which is that kernel's shape), computed inside that kernel instead,
    where it still generates: the scan's result never goes through memory."""
    readers = readers_of(kernels)
    returned = {b for o in outputs if isinstance(o, (Load, View)) for b in loads_in(o)}
    scans = {k.out.name: k for k in kernels if _is_scan(k) and not k.side_outputs}
    dropped, result = set(), list(kernels)
    for i, k in enumerate(kernels):
        if not _pointwise(k) or _is_scan(k):
            continue
        mine = {b for b in loads_in(k.expr) if b in scans and readers.get(b) == [i] and b not in returned}
        if not mine or any(isinstance(n, View) and set(loads_in(n)) & mine for n in walk(k.expr)):
            continue  # read through a view: at other coordinates than the scan's own
        if any(tuple(scans[b].expr.shape) != tuple(k.out.layout.shape) for b in mine):
            continue
        fused = _inlined(k, mine, scans, layouts)
        if fused is not None:
            result[i] = fused
            dropped |= mine
    return [k for k in result if k.out.name not in dropped]


def _inlined(k: Kernel, bufs: set, computing: dict, layouts: dict) -> Kernel | None:
    """k with its loads of `bufs` replaced by the expressions of the kernels computing them (`computing`: buffer
    -> kernel), or None where that kernel would not generate."""
    expr = rebuild(k.expr, lambda n: computing[n.buf].expr if isinstance(n, Load) and n.buf in bufs else None)
    fused = Kernel(k.out, expr, [line for b in bufs for line in computing[b].source] + list(k.source))
    try:
        KernelWriter(fused, layouts, "scan_probe").generate()
    except NotImplementedError:
        return None
    return fused

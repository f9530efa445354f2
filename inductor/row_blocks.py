"""Which fused kernels run in blocks of rows, and how each operand is cut.

A fused kernel is a chain of whole-array NumPy calls: n ops read and write n arrays. On arrays bigger than the
cache every pass goes to memory (a 25-call erf over 1M float32 took 5.2 ms); run on ~32k-element blocks of rows,
the same passes hit L1/L2 and only the inputs and the output travel to memory (1.6 ms). The output's first dim
is the row dim; a kernel qualifies when every node of its tree keeps that dim in place: pointwise ops, reductions
over other dims, loads that either have the rows (cut) or broadcast over them (passed whole). Views re-index with
shapes written into the code, and arange/full/cat build whole arrays, so kernels holding them run unblocked."""
import math

from .ir import Const, Kernel, Load, Op, Reduce, View

BLOCK_ELEMENTS = 32768  # ~128 KiB of float32 per temporary: a few of them fit in L2
WHOLE_ARRAY_OPS = ("full", "arange", "cat")


def _rows_of(e, rows: int, ndim: int, cut: dict) -> bool:
    """True if `e` (of an output with `rows` rows and `ndim` dims) can be computed block by block; collects the
    buffers to cut, with their shapes, into `cut`."""
    if isinstance(e, Const):
        return True
    shape = tuple(e.shape)
    # right-aligned broadcasting: an operand with fewer dims, or with 1 row, never touches the row dim
    row_free = len(shape) < ndim or (len(shape) >= 1 and shape[0] == 1)
    if isinstance(e, Load):
        if not row_free:
            if len(shape) != ndim or shape[0] != rows:
                return False
            cut[e.buf] = shape
        return True
    if isinstance(e, View):
        return e.kind == "identity" and _rows_of(e.arg, rows, ndim, cut)
    if isinstance(e, Op):
        if e.name in WHOLE_ARRAY_OPS:
            return False
        if not row_free and (len(shape) != ndim or shape[0] != rows):
            return False
        return all(_rows_of(a, rows, ndim, cut) for a in e.args)
    if isinstance(e, Reduce):
        if e.axes is None or 0 in e.axes or e.kind in ("argmax", "argmin"):
            return False
        if len(shape) != len(e.arg.shape):
            return False  # a reduction that drops dims re-aligns broadcasting: only as the tree's root (plan)
        return _rows_of(e.arg, rows, ndim, cut)
    return False


def plan(kernel) -> tuple[int, set] | None:
    """(rows per block, buffers to cut) when `kernel` should run in row blocks, else None."""
    if not isinstance(kernel, Kernel) or kernel.is_view:
        return None
    shape = tuple(kernel.out.layout.shape)
    if len(shape) == 0:
        return None
    cut: dict = {}
    root = kernel.expr
    if isinstance(root, Reduce) and not root.keepdim and root.axes is not None and 0 not in root.axes and \
            root.kind not in ("argmax", "argmin"):
        root = root.arg  # x.sum(-1): the rows of the input are the rows of the output
    if not _rows_of(root, shape[0], len(root.shape), cut) or not cut:
        return None
    row = max(math.prod(s[1:]) for s in cut.values())  # the widest operand row sets the block (reductions)
    block = max(1, BLOCK_ELEMENTS // max(row, 1))
    if shape[0] < 2 * block:
        return None  # fits in one or two blocks: blocking only adds calls
    return block, set(cut)

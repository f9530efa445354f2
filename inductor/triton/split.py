"""Split reductions: a reduction of many elements into a few outputs becomes two kernels.

A reduction kernel runs one program per output row, so `y.sum()` of 16M floats would be one program walking
16M elements alone (on the H100 ~1.9 ms, against ~0.05 ms for torch, whose reduction spreads a row over the
whole GPU). Here each such reduction is cut into SPLIT chunks: a first kernel reduces every chunk in its own
program into a small buffer of partial results (rows x SPLIT, float32 for half-precision sums), and the kernel
that held the reduction reduces those partials instead, keeping its epilogue (`> 0`, `/ n`, a cast). Both are
ordinary IR kernels, so code generation, naming and launching are unchanged.

A reduction down columns (tiling.ReductionLayout: x.sum(0) of a row-major (N, M) matrix) runs one program per
OUTER_COLUMNS outputs, so a few hundred columns over many rows would leave most of the GPU idle: it is split too
when it would launch fewer than OUTER_PROGRAMS programs, into enough chunks of rows to reach that many. Its
partial results are laid out chunk-major, like the input (the partial kernel's stores and the combining kernel's
loads stay contiguous across the columns), so both kernels are column reductions again.

A reduction nested in another one's operand (the mean inside a variance) is split first and its value stored
in its own small buffer, which the outer reduction's partial kernel then reads (broadcast): a variance reads its
input twice, the mean and then the squared deviations from it (two-pass: accurate where the mean is large)."""
from __future__ import annotations

import math

import torch

from ..ir import (Buffer, Kernel, Layout, Load, Reduce, View, ViewKind, contiguous_strides, loads_in, rebuild,
                  reduces_in)
from ..runtime.launch_configs import OUTER_COLUMNS
from . import tiling
from .dtypes import NARROW

SERIAL_ROWS, SERIAL_LENGTH = 64, 1 << 16  # fewer outputs than this, each reducing at least this many elements
MAX_SPLIT, MIN_CHUNK = 1024, 4096          # at most 1024 chunks per row, of at least 4096 elements each
SPLITTABLE = {"sum", "prod", "amax", "amin", "any", "all"}  # kinds whose partial results combine by the same kind
# column reductions: split below this many programs (~8 programs of 8 warps per SM fill an H100's 132 SMs), into
# chunks of at least OUTER_MIN_CHUNK rows (a program's loop then runs several tiles deep)
OUTER_PROGRAMS, OUTER_MIN_CHUNK = 1024, 256


def _rows_and_length(r: Reduce) -> tuple[int, int]:
    rows = max(1, math.prod(r.shape))
    return rows, math.prod(r.arg.shape) // rows


def is_serial(r: Reduce) -> bool:
    rows, length = _rows_and_length(r)
    return rows < SERIAL_ROWS and length >= SERIAL_LENGTH


def split_count(length: int) -> int:
    """The largest power of two dividing `length` that leaves chunks of MIN_CHUNK or more, at most MAX_SPLIT
    (a power-of-two divisor keeps every chunk whole: no masking of a ragged last chunk); 1 if there is none."""
    split = 1
    while split * 2 <= MAX_SPLIT and length % (split * 2) == 0 and length // (split * 2) >= MIN_CHUNK:
        split *= 2
    return split


def outer_split_count(r: Reduce) -> int:
    """Chunks for a column reduction: the fewest powers of two that bring its programs (OUTER_COLUMNS outputs
    each) to OUTER_PROGRAMS, each chunk whole and at least OUTER_MIN_CHUNK long; 1: no split."""
    rows, length = _rows_and_length(r)
    if type(rows) is not int or type(length) is not int:  # a SymInt is an int subclass
        # dynamic sizes: comparing them would record size conditions (guards) for a launch-shape choice, and
        # one such comparison contradicted its own hint on the H100 (benchmarks/gpu_reductions.py); unsplit
        return 1
    programs = -(-rows // OUTER_COLUMNS)
    split = 1
    # the length test before divisibility: a dynamic length too short to split records no parity condition
    while programs * split < OUTER_PROGRAMS and split * 2 <= MAX_SPLIT and \
            length // (split * 2) >= OUTER_MIN_CHUNK and length % (split * 2) == 0:
        split *= 2
    return split


def _partial_dtype(r: Reduce) -> torch.dtype:
    # half-precision sums and products keep float32 partials: one rounding at the end, as torch's kernels do
    return torch.float32 if r.kind in ("sum", "prod") and r.dtype in NARROW else r.dtype


class Splitter:
    def __init__(self, kernel: Kernel, layouts: dict, outer: bool):
        self.kernel, self.layouts, self.outer = kernel, layouts, outer
        self.added: list = []

    def count(self, r: Reduce) -> int:
        return split_count(_rows_and_length(r)[1]) if is_serial(r) or not self.outer else outer_split_count(r)

    def partials(self, r: Reduce) -> Load:
        """A kernel reducing each chunk of every output row of r; a Load of its buffer (rows x chunks)."""
        ndim = len(r.arg.shape)
        axes = tuple(range(ndim)) if r.axes is None else tuple(a % max(ndim, 1) for a in r.axes)
        kept = [d for d in range(ndim) if d not in axes]
        kept_shape = tuple(r.arg.shape[d] for d in kept)
        length = _rows_and_length(r)[1]
        split = self.count(r)
        arg = r.arg
        order = tuple(kept) + axes
        if order != tuple(range(ndim)):
            arg = View(ViewKind.PERMUTE, arg, (order,), tuple(r.arg.shape[d] for d in order), arg.dtype)
        chunked = kept_shape + (split, length // split)
        arg = View(ViewKind.RESHAPE, arg, (chunked,), chunked, arg.dtype)
        shape, dtype = kept_shape + (split,), _partial_dtype(r)
        name = f"{self.kernel.out.name}_part{len(self.added)}"
        expr = Reduce(r.kind, arg, (len(chunked) - 1,), False, shape, dtype)
        kernel = Kernel(Buffer(name, Layout(shape, contiguous_strides(shape), dtype)), expr, list(self.kernel.source))
        layout = tiling.reduction_layout(kernel, self.layouts, chunked, (len(chunked) - 1,)) if self.outer else None
        if layout is not None and layout.outer:  # stored in the order the partial kernel walks its outputs: chunk-major, like the input
            kernel.out.layout = Layout(shape, _strides_in_order(shape, layout.xdims), dtype)
        self.added.append(kernel)
        self.layouts[name] = kernel.out.layout
        return Load(name, shape, dtype)

    def combine(self, r: Reduce, stored: bool):
        """r's value computed from its partials: the same kind of reduction over the last axis, reshaped back to
        r's shape (keepdim's ones). Stored: computed by a kernel of its own and loaded."""
        part = self.partials(r)
        shape = tuple(r.shape)  # kept sizes, with keepdim's ones: the reduction's own output is r's shape
        written = tuple(self.kernel.out.layout.shape)
        # the kernel writes the sums reshaped by its epilogue (a bias gradient: sum over (0, 1) with keepdim,
        # viewed as a vector): combined in the written shape, so the kernel's output is its reduction's
        squeezed = not stored and written != shape and [n for n in written if n != 1] == [n for n in shape if n != 1]
        at = written if squeezed else shape
        if at != part.shape[:-1]:
            part = View(ViewKind.RESHAPE, part, (at + part.shape[-1:],), at + part.shape[-1:], part.dtype)
        out = Reduce(r.kind, part, (len(at),), False, at, r.dtype)
        if squeezed:
            return View(ViewKind.RESHAPE, out, (shape,), shape, r.dtype)
        if not stored:
            return out
        name = f"{self.kernel.out.name}_red{len(self.added)}"
        self.added.append(Kernel(Buffer(name, Layout(shape, contiguous_strides(shape), r.dtype)), out,
                                 list(self.kernel.source)))
        self.layouts[name] = self.added[-1].out.layout
        return Load(name, shape, r.dtype)


def _strides_in_order(shape: tuple, order: list) -> tuple:
    """Dense strides for `shape` with the dims of `order` (slowest first) nested in that order."""
    strides, step = [1] * len(shape), 1
    for d in reversed(order):
        strides[d] = step
        step *= max(shape[d], 1)
    return tuple(strides)


def _outer(kernel: Kernel, layouts: dict) -> bool:
    """The kernel's reductions run down columns (tiling.reduction_layout of its first reduction's signature)."""
    r = reduces_in(kernel.expr)[0]
    ndim = len(r.arg.shape)
    axes = tuple(range(ndim)) if r.axes is None else tuple(a % max(ndim, 1) for a in r.axes)
    return tiling.reduction_layout(kernel, layouts, tuple(r.arg.shape), axes).outer


def split_kernel(kernel: Kernel, layouts: dict | None = None) -> list | None:
    """[partial kernels..., the kernel reading their results] for a kernel whose reductions would run serially,
    or (given the buffers' layouts) down too few columns to fill the GPU; None when it has none or one of them
    cannot be split (the caller decides what then)."""
    reduces = reduces_in(kernel.expr)
    if not reduces or kernel.side_outputs:
        return None
    layouts = dict(layouts or {})
    outer = layouts and all(b in layouts for r in reduces for b in loads_in(r.arg)) and _outer(kernel, layouts)
    splitter = Splitter(kernel, layouts, bool(outer))
    # a normalization (the kernel's output has its reductions' input shape: the value broadcast back over the
    # row) cannot read its sums from partials laid out by rows and chunks: column ones are left whole
    full = any(tuple(kernel.out.layout.shape) == tuple(r.arg.shape) for r in reduces)
    if not any(is_serial(r) or (outer and not full and outer_split_count(r) > 1) for r in reduces):
        return None
    if any(r.kind not in SPLITTABLE or splitter.count(r) == 1 for r in reduces):
        return None
    expr = kernel.expr
    while True:
        reduces = reduces_in(expr)
        nested = {id(n) for r in reduces for n in reduces_in(r.arg)}
        if not nested:  # the outermost reductions: combined from their partials inside the kernel itself
            replace = {id(r): splitter.combine(r, stored=False) for r in reduces}
            break
        # a reduction read inside another one's operand, with none in its own: its value gets its own buffer,
        # which the outer reduction's partial kernel loads (broadcast)
        replace = {id(r): splitter.combine(r, stored=True) for r in reduces
                   if id(r) in nested and not reduces_in(r.arg)}
        expr = rebuild(expr, lambda n: replace.get(id(n)))
    return splitter.added + [Kernel(kernel.out, rebuild(expr, lambda n: replace.get(id(n))), kernel.source,
                                    kernel.is_view)]


def split_reductions(kernels: list, layouts: dict | None = None) -> list:
    """The kernel list with every serial reduction split, and with `layouts` (buffer -> Layout: the graph's
    inputs and earlier kernels' outputs) every column reduction too short of programs; raises
    NotImplementedError for a serial one that cannot be (the graph then runs in torch rather than in one program
    per output)."""
    out = []
    for k in kernels:
        if not isinstance(k, Kernel):
            out.append(k)
            continue
        parts = split_kernel(k, layouts)
        if parts is None:
            for r in reduces_in(k.expr):
                if is_serial(r):
                    rows, length = _rows_and_length(r)
                    raise NotImplementedError(f"a reduction of {length} elements into {rows} output(s) cannot be "
                                              "split and would run serially in one program per output")
            out.append(k)
            continue
        out.extend(parts)
    return out

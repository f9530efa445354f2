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

A reduction along rows with too few rows to fill the GPU is split the same way (`inner_split_count`): the
batch-norm statistics x.mean((0, 2, 3)) of an NCHW tensor reduce N*H*W elements into C (64) outputs, which the
row kernel runs as C / 8 programs each walking a few hundred thousand elements (~20-40 GB/s on the H100). Its
chunks are whole runs of the reduced dims, so the partial kernel reads them as contiguous rows (runs of H*W), and
the combining kernel reduces C rows of a few dozen partials; chunks are sized to fit in registers once split.
Both rules count what the launch heuristic will make (runtime/launch_configs.py: programs for columns, warps for
rows) and leave a kernel moving under MIN_SPLIT_BYTES alone: there a second launch costs more than idle SMs.

argmax / argmin combine their chunks' winning indices (`Splitter.arg_combine`). A variance, sum((x - mean)**2)
with the mean over the same elements, combines per-chunk sums and squared deviations from each chunk's own mean
(`Splitter.variance`, Chan's update): one pass over x, every difference still taken from a mean. Any other
reduction nested in another one's operand is split first and its value stored in its own small buffer, which
the outer reduction's partial kernel then reads (broadcast). Partial kernels that repeat an earlier one (the
mean's sums inside a variance and a mean the graph also returns) are computed once (`share_partials`)."""
from __future__ import annotations

import dataclasses
import math

import torch

from ..ir import (Buffer, Const, Kernel, Layout, Load, Op, Reduce, View, ViewKind, contiguous_strides, loads_in,
                  rebuild, reduces_in)
from ..runtime import launch_configs
from ..runtime.launch_configs import OUTER_COLUMNS
from . import tiling
from .dtypes import NARROW

SERIAL_ROWS, SERIAL_LENGTH = 64, 1 << 16  # fewer outputs than this, each reducing at least this many elements
MAX_SPLIT, MIN_CHUNK = 1024, 4096          # at most 1024 chunks per row, of at least 4096 elements each
SPLITTABLE = {"sum", "prod", "amax", "amin", "any", "all"}  # kinds whose partial results combine by the same kind
ARG_KINDS = {"argmax", "argmin"}  # combined from their chunks' winning indices (Splitter.arg_combine)
# column reductions: split below this many programs (~8 programs of 8 warps per SM fill an H100's 132 SMs), into
# chunks of at least OUTER_MIN_CHUNK rows (a program's loop then runs several tiles deep)
OUTER_PROGRAMS, OUTER_MIN_CHUNK = 1024, 256
# row reductions: split below FILL_WARPS warps launched (about half the H100's 132 SMs x 64 warp slots: programs
# of a long row reduction stay resident for their whole row), into chunks of at least
# MIN_CHUNK elements; neither kind is split for fewer than MIN_SPLIT_BYTES read (a launch costs ~2-3 us)
FILL_WARPS, MIN_SPLIT_BYTES = 4096, 1 << 22


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


def outer_split_count(r: Reduce, itemsize: int = 4) -> int:
    """Chunks for a column reduction: the fewest powers of two that bring its programs (OUTER_COLUMNS outputs
    each) to OUTER_PROGRAMS, each chunk whole and at least OUTER_MIN_CHUNK long; 1: no split (enough programs,
    under MIN_SPLIT_BYTES read, or dynamic sizes)."""
    rows, length = _rows_and_length(r)
    if not _static(rows, length) or rows * length * itemsize < MIN_SPLIT_BYTES:
        return 1
    programs = -(-rows // OUTER_COLUMNS)
    split = 1
    # the length test before divisibility: a dynamic length too short to split records no parity condition
    while programs * split < OUTER_PROGRAMS and split * 2 <= MAX_SPLIT and \
            length // (split * 2) >= OUTER_MIN_CHUNK and length % (split * 2) == 0:
        split *= 2
    return split


def _static(*sizes) -> bool:
    """Every size a plain int: with dynamic sizes (a SymInt is an int subclass), comparing them would record size
    conditions (guards) for a launch-shape choice, and one such comparison contradicted its own hint on the H100
    (benchmarks/gpu_reductions.py); such reductions are not split for programs."""
    return all(type(s) is int for s in sizes)


def row_warps(rows: int, length: int, itemsize: int) -> int:
    """Warps the launch heuristic gives a row reduction of `rows` outputs of `length` elements each (programs
    times warps per program: 8 programs of 8 rows each walking 400K elements fill 64 of the H100's 8448 slots)."""
    mode = "persistent" if length <= launch_configs.persistent_max(itemsize) else "looped"
    config = launch_configs.heuristic(mode, rows, length, itemsize)
    return -(-rows // config["XBLOCK"]) * config["num_warps"]


def inner_split_count(r: Reduce, itemsize: int = 4) -> int:
    """Chunks for a row reduction short of warps: the fewest powers of two that bring the partial kernel to
    FILL_WARPS, each chunk whole and at least MIN_CHUNK long; 1: no split (enough warps already, under
    MIN_SPLIT_BYTES read, or dynamic sizes)."""
    rows, length = _rows_and_length(r)
    if not _static(rows, length) or rows * length * itemsize < MIN_SPLIT_BYTES:
        return 1
    more = lambda: split * 2 <= MAX_SPLIT and length // (split * 2) >= MIN_CHUNK and length % (split * 2) == 0
    split = 1
    while row_warps(rows * split, length // split, itemsize) < FILL_WARPS and more():
        split *= 2
    # once split, chunks that fit in registers: the partial kernel is persistent and reads its chunk once, however
    # many reductions it holds (a variance's chunk mean and squared deviations, `Splitter.variance`)
    while 1 < split and length // split > launch_configs.persistent_max(itemsize) and more():
        split *= 2
    return split


def _partial_dtype(r: Reduce) -> torch.dtype:
    # half-precision sums and products keep float32 partials: one rounding at the end, as torch's kernels do
    return torch.float32 if r.kind in ("sum", "prod") and r.dtype in NARROW else r.dtype


class Splitter:
    def __init__(self, kernel: Kernel, layouts: dict, outer: bool):
        self.kernel, self.layouts, self.outer = kernel, layouts, outer
        self.added: list = []
        # the widest element the kernel loads (4 bytes where no layout is known), as the launch heuristic sees it
        self.itemsize = max((layouts[b].dtype.itemsize for b in loads_in(kernel.expr) if b in layouts), default=4)

    def count(self, r: Reduce) -> int:
        """Chunks r is cut into: a serial reduction's (`split_count`), else the fill rule of its layout."""
        if is_serial(r):
            return split_count(_rows_and_length(r)[1])
        if self.outer:
            return outer_split_count(r, self.itemsize)
        # a normalization (softmax, layer_norm) whose rows fit in registers reads them once and writes them once;
        # split, it would read them again per nested reduction, more than its idle SMs cost it. A looped one
        # reads its rows once per reduction and once more for the epilogue, split or not
        rows, length = _rows_and_length(r)
        if self.normalization and length <= launch_configs.persistent_max(self.itemsize):
            return 1
        return inner_split_count(r, self.itemsize)

    @property
    def normalization(self) -> bool:
        """The kernel's output has its reductions' input size (softmax, layer_norm, x - x.mean(0))."""
        r = reduces_in(self.kernel.expr)[0]
        return math.prod(self.kernel.out.layout.shape) == math.prod(r.arg.shape)

    def chunked(self, r: Reduce) -> tuple:
        """r's operand with its kept dims first and its reduced dims flattened last, (kept..., length), and that
        cut into chunks, (kept..., split, length // split)."""
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
        rows = View(ViewKind.RESHAPE, arg, (kept_shape + (length,),), kept_shape + (length,), arg.dtype)
        chunked = kept_shape + (split, length // split)
        return rows, View(ViewKind.RESHAPE, arg, (chunked,), chunked, arg.dtype)

    def partials(self, r: Reduce, expr=None, dtype=None) -> Load:
        """A kernel reducing each chunk of every output row of r (or computing `expr` of the chunked operand); a
        Load of its buffer (rows x chunks)."""
        _, arg = self.chunked(r)
        chunked = arg.shape
        shape, dtype = chunked[:-1], dtype or _partial_dtype(r)
        name = f"{self.kernel.out.name}_part{len(self.added)}"
        expr = expr(arg) if expr is not None else Reduce(r.kind, arg, (len(chunked) - 1,), False, shape, dtype)
        kernel = Kernel(Buffer(name, Layout(shape, contiguous_strides(shape), dtype)), expr, list(self.kernel.source))
        layout = tiling.reduction_layout(kernel, self.layouts, chunked, (len(chunked) - 1,)) if self.outer else None
        if layout is not None and layout.outer:  # stored in the order the partial kernel walks its outputs: chunk-major, like the input
            kernel.out.layout = Layout(shape, _strides_in_order(shape, layout.xdims), dtype)
        self.added.append(kernel)
        self.layouts[name] = kernel.out.layout
        return Load(name, shape, dtype)

    def combine(self, r: Reduce, stored: bool):
        """r's value computed from its partials: the same kind of reduction over the last axis (argmax and
        argmin: `arg_combine`), reshaped back to r's shape (keepdim's ones). Stored: computed by a kernel of its
        own and loaded."""
        shape = tuple(r.shape)  # kept sizes, with keepdim's ones: the reduction's own output is r's shape
        if r.kind in ARG_KINDS:
            out = self.arg_combine(r)
        else:
            part = self.partials(r)
            written = tuple(self.kernel.out.layout.shape)
            # the kernel writes the sums reshaped by its epilogue (a bias gradient: sum over (0, 1) with keepdim,
            # viewed as a vector): combined in the written shape, so the kernel's output is its reduction's
            squeezed = not stored and written != shape and \
                [n for n in written if n != 1] == [n for n in shape if n != 1]
            at = written if squeezed else shape
            if at != part.shape[:-1]:
                part = View(ViewKind.RESHAPE, part, (at + part.shape[-1:],), at + part.shape[-1:], part.dtype)
            out = Reduce(r.kind, part, (len(at),), False, at, r.dtype)
        if tuple(out.shape) != shape:
            out = View(ViewKind.RESHAPE, out, (shape,), shape, out.dtype)
        return self.stored(out) if stored else out

    def stored(self, out):
        """A Load of `out` (a combination of partials) computed by a kernel of its own."""
        shape = tuple(out.shape)
        name = f"{self.kernel.out.name}_red{len(self.added)}"
        self.added.append(Kernel(Buffer(name, Layout(shape, contiguous_strides(shape), out.dtype)), out,
                                 list(self.kernel.source)))
        self.layouts[name] = self.added[-1].out.layout
        return Load(name, shape, out.dtype)

    def variance(self, r: Reduce, mean: Reduce):
        """sum((x - mean(x))**2) from per-chunk statistics (Chan et al.'s pairwise update): the partial kernels
        store each chunk's sum s_i and its squared deviations from its own mean q_i (two-pass inside the chunk,
        which the kernel holds in registers: x is read once); the combination is
        sum_i q_i + n * sum_i (s_i / n - mean)**2 over chunks of n elements, mean = sum_i s_i / N. Every
        difference is taken from a mean, as the two-pass formula does, so a large mean loses no digits."""
        _, xc = self.chunked(mean)
        kept, split, chunk = xc.shape[:-2], xc.shape[-2], xc.shape[-1]
        shape, last, f32 = kept + (split,), len(kept) + 1, _partial_dtype(r)
        if f32 != torch.float64:
            f32 = torch.float32

        def deviations(_):
            # the chunk's sum as the sums' partial kernel writes it (the same tree: side_outputs.py's sibling merge
            # then computes it once for both), reshaped to broadcast over the chunk
            s = Reduce("sum", xc, (last,), False, shape, f32)
            s = View(ViewKind.RESHAPE, s, (shape + (1,),), shape + (1,), f32)
            m = Op("div", [s, Const(chunk)], shape + (1,), f32, f32)
            d = Op("sub", [xc, m], xc.shape, f32, f32)
            return Reduce("sum", Op("mul", [d, d], xc.shape, f32, f32), (last,), False, shape, f32)
        sums, squares = self.partials(mean, dtype=f32), self.partials(r, deviations, f32)
        out = tuple(r.shape)
        shape, last = out + (split,), len(out)
        reshape = lambda e: e if tuple(e.shape) == shape else View(ViewKind.RESHAPE, e, (shape,), shape, e.dtype)
        sums, squares = reshape(sums), reshape(squares)
        total = Reduce("sum", sums, (last,), True, out + (1,), f32)
        m = Op("div", [total, Const(chunk * split)], out + (1,), f32, f32)
        d = Op("sub", [Op("div", [sums, Const(chunk)], shape, f32, f32), m], shape, f32, f32)
        spread = Op("mul", [Op("mul", [d, d], shape, f32, f32), Const(chunk)], shape, f32, f32)
        return Reduce("sum", Op("add", [squares, spread], shape, f32, f32), (last,), False, out, r.dtype)

    def arg_combine(self, r: Reduce) -> Reduce:
        """argmax / argmin from per-chunk winners: the partial kernel stores each chunk's first winning index as
        an index into the whole row (its argmax plus the chunk's offset); the combining kernel reads the values
        at those indices back (a gather of rows x chunks elements), takes their max (NaN-propagating: a NaN wins,
        as in torch), and returns the smallest index whose value is that max or NaN: the first winner of the
        first winning chunk, which is torch's first index on ties."""
        rows, chunked = self.chunked(r)
        kept, split, chunk = chunked.shape[:-2], chunked.shape[-2], chunked.shape[-1]
        shape, last, i64 = kept + (split,), len(kept), torch.int64

        def winners(arg):
            local = Reduce(r.kind, arg, (last + 1,), False, shape, i64)
            offsets = Op("arange", [], (split,), i64, i64, (0, split * chunk, chunk))
            return Op("add", [local, offsets], shape, i64, i64)
        index = self.partials(r, winners, i64)
        # the combination over r's own shape (keepdim's ones): the kernel's output is that shape
        out = tuple(r.shape)
        shape, last = out + (split,), len(out)
        reshape = lambda e, to: e if tuple(e.shape) == to else View(ViewKind.RESHAPE, e, (to,), to, e.dtype)
        index, rows = reshape(index, shape), reshape(rows, out + (rows.shape[-1],))
        value = Op("gather", [rows, index], shape, rows.dtype, rows.dtype, (last,))
        best = Reduce("amax" if r.kind == "argmax" else "amin", value, (last,), True, out + (1,), rows.dtype)
        nan = Op("ne", [value, value], shape, torch.bool, rows.dtype)
        hit = Op("logical_or", [Op("eq", [value, best], shape, torch.bool, rows.dtype), nan], shape, torch.bool,
                 torch.bool)
        first = Op("where", [hit, index, Const(torch.iinfo(i64).max)], shape, i64, i64)
        return Reduce("amin", first, (last,), False, out, i64)


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
    if not any(splitter.count(r) > 1 for r in reduces):
        return None
    if any(r.kind not in SPLITTABLE | ARG_KINDS or splitter.count(r) == 1 for r in reduces):
        return None
    # squared deviations from a mean over the same elements: combined from per-chunk statistics, x read once
    # (a normalization's in a kernel of its own, as its other reductions: batch_norm's training statistics)
    combined = {id(r): splitter.variance(r, m) for r, m in ((r, _centered_square(r)) for r in reduces_in(kernel.expr))
                if m is not None}
    if splitter.normalization:
        combined = {i: splitter.stored(v) for i, v in combined.items()}
    done = {id(n) for r in combined.values() for n in reduces_in(r)}
    expr = rebuild(kernel.expr, lambda n: combined.get(id(n)))
    while True:
        reduces = [r for r in reduces_in(expr) if id(r) not in done]
        nested = {id(n) for r in reduces for n in reduces_in(r.arg)}
        if not nested:
            # the outermost reductions: combined from their partials inside the kernel itself; a normalization's
            # in kernels of their own (its epilogue runs over the whole input, not over the partials' rows)
            replace = {id(r): splitter.combine(r, stored=splitter.normalization) for r in reduces}
            break
        # a reduction read inside another one's operand, with none in its own: its value gets its own buffer,
        # which the outer reduction's partial kernel loads (broadcast)
        replace = {id(r): splitter.combine(r, stored=True) for r in reduces
                   if id(r) in nested and not reduces_in(r.arg)}
        expr = rebuild(expr, lambda n: replace.get(id(n)))
    return splitter.added + [Kernel(kernel.out, rebuild(expr, lambda n: replace.get(id(n))), kernel.source,
                                    kernel.is_view)]


def _centered_square(r: Reduce) -> Reduce | None:
    """The mean's sum when r is sum((x - sum(x) / N)**2) over the same axes of the same x (the variance's lowering:
    mul of one difference by itself, the sum kept with keepdim and divided by its element count), else None."""
    if r.kind != "sum" or not isinstance(r.arg, Op) or r.arg.name != "mul":
        return None
    a, b = r.arg.args
    if not (a is b or repr(a) == repr(b)) or not isinstance(a, Op) or a.name != "sub":
        return None
    x, m = a.args
    while isinstance(m, View) and m.kind in (ViewKind.EXPAND, ViewKind.IDENTITY):
        m = m.arg
    if not isinstance(m, Op) or m.name != "div" or not isinstance(m.args[1], Const):
        return None
    s = m.args[0]
    if not isinstance(s, Reduce) or s.kind != "sum" or not s.keepdim or s.axes != r.axes or \
            tuple(s.arg.shape) != tuple(r.arg.shape) or repr(s.arg) != repr(x):
        return None
    return s if m.args[1].value == _rows_and_length(r)[1] else None


def split_reductions(kernels: list, layouts: dict | None = None) -> list:
    """The kernel list with every serial reduction split, and with `layouts` (buffer -> Layout: the graph's
    inputs and earlier kernels' outputs) every row or column reduction too short of programs; raises
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


def share_partials(kernels: list, partials: set) -> list:
    """The kernel list without partial kernels (named in `partials`) that compute exactly what an earlier one
    computes, their readers reading the earlier buffer: x.mean((0, 2, 3)) and the mean inside x.var((0, 2, 3))
    (a keepdim apart, so the graph kept both) chunk and sum x alike, and one pass over x is saved."""
    seen, renamed, out = {}, {}, []
    swap = lambda n: Load(renamed[n.buf], n.shape, n.dtype) if isinstance(n, Load) and n.buf in renamed else None
    for k in kernels:
        if not isinstance(k, Kernel):
            out.append(k)
            continue
        if renamed and any(b in renamed for b in loads_in(k.expr)):
            k = dataclasses.replace(k, expr=rebuild(k.expr, swap))
        if k.out.name in partials and not k.side_outputs:
            key = (repr(k.expr), k.out.layout)
            if key in seen:
                renamed[k.out.name] = seen[key]
                continue
            seen[key] = k.out.name
        out.append(k)
    return out

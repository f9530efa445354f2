"""One IR Kernel -> the source of one @triton.jit kernel.

Three shapes of kernel, all built by the same expression walker over the same index machinery
(triton/index.py):
  * pointwise: a 1-D tile walking the output in its memory order (the store is `out + xindex`, contiguous);
    or, where an input is read in another order (a transpose), a 2-D tile [YBLOCK, XBLOCK] whose loads of that
    input are contiguous along axis 0 and whose store is contiguous along axis 1 (tiling.py decides);
  * reduction: a 2-D tile, rows (kept dims) x columns (reduced dims). When a row fits in registers
    (rnumel <= launch.PERSISTENT_MAX) the kernel is *persistent*: the row is loaded once and every reduction and
    the epilogue read the registers. Otherwise each reduction gets its own loop over column blocks (two-pass
    mean/variance, so sums of squared deviations stay accurate), emitted before the loop that needs it. Where the
    input is contiguous along a kept dim instead (x.sum(0) of a row-major matrix) the tile is transposed,
    [RBLOCK, XBLOCK]: outputs across axis 1, the reduction folds axis 0 (tiling.reduction_layout; KernelSource
    mode `outer_persistent` / `outer_looped`);
  * normalization: a reduction kernel whose output has the full input shape (softmax, layer_norm, rmsnorm): the
    reductions of the row, then the epilogue over the same row, one read and one write of the tensor.

Values are computed in float32 for float16/bfloat16 (loads widen, stores narrow), as torch's CUDA kernels do.
Indices are int32 unless some buffer or tile spans 2**31 elements, then int64 from the program id down.

With dynamic sizes, numels, strides and index divisors are SymInts: the kernel takes each distinct one as an
argument (`KernelSizes`); choices made from sizes (persistent or looped, block sizes, int64 indices) are
conditions of the compiled variant (graph/size_variants.py), in power-of-two buckets where they are sizes."""
import math
from dataclasses import dataclass, field

import torch

from framejit.graph import symbolic_sizes
from framejit.graph.symbolic_sizes import SymInt

from ..runtime import launch_configs
from . import tiling
from ..ir import Const, Kernel, Load, Op, Reduce, ScalarLayout, View, loads_in, reduces_in, walk
from .dtypes import NARROW, TL, Val, compute, literal, rounded
from .loop_fusion import fuse_loops
from .index import ZERO, Group, Ix, Scope, address, broadcast, through_view
from .ops import ROUNDED_FIRST, SCAN_OPS, checked, constant_index, emit_op
from .reduce import emit_reduce

INT32_LIMIT = 2 ** 31 - 1
DEBUG_OPTIONS = {"debug": True, "sanitize_overflow": False}  # KernelSource.options of a kernel with an assert


class KernelSizes:
    """Renders the sizes in one kernel's code (SymInts, graph/symbolic_sizes.py) as kernel arguments: each
    distinct expression (`s0 * 64`) becomes one parameter `ks0`, which the host computes per call."""

    def __init__(self):
        self.params: dict = {}  # Expr -> parameter name, in first-use order

    def __call__(self, s: SymInt) -> str:
        name = self.params.get(s.expr)
        if name is None:
            name = self.params[s.expr] = f"ks{len(self.params)}"
        return name


@dataclass
class KernelSource:
    """What the host code needs to launch one generated kernel."""
    name: str
    source: str
    params: list          # buffer names in argument order (outputs last, but one written over an input is that input)
    out: str
    xnumel: int
    rnumel: int
    mode: str             # 'pointwise' | 'tiled' | 'persistent' | 'looped'
    config: dict          # constexprs and launch options from triton_launch
    comment: list
    sizes: list = None    # (parameter, Expr) for each size argument, after the buffers
    ynumel: int = 1       # a tiled kernel's axis-0 elements (grid axis 0); xnumel is its axis 1
    in_place: bool = False  # an output is written over an input it reads (one parameter for both)
    overwritten: list = field(default_factory=list)  # argument positions of those parameters
    # argument positions of the size arguments holding xnumel / ynumel (None: a fixed numel), for the grid per call
    xnumel_arg: int | None = None
    ynumel_arg: int | None = None
    # each argument's dtype (an int, its value at the example inputs, for a size argument): twins.twin_key
    arg_dtypes: list = field(default_factory=list)
    # which runtime launcher runs it (inductor/runtime/triton_graph.LAUNCHERS): "kernel", or "matmul" for a fused
    # matmul call site (runtime/matmul.MatmulLauncher: the Triton kernel or the library call + epilogue kernel)
    launcher: str = "kernel"
    mnk: tuple = ()       # a matmul call site's (M, N, K)
    dtype: torch.dtype | None = None  # a matmul call site's product dtype
    # compile options beyond the config's: a kernel holding a device-side assert (an index check, ops.py) is
    # compiled with debug on, without which Triton drops tl.device_assert (language/semantic.py), and without
    # the integer-overflow asserts debug would add to every int32 index computation (`sanitize_overflow`)
    options: dict = field(default_factory=dict)


class KernelWriter:
    def __init__(self, kernel: Kernel, layouts: dict, name: str):
        self.kernel, self.layouts, self.name = kernel, layouts, name
        self.params = []
        self.top = Scope()
        self.memo = {}  # (scope id, expr id, coord codes, extra mask) -> Val
        # reduce.py's online softmax: (sum id, row coords, extra mask) -> (max, sum); repr(max) -> (sum, operand)
        self.online, self.online_pairs = {}, None
        self.tiling, self.ygroup = None, None
        self.layout = None  # a reduction kernel's tiling.ReductionLayout (inner rows or outer columns)
        self.asserts = False  # a tl.device_assert was written (ops.py's index checks): compiled with debug on

    # ---- structure ---------------------------------------------------------------------------------------------
    def plan(self):
        out = self.kernel.out.layout
        self.out_shape = tuple(out.shape)
        reduces = reduces_in(self.kernel.expr)
        scans = [e for e in walk(self.kernel.expr) if isinstance(e, Op) and e.name in SCAN_OPS]
        if not reduces and not scans:
            order = sorted(range(len(self.out_shape)), key=lambda d: (-out.strides[d], d))
            self.xgroup = Group("xindex", order, [self.out_shape[d] for d in order])
            self.rgroup = None
            self.signature = None
            self.mode = "pointwise"
            self.case = "pointwise"
            return
        sigs = {(tuple(r.arg.shape), tuple(range(len(r.arg.shape))) if r.axes is None else tuple(r.axes))
                for r in reduces}
        # a scan (triton/scan.py) walks its row like a persistent reduction whose result keeps the row's shape
        sigs |= {(tuple(e.shape), (e.params[0],)) for e in scans}
        if len(sigs) != 1:
            raise NotImplementedError(f"reductions over different axes in one kernel: {sigs}")
        shape, axes = self.signature = sigs.pop()
        self.layout = tiling.reduction_layout(self.kernel, self.layouts, shape, axes)
        kept = self.layout.xdims
        self.xgroup = Group("xindex", kept, [shape[d] for d in kept])
        self.rgroup = Group("rindex", list(axes), [shape[d] for d in axes])
        rnumel = math.prod(shape[d] for d in axes)
        keep = tuple(1 if d in axes else s for d, s in enumerate(shape))
        drop = tuple(s for d, s in enumerate(shape) if d not in axes)
        if self.out_shape == shape and rnumel > 1:
            self.case = "full"
        elif self.out_shape in (keep, drop):
            self.case = "reduced"
        else:
            raise NotImplementedError(f"kernel output {self.out_shape} does not fit its reduction of {shape}")
        limit = (launch_configs.outer_persistent_max if self.outer else launch_configs.persistent_max)(self._widest())
        self.mode = "persistent" if rnumel <= limit else "looped"
        if scans and (self.mode != "persistent" or self.case != "full"):
            raise NotImplementedError("a scan over more than one persistent row tile")

    @property
    def outer(self) -> bool:
        """A reduction down columns: the tile is [RBLOCK, XBLOCK], reduced along axis 0 (tiling.ReductionLayout)."""
        return self.layout is not None and self.layout.outer

    @property
    def raxis(self) -> int:
        """The tile axis a reduction folds."""
        return 0 if self.outer else 1

    @property
    def tile(self) -> str:
        """The 2-D tile's shape, as Triton code."""
        return "[RBLOCK, XBLOCK]" if self.outer else "[XBLOCK, RBLOCK]"

    @property
    def kept(self) -> str:
        """Indexing that turns a reduced [XBLOCK] vector back into a tile dimension."""
        return "[None, :]" if self.outer else "[:, None]"

    def plan_tiles(self):
        """A pointwise kernel that reads some input in another order than it writes walks a 2-D tile: Y (axis 0)
        along that input's innermost dims, X (axis 1) along the output's (tiling.py)."""
        self.tiling = tiling.plan(self.kernel, self.layouts)
        if self.tiling is not None:
            sizes = lambda dims: [self.out_shape[d] for d in dims]
            self.ygroup = Group("yindex", self.tiling.ydims, sizes(self.tiling.ydims))
            self.xgroup = Group("xindex", self.tiling.xdims, sizes(self.tiling.xdims))

    @property
    def axes(self) -> list:
        """The tile's axes in order: (dependency letter, block constexpr, mask name)."""
        if self.tiling is not None:
            return [("y", "YBLOCK", "ymask"), ("x", "XBLOCK", "xmask")]
        if self.mode == "pointwise":
            return [("x", "XBLOCK", "xmask")]
        if self.outer:
            return [("r", "RBLOCK", "rmask"), ("x", "XBLOCK", "xmask")]
        return [("x", "XBLOCK", "xmask"), ("r", "RBLOCK", "rmask")]

    def groups(self, rgroup) -> list:
        """The tile index groups an address may rebuild whole (triton_index.address)."""
        tile = [self.ygroup, self.xgroup] if self.tiling is not None else [self.xgroup]
        return tile + ([rgroup] if rgroup is not None else [])

    def _widest(self) -> int:
        """The widest element the kernel loads, in bytes (4 where it loads nothing)."""
        return max([self.layouts[b].dtype.itemsize for b in loads_in(self.kernel.expr)], default=4)

    def _streamed(self) -> int:
        """Bytes per element of the inputs the kernel reads at every element (an input with fewer elements, a
        broadcast bias, stays in cache). A size that is not the same expression counts as broadcast."""
        numel = symbolic_sizes.as_expr(math.prod(self.kernel.out.layout.shape))
        return sum(self.layouts[b].dtype.itemsize for b in loads_in(self.kernel.expr)
                   if symbolic_sizes.as_expr(math.prod(self.layouts[b].shape)).add(numel, -1).const() == 0)

    def numels(self):
        x = math.prod(self.xgroup.sizes)
        r = math.prod(self.rgroup.sizes) if self.rgroup else 1
        return x, r

    def needs_int64(self) -> bool:
        x, r = self.numels()
        y = math.prod(self.ygroup.sizes) if self.ygroup is not None else 1
        # the tile index itself runs up to a block past its numel (masked lanes); addresses of masked lanes may
        # wrap harmlessly, those of live lanes stay inside their buffer's span
        spans = [x * r * y + 2 ** 16] + [_span(self.layouts[b]) for b in loads_in(self.kernel.expr)] + \
            [_span(self.kernel.out.layout)]
        return max(spans) > INT32_LIMIT

    # ---- the kernel ----------------------------------------------------------------------------------------------
    def generate(self) -> KernelSource:
        sizes = KernelSizes()
        with symbolic_sizes.rendering(sizes):
            ks = self._generate(sizes)
        ks.sizes = [(name, expr) for expr, name in sizes.params.items()]
        # the launcher computes the grid per call from the arguments holding xnumel (and a tiled kernel's ynumel)
        at = lambda n: len(ks.params) + list(sizes.params).index(n.expr) if isinstance(n, SymInt) else None
        ks.xnumel_arg, ks.ynumel_arg = at(ks.xnumel), at(ks.ynumel)
        return ks

    def _generate(self, sizes: KernelSizes) -> KernelSource:
        self.plan()
        if self.mode == "pointwise":
            self.plan_tiles()
        xnumel, rnumel = self.numels()
        ynumel = math.prod(self.ygroup.sizes) if self.tiling is not None else 1
        two_d = self.mode != "pointwise"
        big = self.needs_int64()
        t = self.top
        pid = lambda axis: f"tl.program_id({axis}).to(tl.int64)" if big else f"tl.program_id({axis})"
        if self.tiling is not None:
            t.lines.append(f"yoffset = {pid(0)} * YBLOCK")
            t.lines.append("yindex = yoffset + tl.arange(0, YBLOCK)[:, None]")
            t.lines.append(f"ymask = yindex < {ynumel}")
            t.lines.append(f"xoffset = {pid(1)} * XBLOCK")
            t.lines.append("xindex = xoffset + tl.arange(0, XBLOCK)[None, :]")
            self.ygroup.decode(t, "y")
        else:
            t.lines.append(f"xoffset = {pid(0)} * XBLOCK")
            t.lines.append(f"xindex = xoffset + tl.arange(0, XBLOCK){self.kept if two_d else ''}")
        t.lines.append(f"xmask = xindex < {xnumel}")
        self.xgroup.decode(t, "x")
        if two_d:
            rpos = "[:, None]" if self.outer else "[None, :]"
            t.lines.append(f"rbase = tl.arange(0, RBLOCK){rpos}{'.to(tl.int64)' if big else ''}")
        if self.mode == "persistent":
            t.lines.append("rindex = rbase")
            t.lines.append(f"rmask = rindex < {rnumel}")
            self.rgroup.decode(t, "r")
        self.xnumel, self.rnumel = xnumel, rnumel
        if self.case == "full" and self.mode == "looped":
            scope, rgroup = self.open_loop()
            coords = self.full_coords(self.xgroup.coords, rgroup.coords)
            self.store(scope, rgroup, coords)
            self.close_loop(scope)
        elif self.case == "full":
            self.store(t, self.rgroup, self.full_coords(self.xgroup.coords, self.rgroup.coords))
        else:
            self.store(t, self.rgroup if self.mode == "persistent" else None, self.out_coords())
        mode = "tiled" if self.tiling is not None else f"outer_{self.mode}" if self.outer else self.mode
        if self.tiling is not None:
            config = launch_configs.heuristic(mode, xnumel, rnumel, self._widest(), ynumel=ynumel)
        else:
            config = launch_configs.heuristic(mode, xnumel, rnumel, self._widest(), streamed=self._streamed(),
                                              loads=sum(line.count("tl.load(") for line in t.lines))
        stores = [self.kernel.out.name] + [b.name for b, _ in self.kernel.side_outputs]
        params = self.params + [b for b in stores if b not in self.params]  # an output over an input: one pointer
        sig = ", ".join([self.argument(p) for p in params] + list(sizes.params.values()))
        consts = ", ".join(f"{block}: tl.constexpr" for _, block, _ in self.axes)
        lines = ["@triton.jit", f"def {self.name}({sig}, {consts}):"]
        lines += [f"    # {s}" for s in self.kernel.source]
        if self.asserts:
            lines.append(f"    # asserts index bounds on the device: launched with {DEBUG_OPTIONS} (Triton drops "
                         "tl.device_assert without debug)")
        if self.outer:
            lines.append(f"    # columns: outputs along the tile's axis 1 (`{self.layout.reason}` is contiguous along "
                         f"dim {self.layout.xdims[-1]}), the reduction down axis 0")
        if self.tiling is not None:
            tiling = self.tiling
            lines.append(f"    # tiled: rows along dims {tiling.ydims} (`{tiling.reason}` is contiguous there), "
                         f"columns along dims {tiling.xdims} (the output is)")
        lines += [f"    {line}" for line in (fuse_loops(t.lines) if self.mode == "looped" else t.lines)]
        return KernelSource(self.name, "\n".join(lines) + "\n", params, self.kernel.out.name, xnumel,
                            rnumel, mode, config, list(self.kernel.source), ynumel=ynumel,
                            in_place=any(b in self.params for b in stores),
                            overwritten=[i for i, p in enumerate(params) if p in stores and p in self.params],
                            options=DEBUG_OPTIONS if self.asserts else {})

    def full_coords(self, xc, rc) -> tuple:
        shape, axes = self.signature
        by_dim = dict(zip(self.xgroup.dims, xc)) | dict(zip(self.rgroup.dims, rc))
        return tuple(by_dim[d] for d in range(len(shape)))

    def out_coords(self) -> tuple:
        if self.case == "pointwise":
            by_dim = {d: c for g in self.groups(None) for d, c in zip(g.dims, g.coords)}
            return tuple(by_dim[d] for d in range(len(self.out_shape)))
        shape, axes = self.signature
        xc = dict(zip(self.xgroup.dims, self.xgroup.coords))
        if len(self.out_shape) == len(shape):
            return tuple(ZERO if d in axes else xc[d] for d in range(len(shape)))
        return tuple(xc[d] for d in range(len(shape)) if d not in axes)

    def open_loop(self):
        scope = Scope(self.top)
        scope.lines.append("rindex = roffset + rbase")
        scope.lines.append(f"rmask = rindex < {self.rnumel}")
        group = Group("rindex", self.rgroup.dims, self.rgroup.sizes)
        group.decode(scope, "r")
        return scope, group

    def close_loop(self, scope):
        self.top.lines.append(f"for roffset in range(0, {self.rnumel}, RBLOCK):")
        self.top.lines += [f"    {line}" for line in scope.lines]

    # ---- stores and loads ------------------------------------------------------------------------------------
    def param(self, buf: str) -> str:
        if buf not in self.params:
            self.params.append(buf)
        return f"{buf}_ptr"

    def store(self, scope, rgroup, coords):
        # the kernel's own output last: where it is written over an input (triton_module's in-place outputs),
        # every value that reads the input is loaded before it
        for buf, expr in self.kernel.side_outputs:
            self.store_one(scope, rgroup, coords, buf, expr)
        self.store_one(scope, rgroup, coords, self.kernel.out, self.kernel.expr)

    def store_one(self, scope, rgroup, coords, out, expr):
        if self.kernel.scatter is not None:
            return self.scatter_store(scope, coords, self.kernel.scatter, expr)
        v = self.value(expr, coords, scope, rgroup, None)
        addr = address(scope, coords, out.layout.strides, out.layout.shape, self.groups(rgroup))
        if addr.code == "0":
            addr = Ix("xindex", frozenset("x"))  # one element: a tile whose lanes past the first are masked
        v = self.cast(scope, v, out.layout.dtype, narrow_store=True)
        v = self.materialize(scope, v, addr.deps)
        mask = " & ".join(m for a, _, m in self.axes if a in addr.deps)
        ptr = f"{out.name}_ptr"
        scope.lines.append(f"tl.store({ptr} + {addr.code}, {v.code}{', ' + mask if mask else ''})")

    def scatter_store(self, scope, coords, sc, expr):
        """An indexed store (ir.ScatterStore): the tile walks the source; each element goes to the target's
        coordinates with the index's value along `dim`, added atomically (duplicate indices accumulate, in an
        order the hardware picks, as torch's CUDA index_add / scatter_add) or stored. Indices arrive checked
        (graph/index_checks.py); lanes outside the target stay masked all the same."""
        v = self.value(expr, coords, scope, None, None)
        dim, k = sc.dim, (len(sc.index.shape) if sc.take else 1)
        icoords = tuple(coords[dim:dim + k]) if sc.take else coords
        i = self.value(sc.index, icoords, scope, None, None)
        size = sc.into.layout.shape[dim]
        known = constant_index(i)
        if known is not None and isinstance(size, int) and -size <= known < size:
            at, inside = str(known % size), None  # an index known here: no wrap, no mask of Python bools
        else:
            at = i.code if checked(sc.index) else scope.let(
                f"tl.where({i.code} < 0, {i.code} + {size}, {i.code})", prefix="i")
            inside = scope.let(f"({at} >= 0) & ({at} < {size})", prefix="m")
        target = tuple(coords[:dim]) + (Ix(at, i.deps),) + tuple(coords[dim + k:])
        lay = sc.into.layout
        addr = address(scope, target, lay.strides, lay.shape, [])
        deps = frozenset(a for a, _, _ in self.axes)
        if not addr.deps:  # one target element (a size-1 dim): a pointer per lane, as the values are
            shape = "[" + ", ".join(block for _, block, _ in self.axes) + "]"
            addr = Ix(f"{addr.code} + tl.zeros({shape}, tl.int32)", deps)
        v = self.materialize(scope, self.cast(scope, v, lay.dtype, narrow_store=True), deps)
        mask = " & ".join([m for _, _, m in self.axes] + ([inside] if inside else []))
        fn = "tl.atomic_add" if sc.add else "tl.store"
        if sc.add and lay.dtype == torch.bool:
            # a sum of bools is their or: True stored where a source element is True (no atomics on int1; lanes
            # racing to one element all store the same True)
            fn, mask = "tl.store", f"{mask} & ({v.code} != 0)"
        scope.lines.append(f"{fn}({self.param(sc.into.name)} + {addr.code}, {v.code}, {mask})")

    def materialize(self, scope, v: Val, deps) -> Val:
        """v broadcast to the tile shape of `deps` (a store needs a value shaped like its pointers)."""
        if v.deps >= deps and not v.literal:
            return v
        axes = self.axes
        if not deps <= {a for a, _, _ in axes}:
            raise AssertionError(f"a {self.mode} tile has no axis {set(deps)}")
        shape = "[" + ", ".join(block if a in deps else "1" for a, block, _ in axes) + "]"
        if v.literal:
            return Val(scope.let(f"tl.full({shape}, {v.code}, {TL[compute(v.dtype)]})"), v.dtype, deps)
        return Val(scope.let(f"tl.broadcast_to({v.code}, {shape})"), v.dtype, deps)

    def argument(self, buf: str) -> str:
        """The kernel's parameter for a buffer: its pointer, or a host scalar's value typed by annotation (Triton
        would take a Python float for float32)."""
        layout = self.layouts.get(buf)  # outputs may have no entry
        return f"{buf}: {TL[layout.dtype]}" if isinstance(layout, ScalarLayout) else f"{buf}_ptr"

    def load(self, e: Load, coords, scope, rgroup, extra) -> Val:
        layout = self.layouts[e.buf]
        if isinstance(layout, ScalarLayout):  # a host scalar, the value itself (a [1] block, as loads below)
            self.param(e.buf)
            return Val(scope.let(f"tl.full([1], {e.buf}, {TL[e.dtype]})"), e.dtype, frozenset())
        if any(type(s) is int and s == 0 for s in layout.shape):  # an empty buffer: no lane may touch it
            return literal(0, e.dtype)
        addr = address(scope, coords, layout.strides, layout.shape, self.groups(rgroup))
        masks = [m for a, _, m in self.axes if a in addr.deps]
        if extra:
            masks.append(extra)
        ptr = self.param(e.buf)
        mask = f", {' & '.join(masks)}, other=0" if masks else ""
        # a load at one address for the whole tile is a [1] block, not a scalar: the interpreter mixes the two
        # badly. That address is not always 0: an index read from memory (x[i] of one element) moves it
        at = addr.code if addr.deps else "tl.zeros([1], tl.int32)" if addr.code == "0" else \
            f"({addr.code}) + tl.zeros([1], tl.int32)"
        code = f"tl.load({ptr} + {at}{mask})"
        if e.dtype in NARROW:
            code += ".to(tl.float32)"
        return Val(scope.let(code), e.dtype, addr.deps)

    # ---- expressions -------------------------------------------------------------------------------------------
    def value(self, e, coords, scope, rgroup, extra) -> Val:
        key = (id(e), tuple(c.code for c in coords), extra)
        s = scope
        while s is not None:
            hit = self.memo.get((id(s),) + key)
            if hit is not None:
                return hit
            s = s.parent
        if isinstance(e, Const):
            v = literal(e.value, e.dtype)
        elif isinstance(e, Load):
            v = self.load(e, coords, scope, rgroup, extra)
        elif isinstance(e, View):
            v = self.value(e.arg, through_view(scope, e.kind, e.params, e.arg.shape, coords), scope, rgroup, extra)
        elif isinstance(e, Op):
            v = self.op(e, coords, scope, rgroup, extra)
        elif isinstance(e, Reduce):
            v = self.reduce(e, coords, scope, rgroup, extra)
        else:
            raise NotImplementedError(f"Triton codegen: {type(e).__name__}")
        self.memo[(id(scope),) + key] = v
        return v

    def cast(self, scope, v: Val, dtype, narrow_store=False) -> Val:
        """v in `dtype`'s compute form; casts to float16/bfloat16 round through the narrow type, as torch does;
        with narrow_store the result is the narrow storage form itself."""
        if v.literal:
            if narrow_store:
                return literal(_literal_value(v.code), dtype)
            return literal(_literal_value(v.code), dtype) if dtype is not None else v
        src, dst = compute(v.dtype), compute(dtype)
        if narrow_store and dtype in NARROW:
            return Val(scope.let(f"{v.code}.to({TL[dtype]})"), dtype, v.deps)
        if dst == torch.bool and src != torch.bool:
            return Val(scope.let(f"({v.code} != 0)"), dtype, v.deps)
        code = v.code
        if src != dst:
            code = f"{code}.to({TL[dst]})"
        if dtype in NARROW and v.dtype != dtype and not narrow_store:
            code = f"{code}.to({TL[dtype]}).to(tl.float32)"  # the rounding an explicit cast does in torch
        return Val(scope.let(code) if code != v.code else code, dtype, v.deps)

    def op(self, e: Op, coords, scope, rgroup, extra) -> Val:
        return emit_op(self, e, coords, scope, rgroup, extra)

    def operand(self, a, e, coords, scope, rgroup, extra, dtype) -> Val:
        if isinstance(a, Const):
            return literal(a.value, dtype)
        v = self.value(a, broadcast(coords, e.shape, a.shape), scope, rgroup, extra)
        if e.name in ROUNDED_FIRST:
            v = rounded(scope, v)
        return self.cast(scope, v, dtype)

    def reduce(self, e: Reduce, coords, scope, rgroup, extra) -> Val:
        return emit_reduce(self, e, coords, scope, rgroup, extra)


def _literal_value(code: str):
    if code.startswith("float("):
        return float(code[7:-2])
    if code in ("True", "False"):
        return code == "True"
    return float(code) if any(c in code for c in ".en") else int(code)


def _span(layout) -> int:
    """Elements between a buffer's first and last element, plus one."""
    if any(s == 0 for s in layout.shape):
        return 0
    return 1 + sum((s - 1) * abs(st) for s, st in zip(layout.shape, layout.strides))

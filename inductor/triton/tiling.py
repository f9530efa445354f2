"""When a pointwise kernel is tiled, and which dims each axis of its tile walks.

A 1-D pointwise kernel walks the output in its memory order, so the store and every input laid out like the output
are contiguous across lanes. An input read in another order (`x.t().contiguous()`, `x + y.t()`, a channels-last
copy) is then read with a stride across lanes: each lane of a warp touches its own 32-byte sector and uses 4 bytes
of it, several times below the copy limit. A tiled kernel walks a 2-D tile [YBLOCK, XBLOCK] instead: X runs along
the output's innermost dims (the store is contiguous along the tile's axis 1), Y along the innermost dims of the
transposed read (its load is contiguous along axis 0). Triton's coalescing pass gives each load and store the
register layout its pointers want and converts between them through shared memory.

The rule (`plan`), for kernels without reductions whose output has two dims or more of size > 1:
  * every load, and every side output's store, is an *access*; its stride along each iteration dim is found by
    evaluating the kernel's own index code (triton/index.py, through any chain of views) at the origin and one
    step along each dim: the code is Python arithmetic, so no second model of view semantics is needed;
  * an access is *transposed* when its unit-stride dim is not the output's innermost dim, and it is not constant
    along the output's innermost dim (a broadcast read hits one address per row: cached, nothing to fix);
  * Y is the transposed access's innermost run (its unit-stride dim, then the dims whose strides continue it), X
    the output's dims faster than that unit-stride dim, the remaining dims are folded into Y as its outer dims
    (grid axis 0, which takes 2**31 - 1 programs; axis 1 takes 65535, so X is bounded, MAX_XNUMEL);
  * both sides must hold MIN_SIDE elements or more. Below 16 rows, the 1-D kernel's strided loads touch at most
    16 lines per warp, and the neighbouring warps read the rest of those lines while they are still in L1/L2;
    a tile that narrow would mask most of its lanes and pay the shared-memory conversion for little. When
    several accesses are transposed, the one moving the most bytes decides.
An input that keeps the output's innermost dim (`x.permute(0, 2, 1, 3).contiguous()` of a (B, T, H, D) tensor)
is read in contiguous runs of D elements: coalesced already by the 1-D kernel, so it stays 1-D.

With dynamic sizes the size tests are conditions of the compiled variant (graph/symbolic_sizes.decide); which
dim is contiguous is read at the hints (it depends on the layout, not on a size)."""
import math
from dataclasses import dataclass

from framejit.graph import symbolic_sizes
from framejit.graph.symbolic_sizes import decide

from ..ir import Const, Load, Op, View, reduces_in
from .index import Ix, Scope, address, broadcast, through_view

MIN_SIDE = 16
MAX_XNUMEL = 65535 * 16  # grid axis 1 holds at most 65535 tiles of the smallest XBLOCK (triton_launch)


@dataclass
class Tiling:
    ydims: list   # iteration dims along the tile's axis 0, slowest first: the folded dims, then the read's run
    xdims: list   # the output's innermost dims, slowest first (axis 1)
    reason: str   # the buffer whose transposed access decided it (named in the kernel's header comment)


@dataclass
class Access:
    buf: str
    nbytes: int
    strides: list  # per iteration dim, at the hints


def accesses(kernel, layouts: dict, shape: tuple) -> list:
    """Each load and each side-output store of a pointwise kernel with its stride along every iteration dim."""
    return strides_of([kernel.expr], layouts, shape, kernel.side_outputs)


def strides_of(trees: list, layouts: dict, shape: tuple, stores: list = ()) -> list:
    """Each load of `trees` (evaluated at the coordinates of `shape`; a reduction nested inside is not entered)
    and each of `stores` ((Buffer, tree) pairs) with its stride along every dim of `shape`."""
    scope = Scope()
    coords = tuple(Ix(f"c{d}", frozenset("x")) for d in range(len(shape)))
    found, seen = [], set()

    def walk(e, cs):
        key = (id(e), tuple(c.code for c in cs))
        if key in seen:
            return
        seen.add(key)
        if isinstance(e, Load):
            lay = layouts[e.buf]
            found.append((e.buf, lay, address(scope, cs, lay.strides, lay.shape, []).code))
        elif isinstance(e, View):
            walk(e.arg, through_view(scope, e.kind, e.params, e.arg.shape, cs))
        elif isinstance(e, Op):
            for a in e.args:
                if not isinstance(a, Const):
                    walk(a, broadcast(cs, e.shape, a.shape))

    hints = lambda s: str(symbolic_sizes.hint(s))
    with symbolic_sizes.rendering(hints):
        for tree in trees:
            walk(tree, coords)
        for buf, expr in stores:
            walk(expr, coords)
            lay = buf.layout
            found.append((buf.name, lay, address(scope, coords, lay.strides, lay.shape, []).code))
    lines = [compile(line, "<index>", "exec") for line in scope.lines]

    def at(point, code):
        env = {f"c{d}": v for d, v in enumerate(point)}
        for line in lines:
            exec(line, {}, env)
        return eval(code, {}, env)

    out = []
    origin = [0] * len(shape)
    for buf, lay, code in found:
        base = at(origin, code)
        strides = [at(origin[:d] + [1] + origin[d + 1:], code) - base for d in range(len(shape))]
        numel = math.prod(symbolic_sizes.hint(s) for s in lay.shape)
        out.append(Access(buf, numel * lay.dtype.itemsize, strides))
    return out


def plan(kernel, layouts: dict) -> Tiling | None:
    """The tiling of a pointwise kernel (see the module doc), or None: the 1-D kernel."""
    out = kernel.out.layout
    shape = tuple(out.shape)
    size = [symbolic_sizes.hint(s) for s in shape]
    order = sorted(range(len(shape)), key=lambda d: (-out.strides[d], d))  # the 1-D kernel's walk
    real = [d for d in order if size[d] != 1]
    if len(real) < 2:
        return None
    inner = real[-1]
    best = None
    for a in accesses(kernel, layouts, shape):
        unit = [d for d in real if abs(a.strides[d]) == 1]
        if len(unit) != 1 or unit[0] == inner or a.strides[inner] == 0:
            continue
        x = real[real.index(unit[0]) + 1:]
        run, step = [unit[0]], size[unit[0]]
        while True:  # the access's innermost run: the dims whose strides continue the unit-stride one
            nxt = [d for d in real if d not in run and abs(a.strides[d]) == step]
            if not nxt or nxt[0] in x:
                break
            run.append(nxt[0])
            step *= size[nxt[0]]
        if best is None or a.nbytes > best[0].nbytes:
            best = (a, x, run)
    if best is None:
        return None
    a, x, run = best
    xnumel, ynumel = math.prod(shape[d] for d in x), math.prod(shape[d] for d in run)
    if not (decide(xnumel, ">=", MIN_SIDE, "a tiled kernel's store side") and
            decide(ynumel, ">=", MIN_SIDE, "a tiled kernel's load side") and
            decide(xnumel, "<=", MAX_XNUMEL, "a tiled kernel's grid axis 1")):
        return None
    rest = [d for d in order if d not in x and d not in run]
    return Tiling(rest + run[::-1], x, a.buf)


@dataclass
class ReductionLayout:
    """How a reduction kernel's tile lies over its input. Inner (rows): the reduced dims run along the tile's
    axis 1, each program reduces XBLOCK rows that are contiguous along the reduction (x.sum(-1)). Outer
    (columns): the input is contiguous along a kept dim (x.sum(0) of a row-major matrix, x.sum(1) of a
    (B, T, C) tensor), so the kept dims run along axis 1 with that dim fastest, the reduced ones along axis 0:
    each program owns XBLOCK neighbouring outputs and walks down the reduction, every load coalesced across
    them, where the inner tile would read one element per row with a stride of a whole row."""
    outer: bool
    xdims: list   # the kept dims in the order xindex walks them, slowest first
    reason: str = ""  # the buffer whose contiguous dim decided an outer layout (the kernel's header comment)


def reduction_layout(kernel, layouts: dict, shape: tuple, axes: tuple) -> ReductionLayout:
    """Outer where the load moving the most bytes inside the kernel's reductions is contiguous (stride 1, at the
    hints) along a kept dim of the reduction's input `shape`, else inner. Loads that do not move along the reduced
    axes do not count: they are read once per output whatever the layout. Strides are found as `plan` finds them,
    by evaluating the kernel's own index code."""
    kept = [d for d in range(len(shape)) if d not in axes]
    size = [symbolic_sizes.hint(s) for s in shape]
    best = None
    for a in strides_of([r.arg for r in reduces_in(kernel.expr)], layouts, shape):
        if not any(size[d] != 1 and a.strides[d] != 0 for d in axes):
            continue  # the same value all along the reduction (a row's label, its max): read once per output
        unit = [d for d in range(len(shape)) if size[d] != 1 and abs(a.strides[d]) == 1]
        if len(unit) == 1 and (best is None or a.nbytes > best[0].nbytes):
            best = (a, unit[0])
    if best is None or best[1] in axes or not any(size[d] != 1 for d in axes):
        return ReductionLayout(False, kept)
    a = best[0]
    return ReductionLayout(True, sorted(kept, key=lambda d: (-abs(a.strides[d]) if size[d] != 1 else 0, d)),
                           a.buf)

"""Which fused kernels run in blocks of rows, how each operand is cut, and which neighbouring kernels share one
loop over the blocks.

A fused kernel is a chain of whole-array NumPy calls: n ops read and write n arrays. On arrays bigger than the
cache every pass goes to memory (a 25-call erf over 1M float32 took 5.2 ms); run on blocks of rows, the same
passes hit L1/L2 and only the inputs and the output travel to memory (1.6 ms). The output's first dim is the row
dim; a kernel qualifies when every node of its tree keeps that dim in place: pointwise ops, reductions over other
dims, loads that either have the rows (cut) or broadcast over them (passed whole). Views re-index with shapes
written into the code, and arange/full/cat build whole arrays, so kernels holding them run unblocked.

Consecutive blocked kernels over the same rows form a group with one loop: kernel 2 reads kernel 1's block while
it is still in cache, and a buffer no later kernel or output reads (the centred x of a layernorm, the exp of a
softmax) only ever exists one block at a time. Blocks are independent, so a group's loop is shared out to
threads (`_run_blocks` in the generated prelude): NumPy releases the GIL inside every ufunc and BLAS call, and
on 2 cores it is the difference between 0.5x and 1x of torch's two-thread kernels (benchmarks/NOTES.md)."""
import math
from dataclasses import dataclass, field

from framejit.graph import symbolic_sizes

from . import dtypes
from ..ir import Const, Kernel, Load, Op, Reduce, View, ViewKind

BLOCK_ELEMENTS = 131072  # 512 KiB of float32 per temporary: a group's few temporaries stay in a 2 MiB L2
WHOLE_ARRAY_OPS = ("full", "arange", "cat", "take", "gather", "scatter")  # indexed: whole arrays


def _rows_of(e, rows: int, ndim: int, cut: dict, whole: dict, memo: dict | None = None) -> bool:
    """True if `e` (of an output with `rows` rows and `ndim` dims) can be computed block by block; collects the
    buffers to cut into `cut` and those read whole (broadcast over the rows) into `whole`, with their shapes.
    `memo`: answers per subexpression already walked (a tree read twice is a DAG: walked once)."""
    memo = {} if memo is None else memo
    if id(e) not in memo:
        memo[id(e)] = _rows_of_once(e, rows, ndim, cut, whole, memo)
    return memo[id(e)]


def _rows_of_once(e, rows: int, ndim: int, cut: dict, whole: dict, memo: dict) -> bool:
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
        else:
            whole[e.buf] = shape
        return True
    if isinstance(e, View):
        return e.kind == ViewKind.IDENTITY and _rows_of(e.arg, rows, ndim, cut, whole, memo)
    if isinstance(e, Op):
        if e.name in WHOLE_ARRAY_OPS:
            return False
        if not row_free and (len(shape) != ndim or shape[0] != rows):
            return False
        return all(_rows_of(a, rows, ndim, cut, whole, memo) for a in e.args)
    if isinstance(e, Reduce):
        if e.axes is None or 0 in e.axes or e.kind in ("argmax", "argmin"):
            return False
        if len(shape) != len(e.arg.shape):
            return False  # a reduction that drops dims re-aligns broadcasting: only as the tree's root (plan)
        return _rows_of(e.arg, rows, ndim, cut, whole, memo)
    return False


@dataclass
class RowPlan:
    block: int      # rows per block
    cut: set        # buffers read block by block
    row: int        # elements in the widest operand row
    shape: tuple    # the shape the kernel's rows run over (its input's, for a root reduction that drops dims)
    tiled: set      # buffers broadcast over every row (a layernorm's weight): read as a block of copied rows


def plan(kernel) -> RowPlan | None:
    """How `kernel` runs in row blocks, or None when it should not."""
    if not isinstance(kernel, Kernel) or kernel.is_view:
        return None
    shape = tuple(kernel.out.layout.shape)
    if len(shape) == 0:
        return None
    cut, whole = {}, {}
    root = kernel.expr
    if isinstance(root, Reduce) and not root.keepdim and root.axes is not None and 0 not in root.axes and \
            root.kind not in ("argmax", "argmin"):
        root = root.arg  # x.sum(-1): the rows of the input are the rows of the output
    if not _rows_of(root, shape[0], len(root.shape), cut, whole) or not cut:
        return None
    row = max(math.prod(s[1:]) for s in cut.values())  # the widest operand row sets the block (reductions)
    elements = shape[0] * row
    if isinstance(elements, symbolic_sizes.SymInt) and \
            symbolic_sizes.decide(elements, "<", 2 * BLOCK_ELEMENTS, "small enough to run unblocked"):
        return None  # one condition for every small size, before the block's own
    # a row width that depends on dynamic sizes sets the block by its power-of-two bucket (a condition of the
    # compiled variant), so the block stays one number in the code for every width in the bucket
    width = symbolic_sizes.bucket(row, "row block size") if isinstance(row, symbolic_sizes.SymInt) else row
    block = max(1, BLOCK_ELEMENTS // max(width, 1))
    if shape[0] < 2 * block:
        return None  # fits in one or two blocks: blocking only adds calls
    # NumPy runs an op with an operand broadcast over rows ~2x slower than one on two same-shape arrays (156 vs
    # 88 us per 1M float32, measured): an operand spanning every dim but the rows is copied once per thread into
    # a block of identical rows, and ops read that instead. Every row of it equals the operand, so any per-row
    # computation (reductions included) sees the same values.
    full = tuple(root.shape[1:])
    tiled = {b for b, s in whole.items() if tuple(s[len(s) - len(full):]) == full and math.prod(s) == math.prod(full)
             and b not in cut and len(full) > 0}
    return RowPlan(block, set(cut), row, tuple(root.shape), tiled)


# ---- groups: one loop over the blocks for neighbouring kernels ---------------------------------------------------
@dataclass
class Unit:
    """One step of the generated `run`: a kernel function (or a fallback call) with the buffers it reads. For a
    row-blocked kernel, `rows` is its plan; `writes_into` says its function takes the output block to fill."""
    out: str
    reads: list
    call: list                      # the lines of `run` that compute `out` when it runs on its own
    kernel: object = None
    fname: str = ""
    rows: RowPlan | None = None
    writes_into: bool = False
    members: list = field(default_factory=list)


def _joins(group: list, unit: Unit) -> bool:
    """A blocked kernel joins the group when it has the same rows and reads every buffer the group makes through
    a cut (a buffer read whole would be read before the group has filled it)."""
    if unit.rows is None or not group:
        return False
    if unit.kernel.out.layout.shape[0] != group[0].kernel.out.layout.shape[0]:
        return False
    made = {u.out for u in group}
    return all(r in unit.rows.cut for r in unit.reads if r in made)


def schedule(units: list, graph_outputs: set, used: set) -> tuple[list, list]:
    """(wrapper function lines, lines of `run`): unblocked units are called as they are, runs of blocked ones
    as one group each."""
    body, calls, group = [], [], []
    for i, unit in enumerate(units + [None]):
        if unit is not None and (_joins(group, unit) or (not group and unit.rows is not None)):
            group.append(unit)
            continue
        if group:
            later = set(graph_outputs)
            for after in units[i:]:
                later.update(after.reads)
            lines, call = _group_wrapper(group, later, used)
            body += lines
            calls.append(call)
            group = []
        if unit is not None and unit.rows is not None:
            group = [unit]
        elif unit is not None:
            calls += unit.call
    return body, calls


def _group_wrapper(group: list, later: set, used: set) -> tuple[list, str]:
    made = [u.out for u in group]
    kept = [m for m in made if m in later or m == made[-1]]  # read after the group or returned: stored whole
    local = [m for m in made if m not in kept]  # one block at a time, in a per-thread scratch array
    params = list(dict.fromkeys(r for u in group for r in u.reads if r not in made))
    cut = set().union(*(u.rows.cut for u in group)) - set(local)  # a kept buffer of the group is cut too
    block = min(u.rows.block for u in group)
    rows = group[0].kernel.out.layout.shape[0]
    elements = rows * max(u.rows.row for u in group)
    # tile an operand only when every kernel reading it runs over the same row shape
    readers = {p: [u for u in group if p in u.reads] for p in params}
    tiles = {p: rs[0].rows.shape for p, rs in readers.items()
             if all(p in u.rows.tiled and u.rows.shape == rs[0].rows.shape for u in rs)}
    base = "rows_" + "__".join(u.fname for u in group)
    name, n = (base if len(base) <= 60 else f"rows_{group[0].fname}_and_{len(group) - 1}_more"), 1
    while name in used:
        n += 1
        name = f"{base[:60]}_{n}"
    used.add(name)
    layout = {u.out: u.kernel.out.layout for u in group}
    renderer = symbolic_sizes.active_renderer()
    if renderer is not None:
        renderer.take()
    storage = lambda m: f"np.{dtypes.storage(layout[m].dtype)}"
    lines = [f"def {name}({', '.join(params)}):",
             f"    # {', '.join(u.fname for u in group)} on blocks of {block} rows"
             + (f"; {', '.join(local)}: one block at a time, never stored whole" if local else "")]
    lines += [f"    {m} = np.empty({tuple(layout[m].shape)!r}, dtype={storage(m)})" for m in kept]
    lines += ["", "    def blocks(starts):  # each thread takes the next block of rows until none are left"]
    lines += [f"        {m}_scratch = _scratch('{name}.{m}', {(block,) + tuple(layout[m].shape[1:])!r}, {storage(m)})"
              for m in local]
    for p, shape in tiles.items():
        lines += [f"        {p}_rows = _scratch('{name}.{p}', {(block,) + shape[1:]!r}, {p}.dtype)",
                  f"        np.copyto({p}_rows, {p})"]
    lines.append("        for i in starts:")
    lines += [f"            {m} = {m}_scratch[:{rows} - i]" for m in local]
    for u in group:
        args = [f"{r}[i:i + {block}]" if r in cut else f"{r}_rows[:{rows} - i]" if r in tiles else r
                for r in u.reads]
        target = u.out if u.out in local else f"{u.out}[i:i + {block}]"
        if u.writes_into:
            lines.append(f"            {u.fname}({', '.join(args + [target])})")
        else:
            lines.append(f"            {target}[...] = {u.fname}({', '.join(args)})")
    lines += ["", f"    _run_blocks(blocks, {rows}, {block}, {elements})",
              f"    return {', '.join(kept)}", "", ""]
    if renderer is not None:  # dynamic sizes the wrapper's own code names (rows, shapes) come from `run`
        params += sorted(renderer.take() - set(params))
        lines[0] = f"def {name}({', '.join(params)}):"
    return lines, f"        {', '.join(kept)} = {name}({', '.join(params)})"

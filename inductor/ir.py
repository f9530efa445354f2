"""The loop-level IR both backends generate code from, and the walkers every pass uses over it.

A graph lowers to an ordered list of kernels. Each kernel fills one buffer. The loop body of a pointwise or
reduction kernel is an expression tree: `Load` reads a buffer, `View` re-indexes its operand (transpose,
broadcast, slice, select... are index arithmetic, which NumPy expresses as zero-copy strided views), `Op` is one
elementwise operation, `Reduce` folds axes. Fusion is simply a producer's tree being inlined into its consumer's
tree instead of being stored to a buffer (see fusion.py)."""
import contextlib
import math
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable, Optional

import torch
import torch.fx
from torch.utils._pytree import tree_unflatten


@dataclass(frozen=True)
class Layout:
    shape: tuple
    strides: tuple
    dtype: torch.dtype

    @staticmethod
    def of(t: torch.Tensor) -> "Layout":
        return Layout(tuple(t.shape), tuple(t.stride()), t.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes of its elements (a dense buffer's size)."""
        return math.prod(self.shape) * self.dtype.itemsize


@dataclass(frozen=True)
class ScalarLayout(Layout):
    """A 0-dim graph input held by value: the module takes it as a Python float and kernels read it as a scalar
    argument (triton/host_scalars.py: the host's arithmetic on CPU scalars beside a GPU graph)."""


def scalar_inputs(lg) -> set:
    return {b.name for b in lg.inputs if isinstance(b.layout, ScalarLayout)}


def dense(shape, strides) -> bool:
    """The strides lay the shape out without gaps or overlaps (a permutation of a contiguous layout)."""
    step = 1
    for d in sorted(range(len(shape)), key=lambda d: (strides[d], shape[d])):
        if shape[d] == 1:
            continue
        if strides[d] != step:
            return False
        step *= shape[d]
    return True


def contiguous_strides(shape) -> tuple:
    """Row-major strides of `shape` (a dim of size 0 or 1 counts as 1, as torch's do)."""
    strides, step = [], 1
    for s in reversed(tuple(shape)):
        strides.append(step)
        step *= max(s, 1)
    return tuple(reversed(strides))


@dataclass
class Buffer:
    """A materialized array: a graph input or the output of a kernel."""
    name: str
    layout: Layout
    attr: Optional[str] = None  # a get_attr input: the module attribute it reads


class Expr:
    shape: tuple
    dtype: torch.dtype
    # the FX node a tree inlined into a consumer was lowered from (lowering's `_fused_nodes` follows it); None for
    # trees built later. A class attribute, not a dataclass field: it never takes part in equality or repr
    fx_node: Optional[torch.fx.Node] = None

    def children(self) -> tuple:
        """The operand trees: what every walker over the IR descends into."""
        return ()


@dataclass
class Load(Expr):
    buf: str
    shape: tuple
    dtype: torch.dtype


@dataclass
class Const(Expr):
    """A Python scalar operand; its dtype is fixed by the consuming op (torch's wrapped-number promotion)."""
    value: Any
    shape: tuple = ()
    dtype: Optional[torch.dtype] = None


class ViewKind(StrEnum):
    """How a View re-indexes its operand; its params: RESHAPE (shape,), PERMUTE (dims,), EXPAND (shape,),
    UNSQUEEZE (dim,), SLICE (dim, start, end, step), SELECT (dim, index), IDENTITY (). Each backend spells the
    kinds through one table keyed by them (views.py for torch, numpy/codegen.py, triton/index.py). A StrEnum:
    IR dumps and kernel names read the kind as its word."""
    IDENTITY = "identity"
    RESHAPE = "reshape"
    PERMUTE = "permute"
    EXPAND = "expand"
    UNSQUEEZE = "unsqueeze"
    SLICE = "slice"
    SELECT = "select"


@dataclass
class View(Expr):
    """Re-indexing of `arg` without arithmetic (`kind`, a ViewKind; params depend on it)."""
    kind: ViewKind
    arg: Expr
    params: tuple
    shape: tuple
    dtype: torch.dtype

    def __post_init__(self):
        self.kind = ViewKind(self.kind)

    def children(self) -> tuple:
        return (self.arg,)


@dataclass
class Op(Expr):
    """One elementwise op. compute_dtype is the dtype operands are cast to before it runs (torch.result_type of
    the operands, decided at compile time); dtype is the result's dtype."""
    name: str
    args: list
    shape: tuple
    dtype: torch.dtype
    compute_dtype: torch.dtype
    params: tuple = ()

    def children(self) -> tuple:
        return tuple(self.args)


@dataclass
class Reduce(Expr):
    """kind: sum, prod, amax, amin, argmax, argmin, any, all. axes None means every axis."""
    kind: str
    arg: Expr
    axes: Optional[tuple]
    keepdim: bool
    shape: tuple
    dtype: torch.dtype

    def children(self) -> tuple:
        return (self.arg,)


@dataclass
class Kernel:
    """Stores `expr` (pointwise / reduction tree, already fused) into buffer `out`. `source` names the FX nodes
    folded into it, for the generated code's comments and for kernel naming."""
    out: Buffer
    expr: Expr
    source: list = field(default_factory=list)
    is_view: bool = False  # output aliases its input (a graph output that is a view): don't copy
    # (Buffer, Expr) pairs the kernel stores too, from the same registers (inductor/triton/side_outputs.py)
    side_outputs: list = field(default_factory=list)
    # the FX nodes themselves, as lowering made the kernel (kernels rebuilt later keep only `source`): what the
    # Triton backend runs in torch instead when the kernel cannot be generated
    nodes: list = field(default_factory=list, repr=False, compare=False)
    # an indexed store's second half (Triton backend: inductor/triton/host.py splits a scatter kernel in two):
    # `expr` is evaluated over the source's shape (`out` names the target, laid out as that iteration) and added
    # or written into `scatter.into` at the indexed places
    scatter: Optional["ScatterStore"] = None


@dataclass
class ScatterStore:
    """Where a scatter's source elements go: buffer `into` (its real layout), at index `index` (evaluated at the
    source's coordinates: its dims replace dim `dim` when `take`, else it has the source's rank), added or not."""
    into: Buffer
    index: Expr
    dim: int
    take: bool
    add: bool


class ExternKind(StrEnum):
    """The library calls an ExternKernel makes (backends spell each: numpy/codegen.py, triton/spelling.py)."""
    MATMUL = "matmul"                      # mm, bmm
    ADDMM = "addmm"
    ADDMM_INTO = "addmm_into"              # triton/residual.py: the product added into the first operand in place
    SDPA = "sdpa"
    CAUSAL_ATTENTION = "causal_attention"  # graph/attention.py's rewrite of a spelled-out attention
    CONV = "conv"
    CUMSUM = "cumsum"                      # the core scans: the operand computed first, then the library's scan
    CUMPROD = "cumprod"


@dataclass
class ExternKernel:
    """A library call (matmul, conv, ...) whose operands are expression trees evaluated first."""
    out: Buffer
    kind: ExternKind  # given as its value ("matmul") or the member; compares equal to its value
    args: list
    params: dict
    source: list = field(default_factory=list)

    def __post_init__(self):
        self.kind = ExternKind(self.kind)  # an unknown kind raises here, not in a backend's spelling of it


@dataclass
class FallbackKernel:
    """Run the torch op eagerly (correct first, for ops without a lowering). `args` is the node's (args, kwargs)
    with each tensor operand replaced by its index into `inputs`."""
    out: Buffer
    target: Callable
    inputs: list
    args: tuple
    kwargs: dict
    multi: bool = False  # returns a tuple of tensors; `Item` loads pick from it
    source: list = field(default_factory=list)
    reason: str = "no lowering"  # why the op runs in torch, for logs and the generated code's comment
    aliases: bool = False  # its result is a view of an operand (detach, a transpose): it keeps the operand's strides
    item_strides: dict = field(default_factory=dict)  # multi: element index -> (sizes, strides) a probe saw
    pure: bool = False  # it neither draws random numbers nor writes (graph/effects): a probe may run it ahead


@dataclass(frozen=True)
class Operand:
    """Placeholder, inside a fallback's saved arguments, for its index-th tensor operand."""
    index: int


@dataclass
class Item(Expr):
    """Element `index` of a tuple-valued fallback buffer."""
    buf: str
    index: int
    shape: tuple
    dtype: torch.dtype


# gm.meta key: names of the placeholders a module takes as Python floats (triton/host_scalars.py)
HOST_SCALARS = "host_scalars"


@dataclass
class LoweredGraph:
    inputs: list          # Buffers, in placeholder order
    kernels: list         # Kernel | ExternKernel | FallbackKernel in execution order
    outputs: list         # Expr per graph output (Load / View of Loads), or a Python constant
    output_spec: Any      # pytree spec to rebuild gm's return structure
    graph_text: str       # the source FX graph, for the header comment and the cache key
    # library results seen with exactly their layout's strides, at offset 0 (triton/probe.py)
    exact_layouts: set = field(default_factory=set)
    # per flat output, what eager returns: a view of which input, with which strides (graph/normalize.py's
    # EagerOutput), when the graph went through normalization
    eager_outputs: Optional[tuple] = None
    # kernel buffer -> graph input: the buffer is returned as the input's final value (graph/input_writes.py's
    # WRITTEN_INPUTS), so a kernel may write it into the input itself (triton/planner.py's `_donated`)
    donated: dict = field(default_factory=dict)
    donations: dict = field(default_factory=dict)  # input -> buffer: those the module's plan writes into

    def output_builder(self) -> Callable[[list], Any]:
        """A function rebuilding gm's return value from the list of flat outputs a run produced."""
        return output_builder(self.output_spec)


def output_builder(spec) -> Callable[[list], Any]:
    """A function rebuilding a return value of pytree structure `spec` from the list of flat outputs a run
    produced (a fresh list): without pytree where the value is that list, a flat tuple or one output
    (tree_unflatten costs ~0.5 us per call)."""
    count = spec.num_leaves
    probe = tree_unflatten(list(range(count)), spec)
    if type(probe) is list and probe == list(range(count)):
        return lambda outs: outs
    if type(probe) is tuple and probe == tuple(range(count)):
        return tuple
    if type(probe) is int and probe == 0:
        return lambda outs: outs[0]
    return lambda outs: tree_unflatten(outs, spec)


def view_base(e):
    """The operand under a chain of views."""
    while isinstance(e, View):
        e = e.arg
    return e


def reshape_only(e, buf: str) -> bool:
    """`e` is buffer `buf` under reshapes alone: its elements in buf's order."""
    while isinstance(e, View):
        if e.kind not in (ViewKind.RESHAPE, ViewKind.IDENTITY):
            return False
        e = e.arg
    return isinstance(e, Load) and e.buf == buf


def unit(v) -> bool:
    """The int 1: addmm's default beta and alpha (1.0 is not: it is an error with integer tensors)."""
    return type(v) is int and v == 1


def static_shape(shape) -> bool:
    """No dynamic size in `shape` (a SymInt is an int subclass)."""
    return all(type(s) is int for s in shape)


def rebuild(e, swap, memo: dict | None = None):
    """The tree with each node for which `swap(node)` returns a replacement swapped for it. Views, reductions
    and ops whose operands changed are copied; everything else, and subtrees shared between operands, stay
    shared (a value read twice is still computed once)."""
    memo = {} if memo is None else memo
    if id(e) in memo:
        return memo[id(e)]
    out = swap(e)
    if out is None:
        if isinstance(e, View):
            arg = rebuild(e.arg, swap, memo)
            out = e if arg is e.arg else View(e.kind, arg, e.params, e.shape, e.dtype)
        elif isinstance(e, Reduce):
            arg = rebuild(e.arg, swap, memo)
            out = e if arg is e.arg else Reduce(e.kind, arg, e.axes, e.keepdim, e.shape, e.dtype)
        elif isinstance(e, Op):
            args = [rebuild(a, swap, memo) for a in e.args]
            out = e if all(a is b for a, b in zip(args, e.args)) else Op(e.name, args, e.shape, e.dtype,
                                                                         e.compute_dtype, e.params)
        else:
            out = e
    memo[id(e)] = out
    return out


# ---- walkers ---------------------------------------------------------------------------------------------------
def walk(e, seen: set | None = None):
    """Every node of a tree once (a subtree shared between operands too), parents before children."""
    seen = set() if seen is None else seen
    if id(e) in seen:
        return
    seen.add(id(e))
    yield e
    for child in e.children() if isinstance(e, Expr) else ():
        yield from walk(child, seen)


def reduces_in(e) -> list:
    return [n for n in walk(e) if isinstance(n, Reduce)]


def loads_in(e) -> list:
    """Buffers a tree reads, each once, in first-read order."""
    return list(dict.fromkeys(n.buf for n in walk(e) if isinstance(n, Load)))


def ops_in(e) -> list:
    """Op names of a tree, producers first (post-order), each once: a kernel's name reads like its source."""
    names, seen = [], set()

    def visit(n):
        if id(n) in seen:
            return
        seen.add(id(n))
        for child in n.children() if isinstance(n, Expr) else ():
            visit(child)
        if isinstance(n, Op):
            names.append(n.name)
        elif isinstance(n, Reduce):
            names.append(n.kind)
    visit(e)
    return list(dict.fromkeys(names))


def side_outputs(k) -> list:
    """(Buffer, tree) pairs a kernel stores besides its output (none for library calls and fallbacks)."""
    return k.side_outputs if isinstance(k, Kernel) else []


def kernel_loads(k) -> list:
    """Buffers a plan entry reads (a kernel's side outputs' trees included; an `("allocate", k)` entry: none)."""
    if isinstance(k, tuple):
        return []
    if isinstance(k, FallbackKernel):
        trees = k.inputs
    elif isinstance(k, ExternKernel):
        trees = k.args
    else:
        trees = [k.expr] + [e for _, e in side_outputs(k)]
    return list(dict.fromkeys(b for t in trees for b in loads_in(t)))


def readers_of(kernels: list) -> dict:
    """buffer -> indices of the plan entries reading it, in order."""
    readers: dict = {}
    for i, k in enumerate(kernels):
        for buf in kernel_loads(k):
            readers.setdefault(buf, []).append(i)
    return readers


# Expression trees are walked recursively (lowering, fusion, code generation: a few Python frames per level); a
# loop unrolled by the trace makes chains ~200 ops deep (generator seed 727317), past Python's default limit of
# 1000 frames. The walkers are Python calling Python, which takes no C stack since 3.11, so a higher limit while
# a graph compiles is safe; it is put back after.
EXPRESSION_RECURSION_LIMIT = 8000


@contextlib.contextmanager
def deep_expressions():
    before = sys.getrecursionlimit()
    if before < EXPRESSION_RECURSION_LIMIT:
        sys.setrecursionlimit(EXPRESSION_RECURSION_LIMIT)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)

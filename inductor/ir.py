"""The loop-level IR the NumPy backend generates code from.

A graph lowers to an ordered list of kernels. Each kernel fills one buffer. The loop body of a pointwise or
reduction kernel is an expression tree: `Load` reads a buffer, `View` re-indexes its operand (transpose,
broadcast, slice, select... are index arithmetic, which NumPy expresses as zero-copy strided views), `Op` is one
elementwise operation, `Reduce` folds axes. Fusion is simply a producer's tree being inlined into its consumer's
tree instead of being stored to a buffer (see fusion.py)."""
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
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


@dataclass
class View(Expr):
    """Re-indexing of `arg` without arithmetic. kind: reshape, permute, expand, slice, select, unsqueeze,
    identity; params depend on kind."""
    kind: str
    arg: Expr
    params: tuple
    shape: tuple
    dtype: torch.dtype


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


@dataclass
class Reduce(Expr):
    """kind: sum, prod, amax, amin, argmax, argmin, any, all. axes None means every axis."""
    kind: str
    arg: Expr
    axes: Optional[tuple]
    keepdim: bool
    shape: tuple
    dtype: torch.dtype


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


@dataclass
class ExternKernel:
    """A library call (matmul, conv, ...) whose operands are expression trees evaluated first."""
    out: Buffer
    kind: str
    args: list
    params: dict
    source: list = field(default_factory=list)


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


@dataclass
class LoweredGraph:
    inputs: list          # Buffers, in placeholder order
    kernels: list         # Kernel | ExternKernel | FallbackKernel in execution order
    outputs: list         # Expr per graph output (Load / View of Loads), or a Python constant
    output_spec: Any      # pytree spec to rebuild gm's return structure
    graph_text: str       # the source FX graph, for the header comment and the cache key
    # library results seen with exactly their layout's strides, at offset 0 (triton_module.probe_extern_layouts)
    exact_layouts: set = field(default_factory=set)
    # per flat output, what eager returns: a view of which input, with which strides (graph/normalize.py's
    # EagerOutput), when the graph went through normalization
    eager_outputs: Optional[tuple] = None

    def output_builder(self) -> Callable[[list], Any]:
        """A function rebuilding gm's return value from the list of flat outputs a run produced (a fresh list):
        without pytree where the value is that list, a flat tuple or one output (tree_unflatten costs ~0.5 us
        per call)."""
        spec = self.output_spec
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
        if e.kind not in ("reshape", "identity"):
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

"""The core op set: the torch.ops.aten overloads that `graph.normalize` rewrites captured graphs into.

Backends (the NumPy and Triton code generators in `inductor`) read these groups as data: an op in one of them
must be lowered; anything else found in an optimized graph is a call the backend runs in eager torch.
Every overload below was checked to exist in torch 2.13.

Operand convention: a Python scalar (int/float/bool) may stand in place of the second operand of the binary ops
whose aten schema accepts it (add/sub/mul/div.Tensor, div.Tensor_mode, pow.Tensor_Scalar, comparisons .Scalar); torch's
wrapped-number type promotion applies (a float scalar does not widen a float32 tensor, an int scalar does not widen
an int tensor, a float scalar turns an int tensor into the default float dtype). maximum, minimum, atan2,
remainder, bitwise_* and where.self reject scalars in aten, so the normalizer gives them a 0-d
`full([], value, dtype=torch.result_type(x, value))` instead, which promotes exactly like the scalar.
"""

from __future__ import annotations

import torch

from framejit.graph.index_checks import CHECK_INDEX

aten = torch.ops.aten

# Elementwise f(x): one input tensor, same shape out; dtype as eager (e.g. isnan -> bool, sqrt of int -> float).
POINTWISE_UNARY: frozenset = frozenset({
    aten.abs.default, aten.neg.default, aten.exp.default, aten.log.default, aten.log1p.default,
    aten.expm1.default, aten.sqrt.default, aten.rsqrt.default, aten.reciprocal.default, aten.sin.default,
    aten.cos.default, aten.tanh.default, aten.sigmoid.default, aten.erf.default, aten.floor.default,
    aten.ceil.default, aten.round.default, aten.trunc.default, aten.sign.default, aten.logical_not.default,
    aten.bitwise_not.default, aten.isnan.default,
})

# Elementwise f(a, b) with broadcasting and type promotion; div.Tensor_mode has kwarg rounding_mode
# ("trunc" | "floor" | None); comparisons return bool.
POINTWISE_BINARY: frozenset = frozenset({
    aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor, aten.div.Tensor_mode,
    aten.remainder.Tensor, aten.pow.Tensor_Tensor, aten.pow.Tensor_Scalar, aten.maximum.default,
    aten.minimum.default, aten.atan2.default,
    aten.eq.Tensor, aten.ne.Tensor, aten.lt.Tensor, aten.le.Tensor, aten.gt.Tensor, aten.ge.Tensor,
    aten.eq.Scalar, aten.ne.Scalar, aten.lt.Scalar, aten.le.Scalar, aten.gt.Scalar, aten.ge.Scalar,
    aten.logical_and.default, aten.logical_or.default, aten.logical_xor.default,
    aten.bitwise_and.Tensor, aten.bitwise_or.Tensor, aten.bitwise_xor.Tensor,
})

# where.self(cond, a, b): elementwise select with broadcasting (a, b tensors; 0-d tensors for constants).
TERNARY: frozenset = frozenset({aten.where.self})

# _to_copy.default(x, dtype=...): a dtype cast; the normalizer emits it with the dtype kwarg only.
CONVERT: frozenset = frozenset({aten._to_copy.default})

# Reductions over dims (dim list / single dim, keepdim); argmax/argmin return int64, any/all return bool.
REDUCTIONS: frozenset = frozenset({
    aten.sum.dim_IntList, aten.amax.default, aten.amin.default, aten.prod.dim_int, aten.argmax.default,
    aten.argmin.default, aten.any.dims, aten.any.dim, aten.all.dim, aten.all.dims,
})

# Running sums and products along one dim (dim non-negative; dtype kwarg as torch's; integers and bool give
# int64): same shape out. Backends call their library's scan (np.cumsum, torch.cumsum) on a computed operand.
SCANS: frozenset = frozenset({aten.cumsum.default, aten.cumprod.default})

# Shape/stride-only ops (clone and cat copy, but have no arithmetic): lowered as indexing, not as loops.
# detach is the identity on values; rules use it where autograd need not differentiate (a softmax's max shift).
VIEWS: frozenset = frozenset({
    aten.view.default, aten.permute.default, aten.expand.default, aten.slice.Tensor, aten.select.int,
    aten.unsqueeze.default, aten.squeeze.dims, aten.clone.default, aten.cat.default, aten.detach.default,
})

# Tensors made from nothing: full(size, value, dtype=...), arange(start, end, step, dtype=...).
CONSTRUCTORS: frozenset = frozenset({aten.full.default, aten.arange.start_step})

# Heavy ops a backend hands to a library (BLAS, torch) rather than generating loops for.
EXTERN: frozenset = frozenset({
    aten.mm.default, aten.bmm.default, aten.addmm.default, aten.convolution.default,
    aten.scaled_dot_product_attention.default,
})

# ---- indexing (issue 20): indexed loads and stores, each index operand checked first -----------------------
# check_index(idx, size, dim, wrap, kind) raises as eager would for an index out of range and returns it in
# [0, size) (graph/index_checks.py). Loads: gather (along one dim, index of the output's rank), and the "take"
# forms, whose index tensor replaces one dim (index_select, embedding, index.Tensor with one index tensor).
# Stores into a copy of their first operand: scatter / scatter_add / scatter_reduce(sum), index_add, index_put;
# embedding_dense_backward (the rows of the gradient added into zeros: every language model's training step).
INDEXING: frozenset = frozenset({
    CHECK_INDEX, aten.gather.default, aten.index_select.default, aten.embedding.default, aten.index.Tensor,
    aten.scatter.src, aten.scatter.value, aten.scatter_add.default, aten.scatter_reduce.two, aten.index_add.default,
    aten.index_put.default, aten.embedding_dense_backward.default,
})

GROUPS: dict[str, frozenset] = {
    "pointwise_unary": POINTWISE_UNARY,
    "pointwise_binary": POINTWISE_BINARY,
    "ternary": TERNARY,
    "convert": CONVERT,
    "reductions": REDUCTIONS,
    "scans": SCANS,
    "views": VIEWS,
    "constructors": CONSTRUCTORS,
    "extern": EXTERN,
    "indexing": INDEXING,
}

CORE_OPS: frozenset = frozenset().union(*GROUPS.values())


def is_core(target: object) -> bool:
    """True when `target` (a call_function node's target) belongs to the core op set."""
    return target in CORE_OPS


def read_by_torch_calls_only(node) -> bool:
    """No core op reads this node's value: only torch calls do, which take it in whatever layout and on whatever
    device the call that made it left it (a backend lowers core ops only)."""
    return all(not is_core(u.target) for u in node.users)


def group_of(target: object) -> str | None:
    """The name of the group holding `target`, or None for a non-core call."""
    for name, ops in GROUPS.items():
        if target in ops:
            return name
    return None

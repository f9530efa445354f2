"""Half-precision matmuls whose output rows are misaligned, padded to an aligned width.

cuBLAS picks its fast tensor-core kernels only when every leading dimension is a multiple of 16 bytes. GPT-2's
LM head multiplies by a (50257, 768) embedding: the (8192, 50257) bf16 product has rows of 100514 bytes, so on
the H100 it runs an `align1` kernel, 6.6 ms of an 11 ms forward, where an aligned width takes about 1.2 ms. Eager
and a plain library call pay that; we pad instead:

    mm(a, b)              ->  mm(a, pad(b, N -> N')) [:, :N]   then made contiguous, as eager's product is
    addmm(bias, a, b)     ->  addmm(pad(bias), a, pad(b)) [:, :N]

The padded columns are zeros and are dropped, so the kept ones hold the same sums (each output element's dot
product is unchanged; only the library's choice of kernel is). The pad copies b each call (77 MB for GPT-2's
head, ~50 us at 3 TB/s) and the slice is copied once more into eager's contiguous layout: both small next to
what the aligned kernel saves. Where no reader needs eager's layout (a training forward's saved value, read by
the backward: graph/layout_free.py) the slice is kept as it is. Only big products qualify (N at least MIN_SIZE,
M at least MIN_ROWS and M * N at least MIN_SIZE squared: the backward's `x.t() @ g` is (768, 50257)), on CUDA,
in float16 or bfloat16, with static sizes. Where b is already a slice of a zero-padded buffer (below), the
product reads that buffer: no copy.

A product whose inner dimension K is misaligned (`mm(g, W)`, g (8192, 50257), W (50257, 768): the backward's
gradient of the LM head's input) also runs an `align1` kernel (H100: 4.8 ms where an aligned K takes ~1 ms),
whatever the row strides: a row-major `a` has K contiguous. Both operands get K padded with zeros, which add
nothing to any dot product:

    mm(a, b)  ->  mm(pad(a, K -> K'), pad(b, rows K -> K'))

where `a` is already a slice of a zero-padded buffer (below) the product reads that buffer, so only b (a weight,
77 MB for GPT-2's head) is copied.

A misaligned *operand* the graph computes itself (the backward's gradient of those logits, (8192, 50257), read by
`mm(g, W)` and `mm(g.t(), x)`: 4.4 ms a step in `align1` kernels on the H100) is made in padded memory instead:
its readers on the way to a product read `pad(g, N -> N')[:, :N]`, the same values with an aligned row stride,
and the kernel computing g writes the padded buffer (`pad_misaligned_operands`)."""
from __future__ import annotations

import torch
import torch.fx as fx

from framejit.graph.layout_free import layout_free
from framejit.graph.shape_prop import meta_value, to_meta

aten = torch.ops.aten
ALIGN_BYTES = 16
MIN_SIZE = 1024
MIN_ROWS = 128  # fewer rows: a matrix-vector-like product, bound by reading b, which the pad would copy


def _misaligned(node: fx.Node, a: fx.Node, b: fx.Node) -> int:
    """How many columns to add to b (0: leave the product alone)."""
    out, va, vb = meta_value(node), meta_value(a), meta_value(b)
    if not all(isinstance(v, torch.Tensor) for v in (out, va, vb)) or out.dim() != 2:
        return 0
    if out.dtype not in (torch.float16, torch.bfloat16) or va.dtype != out.dtype or vb.dtype != out.dtype:
        return 0
    m, n = out.shape
    if not all(type(s) is int for s in (*out.shape, *va.shape, *vb.shape)) or m < MIN_ROWS or n < MIN_SIZE or \
            m * n < MIN_SIZE * MIN_SIZE:
        return 0
    per_row = ALIGN_BYTES // out.element_size()
    return (-n) % per_row


def _misaligned_inner(node: fx.Node, a: fx.Node, b: fx.Node) -> int:
    """How many zeros to add to the inner dimension K of a 2-D half-precision product (0: leave it)."""
    out, va, vb = meta_value(node), meta_value(a), meta_value(b)
    if not all(isinstance(v, torch.Tensor) and v.dim() == 2 for v in (out, va, vb)):
        return 0
    if out.dtype not in (torch.float16, torch.bfloat16) or va.dtype != out.dtype or vb.dtype != out.dtype:
        return 0
    if not all(type(s) is int for s in (*out.shape, *va.shape)):
        return 0
    (m, n), k = out.shape, va.shape[1]
    if k < MIN_SIZE or m * n < MIN_SIZE * MIN_SIZE // 16 or max(m, n) < MIN_SIZE:
        return 0
    return (-k) % (ALIGN_BYTES // out.element_size())


def _pad_inner(g: fx.Graph, node: fx.Node, a: fx.Node, b: fx.Node) -> tuple:
    """Operands of `node` with K zero-padded (the module's doc), inserted before it; (a, b) as they were if K is
    aligned."""
    pad = _misaligned_inner(node, a, b)
    if not pad:
        return a, b
    with g.inserting_before(node):
        a = _zero_padded_base(a, pad) or _add(g, aten.constant_pad_nd.default, (a, [0, pad]))
        b = _add(g, aten.constant_pad_nd.default, (b, [0, 0, 0, pad]))
    return a, b


def _add(g: fx.Graph, target, args: tuple, kwargs: dict | None = None) -> fx.Node:
    made = g.call_function(target, args, kwargs or {})
    made.meta["val"] = to_meta(target(*fx.node.map_arg(args, meta_value), **(kwargs or {})))
    return made


def pad_misaligned_matmuls(gm: fx.GraphModule, device: torch.device | None) -> int:
    """Rewrite the qualifying mm / addmm nodes of gm (core ops, meta values recorded); returns how many
    rewrites (a product padded in K and in N counts twice)."""
    if device is None or device.type != "cuda":
        return 0
    g, count = gm.graph, 0
    for node in list(g.nodes):
        if node.op != "call_function" or node.kwargs:
            continue
        if node.target is aten.mm.default and len(node.args) == 2:
            bias, (a, b) = None, node.args
        elif node.target is aten.addmm.default and len(node.args) == 3:
            bias, a, b = node.args
            if not isinstance(bias, fx.Node) or meta_value(bias) is None or meta_value(bias).dim() != 1:
                continue
        else:
            continue
        if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)):
            continue
        a_in, b_in = _pad_inner(g, node, a, b)
        if a_in is not a:
            node.args = (a_in, b_in) if bias is None else (bias, a_in, b_in)
            a, b = a_in, b_in
            count += 1
        pad = _misaligned(node, a, b)
        if not pad:
            continue
        n = meta_value(node).shape[1]
        with g.inserting_before(node):
            b_padded = _zero_padded_base(b, pad) or _add(g, aten.constant_pad_nd.default, (b, [0, pad]))
            if bias is None:
                product = _add(g, aten.mm.default, (a, b_padded))
            else:
                bias_padded = _add(g, aten.constant_pad_nd.default, (bias, [0, pad]))
                product = _add(g, aten.addmm.default, (bias_padded, a, b_padded))
            kept = _add(g, aten.slice.Tensor, (product, 1, 0, n))
            # eager's contiguous layout, unless no reader sees it (a training forward's saved value): the padded
            # rows are then read in place, aligned, by the forward's and the backward's kernels
            result = kept if layout_free(node) else \
                _add(g, aten.clone.default, (kept,), {"memory_format": torch.contiguous_format})
        node.replace_all_uses_with(result)
        g.erase_node(node)
        count += 1
    if count:
        g.lint()
        gm.recompile()
    return count


def _zero_padded_base(b: fx.Node, pad: int) -> fx.Node | None:
    """The buffer b was cut from, when b is `cat([x, zeros(pad)], 1)[:, :n]` as pad_misaligned_operands makes it."""
    if b.target is not aten.slice.Tensor or b.args[1:] != (1, 0, meta_value(b).shape[1]):
        return None
    base = b.args[0]
    if base.target is not aten.cat.default or base.args[1:] != (1,) or len(base.args[0]) != 2:
        return None
    zeros = base.args[0][1]
    if zeros.target is not aten.full.default or zeros.args[1] != 0 or list(zeros.args[0])[1:] != [pad]:
        return None
    return base


_TRANSPOSES = {aten.permute.default, aten.t.default, aten.transpose.int}


def _feeds_product(user: fx.Node, node: fx.Node) -> bool:
    """`user` reads `node` as a product's operand, directly or through transposes."""
    while user.target in _TRANSPOSES:
        if len(user.users) != 1:
            return False
        node, user = user, next(iter(user.users))
    return user.target in (aten.mm.default, aten.addmm.default) and node in user.args[-2:]


def pad_misaligned_operands(gm: fx.GraphModule, device: torch.device | None) -> int:
    """Give each computed, contiguous, half-precision 2-D tensor with misaligned rows that a product reads an
    aligned row stride (see the module's doc): its product-bound readers read a slice of it padded. Returns how
    many tensors."""
    if device is None or device.type != "cuda":
        return 0
    g, count = gm.graph, 0
    for node in list(g.nodes):
        val = meta_value(node)
        if node.op != "call_function" or not isinstance(val, torch.Tensor) or val.dim() != 2 or \
                val.dtype not in (torch.float16, torch.bfloat16) or not val.is_contiguous() or \
                not all(type(s) is int for s in val.shape) or min(val.shape) < MIN_SIZE:
            continue
        n = val.shape[1]
        pad = (-n) % (ALIGN_BYTES // val.element_size())
        readers = [u for u in node.users if _feeds_product(u, node)]
        if not pad or not readers:
            continue
        with g.inserting_after(node):  # a cat with a constant: the lowering writes it in one kernel with g's
            zeros = g.call_function(aten.full.default, ([val.shape[0], pad], 0),
                                    {"dtype": val.dtype, "device": val.device if val.device.type != "meta" else device})
        zeros.meta["val"] = torch.zeros((val.shape[0], pad), dtype=val.dtype, device="meta")
        with g.inserting_after(zeros):
            padded = _add(g, aten.cat.default, ([node, zeros], 1))
        with g.inserting_after(padded):
            kept = _add(g, aten.slice.Tensor, (padded, 1, 0, n))
        for user in readers:
            user.replace_input_with(node, kept)
        count += 1
    if count:
        g.lint()
        gm.recompile()
    return count

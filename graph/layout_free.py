"""Values whose memory layout nobody outside the graph sees, so a pass may leave them in whatever layout they are
made in rather than copy them into the one eager would give.

A training forward hands the backward its saved values; eager's layout matters for the values the user gets,
not for those. GPT-2's LM head is the case in point: its (8192, 50257) bf16 product is computed in a buffer
padded to an aligned row (graph/pad_matmul.py) and was copied into eager's contiguous layout only so the backward
could read it as traced -- 1.6 GB moved, and the backward's kernels then read a row pitch of 100514 bytes,
which no vector load fits. Left padded, both passes read aligned rows."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

# node.meta key: the forward graph returns this value only as a saved value (partition.py sets it)
SAVED_ONLY = "saved_for_backward_only"


def reads_any_layout(user: fx.Node) -> bool:
    """`user` computes from its inputs' values whatever their strides: an op that is not a view (a view's
    strides, and whether it can be taken at all, follow its input's) and writes nothing."""
    target = user.target
    if user.op != "call_function" or target is operator.getitem or not isinstance(target, torch._ops.OpOverload):
        return False
    schema = target._schema
    return not target.is_view and not schema.is_mutable and \
        not any(r.alias_info is not None for r in schema.returns)


def layout_free(node: fx.Node) -> bool:
    """Every reader of node takes any layout: ops that read values, and the graph's output only where node
    leaves as a saved value."""
    return bool(node.users) and all(
        (u.op == "output" and node.meta.get(SAVED_ONLY, False)) or reads_any_layout(u) for u in node.users)


def rows_padded(t: torch.Tensor, traced_stride: tuple) -> bool:
    """t is laid out as the contiguous `traced_stride` says but with longer rows: strides in the same order, the
    innermost 1. torch's ops then give the results they give for the traced layout (their outputs follow a
    dense input's dim order, and a non-dense one's is taken as row-major)."""
    shape, stride = tuple(t.shape), t.stride()
    contiguous = torch.empty(shape, device="meta").stride()
    if tuple(traced_stride) != contiguous or len(shape) == 0:
        return False
    dims = [d for d in range(len(shape)) if shape[d] > 1]
    return all(stride[a] >= stride[b] * shape[b] for a, b in zip(dims, dims[1:])) and \
        (not dims or stride[dims[-1]] == 1)

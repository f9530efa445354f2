"""`framejit::check_index`: the bounds check of an indexing op, as its own graph node.

An index op (gather, index_select, embedding, x[idx], scatter_add, index_add...) raises when an index is out of
range, and what it raises depends on the op. Once the op is spelled as core ops (an indexed load or store that
generated code performs), the check must still happen, before any memory is read or written: the decompositions
put this op in front of the index operand. It returns the index made non-negative (`wrap`: a negative index
counts from the end, as x[idx] and index_put allow; others reject it), so generated code only ever sees indices
in [0, size).

A custom op (torch.library), not a Python function: make_fx keeps it as one node when a training graph is traced,
and backends see a call they know. NumPy code performs the check itself (numpy_helpers `_check_index`). Triton's
kernels do on CUDA: the kernel reading the index asserts it on the device (tl.device_assert, compiled with debug
on), as eager's own CUDA index kernels do, with no kernel of its own and no host sync (triton/ops.py). Under
Triton's CPU interpreter, which drops device asserts, its host calls this op in torch, which raises eager's
exception (so does a CUDA check that runs in torch: `torch._assert_async`). Generated kernels also mask their
indexed loads and stores to the range, so no memory outside a buffer is ever touched."""

from __future__ import annotations

import torch

# kind -> (exception eager raises, its message; {index}, {dim}, {size} filled in)
MESSAGES = {
    "bounds": (RuntimeError, "index {index} is out of bounds for dimension {dim} with size {size}"),  # gather, scatter
    "getitem": (IndexError, "index {index} is out of bounds for dimension {dim} with size {size}"),  # x[idx]
    "self": (IndexError, "index out of range in self"),  # index_select, embedding
    "target": (IndexError, "Target {index} is out of bounds."),  # nll_loss, cross_entropy (ignore_index made 0)
}


def device_message(kind: str, dim: int, size) -> str:
    """The text of a kernel's device-side assert for an index out of range (Triton's backend on CUDA): eager's
    message without the index, which a whole tile asserts at once (and without a dynamic size, which the kernel
    takes as an argument)."""
    text = MESSAGES[kind][1].replace("{index} ", "")
    if type(size) is not int:
        text = text.replace(" with size {size}", "")
    return text.format(dim=dim, size=size)


def error_for(idx: torch.Tensor, size: int, dim: int, wrap: bool, kind: str) -> Exception | None:
    """The exception eager raises for these indices (the first bad one in memory order named), or None."""
    low = -size if wrap else 0
    bad = (idx < low) | (idx >= size)
    if not bool(bad.any()):
        return None
    first = int(idx.reshape(-1)[bad.reshape(-1).nonzero()[0, 0]])
    exc, text = MESSAGES[kind]
    return exc(text.format(index=first, dim=dim, size=size))


@torch.library.custom_op("framejit::check_index", mutates_args=())
def check_index(idx: torch.Tensor, size: int, dim: int, wrap: bool, kind: str) -> torch.Tensor:
    if idx.device.type == "cuda":  # eager's CUDA index kernels assert on the device; so does this, asynchronously
        low = -size if wrap else 0
        torch._assert_async(((idx >= low) & (idx < size)).all(), MESSAGES[kind][1].split(" {")[0])
    else:
        error = error_for(idx, size, dim, wrap, kind)
        if error is not None:
            raise error
    idx = idx.long()
    return torch.where(idx < 0, idx + size, idx) if wrap else idx.clone()


@check_index.register_fake
def _(idx: torch.Tensor, size: int, dim: int, wrap: bool, kind: str) -> torch.Tensor:
    return torch.empty_like(idx, dtype=torch.long)


CHECK_INDEX = torch.ops.framejit.check_index.default

"""Fusion policy for the Triton backend: which FX nodes get their own kernel.

NumPy's policy (inductor/fusion.py, plan_fusion) stores every value read twice, because a NumPy kernel is a chain of
whole-array calls and a value used twice would be computed twice. A Triton kernel holds a tile in registers, so
a value read twice *inside one kernel* is computed once and never touches memory. softmax is the case that
matters: exp(x - max(x)) feeds both the row sum and the division; stored, the kernel pair reads and writes the
tensor four times, fused it is one read and one write, as torch.compile does.

So a pointwise or reduction node is inlined when every one of its (terminal) consumers ends up in the same kernel
and that kernel can iterate over it: the kernel's reductions all fold the same axes of the same shape, and its
output is either that shape (a normalization: the reduced value is broadcast back over the row) or the reduced
shape (a plain reduction). Values consumed by extern or fallback kernels are stored: those run in torch and
read memory."""
import torch
import torch.fx

from ..lowering import _axes, meta
from ..fusion import plan_fusion, terminal_users

aten = torch.ops.aten

FUSIBLE = ("pointwise", "reduction")
# kernels of their own that pointwise producers fuse into but that never fuse into a consumer: an indexed store
# (lowering.py's scatter ops) is a copy of its base, then a kernel of atomic adds over its source
ROOTS = ("scatter",)


def reduction_signature(node: torch.fx.Node) -> tuple:
    """(shape of the reduced input, reduced axes) of a reduction node."""
    x = node.args[0]
    shape = tuple(meta(x).shape)
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    axes = None if len(shape) == 0 else _axes(meta(x), dim)
    return shape, tuple(range(len(shape))) if axes is None else axes


def shapes_of(signature: tuple) -> set:
    """Output shapes a kernel with this reduction signature can produce: the full shape (epilogue broadcast back
    over the reduced axes), the reduced shape with and without the kept size-1 dims."""
    shape, axes = signature
    keep = tuple(1 if d in axes else s for d, s in enumerate(shape))
    drop = tuple(s for d, s in enumerate(shape) if d not in axes)
    return {shape, keep, drop}


def _recomputed(node: torch.fx.Node, kinds: dict) -> bool:
    """A dtype cast of a graph input read by several generated kernels is computed again in each of them where
    that moves fewer bytes than storing it: the bf16 batch-norm statistics upcast x to float32 for the mean and
    the variance, and storing the cast would write x at twice its size and read it back twice, where each kernel
    can load x and widen it in registers. Read n times, recomputing costs n reads of the source, storing one read,
    one write and n reads of the cast (a narrowing cast read by many is still stored). Its operand is an input,
    never a fused value: no kernel has to walk its producers twice."""
    if node.target is not aten._to_copy.default or set(node.kwargs) - {"dtype"} or len(node.users) < 2:
        return False
    src = node.args[0]
    if not (isinstance(src, torch.fx.Node) and src.op in ("placeholder", "get_attr") and
            all(kinds.get(u) in FUSIBLE for u in node.users)):
        return False
    n, s, d = len(node.users), meta(src).dtype.itemsize, meta(node).dtype.itemsize
    return n * s <= s + d + n * d


def plan_triton_fusion(graph: torch.fx.Graph, kinds: dict, keep: frozenset = frozenset()) -> set:
    """Nodes stored in a buffer of their own. `keep`: nodes stored whatever the policy says, never inlined into
    a consumer (triton/fallback.py splits a fused kernel the code generator rejected this way)."""
    stored = set(plan_fusion(graph, kinds)) | set(keep)  # scatters among them
    root = {}        # inlined node -> the stored node whose kernel computes it
    signature = {}   # stored node -> reduction signature of its kernel, once it has a reduction
    # stored nodes whose kernel holds a cat: a reduction is never fused into one. cat([x[:, :2].sum(1, True),
    # x[:, 2:4].sum(1, True)], 1) has its reductions' input shape, so it would run as a normalization whose
    # column index is the reduction's, and the cat would select partial sums (a wrong answer, issue 20's
    # uneven adaptive pools)
    with_cat = set()
    # Users come after producers in an FX graph: walking backwards, every user's kernel is known.
    for node in reversed(list(graph.nodes)):
        kind = kinds.get(node)
        if kind not in FUSIBLE:
            continue
        if node not in keep and _recomputed(node, kinds):
            stored.discard(node)
            continue
        if any(u.op == "output" for u in node.users):
            stored.add(node)
        users = terminal_users(node, kinds)
        target = None
        if node not in keep and (node not in stored or len(users) > 1):
            if users and all(u != "stored" and u.op != "output" and kinds.get(u) in FUSIBLE + ROOTS
                             and not (kind == "reduction" and kinds.get(u) in ROOTS) for u in users) and \
                    not any(u.op == "output" for u in node.users):
                roots = {u if u in stored else root[u] for u in users}
                if len(roots) == 1:
                    target = roots.pop()
        if target is not None and kind == "reduction" and target in with_cat:
            target = None
        if target is not None and kind == "reduction":
            sig = reduction_signature(node)
            have = signature.get(target)
            if (have is not None and have != sig) or tuple(meta(target).shape) not in shapes_of(sig):
                target = None
            elif have is None:
                signature[target] = sig
        if target is not None and kinds.get(target) == "reduction" and target not in signature:
            signature[target] = reduction_signature(target)
            if kind == "reduction" and signature[target] != reduction_signature(node):
                target = None
        if target is None:
            stored.add(node)
            if kind == "reduction":
                signature.setdefault(node, reduction_signature(node))
        else:
            stored.discard(node)
            root[node] = target
        if node.target is aten.cat.default:
            with_cat.add(node if target is None else target)
    return stored

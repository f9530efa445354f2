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
read memory.

A pointwise value whose consumers end up in different kernels is computed again inside each of them when that
moves fewer bytes than storing it (`_recompute_pays`): a training backward reads the loss's logits-sized values
(the upcast logits minus their max, the one-hot gradient) in two or three kernels, and storing each in float32
costs a logits-sized buffer apiece -- gigabytes for a language model's vocabulary -- where computing it again
costs a re-read of the bfloat16 logits or nothing at all (a comparison of indices).

An inlined value is computed once per index map it is read at: a cat's pieces and the views between a value and
its consumer each move the index, and the code generator writes the value's whole expression again under each.
Chained, that doubles per level (`torch.cat([x[:, :4] + x[:, 4:], x[:, 4:] - x[:, :4]], 1)` ten times: a
kernel of 4 ** 10 ops). A value read at more than MAX_CONTEXTS index maps is stored instead (`_contexts`)."""
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


# pointwise ops in a value's own expression (itself and the single-use producers inlined into it) above which it
# is stored rather than computed again in each consumer's kernel
RECOMPUTE_OPS = 8


def _recompute_pays(node: torch.fx.Node, kinds: dict, copies: int) -> bool:
    """Whether a pointwise value read by `copies` kernels is cheaper computed inside each than stored. Stored, one
    kernel reads its inputs and writes it, the others read it back: inputs + copies * value bytes. Computed in
    each: copies * inputs. Bytes are per element of the value; an input broadcast to it (a row's max) or sliced
    from a bigger buffer counts by the elements it has, at most one read per element."""
    out = meta(node)
    numel = max(out.numel(), 1)
    ops, read, todo, seen = 0, 0.0, [node], {node}
    while todo:
        n = todo.pop()
        ops += kinds.get(n) == "pointwise"
        if ops > RECOMPUTE_OPS or n.target is aten.cat.default:
            return False
        for a in n.all_input_nodes:
            if a in seen:
                continue
            seen.add(a)
            if kinds.get(a) == "view" or (kinds.get(a) == "pointwise" and len(a.users) == 1):
                todo.append(a)  # inlined into this value's expression
                continue
            val = a.meta.get("val")
            if isinstance(val, torch.Tensor):
                read += val.element_size() * min(1.0, val.numel() / numel)
    return (copies - 1) * read < copies * out.element_size()  # a tie stores: one read of the inputs


# index maps one inlined value may be computed under in a kernel before it is stored instead (rotary's
# `q * cos + rotate_half(q) * sin` reads q at 3, a 3x3 pooling window its padded input at 9)
MAX_CONTEXTS = 32


def _contexts(node: torch.fx.Node, kinds: dict, contexts: dict) -> set:
    """The index maps the kernel(s) of node's consumers read it at, as paths from their roots (the views passed
    and the cat pieces entered); stops counting past MAX_CONTEXTS. `contexts` holds every consumer's."""
    found, todo = set(), [(node, ())]
    while todo:
        n, path = todo.pop()
        for u in n.users:
            if kinds.get(u) == "view":
                todo.append((u, path + (u,)))
                continue
            pieces = [i for i, a in enumerate(u.args[0]) if a is n] if u.target is aten.cat.default else [None]
            for have in contexts.get(u, ((),)):
                found.update(have + ((path, u, p),) if path or p is not None else have for p in pieces)
            if len(found) > MAX_CONTEXTS:
                return found
    return found


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
    contexts = {}    # inlined node -> the index maps it is computed under (_contexts)
    # Users come after producers in an FX graph: walking backwards, every user's kernel is known.
    for node in reversed(list(graph.nodes)):
        kind = kinds.get(node)
        if kind not in FUSIBLE:
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
                elif kind == "pointwise" and _recompute_pays(node, kinds, len(roots)):
                    target = ("recomputed", node)  # inlined into every consumer's kernel; no kernel of its own
        if isinstance(target, tuple) and kind == "reduction":
            target = None  # a reduction is never computed twice: a producer of a recomputed value is stored
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
        if target is not None:
            seen = _contexts(node, kinds, contexts)
            # a value made of nothing computed (a pad's `full`, an arange) costs one op per map and copies no
            # producer: only a value with computed operands multiplies its producers' copies
            if len(seen) > MAX_CONTEXTS and any(kinds.get(a) in FUSIBLE for a in node.all_input_nodes):
                target = None
            else:
                contexts[node] = seen
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

"""Naive causal attention -> `scaled_dot_product_attention(is_causal=True, scale=...)`, on core-op graphs.

    softmax(mask(scale(q @ k^T))) @ v      (scale: `* c` or `/ c`, before or after the mask, or none)

is what people write by hand (nanoGPT, minGPT). Eager runs it as five kernels and stores the (T, T) score matrix
twice; torch's fused attention computes the same thing without ever storing it. The rewrite is made only where
the result is the same function of the inputs:
  * every intermediate (scores, scaled, masked, probabilities) feeds only the next step, so nothing else needs it;
  * softmax over the last dim, in the scores' own dtype (no `dtype=` upcast), q, k, v of one floating dtype;
  * the scale is a positive Python number (`-inf * c` stays `-inf` only for c > 0);
  * the fill is exactly `-inf` (`finfo.min` gives a different answer on fully masked rows), and the mask is the
    top-left causal mask `tril(ones(L, S))` over every broadcast position, which SDPA's `is_causal` means.
The mask is checked on values, not on spelling. A mask computed from constants is evaluated once here; a mask
read from an input or a buffer (`self.mask[:, :, :T, :T]`) is checked on the example now and again at run time
by `causal_attention`, whose answer is cached per tensor and version counter (any in-place write bumps it), so a
mask that stops being causal runs the original formula. Masks computed from inputs are left alone.

Rules are data: SCALES (how a constant scale is spelled), MASKS (how a mask is applied, what it keeps)."""

from __future__ import annotations

import math
import weakref
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn.functional as F

from framejit.graph.dce import eliminate_dead_code
from framejit.graph.shape_prop import fetch_attr, meta_value, to_meta

aten = torch.ops.aten
NOT = (aten.bitwise_not.default, aten.logical_not.default)
RESHAPES = (aten.view.default, aten._unsafe_view.default, aten.reshape.default, aten.alias.default)
# ops that only re-index their operand: a mask reached through these from an input is checked at run time
VIEWS = RESHAPES + (aten.slice.Tensor, aten.select.int, aten.unsqueeze.default, aten.expand.default,
                    aten.permute.default, aten.squeeze.dims, aten.squeeze.dim, aten.squeeze.default,
                    aten.detach.default)


def _is(node: Any, *targets: Any) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_function" and node.target in targets


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _minus_inf(node: Any) -> bool:
    """A `full` of -inf: masked_fill's fill value after normalization."""
    return _is(node, aten.full.default) and len(node.args) >= 2 and node.args[1] == float("-inf")


# ---- rules ---------------------------------------------------------------------------------------------------
# a positive Python-number scale: (target, spelling); SDPA_SCALE and APPLY say what each spelling means
SCALES: list[tuple[Any, str]] = [(aten.mul.Tensor, "mul"), (aten.div.Tensor, "div")]
SDPA_SCALE: dict[str, Callable[[float], float]] = {"none": lambda c: 1.0, "mul": lambda c: c, "div": lambda c: 1.0 / c}
APPLY: dict[str, Callable[[Any, float], Any]] = {"none": lambda s, c: s, "mul": lambda s, c: s * c,
                                                 "div": lambda s, c: s / c}


def _where_keep(n: fx.Node):      # masked_fill(~m, -inf): m True = attend
    c, a, b = n.args
    return (b, c.args[0], "keep") if _is(c, *NOT) and _minus_inf(a) else None


def _where_keep_nonzero(n: fx.Node):   # masked_fill(m == 0, -inf): nanoGPT's float `bias` buffer
    c, a, b = n.args
    return (b, c.args[0], "nonzero") if _is(c, aten.eq.Scalar) and c.args[1] == 0 and _minus_inf(a) else None


def _where_select(n: fx.Node):    # where(m, scores, -inf)
    c, a, b = n.args
    return (a, c, "keep") if _minus_inf(b) and not _is(c, *NOT) else None


def _where_drop(n: fx.Node):      # masked_fill(m, -inf): m True = masked out
    c, a, b = n.args
    return (b, c, "drop") if _minus_inf(a) and not _is(c, *NOT, aten.eq.Scalar) else None


def _additive(n: fx.Node):        # scores + m, m holding 0 and -inf
    a, b = n.args[:2]
    if n.kwargs or not isinstance(b, fx.Node) or not isinstance(a, fx.Node):
        return None
    return (b, a, "additive") if a.op in ("placeholder", "get_attr") else (a, b, "additive")


# (target, node -> (scores node, mask node, mask kind) | None); first match wins
MASKS: list[tuple[Any, Callable[[fx.Node], Any]]] = [
    (aten.where.self, _where_keep),
    (aten.where.self, _where_keep_nonzero),
    (aten.where.self, _where_select),
    (aten.where.self, _where_drop),
    (aten.add.Tensor, _additive),
]


def keep_of(mask: torch.Tensor, kind: str):
    """The boolean 'attend' mask a mask of this kind stands for; None when its values say it is not such a mask
    (an additive mask with values other than 0 and -inf, a non-bool mask where bool is meant)."""
    if kind == "additive":
        if not mask.dtype.is_floating_point or not bool(((mask == 0) | (mask == float("-inf"))).all()):
            return None
        return mask == 0
    if kind == "nonzero":
        return mask != 0
    if mask.dtype != torch.bool:
        return None
    return mask if kind == "keep" else ~mask


def is_causal_mask(mask: torch.Tensor, kind: str, q_len: int, k_len: int) -> bool:
    """The mask, broadcast over the scores, keeps exactly tril(ones(q_len, k_len)): what SDPA's is_causal means."""
    keep = keep_of(mask, kind)
    if keep is None or keep.dim() < 2 and (q_len, k_len) != (1, 1):
        return False
    causal = torch.ones(q_len, k_len, dtype=torch.bool, device=mask.device).tril()
    return bool((keep == causal).all())


# ---- the run-time check ----------------------------------------------------------------------------------------
_checked: dict = {}  # id(base tensor) -> (weakref to it, version, view geometry, kind, sizes, answer)


def _mask_still_causal(mask: torch.Tensor, kind: str, q_len: int, k_len: int) -> bool:
    """Cached on the tensor the mask views (a slice of a buffer is a new object each call, its base is not) and on
    its version counter, which torch bumps on every in-place write through any view."""
    base = mask._base if mask._base is not None else mask
    key = (mask.storage_offset(), tuple(mask.shape), tuple(mask.stride()), kind, q_len, k_len)
    seen = _checked.get(id(base))
    if seen is not None and seen[0]() is base and seen[1] == base._version and seen[2] == key:
        return seen[3]
    answer = is_causal_mask(mask, kind, q_len, k_len)
    if len(_checked) > 256:
        _checked.clear()
    _checked[id(base)] = (weakref.ref(base), base._version, key, answer)
    return answer


def causal_attention(q, k, v, mask, *, scale_op: str, constant: float, kind: str, mask_first: bool = False):
    """The rewritten attention when the mask is read from outside the graph: fused SDPA while the mask is causal,
    otherwise the original formula op for op."""
    if _mask_still_causal(mask, kind, q.shape[-2], k.shape[-2]):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=SDPA_SCALE[scale_op](constant))
    scores = q @ k.transpose(-2, -1)
    if not mask_first:
        scores = APPLY[scale_op](scores, constant)
    if kind == "additive":
        scores = scores + mask
    else:
        drop = ~mask if kind == "keep" else (mask == 0) if kind == "nonzero" else mask
        scores = scores.masked_fill(drop, float("-inf"))
    if mask_first:
        scores = APPLY[scale_op](scores, constant)
    return torch.softmax(scores, dim=-1) @ v


# ---- matching --------------------------------------------------------------------------------------------------
def _only_user(node: fx.Node, user: fx.Node) -> bool:
    return set(node.users) == {user}


def _last_dim(node: fx.Node, x: fx.Node) -> bool:
    """A reduction node over x's last dim with keepdim."""
    dims, keep = (node.args[1], node.args[2]) if len(node.args) >= 3 else (None, False)
    ndim = meta_value(x).dim()
    return keep is True and isinstance(dims, (list, tuple)) and len(dims) == 1 and ndim > 0 and \
        dims[0] % ndim == ndim - 1


def _softmax_input(div: fx.Node):
    """x for div(exp(x - amax(x)), sum(exp(..))) over the last dim (graph.decompositions' softmax)."""
    if not _is(div, aten.div.Tensor) or div.kwargs:
        return None
    e, total = div.args
    if not (_is(e, aten.exp.default) and _is(total, aten.sum.dim_IntList)) or total.args[0] is not e \
            or total.kwargs or set(e.users) != {div, total} or not _only_user(total, div):
        return None
    sub = e.args[0]
    if not _is(sub, aten.sub.Tensor) or sub.kwargs or not _only_user(sub, e):
        return None
    x, shift = sub.args
    top = shift.args[0] if _is(shift, aten.detach.default) and _only_user(shift, sub) else shift  # max detached
    if not _is(top, aten.amax.default) or top.args[0] is not x or not _only_user(top, shift) \
            or set(x.users) != {top, sub} or not _last_dim(top, x) or not _last_dim(total, e):
        return None
    return x


def _softmax_of(div: fx.Node):
    """(x, probabilities node) for a softmax ending in `div`. A half-type softmax is decomposed in float32 and cast
    back (graph.decompositions' _opmath): x is then the half tensor under the upcast, the probabilities the cast."""
    x = _softmax_input(div)
    if x is None or not (_is(x, aten._to_copy.default) and dict(x.kwargs) == {"dtype": torch.float32}):
        return None if x is None else (x, div)
    low, back = x.args[0], next(iter(div.users), None)
    half = meta_value(low).dtype
    if half in (torch.float16, torch.bfloat16) and _only_user(low, x) and len(div.users) == 1 and \
            _is(back, aten._to_copy.default) and dict(back.kwargs) == {"dtype": half}:
        return low, back
    return x, div


def _batched_matmul(node: fx.Node, shape: tuple):
    """(a, b) of the bmm computing `node` (a view of the bmm to `shape`, or the 3-D bmm itself)."""
    mm = node
    if _is(node, *RESHAPES):
        mm = node.args[0]
        if not _only_user(mm, node):
            return None
    if not _is(mm, aten.bmm.default) or tuple(meta_value(node).shape) != shape:
        return None
    return mm.args[0], mm.args[1]


def _strip(node: fx.Node, shape: tuple):
    """The tensor of `shape` that a bmm operand reshapes (through views and contiguous copies): same elements in
    the same row-major order, so it is the n-D operand itself."""
    best = None
    while isinstance(node, fx.Node):
        if tuple(meta_value(node).shape) == shape:
            best = node
        if _is(node, *RESHAPES) or (_is(node, aten.clone.default) and
                                     node.kwargs.get("memory_format", torch.contiguous_format)
                                     in (torch.contiguous_format, torch.preserve_format)):
            node = node.args[0]
            continue
        break
    return best


def _scale_of(node: fx.Node):
    """(operand, spelling, constant) when node multiplies or divides by a positive Python number."""
    for target, spelling in SCALES:
        if _is(node, target) and not node.kwargs and len(node.args) == 2 and _number(node.args[1]) \
                and node.args[1] > 0:
            return node.args[0], spelling, float(node.args[1])
    return None


def _mask_of(node: fx.Node):
    for target, match in MASKS:
        if _is(node, target):
            found = match(node)
            if found is not None:
                return found
    return None


def _same(node: fx.Node, other: fx.Node) -> bool:
    a, b = meta_value(node), meta_value(other)
    return a.shape == b.shape and a.dtype == b.dtype


def match(div: fx.Node):
    """The attention around a softmax node, as a dict, or None."""
    softmax = _softmax_of(div)
    if softmax is None:
        return None
    x, div = softmax
    found = None
    # scale(mask(scores)) or mask(scale(scores)) or mask(scores)
    outer = _scale_of(x)
    if outer is not None and _only_user(outer[0], x) and _same(outer[0], x):
        inner = _mask_of(outer[0])
        if inner is not None and _only_user(inner[0], outer[0]):
            found = dict(scores=inner[0], mask=inner[1], kind=inner[2], scale_op=outer[1], constant=outer[2],
                         mask_first=True)
    if found is None:
        inner = _mask_of(x)
        if inner is None or not _only_user(inner[0], x) or not _same(inner[0], x):
            return None
        scaled = _scale_of(inner[0])
        if scaled is not None and _only_user(scaled[0], inner[0]) and _same(scaled[0], inner[0]):
            found = dict(scores=scaled[0], mask=inner[1], kind=inner[2], scale_op=scaled[1], constant=scaled[2],
                         mask_first=False)
        else:
            found = dict(scores=inner[0], mask=inner[1], kind=inner[2], scale_op="none", constant=1.0,
                         mask_first=False)
    scores = meta_value(found["scores"])
    if scores.dim() < 3 or not scores.dtype.is_floating_point or meta_value(div).dtype != scores.dtype:
        return None
    batch, q_len, k_len = tuple(scores.shape[:-2]), scores.shape[-2], scores.shape[-1]
    ab = _batched_matmul(found["scores"], tuple(scores.shape))
    if ab is None:
        return None
    # the probabilities' one use: (view to 3-D ->) bmm with v (-> view back)
    probs = div
    users = list(div.users)
    if len(users) != 1:
        return None
    step = users[0]
    if _is(step, *RESHAPES):
        if len(step.users) != 1:
            return None
        probs, step = step, next(iter(step.users))
    if not _is(step, aten.bmm.default) or step.args[0] is not probs:
        return None
    out = step
    if len(step.users) == 1 and _is(next(iter(step.users)), *RESHAPES):
        out = next(iter(step.users))
    v_shape = meta_value(out).shape
    if tuple(v_shape[:-2]) != batch or v_shape[-2] != q_len:
        return None
    head = meta_value(ab[0]).shape[-1]
    q = _strip(ab[0], batch + (q_len, head))
    kt = _strip(ab[1], batch + (head, k_len))
    v = _strip(step.args[1], batch + (k_len, v_shape[-1]))
    if q is None or kt is None or v is None or len({meta_value(t).dtype for t in (q, kt, v)}) != 1:
        return None
    found.update(q=q, kt=kt, v=v, out=out, q_len=q_len, k_len=k_len)
    return found


# ---- where the mask comes from -----------------------------------------------------------------------------
def _metadata(n: fx.Node) -> bool:
    """`x.device` / `x.dtype` read off a tensor: depends on no element of it."""
    return n.op == "call_function" and n.target is getattr and len(n.args) == 2 and n.args[1] in ("device", "dtype")


def _ancestors(node: fx.Node, data_only: bool = False) -> list:
    seen, order = set(), []

    def walk(n):
        if n in seen:
            return
        seen.add(n)
        if not (data_only and _metadata(n)):
            for a in n.all_input_nodes:
                walk(a)
        order.append(n)
    walk(node)
    return order


def _evaluate(gm: fx.GraphModule, node: fx.Node, inputs: dict):
    """The mask's real value: its subgraph run on the example inputs (constants only, or views of inputs)."""
    env: dict = {}
    for n in _ancestors(node):
        if n.op == "placeholder":
            env[n] = inputs[n]
            continue
        if n.op == "get_attr":
            env[n] = fetch_attr(gm, n.target)
            continue
        args, kwargs = fx.node.map_arg((n.args, n.kwargs), lambda a: env[a])
        if n.op == "call_method":
            env[n] = getattr(args[0], n.target)(*args[1:], **kwargs)
        elif n.op == "call_function":
            env[n] = n.target(*args, **kwargs)
        else:
            raise ValueError(n.op)
    return env[node]


def _mask_source(mask: fx.Node) -> str | None:
    """'constant' (no input in its history), 'input' (views of one placeholder), or None (computed from inputs)."""
    if not any(n.op == "placeholder" for n in _ancestors(mask, data_only=True)):
        return "constant"
    n = mask
    while _is(n, *VIEWS):
        n = n.args[0]
    return "input" if isinstance(n, fx.Node) and n.op == "placeholder" else None


# ---- the pass --------------------------------------------------------------------------------------------------
def rewrite_causal_attention(gm: fx.GraphModule, example_inputs: list | tuple) -> int:
    """Rewrite every naive causal attention in gm (core ops, meta values recorded); returns how many."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    inputs = dict(zip(placeholders, example_inputs))
    count = 0
    for node in list(gm.graph.nodes):
        if node.graph is not gm.graph or not _is(node, aten.div.Tensor):
            continue
        found = match(node)
        if found is None:
            continue
        mask, kind = found["mask"], found["kind"]
        source = _mask_source(mask)
        if source is None:
            continue
        try:
            value = _evaluate(gm, mask, inputs)
            causal = isinstance(value, torch.Tensor) and is_causal_mask(value, kind, found["q_len"],
                                                                        found["k_len"])
        except Exception:  # noqa: BLE001  (a mask we cannot evaluate here is simply not rewritten)
            causal = False
        if not causal:
            continue
        count += _replace(gm, found, source)
    if count:
        eliminate_dead_code(gm)
        gm.graph.lint()
        gm.recompile()
    return count


def _replace(gm: fx.GraphModule, found: dict, source: str) -> bool:
    g = gm.graph
    kt, out = found["kt"], found["out"]
    nd = meta_value(kt).dim()
    swap = list(range(nd - 2)) + [nd - 1, nd - 2]
    scale = SDPA_SCALE[found["scale_op"]](found["constant"])
    with g.inserting_before(out):
        if _is(kt, aten.permute.default):  # k^T was a permute of k (it always is after normalization): undo it
            dims = [kt.args[1][d] for d in swap]
            k = kt.args[0] if dims == sorted(dims) else g.call_function(aten.permute.default, (kt.args[0], dims))
        else:
            k = g.call_function(aten.permute.default, (kt, swap))
        if source == "constant":
            new = g.call_function(aten.scaled_dot_product_attention.default,
                                  (found["q"], k, found["v"], None, 0.0, True), {"scale": scale})
        else:
            new = g.call_function(causal_attention, (found["q"], k, found["v"], found["mask"]),
                                  {"scale_op": found["scale_op"], "constant": found["constant"],
                                   "kind": found["kind"], "mask_first": found["mask_first"]})
    if "val" not in k.meta:
        k.meta["val"] = to_meta(meta_value(kt).permute(swap))
    new.meta["val"] = to_meta(F.scaled_dot_product_attention(meta_value(found["q"]), meta_value(k), meta_value(found["v"]),
                                                             is_causal=True, scale=scale))
    if not _same(new, out):
        g.erase_node(new)
        if not k.users:
            g.erase_node(k)
        return False
    out.replace_all_uses_with(new)
    return True


def drop_constant_sdpa_masks(gm: fx.GraphModule, example_inputs: list | tuple) -> int:
    """SDPA calls whose mask is computed from constants and keeps everything, or exactly the causal triangle, get
    no mask (is_causal=True for the triangle); returns how many. Libraries build such masks when they cannot look
    at values (transformers' `sdpa_mask` under a compiler materializes BERT's all-True padding mask), and a mask
    keeps SDPA off its fused kernels: on the GPU a bf16 call with a (B, 1, T, T) bool mask falls back to the
    float32 math path, several times slower than the flash kernel eager picks without one."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    inputs = dict(zip(placeholders, example_inputs))
    count = 0
    for node in list(gm.graph.nodes):
        if not _is(node, aten.scaled_dot_product_attention.default) or len(node.args) < 4:
            continue
        mask = node.args[3]
        if not isinstance(mask, fx.Node) or _mask_source(mask) != "constant" or node.kwargs.get("enable_gqa"):
            continue
        causal_now = len(node.args) > 5 and node.args[5]
        q_len, k_len = meta_value(node.args[0]).shape[-2], meta_value(node.args[1]).shape[-2]
        try:
            value = _evaluate(gm, mask, inputs)
            kind = "keep" if value.dtype == torch.bool else "additive"
            keep = keep_of(value, kind)
            everything = keep is not None and bool(keep.all())
            causal = not everything and not causal_now and is_causal_mask(value, kind, q_len, k_len)
        except Exception:  # noqa: BLE001  (a mask we cannot evaluate here is simply left as it is)
            continue
        if not (everything or causal):
            continue
        args = list(node.args) + [0.0, False][len(node.args) - 4:]
        args[3] = None
        args[5] = bool(causal_now or causal)
        node.args = tuple(args)
        count += 1
    if count:
        eliminate_dead_code(gm)
        gm.graph.lint()
        gm.recompile()
    return count

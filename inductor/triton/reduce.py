"""Reductions inside a Triton kernel: the combine rule and identity of each kind, persistent and looped forms.

A Reduce node is evaluated at coordinates of its own (reduced) shape: the kept coordinates come from the tile's
rows and the reduced ones from the column index. Persistent kernels reduce the row held in registers in place;
looped kernels emit a loop over column blocks that accumulates lane-wise into an [XBLOCK, RBLOCK] accumulator
and reduces it at the end (a two-level, pairwise-like summation: no long serial chain of float adds). The loop is
emitted at the kernel's top level before whatever needs the result, so a normalization runs its reductions one
after another and then its epilogue loop. A kernel reducing down columns has its tile transposed ([RBLOCK,
XBLOCK]): the same code folds axis 0 (`w.raxis`, `w.tile`, `w.kept`)."""
import math

import torch

from ..ir import Op, Reduce, View, ViewKind, walk
from .dtypes import TL, Val, compute

# kind -> (identity for floats, identity for ints, Triton reduction of a tile along its reduced axis, lane-wise
# combine)
KINDS = {
    "sum": ("0", "0", "tl.sum({v}, {axis})", "{acc} + {v}"),
    "mean": ("0", "0", "tl.sum({v}, {axis})", "{acc} + {v}"),
    "prod": ("1", "1", "tl.reduce({v}, {axis}, h.prod)", "{acc} * {v}"),
    "amax": ('float("-inf")', None, "tl.reduce({v}, {axis}, h.maximum)", "h.maximum({acc}, {v})"),
    "amin": ('float("inf")', None, "tl.reduce({v}, {axis}, h.minimum)", "h.minimum({acc}, {v})"),
    "any": ("0", "0", "tl.max({v}, {axis})", "tl.maximum({acc}, {v})"),
    "all": ("1", "1", "tl.min({v}, {axis})", "tl.minimum({acc}, {v})"),
}
INT_LIMITS = {torch.int64: (-2 ** 63, 2 ** 63 - 1), torch.int32: (-2 ** 31, 2 ** 31 - 1),
              torch.int16: (-2 ** 15, 2 ** 15 - 1), torch.int8: (-128, 127), torch.uint8: (0, 255),
              torch.bool: (0, 1)}


def _acc_dtype(e: Reduce) -> torch.dtype:
    """What the reduction accumulates in: the output's compute dtype (float32 for half types, int64 for integer
    sums), the input's for max/min/arg*, int32 flags for any/all."""
    if e.kind in ("any", "all"):
        return torch.int32
    if e.kind in ("amax", "amin", "argmax", "argmin"):
        return compute(e.arg.dtype) if e.arg.dtype != torch.bool else torch.int32
    return compute(e.dtype)


def _identity(e: Reduce, dtype: torch.dtype) -> str:
    if e.kind in ("argmax", "argmin"):
        e_kind = "amax" if e.kind == "argmax" else "amin"
    else:
        e_kind = e.kind
    fl, it, _, _ = KINDS[e_kind]
    if dtype.is_floating_point:
        return fl
    if it is not None:
        return it
    lo, hi = INT_LIMITS[dtype]
    return str(lo if e_kind == "amax" else hi)


def emit_reduce(w, e: Reduce, coords, scope, rgroup, extra) -> Val:
    shape = tuple(e.arg.shape)
    axes = tuple(range(len(shape))) if e.axes is None else tuple(e.axes)
    if (shape, axes) != w.signature:
        raise NotImplementedError("a reduction that differs from its kernel's")
    kept = [c for d, c in enumerate(coords) if d not in axes] if e.keepdim else list(coords)
    if any("r" in c.deps for c in kept):
        raise NotImplementedError("a reduction whose rows depend on the column index")
    key = ("reduce", id(e), tuple(c.code for c in kept), extra)
    hit = w.memo.get(key)
    if hit is not None:
        return hit
    looped = w.mode == "looped"
    if looped and e.kind in ("sum", "amax"):
        online = _online(w, e, kept, shape, axes, extra, key)
        if online is not None:
            return online
    body, group = w.open_loop() if looped else (w.top, w.rgroup)
    it = iter(kept)
    arg_coords = tuple(group.coords[axes.index(d)] if d in axes else next(it) for d in range(len(shape)))
    v = w.value(e.arg, arg_coords, body, group, extra)
    acc_dtype = _acc_dtype(e)
    if e.kind in ("any", "all"):
        v = w.cast(body, v, torch.bool)  # truth first: a float 0.5 is true, its int32 cast is not
    v = w.cast(body, v, acc_dtype)
    ident = _identity(e, acc_dtype)
    mask = "rmask" if extra is None else f"rmask & {extra}"
    top = w.top
    if e.kind in ("argmax", "argmin"):
        out = _arg(w, e, v, body, mask, ident, looped, acc_dtype)
    else:
        _, _, whole, lane = KINDS[e.kind]
        masked = body.let(f"tl.where({mask}, {v.code}, {ident})")
        if looped:
            acc = top.fresh(f"tl.full({w.tile}, {ident}, {TL[acc_dtype]})", prefix="acc")
            body.lines.append(f"{acc} = {lane.format(acc=acc, v=masked)}")
            w.close_loop(body)
            masked = acc
        out = top.let(f"{whole.format(v=masked, axis=w.raxis)}{w.kept}", prefix="red")
        if e.kind == "mean":
            count = 1
            for d in axes:
                count *= shape[d]
            out = top.let(f"{out} / {count}", prefix="red")
    result = Val(out, e.dtype if e.kind not in ("any", "all") else torch.int32, frozenset("x"))
    if e.kind in ("any", "all"):
        result = Val(top.let(f"{out} != 0"), torch.bool, frozenset("x"))
    elif compute(e.dtype) != acc_dtype:
        result = w.cast(top, Val(out, acc_dtype, frozenset("x")), e.dtype)
    w.memo[key] = result
    return result


def _arg(w, e, v, body, mask, ident, looped, acc_dtype) -> str:
    """argmax/argmin: values and column indices reduced together; ties and NaN as torch (first index wins)."""
    top, fn = w.top, f"h.{e.kind}"
    big = "2147483647"
    vals = body.let(f"tl.where({mask}, {v.code}, {ident})")
    idx = body.let(f"tl.where({mask}, tl.broadcast_to(rindex, {w.tile}), {big}).to(tl.int32)")
    if looped:
        accv = top.fresh(f"tl.full({w.tile}, {ident}, {TL[acc_dtype]})", prefix="acc")
        acci = top.fresh(f"tl.full({w.tile}, {big}, tl.int32)", prefix="acc")
        body.lines.append(f"{accv}, {acci} = {fn}({accv}, {acci}, {vals}, {idx})")
        w.close_loop(body)
        vals, idx = accv, acci
    n = top.counter[0]
    top.counter[0] += 1
    top.lines.append(f"_, red{n} = tl.reduce(({vals}, {idx}), {w.raxis}, {fn})")
    return top.let(f"red{n}{w.kept}.to(tl.int64)", prefix="red")


def _max_under_exp(e: Reduce):
    """(M, A) where e sums exp(A - M) and M is the amax of A over e's axes (a softmax's or cross entropy's sum of
    exponentials), all in float32; else None."""
    arg = e.arg
    if not (isinstance(arg, Op) and arg.name == "exp" and isinstance(arg.args[0], Op) and arg.args[0].name == "sub"):
        return None
    a, m = arg.args[0].args
    while isinstance(m, View) and (m.kind in (ViewKind.IDENTITY, ViewKind.EXPAND) or
                                   m.kind == ViewKind.RESHAPE and math.prod(m.shape) == math.prod(m.arg.shape)):
        m = m.arg
    if not (isinstance(m, Reduce) and m.kind == "amax" and m.keepdim and m.axes == e.axes and
            tuple(m.arg.shape) == tuple(e.arg.shape) and (m.arg is a or repr(m.arg) == repr(a))):
        return None
    if not all(x.dtype == torch.float32 for x in (a, m, arg, arg.args[0])) or e.dtype != torch.float32:
        return None
    return m, a


def _online_pairs(w) -> dict:
    """repr(M) -> (the sum, A) for each sum of exp(A - M) in w's kernel (its output and side outputs)."""
    pairs = w.online_pairs
    if pairs is None:
        pairs, seen = {}, set()
        for root in [w.kernel.expr] + [e for _, e in w.kernel.side_outputs]:
            for n in walk(root, seen):
                found = _max_under_exp(n) if isinstance(n, Reduce) and n.kind == "sum" else None
                if found is not None:
                    pairs.setdefault(repr(found[0]), (n, found[1]))
        w.online_pairs = pairs
    return pairs


def _online(w, e: Reduce, kept, shape, axes, extra, key):
    """The value of e where it is a max under a sum of exponentials (or that sum) in a looped kernel and neither
    is computed yet: both from one loop (`_online_softmax`); else None. Whichever of the two the kernel's
    expression reaches first (a softmax's numerator reads the max before the division reads the sum)."""
    if e.kind == "sum":
        found = _max_under_exp(e)
        if found is None:
            return None
        (m, a), total = found, e
    else:
        pair = _online_pairs(w).get(repr(e))
        if pair is None:
            return None
        (total, a), m = pair, e
    codes = tuple(c.code for c in kept if c.code != "0")  # keepdim's size-1 dims name no other row
    done = w.online
    if (id(total), codes, extra) not in done:
        exact = tuple(c.code for c in kept)
        if ("reduce", id(m), exact, extra) in w.memo or ("reduce", id(total), exact, extra) in w.memo:
            return None  # one of them computed on its own already
        done[id(total), codes, extra] = _online_softmax(w, a, kept, shape, axes, extra)
    row_max, total_value = done[id(total), codes, extra]
    w.memo[key] = row_max if e is m else total_value
    return w.memo[key]


def _online_softmax(w, a, kept, shape, axes, extra) -> tuple:
    """(max(A), sum(exp(A - max(A)))) from one loop over the row (online softmax, Milakov and Gimelshein 2018):
    each lane keeps its running max and its sum of exponentials relative to it, rescaled when the max grows; the
    lanes are combined at the end. A row too long for registers is then read once, not once for the max and
    again for the sum (a language model's logits: 128 KB rows do not stay in L2 between two passes).

    Exactly the two-pass result's special values: an element equal to -inf adds 0; a row all -inf gives NaN (its
    exp(-inf - -inf)); +inf or NaN anywhere gives NaN. `where(m == new, 1, exp(m - new))` keeps a lane's sum
    unscaled when its max is unchanged, infinite or not."""
    top = w.top
    body, group = w.open_loop()
    it = iter(kept)
    arg_coords = tuple(group.coords[axes.index(d)] if d in axes else next(it) for d in range(len(shape)))
    v = w.cast(body, w.value(a, arg_coords, body, group, extra), torch.float32)
    mask = "rmask" if extra is None else f"rmask & {extra}"
    x = body.let(f"tl.where({mask}, {v.code}, float(\"-inf\"))")
    lane_max = top.fresh(f"tl.full({w.tile}, float(\"-inf\"), tl.float32)", prefix="accm")
    lane_sum = top.fresh(f"tl.full({w.tile}, 0, tl.float32)", prefix="accs")
    new = body.let(f"h.maximum({lane_max}, {x})")
    scale = body.let(f"tl.where({lane_max} == {new}, 1.0, tl.exp({lane_max} - {new}))")
    term = body.let(f"tl.where({mask} & ({x} != float(\"-inf\")), tl.exp({x} - {new}), 0.0)")
    body.lines.append(f"{lane_sum} = {lane_sum} * {scale} + {term}")
    body.lines.append(f"{lane_max} = {new}")
    w.close_loop(body)
    row_max = top.let(f"tl.reduce({lane_max}, {w.raxis}, h.maximum){w.kept}", prefix="red")
    scale = top.let(f"tl.where({lane_max} == {row_max}, 1.0, tl.exp({lane_max} - {row_max}))")
    total = top.let(f"tl.sum({lane_sum} * {scale}, {w.raxis}){w.kept}", prefix="red")
    total = top.let(f"tl.where({row_max} == float(\"-inf\"), float(\"nan\"), {total})", prefix="red")
    return Val(row_max, torch.float32, frozenset("x")), Val(total, torch.float32, frozenset("x"))

"""A residual sum added by the matmul itself.

`out = h + (g @ W.t() + b)`, a GPT block's last residual, is a library GEMM writing the product and a kernel
reading it back with h: the product makes a round trip through memory, and h was stored by the kernel that
computed it (the layer_norm before the MLP) only to be read here. cuBLAS can add a matrix to the product in its
epilogue (C = A @ B + beta * C, beta = 1): `acc = h + b`, stored by the kernel that already has h in registers
instead of h, then `acc.addmm_(g, W.t())` writes the sum in place. The product never touches memory and h is
not stored at all: on the H100, 131 -> 109 us for GPT-2's c_proj + residual (16384x3072x768 bf16) before
counting h's store.

Whether that pays depends on the rest of the plan: `acc` must be stored by an earlier kernel walking the same
elements that already reads what it is made of (side_outputs.hoist), and where the sum fed a later kernel
that computed it in registers (a residual add folded into the next layer_norm), that kernel now reads it back.
So the choice is by the bytes the plan moves: every candidate is rewritten, then dropped one at a time while
the plan without it moves no more bytes (a tie keeps eager's order of additions).

Rounding: `(h + b) + product` in one fused multiply-add epilogue instead of `h + (product + b)`: the same
additions, grouped otherwise, as any fusing compiler does. FRAMEJIT_RESIDUAL_GEMM=0 turns it off; forcing the
fused Triton matmul (FRAMEJIT_TRITON_MM=1) does too, since that path fuses the residual itself."""
import math
from dataclasses import dataclass

import torch

from ..config import config
from ..ir import (Buffer, Const, ExternKernel, ExternKind, Kernel, Load, Op, View, ViewKind, contiguous_strides,
                  kernel_loads, loads_in,
                  readers_of, reduces_in, reshape_only, side_outputs, static_shape, unit, view_base)
from . import matmul
from .side_outputs import Probes, drop_dead_side_outputs, hoist, merge_side_outputs

FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def enabled() -> bool:
    return config.residual_gemm and not matmul.forced()


@dataclass
class Residual:
    """The pointwise kernel plan[add] sums the product of the library call plan[gemm] with other terms. Rewritten,
    plan[add] becomes `store` (the addend into buffer `acc`) and `into` (the library call adding the product
    into acc in place); built once, so every plan tried shares these objects (side_outputs.Probes)."""
    add: int
    gemm: int
    acc: Buffer
    store: Kernel
    into: ExternKernel


MAX_TERMS = 64


def _terms(e, shape: tuple, dtype) -> list:
    """The terms of a sum tree (adds of the kernel's own shape and dtype), left to right; [e] past MAX_TERMS. The
    expression is a DAG: `acc = acc + acc` unrolled n times is a tree of 2 ** n terms (generator seed 787521 never
    finished compiling), and no GEMM is worth folding into a sum that wide."""
    terms, todo = [], [e]
    while todo:
        u = todo.pop()
        if isinstance(u, Op) and u.name == "add" and u.dtype == dtype and tuple(u.shape) == shape and not u.params:
            todo += [u.args[1], u.args[0]]
        else:
            terms.append(u)
        if len(terms) + len(todo) > MAX_TERMS:
            return [e]
    return terms


def _product_fits(g: ExternKernel, shape: tuple, dtype) -> bool:
    """The library call is a 2-D product (plus a bias row) laid out as the sum's output, element for element."""
    lay = g.out.layout
    if len(lay.shape) != 2 or lay.dtype != dtype or tuple(lay.strides) != contiguous_strides(lay.shape) or \
            math.prod(lay.shape) != math.prod(shape) or any(len(a.shape) != 2 for a in g.args[-2:]) or \
            not all(isinstance(view_base(a), Load) for a in g.args):
        return False
    if g.kind == ExternKind.MATMUL:
        return True
    n = lay.shape[1]
    bias = g.args[0]
    return unit(g.params["beta"]) and unit(g.params["alpha"]) and tuple(bias.shape) in ((n,), (1, n)) and \
        shape[-1] == n and bias.dtype == dtype


def find(plan: list, returned: set, fresh) -> list:
    """Every pointwise kernel summing a library product that nothing else reads, with other terms of its dtype."""
    readers = readers_of(plan)
    gemms = {k.out.name: i for i, k in enumerate(plan)
             if isinstance(k, ExternKernel) and k.kind in (ExternKind.MATMUL, ExternKind.ADDMM)}
    found = []
    for i, k in enumerate(plan):
        if not isinstance(k, Kernel) or k.is_view or side_outputs(k) or reduces_in(k.expr):
            continue
        lay = k.out.layout
        shape = tuple(lay.shape)
        if lay.dtype not in FLOATS or not static_shape(shape) or tuple(lay.strides) != contiguous_strides(shape):
            continue
        terms = _terms(k.expr, shape, lay.dtype)
        for t in terms:
            base = view_base(t)
            buf = base.buf if isinstance(base, Load) else None
            if buf not in gemms or buf in returned or readers.get(buf) != [i] or not reshape_only(t, buf) or \
                    tuple(t.shape) != shape or not _product_fits(plan[gemms[buf]], shape, lay.dtype):
                continue
            rest = [u for u in terms if u is not t]
            if not rest or any(buf in loads_in(u) for u in rest) or \
                    any(u.dtype != lay.dtype for u in rest if not isinstance(u, Const)):
                continue
            acc = Buffer(fresh(f"{k.out.name}_acc"), lay)
            found.append(Residual(i, gemms[buf], acc, *_replacement(k, plan[gemms[buf]], rest, acc)))
            break
    return found


def _replacement(k: Kernel, g: ExternKernel, rest: list, acc: Buffer) -> tuple:
    """The kernel storing the sum's other terms and g's bias into acc, and the library call adding g's product
    into acc in place as k's buffer."""
    lay = k.out.layout
    shape = tuple(lay.shape)
    terms = rest + ([g.args[0]] if g.kind == ExternKind.ADDMM else [])
    whole = Load(acc.name, shape, lay.dtype)
    if shape != tuple(g.out.layout.shape):
        whole = View(ViewKind.RESHAPE, whole, (tuple(g.out.layout.shape),), tuple(g.out.layout.shape), lay.dtype)
    return (Kernel(acc, _sum(terms, shape, lay.dtype), list(k.source)),
            ExternKernel(k.out, ExternKind.ADDMM_INTO, [whole] + list(g.args[-2:]), {}, g.source + k.source))


def _sum(terms: list, shape: tuple, dtype):
    terms = sorted(terms, key=lambda u: isinstance(u, Const))  # a tensor first: it fixes the tree's shape
    e = terms[0]
    for u in terms[1:]:
        e = Op("add", [e, u], torch.broadcast_shapes(tuple(e.shape), tuple(u.shape)), dtype, dtype)
    if tuple(e.shape) != shape:
        e = View(ViewKind.EXPAND, e, (shape,), shape, dtype)
    return e


def rewrite(plan: list, chosen: list) -> list:
    """The plan with each chosen sum as a kernel storing its addend (the other terms and the product's bias) and
    the library call adding the product into it in place, where the sum was (the call moves later: its
    operands are not written again, every buffer is stored once)."""
    gemms = {r.gemm for r in chosen}
    adds = {r.add: r for r in chosen}
    out = []
    for i, k in enumerate(plan):
        if i in gemms:
            continue
        r = adds.get(i)
        out.extend([k] if r is None else [r.store, r.into])
    return out


def traffic(plan: list, layouts: dict) -> int:
    """Bytes the plan's kernels and library calls read and write, each buffer counted whole once per entry."""
    total = 0
    for k in plan:
        if isinstance(k, tuple) or isinstance(k, Kernel) and k.is_view:
            continue
        total += sum(layouts[b].nbytes for b in kernel_loads(k) if b in layouts)
        total += sum(b.layout.nbytes for b in [k.out] + [b for b, _ in side_outputs(k)] if b.layout is not None)
    return total


def plan_residuals(plan: list, layouts: dict, returned: set, fresh) -> list:
    """The plan with side outputs merged (side_outputs.py) and the residual sums the library adds, where
    that moves fewer bytes. `fresh(base)` names a new buffer."""
    found = find(plan, returned, fresh) if enabled() else []
    if not found:
        return merge_side_outputs(plan, layouts)
    layouts = dict(layouts) | {r.acc.name: r.acc.layout for r in found}
    probes = Probes()

    def build(chosen: list):
        """(plan, the chosen residuals whose addend no earlier kernel can store)"""
        p = merge_side_outputs(rewrite(plan, chosen), layouts, probes)
        failed = []
        for r in chosen:
            j = next(i for i, k in enumerate(p) if isinstance(k, Kernel) and k.out.name == r.acc.name)
            q = hoist(p, j, layouts, probes)
            if q is None:
                failed.append(r)
            else:
                p = q
        return drop_dead_side_outputs(p, returned), failed

    chosen = found
    best, failed = build(chosen)
    while failed:
        chosen = [r for r in chosen if all(r is not f for f in failed)]
        best, failed = build(chosen)
    cost = traffic(best, layouts)
    for r in list(chosen):
        fewer = [x for x in chosen if x is not r]
        trial, failed = build(fewer)
        moved = None if failed else traffic(trial, layouts)
        if moved is not None and moved <= cost:
            chosen, best, cost = fewer, trial, moved
    return best if chosen else merge_side_outputs(plan, layouts, probes)

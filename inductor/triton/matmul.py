"""A Triton matmul with the pointwise kernel after it fused into its epilogue: gelu(x @ w + b), relu/silu/tanh,
a residual add, as one kernel that never stores the raw product.

After a library mm/addmm the product makes one round trip through memory (cuBLAS writes it, the epilogue kernel
reads it back); for a GPT's 8192x3072 MLP product in bf16 that is 100 MB, ~35 us at 3 TB/s, against ~0.3 ms of
matmul. A Triton matmul saves that only if its main loop is within those few percent of cuBLAS, which depends on
the shape and dtype, so the choice is made per call site:
  * FRAMEJIT_AUTOTUNE=1: the first call times both (this kernel over a few configs, and library call + epilogue
    kernel) on the real operands and keeps the faster, saved on disk like every other autotune result;
  * otherwise a heuristic measured on the H100 (`heuristic`), FRAMEJIT_TRITON_MM=1/0 forcing it either way.
float32 products stay in the library unless forced: tl.dot would round to TF32, which eager does not allow by
default, and full-precision tl.dot is far slower than cuBLAS.

What fuses: a generated pointwise kernel that is the only reader of the product (through reshapes), whose
operands are the product, Python numbers and buffers viewable over the (M, N) tile (a bias row, a residual), and
whose ops have a float32 rule here. Everything else keeps the library call."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from ..runtime.matmul import forced
from ..ir import (Const, ExternKernel, ExternKind, Kernel, Load, Op, View, ops_in, readers_of, reduces_in, reshape_only,
                  view_base)
from ..views import meta_view
from .dtypes import NARROW, TL
from .ops import BINARY, UNARY

log = logging.getLogger("jit.inductor.triton")
FLOAT_OPS = set(UNARY) - {"isnan", "logical_not", "floor", "ceil", "round", "trunc", "sign", "bitwise_not"}
COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
ARITH = {"add", "sub", "mul", "div"}


# ---- which library calls can take their epilogue ----------------------------------------------------------------
@dataclass(slots=True)
class Candidate:
    """A library mm/addmm (`extern`) and the pointwise kernel reading its product (`epilogue`), with the epilogue
    written as Triton code over the product tile."""
    extern: ExternKernel
    epilogue: Kernel
    m: int
    n: int
    k: int
    operands: dict            # id of each operand leaf -> (buffer, (stride along M, stride along N) over the tile)
    out_strides: tuple        # the output's strides over the (M, N) tile
    bias: tuple | None        # an addmm's bias: (buffer, strides over the tile)
    code: tuple               # (the epilogue's value, its dtype): EpilogueWriter.write
    epilogue_lines: list      # the epilogue's Triton lines, computing `code`
    epilogue_params: list     # buffers the epilogue loads, in argument order


def _leaves(e, out: list):
    if isinstance(e, (View, Load)):
        out.append(e)
    elif isinstance(e, Op):
        for a in e.args:
            _leaves(a, out)
    elif not isinstance(e, Const):
        raise NotImplementedError(type(e).__name__)


def find_candidates(plan: list, layouts: dict, returned: set) -> dict:
    """{index of the epilogue kernel in plan: (index of the library call, Candidate)}."""
    readers = readers_of(plan)
    found = {}
    for i, ext in enumerate(plan):
        if not isinstance(ext, ExternKernel) or ext.kind not in (ExternKind.MATMUL, ExternKind.ADDMM):
            continue
        if ext.kind == ExternKind.ADDMM and (ext.params.get("beta", 1) != 1 or ext.params.get("alpha", 1) != 1):
            continue
        name = ext.out.name
        users = set(readers.get(name, ()))
        if name in returned or len(users) != 1:
            continue
        j = next(iter(users))
        epi = plan[j]
        a, b = ext.args[-2], ext.args[-1]
        if not isinstance(epi, Kernel) or epi.is_view or epi.side_outputs or "scatter" in ops_in(epi.expr) or \
                reduces_in(epi.expr) or not ops_in(epi.expr) or len(a.shape) != 2 or len(b.shape) != 2 or \
                not all(isinstance(view_base(x), Load) for x in ext.args):  # not over a fallback's item
            continue
        m, kdim, n = a.shape[0], a.shape[1], b.shape[1]
        shape = tuple(epi.out.layout.shape)
        if not shape or shape[-1] != n or math.prod(shape) != m * n or epi.out.layout.dtype not in NARROW + \
                (torch.float32,) or ext.out.layout.dtype != epi.out.layout.dtype and \
                ext.out.layout.dtype not in NARROW + (torch.float32,):
            continue
        operands: dict = {}
        try:
            leaves = []
            _leaves(epi.expr, leaves)
            for leaf in leaves:
                base = view_base(leaf)
                if base.buf == name:
                    if not reshape_only(leaf, name) or tuple(leaf.shape) != shape:
                        raise NotImplementedError("the product is read other than whole")
                    continue
                t = meta_view(leaf, layouts).expand(shape)  # operands broadcast as torch's do (or raise)
                t = t.view(m, n)  # raises where the operand is not a view over the (M, N) tile
                operands[id(leaf)] = (base.buf, tuple(t.stride()))
            out = torch.empty_strided(shape, epi.out.layout.strides, device="meta").view(m, n)
            bias = None
            if ext.kind == ExternKind.ADDMM:
                b = ext.args[0]
                bias = (view_base(b).buf, tuple(meta_view(b, layouts).expand(m, n).stride()))
            writer = EpilogueWriter(epi, operands, bias)
            code = writer.write()
        except (NotImplementedError, RuntimeError, KeyError) as e:
            log.debug("no fused matmul for %s: %s", name, e)
            continue
        found[j] = (i, Candidate(ext, epi, m, n, kdim, operands, tuple(out.stride()), bias, code, writer.lines,
                                 writer.params))
    return found


# ---- the epilogue as Triton code over the accumulator tile ----------------------------------------------------
class EpilogueWriter:
    """The epilogue expression as float32 Triton code over `acc` (the (BLOCK_M, BLOCK_N) product tile), operands
    loaded at `rm * stride_m + rn * stride_n` (row and column indices wrapped into range, so no mask)."""

    def __init__(self, epilogue: Kernel, operands: dict, bias: tuple | None):
        self.epilogue, self.operands, self.bias = epilogue, operands, bias
        self.lines, self.memo, self.params, self.count = [], {}, [], 0

    def let(self, code: str) -> str:
        self.count += 1
        name = f"e{self.count}"
        self.lines.append(f"{name} = {code}")
        return name

    def write(self):
        start = "acc"
        if self.bias is not None:
            buf, (sm, sn) = self.bias
            self.params.append(buf)
            start = self.let(f"acc + tl.load({buf}_ptr + rm[:, None] * {sm} + rn[None, :] * {sn}).to(tl.float32)")
        self.acc = start
        value, dtype = self.value(self.epilogue.expr)
        out_dtype = self.epilogue.out.layout.dtype
        if dtype == torch.bool:
            raise NotImplementedError("boolean epilogue result")
        return value, out_dtype

    def value(self, e):
        if id(e) in self.memo:
            return self.memo[id(e)]
        out = self._value(e)
        self.memo[id(e)] = out
        return out

    def _value(self, e):
        if isinstance(e, Const):
            if isinstance(e.value, bool) or not isinstance(e.value, (int, float)):
                raise NotImplementedError("constant")
            value = float(e.value)
            return (repr(value) if math.isfinite(value) else f'float("{value}")'), torch.float32
        if isinstance(e, (View, Load)):
            if id(e) not in self.operands:  # the product itself (plus the addmm bias, if any)
                return self.acc, torch.float32
            buf, (sm, sn) = self.operands[id(e)]
            if buf not in self.params:
                self.params.append(buf)
            return self.let(f"tl.load({buf}_ptr + rm[:, None] * {sm} + rn[None, :] * {sn}).to(tl.float32)"), \
                torch.float32
        if not isinstance(e, Op):
            raise NotImplementedError(type(e).__name__)
        args = [self.value(a) for a in e.args]
        if e.name == "full":
            return self.value(e.args[0])
        if e.name == "cast":
            (code, _), = args
            if e.dtype in NARROW:  # torch rounds here: round the same way, keep computing in float32
                return self.let(f"{code}.to({TL[e.dtype]}).to(tl.float32)"), torch.float32
            if e.dtype == torch.float32:
                return code, torch.float32
            raise NotImplementedError(f"cast to {e.dtype}")
        if e.name == "where":
            (c, _), (a, _), (b, _) = args
            return self.let(f"tl.where({c}, {a}, {b})"), torch.float32
        if not e.compute_dtype.is_floating_point:
            raise NotImplementedError(f"{e.name} in {e.compute_dtype}")
        if e.name in COMPARE:
            (a, _), (b, _) = args
            return self.let(BINARY[e.name].format(a=a, b=b)), torch.bool
        if e.name in ARITH:
            (a, _), (b, _) = args
            code = BINARY[e.name].format(a=a, b=b)
        elif e.name in FLOAT_OPS and len(args) == 1:
            code = UNARY[e.name].format(a=args[0][0])
        else:
            raise NotImplementedError(f"epilogue op {e.name}")
        if e.dtype in NARROW and e.dtype != self.epilogue.out.layout.dtype:
            raise NotImplementedError("a second narrow dtype")
        return self.let(code), torch.float32


def kernel_source(name: str, cand: Candidate) -> str:
    code, out_dtype = cand.code
    sig = ", ".join(["a_operand_ptr", "b_operand_ptr"] + [f"{p}_ptr" for p in cand.epilogue_params] +
                    ["out_tile_ptr"])
    fp32 = cand.extern.out.layout.dtype == torch.float32
    dot = "tl.dot(a, b, acc, input_precision=\"ieee\")" if fp32 else "tl.dot(a, b, acc)"
    sm, sn = cand.out_strides
    lines = [
        "@triton.jit",
        f"def {name}({sig}, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, BLOCK_M: tl.constexpr, "
        "BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, EVEN_K: tl.constexpr, "
        "UPCAST: tl.constexpr):",
    ] + [f"    # {s}" for s in cand.extern.source + cand.epilogue.source] + [
        "    # tiles in groups of GROUP_M rows, so neighbouring programs share their B columns in L2",
        "    pid = tl.program_id(0)",
        "    grid_m = tl.cdiv(M, BLOCK_M)",
        "    grid_n = tl.cdiv(N, BLOCK_N)",
        "    width = GROUP_M * grid_n",
        "    first_m = (pid // width) * GROUP_M",
        "    group_m = min(grid_m - first_m, GROUP_M)",
        "    pid_m = first_m + (pid % width) % group_m",
        "    pid_n = (pid % width) // group_m",
        "    om = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)",
        "    on = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)",
        "    rm = tl.max_contiguous(tl.multiple_of(om % M, BLOCK_M), BLOCK_M)  # wrapped: loads need no mask",
        "    rn = tl.max_contiguous(tl.multiple_of(on % N, BLOCK_N), BLOCK_N)",
        "    rk = tl.arange(0, BLOCK_K)",
        "    a_ptrs = a_operand_ptr + rm[:, None] * stride_am + rk[None, :] * stride_ak",
        "    b_ptrs = b_operand_ptr + rk[:, None] * stride_bk + rn[None, :] * stride_bn",
        "    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)",
        "    for k in range(0, tl.cdiv(K, BLOCK_K)):",
        "        if EVEN_K:",
        "            a = tl.load(a_ptrs)",
        "            b = tl.load(b_ptrs)",
        "        else:",
        "            a = tl.load(a_ptrs, mask=rk[None, :] < K - k * BLOCK_K, other=0.0)",
        "            b = tl.load(b_ptrs, mask=rk[:, None] < K - k * BLOCK_K, other=0.0)",
        "        if UPCAST:  # Triton's CPU interpreter gets 16-bit dots wrong: there they run in float32",
        "            acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision=\"ieee\")",
        "        else:",
        f"            acc = {dot}",
        "        a_ptrs += BLOCK_K * stride_ak",
        "        b_ptrs += BLOCK_K * stride_bk",
        "    # epilogue, in float32 on the tile: " + ", ".join(ops_in(cand.epilogue.expr)),
    ] + [f"    {line}" for line in cand.epilogue_lines] + [
        "    mask = (om[:, None] < M) & (on[None, :] < N)",
        f"    tl.store(out_tile_ptr + om[:, None] * {sm} + on[None, :] * {sn}, {code}.to({TL[out_dtype]}), mask)",
    ]
    return "\n".join(lines) + "\n"


def sites_wanted(autotune: bool) -> bool:
    """Whether generated modules hold both paths per call site: only when a choice can pick the Triton matmul
    (timing, or FRAMEJIT_TRITON_MM=1). Otherwise the library call and its epilogue kernel are plain code, with no
    per-call dispatch, and the epilogue may write over the product (the planner's in-place outputs)."""
    return autotune or forced()

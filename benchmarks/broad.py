"""Broad benchmark (issue 20): eager vs torch.compile vs framejit (`jit.compile(fn)`, default backend: Triton on
CUDA, NumPy code on the CPU) on 50 subgraphs of real models, one shape each, per dtype in one process.

  python benchmarks/broad.py [--dtypes float32,bfloat16] [--device cuda|cpu] [--quick] [--sizes N=1024,...]
                             [--only NAME,...] [--no-torch-compile] [--check-only] [--backend NAME]
                             [--rounds N] [--budget SECONDS] [--stop-on-mismatch] [--out DIR] [--update-results]
  python benchmarks/broad.py --plot benchmarks/out/broad_h100.json   # the chart again, from a run's JSON

Each workload is one line of WORKLOADS: a name, the function, its inputs (shapes named by the letters of SIZES:
the full sizes on the GPU, tiny ones under --quick), and, where the defaults would be wrong, the bytes it must
move (default: each input read once, each output written once) or its flops (matmul-bound rows: TFLOP/s instead
of GB/s). Per workload and dtype: ours is checked against eager before anything is timed (relative L2 error in
float64 within the dtype's TOLERANCE, integer outputs equal): a mismatch or an error of ours is reported loudly,
its row is not timed, and the run exits 1 (--stop-on-mismatch raises at once). Then eager, torch.compile and ours
take turns in --rounds rounds (CUDA: harness.timed_rounds, triton.testing.do_bench medians; CPU: harness.Suite)
and the medians give the speed-ups over eager, ours' speed relative to torch.compile's and GB/s or TFLOP/s.

Writes broad_<device>.json, .md and .png (speed-up bars, when matplotlib is importable) to benchmarks/out/, or to
benchmarks/results/ with --update-results. Compilers use their on-disk caches as found: "first call" includes
kernel compilation only on a machine that has not run this before."""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks import harness  # noqa: E402 - harness.RESULTS_DIR: benchmarks/out unless --update-results

# ---- sizes: one shape per workload, named by letters; GPU sizes keep the main tensor at ~32-256 MB in fp32 ---------
SIZES = {  # letter: (full, --quick)
    "N": (8192, 64), "C": (4096, 48),  # rows x columns of row-wise ops (8192x4096 fp32: 128 MB)
    "B": (4, 2), "H": (16, 2), "T": (1024, 16), "D": (128, 8), "D2": (64, 4),  # attention, rotary (D2 = D / 2)
    "A": (32, 3), "E": (1024, 16), "F": (4096, 32), "M": (8192, 32),  # A batch of T tokens of width E; MLP: M x E, F
    "L": (2048, 32), "V": (32768, 40),  # losses: L rows of a V-word vocabulary
    "K": (1024, 8),  # entries picked per row (gather, scatter)
    "S": (128, 2), "Q": (64, 32), "P": (56, 14), "P2": (80, 16),  # images: S x Q channels x P x P (pooling: P2)
}


class Make:
    """The inputs of one workload: shapes are tuples of SIZES letters and ints; floating tensors have the run's
    dtype; all are drawn from torch's global generator (seeded per workload) on the run's device."""

    def __init__(self, sizes: dict, dtype: torch.dtype, device: str):
        self.sizes, self.dtype, self.device = sizes, dtype, device

    def shape(self, dims) -> tuple:
        return tuple(self.sizes[d] if isinstance(d, str) else d for d in dims)

    def randn(self, *dims, scale: float = 1.0):
        return (torch.randn(self.shape(dims), device=self.device) * scale).to(self.dtype)

    def weight(self, *dims):
        """A weight scaled by 1/sqrt(fan-in) (every dimension but the first: F.linear's (out, in), conv's
        (out, in, kh, kw)), so that outputs stay O(1) in bf16."""
        return self.randn(*dims, scale=math.prod(self.shape(dims[1:])) ** -0.5)

    def positive(self, *dims):
        return (torch.rand(self.shape(dims), device=self.device) + 0.5).to(self.dtype)

    def index(self, high: str, *dims):
        return torch.randint(0, self.sizes[high], self.shape(dims), device=self.device)

    def labels(self, high: str, *dims, ignored: float = 0.0):
        """Class labels below SIZES[high], a fraction `ignored` of them -100 (cross_entropy's ignore_index)."""
        y = self.index(high, *dims)
        return y.masked_fill(torch.rand(y.shape, device=self.device) < ignored, -100)

    def distinct_index(self, high: str, *dims):
        """Indices below SIZES[high], distinct along the last dimension (scatter writes each place once, so the
        result does not depend on which duplicate lands last)."""
        shape = self.shape(dims)
        return torch.rand(*shape[:-1], self.sizes[high], device=self.device).argsort(-1)[..., :shape[-1]]

    def mask(self, *dims, p: float = 0.5):
        return torch.rand(self.shape(dims), device=self.device) < p

    def causal(self, dim: str):
        n = self.sizes[dim]
        return torch.ones(n, n, dtype=torch.bool, device=self.device).tril()


@dataclass(frozen=True)
class Workload:
    name: str
    fn: Callable
    inputs: Callable[[Make], tuple]
    nbytes: Callable[[tuple, object], int] | None = None  # (inputs, eager's output) -> bytes; None: io_bytes
    flops: Callable[[dict], int] | None = None  # sizes -> flops: a matmul-bound row (TFLOP/s, no GB/s)


def _tensors(out) -> list:
    return [t for t in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(t, torch.Tensor)]


def io_bytes(inputs, out) -> int:
    """The fewest bytes a kernel moves: each input read once, each output written once."""
    return sum(t.nbytes for t in _tensors(inputs) + _tensors(out))


def picked_bytes(inputs, out) -> int:
    """Gathers: the index read, the picked entries read and written once (the rest of the source is not read)."""
    return inputs[1].nbytes + 2 * out.nbytes


# ---- workloads whose function does not fit on its table line ------------------------------------------------------
def attention_causal(q, k, v, causal):
    att = (q @ k.transpose(-2, -1)) * q.size(-1) ** -0.5
    return torch.softmax(att.masked_fill(~causal, float("-inf")), dim=-1) @ v


def attention_padding(q, k, v, keep):
    """HF-style: a (B, 1, 1, T) keep-mask turned into an additive bias of the dtype's most negative value."""
    bias = (1.0 - keep.to(q.dtype)) * torch.finfo(q.dtype).min
    return torch.softmax((q @ k.transpose(-2, -1)) * q.size(-1) ** -0.5 + bias, dim=-1) @ v


def rms_norm(x, w):
    h = x.float()
    return (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w


def residual_rms_norm(x, r, w):
    h = x + r
    return h, rms_norm(h, w)


def swiglu(x, w1, w3, w2):
    return F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2)


def rotary_rotate_half(q, cos, sin):
    """LLaMA / HF form: q (B, T, H, D), cos and sin (T, D); the halves swap through a cat."""
    x1, x2 = q.chunk(2, dim=-1)
    return q * cos[:, None] + torch.cat((-x2, x1), dim=-1) * sin[:, None]


def rotary_interleaved(q, cos, sin):
    """GPT-J / Meta form: pairs (even, odd) rotate, cos and sin (T, D/2), written back through a stack."""
    x = q.unflatten(-1, (-1, 2))
    x1, x2, c, s = x[..., 0], x[..., 1], cos[:, None], sin[:, None]
    return torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)


def conv_bn_relu(x, w, mean, var, g, b):
    return F.batch_norm(F.conv2d(x, w, padding=1), mean, var, g, b, False, 0.0, 1e-5).relu()


_ATT_FLOPS = lambda d: 4 * d["B"] * d["H"] * d["T"] * d["T"] * d["D"]  # noqa: E731 - QK^T and PV
_CONV_FLOPS = lambda d: 2 * d["S"] * d["Q"] * d["Q"] * 9 * d["P"] * d["P"]  # noqa: E731 - 3x3, padding 1
W = Workload
WORKLOADS = [
    # attention
    W("attention causal", attention_causal, lambda t: (*(t.randn("B", "H", "T", "D") for _ in range(3)), t.causal("T")), flops=_ATT_FLOPS),
    W("attention padding bias", attention_padding, lambda t: (*(t.randn("B", "H", "T", "D") for _ in range(3)), t.mask("B", 1, 1, "T", p=0.9)), flops=_ATT_FLOPS),
    W("attention softmax causal", lambda s, causal: torch.softmax((s * 0.125).masked_fill(~causal, float("-inf")), -1), lambda t: (t.randn("B", "H", "T", "T"), t.causal("T"))),
    W("sdpa causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), lambda t: tuple(t.randn("B", "H", "T", "D") for _ in range(3)), flops=lambda d: _ATT_FLOPS(d) // 2),
    # MLPs
    W("mlp linear gelu linear", lambda x, w1, b1, w2, b2: F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2), lambda t: (t.randn("M", "E"), t.weight("F", "E"), t.randn("F"), t.weight("E", "F"), t.randn("E")), flops=lambda d: 4 * d["M"] * d["E"] * d["F"]),
    W("mlp swiglu", swiglu, lambda t: (t.randn("M", "E"), t.weight("F", "E"), t.weight("F", "E"), t.weight("E", "F")), flops=lambda d: 6 * d["M"] * d["E"] * d["F"]),
    # norms
    W("layer_norm", lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b), lambda t: (t.randn("N", "C"), t.randn("C"), t.randn("C"))),
    W("rms_norm (upcast)", rms_norm, lambda t: (t.randn("N", "C"), t.randn("C"))),
    W("F.rms_norm", lambda x, w: F.rms_norm(x, x.shape[-1:], w, 1e-6), lambda t: (t.randn("N", "C"), t.randn("C"))),
    W("batch_norm inference", lambda x, m, v, g, b: F.batch_norm(x, m, v, g, b, False), lambda t: (t.randn("S", "Q", "P", "P"), t.randn("Q", scale=0.1), t.positive("Q"), t.randn("Q"), t.randn("Q"))),
    W("group_norm", lambda x, g, b: F.group_norm(x, 32, g, b), lambda t: (t.randn("S", "Q", "P", "P"), t.randn("Q"), t.randn("Q"))),
    W("batch_norm batch statistics", lambda x, g, b: F.batch_norm(x, None, None, g, b, True), lambda t: (t.randn("S", "Q", "P", "P"), t.randn("Q"), t.randn("Q"))),
    W("instance_norm", lambda x, g, b: F.instance_norm(x, weight=g, bias=b), lambda t: (t.randn("S", "Q", "P", "P"), t.randn("Q"), t.randn("Q"))),
    W("residual + layer_norm", lambda x, r, w, b: (x + r, F.layer_norm(x + r, x.shape[-1:], w, b)), lambda t: (t.randn("N", "C"), t.randn("N", "C"), t.randn("C"), t.randn("C"))),
    W("residual + rms_norm", residual_rms_norm, lambda t: (t.randn("N", "C"), t.randn("N", "C"), t.randn("C"))),
    # losses
    W("cross_entropy", lambda x, y: F.cross_entropy(x, y), lambda t: (t.randn("L", "V"), t.labels("V", "L"))),
    W("cross_entropy ignore_index", lambda x, y: F.cross_entropy(x, y, ignore_index=-100), lambda t: (t.randn("L", "V"), t.labels("V", "L", ignored=0.2))),
    W("cross_entropy label_smoothing", lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1), lambda t: (t.randn("L", "V"), t.labels("V", "L"))),
    W("nll_loss(log_softmax)", lambda x, y: F.nll_loss(F.log_softmax(x, -1), y), lambda t: (t.randn("L", "V"), t.labels("V", "L"))),
    W("logsumexp", lambda x: torch.logsumexp(x, -1), lambda t: (t.randn("N", "C"),)),
    # embeddings
    W("embedding + positions", lambda tok, wte, wpe: F.embedding(tok, wte) + wpe, lambda t: (t.index("V", "A", "T"), t.randn("V", "E"), t.randn("T", "E")), nbytes=lambda i, o: i[0].nbytes + i[2].nbytes + 2 * o.nbytes),
    # softmax
    W("softmax", lambda x: torch.softmax(x, -1), lambda t: (t.randn("N", "C"),)),
    W("log_softmax", lambda x: F.log_softmax(x, -1), lambda t: (t.randn("N", "C"),)),
    # reductions
    W("sum last dim", lambda x: x.sum(-1), lambda t: (t.randn("N", "C"),)),
    W("sum dim 0 (column sums)", lambda x: x.sum(0), lambda t: (t.randn("N", "C"),)),
    W("sum middle dim", lambda x: x.sum(1), lambda t: (t.randn("A", "T", "E"),)),
    W("mean, var over (0, 2, 3)", lambda x: (x.mean((0, 2, 3)), x.var((0, 2, 3))), lambda t: (t.randn("S", "Q", "P", "P"),)),
    W("max with indices", lambda x: torch.max(x, -1), lambda t: (t.randn("N", "C"),)),
    W("argmax dim 0", lambda x: x.argmax(0), lambda t: (t.randn("N", "C"),)),
    W("cumsum", lambda x: x.cumsum(-1), lambda t: (t.randn("N", "C"),)),
    W("position ids (mask prefix sum)", lambda m: m.long().cumsum(-1) - 1, lambda t: (t.mask("N", "C", p=0.9),)),
    # indexing
    W("gather", lambda x, i: torch.gather(x, 1, i), lambda t: (t.randn("N", "C"), t.index("C", "N", "K")), nbytes=picked_bytes),
    W("scatter", lambda x, i, src: x.scatter(1, i, src), lambda t: (t.randn("N", "C"), t.distinct_index("C", "N", "K"), t.randn("N", "K"))),
    W("index_select rows", lambda x, i: x.index_select(0, i), lambda t: (t.randn("N", "C"), t.index("N", "N")), nbytes=picked_bytes),
    W("x[idx] rows", lambda x, i: x[i], lambda t: (t.randn("N", "C"), t.index("N", "N")), nbytes=picked_bytes),
    # pooling
    W("max_pool2d 3x3 s2", lambda x: F.max_pool2d(x, 3, 2, 1), lambda t: (t.randn("S", "Q", "P2", "P2"),)),
    W("adaptive_avg_pool2d 7x7", lambda x: F.adaptive_avg_pool2d(x, 7), lambda t: (t.randn("S", "Q", "P", "P"),)),
    W("global avg pool + flatten", lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1), lambda t: (t.randn("S", "Q", "P", "P"),)),
    # convolution epilogues
    W("conv2d + bias + relu", lambda x, w, b: F.conv2d(x, w, b, padding=1).relu(), lambda t: (t.randn("S", "Q", "P", "P"), t.weight("Q", "Q", 3, 3), t.randn("Q")), flops=_CONV_FLOPS),
    W("conv2d + batch_norm + relu", conv_bn_relu, lambda t: (t.randn("S", "Q", "P", "P"), t.weight("Q", "Q", 3, 3), t.randn("Q", scale=0.1), t.positive("Q"), t.randn("Q"), t.randn("Q")), flops=_CONV_FLOPS),
    # rotary embeddings
    W("rotary rotate-half (cat)", rotary_rotate_half, lambda t: (t.randn(8, "T", "H", "D"), t.randn("T", "D"), t.randn("T", "D"))),
    W("rotary interleaved (stack)", rotary_interleaved, lambda t: (t.randn(8, "T", "H", "D"), t.randn("T", "D2"), t.randn("T", "D2"))),
    # pointwise
    W("where", lambda c, x, y: torch.where(c, x, y), lambda t: (t.mask("N", "C"), t.randn("N", "C"), t.randn("N", "C"))),
    W("masked_fill rows + scale", lambda x, pad: x.masked_fill(pad, 0.0) * 1.25, lambda t: (t.randn("N", "C"), t.mask("N", 1, p=0.1))),
    W("clamp / pow chain", lambda x, y: (x.clamp(-2.0, 2.0).pow(2) + y.abs().pow(1.5)).sqrt() * y.clamp(min=0.0), lambda t: (t.randn("N", "C"), t.randn("N", "C"))),
    W("transpose + add", lambda x, y: x.t() + y, lambda t: (t.randn("N", "C"), t.randn("C", "N"))),
    W("permute heads + scale", lambda x: (x.permute(0, 2, 1, 3) * 0.125).contiguous(), lambda t: (t.randn(8, "T", "H", "D"),)),
    W("gelu(x) * y (GeGLU)", lambda x, y: F.gelu(x) * y, lambda t: (t.randn("N", "C"), t.randn("N", "C"))),
    W("silu(x) * y (SwiGLU)", lambda x, y: F.silu(x) * y, lambda t: (t.randn("N", "C"), t.randn("N", "C"))),
    W("bias + gelu tanh", lambda x, b: F.gelu(x + b, approximate="tanh"), lambda t: (t.randn("N", "C"), t.randn("C"))),
]
# relative L2 error (float64) allowed against eager: both round to the dtype, in different orders
TOLERANCE = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 2e-2}


DTYPES = "float32,bfloat16"
SKIPPED = "skipped: --budget spent"


class Mismatch(AssertionError):
    """Ours returned something other than eager: the row is wrong, so it is not timed."""


def check(got, ref, dtype: torch.dtype, exact=None) -> float:
    """The worst relative error of `got` against eager's `ref`; Mismatch unless every output has eager's type,
    shape and dtype, floating outputs are within TOLERANCE[dtype] and the others are equal. `exact()`, where
    given: the outputs computed in float64 from the same inputs. An output beyond the tolerance passes when it
    is at least as close to those as eager's own (eager's bfloat16 cumsum rounds every partial sum to bfloat16:
    0.027 from the float64 sums at 8192x4096, where ours and torch.compile's, summed in float32, are 0.0023)."""
    got_l = list(got) if isinstance(got, (tuple, list)) else [got]
    ref_l = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    if len(got_l) != len(ref_l):
        raise Mismatch(f"{len(got_l)} outputs, eager returned {len(ref_l)}")
    worst = 0.0
    for i, (g, r) in enumerate(zip(got_l, ref_l)):
        if not isinstance(g, torch.Tensor) or g.shape != r.shape or g.dtype != r.dtype:
            what = f"{g.dtype} {tuple(g.shape)}" if isinstance(g, torch.Tensor) else type(g).__name__
            raise Mismatch(f"output {i}: {what}, eager {r.dtype} {tuple(r.shape)}")
        if r.is_floating_point():
            if not torch.equal(torch.isnan(g), torch.isnan(r)) or not torch.equal(g[r.isinf()], r[r.isinf()]):
                raise Mismatch(f"output {i}: NaN or inf where eager has none or another")
            err = harness.rel_error(g, r)
            if not err <= TOLERANCE[dtype] and exact is not None:
                truth = (list(exact()) if isinstance(ref, (tuple, list)) else [exact()])[i]
                ours, eager = harness.rel_error(g, truth), harness.rel_error(r, truth)
                if ours <= max(TOLERANCE[dtype], eager):
                    err = ours  # as near the float64 result as eager is: eager's own rounding is the gap
            if not err <= TOLERANCE[dtype]:  # NaN fails too
                raise Mismatch(f"output {i}: relative error {err:.3g} > {TOLERANCE[dtype]:g}")
            worst = max(worst, err)
        elif not torch.equal(g, r):
            raise Mismatch(f"output {i}: {int((g != r).sum())} of {r.numel()} entries differ")
    return worst


# ---- one row ------------------------------------------------------------------------------------------------------
@dataclass
class Options:
    device: str
    sizes: dict
    rounds: int = 5
    rep_ms: int = 20  # CUDA: do_bench's time per measurement
    cpu_calls: int = 10  # CPU: calls per round
    torch_compile: bool = True
    ours: Callable = None  # fn -> compiled fn; None: jit.compile
    stop_on_mismatch: bool = False
    check_only: bool = False  # compile and cross-check, time nothing


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def first_call(fn, inputs, device):
    _sync(device)
    t0 = time.perf_counter()
    out = fn(*inputs)
    _sync(device)
    return out, time.perf_counter() - t0


def _time(calls: dict, inputs, opts: Options) -> tuple[dict, dict]:
    """Median ms per call of each variant, and per-round times where the device gives them (CUDA)."""
    if opts.device == "cuda":
        per_round = harness.timed_rounds(calls, inputs, opts.rounds, opts.rep_ms)
        return {k: statistics.median(v) for k, v in per_round.items()}, per_round
    suite = harness.Suite("broad")
    for name, f in calls.items():
        suite.add(name, lambda f=f: f(*inputs))
    results = suite.run(calls_per_round=opts.cpu_calls, rounds=opts.rounds, warmup=2)
    return {r.name: r.ns_per_call / 1e6 for r in results}, {}


class BackendLog(logging.Handler):
    """The backend's decisions (the "inductor" log: kernels, torch fallbacks and why) during a block, captured
    without printing them: `with BackendLog() as log: ...`, then log.lines."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self._logger = logging.getLogger("jit.inductor")

    def emit(self, record):
        self.lines.append(record.getMessage()[:300])

    def __enter__(self):
        self._level = self._logger.level
        self._logger.addHandler(self)
        if not self._logger.isEnabledFor(logging.INFO):
            self._logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)

    def torch_note(self) -> str:
        """The first line saying that something runs in torch (a fallback, a whole graph), shortened."""
        line = next((m for m in self.lines if "torch" in m), "")
        return line if len(line) <= 90 else line[:87] + "..."


def _graphs_note(before: dict, after: dict) -> str:
    d = {k: after[k] - before[k] for k in before}
    parts = [f"{d['graphs']} graph" + ("s" if d["graphs"] != 1 else "")]
    parts += [f"{d[k]} {k.replace('_', ' ')}" for k in ("graph_breaks", "frames_run_eagerly", "compile_errors") if d[k]]
    return ", ".join(parts)


def measure(w: Workload, dtype: torch.dtype, opts: Options) -> dict:
    import jit
    row = {"workload": w.name, "dtype": str(dtype).replace("torch.", "")}
    torch.manual_seed(0)
    inputs = w.inputs(Make(opts.sizes, dtype, opts.device))
    row["shapes"] = " ".join("x".join(map(str, t.shape)) or "scalar" for t in _tensors(inputs))
    with torch.no_grad():
        ref = w.fn(*inputs)
        ours = (opts.ours or jit.compile)(w.fn)
        before = dict(jit.counters)
        try:
            with BackendLog() as log:
                out_o, row["first_ours_s"] = first_call(ours, inputs, opts.device)
            row["graphs"] = _graphs_note(before, dict(jit.counters))
            row["backend_log"], row["torch_note"] = log.lines, log.torch_note()
            wide = lambda: w.fn(*[t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t  # noqa: E731
                                  for t in inputs])
            row["err_ours"] = check(out_o, ref, dtype, wide)
        except Exception as e:  # a wrong answer or an error of ours: the row says which, loudly, and is not timed
            row["status"] = f"{'MISMATCH' if isinstance(e, Mismatch) else 'ERROR'}: {type(e).__name__}: {e}"
            print(f"!!! {w.name} {row['dtype']}: {row['status']}", file=sys.stderr, flush=True)
            if opts.stop_on_mismatch:
                raise
            return row
        if opts.check_only:
            return row
        calls = {"eager_ms": w.fn, "ours_ms": ours}
        if opts.torch_compile:
            theirs = torch.compile(w.fn)
            try:
                out_t, row["first_torch_s"] = first_call(theirs, inputs, opts.device)
                row["err_torch"] = harness.rel_error(out_t, ref)  # reported, not checked: the baseline
                del out_t
                calls = {"eager_ms": w.fn, "torch_ms": theirs, "ours_ms": ours}
            except Exception as e:  # the baseline's failure is reported, ours is still measured
                row["torch_error"] = f"{type(e).__name__}: {e}"[:200]
        del out_o, ref
        medians, per_round = _time(calls, inputs, opts)
        row.update(medians)
        if "torch_ms" in per_round:
            row["rounds_ahead"] = sum(o <= t for o, t in zip(per_round["ours_ms"], per_round["torch_ms"]))
            row["rounds"] = len(per_round["ours_ms"])
    variants = [v for v in ("eager", "torch", "ours") if f"{v}_ms" in row]
    row["speedup_ours"] = row["eager_ms"] / row["ours_ms"]
    if "torch_ms" in row:
        row["speedup_torch"] = row["eager_ms"] / row["torch_ms"]
        row["ours_vs_torch"] = row["torch_ms"] / row["ours_ms"]
    if w.flops:
        for v in variants:
            row[f"{v}_TFLOPs"] = w.flops(opts.sizes) / row[f"{v}_ms"] / 1e9
    else:
        nbytes = (w.nbytes or io_bytes)(inputs, w.fn(*inputs))
        row["MB"] = nbytes / 1e6
        for v in variants:
            row[f"{v}_GBs"] = nbytes / row[f"{v}_ms"] / 1e6
    return row


def warm_up(opts: Options) -> None:
    """Compile and run an unrelated function with each compiler, so that the first row's first calls do not
    include one-time imports and start-ups (torch.compile's worker pool, the Triton runtime)."""
    import jit
    x = torch.ones(8, device=opts.device)
    jit.compile(lambda x: x * 2 + 1)(x)
    if opts.torch_compile:
        torch.compile(lambda x: x * 2 + 1)(x)
    _sync(opts.device)
    jit.reset()


def run(workloads, dtypes, opts: Options, budget: float = float("inf")) -> list[dict]:
    import jit
    warm_up(opts)
    start, rows = time.perf_counter(), []
    print(HEAD, flush=True)
    for dtype in dtypes:
        for w in workloads:
            if time.perf_counter() - start > budget:
                row = {"workload": w.name, "dtype": str(dtype).replace("torch.", ""), "status": SKIPPED}
            else:
                row = measure(w, dtype, opts)
            jit.reset()  # the next workload compiles from empty: entries and memory do not pile up
            if opts.device == "cuda":
                torch.cuda.empty_cache()
            rows.append(row)
            print(line(row), flush=True)
    return rows


# ---- the table ----------------------------------------------------------------------------------------------------
HEAD = ("| workload | dtype | eager ms | torch.compile ms | ours ms | torch.compile vs eager | ours vs eager "
        "| ours / torch.compile (speed; rounds ahead) | GB/s or TFLOP/s: ours / tc / eager | rel. error ours / tc "
        "| first call s: ours / tc | ours graphs | backend note (its first line naming torch) |\n" + "| --- " * 13 + "|")


def _fmt(r, key, spec, suffix=""):
    return format(r[key], spec) + suffix if key in r else "-"


def _rate(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.2f}"


def line(r) -> str:
    if "status" in r:
        return f"| {r['workload']} | {r['dtype']} | **{r['status']}** |" + " |" * 10
    unit = "TFLOPs" if "ours_TFLOPs" in r else "GBs"
    rate = " / ".join(_rate(r[f"{v}_{unit}"]) if f"{v}_{unit}" in r else "-" for v in ("ours", "torch", "eager")) + \
        (" TFLOP/s" if unit == "TFLOPs" else " GB/s") if "eager_ms" in r else "-"
    ahead = f" ({r['rounds_ahead']}/{r['rounds']})" if "rounds" in r else ""
    ratio = f"{r['ours_vs_torch']:.3f}{ahead}" if "ours_vs_torch" in r else r.get("torch_error", "-")
    return (f"| {r['workload']} | {r['dtype']} | {_fmt(r, 'eager_ms', '.3f')} | {_fmt(r, 'torch_ms', '.3f')} | "
            f"{_fmt(r, 'ours_ms', '.3f')} | {_fmt(r, 'speedup_torch', '.2f', 'x')} | {_fmt(r, 'speedup_ours', '.2f', 'x')} "
            f"| {ratio} | {rate} | "
            f"{r['err_ours']:.1e} / {_fmt(r, 'err_torch', '.1e')} | "
            f"{r['first_ours_s']:.2f} / {_fmt(r, 'first_torch_s', '.2f')} | {r['graphs']} | {r['torch_note']} |")


def geomean(xs) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def geomean_lines(rows) -> list[str]:
    """One table row per dtype: geomean speed-ups over the rows measured with every variant."""
    out = []
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        ok = [r for r in rows if r["dtype"] == dtype and "speedup_ours" in r]
        if not ok:
            continue
        both = [r for r in ok if "ours_vs_torch" in r]
        tc = f"{geomean([r['speedup_torch'] for r in both]):.2f}x" if both else "-"
        ratio = f"{geomean([r['ours_vs_torch'] for r in both]):.3f} ({len(both)} rows)" if both else "-"
        out.append(f"| **geomean** | {dtype} | | | | {tc} | {geomean([r['speedup_ours'] for r in ok]):.2f}x | "
                   f"{ratio} | | | | | |")
    return out


def failures(rows) -> list[str]:
    """The rows where ours differs from eager or failed (not those the budget skipped)."""
    return [f"{r['workload']} {r['dtype']}: {r['status']}" for r in rows if r.get("status", SKIPPED) != SKIPPED]


def environment(device: str) -> dict:
    env = harness.environment()
    if device == "cuda":
        env.update(cuda=torch.version.cuda, tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
                   tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return env


def file_tag(device: str, quick: bool, dtypes: str) -> str:
    """broad_<tag>.*: the device (h100, h200, cpu), then _quick, then the dtypes unless both default ones ran
    (a second run of one dtype does not overwrite the table of both)."""
    tag = harness.gpu_tag(torch.cuda.get_device_name()) if device == "cuda" else device
    return tag + ("_quick" if quick else "") + ("" if dtypes == DTYPES else "_" + dtypes.replace(",", "_"))


def chart(rows, path: str, ours_label: str) -> bool:
    charted = [r for r in rows if "ours_vs_torch" in r]
    return bool(charted) and harness.speedup_chart(charted, path, ours_label=ours_label, inch_per_row=0.3, log=True)


def write(rows, env, sizes, out_dir: str, tag: str, ours_label: str) -> str:
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"broad_{tag}")
    with open(base + ".json", "w") as f:
        json.dump({"environment": env, "sizes": sizes, "rows": rows, "failures": failures(rows)}, f, indent=1)
    body = [HEAD] + [line(r) for r in rows] + geomean_lines(rows)
    fails = failures(rows)
    md = [f"# Broad benchmark ({tag})", "", f"environment: {env}", "", f"sizes: {sizes}", "", *body, ""] + \
        (["**ours differs from eager or failed:**", *(f"- {f}" for f in fails), ""] if fails else [])
    with open(base + ".md", "w") as f:
        f.write("\n".join(md))
    drew = chart(rows, base + ".png", ours_label)
    print("\n".join(geomean_lines(rows)))
    print(f"wrote {base}.json/.md" + (" and .png" if drew else " (no PNG: no matplotlib or no torch.compile rows)"))
    return base


def main(argv=None) -> int:
    import jit
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtypes", default=DTYPES)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="tiny sizes (the second column of SIZES)")
    p.add_argument("--sizes", default="", help="overrides of SIZES letters, e.g. N=2048,C=1024")
    p.add_argument("--only", default="", help="comma-separated substrings of workload names")
    p.add_argument("--no-torch-compile", action="store_true", help="eager and ours only (torch.compile is slow on CPU)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rep-ms", type=int, default=20, help="CUDA: milliseconds per do_bench measurement")
    p.add_argument("--budget", type=float, default=480, help="seconds; workloads after it are skipped")
    p.add_argument("--check-only", action="store_true", help="compile and cross-check ours, time nothing")
    p.add_argument("--backend", default=None, help="ours' jit backend (default: jit.compile's default); "
                   "e.g. TRITON_INTERPRET=1 ... --device cpu --quick --check-only --backend triton checks the GPU "
                   "code on the CPU")
    p.add_argument("--stop-on-mismatch", action="store_true", help="raise at the first wrong answer of ours")
    p.add_argument("--out", default=harness.RESULTS_DIR)
    p.add_argument("--list", action="store_true", help="print the workload names and exit")
    p.add_argument("--plot", default="", help="draw the chart of a broad_*.json written before (beside it)")
    a = p.parse_args(argv)
    if a.plot:
        data = json.load(open(a.plot))
        label = "framejit (Triton)" if "gpu" in data["environment"] else "framejit (NumPy code)"
        return 0 if chart(data["rows"], a.plot.removesuffix(".json") + ".png", label) else 1
    if a.list:
        print("\n".join(w.name for w in WORKLOADS))
        return 0
    only = [o for o in a.only.split(",") if o]
    workloads = [w for w in WORKLOADS if not only or any(o in w.name for o in only)]
    sizes = {k: v[1 if a.quick else 0] for k, v in SIZES.items()}
    for item in filter(None, a.sizes.split(",")):
        letter, value = item.split("=")
        if letter not in sizes:
            p.error(f"--sizes: no size {letter!r} (SIZES has {', '.join(SIZES)})")
        sizes[letter] = int(value)
    opts = Options(a.device, sizes, rounds=a.rounds, rep_ms=a.rep_ms, torch_compile=not (a.no_torch_compile or a.check_only),
                   stop_on_mismatch=a.stop_on_mismatch, check_only=a.check_only,
                   ours=(lambda fn: jit.compile(fn, backend=a.backend)) if a.backend else None)
    t0 = time.perf_counter()
    rows = run(workloads, [getattr(torch, d) for d in a.dtypes.split(",")], opts, a.budget)
    print(f"measured {len(rows)} rows in {time.perf_counter() - t0:.0f} s")
    write(rows, environment(a.device), sizes, a.out, file_tag(a.device, a.quick, a.dtypes),
          "framejit (Triton)" if a.device == "cuda" else "framejit (NumPy code)")
    fails = failures(rows)
    if fails:
        print("\n!!! ours differs from eager or failed in:\n" + "\n".join(fails), file=sys.stderr)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())

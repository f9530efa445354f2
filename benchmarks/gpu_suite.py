"""GPU suite (issue 7): eager vs torch.compile vs framejit (jit.compile, default backend = Triton for CUDA).

  python benchmarks/gpu_suite.py [--dtypes float32,bfloat16] [--out DIR] [--budget SECONDS] [--only NAME,...]

Per workload and dtype: correctness (relative L2 error of each compiled variant against eager in float64),
median time (triton.testing.do_bench: CUDA events, L2 flushed between runs; the three take turns in seven
rounds, `timed_rounds`), speed-up over eager, ratio to torch.compile (and in how many rounds ours took no longer
than torch.compile's), GB/s for the memory-bound ones (the fewest bytes: each input read once, each output
written once), and the first call of each compiled variant (capture + code generation + kernel compilation;
both compilers start from empty on-disk caches in a fresh temporary directory).

Writes gpu-suite-<dtype list>.json and .md (device name and library versions included) and a PNG bar chart of
the speed-ups when matplotlib is importable (else draw it later with --plot FILE.json)."""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_TMP = tempfile.mkdtemp(prefix="gpu-suite-")
os.environ.setdefault("FRAMEJIT_CACHE_DIR", os.path.join(_TMP, "framejit"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(_TMP, "inductor"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.harness import RESULTS_DIR as RESULTS  # noqa: E402 - benchmarks/out unless --update-results
from benchmarks.harness import gpu_tag, rel_error, speedup_chart as plot, timed_rounds  # noqa: E402,F401 - shared


# ---- workloads: (name, build(dtype) -> (fn, inputs, bytes moved or None, flops or None)) -----------------------
def pointwise_chain(x, y):
    return torch.tanh(x * 1.5 + y) * torch.sigmoid(y) - x * 0.5


def layernorm_manual(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) * torch.rsqrt(var + 1e-5) * w + b


def softmax_manual(x):
    e = torch.exp(x - x.amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def rmsnorm_residual(x, r, w):
    h = x + r
    return h * torch.rsqrt(h.float().pow(2).mean(-1, keepdim=True) + 1e-6).to(h.dtype) * w, h


def gelu_linear(x, w, b):
    return F.gelu(x @ w + b)


def naive_attention(q, k, v, mask):
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
    att = att.masked_fill(~mask, float("-inf"))
    return torch.softmax(att, dim=-1) @ v


def _randn(*shape, dtype, scale=1.0):
    return (torch.randn(*shape, device="cuda", dtype=torch.float32) * scale).to(dtype)


def build(name: str, dtype: torch.dtype):
    it = torch.empty((), dtype=dtype).element_size()
    if name == "pointwise chain 64M":
        n = 64 * 1024 * 1024
        return pointwise_chain, [_randn(n, dtype=dtype), _randn(n, dtype=dtype)], 3 * n * it, None
    if name == "layernorm 32768x4096":
        r, c = 32768, 4096
        return layernorm_manual, [_randn(r, c, dtype=dtype), _randn(c, dtype=dtype), _randn(c, dtype=dtype)], \
            2 * r * c * it, None
    if name == "softmax 16384x8192":
        r, c = 16384, 8192
        return softmax_manual, [_randn(r, c, dtype=dtype)], 2 * r * c * it, None
    if name == "rmsnorm+residual 32768x4096":
        r, c = 32768, 4096
        return rmsnorm_residual, [_randn(r, c, dtype=dtype), _randn(r, c, dtype=dtype), _randn(c, dtype=dtype)], \
            4 * r * c * it, None
    if name == "gelu(x@w+b) 8192x4096x4096":
        m = k = n = 4096
        m = 8192
        return gelu_linear, [_randn(m, k, dtype=dtype), _randn(k, n, dtype=dtype, scale=k ** -0.5),
                             _randn(n, dtype=dtype)], None, 2 * m * n * k
    if name == "naive causal attention 16x12x1024x64":
        b, h, t, d = 16, 12, 1024, 64
        mask = torch.tril(torch.ones(t, t, dtype=torch.bool, device="cuda"))
        return naive_attention, [_randn(b, h, t, d, dtype=dtype) for _ in range(3)] + [mask], None, \
            4 * b * h * t * t * d
    from benchmarks.models.gpt import GPT, GPTConfig, gpt_block, gpt2_block_config
    if name == "GPT-2 block B16 T1024 C768":
        block = gpt_block(gpt2_block_config()).to("cuda", dtype).eval()
        return block, [_randn(16, 1024, 768, dtype=dtype)], None, None
    if name == "GPT 4 layers B8 T1024 C768":
        cfg = GPTConfig(vocab_size=50304, block_size=1024, n_layer=4, n_head=12, n_embd=768)
        model = GPT(cfg).to("cuda", dtype).eval()
        return model, [torch.randint(0, cfg.vocab_size, (8, 1024), device="cuda")], None, None
    raise KeyError(name)


WORKLOADS = ["pointwise chain 64M", "layernorm 32768x4096", "softmax 16384x8192", "rmsnorm+residual 32768x4096",
             "gelu(x@w+b) 8192x4096x4096", "naive causal attention 16x12x1024x64", "GPT-2 block B16 T1024 C768",
             "GPT 4 layers B8 T1024 C768"]


# ---- measurement -------------------------------------------------------------------------------------------------
def first_call(fn, inputs):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*inputs)
    torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def interleaved(calls: dict, args=(), rounds: int = 7, rep_ms: int = 30) -> dict:
    """Median over rounds of each call's time in ms (`timed_rounds`)."""
    return {name: statistics.median(t) for name, t in timed_rounds(calls, args, rounds, rep_ms).items()}


def run(dtypes, only, budget):
    import jit
    start = time.perf_counter()
    rows = []
    for dtype in dtypes:
        for name in WORKLOADS:
            if only and not any(o in name for o in only):
                continue
            if time.perf_counter() - start > budget:
                print(f"budget spent: skipping {name} {dtype}", flush=True)
                continue
            torch.manual_seed(0)
            fn, inputs, nbytes, flops = build(name, dtype)
            row = {"workload": name, "dtype": str(dtype).replace("torch.", "")}
            with torch.no_grad():
                ref = fn(*inputs)
                ours = jit.compile(fn)
                theirs = torch.compile(fn)
                out_o, row["compile_ours_s"] = first_call(ours, inputs)
                out_t, row["compile_torch_s"] = first_call(theirs, inputs)
                row["err_ours"], row["err_torch"] = rel_error(out_o, ref), rel_error(out_t, ref)
                del out_o, out_t, ref
                times = timed_rounds({"eager_ms": fn, "torch_ms": theirs, "ours_ms": ours}, inputs)
                row.update({k: statistics.median(t) for k, t in times.items()})
                row["rounds_ahead"] = sum(o <= t for o, t in zip(times["ours_ms"], times["torch_ms"]))
                row["rounds"] = len(times["ours_ms"])
            row["speedup_ours"] = row["eager_ms"] / row["ours_ms"]
            row["speedup_torch"] = row["eager_ms"] / row["torch_ms"]
            row["ours_vs_torch"] = row["torch_ms"] / row["ours_ms"]
            if nbytes:
                for v in ("eager", "torch", "ours"):
                    row[f"{v}_GBs"] = nbytes / row[f"{v}_ms"] / 1e6
            if flops:
                row["ours_TFLOPs"] = flops / row["ours_ms"] / 1e9
            rows.append(row)
            print(_line(row), flush=True)
            del fn, inputs, ours, theirs
            torch.cuda.empty_cache()
    return rows


def _line(r) -> str:
    gbs = f"{r['ours_GBs']:.0f} / {r['torch_GBs']:.0f} / {r['eager_GBs']:.0f}" if "ours_GBs" in r else "-"
    return (f"| {r['workload']} | {r['dtype']} | {r['err_ours']:.1e} / {r['err_torch']:.1e} | {r['eager_ms']:.3f} | "
            f"{r['torch_ms']:.3f} | {r['ours_ms']:.3f} | {r['speedup_ours']:.2f}x | {r['speedup_torch']:.2f}x | "
            f"{r['ours_vs_torch']:.3f} ({_ahead(r)}) | {gbs} | "
            f"{r['compile_ours_s']:.2f} / {r['compile_torch_s']:.2f} |")


def _ahead(r) -> str:
    """In how many rounds ours took no longer than torch.compile's (rows measured before this was kept: '-')."""
    return f"{r['rounds_ahead']}/{r['rounds']}" if "rounds" in r else "-"


HEAD = ("| workload | dtype | rel. error ours / torch.compile | eager ms | torch.compile ms | ours ms | ours vs eager "
        "| torch.compile vs eager | ours / torch.compile (speed; rounds ours ahead) | GB/s ours / tc / eager "
        "| first call s ours / tc |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def summary(rows) -> str:
    if not rows:
        return ""
    geo = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs))
    lines = [f"geomean speed-up over eager: ours {geo([r['speedup_ours'] for r in rows]):.3f}x, torch.compile "
             f"{geo([r['speedup_torch'] for r in rows]):.3f}x; ours / torch.compile speed "
             f"{geo([r['ours_vs_torch'] for r in rows]):.3f}",
             f"first-call compile, geomean ours / torch.compile: "
             f"{geo([r['compile_ours_s'] / r['compile_torch_s'] for r in rows]):.3f}"]
    mem = [r for r in rows if "ours_GBs" in r and r["dtype"] == "float32"]
    if mem:
        lines.append("fp32 memory-bound GB/s ours: " + ", ".join(f"{r['workload']} {r['ours_GBs']:.0f}" for r in mem))
    # slower: behind in every round (a sign test: 1/128 by chance over 7 rounds of equal speed); behind in the
    # median but ahead in some round: a difference the run-to-run spread does not resolve
    bf16 = [r for r in rows if r["dtype"] == "bfloat16" and r["ours_vs_torch"] < 1]
    slow = [r["workload"] for r in bf16 if r.get("rounds_ahead", 0) == 0]
    even = [f"{r['workload']} ({r['ours_vs_torch']:.3f}, ahead in {_ahead(r)})" for r in bf16 if r.get("rounds_ahead")]
    lines.append("bf16 slower than torch.compile (in every round): " + (", ".join(slow) if slow else "none"))
    lines.append("bf16 behind in the median, ahead in some rounds: " + (", ".join(even) if even else "none"))
    return "\n".join(lines)


def environment() -> dict:
    import platform
    import numpy
    import triton
    return {"gpu": torch.cuda.get_device_name(), "python": platform.python_version(), "torch": torch.__version__,
            "triton": triton.__version__, "numpy": numpy.__version__, "cuda": torch.version.cuda,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32}


def write(rows, env, out_dir, tag):
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"gpu-suite-{tag}")
    with open(base + ".json", "w") as f:
        json.dump({"environment": env, "rows": rows}, f, indent=1)
    md = [f"# GPU suite ({tag})", "", f"environment: {env}", "", HEAD] + [_line(r) for r in rows] + \
        ["", summary(rows), ""]
    with open(base + ".md", "w") as f:
        f.write("\n".join(md))
    drew = plot(rows, base + ".png")
    print("\n".join(md))
    print(f"wrote {base}.json/.md" + (" and .png" if drew else " (no matplotlib: no PNG)"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--out", default=RESULTS)
    p.add_argument("--budget", type=float, default=480)
    p.add_argument("--only", default="")
    p.add_argument("--plot", default="")
    a = p.parse_args()
    if a.plot:
        data = json.load(open(a.plot))
        print(plot(data["rows"], a.plot.replace(".json", ".png")))
        return
    dtypes = [getattr(torch, d) for d in a.dtypes.split(",")]
    print(HEAD, flush=True)
    rows = run(dtypes, [o for o in a.only.split(",") if o], a.budget)
    write(rows, environment(), a.out, gpu_tag(torch.cuda.get_device_name()))


if __name__ == "__main__":
    main()

"""Reductions along any dim, and cat / stack writes, on the GPU: eager vs torch.compile vs framejit, in GB/s.

  python benchmarks/gpu_reductions.py [--dtypes float32,bfloat16] [--only NAME,...] [--out DIR]
  python benchmarks/gpu_reductions.py --dry-run   # CPU: small sizes in Triton's interpreter, results checked only

Workloads (issue 20 items 2 and 3):
  * column reductions of a row-major matrix, x.sum(0) at several shapes (many columns; few columns over many rows,
    where framejit splits the rows into chunks: inductor/triton/split.py), and mean / amax / var down columns;
  * middle-dim reductions x.sum(1) / x.var(1) of a (B, T, C) tensor; a full reduction x.sum();
  * fusions around a column sum: (x * y).sum(0), x.sum(0) + b;
  * a row sum x.sum(-1) as the control (the layout framejit always had);
  * batch-norm statistics ("bn": x.mean((0, 2, 3)) / x.var((0, 2, 3)) of NCHW tensors, few rows over many
    elements: split into chunks of H*W runs, the variance from chunk statistics in the same pass); average pools
    whose windows tile the plane; argmax / argmin down columns and along long rows, max with indices;
  * rotary embeddings in both forms on a (B, H, T, D) tensor with (T, D) tables: rotate-half
    `x * cos + cat((-x2, x1), -1) * sin` and interleaved `stack((a*cos - b*sin, a*sin + b*cos), -1).flatten(-2)`
    with a = x[..., ::2], b = x[..., 1::2].
Per variant: median ms (triton.testing.do_bench: CUDA events, L2 flushed) and GB/s counting each input read once
and the output written once (the copy limit is ~3 TB/s on the H100). Every variant is checked against eager first;
the framejit kernels' launch shapes are printed (outer_* = down columns, +split = partial results). Writes
out/gpu-reductions-<gpu>.json and .md (results/ with --update-results)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TMP = tempfile.mkdtemp(prefix="gpu-reductions-")
os.environ.setdefault("FRAMEJIT_CACHE_DIR", os.path.join(_TMP, "framejit"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(_TMP, "inductor"))

from benchmarks.harness import RESULTS_DIR, Result, Suite, environment, markdown  # noqa: E402

torch = None  # imported by main(), after --dry-run has set TRITON_INTERPRET (the workloads read this global)


def col_sum(x):
    return x.sum(0)


def col_mean(x):
    return x.mean(0)


def col_amax(x):
    return x.amax(0)


def col_var(x):
    return x.var(0)


def mid_sum(x):
    return x.sum(1)


def mid_var(x):
    return x.var(1)


def full_sum(x):
    return x.sum()


def row_sum(x):
    return x.sum(-1)


def mul_col_sum(x, y):
    return (x * y).sum(0)


def col_sum_bias(x, b):
    return x.sum(0) + b


def bn_mean(x):
    return x.mean((0, 2, 3))


def bn_var(x):
    return x.var((0, 2, 3))


def bn_mean_var(x):
    return x.mean((0, 2, 3)), x.var((0, 2, 3))


def adaptive_pool7(x):
    return torch.nn.functional.adaptive_avg_pool2d(x, 7)


def avg_pool2(x):
    return torch.nn.functional.avg_pool2d(x, 2)


def col_argmax(x):
    return x.argmax(0)


def col_argmin(x):
    return x.argmin(0)


def row_argmax(x):
    return x.argmax(-1)


def max_with_indices(x):
    values, indices = torch.max(x, -1)
    return values, indices


def col_max_with_indices(x):
    values, indices = torch.max(x, 0)
    return values, indices


def rotate_half(x, cos, sin):
    d = x.shape[-1]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat((-x2, x1), -1) * sin


def rotate_interleaved(x, cos, sin):
    a, b = x[..., ::2], x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)


B, H, T, D = 8, 32, 2048, 128
# name -> (function, input shapes, output elements as a function of the shapes, shapes for --dry-run)
WORKLOADS = {
    "x.sum(0) 32768x4096": (col_sum, [(32768, 4096)], lambda s: s[0][1], [(300, 70)]),
    "x.sum(0) 8192x1024": (col_sum, [(8192, 1024)], lambda s: s[0][1], [(96, 33)]),
    "x.sum(0) 262144x256": (col_sum, [(262144, 256)], lambda s: s[0][1], [(1024, 24)]),
    "x.sum(0) 1048576x32": (col_sum, [(1048576, 32)], lambda s: s[0][1], [(2048, 8)]),
    "x.mean(0) 32768x4096": (col_mean, [(32768, 4096)], lambda s: s[0][1], [(300, 70)]),
    "x.amax(0) 32768x4096": (col_amax, [(32768, 4096)], lambda s: s[0][1], [(300, 70)]),
    "x.var(0) 32768x4096": (col_var, [(32768, 4096)], lambda s: s[0][1], [(300, 70)]),
    "(x*y).sum(0) 16384x4096": (mul_col_sum, [(16384, 4096), (16384, 4096)], lambda s: s[0][1],
                                [(100, 40), (100, 40)]),
    "x.sum(0)+b 32768x4096": (col_sum_bias, [(32768, 4096), (4096,)], lambda s: s[0][1], [(300, 70), (70,)]),
    "x.sum(1) 32x4096x768": (mid_sum, [(32, 4096, 768)], lambda s: s[0][0] * s[0][2], [(3, 100, 24)]),
    "x.sum(1) 4x16384x768": (mid_sum, [(4, 16384, 768)], lambda s: s[0][0] * s[0][2], [(2, 512, 16)]),
    "x.var(1) 16x2048x1024": (mid_var, [(16, 2048, 1024)], lambda s: s[0][0] * s[0][2], [(3, 100, 24)]),
    # batch-norm statistics of an NCHW tensor: C outputs over N*H*W (split into chunks of H*W runs), ResNet's
    # first stage and a later one with more channels
    "bn mean 128x64x56x56": (bn_mean, [(128, 64, 56, 56)], lambda s: s[0][1], [(8, 6, 5, 8)]),
    "bn var 128x64x56x56": (bn_var, [(128, 64, 56, 56)], lambda s: s[0][1], [(8, 6, 5, 8)]),
    "bn mean+var 128x64x56x56": (bn_mean_var, [(128, 64, 56, 56)], lambda s: 2 * s[0][1], [(8, 6, 5, 8)]),
    "bn mean+var 128x512x14x14": (bn_mean_var, [(128, 512, 14, 14)], lambda s: 2 * s[0][1], [(4, 16, 3, 3)]),
    # pools of windows tiling the plane, as one reduction over (kh, kw) (graph/pooling_rules.py): torchvision's
    # adaptive pool to 7x7 of a 56x56 map (8x8 windows); avg_pool2d(2) (4-element windows: strided slices)
    "adaptive_avg_pool2d 7x7 128x64x56x56": (adaptive_pool7, [(128, 64, 56, 56)], lambda s: s[0][0] * s[0][1] * 49,
                                              [(2, 3, 28, 28)]),
    "avg_pool2d 2 128x64x56x56": (avg_pool2, [(128, 64, 56, 56)], lambda s: s[0][0] * s[0][1] * 28 * 28,
                                  [(2, 3, 8, 8)]),
    # argmax / argmin and max with indices (output bytes counted at the input's element size)
    "x.argmax(0) 8192x4096": (col_argmax, [(8192, 4096)], lambda s: s[0][1], [(96, 33)]),
    "x.argmin(0) 8192x1024": (col_argmin, [(8192, 1024)], lambda s: s[0][1], [(96, 33)]),
    "x.argmax(-1) 64x262144": (row_argmax, [(64, 262144)], lambda s: s[0][0], [(4, 1024)]),
    "max with indices dim -1 8192x4096": (max_with_indices, [(8192, 4096)], lambda s: 2 * s[0][0], [(33, 96)]),
    "max with indices dim 0 8192x4096": (col_max_with_indices, [(8192, 4096)], lambda s: 2 * s[0][1],
                                         [(96, 33)]),
    "x.sum() 64M": (full_sum, [(1 << 26,)], lambda s: 1, [(1 << 14,)]),
    "x.sum(-1) 32768x4096 (rows, control)": (row_sum, [(32768, 4096)], lambda s: s[0][0], [(70, 300)]),
    f"rotate-half {B}x{H}x{T}x{D}": (rotate_half, [(B, H, T, D), (T, D), (T, D)], lambda s: B * H * T * D,
                                     [(2, 3, 7, 16), (7, 16), (7, 16)]),
    f"interleaved rotary {B}x{H}x{T}x{D}": (rotate_interleaved, [(B, H, T, D), (T, D // 2), (T, D // 2)],
                                            lambda s: B * H * T * D, [(2, 3, 7, 16), (7, 8), (7, 8)]),
}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated torch dtypes")
    p.add_argument("--only", default="", help="comma-separated substrings of workload names")
    p.add_argument("--out", default=RESULTS_DIR)
    p.add_argument("--dry-run", action="store_true", help="CPU, small sizes, Triton's interpreter: check only")
    a = p.parse_args(argv)
    a.only = [o for o in a.only.split(",") if o]
    a.dtypes = a.dtypes.split(",")
    return a


def _kernels(fn, inputs) -> str:
    """The launch shape of each kernel framejit generates for fn, in launch order ('+split': partial results)."""
    import torch
    from framejit.inductor.backends import triton_backend
    compiled = triton_backend(torch.fx.symbolic_trace(fn), inputs)
    if not hasattr(compiled, "launch"):
        return "none (runs in torch)"
    modes = [launcher.ks.mode for launcher in compiled.launch.values() if hasattr(launcher, "ks")]
    split = "+split" if "_part0" in compiled.source else ""
    fallback = " +torch fallback" if "# torch fallback" in compiled.source else ""
    return f"{len(modes)}: {', '.join(modes) or 'none'}{split}{fallback}"


def _time(call) -> tuple:
    """(median ms, spread) over do_bench's runs of call()."""
    import triton.testing
    times = triton.testing.do_bench(call, warmup=25, rep=200, return_mode="all")
    med = statistics.median(times)
    return med, (max(times) - min(times)) / med


def _tolerance(dtype, fn):
    import torch
    if dtype == torch.bfloat16:
        return {"rtol": 2e-2, "atol": 1e-1 if fn in (col_sum, mid_sum, full_sum, mul_col_sum, col_sum_bias) else 2e-2}
    # float32 sums of up to 262144 rows in another order: their rounding grows with the row count (a column sum of
    # N(0, 1) values, ~512 in size, differed by 6e-4 on the H100), so long sums get an absolute tolerance to match
    sums = (col_sum, mid_sum, full_sum, mul_col_sum, col_sum_bias)
    return {"rtol": 1e-4, "atol": 1e-2 if fn in sums else 1e-4}


def run(a, device: str) -> list:
    import torch
    import jit
    rows, tables = [], []
    for dtype_name in a.dtypes:
        dtype = getattr(torch, dtype_name)
        for name, (fn, shapes, out_numel, small) in WORKLOADS.items():
            if a.only and not any(o in name for o in a.only):
                continue
            torch.manual_seed(0)
            shapes = small if a.dry_run else shapes
            inputs = [torch.randn(s, device=device).to(dtype) for s in shapes]
            nbytes = (sum(x.numel() for x in inputs) + out_numel(shapes)) * inputs[0].element_size()
            # the default backend runs CUDA tensors through Triton; the dry run's CPU tensors must ask for it
            ours = jit.compile(fn, backend="triton") if a.dry_run else jit.compile(fn)
            variants = {"eager": fn, "framejit": ours}
            if not a.dry_run:  # torch.compile's first compile takes ~20 s on the CPU box: GPU only
                variants["torch.compile"] = torch.compile(fn)
            ref = fn(*inputs)
            for label, f in variants.items():
                torch.testing.assert_close(f(*inputs), ref, **_tolerance(dtype, fn),
                                           msg=lambda m: f"{name} {dtype_name} {label}: {m}")
            kernels = _kernels(fn, inputs)
            title = f"{name} {dtype_name}" + (f" (dry run at {shapes})" if a.dry_run else "")
            print(f"{title}: framejit kernels {kernels}; all variants match eager", flush=True)
            if a.dry_run:
                continue
            suite = Suite(f"gpu-reductions {title}", baseline="eager")
            for label, f in variants.items():
                suite.add(label, lambda f=f, args=inputs: f(*args))
            results, ms, gbs = [], {}, {}
            for v in suite.variants:  # CUDA-event times, not the harness's host-side rounds
                med, spread = _time(v.fn)
                results.append(Result(v.name, med * 1e6, spread))
                ms[v.name], gbs[v.name] = f"{med:.3f}", f"{nbytes / med / 1e6:,.0f}"
                rows.append({"workload": name, "dtype": dtype_name, "variant": v.name, "ms": med,
                             "GBs": nbytes / med / 1e6, "spread": spread, "framejit_kernels": kernels})
            tables.append(f"### {title} (framejit kernels {kernels})\n\n"
                          f"{markdown(suite, results, {'ms': ms, 'GB/s': gbs})}\n")
            print(tables[-1], flush=True)
            del inputs, ref, variants, suite
            torch.cuda.empty_cache()
    return rows, tables


def summary(rows: list) -> str:
    """One line per workload and dtype: GB/s of each variant, and framejit over eager and over torch.compile."""
    by = {}
    for r in rows:
        by.setdefault((r["workload"], r["dtype"]), {})[r["variant"]] = r["GBs"]
    lines = ["| workload | dtype | eager GB/s | torch.compile GB/s | framejit GB/s | vs eager | vs torch.compile |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for (w, d), v in by.items():
        e, c, f = v.get("eager", 0), v.get("torch.compile", 0), v.get("framejit", 0)
        lines.append(f"| {w} | {d} | {e:,.0f} | {c:,.0f} | {f:,.0f} | {f / e if e else 0:.2f}x | "
                     f"{f / c if c else 0:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    a = parse(argv)
    if a.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton
    global torch
    import torch
    if not a.dry_run and not torch.cuda.is_available():
        print("gpu_reductions.py: no CUDA device here, nothing measured (--dry-run checks the workloads on the CPU)")
        return 0
    rows, tables = run(a, "cpu" if a.dry_run else "cuda")
    if a.dry_run:
        return 0
    table = summary(rows)
    print("\n" + table, flush=True)
    gpu = torch.cuda.get_device_name()
    tag = next((t.lower() for t in ("H100", "H200") if t in gpu), "gpu")
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, f"gpu-reductions-{tag}")
    env = environment()
    with open(stem + ".json", "w") as f:
        json.dump({"environment": env, "rows": rows}, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(f"# gpu-reductions\n\n{json.dumps(env)}\n\n{table}\n\n" + "\n".join(tables))
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Transposes on the GPU: eager vs torch.compile vs framejit, whose pointwise kernels walk a 2-D tile where an
input is read in another order than the output is written (inductor/triton/tiling.py). A control variant runs
framejit's Triton backend with tiling switched off: the 1-D kernel the tiled one replaces.

  python benchmarks/gpu_transpose.py [--dtypes float32,bfloat16] [--only NAME,...] [--out DIR]
  python benchmarks/gpu_transpose.py --configs   # also time every autotune candidate of each tiled kernel
  python benchmarks/gpu_transpose.py --dry-run   # CPU: small sizes in Triton's interpreter, results checked only

Workloads: x.t().contiguous() 8192x8192, x.permute(0, 2, 1, 3).contiguous() of (16, 1024, 12, 64) (a (B, T, H, D)
tensor to (B, H, T, D): its rows of D stay contiguous, so framejit keeps the 1-D kernel there), x + y.t()
8192x8192. Per variant: median ms (triton.testing.do_bench: CUDA events, L2 flushed between runs) and GB/s (each
input read once, the output written once; the copy limit is ~3 TB/s on the H100). Every variant is checked
against eager first. Writes out/gpu-transpose-<gpu>.json and .md (results/ with --update-results)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TMP = tempfile.mkdtemp(prefix="gpu-transpose-")
os.environ.setdefault("FRAMEJIT_CACHE_DIR", os.path.join(_TMP, "framejit"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(_TMP, "inductor"))

from benchmarks.harness import RESULTS_DIR, Result, Suite, environment, launches, markdown  # noqa: E402


def transpose_copy(x):
    return x.t().contiguous()


def heads_first(x):
    return x.permute(0, 2, 1, 3).contiguous()


def add_transposed(x, y):
    return x + y.t()


# name -> (function, input shapes, tensors moved: inputs read + output written, shapes for --dry-run)
WORKLOADS = {
    "x.t().contiguous() 8192x8192": (transpose_copy, [(8192, 8192)], 2, [(96, 80)]),
    "x.permute(0,2,1,3).contiguous() 16x1024x12x64": (heads_first, [(16, 1024, 12, 64)], 2, [(2, 40, 3, 16)]),
    "x + y.t() 8192x8192": (add_transposed, [(8192, 8192), (8192, 8192)], 3, [(80, 72), (72, 80)]),
}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated torch dtypes")
    p.add_argument("--only", default="", help="comma-separated substrings of workload names")
    p.add_argument("--out", default=RESULTS_DIR)
    p.add_argument("--configs", action="store_true", help="time each tiled kernel's autotune candidates")
    p.add_argument("--dry-run", action="store_true", help="CPU, small sizes, Triton's interpreter: check only")
    a = p.parse_args(argv)
    a.only = [o for o in a.only.split(",") if o]
    a.dtypes = a.dtypes.split(",")
    return a


def _untiled(fn, inputs):
    """framejit's Triton backend on fn with tiling off: the 1-D kernels walking the output's memory order."""
    import torch
    from framejit.inductor.triton import tiling as triton_tiling
    from framejit.inductor.backends import triton_backend
    plan = triton_tiling.plan
    triton_tiling.plan = lambda kernel, layouts: None
    try:
        return triton_backend(torch.fx.symbolic_trace(fn), inputs)
    finally:
        triton_tiling.plan = plan


def _modes(fn, inputs, configs: bool) -> tuple:
    """The launch shape of each kernel framejit generates for fn ('tiled' or 'pointwise'); with `configs`, each
    tiled kernel's autotune candidates timed on the arguments of a real call: [(ms, config)], fastest first."""
    import torch
    from framejit.inductor.runtime import launch_configs as triton_launch
    from framejit.inductor.backends import triton_backend
    compiled = triton_backend(torch.fx.symbolic_trace(fn), inputs)
    modes = ", ".join(sorted(launcher.ks.mode for launcher in compiled.launch.values())) or "none"
    if not configs:
        return modes, []
    seen = launches(compiled, inputs)
    timings = []
    for launcher, args in seen.values():
        ks = launcher.ks
        if ks.mode != "tiled":
            continue
        for cfg in triton_launch.candidates("tiled", ks.xnumel, 1, inputs[0].element_size(), ynumel=ks.ynumel):
            grid = triton_launch.grid("tiled", ks.xnumel, cfg, ks.ynumel)
            ms, _ = _time(lambda: launcher.fn[grid](*args, **cfg))
            timings.append((ms, cfg))
    return modes, sorted(timings, key=lambda t: t[0])


def _time(call) -> tuple:
    """(median ms, spread) over do_bench's runs of call()."""
    import triton.testing
    times = triton.testing.do_bench(call, warmup=25, rep=200, return_mode="all")
    med = statistics.median(times)
    return med, (max(times) - min(times)) / med


def run(a, device: str) -> list:
    import torch
    import jit
    rows, tables = [], []
    for dtype_name in a.dtypes:
        dtype = getattr(torch, dtype_name)
        for name, (fn, shapes, tensors, small) in WORKLOADS.items():
            if a.only and not any(o in name for o in a.only):
                continue
            torch.manual_seed(0)
            shapes = small if a.dry_run else shapes
            inputs = [torch.randn(s, device=device).to(dtype) for s in shapes]
            numel = max(x.numel() for x in inputs)
            nbytes = tensors * numel * inputs[0].element_size()
            # the default backend runs CUDA tensors through Triton; the dry run's CPU tensors must ask for it
            ours = jit.compile(fn, backend="triton") if a.dry_run else jit.compile(fn)
            variants = {"eager": fn, "framejit": ours, "framejit, tiling off": _untiled(fn, inputs)}
            if not a.dry_run:  # torch.compile's first compile takes ~20 s on the CPU box: GPU only
                variants["torch.compile"] = torch.compile(fn)
            ref = fn(*inputs)
            # torch's default tolerances: the interpreter (--dry-run) rounds to bf16 its own way
            for label, f in variants.items():
                torch.testing.assert_close(f(*inputs), ref, msg=lambda m: f"{label}: {m}")
            modes, configs = _modes(fn, inputs, a.configs and not a.dry_run)
            title = f"{name} {dtype_name}" + (f" (dry run at {shapes})" if a.dry_run else "")
            print(f"{title}: framejit kernels {modes}; all variants match eager", flush=True)
            if a.dry_run:
                continue
            for ms, cfg in configs:  # fastest first
                print(f"  tiled config {cfg}: {ms:.3f} ms, {nbytes / ms / 1e6:,.0f} GB/s", flush=True)
            suite = Suite(f"gpu-transpose {title}", baseline="eager")
            for label, f in variants.items():
                suite.add(label, lambda f=f, args=inputs: f(*args))
            results, ms, gbs = [], {}, {}
            for v in suite.variants:  # CUDA-event times, not the harness's host-side rounds
                med, spread = _time(v.fn)
                results.append(Result(v.name, med * 1e6, spread))
                ms[v.name], gbs[v.name] = f"{med:.3f}", f"{nbytes / med / 1e6:,.0f}"
                rows.append({"workload": name, "dtype": dtype_name, "variant": v.name, "ms": med,
                             "GBs": nbytes / med / 1e6, "spread": spread, "framejit_kernels": modes,
                             "tiled_configs": [[ms, cfg] for ms, cfg in configs]})
            table = markdown(suite, results, {"ms": ms, "GB/s": gbs})
            tables.append(f"### {title} (framejit kernels: {modes})\n\n{table}\n")
            print(tables[-1], flush=True)
            del inputs, ref, variants, suite
            torch.cuda.empty_cache()
    return rows, tables


def main(argv=None) -> int:
    a = parse(argv)
    if a.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton
    import torch
    if not a.dry_run and not torch.cuda.is_available():
        print("gpu_transpose.py: no CUDA device here, nothing measured (--dry-run checks the workloads on the CPU)")
        return 0
    rows, tables = run(a, "cpu" if a.dry_run else "cuda")
    if a.dry_run:
        return 0
    gpu = torch.cuda.get_device_name()
    tag = next((t.lower() for t in ("H100", "H200") if t in gpu), "gpu")
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, f"gpu-transpose-{tag}")
    env = environment()
    with open(stem + ".json", "w") as f:
        json.dump({"environment": env, "rows": rows}, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(f"# gpu-transpose\n\n{json.dumps(env)}\n\n" + "\n".join(tables))
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

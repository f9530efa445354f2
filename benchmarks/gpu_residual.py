"""Residual sums added by the matmul in place (inductor/triton/residual.py), measured: the GPT rows of the GPU
suite compiled with and without the rewrite (FRAMEJIT_RESIDUAL_GEMM=0) in one process, against eager and
torch.compile, timed in interleaved rounds (gpu_suite.interleaved).

    python -m benchmarks.gpu_residual [--dtypes float32,bfloat16] [--out DIR]"""
import argparse
import os

import torch

from benchmarks.gpu_suite import RESULTS, build, environment, gpu_tag, interleaved, rel_error
from benchmarks.harness import triton_modules

WORKLOADS = ["GPT-2 block B16 T1024 C768", "GPT 4 layers B8 T1024 C768"]
VARIANTS = {"framejit": {}, "framejit, no residual rewrite": {"FRAMEJIT_RESIDUAL_GEMM": "0"}}


def run(dtypes) -> list:
    rows = []
    for dtype in dtypes:
        for name in WORKLOADS:
            torch.manual_seed(0)
            fn, inputs, _, _ = build(name, dtype)
            with torch.no_grad():
                ref = fn(*inputs)
                calls = {"eager": fn, "torch.compile": torch.compile(fn)}
                calls.update({v: (lambda *a, f=f: f()) for v, f in triton_modules(fn, inputs, VARIANTS).items()})
                errors = {v: rel_error(f(*inputs), ref) for v, f in calls.items()}
                ms = interleaved(calls, inputs, rounds=7, rep_ms=40)
            row = {"workload": name, "dtype": str(dtype).replace("torch.", ""), "ms": ms, "err": errors}
            rows.append(row)
            print(line(row), flush=True)
            del fn, inputs, calls
            torch.cuda.empty_cache()
    return rows


def line(r) -> str:
    ms, tc = r["ms"], r["ms"]["torch.compile"]
    cells = [f"{ms[v]:.3f} ({tc / ms[v]:.3f})" for v in ms]
    return f"| {r['workload']} | {r['dtype']} | " + " | ".join(cells) + " |"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args()
    dtypes = [getattr(torch, d) for d in args.dtypes.split(",")]
    head = "| workload | dtype | " + " | ".join(f"{v} ms (torch.compile / it)" for v in
                                                  ["eager", "torch.compile"] + list(VARIANTS)) + " |"
    print(head + "\n|" + " --- |" * (2 + 2 + len(VARIANTS)), flush=True)
    rows = run(dtypes)
    env = environment()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"gpu-residual-{gpu_tag(env['gpu'])}.md")
    with open(path, "w") as f:
        f.write(f"# Residual sums added by the matmul (benchmarks/gpu_residual.py)\n\nenvironment: {env}\n\n{head}\n|"
                + " --- |" * (2 + 2 + len(VARIANTS)) + "\n" + "\n".join(line(r) for r in rows) + "\n\nrelative "
                "errors vs eager: " + "; ".join(f"{r['workload']} {r['dtype']}: " + ", ".join(
                    f"{v} {e:.1e}" for v, e in r["err"].items()) for r in rows) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Triton matmul with a fused epilogue (inductor/triton/matmul.py) against library matmul + epilogue kernel, on the
GPU suite's and the GPT's shapes: the measurement behind triton_matmul.heuristic.

  python benchmarks/gpu_matmul.py [--out DIR]

Each call site is compiled with autotuning on, so its first call times the library path and every Triton config
(triton.testing.do_bench medians); the table lists both and the winner."""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("FRAMEJIT_CACHE_DIR", tempfile.mkdtemp(prefix="gpu-matmul-"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: Triton's interpreter, a dry run
SHAPES = [  # (label, M, K, N, epilogue, dtypes)
    ("suite gelu(x@w+b)", 8192, 4096, 4096, "gelu", ("bfloat16", "float32")),
    ("GPT-2 block c_fc+gelu B16", 16384, 768, 3072, "gelu", ("bfloat16", "float32")),
    ("GPT 4 layers c_fc+gelu B8", 8192, 768, 3072, "gelu", ("bfloat16",)),
    ("mlp c_proj + residual B16", 16384, 3072, 768, "residual", ("bfloat16",)),
    ("attn c_proj + residual B16", 16384, 768, 768, "residual", ("bfloat16",)),
]


def gelu_fn(x, w, b):
    return F.gelu(x @ w + b)


def residual_fn(x, w, b, r):
    return x @ w + b + r


def main():
    from framejit.inductor.backends import triton_backend
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="")
    a = p.parse_args()
    rows = []
    print("| call site | dtype | M x K x N | library + epilogue ms | best Triton ms | config | winner | rel. error |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, m, k, n, epi, dtypes in SHAPES:
        for dt in dtypes:
            dtype = getattr(torch, dt)
            torch.manual_seed(0)
            x = torch.randn(m, k, device=DEVICE).to(dtype)
            w = (torch.randn(k, n, device=DEVICE) * k ** -0.5).to(dtype)
            b = torch.randn(n, device=DEVICE).to(dtype)
            args = [x, w, b] + ([torch.randn(m, n, device=DEVICE).to(dtype)] if epi == "residual" else [])
            fn = gelu_fn if epi == "gelu" else residual_fn
            gm = torch.fx.symbolic_trace(fn)
            compiled = triton_backend(gm, list(args), autotune=True)
            with torch.no_grad():
                got = compiled(*args)
                ref = fn(*args)
            err = ((got.double() - ref.double()).norm() / ref.double().norm()).item()
            mms = [l for l in getattr(compiled, "launch", {}).values() if type(l).__name__ == "MatmulLauncher"]
            if not mms:
                print(f"| {label} | {dt} | {m}x{k}x{n} | - | - | no candidate | - | {err:.1e} |", flush=True)
                continue
            t = mms[0].timings
            lib = [ms for ms, c, _ in t if c == "library"]
            tri = sorted((ms, cfg) for ms, c, cfg in t if c == "triton")
            row = {"site": label, "dtype": dt, "m": m, "k": k, "n": n, "library_ms": lib[0] if lib else None,
                   "triton_ms": tri[0][0] if tri else None, "config": tri[0][1] if tri else None,
                   "winner": mms[0].choice, "rel_error": err, "all": t}
            rows.append(row)
            print(f"| {label} | {dt} | {m}x{k}x{n} | {row['library_ms']:.3f} | {row['triton_ms']:.3f} | "
                  f"{row['config']} | {row['winner']} | {err:.1e} |", flush=True)
    if a.out:
        with open(os.path.join(a.out, "gpu-matmul.json"), "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu", "rows": rows}, f, indent=1, default=str)


if __name__ == "__main__":
    main()

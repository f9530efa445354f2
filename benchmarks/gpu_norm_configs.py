"""Launch configs of persistent row kernels (layer_norm, residual + layer_norm) on short rows: the measurement behind
triton_launch's persistent-kernel heuristic for a GPT's C=768 rows, with the suite's 4096-wide rows as a control.

  python benchmarks/gpu_norm_configs.py [--out DIR]

Each workload is compiled by the Triton backend; its persistent kernel is then timed (do_bench median, L2 flushed)
over XBLOCK x num_warps with the arguments of a real call."""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("FRAMEJIT_CACHE_DIR", tempfile.mkdtemp(prefix="gpu-norm-"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from benchmarks.harness import launches  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: Triton's interpreter, a dry run


def ln(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b)


def residual_ln(x, r, w, b):
    h = x + r
    return F.layer_norm(h, (x.shape[-1],), w, b), h * 2


WORKLOADS = [("layer_norm", ln, 16384, 768), ("residual + layer_norm", residual_ln, 16384, 768),
             ("layer_norm", ln, 8192, 768), ("layer_norm (control)", ln, 32768, 4096)]


def main():
    import triton.testing
    from framejit.inductor.runtime import launch_configs as triton_launch
    from framejit.inductor.backends import triton_backend
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="")
    p.add_argument("--dtype", default="bfloat16")
    a = p.parse_args()
    dtype = getattr(torch, a.dtype)
    rows = []
    for label, fn, n, c in WORKLOADS:
        x, r = torch.randn(n, c, device=DEVICE).to(dtype), torch.randn(n, c, device=DEVICE).to(dtype)
        w, b = torch.randn(c, device=DEVICE).to(dtype), torch.randn(c, device=DEVICE).to(dtype)
        args = [x, w, b] if fn is ln else [x, r, w, b]
        compiled = triton_backend(torch.fx.symbolic_trace(fn), args)
        seen = launches(compiled, args)
        for name, (launcher, kargs) in seen.items():
            if launcher.ks.mode != "persistent":
                continue
            base = launcher.config
            timings = []
            for xblock in (1, 2, 4, 8, 16):
                for warps in (1, 2, 4, 8, 16):
                    if xblock * base["RBLOCK"] > 16384 or warps * 32 > xblock * base["RBLOCK"]:
                        continue
                    cfg = dict(base, XBLOCK=xblock, num_warps=warps)
                    grid = triton_launch.grid(launcher.ks.mode, launcher.ks.xnumel, cfg)
                    try:
                        ms = triton.testing.do_bench(lambda: launcher.fn[grid](*kargs, **cfg), warmup=5, rep=40,
                                                     return_mode="median")
                    except Exception as e:  # noqa: BLE001
                        print("config failed", cfg, e)
                        continue
                    timings.append((ms, xblock, warps))
            timings.sort()
            now = next((t for t in timings if t[1:] == (base["XBLOCK"], base["num_warps"])), None)
            row = {"workload": f"{label} {n}x{c}", "kernel": name, "heuristic": [base["XBLOCK"], base["num_warps"]],
                   "heuristic_ms": now[0] if now else None, "best": timings[:5]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if a.out:
        with open(os.path.join(a.out, "gpu-norm-configs.json"), "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

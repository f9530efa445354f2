"""Warm start (issue 22 item 6): the first call of a compiled function in a fresh process.

Per workload and round, three fresh processes over one new cache directory:
  eager: the function's first call, uncompiled (torch's own first-call costs: the reference)
  cold:  the compiled function's first call, empty cache (capture, optimizer, code generation, the CPU choice timed)
  warm:  the same in a second process, the cache filled by the cold one (capture again, code and choice from disk)
Each process builds its inputs and model, then times only the first call; after it, the result is checked against
eager. Reported: median wall seconds of the first call, the process CPU seconds it took (less noisy on a loaded
machine), warm - eager, and whether torch._dynamo and sympy were imported by then. framejit's own modules are
byte-compiled first, as an installed package's are (PYTHONDONTWRITEBYTECODE would make every process compile them
from source).

Goal on the CPU: warm - eager <= 0.3 s. `--rounds N` (default 3), `--only NAME`, `--device cuda` (the Triton
backend; Triton's binaries come from its own cache in the cache dir), `--root DIR`: time another checkout of
framejit (an export of an earlier commit, for before/after numbers) with this script's workloads."""
from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.harness import RESULTS_DIR, environment  # noqa: E402

WORKLOADS = ("mlp", "softmax", "layer_norm", "gpt_small")

CHILD = r'''
import json, sys, time
mode, name, device = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
import torch
import torch.nn.functional as F
import jit
import_s = time.perf_counter() - t0
torch.manual_seed(0)
if name == "mlp":
    model = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 256)).eval()
    fn, args = model, (torch.randn(64, 256),)
elif name == "softmax":
    fn, args = (lambda x: torch.softmax(x, -1)), (torch.randn(256, 512),)
elif name == "layer_norm":
    fn, args = torch.nn.LayerNorm(512).eval(), (torch.randn(256, 512),)
elif name == "gpt_small":
    from benchmarks.models.gpt import GPT, small_config
    fn, args = GPT(small_config()).eval(), (torch.randint(0, 64, (2, 16)),)
if isinstance(fn, torch.nn.Module):
    fn.to(device)
args = tuple(a.to(device) for a in args)
run = fn if mode == "eager" else jit.compile(fn)
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
with torch.no_grad():
    c0, w0 = time.process_time(), time.perf_counter()
    out = run(*args)
    sync()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    sympy = "sympy" in sys.modules  # before assert_close, which imports DTensor and with it sympy
    torch.testing.assert_close(out, fn(*args))
counters = dict(jit.counters) if mode != "eager" else {}
print(json.dumps({"wall": wall, "cpu": cpu, "import_s": import_s, "dynamo": "torch._dynamo" in sys.modules,
                  "sympy": sympy,
                  "measured": counters.get("cpu_choices_measured", 0),
                  "cached": counters.get("cpu_choices_cached", 0)}))
'''


def _child(mode: str, name: str, cache: str, root: str, device: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAMEJIT_", "JIT_LOGS"))}
    env.update(FRAMEJIT_CACHE_DIR=cache, PYTHONPATH=os.pathsep.join([root, ROOT, env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", CHILD, mode, name, device], env=env, cwd=root, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=WORKLOADS)
    parser.add_argument("--root", default=ROOT)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    opts = parser.parse_args()
    root = os.path.abspath(opts.root)
    for package in ("jit", "framejit", "graph", "guards", "inductor", "benchmarks"):
        compileall.compile_dir(os.path.join(root, package), quiet=1)
    rows, raw = [], {}
    for name in [opts.only] if opts.only else WORKLOADS:
        runs = {"eager": [], "cold": [], "warm": []}
        for _ in range(opts.rounds):
            with tempfile.TemporaryDirectory(prefix="framejit-warm-") as cache:
                runs["eager"].append(_child("eager", name, cache, root, opts.device))
                runs["cold"].append(_child("compiled", name, cache, root, opts.device))
                runs["warm"].append(_child("compiled", name, cache, root, opts.device))
        raw[name] = runs
        med = {k: {m: statistics.median(r[m] for r in v) for m in ("wall", "cpu")} for k, v in runs.items()}
        warm = runs["warm"]
        rows.append([name, *(f"{med[k]['wall']:.3f} ({med[k]['cpu']:.3f})" for k in ("eager", "cold", "warm")),
                     f"{med['warm']['wall'] - med['eager']['wall']:+.3f}",
                     "yes" if any(r["dynamo"] for r in warm) else "no",
                     "yes" if any(r.get("sympy") for r in warm) else "no",
                     f"{warm[0]['measured']} / {warm[0]['cached']}"])
        print(rows[-1], flush=True)
    head = ["workload", "eager first call s (cpu s)", "cold", "warm", "warm - eager (wall)",
            "warm imported torch._dynamo", "warm imported sympy", "warm choices timed / read"]
    table = "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                      + ["| " + " | ".join(r) + " |" for r in rows])
    print(table)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, f"warm_start-{opts.device}.json"), "w") as f:
        json.dump({"environment": environment(), "root": root, "load": os.getloadavg(), "runs": raw}, f, indent=2)


if __name__ == "__main__":
    main()

"""Soak test (issue 24): does memory stay flat over many compile + call + jit.reset() cycles?

A long-running service that compiles per request, or a notebook that resets, repeats exactly this. Each
(backend, mode) runs in a fresh process so one run's heap does not hide another's growth:

  mode "new"   a new code object each cycle (a fresh function `exec`'d from source), as a service compiling
               user code per request does
  mode "same"  one function, jit.compile'd again each cycle after jit.reset()

RSS (from /proc/self/statm, or resource's peak where there is no /proc) is sampled every --every cycles after a
gc.collect(); growth is the least-squares slope of the samples after --warmup cycles, in MB per 1,000 cycles.

  python benchmarks/soak.py                     # 10,000 cycles, eager / numpy / inductor on the CPU, both modes
  python benchmarks/soak.py --cycles 3000 --backends numpy --modes new
  python benchmarks/soak.py --backends cuda     # the default backend on CUDA tensors (Triton), where present
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("eager", "numpy", "inductor", "cuda")  # cuda: the default backend on CUDA tensors
MODES = ("new", "same")

SOURCE = """
def soak_{i}(x):
    y = x * 2.0 + 1.0
    return (y.relu() - x).sum()
"""


def rss_mb() -> float:
    """Resident set size now, in MB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1e6 if sys.platform == "darwin" else peak / 1e3


def _fresh_function(i: int):
    """A function with a code object of its own: exec of its source (a closure would share one code object)."""
    namespace: dict = {}
    exec(compile(SOURCE.format(i=i), "<soak>", "exec"), namespace)
    return namespace[f"soak_{i}"]


def soak(backend: str, mode: str, cycles: int, every: int) -> list[tuple[int, float]]:
    """Run the cycles in this process; [(cycle, RSS MB)] every `every` cycles."""
    import torch

    import jit
    device = "cuda" if backend == "cuda" else "cpu"
    name = "inductor" if backend == "cuda" else backend
    x = torch.randn(16, device=device)
    same = _fresh_function(0)
    samples = []
    for i in range(cycles + 1):
        if i % every == 0:
            gc.collect()
            samples.append((i, rss_mb()))
        fn = same if mode == "same" else _fresh_function(i)
        compiled = jit.compile(fn, backend=name)
        compiled(x)
        jit.reset()
    return samples


def growth_per_1000(samples: list[tuple[int, float]], warmup: int) -> float:
    """Least-squares slope of RSS over cycles after the warm-up, in MB per 1,000 cycles."""
    points = [(c, m) for c, m in samples if c >= warmup]
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mc = sum(c for c, _ in points) / n
    mm = sum(m for _, m in points) / n
    var = sum((c - mc) ** 2 for c, _ in points)
    return 1000 * sum((c - mc) * (m - mm) for c, m in points) / var


def _run_child(backend: str, mode: str, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", backend, mode, "--cycles", str(args.cycles),
           "--every", str(args.every)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        return {"backend": backend, "mode": mode, "error": done.stderr.strip().splitlines()[-1:]}
    samples = json.loads(done.stdout.strip().splitlines()[-1])
    return {"backend": backend, "mode": mode, "samples": samples, "seconds": time.perf_counter() - t0,
            "growth": growth_per_1000(samples, args.warmup)}


def table(results: list[dict]) -> str:
    rows = [r for r in results if "samples" in r]
    if not rows:
        return "(no results)"
    cycles = [c for c, _ in rows[0]["samples"]]
    head = "| backend | mode | " + " | ".join(str(c) for c in cycles) + " | MB / 1,000 cycles | s |"
    sep = "|" + " --- |" * (len(cycles) + 4)
    lines = [head, sep]
    for r in rows:
        mbs = " | ".join(f"{m:.1f}" for _, m in r["samples"])
        lines.append(f"| {r['backend']} | {r['mode']} | {mbs} | {r['growth']:+.2f} | {r['seconds']:.0f} |")
    for r in results:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['mode']} | failed: {' '.join(r['error'])} |")
    return "\n".join(lines)


def plot(results: list[dict], path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the plot is optional
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        if "samples" in r:
            ax.plot(*zip(*r["samples"]), marker=".", label=f"{r['backend']} / {r['mode']}")
    ax.set_xlabel("compile + call + reset cycles")
    ax.set_ylabel("RSS (MB)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cycles", type=int, default=10_000)
    p.add_argument("--every", type=int, default=500, help="sample RSS every this many cycles")
    p.add_argument("--warmup", type=int, default=1000, help="cycles left out of the growth slope")
    p.add_argument("--backends", default="eager,numpy,inductor", help=f"comma-separated, of {', '.join(BACKENDS)}")
    p.add_argument("--modes", default="new,same", help="comma-separated, of new, same")
    p.add_argument("--out", default=None, help="where soak.json / soak.md / soak.png go (default: benchmarks/out, "
                   "or benchmarks/results with --update-results)")
    p.add_argument("--child", nargs=2, metavar=("BACKEND", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.out is None:
        sys.path.insert(0, ROOT)
        from benchmarks.harness import RESULTS_DIR
        args.out = RESULTS_DIR
    if args.child:
        sys.path.insert(0, ROOT)
        print(json.dumps(soak(*args.child, cycles=args.cycles, every=args.every)))
        return
    backends = [b for b in args.backends.split(",") if b]
    modes = [m for m in args.modes.split(",") if m]
    for b in backends:
        if b not in BACKENDS:
            p.error(f"unknown backend {b!r}")
    for m in modes:
        if m not in MODES:
            p.error(f"unknown mode {m!r}")
    if "cuda" in backends:
        import torch
        if not torch.cuda.is_available():
            print("no CUDA device: skipping backend cuda", file=sys.stderr)
            backends.remove("cuda")
    results = []
    for b in backends:
        for m in modes:
            results.append(_run_child(b, m, args))
            print(f"{b}/{m}: " + (f"{results[-1]['growth']:+.2f} MB per 1,000 cycles" if "growth" in results[-1]
                                  else "failed"), file=sys.stderr, flush=True)
    text = table(results)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "soak.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "soak.md"), "w") as f:
        f.write(f"Soak: {args.cycles} cycles of compile + call + jit.reset(), RSS in MB; growth after "
                f"{args.warmup} cycles.\n\n{text}\n")
    plot(results, os.path.join(args.out, "soak.png"))


if __name__ == "__main__":
    main()

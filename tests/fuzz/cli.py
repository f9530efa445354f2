"""python -m tests.fuzz --backend eager,default --seeds 0:1000 [--minimize] [--save DIR] [--show SEED]

Generates one program per seed, checks it against eager on every backend asked for, and prints a summary
(programs, ok, wrong, crash, skipped, per category) and, for each failure, its seed, what differed and the
(minimized) program. --save writes each failure as a standalone reproducer script.
"""
from __future__ import annotations

import argparse
import collections
import os
import pathlib
import resource
import sys
import tempfile
import time

import torch

from .generator import generate
from .minimize import minimize
from .oracle import BACKENDS, check


def seed_range(text: str) -> range:
    if ":" in text:
        start, stop = text.split(":")
        return range(int(start), int(stop))
    return range(int(text), int(text) + 1)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[1])
    ap.add_argument("--backend", action="append", default=None,
                    help=f"one of {', '.join(BACKENDS)} (repeat, or comma-separated); default: eager,default")
    ap.add_argument("--seeds", type=seed_range, default=range(0, 100), help="START:STOP or one seed (default 0:100)")
    ap.add_argument("--minimize", action="store_true", help="shrink each failure before printing it")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of minimizing per failure (default 60)")
    ap.add_argument("--save", type=pathlib.Path, help="write each failure's reproducer script here")
    ap.add_argument("--show", action="store_true", help="print each program's source, failing or not")
    ap.add_argument("--memory-gb", type=float, default=8.0,
                    help="address-space limit of this process (default 8): a runaway compile raises MemoryError, "
                         "which is reported as a crash, instead of exhausting a shared machine; 0: none")
    args = ap.parse_args(argv)
    names = [b for item in (args.backend or ["eager,default"]) for b in item.split(",") if b]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown:
        ap.error(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    args.backends = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.memory_gb:
        limit = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    # Compiled NumPy modules go to a private cache: runs stay independent of what an earlier run left on disk.
    os.environ.setdefault("FRAMEJIT_CACHE_DIR", tempfile.mkdtemp(prefix="framejit-fuzz-"))
    if "triton" in args.backends and "triton" not in sys.modules and not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")  # the Triton arm's kernels in the CPU interpreter
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    counts = {b: collections.Counter() for b in args.backends}
    coverage = {b: collections.Counter() for b in args.backends}
    categories = {b: collections.Counter() for b in args.backends}
    failures = []
    started = time.monotonic()
    for seed in args.seeds:
        program = generate(seed)
        if args.show:
            print(f"# seed {seed}\n{program.source()}")
        for backend in args.backends:
            verdict = check(program, backend)
            counts[backend][verdict.status] += 1
            coverage[backend].update(verdict.counters)
            coverage[backend]["programs with a graph"] += bool(verdict.counters.get("graphs"))
            if verdict.status == "ok":
                continue
            categories[backend][verdict.category] += 1
            if verdict.status == "skip":
                continue
            shown = minimize(program, backend, verdict, args.budget) if args.minimize else program
            final = check(shown, backend) if args.minimize else verdict
            failures.append((seed, backend, verdict, shown))
            _report(seed, backend, verdict, shown, final)
            if args.save:
                (args.save / f"seed{seed}_{backend}.py").write_text(
                    f"# seed {seed}, backend {backend}: {final}\n" + shown.reproducer(backend))
    _summary(args, counts, categories, coverage, time.monotonic() - started)
    return 1 if failures else 0


def _report(seed: int, backend: str, verdict, program, final) -> None:
    print(f"\n=== seed {seed} backend {backend}: {verdict}")
    if final is not verdict:
        print(f"--- minimized ({final}):")
    print(program.source().rstrip())
    for i in range(len(program.calls)):
        print(f"# call {i}: f({', '.join(program.arg_exprs(i))})")
    sys.stdout.flush()


def _summary(args, counts, categories, coverage, seconds: float) -> None:
    seeds = args.seeds
    print(f"\nseeds {seeds.start}:{seeds.stop}, {seconds:.1f} s")
    for backend in args.backends:
        c = counts[backend]
        per = ", ".join(f"{k} {v}" for k, v in sorted(categories[backend].items()))
        print(f"{backend:8s} programs {sum(c.values())}  ok {c['ok']}  wrong {c['wrong']}  crash {c['crash']}  "
              f"skipped {c['skip']}" + (f"  ({per})" if per else ""))
        print(" " * 9 + ", ".join(f"{k} {v}" for k, v in sorted(coverage[backend].items())))

"""Per-call cost on a cache hit (issue 5): `x + 1` on one small tensor and the GPT-style model, eager vs
torch.compile vs framejit in the same run, and framejit's guard function timed alone.

  eager                      the function as written
  torch.compile (eager bk)   Dynamo's frontend, the captured graph run as is
  torch.compile (default)    Dynamo + inductor (CPU: C++ kernels) -- with --inductor only: ~20 s compile per item
  framejit (eager backend)   our frontend, the captured graph run as is
  framejit (default)         our frontend + the NumPy backend
  framejit guard alone       the entry's generated guard function called directly (what a hit checks)

Goal: framejit <= 5 us over eager per call on the CPU.

    PYTHONPATH=. .venv/bin/python benchmarks/guard_overhead.py [--inductor] [--tag NAME]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import jit  # noqa: E402
from benchmarks.harness import Suite, markdown, save  # noqa: E402
from benchmarks.models.gpt import GPT, small_config  # noqa: E402
from jit import _C  # noqa: E402


def add_one(x):
    return x + 1


def workloads():
    x = torch.ones(1)
    yield "x-plus-1", add_one, (x,), add_one.__code__
    model = GPT(small_config(), seed=0).eval()
    idx = torch.randint(0, small_config().vocab_size, (1, 8))

    def gpt(idx):  # a plain function around the model, so every variant pays the same extra frame
        return model(idx)
    yield "gpt-small", gpt, (idx,), gpt.__code__


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inductor", action="store_true", help="also torch.compile's default backend")
    parser.add_argument("--tag", default="")
    opts = parser.parse_args()
    import torch._dynamo  # baseline only
    torch.set_num_threads(1)
    tables = []
    for name, fn, args, code in workloads():
        variants = {"eager": fn,
                    "torch.compile (eager backend)": torch.compile(fn, backend="eager"),
                    "framejit (eager backend)": jit.compile(fn, backend="eager"),
                    "framejit (default)": jit.compile(fn)}
        if opts.inductor:
            variants["torch.compile (default)"] = torch.compile(fn)
        with torch.no_grad():
            for f in variants.values():
                f(*args), f(*args)
            guard = next(e.guard for e in _C.get_entries(code) if e.guard(*args, fn))
            suite = Suite(f"guard-overhead-{name}")
            for label, f in variants.items():
                suite.add(label, (lambda f=f: f(*args)))
            suite.add("framejit guard alone", lambda: guard(*args, fn))
            results = suite.run(calls_per_round=2000 if name == "x-plus-1" else 300, rounds=9, warmup=100)
        eager_ns = next(r.ns_per_call for r in results if r.name == "eager")
        over = {r.name: f"{(r.ns_per_call - eager_ns) / 1000:+.1f} us" for r in results if r.name != "eager"
                and "guard" not in r.name}
        table = markdown(suite, results, {"over eager": over})
        print(f"### {name}\n\n{table}\n")
        tables.append((suite, results, table))
    for suite, results, table in tables:
        print("saved", save(suite, results, table, opts.tag))


if __name__ == "__main__":
    main()

"""Capture time and per-call overhead on a cache hit, framejit vs TorchDynamo, both with backend="eager" (the
captured graph runs as is, so the difference is the frontend: capture, guards, generated code).

  capture: the first call after a reset (symbolic execution, guards, code generation; the eager backend adds
           nothing), median of several resets
  per call: a cache hit on tiny inputs, so the frontend's per-call cost dominates; eager is the reference

Goals (issue 3): capture >= 3x faster than Dynamo; per-call overhead no worse than Dynamo's."""
from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jit  # noqa: E402
from benchmarks.harness import RESULTS_DIR, Suite, markdown  # noqa: E402
from benchmarks.models.gpt import GPT, GPTConfig, LoopGPT, small_config  # noqa: E402


def capture_seconds(make_compiled, reset, x, repeats=5) -> float:
    times = []
    for _ in range(repeats):
        reset()
        fn = make_compiled()
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    import torch._dynamo  # baseline only
    torch.set_num_threads(1)
    configs = {"GPT small (2 layers)": (GPT, small_config()),
               "LoopGPT small": (LoopGPT, small_config()),
               "GPT 4 layers C256": (GPT, GPTConfig(vocab_size=512, block_size=64, n_layer=4, n_head=4, n_embd=256))}
    rows = []
    for name, (cls, config) in configs.items():
        model = cls(config, seed=0).eval()
        idx = torch.randint(0, config.vocab_size, (1, 8))
        with torch.no_grad():
            ours = capture_seconds(lambda: jit.compile(model, backend="eager"), jit.reset, idx)
            dynamo = capture_seconds(lambda: torch.compile(model, backend="eager"), torch._dynamo.reset, idx)
            ours_fn, dyn_fn = jit.compile(model, backend="eager"), torch.compile(model, backend="eager")
            jit.reset(), torch._dynamo.reset()
            ours_fn(idx), dyn_fn(idx)
            suite = Suite(f"per-call {name}")
            suite.add("eager", lambda: model(idx))
            suite.add("framejit (eager backend)", lambda: ours_fn(idx))
            suite.add("torch.compile (eager backend)", lambda: dyn_fn(idx))
            results = suite.run(calls_per_round=300, rounds=9, warmup=50)
        by = {r.name: r.ns_per_call / 1000 for r in results}
        rows.append((name, ours, dynamo, by))
        print(markdown(suite, results))
        print()
    lines = ["| model | capture framejit | capture Dynamo | capture speed-up | per-call eager | framejit overhead | "
             "Dynamo overhead |", "|---|---|---|---|---|---|---|"]
    for name, ours, dyn, by in rows:
        e = by["eager"]
        lines.append(f"| {name} | {ours * 1000:.0f} ms | {dyn * 1000:.0f} ms | {dyn / ours:.1f}x | {e:.0f} us | "
                     f"{by['framejit (eager backend)'] - e:+.1f} us | {by['torch.compile (eager backend)'] - e:+.1f} us |")
    table = "\n".join(lines)
    print(table)
    out = os.path.join(RESULTS_DIR, f"capture-py{sys.version_info.major}{sys.version_info.minor}.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    from benchmarks.harness import environment
    with open(out, "w") as f:
        f.write(f"# capture and per-call overhead (backend='eager')\n\n{environment()}\n\n{table}\n")


if __name__ == "__main__":
    main()

"""Run benchmark variants side by side in one process and report ratios.

Variants are timed in interleaved rounds (A B C A B C ...) so drift in machine speed hits all of them alike; each
round times a batch of calls and the median round is reported. Results go to stdout as a markdown table and to
<RESULTS_DIR>/<name>.json and .md, with the machine and library versions.

RESULTS_DIR is benchmarks/out/ (untracked: a run does not rewrite the committed tables), or benchmarks/results/
(the committed tables, which docs and NOTES.md cite) when the script is run with --update-results. Every script
importing this module accepts that flag: it is taken out of sys.argv here, before the script parses its own."""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_HERE = os.path.dirname(os.path.abspath(__file__))
COMMITTED_DIR = os.path.join(_HERE, "results")
OUT_DIR = os.path.join(_HERE, "out")


def _take_flag(flag: str) -> bool:
    found = flag in sys.argv[1:]
    sys.argv[1:] = [a for a in sys.argv[1:] if a != flag]
    return found


UPDATE_RESULTS = _take_flag("--update-results")
RESULTS_DIR = COMMITTED_DIR if UPDATE_RESULTS else OUT_DIR


@dataclass
class Variant:
    name: str
    fn: Callable[[], object]  # one call of the thing measured
    note: str = ""


@dataclass
class Result:
    name: str
    ns_per_call: float
    spread: float  # (max - min) / median over rounds: how much to trust small differences
    note: str = ""


@dataclass
class Suite:
    name: str
    variants: list[Variant] = field(default_factory=list)
    baseline: str | None = None  # ratios are relative to this variant (default: the first)

    def add(self, name: str, fn: Callable[[], object], note: str = "") -> None:
        self.variants.append(Variant(name, fn, note))

    def run(self, calls_per_round: int = 10000, rounds: int = 15, warmup: int = 1000) -> list[Result]:
        for v in self.variants:
            for _ in range(warmup):
                v.fn()
        samples: dict[str, list[float]] = {v.name: [] for v in self.variants}
        for _ in range(rounds):
            for v in self.variants:
                samples[v.name].append(_time_batch(v.fn, calls_per_round) / calls_per_round)
        results = []
        for v in self.variants:
            s = samples[v.name]
            med = statistics.median(s)
            results.append(Result(v.name, med, (max(s) - min(s)) / med if med else 0.0, v.note))
        return results


def _time_batch(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return time.perf_counter_ns() - t0


def environment() -> dict:
    info = {"python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "platform": platform.platform()}
    for mod in ("torch", "numpy", "triton"):
        m = sys.modules.get(mod)
        if m is not None:
            info[mod] = getattr(m, "__version__", "?")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def markdown(suite: Suite, results: list[Result], extra_columns: dict[str, dict[str, str]] | None = None) -> str:
    base_name = suite.baseline or results[0].name
    base = next(r for r in results if r.name == base_name).ns_per_call
    extra_columns = extra_columns or {}
    head = ["variant", "ns/call", f"speed-up vs {base_name}", "spread", *extra_columns, "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.name, f"{r.ns_per_call:,.0f}", f"{base / r.ns_per_call:.2f}x", f"{r.spread:.0%}",
                 *(col.get(r.name, "") for col in extra_columns.values()), r.note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save(suite: Suite, results: list[Result], table: str, tag: str = "") -> str:
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stem = os.path.join(RESULTS_DIR, suite.name + (f"-{tag}" if tag else ""))
    env = environment()
    with open(stem + ".json", "w") as f:
        json.dump({"suite": suite.name, "environment": env, "results": [r.__dict__ for r in results]}, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(f"# {suite.name}\n\n{json.dumps(env)}\n\n{table}\n")
    return stem


def launches(compiled, inputs) -> dict:
    """Kernel name -> (its Launcher, the arguments of its launch), for one call of a graph compiled by the Triton
    backend: what config studies (gpu_norm_configs.py, gpu_transpose.py) time candidates on. Spies on the launch
    table the generated module calls through (`compiled.calls`: each Launcher or its published fast path)."""
    from framejit.inductor.runtime import triton_graph as triton_runtime
    seen, calls = {}, compiled.calls
    spies = {}

    def spy(name, fn):
        def launch(*args):
            seen[name] = (compiled.launch[name], args)
            return fn(*args)
        return launch
    for name, fn in list(calls.items()):
        if isinstance(compiled.launch[name], triton_runtime.Launcher):
            spies[name] = calls[name] = spy(name, fn)
    try:
        compiled(*inputs)
    finally:
        for name, fn in spies.items():
            if calls[name] is fn:  # not replaced by a path the launcher published during the call
                calls[name] = compiled.launch[name]
                compiled.launch[name]._refresh()
    return seen


def triton_modules(fn, inputs, settings: dict) -> dict | None:
    """The jit's graph of one call of `fn` compiled by the Triton backend once per entry of `settings` (variant
    name -> environment variables set while it compiles: the backend reads its switches then), as zero-argument
    calls with the arguments the jit passes: versions of the generated module side by side in one process (two
    processes on a noisy host differ by more than what is measured). None if the call is not one graph."""
    import copy
    from unittest import mock
    import jit
    from framejit.inductor.backends import triton_backend
    graphs, args = [], []

    def capture(gm, example_inputs):
        graphs.append((copy.deepcopy(gm), list(example_inputs)))

        def call(*a):
            args.append(a)
            return gm(*a)
        return call
    capture.dynamic_sizes = True
    jit.compile(fn, backend=capture, dynamic=False)(*inputs)
    jit.reset()  # the variants compile their own entries
    if len(graphs) != 1:
        return None
    (gm, example), = graphs
    a = args[0]
    out = {}
    for name, env in settings.items():
        with mock.patch.dict(os.environ, env):
            module = triton_backend(copy.deepcopy(gm), example)
        out[name] = lambda module=module: module(*a)
    return out


# ---- compiled-vs-eager tables on a device (gpu_suite.py, broad.py) ------------------------------------------------
def _flat(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def rel_error(got, ref) -> float:
    """The worst relative L2 error, in float64, of the outputs `got` against `ref` over their finite entries
    (inf where the finite entries are not in the same places)."""
    import torch
    worst = 0.0
    for g, r in zip(_flat(got), _flat(ref)):
        g, r = g.double(), r.double()
        if not torch.isfinite(g).all() and not torch.equal(torch.isfinite(g), torch.isfinite(r)):
            return float("inf")
        fin = torch.isfinite(r)
        worst = max(worst, ((g - r)[fin].norm() / r[fin].norm().clamp_min(1e-30)).item())
    return worst


def timed_rounds(calls: dict, args=(), rounds: int = 7, rep_ms: int = 30) -> dict:
    """Each call's median time in ms per round, each called on `args` (CUDA: triton.testing.do_bench, CUDA events,
    L2 flushed between runs). The calls take turns within every round, so a GPU whose clocks drift during the run
    (a long fp32 GEMM row heats it) slows them alike instead of whichever happened to run last, and two calls of
    one round can be compared pairwise."""
    import triton.testing
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, f in calls.items():
            times[name].append(triton.testing.do_bench(lambda: f(*args), warmup=5, rep=rep_ms,
                                                       return_mode="median"))
    return times


def gpu_tag(name: str) -> str:
    """The short device name results files carry: h100, h200 (the second word of 'NVIDIA H100 80GB HBM3'),
    or 'gpu'."""
    words = name.split()
    return words[1].lower() if len(words) > 1 else "gpu"


def speedup_chart(rows, path, ours_label: str = "framejit (Triton)", inch_per_row: float = 0.9,
                  log: bool = False) -> bool:
    """A bar chart of torch.compile's and ours speed-ups over eager per row (keys workload, dtype, speedup_torch,
    speedup_ours) as a PNG at `path` (`log`: a log axis, for speed-ups spanning decades); False when matplotlib is
    not importable."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = [f"{r['workload']}\n{r['dtype']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * inch_per_row), 5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["speedup_torch"] for r in rows], 0.4, label="torch.compile")
    ax.bar([x + 0.2 for x in xs], [r["speedup_ours"] for r in rows], 0.4, label=ours_label)
    ax.axhline(1.0, color="gray", lw=0.8)
    if log:
        ax.set_yscale("log")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("speed-up over eager")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True

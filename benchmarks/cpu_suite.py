"""CPU suite: eager vs torch.compile (its default inductor backend, CPU) vs framejit (`jit.compile(fn)`, NumPy
code) on memory-bound kernels and a small GPT, side by side in one process (harness.Suite).

For each workload: correctness first (max |compiled - eager|), then per-call time in interleaved rounds and the
speed-up over eager, then first-call times: torch.compile's (capture + inductor + C++ build, its caches in a
fresh directory), framejit's cold (empty FRAMEJIT_CACHE_DIR) and warm (a fresh process reading the disk cache
the cold run filled). First calls are timed after a throwaway compile of an unrelated function in the same
process, so they exclude one-time imports.

    PYTHONPATH=. .venv/bin/python benchmarks/cpu_suite.py                 # the suite (~4-6 minutes on 2 cores)
    PYTHONPATH=. .venv/bin/python benchmarks/cpu_suite.py --profile       # where framejit's time goes, per kernel
    PYTHONPATH=. .venv/bin/python benchmarks/cpu_suite.py --only softmax  # one workload
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import jit  # noqa: E402
from benchmarks import harness  # noqa: E402
from benchmarks.models.gpt import GPT, GPTConfig  # noqa: E402


# ---- workloads: each a function of tensors (or a module) and a builder of its inputs ---------------------------
def pointwise_chain(x, y):
    return torch.sigmoid(x * 2.0 + y) * torch.tanh(y) - 0.5 * x


def layernorm(x, w, b):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * w + b


def softmax(x):
    e = torch.exp(x - x.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def rmsnorm_residual(x, r, w):
    h = x + r
    return h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + 1e-6) * w


def linear_gelu(x, w, b):
    return F.gelu(x @ w + b)


def _gpt():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=512, block_size=64, n_layer=4, n_head=4, n_embd=128), seed=0).eval()
    return model, (torch.randint(0, 512, (2, 32)),)


def _randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


WORKLOADS = {  # name -> (callable or module factory, inputs factory, size in words)
    "pointwise": (pointwise_chain, lambda: (_randn(1024, 1024, seed=1), _randn(1024, 1024, seed=2)), "2x 1024x1024"),
    "layernorm": (layernorm, lambda: (_randn(2048, 512, seed=3), _randn(512, seed=4), _randn(512, seed=5)),
                  "2048x512"),
    "softmax": (softmax, lambda: (_randn(2048, 512, seed=6),), "2048x512"),
    "rmsnorm_residual": (rmsnorm_residual, lambda: (_randn(2048, 512, seed=7), _randn(2048, 512, seed=8),
                                                    _randn(512, seed=9)), "2048x512"),
    "linear_gelu": (linear_gelu, lambda: (_randn(256, 512, seed=10), _randn(512, 1024, seed=11) * 0.05,
                                          _randn(1024, seed=12)), "256x512 @ 512x1024"),
    "gpt": (None, None, "GPT 4 layers C128 4 heads, B2 T32"),
}


def build(name):
    """(eager callable, inputs). The GPT's callable is its module."""
    fn, make_inputs, _ = WORKLOADS[name]
    if name == "gpt":
        return _gpt()
    return fn, make_inputs()


def _warm_up_compilers(with_torch_compile: bool):
    """Compile an unrelated function once, so first-call times below exclude one-time imports."""
    def throwaway(a):
        return (a * 3.0).sum(dim=-1)
    a = torch.randn(8, 8)
    jit.compile(throwaway)(a)
    if with_torch_compile:
        torch.compile(throwaway)(a)


def _timed_first_call(fn, args):
    t0 = time.perf_counter()
    with torch.no_grad():
        out = fn(*args)
    return time.perf_counter() - t0, out


# ---- subprocess mode: framejit first calls against a given disk cache ------------------------------------------
def first_calls(names):
    """Run in a fresh process: framejit's first-call time per workload (the cache dir comes from the env)."""
    _warm_up_compilers(False)
    times = {}
    for name in names:
        fn, args = build(name)
        times[name], _ = _timed_first_call(jit.compile(fn), args)
    print(json.dumps(times))


def framejit_first_calls(names, cache_dir):
    env = dict(os.environ, FRAMEJIT_CACHE_DIR=cache_dir, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--first-calls", ",".join(names)],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- the suite ---------------------------------------------------------------------------------------------------
def _faults_per_call(f, args, calls: int = 10) -> float:
    """Minor page faults per call: a fresh multi-MiB tensor that malloc maps anew costs ~1 us per 4 KiB page on
    this VM, and whether glibc reuses freed blocks or maps new ones changes from process to process, so this
    column explains most of eager's spread between runs."""
    import resource
    with torch.no_grad():
        f(*args)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(calls):
            f(*args)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


def max_error(out, ref):
    return (out.double() - ref.double()).abs().max().item()


def run_suite(names, rounds: int):
    with tempfile.TemporaryDirectory() as inductor_cache, tempfile.TemporaryDirectory() as jit_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_cache  # cold torch.compile: nothing reused from earlier
        cold = framejit_first_calls(names, jit_cache)  # fresh process, empty cache dir: fills it
        warm = framejit_first_calls(names, jit_cache)  # fresh process, the cache dir filled above
        os.environ["FRAMEJIT_CACHE_DIR"] = jit_cache
        _warm_up_compilers(True)
        rows, tables = [], []
        for name in names:
            fn, args = build(name)
            tc, fj = torch.compile(fn), jit.compile(fn)
            tc_first, tc_out = _timed_first_call(tc, args)
            _, fj_out = _timed_first_call(fj, args)
            with torch.no_grad():
                ref = fn(*args)
            errors = {"torch.compile": max_error(tc_out, ref), "framejit": max_error(fj_out, ref)}
            with torch.no_grad():
                t0 = time.perf_counter()
                fn(*args)
                once = time.perf_counter() - t0
            calls = max(1, int(0.02 / max(once, 1e-6)))  # ~20 ms of eager work per round
            suite = harness.Suite(f"cpu-suite-{name}")
            for label, f in (("eager", fn), ("torch.compile", tc), ("framejit", fj)):
                suite.add(label, (lambda f=f: f(*args)))
            with torch.no_grad():
                results = suite.run(calls_per_round=calls, rounds=rounds, warmup=3)
            faults = {label: _faults_per_call(f, args) for label, f in (("eager", fn), ("framejit", fj))}
            by = {r.name: r for r in results}
            eager_ns = by["eager"].ns_per_call
            row = {"workload": name, "size": WORKLOADS[name][2], "eager_ms": eager_ns / 1e6,
                   "torch_compile_ms": by["torch.compile"].ns_per_call / 1e6,
                   "framejit_ms": by["framejit"].ns_per_call / 1e6,
                   "torch_compile_speedup": eager_ns / by["torch.compile"].ns_per_call,
                   "framejit_speedup": eager_ns / by["framejit"].ns_per_call,
                   "torch_compile_max_err": errors["torch.compile"], "framejit_max_err": errors["framejit"],
                   "torch_compile_first_call_s": tc_first, "framejit_cold_first_call_s": cold[name],
                   "framejit_warm_first_call_s": warm[name],
                   "eager_page_faults_per_call": faults["eager"], "framejit_page_faults_per_call": faults["framejit"],
                   "spread": {r.name: r.spread for r in results}}
            rows.append(row)
            tables.append(f"### {name} ({row['size']})\n\n" + harness.markdown(
                suite, results, {"max err vs eager": {k: f"{v:.1e}" for k, v in errors.items()}}))
            print(tables[-1] + "\n", flush=True)
    return rows, tables


def summary(rows) -> str:
    head = ("| workload | size | eager ms | torch.compile | framejit | max err tc / fj | first call tc | "
            "framejit cold | framejit warm | page faults/call eager / fj |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['size']} | {r['eager_ms']:.2f} | {r['torch_compile_speedup']:.2f}x | "
                     f"{r['framejit_speedup']:.2f}x | {r['torch_compile_max_err']:.1e} / {r['framejit_max_err']:.1e} | "
                     f"{r['torch_compile_first_call_s']:.1f} s | {r['framejit_cold_first_call_s'] * 1e3:.0f} ms | "
                     f"{r['framejit_warm_first_call_s'] * 1e3:.0f} ms | "
                     f"{r['eager_page_faults_per_call']:.0f} / {r['framejit_page_faults_per_call']:.0f} |")
    return ("Speed-up = eager time / variant time (> 1 is faster than eager); median of interleaved rounds.\n\n"
            + "\n".join(lines))


def save(rows, tables, tag):
    os.makedirs(harness.RESULTS_DIR, exist_ok=True)
    stem = os.path.join(harness.RESULTS_DIR, "cpu-suite" + (f"-{tag}" if tag else ""))
    env = harness.environment()
    env["torch_threads"] = torch.get_num_threads()
    env["framejit_numpy_threads"] = getattr(sys.modules.get("_framejit_numpy_threads"), "count", None)
    with open(stem + ".json", "w") as f:
        json.dump({"suite": "cpu-suite", "environment": env, "rows": rows}, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(f"# cpu-suite\n\n{json.dumps(env)}\n\n{summary(rows)}\n\n" + "\n\n".join(tables) + "\n")
    return stem


# ---- profile: where framejit's time goes ------------------------------------------------------------------------
def _capture(fn, args):
    """jit.compile(fn) with a backend that records what the default backend returned for each graph."""
    from framejit.inductor import inductor_backend
    graphs = []

    def recording_backend(gm, example_inputs):
        compiled = inductor_backend(gm, example_inputs)
        graphs.append((compiled, list(example_inputs)))
        return compiled

    compiled = jit.compile(fn, backend=recording_backend)
    with torch.no_grad():
        compiled(*args)
    return compiled, graphs


def _per_call_ns(f, n):
    f()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def _allocations(source: str) -> int:
    """Statements in the generated code that allocate an array (views and in-place `out=` calls do not)."""
    views = ("np.reshape(", "np.transpose(", "np.broadcast_to(", "np.expand_dims(", "np.asarray(")
    count = 0
    for line in source.splitlines():
        stripped = line.strip()
        if re.match(r"t\d+ = ", stripped) and not any(v in stripped for v in views) and "[" not in stripped:
            count += 1
    return count


def profile_one(name):
    from framejit.inductor.runtime.numpy_graph import CompiledNumpyGraph, load_module, to_numpy
    fn, args = build(name)
    compiled, graphs = _capture(fn, args)
    with torch.no_grad():
        calls = max(3, int(0.02 / max(_per_call_ns(lambda: fn(*args), 3) / 1e9, 1e-6)))
        eager = _per_call_ns(lambda: fn(*args), calls)
        whole = _per_call_ns(lambda: compiled(*args), calls)
    print(f"\n=== {name} ({WORKLOADS[name][2]}): eager {eager / 1e3:.0f} us, framejit {whole / 1e3:.0f} us "
          f"({eager / whole:.2f}x), {len(graphs)} graph(s)")
    for g, example_inputs in graphs:
        if not isinstance(g, CompiledNumpyGraph):
            print(f"  graph runs as {type(g).__name__} (not NumPy code)")
            continue
        module = load_module(g.source, f"<profile-{name}>")  # a private copy: the cached module stays untouched
        spent: dict = {}

        depth = [0]

        def timed(label, f):
            def call(*a):  # a row group's own line, and its kernels indented under it
                depth[0] += 1
                t0 = time.perf_counter_ns()
                try:
                    return f(*a)
                finally:
                    depth[0] -= 1
                    key = label if depth[0] == 0 else "    in group: " + label
                    spent[key] = spent.get(key, 0) + time.perf_counter_ns() - t0
            return call

        for key, value in list(vars(module).items()):
            if callable(value) and getattr(value, "__code__", None) is not None and \
                    value.__code__.co_filename == module.__file__ and not key.startswith("_") and key != "run":
                setattr(module, key, timed(key, value))
        fallbacks = {k: timed(k + " (torch)", f) for k, f in g.fallbacks.items()}
        consts = iter(c for _, c in g.constants)
        tensors = iter(example_inputs)  # the captured graph's own inputs (a module's parameters among them)
        arrays = [to_numpy(next(consts) if getattr(buf, "attr", None) else next(tensors)) for buf in g.lowered.inputs]
        original = g.module
        threads = sys.modules["_framejit_numpy_threads"]
        with torch.no_grad():
            run_only = _per_call_ns(lambda: original.run(arrays, g.fallbacks), calls)
            wrapper = _per_call_ns(lambda: g(*example_inputs), calls)
            count, threads.count = threads.count, 1  # per-kernel times on one thread: attribution is exact
            try:
                one_thread = _per_call_ns(lambda: original.run(arrays, g.fallbacks), calls)
                spent.clear()
                n = calls * 3
                for _ in range(n):
                    module.run(arrays, fallbacks)
            finally:
                threads.count = count
        kernels = sum(v for k, v in spent.items() if not k.startswith(" ")) / n
        print(f"  whole jit call {whole / 1e3:.0f} us = guards+frontend {max(whole - wrapper, 0) / 1e3:.0f} us + "
              f"torch<->numpy wrapper {max(wrapper - run_only, 0) / 1e3:.0f} us + run() {run_only / 1e3:.0f} us "
              f"(kernels {kernels / 1e3:.0f} us, glue {max(run_only - kernels, 0) / 1e3:.0f} us); "
              f"{len(spent)} kernels, {_allocations(g.source)} allocating statements; run() on 1 thread "
              f"{one_thread / 1e3:.0f} us (per-kernel times below are on 1 thread)")
        top = int(os.environ.get("PROFILE_TOP", 8))
        outer = sorted((kv for kv in spent.items() if not kv[0].startswith(" ")), key=lambda kv: -kv[1])[:top]
        for label, ns in [x for kv in outer for x in [kv] + sorted(
                ((k, v) for k, v in spent.items() if kv[0].startswith("rows_") and k.startswith(" ")),
                key=lambda kv: -kv[1])]:
            print(f"    {ns / n / 1e3:8.1f} us  {label}")
    with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(10):
            fn(*args)
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:6]
    print("  eager, top ops by self time per call: " + ", ".join(
        f"{e.key} {e.self_cpu_time_total / 10:.0f} us" for e in top))


def primitives():
    """The same primitive in NumPy and in torch, at the suite's sizes (numpy: one thread; torch: all cores)."""
    import numpy as np
    x = np.random.default_rng(0).standard_normal((2048, 512), dtype=np.float32)
    y, out = x.copy(), np.empty_like(x)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    a, w = x[:256], np.random.default_rng(1).standard_normal((512, 1024), dtype=np.float32)
    at, wt = torch.from_numpy(a), torch.from_numpy(w)
    from framejit.inductor.numpy.codegen import PRELUDE
    helpers: dict = {}
    exec(PRELUDE, helpers)
    cases = [("add (new array)", lambda: np.add(x, y), lambda: torch.add(xt, yt)),
             ("add (out=)", lambda: np.add(x, y, out=out), lambda: torch.add(xt, yt, out=torch.from_numpy(out))),
             ("exp", lambda: np.exp(x), lambda: torch.exp(xt)),
             ("sum over last dim", lambda: np.sum(x, axis=-1, keepdims=True), lambda: xt.sum(-1, keepdim=True)),
             ("max over last dim", lambda: np.max(x, axis=-1, keepdims=True), lambda: xt.amax(-1, keepdim=True)),
             ("erf", lambda: helpers["_erf"](x), lambda: torch.erf(xt)),
             ("gelu", lambda: helpers["_gelu"](x), lambda: F.gelu(xt)),
             ("matmul 256x512x1024", lambda: np.matmul(a, w), lambda: at @ wt)]
    print("\n=== primitives on 2048x512 float32 (numpy vs torch, us per call)")
    for label, np_fn, torch_fn in cases:
        n_ns, t_ns = _per_call_ns(np_fn, 50), _per_call_ns(torch_fn, 50)
        print(f"  {label:24s} numpy {n_ns / 1e3:8.1f}   torch {t_ns / 1e3:8.1f}   numpy/torch {n_ns / t_ns:.2f}")


def profile_all(names):
    print(f"torch threads: {torch.get_num_threads()}")
    primitives()
    for name in names:
        profile_one(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tag", default="")
    parser.add_argument("--profile", action="store_true", help="per-kernel profile of framejit's code")
    parser.add_argument("--first-calls", default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    names = [n for n in opts.only.split(",") if n] or list(WORKLOADS)
    if opts.first_calls is not None:
        first_calls(opts.first_calls.split(","))
        return
    if opts.profile:
        profile_all(names)
        return
    rows, tables = run_suite(names, opts.rounds)
    print(summary(rows))
    print("saved", save(rows, tables, opts.tag))


if __name__ == "__main__":
    main()

"""Host time per call of small GPU graphs, where the GPU work is short and the host path decides the speed:
eager vs torch.compile (default, and mode="reduce-overhead": its CUDA graphs) vs framejit (jit.compile, Triton
backend, CUDA graphs on as by default) on a 4-layer GPT (C768, bf16, eval, no_grad) at B1 T16, B1 T128 and
B4 T256, and on a one-kernel graph (tanh(x) * 2 + 1 on 64x64 fp32).

Two numbers per variant, in interleaved rounds (eager, torch.compile, framejit, eager, ...; medians):
  * wall: per-call time of back-to-back calls, synchronized once after the batch (what a serving loop sees);
  * host: per-call time of a few calls without synchronizing (the CPU's share; few enough that the launch queue
    never fills, so a call never waits for the GPU).
Both compilers compile statically (dynamic=False): one entry per shape, as a fixed-shape server would have.
With framejit, two more rows call its compiled graph directly (no frame hook, no guards, no CUDA graphs): the
generated module's launches as generated, and as generated with FRAMEJIT_TRITON_HOST_SHORTCUTS=0 (`module_pair`),
interleaved with the rest.

  python benchmarks/gpu_host_overhead.py [--variants eager,torch.compile,framejit] [--tag TAG]
                                         [--rounds N] [--save-outputs DIR]

--save-outputs writes framejit's output per workload (to compare two versions bit for bit). Results go to
benchmarks/out/gpu-host-overhead-<gpu>[-TAG].md/.json (benchmarks/results with --update-results). Without a
CUDA GPU it says so and exits."""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_TMP = tempfile.mkdtemp(prefix="gpu-host-overhead-")
os.environ.setdefault("FRAMEJIT_CACHE_DIR", os.path.join(_TMP, "framejit"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(_TMP, "inductor"))

import torch  # noqa: E402

from benchmarks.gpu_suite import first_call as gpu_first_call, gpu_tag, rel_error  # noqa: E402  (cache dirs set above)
from benchmarks.harness import RESULTS_DIR, environment, triton_modules  # noqa: E402

VARIANTS = ("eager", "torch.compile", "torch.compile reduce-overhead", "framejit")
# framejit's graph called directly (no hook, no guards), generated with and without the host shortcuts
MODULE, GENERAL = "framejit module", "framejit module, general paths"
GPT_SHAPES = (("GPT 4 layers B1 T16", 1, 16), ("GPT 4 layers B1 T128", 1, 128), ("GPT 4 layers B4 T256", 4, 256))
WALL_CALLS, HOST_CALLS = 30, 5  # 5 calls of the GPT launch ~200 kernels: well inside CUDA's launch queue


def chain(x):
    return torch.tanh(x) * 2 + 1


def workloads():
    """(name, callable taking the inputs, inputs) per workload; one model shared by the GPT rows."""
    from benchmarks.models.gpt import GPT, GPTConfig
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50304, block_size=1024, n_layer=4, n_head=12, n_embd=768)
    model = GPT(cfg).to("cuda", torch.bfloat16).eval()
    out = [(name, model, (torch.randint(0, cfg.vocab_size, (b, t), device="cuda"),)) for name, b, t in GPT_SHAPES]
    out.append(("tanh(x)*2+1 64x64 fp32 (one kernel)", chain, (torch.randn(64, 64, device="cuda"),)))
    return out


def compiled(variant: str, fn):
    if variant == "eager":
        return fn
    if variant == "torch.compile":
        return torch.compile(fn, dynamic=False)
    if variant == "torch.compile reduce-overhead":  # its CUDA graphs (cudagraph trees)
        return torch.compile(fn, dynamic=False, mode="reduce-overhead")
    import jit
    return jit.compile(fn, dynamic=False)


def module_pair(fn, inputs) -> dict | None:
    """The jit's graph of one call compiled by the Triton backend twice, with the host shortcuts (MODULE) and
    with FRAMEJIT_TRITON_HOST_SHORTCUTS=0 (GENERAL: every op as the graph spells it, `fixed_layout` on every
    library result, views one by one, launches through the Launcher), CUDA graphs off in both: the generated
    module's own cost."""
    return triton_modules(fn, inputs, {MODULE: {"FRAMEJIT_CUDA_GRAPHS": "0"},
                                       GENERAL: {"FRAMEJIT_CUDA_GRAPHS": "0", "FRAMEJIT_TRITON_HOST_SHORTCUTS": "0"}})


def per_call(fn, n: int, wait: bool) -> float:
    """Seconds per call of n back-to-back calls: until the GPU has finished them (wait) or until the host has
    issued them."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    if wait:
        torch.cuda.synchronize()
    t = time.perf_counter() - t0
    torch.cuda.synchronize()
    return t / n


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def run(variants, rounds: int, save_outputs: str | None) -> list:
    rows = []
    for name, fn, inputs in workloads():
        calls, first_call = {}, {}
        with torch.no_grad():
            ref = fn(*inputs)
            pair = module_pair(fn, inputs) if "framejit" in variants else None
            for v in variants:
                f = compiled(v, fn)
                out, first_call[v] = gpu_first_call(f, inputs)
                calls[v] = lambda f=f: f(*inputs)
                print(f"{name}: {v} first call {first_call[v]:.2f} s, relative error vs eager "
                      f"{rel_error(out, ref):.2e}", flush=True)
                if v == "framejit" and save_outputs:
                    os.makedirs(save_outputs, exist_ok=True)
                    torch.save(out.cpu(), os.path.join(save_outputs, slug(name) + ".pt"))
            if pair is not None:
                calls.update(pair)
                a, b = (torch.utils._pytree.tree_leaves(f()) for f in pair.values())
                same = len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
                print(f"{name}: generated module with / without host shortcuts: outputs "
                      f"{'bit for bit equal' if same else 'DIFFERENT'}", flush=True)
            for f in calls.values():
                for _ in range(20):
                    f()
            wall = {v: [] for v in calls}
            host = {v: [] for v in calls}
            gc.collect()
            gc.disable()  # a collection inside a timed batch is noise here
            try:
                for _ in range(rounds):
                    for v, f in calls.items():
                        wall[v].append(per_call(f, WALL_CALLS, wait=True))
                        host[v].append(per_call(f, HOST_CALLS, wait=False))
            finally:
                gc.enable()
        for v in calls:
            w, h = statistics.median(wall[v]), statistics.median(host[v])
            rows.append({"workload": name, "variant": v, "wall_us": w * 1e6, "host_us": h * 1e6,
                         "wall_spread": (max(wall[v]) - min(wall[v])) / w,
                         "host_spread": (max(host[v]) - min(host[v])) / h, "first_call_s": first_call.get(v)})
        torch.cuda.synchronize()
    return rows


def markdown(rows: list) -> str:
    lines = ["| workload | variant | wall us/call | host us/call | wall vs eager | wall vs torch.compile | "
             "spread wall / host |", "| --- | --- | --- | --- | --- | --- | --- |"]
    saved = []
    for r in rows:
        same = {x["variant"]: x for x in rows if x["workload"] == r["workload"]}
        vs = lambda other: f"{same[other]['wall_us'] / r['wall_us']:.2f}x" if other in same else ""
        lines.append(f"| {r['workload']} | {r['variant']} | {r['wall_us']:.0f} | {r['host_us']:.0f} | {vs('eager')} | "
                     f"{vs('torch.compile')} | {r['wall_spread']:.0%} / {r['host_spread']:.0%} |")
        if r["variant"] == MODULE and GENERAL in same:
            g = same[GENERAL]
            saved.append(f"- {r['workload']}: generated module host {g['host_us']:.0f} -> {r['host_us']:.0f} us per "
                         f"call ({r['host_us'] - g['host_us']:+.0f}), wall {g['wall_us']:.0f} -> {r['wall_us']:.0f}")
    return "\n".join(lines + ([""] + saved if saved else []))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--tag", default="")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--save-outputs", default=None)
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("gpu_host_overhead: no CUDA GPU here; nothing measured (run it on a machine with one)")
        return 0
    variants = [v for v in a.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    rows = run(variants, a.rounds, a.save_outputs)
    table = markdown(rows)
    env = environment()
    print(json.dumps(env))
    print(table)
    stem = os.path.join(RESULTS_DIR, f"gpu-host-overhead-{gpu_tag(env['gpu'])}" + (f"-{a.tag}" if a.tag else ""))
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(stem + ".json", "w") as f:
        json.dump({"suite": "gpu-host-overhead", "environment": env, "wall_calls": WALL_CALLS,
                   "host_calls": HOST_CALLS, "rounds": a.rounds, "results": rows}, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(f"# gpu-host-overhead{' ' + a.tag if a.tag else ''}\n\n{json.dumps(env)}\n\n"
                f"wall: {WALL_CALLS} back-to-back calls, synchronized after; host: {HOST_CALLS} calls, not "
                f"synchronized; medians of {a.rounds} interleaved rounds (us per call)\n\n{table}\n")
    print("wrote", stem + ".md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A full training step (forward, loss, backward, AdamW): eager vs torch.compile vs ours, in one run: first-step
time (compiles included), steady step time, ratio to eager, peak memory (CUDA). Models: the benchmarks' GPT
(`--model gpt`) or Hugging Face's GPT2LMHeadModel built from a config (`--model hf-gpt2`: GPT-2 small's shape,
nothing downloaded).

    python benchmarks/training.py                       # CPU, fp32, small width, 2 threads
    python benchmarks/training.py --device cuda         # CUDA, bf16 autocast, GPT-2-small-like width
    python benchmarks/training.py --device cuda --model hf-gpt2   # GPT-2 small (HF) at B8 T1024
    python benchmarks/training.py --no-torch-compile    # skip the torch.compile baseline (its cold compile is slow)

The table is also written to <out>/training-<model>-<device>.md and .json (benchmarks/out, or benchmarks/results
with --update-results), with the device and library versions.

The forward and the loss are compiled; with --compile-step each compiler also compiles its variant's
`optimizer.step` (torch.compile(opt.step) / jit.compile(opt.step)), else it runs eagerly in every variant. Each variant
trains its own copy of the same weights on the same batches; the losses of the last step are printed beside the
times so a variant that computes something else shows at once. torch.compile is a baseline only.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jit  # noqa: E402
from benchmarks.harness import RESULTS_DIR, environment  # noqa: E402
from benchmarks.models.gpt import GPT, GPTConfig  # noqa: E402


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--model", default="gpt", choices=["gpt", "hf-gpt2"])
    p.add_argument("--width", type=int, default=None, help="n_embd (default: 128 on CPU, 768 on CUDA)")
    p.add_argument("--layers", type=int, default=None, help="n_layer (default: 2 on CPU, 6 on CUDA)")
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--seq", type=int, default=None)
    p.add_argument("--vocab", type=int, default=None)
    p.add_argument("--steps", type=int, default=10, help="timed steps after the first (compiling) ones")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--no-autocast", action="store_true", help="CUDA: fp32 instead of bf16 autocast")
    p.add_argument("--no-torch-compile", action="store_true")
    p.add_argument("--compile-step", action="store_true", help="each compiler compiles its variant's optimizer.step too")
    p.add_argument("--profile", action="store_true",
                   help="after timing, profile 2 steps of each variant: its kernels by self time, to <out>/*-profile.txt")
    a = p.parse_args()
    cuda = a.device == "cuda"
    hf = a.model == "hf-gpt2"
    a.width = a.width or (768 if cuda else 128)
    a.layers = a.layers or ((12 if hf else 6) if cuda else 2)
    a.heads = a.heads or (12 if cuda else 4)
    a.batch = a.batch or (8 if cuda else 4)
    a.seq = a.seq or ((1024 if hf else 512) if cuda else 64)
    a.vocab = a.vocab or ((50257 if hf else 50304) if cuda else 512)
    return a


def loss_fn(model, idx, targets):
    logits = model(idx)
    logits = getattr(logits, "logits", logits)  # a transformers ModelOutput
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def build_model(a) -> torch.nn.Module:
    if a.model == "hf-gpt2":
        import transformers
        cfg = transformers.GPT2Config(n_layer=a.layers, n_embd=a.width, n_head=a.heads, vocab_size=a.vocab,
                                      n_positions=max(1024, a.seq), resid_pdrop=a.dropout, embd_pdrop=a.dropout,
                                      attn_pdrop=a.dropout, use_cache=False)
        return transformers.GPT2LMHeadModel(cfg)
    return GPT(GPTConfig(vocab_size=a.vocab, block_size=a.seq, n_layer=a.layers, n_head=a.heads, n_embd=a.width,
                         dropout=a.dropout))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Run:
    """One variant's training: `model` trained with `compiled_loss` over the batches."""

    def __init__(self, name, compiled_loss, model, batches, a, compile_step=None):
        self.name, self.loss_fn, self.model, self.batches, self.a = name, compiled_loss, model, batches, a
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=False, foreach=a.device == "cuda")
        self.opt_step = compile_step(self.opt.step) if compile_step is not None and a.compile_step else self.opt.step
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.device == "cuda" and not a.no_autocast)
        self.result, self.times, self.loss = {"name": name}, [], None

    def step(self, i):
        idx, targets = self.batches[i % len(self.batches)]
        torch.manual_seed(i)  # dropout draws alike in every variant
        with self.autocast:
            loss = self.loss_fn(self.model, idx, targets)
        loss.backward()
        self.opt_step()
        self.opt.zero_grad(set_to_none=True)
        return loss.detach()

    def first(self) -> None:
        """The first (compiling) step, timed, then the untimed warm-up steps."""
        _sync(self.a.device)
        t0 = time.perf_counter()
        self.step(0)
        _sync(self.a.device)
        self.result["first_s"] = time.perf_counter() - t0
        for i in range(1, 1 + self.a.warmup):
            self.step(i)

    def timed(self, i) -> None:
        _sync(self.a.device)
        t0 = time.perf_counter()
        self.loss = self.step(i)
        _sync(self.a.device)
        self.times.append(time.perf_counter() - t0)

    def finish(self) -> dict:
        self.result["step_ms"] = statistics.median(self.times) * 1e3
        self.result["loss"] = float(self.loss)
        return self.result


def _guarded(run: Run, work) -> bool:
    """work(); a baseline that fails is reported, not hidden. Returns whether it ran."""
    if "error" in run.result:
        return False
    try:
        work()
        return True
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        run.result["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
        return False


def run_variant(run: Run) -> dict:
    """Every step of one variant in a row (CUDA: its peak memory is its own)."""
    a = run.a

    def steps():
        run.first()
        if a.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for i in range(1 + a.warmup, 1 + a.warmup + a.steps):
            run.timed(i)
        run.finish()
        if a.device == "cuda":
            run.result["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        if a.profile:
            _profile(run.name, run.step, a)
    _guarded(run, steps)
    return run.result


def run_interleaved(runs: list) -> list:
    """The CPU's way: first steps, then the timed steps in rounds of one step per variant (the order rotating), so
    a slow stretch of a shared 2-core machine falls on every variant alike rather than on whichever ran then."""
    a = runs[0].a
    for run in runs:
        _guarded(run, run.first)
        print(f"  {run.name}: compiled", flush=True)
    for k, i in enumerate(range(1 + a.warmup, 1 + a.warmup + a.steps)):
        for run in runs[k % len(runs):] + runs[:k % len(runs)]:
            _guarded(run, lambda: run.timed(i))
    for run in runs:
        _guarded(run, run.finish)
    return [run.result for run in runs]


def _profile(name: str, step, a) -> None:
    """Where a variant's step time goes: the top kernels (or CPU ops) by self time over two steps."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if a.device == "cuda" else [])
    with profile(activities=activities) as prof:
        for i in range(2):
            step(i)
        _sync(a.device)
    key = "self_cuda_time_total" if a.device == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=90)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"training-{a.model}-{a.device}-{name.replace('.', '_')}-profile.txt")
    with open(path, "w") as f:
        f.write(table)
    print(f"  {name}: profile written to {path}", flush=True)


def main() -> None:
    a = parse()
    torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device")
    base = build_model(a).to(a.device).train()
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randint(0, a.vocab, (a.batch, a.seq), generator=g).to(a.device),
                torch.randint(0, a.vocab, (a.batch, a.seq), generator=g).to(a.device)) for _ in range(4)]
    variants = [("eager", loss_fn, None)]
    if not a.no_torch_compile:
        variants.append(("torch.compile", torch.compile(loss_fn), torch.compile))
    variants.append(("framejit", jit.compile(loss_fn), jit.compile))
    precision = "bf16 autocast" if a.device == "cuda" and not a.no_autocast else "fp32"
    title = (f"{a.model} training step: device={a.device} ({torch.cuda.get_device_name() if a.device == 'cuda' else ''}"
          f"{torch.get_num_threads()} threads) {precision}, n_layer={a.layers} n_embd={a.width} n_head={a.heads} "
          f"vocab={a.vocab} batch={a.batch} seq={a.seq}; median of {a.steps} steps after {a.warmup} warm-up"
          f"{'; optimizer step compiled' if a.compile_step else ''}"
          f"{' (steps interleaved across variants)' if a.device == 'cpu' else ''}")
    print(title, flush=True)
    runs = [Run(name, fn, copy.deepcopy(base), batches, a, step) for name, fn, step in variants]
    if a.device == "cpu":
        results = run_interleaved(runs)
    else:
        results = []
        for run in runs:
            results.append(run_variant(run))
            print(f"  {run.name}: done", flush=True)
    eager = results[0].get("step_ms")
    lines = [title, "", "| variant | first step (s) | step (ms) | vs eager | peak memory (MiB) | last loss |",
             "|" + " --- |" * 6]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | failed: {r['error']} | | | | |")
            continue
        ratio = f"{eager / r['step_ms']:.2f}x" if eager else "-"
        peak = f"{r['peak_mib']:.0f}" if "peak_mib" in r else "-"
        lines.append(f"| {r['name']} | {r['first_s']:.2f} | {r['step_ms']:.2f} | {ratio} | {peak} | "
                     f"{r['loss']:.5f} |")
    lines.append(f"\nframejit: {jit.counters['graphs']} graphs, {jit.counters['backward_graphs']} backward graphs "
                 f"compiled, {jit.counters['graph_breaks']} graph breaks")
    print("\n".join(lines[2:]))
    env = environment()
    env["device"] = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stem = os.path.join(RESULTS_DIR, f"training-{a.model}-{a.device}{'-step' if a.compile_step else ''}")
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n\n" + ", ".join(f"{k}: {v}" for k, v in env.items()) + "\n")
    with open(stem + ".json", "w") as f:
        json.dump({"args": vars(a), "environment": env, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()

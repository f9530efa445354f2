"""A GPT training step per GPU under DDP and FSDP2: eager vs torch.compile vs ours, at 1 and 2 processes, with
how much of the gradient communication overlaps compute (torch.profiler).

    # 2 GPUs (NCCL), GPT-2 small's width:
    NCCL_NVLS_ENABLE=0 python benchmarks/distributed.py --device cuda --worlds 1,2
    # CPU smoke test (gloo, tiny sizes; what CI and a machine without GPUs can run):
    python benchmarks/distributed.py --device cpu --worlds 1,2 --steps 2

Per world size, every rank trains its own shard of the batch (the per-GPU batch is fixed: weak scaling), the
variants in turn from the same weights: `eager`, `torch` (torch.compile: DDPOptimizer splits at buckets; per block
under FSDP2) and `ours` (jit.compile(DDP(model)), split at DDP's buckets by inductor/ddp_buckets.py; per block
under FSDP2, FSDP's hooks eager around the compiled blocks). Step time is the median of the timed steps on rank
0 (after a cuda synchronize); scaling is (2 x the 1-process step time) / the 2-process step time, 2.0 ideal.
Overlap: one profiled step per variant; the share of the time communication kernels run (NCCL on the GPU, gloo's
ops on the CPU) during which a compute kernel runs too. The table goes to benchmarks/out/distributed-<device>.md
and .json. torch.compile is a baseline only.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.harness import environment  # noqa: E402
from benchmarks.models.gpt import GPT, GPTConfig  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--worlds", default="1,2", help="process counts, comma-separated")
    p.add_argument("--wraps", default="ddp,fsdp")
    p.add_argument("--variants", default="eager,torch,ours")
    p.add_argument("--width", type=int, default=None, help="n_embd (768 on CUDA: GPT-2 small; 64 on CPU)")
    p.add_argument("--layers", type=int, default=None, help="n_layer (6 on CUDA, 2 on CPU)")
    p.add_argument("--batch", type=int, default=None, help="per process (8 on CUDA, 2 on CPU)")
    p.add_argument("--seq", type=int, default=None, help="1024 on CUDA, 32 on CPU")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compiles happen here)")
    p.add_argument("--bucket-cap-mb", type=float, default=25.0, help="DDP's bucket_cap_mb")
    a = p.parse_args()
    cuda = a.device == "cuda"
    a.width = a.width or (768 if cuda else 64)
    a.layers = a.layers or (6 if cuda else 2)
    a.batch = a.batch or (8 if cuda else 2)
    a.seq = a.seq or (1024 if cuda else 32)
    a.vocab = 50304 if cuda else 256
    a.heads = 12 if cuda else 4
    return a


class LM(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.gpt = GPT(GPTConfig(vocab_size=a.vocab, block_size=a.seq, n_layer=a.layers, n_head=a.heads,
                                 n_embd=a.width))

    def forward(self, idx, targets):
        logits = self.gpt(idx)
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))


def _wrapped(a, wrap: str, variant: str, device: torch.device):
    """(the callable a step calls, the parameters the optimizer updates)."""
    import jit
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.manual_seed(0)
    model = LM(a).to(device)
    if wrap == "ddp":
        ddp = DDP(model, bucket_cap_mb=a.bucket_cap_mb, device_ids=[device.index] if device.type == "cuda" else None)
        step = {"eager": ddp, "torch": torch.compile(ddp) if variant == "torch" else None,
                "ours": jit.compile(ddp) if variant == "ours" else None}[variant]
        return step, model.parameters()
    for block in model.gpt.blocks:
        fully_shard(block)
    fully_shard(model)
    if variant != "eager":
        compile_block = torch.compile if variant == "torch" else jit.compile
        for i, block in enumerate(model.gpt.blocks):
            model.gpt.blocks[i] = compile_block(block)
    return model, model.parameters()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _overlap(profile, device: torch.device) -> float | None:
    """Share of communication time during which compute runs too, from one profiled step's events."""
    comm, compute = [], []
    for e in profile.events():
        if device.type == "cuda":
            if e.device_type != torch.autograd.DeviceType.CUDA:
                continue
            (comm if "nccl" in e.name.lower() else compute).append((e.time_range.start, e.time_range.end))
        else:
            name = e.name.lower()
            if name.startswith("gloo:"):
                comm.append((e.time_range.start, e.time_range.end))
            elif name.startswith("aten::") and e.cpu_children == [] and "wait" not in name:
                compute.append((e.time_range.start, e.time_range.end))
    comm_total = sum(end - start for start, end in _union(comm))
    if not comm_total:
        return None
    shared = sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in _union(comm) for s2, e2 in _union(compute))
    return shared / comm_total


def _union(ranges: list) -> list:
    merged = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _rank(rank: int, world: int, port: int, a, out_path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    device = torch.device("cuda", rank) if a.device == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    generator = torch.Generator().manual_seed(rank)
    data = [torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=generator).to(device) for _ in range(4)]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    rows = []
    for wrap in a.wraps.split(","):
        for variant in a.variants.split(","):
            step_model, params = _wrapped(a, wrap, variant, device)
            optimizer = torch.optim.AdamW(params, lr=1e-4)

            def step(i):
                batch = data[i % len(data)]
                with autocast:
                    loss = step_model(batch[:, :-1], batch[:, 1:])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                return loss

            t0 = time.perf_counter()
            for i in range(a.warmup):
                step(i)
            _sync(device)
            warm = time.perf_counter() - t0
            times = []
            for i in range(a.steps):
                dist.barrier()
                _sync(device)
                t0 = time.perf_counter()
                loss = step(i)
                _sync(device)
                times.append(time.perf_counter() - t0)
            activities = [torch.profiler.ProfilerActivity.CPU] + (
                [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
            with torch.profiler.profile(activities=activities) as profile:
                step(0)
                _sync(device)
            rows.append({"wrap": wrap, "variant": variant, "world": world, "step_ms": statistics.median(times) * 1e3,
                         "warmup_s": warm, "overlap": _overlap(profile, device), "loss": float(loss.detach())})
            del step_model, optimizer
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump(rows, f)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    a = parse()
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")  # NVLink multicast off (the lent machines' setting)
    os.makedirs(OUT_DIR, exist_ok=True)
    rows = []
    for world in [int(w) for w in a.worlds.split(",")]:
        if a.device == "cuda" and world > torch.cuda.device_count():
            print(f"skipping {world} processes: {torch.cuda.device_count()} GPU(s)")
            continue
        path = os.path.join(OUT_DIR, f".distributed-{world}.json")
        mp.spawn(_rank, args=(world, _free_port(), a, path), nprocs=world)
        with open(path) as f:
            rows += json.load(f)
    single = {(r["wrap"], r["variant"]): r["step_ms"] for r in rows if r["world"] == 1}
    eager = {(r["wrap"], r["world"]): r["step_ms"] for r in rows if r["variant"] == "eager"}
    lines = [f"GPT n_embd={a.width} n_layer={a.layers} batch {a.batch}/process seq {a.seq}, {a.device}, "
             f"DDP bucket_cap_mb={a.bucket_cap_mb}", "",
             "| wrap | variant | processes | step ms | vs eager | scaling | comm overlapped | warmup s | loss |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        base = single.get((r["wrap"], r["variant"]))
        scaling = f"{r['world'] * base / r['step_ms']:.2f}" if base and r["world"] > 1 else ""
        overlap = "" if r["overlap"] is None else f"{100 * r['overlap']:.0f}%"
        lines.append(f"| {r['wrap']} | {r['variant']} | {r['world']} | {r['step_ms']:.1f} | "
                     f"{eager[(r['wrap'], r['world'])] / r['step_ms']:.2f}x | {scaling} | {overlap} | "
                     f"{r['warmup_s']:.1f} | {r['loss']:.4f} |")
    table = "\n".join(lines)
    print(table)
    stem = os.path.join(OUT_DIR, f"distributed-{a.device}")
    with open(stem + ".md", "w") as f:
        f.write(table + "\n")
    with open(stem + ".json", "w") as f:
        json.dump({"environment": environment(), "args": vars(a), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

"""Run a function on several processes with torch.distributed (gloo, CPU), the way training scripts are launched:
torch.multiprocessing spawn, a free TCP port, one result file per rank. A deadline turns a hang (a collective one
rank never joins) into a failure with whatever the ranks printed, instead of a blocked test run."""
from __future__ import annotations

import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

DEADLINE_S = 300  # generous: CI machines run other jobs beside (idle, a test here takes well under a minute)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, world: int, port: int, out_dir: str, fn, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = fn(rank, world, *args)
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_ranks(fn, out_dir, *args, world: int = 2, deadline_s: float = DEADLINE_S) -> list:
    """fn(rank, world, *args) on `world` processes; the list of what each returned, by rank. A rank that raises
    fails the caller with its traceback; ranks still running after `deadline_s` are killed and the caller fails."""
    context = mp.start_processes(_entry, args=(world, free_port(), str(out_dir), fn, args), nprocs=world,
                                 join=False, start_method="spawn")
    stop = time.monotonic() + deadline_s
    while not context.join(timeout=max(0.1, stop - time.monotonic())):
        if time.monotonic() > stop:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
            raise TimeoutError(f"distributed ranks still running after {deadline_s} s (a hang?)")
    return [torch.load(os.path.join(out_dir, f"rank{r}.pt"), weights_only=False) for r in range(world)]

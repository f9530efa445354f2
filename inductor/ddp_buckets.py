"""Training graphs compiled inside DistributedDataParallel's forward: one compiled region per gradient bucket.

DDP's reducer all-reduces a bucket of gradients from the hooks autograd runs as each parameter's gradient is
accumulated. A compiled region is one torch.autograd.Function (training.py), whose backward returns every
parameter gradient of the region at once: one region for the whole model would start every all-reduce only
after the whole backward. So a graph compiled while DDP runs its wrapped module (DDP marks that time itself:
`DistributedDataParallel._get_active_ddp_module()`, what torch's DDPOptimizer reads) is cut where DDP's buckets
are cut (graph/bucket_split.py: by its `bucket_bytes_cap` and the graph's parameters from its end), each segment
is compiled by the same backend as a region of its own, and `BucketedGraph` runs them in order. In the backward
the last segment's gradients reach the reducer, and its bucket's all-reduce starts, while earlier segments still
compute.

`jit.counters["ddp_segments"]` counts the segments compiled for graphs under DDP (1 for a graph left whole);
JIT_LOGS=inductor logs each split. The switch `ddp_split` (FRAMEJIT_DDP_SPLIT=0, or jit.compile(options=
{"ddp_split": False})) compiles such graphs whole. A graph with dynamic sizes or input mutation is left whole.
"""
from __future__ import annotations

import logging
import sys
import threading
from typing import Callable

import torch
import torch.fx as fx

from framejit.graph.bucket_split import Caps, Constant, SplitGraph, split_at_buckets
from framejit.graph.effects import has_mutation
from framejit.graph.size_variants import copy_module, dynamic_graph

from . import counters, prepare
from .config import config

log = logging.getLogger("jit.inductor")


class _Splitting(threading.local):
    on = False  # while a split graph's segments compile on this thread: they are not split again


_splitting = _Splitting()


def active_ddp():
    """The DistributedDataParallel whose wrapped module is running now on this process, or None."""
    distributed = sys.modules.get("torch.nn.parallel.distributed")
    if distributed is None:
        return None
    return distributed.DistributedDataParallel._get_active_ddp_module()


def bucket_caps(ddp) -> Caps:
    """DDP's bucket caps: the first bucket is torch's 1 MiB default only where the user gave no bucket_cap_mb
    (then `bucket_bytes_cap_default` is set), else every bucket has the cap."""
    first = torch.distributed._DEFAULT_FIRST_BUCKET_BYTES if ddp.bucket_bytes_cap_default else ddp.bucket_bytes_cap
    return Caps(first=first, rest=ddp.bucket_bytes_cap)


def compile_bucketed(gm: fx.GraphModule, example_inputs: list, backend: Callable) -> Callable | None:
    """gm compiled as one region per DDP bucket by `backend`, when DDP runs its module now and gm needs
    gradients; None where the backend compiles gm as usual."""
    if _splitting.on or not prepare.wants_training(gm, example_inputs):
        return None
    ddp = active_ddp()
    if ddp is None:
        return None
    if not config.ddp_split or dynamic_graph(gm) or has_mutation(gm.graph):
        counters.bump("ddp_segments")
        return None
    params = {id(p) for p in ddp.parameters() if p.requires_grad}
    param_bytes = {i: x.numel() * x.element_size() for i, x in enumerate(example_inputs)
                   if isinstance(x, torch.Tensor) and id(x) in params}
    caps = bucket_caps(ddp)
    split = split_at_buckets(copy_module(gm), param_bytes, caps)
    count = len(split.segments) if split is not None else 1
    counters.bump("ddp_segments", count)
    log.info("DDP buckets (cap %d bytes, first %d): training graph of %d parameter bytes compiled as %d "
             "segment(s)%s", caps.rest, caps.first, sum(param_bytes.values()), count,
             "" if split is None else ": " + ", ".join(f"{s.param_bytes} B" for s in split.segments))
    if split is None or count == 1:
        return None
    _splitting.on = True
    try:
        return BucketedGraph(split, _compile_segments(split, example_inputs, backend))
    finally:
        _splitting.on = False


def _compile_segments(split: SplitGraph, example_inputs: list, backend: Callable) -> list:
    """Each segment compiled on real example inputs: the graph's own, then the values the segments before it
    computed eagerly (with autograd, so which values require grad is eager's answer; under a forked generator,
    so the caller's random stream is untouched)."""
    values = list(example_inputs)
    cuda = sorted({x.device.index or 0 for x in example_inputs
                   if isinstance(x, torch.Tensor) and x.device.type == "cuda"})
    compiled = []
    with torch.random.fork_rng(devices=cuda):
        for segment in split.segments:
            inputs = [values[i] for i in segment.reads]
            outputs = copy_module(segment.module)(*inputs)  # before the backend rewrites the graph in place
            values.extend(o.detach().requires_grad_(o.requires_grad) if isinstance(o, torch.Tensor) else o
                          for o in outputs)
            compiled.append(backend(segment.module, inputs))
    return compiled


class BucketedGraph:
    """The compiled segments run in order: each reads its slots (the graph's inputs, then the outputs of the
    segments before it) and appends its own outputs."""

    def __init__(self, split: SplitGraph, compiled: list):
        self.steps = [(fn, segment.reads) for fn, segment in zip(compiled, split.segments)]
        self.result = split.result
        self.segments = len(compiled)
        # what JIT_LOGS=output_code shows: each segment's generated code, in order
        sources = [getattr(fn, "source", None) for fn in compiled]
        self.source = "\n".join(f"# DDP bucket segment {k}\n{src}" for k, src in enumerate(sources) if src) or None

    def __call__(self, *args):
        slots = list(args)
        for fn, reads in self.steps:
            slots.extend(fn(*[slots[i] for i in reads]))
        return tuple(r.value if isinstance(r, Constant) else slots[r] for r in self.result)

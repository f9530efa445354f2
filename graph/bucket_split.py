"""Split a graph into consecutive segments whose parameters fill gradient buckets (DistributedDataParallel's).

DDP all-reduces gradients a bucket at a time, as soon as every gradient of a bucket has been accumulated. A
training graph compiled as one region produces all its parameters' gradients at the end of its one backward, so
every bucket waits for the whole backward. Cut into segments, each compiled as a region of its own, the backward
runs segment by segment, last segment first, and the gradients of a segment's parameters are ready (and their
bucket's all-reduce under way) while the earlier segments' backwards still compute.

Segments are chosen as DDP's reducer fills buckets: walking the graph from its end (the backward's order),
parameters are added to the open segment until their bytes reach the cap (`caps.first` for the first bucket
filled, the one holding the last parameters, then `caps.rest`); the next node then opens a new segment. A
parameter read by several nodes (a tied embedding) counts once, where the backward meets it first. A cut only
falls where every value crossing it is a tensor (a tuple from `split`, a size or a number never crosses): such a
cut moves towards the start of the graph until one is allowed.

Only the graph is split here; inductor/ddp_buckets.py finds the caps and the parameters, compiles each segment
and runs them in order (`SplitGraph`)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx as fx


@dataclass(frozen=True)
class Caps:
    first: int  # bytes of the first bucket DDP fills (the graph's last parameters)
    rest: int


@dataclass(frozen=True)
class Segment:
    module: fx.GraphModule
    reads: tuple   # slots its inputs come from: 0..n-1 the graph's inputs, then earlier segments' outputs in order
    param_bytes: int


@dataclass(frozen=True)
class SplitGraph:
    """The segments in forward order, and where each output of the whole graph is (a slot, or a `Constant`)."""
    segments: tuple
    result: tuple
    num_inputs: int


@dataclass(frozen=True)
class Constant:
    value: object


def _is_tensor(node: fx.Node) -> bool:
    return isinstance(node.meta.get("val"), torch.Tensor)


def _cut_points(body: list, placeholder_bytes: dict, caps: Caps) -> list:
    """Positions in `body` where a segment starts (0 first), chosen from the end as the buckets fill."""
    position = {n: i for i, n in enumerate(body)}
    # a cut at p (between body[p-1] and body[p]) is blocked while a non-tensor value made before p is read at or
    # after p
    blocked = [0] * (len(body) + 1)
    for i, node in enumerate(body):
        if not _is_tensor(node):
            last = max((position.get(u, len(body)) for u in node.users), default=i)
            blocked[i + 1] += 1
            blocked[last + 1 if last < len(body) else len(body)] -= 1
    running = 0
    for p in range(len(body) + 1):
        running += blocked[p]
        blocked[p] = running > 0
    starts, counted, filled, cap = [], set(), 0, caps.first
    for i in range(len(body) - 1, -1, -1):
        if filled and filled >= cap and not blocked[i + 1]:
            starts.append(i + 1)
            filled, cap = 0, caps.rest
        for arg in body[i].all_input_nodes:
            if arg in placeholder_bytes and arg not in counted:
                counted.add(arg)
                filled += placeholder_bytes[arg]
    return [0] + starts[::-1]


def split_at_buckets(gm: fx.GraphModule, param_bytes: dict, caps: Caps) -> SplitGraph | None:
    """gm cut into segments by the bytes of its parameter inputs (`param_bytes`: input index -> bytes), or None
    where the graph's output is not a flat tuple of values (nothing to split then)."""
    nodes = list(gm.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    output = nodes[-1]
    if output.op != "output" or not isinstance(output.args[0], (tuple, list)):
        return None
    body = [n for n in nodes if n.op not in ("placeholder", "output", "get_attr")]
    placeholder_bytes = {placeholders[i]: b for i, b in param_bytes.items()}
    starts = _cut_points(body, placeholder_bytes, caps)
    ends = starts[1:] + [len(body)]
    segment_of = {n: k for k, (s, e) in enumerate(zip(starts, ends)) for n in body[s:e]}
    slot = {p: i for i, p in enumerate(placeholders)}
    # what each segment gives out: values a later segment or the graph's output reads
    last_reader = {}
    for node in body:
        for arg in node.all_input_nodes:
            if arg in segment_of:
                last_reader[arg] = max(last_reader.get(arg, -1), segment_of[node])
    for arg in output.all_input_nodes:
        if arg in segment_of:
            last_reader[arg] = len(starts)
    segments = []
    for k, (s, e) in enumerate(zip(starts, ends)):
        members = body[s:e]
        graph, env, reads = fx.Graph(), {}, []
        outside = [a for a in dict.fromkeys(a for n in members for a in n.all_input_nodes)
                   if a.op != "get_attr" and segment_of.get(a) != k]
        for arg in outside:
            env[arg] = graph.placeholder(arg.name)
            env[arg].meta = dict(arg.meta)
            reads.append(slot[arg])
        for node in members:
            for arg in node.all_input_nodes:
                if arg.op == "get_attr" and arg not in env:
                    env[arg] = graph.node_copy(arg)
            env[node] = graph.node_copy(node, lambda a: env[a])
        given = [n for n in members if last_reader.get(n, k) > k]
        for node in given:
            slot[node] = len(slot)
        graph.output(tuple(env[n] for n in given))
        module = fx.GraphModule(gm, graph, class_name=f"{type(gm).__name__}Segment{k}")
        segments.append(Segment(module, tuple(reads),
                                sum(placeholder_bytes.get(a, 0) for a in outside if a.op == "placeholder")))
    result = tuple(slot[a] if isinstance(a, fx.Node) else Constant(a) for a in output.args[0])
    return SplitGraph(tuple(segments), result, len(placeholders))

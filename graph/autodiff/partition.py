"""Split a joint graph into a forward and a backward graph: what the forward saves, chosen by a minimum cut.

Every value the backward reads either crosses from the forward (saved: it stays alive from the forward to the
backward) or is computed again in the backward from values that do. Choosing the cheapest set to save is a
minimum s-t cut (the "min-cut rematerialization" of AOTAutograd, written our way): each forward node is split
into node_in -> node_out with capacity = the bytes its value holds; a forward node whose value the backward reads
feeds the sink; values that must come from the forward are tied to the source:
  * the inputs (saving one costs no new memory: capacity ~0),
  * ops not worth recomputing that the forward computes anyway: matmuls, convolutions, reductions, library
    calls (RECOMPUTABLE lists the cheap ones: pointwise, views, constructors),
  * random ops, always: recomputing one would draw other numbers than eager's, so their results are saved.
The cut edges are the values saved; nodes on the sink side are recomputed in the backward. With pointwise ops
cheap, a chain x -> a -> b -> c read by the backward saves its one narrowest value, not all four.

Bytes saved are not the whole cost: a recomputed value is read back from the values it is computed from. A
residual stream makes the difference: h_k = h_(k-1) + out_k, each layer's norm reading h_k in the backward. Under
autocast the outputs out_k are bf16 and h_k float32, so saving every out_k is half the bytes of saving every h_k,
and the cut picks it, and the backward recomputes h_k as the sum of k tensors: twelve layers of GPT-2 read ~300
tensors where 24 would do (H100: several ms a step). So a pointwise value whose recomputation would read more
than RECOMPUTE_READ_FACTOR times its own bytes (counting the saved or heavy values it is computed from, through
other recomputable ones) is not recomputed: like a matmul, the forward keeps it, and saves it if the backward
reads it (`_reads_too_much`).
"""
from __future__ import annotations

import math
import operator
from collections import deque
from dataclasses import dataclass

import torch
import torch.fx as fx

from framejit.graph import core_ops
from framejit.graph.autodiff.joint import Joint, NotDifferentiable
from framejit.graph.effects import is_random, may_raise_on_values
from framejit.graph.layout_free import SAVED_ONLY

BACKWARD_GRAPH = "BackwardGraph"  # the backward's class name: backends may tell it by this (inductor/runtime/cuda_graphs)
INPUT_BYTES = 1  # saving an input keeps alive what the caller holds anyway
RECOMPUTE_READ_FACTOR = 2  # a recomputation may read up to this many times the bytes of the value it makes
RECOMPUTABLE = (core_ops.POINTWISE_UNARY | core_ops.POINTWISE_BINARY | core_ops.TERNARY | core_ops.CONVERT
                | core_ops.VIEWS | core_ops.CONSTRUCTORS | {operator.getitem})


@dataclass
class Saved:
    """One value the forward hands to the backward: a forward input (by index) or an extra forward output."""
    name: str
    nbytes: int
    input_index: int | None  # None: returned by the forward graph after its own outputs


@dataclass
class Partition:
    forward: fx.GraphModule   # inputs: the region's inputs; outputs: its outputs, then the saved non-inputs
    backward: fx.GraphModule  # inputs: saved values (in `saved` order), then tangents of differentiable outputs
    saved: list
    num_outputs: int
    output_grad: tuple
    grad_of: tuple
    recomputed: int           # forward nodes the backward computes again
    grad_tangents: tuple = ()  # per gradient output: the outputs whose tangents it reads (None grads for all of
    #                            them mean eager never reaches that input: its grad stays None, not zeros)

    def saved_bytes(self) -> int:
        return sum(s.nbytes for s in self.saved if s.input_index is None)


def _nbytes(node: fx.Node) -> float:
    val = node.meta.get("val")
    if isinstance(val, torch.Tensor):
        return val.numel() * val.element_size()
    return math.inf  # a tuple or a number in flight: only its items can cross


def _ancestors(roots, stop=lambda n: False) -> set:
    seen, todo = set(), [r for r in roots if isinstance(r, fx.Node)]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if not stop(n):
            todo.extend(n.all_input_nodes)
    return seen


class _FlowNetwork:
    """A residual graph for max-flow (Edmonds-Karp: shortest augmenting paths, iterative; joint graphs have a
    few thousand nodes and the cut is a few hundred values, so this is milliseconds)."""

    def __init__(self):
        self.adj: dict = {}
        self.cap: list = []
        self.to: list = []

    def edge(self, a, b, capacity: float) -> None:
        for u, v, c in ((a, b, capacity), (b, a, 0.0)):
            self.adj.setdefault(u, []).append(len(self.to))
            self.to.append(v)
            self.cap.append(c)

    def max_flow(self, source, sink) -> float:
        total = 0.0
        while True:
            parent = {source: None}
            queue = deque([source])
            while queue and sink not in parent:
                u = queue.popleft()
                for e in self.adj.get(u, ()):
                    v = self.to[e]
                    if self.cap[e] > 0 and v not in parent:
                        parent[v] = e
                        queue.append(v)
            if sink not in parent:
                return total
            path, v = [], sink
            while parent[v] is not None:
                e = parent[v]
                path.append(e)
                v = self.to[e ^ 1]
            push = min(self.cap[e] for e in path)
            if push == math.inf:
                return math.inf
            for e in path:
                self.cap[e] -= push
                self.cap[e ^ 1] += push
            total += push

    def source_side(self, source) -> set:
        seen, todo = {source}, [source]
        while todo:
            u = todo.pop()
            for e in self.adj.get(u, ()):
                v = self.to[e]
                if self.cap[e] > 0 and v not in seen:
                    seen.add(v)
                    todo.append(v)
        return seen


def _reads_too_much(graph: fx.Graph, candidates: set) -> set:
    """The pointwise nodes among `candidates` (forward values the backward reads) whose recomputation would read
    more than RECOMPUTE_READ_FACTOR times their own bytes (the module's doc). A node's reads are the values it is
    computed from, followed back through recomputable nodes to the first that are not (inputs, heavy ops,
    random ops, and nodes found here themselves); a view reads at most its own bytes of what is behind it (a
    slice reads little of its base, an expand no more than its base), a constructor reads nothing."""
    reads_of: dict = {}  # recomputable node -> {value read: bytes read of it}
    pinned: set = set()

    def reads(a: fx.Node) -> dict:
        return reads_of[a] if a in reads_of and a not in pinned else {a: _nbytes(a)}

    for n in graph.nodes:
        if n.op != "call_function" or n.target not in RECOMPUTABLE or is_random(n):
            continue
        found: dict = {}
        for a in n.all_input_nodes:
            for value, nbytes in reads(a).items():
                found[value] = max(found.get(value, 0), nbytes)
        if n.target in core_ops.VIEWS:
            found = {value: min(nbytes, _nbytes(n)) for value, nbytes in found.items()}
        reads_of[n] = found
        if n in candidates and n.target not in core_ops.VIEWS and n.target not in core_ops.CONSTRUCTORS:
            size = _nbytes(n)
            if size < math.inf and sum(found.values()) > RECOMPUTE_READ_FACTOR * size:
                pinned.add(n)
    return pinned


def _min_cut(joint: Joint, primals: list, tangent_side: set, grads: list, frozen: set) -> list:
    """The forward nodes whose values cross to the backward, by a minimum cut (see the module's doc). `frozen`:
    primals that cannot be saved (their values change after the forward), only values computed from them."""
    needed_by_backward = _ancestors(grads) - tangent_side
    outputs = next(n for n in joint.gm.graph.nodes if n.op == "output").args[0][:joint.num_outputs]
    forward_needs = _ancestors(outputs)
    pinned = _reads_too_much(joint.gm.graph, needed_by_backward & forward_needs)
    net = _FlowNetwork()
    for n in needed_by_backward:
        net.edge((n, "in"), (n, "out"), math.inf if n in frozen else INPUT_BYTES if n in primals else _nbytes(n))
        stays = n in primals or is_random(n) or (n in forward_needs and (n.target not in RECOMPUTABLE or n in pinned))
        if stays:
            net.edge("source", (n, "in"), math.inf)
        for user in n.users:
            if user in tangent_side:
                net.edge((n, "out"), "sink", math.inf)
            elif user in needed_by_backward:
                net.edge((n, "out"), (user, "in"), math.inf)
        # a heavy op only the backward reads has no tie to the source: computed there, once, as eager does
    if net.max_flow("source", "sink") == math.inf:
        raise NotDifferentiable("the backward reads a value no finite cut can save")
    side = net.source_side("source")
    return [n for n in joint.gm.graph.nodes if (n, "in") in side and (n, "out") not in side]


def partition(joint: Joint, written: tuple = ()) -> Partition:
    """`written`: indices of inputs the caller writes to after the forward (graph/input_writes.py): the backward
    never reads them, only values the forward computed from them (NotDifferentiable where it would have to)."""
    graph = joint.gm.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    primals, tangents = placeholders[:joint.num_inputs], placeholders[joint.num_inputs:]
    out_args = next(n for n in graph.nodes if n.op == "output").args[0]
    outputs, grads = list(out_args[:joint.num_outputs]), list(out_args[joint.num_outputs:])
    tangent_side: set = set()
    for n in graph.nodes:  # graph order is topological: one pass finds everything a tangent reaches
        if n in tangents or any(a in tangent_side for a in n.all_input_nodes):
            tangent_side.add(n)
    saved = _min_cut(joint, primals, tangent_side, grads, {primals[i] for i in written})
    if any(n in tangent_side for n in saved):
        raise NotDifferentiable("the cut crossed a backward value")
    # random ops of the forward run there once (their values saved); a backward op tagged as seeded (CUDA's
    # efficient-attention backward, which replays the forward's seed and offset) stays in the backward
    randoms = [n for n in graph.nodes if is_random(n) and n not in tangent_side]
    # an op nothing reads that may raise on its values (`n // n`) raises in eager's forward: it stays there
    checks = [n for n in graph.nodes if not n.users and may_raise_on_values(n) and n not in tangent_side]
    forward_nodes = _ancestors(outputs + saved + randoms + checks)
    if forward_nodes & tangent_side:
        raise NotDifferentiable("a forward output depends on a tangent")
    saved_set = set(saved)
    backward_nodes = _ancestors(grads, stop=lambda n: n in saved_set or n in tangents)
    recomputed = [n for n in backward_nodes if n not in tangent_side and n not in saved_set]
    if any(is_random(n) for n in recomputed) or any(n in primals for n in recomputed):
        raise NotDifferentiable("the cut would recompute a random op or lose an input")
    fw = _forward_graph(joint.gm, primals, outputs, [n for n in saved if n not in primals], forward_nodes)
    diff_tangents = [t for t, d in zip(tangents, joint.output_grad) if d]
    bw = _backward_graph(joint.gm, saved, diff_tangents, grads, backward_nodes)
    records = [Saved(n.name, int(_nbytes(n)), primals.index(n) if n in primals else None) for n in saved]
    reads = tuple(tuple(i for i, t in enumerate(tangents) if t in _ancestors([g])) for g in grads)
    return Partition(fw, bw, records, joint.num_outputs, joint.output_grad, joint.grad_of, len(recomputed), reads)


def _forward_graph(gm, primals, outputs, saved, keep) -> fx.GraphModule:
    graph, env = fx.Graph(), {}
    for n in gm.graph.nodes:
        if n.op == "placeholder" and n in primals:
            env[n] = graph.placeholder(n.name)
            env[n].meta = dict(n.meta)
        elif n in keep and n.op != "placeholder":
            env[n] = graph.node_copy(n, lambda a: env[a])
            if n in saved and n not in outputs:  # its layout is the backward's business only
                env[n].meta[SAVED_ONLY] = True
    graph.output(tuple(env[n] for n in outputs + saved))
    return fx.GraphModule(gm, graph, class_name="ForwardGraph")


def _backward_graph(gm, saved, tangents, grads, keep) -> fx.GraphModule:
    graph, env = fx.Graph(), {}
    for n in saved + tangents:
        env[n] = graph.placeholder(n.name)
        env[n].meta = dict(n.meta)
    for n in gm.graph.nodes:
        if n in keep and n not in env and n.op != "output":
            if n.op == "placeholder":
                raise NotDifferentiable(f"the backward reads {n.name}, which the forward does not hand over")
            env[n] = graph.node_copy(n, lambda a: env[a])
    graph.output(tuple(env[g] for g in grads))
    return fx.GraphModule(gm, graph, class_name=BACKWARD_GRAPH)

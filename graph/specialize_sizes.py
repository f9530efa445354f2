"""Turn a graph traced with dynamic sizes into one for concrete sizes.

A graph with dynamic sizes computes them at run time (`x.size(0)`, `operator.mul(s0, 64)`) and passes them to
ops (`view(s0, 64)`). Backends that generate code for fixed shapes get the graph with each such integer replaced
by its value for the given inputs, and with integer outputs taken out (returned beside the backend's result)."""
from __future__ import annotations

import torch
import torch.fx
from torch.fx.node import map_arg


def _is_size_value(v) -> bool:
    return type(v) is int or (isinstance(v, (tuple, torch.Size)) and all(type(i) is int for i in v))


def size_values(gm: torch.fx.GraphModule, example_inputs: list) -> dict:
    """node -> its int (or tuple of ints) value for these inputs, for every node computing sizes. Runs the
    graph on meta tensors: shapes only, no data, no side effects on the inputs."""
    metas = [torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
             if isinstance(t, torch.Tensor) else t for t in example_inputs]
    values: dict = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            if n.op != "placeholder" and _is_size_value(result):
                values[n] = result
            return result

    Recorder(gm).run(*metas)
    return values


def specialize(gm: torch.fx.GraphModule, example_inputs: list) -> tuple[torch.fx.GraphModule, dict[int, int]]:
    """(a copy of gm for these input sizes with tensor outputs only, {output position: int value})."""
    values = size_values(gm, example_inputs)
    graph = torch.fx.Graph()
    env: dict = {}
    for n in gm.graph.nodes:
        if n.op == "output":
            continue
        if n in values:
            env[n] = values[n]
            continue
        env[n] = graph.node_copy(n, lambda a: env[a])
    (outputs,) = [n for n in gm.graph.nodes if n.op == "output"][0].args
    kept, constants = [], {}
    for i, o in enumerate(outputs):
        value = map_arg(o, lambda a: env[a])
        if isinstance(value, torch.fx.Node):
            kept.append(value)
        else:
            constants[i] = value
    graph.output(tuple(kept))
    return torch.fx.GraphModule(gm, graph, class_name=type(gm).__name__), constants


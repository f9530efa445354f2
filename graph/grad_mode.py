"""Grad-mode switches inside a training graph made explicit as `detach`: `with torch.no_grad():` blocks (the rotary
embedding of every Llama-family model in transformers is a `@torch.no_grad()` method) record
`_set_grad_enabled(False)` ... `_set_grad_enabled(True)` in the captured graph, and a graph with a switch ran as
captured under torch's autograd: every such model trained at eager speed.

What grad mode changes is only which values autograd tracks: a value computed with grad off has no history, so no
gradient flows through it. The same holds when each tensor the block reads from outside it is read through
`detach()` (a value computed only from detached values and constants has no history either, and `detach` shares
memory, so views and in-place writes behave as in eager); the switches can then go, and the joint trace
(autodiff/joint.py) differentiates the graph as it is. Left as it is: a switch whose argument is not a constant, or
a graph that ends in another mode than it began (the switch is an effect the caller sees)."""
from __future__ import annotations

import torch
import torch.fx as fx

SWITCH = torch._C._set_grad_enabled


def detach_no_grad_blocks(gm: fx.GraphModule, grad_enabled: bool) -> bool:
    """Rewrite gm's grad-mode switches as detaches (see the module's doc), for a graph entered with grad mode
    `grad_enabled`. True where gm has no switch left (rewritten, or there was none)."""
    graph = gm.graph
    switches = [n for n in graph.nodes if n.op == "call_function" and n.target is SWITCH]
    if not switches:
        return True
    if any(len(n.args) != 1 or n.kwargs or not isinstance(n.args[0], bool) or n.users for n in switches):
        return False
    state, off = grad_enabled, set()
    for node in graph.nodes:
        if node.target is SWITCH and node.op == "call_function":
            state = node.args[0]
        elif not state and node.op in ("call_function", "call_method", "call_module"):
            off.add(node)
    if state != grad_enabled:
        return False
    for node in off:
        for source in node.all_input_nodes:
            val = source.meta.get("val")
            if source not in off and not isinstance(val, torch.Tensor) and (
                    val is None or isinstance(val, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in val)):
                return False  # a value the block reads whose tensors cannot be told: left as captured
    detached: dict = {}
    for node in list(graph.nodes):
        if node not in off:
            continue
        for source in node.all_input_nodes:
            if source in off or not isinstance(source.meta.get("val"), torch.Tensor):
                continue
            if source not in detached:
                with graph.inserting_before(node):  # after every placeholder, before its first reader
                    d = graph.call_method("detach", (source,))
                d.meta = {**source.meta, "val": source.meta["val"].detach()}
                detached[source] = d
            node.replace_input_with(source, detached[source])
    for node in switches:
        graph.erase_node(node)
    graph.lint()
    gm.recompile()
    return True


def computes_without_grad(gm: fx.GraphModule, grad_enabled: bool) -> bool:
    """Every op of gm runs with grad mode off, and gm ends in the mode it began in (`grad_enabled`): an optimizer's
    step (torch.optim switches grad off around its body) or a function under `@torch.no_grad()`. Its inputs may
    require grad, yet nothing it computes carries autograd history: it is no training graph."""
    state = grad_enabled
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target is SWITCH:
            if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], bool):
                return False
            state = node.args[0]
        elif state and node.op in ("call_function", "call_method", "call_module"):
            return False
    return state == grad_enabled

"""Common-subexpression elimination: two pure nodes with the same target and arguments become one.

Random ops are never merged (two dropout masks must differ), nor two results whose memory the graph both returns,
directly or through views (eager's are two tensors: a view of the second must not become a view of the first;
`[a.masked_fill(m, 0).detach(), a.masked_fill(m, 0).detach()]` returns two tensors that share nothing). An impure node (in-place op) may change what an
earlier expression would now compute, so the table of known expressions is cleared at each one; and a tensor an
in-place op writes later is merged with nothing (two equal expressions are two tensors: writing one must not write
the other).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.fx as fx

from framejit.graph.effects import is_impure, is_removable
from framejit.graph.functionalize import storage_id
from framejit.graph.symbolic_sizes import SymInt
from framejit.graph.view_ops import alias_roots


def _key(value: Any) -> Any:
    """A hashable stand-in for an argument structure (lists and slices are not hashable)."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple(sorted((k, _key(v)) for k, v in value.items()))
    if isinstance(value, slice):
        return ("slice", _key(value.start), _key(value.stop), _key(value.step))
    if isinstance(value, float):  # keep 1 and 1.0 apart (they promote differently), and 0.0 and -0.0 (x * -0.0)
        return ("float", value, math.copysign(1.0, value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, SymInt):
        return ("size", value.expr)  # compared as expressions: equal hints are not equal sizes
    hash(value)
    return value


def eliminate_common_subexpressions(gm: fx.GraphModule) -> bool:
    """Replace each repeated pure expression by its first occurrence. Returns changed."""
    seen: dict[Any, fx.Node] = {}
    changed = False
    out = next((n for n in reversed(gm.graph.nodes) if n.op == "output"), None)
    returned = _Returned(out)
    written = _written_storages(gm.graph)
    for node in list(gm.graph.nodes):
        if is_impure(node):
            seen.clear()
            continue
        if not is_removable(node) or node.op == "placeholder" or _storage(node) in written:
            continue  # a tensor written in place later (or a view of one) is not its twin's: fuzz seed 434619
        try:
            key = (node.op, node.target, _key(node.args), _key(node.kwargs))
        except TypeError:  # an unhashable constant argument: leave the node alone
            continue
        first = seen.get(key)
        if first is None:
            seen[key] = node
        elif returned.holds(node) and returned.holds(first):
            continue  # two tensors in eager, each returned: one would alias the other (and views of either)
        else:
            if returned.holds(node):  # first is returned in its place now: a third equal result stays apart from it
                returned.add(first)
            node.replace_all_uses_with(first)
            gm.graph.erase_node(node)
            changed = True
    return changed


class _Returned:
    """What the graph returns: the output's nodes, and the nodes whose memory they may be views of (`x.detach()`
    returned: x too). Found from the ops, not from the nodes' values: a node the optimizer rewrote (masked_fill
    into where) has a new value, its readers keep the old one."""

    def __init__(self, out: fx.Node | None):
        self.nodes: set = set()
        for node in out.all_input_nodes if out is not None else ():
            self.add(node)

    def holds(self, node: fx.Node) -> bool:
        return node in self.nodes

    def add(self, node: fx.Node) -> None:
        self.nodes.update(alias_roots(node))


def _storage(node: fx.Node):
    val = node.meta.get("val")
    return storage_id(val) if isinstance(val, torch.Tensor) else None


def _written_storages(graph: fx.Graph) -> set:
    """The memory in-place ops write: their first argument's storage (a view's is its base's)."""
    found = set()
    for node in graph.nodes:
        if is_impure(node) and node.args and isinstance(node.args[0], fx.Node):
            sid = _storage(node.args[0])
            if sid is not None:
                found.add(sid)
    return found

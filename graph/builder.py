"""Builder: how a decomposition rule emits core-op nodes, each with its meta value computed on the spot.

Rules read input shapes through `val()` (or `size()` for shapes that end up in the graph) and build with `op()`. Every node made is recorded so that a rule that
declines halfway (or raises) can be undone without leaving debris in the graph.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from framejit.graph import symbolic_shapes
from framejit.graph.shape_prop import to_meta

aten = torch.ops.aten


class Decline(Exception):
    """Raised by a rule whose preconditions do not hold: the original node stays as it is."""


class Builder:
    def __init__(self, graph: fx.Graph, symbolic: bool = False, device: torch.device | None = None):
        self.graph = graph
        self.symbolic = symbolic  # the graph has dynamic sizes: size() answers with SymInts
        self.device = device  # where the graph's inputs live (meta values do not say); None when unknown
        self.created: list[fx.Node] = []

    def val(self, x: Any) -> Any:
        """The meta value of a node, or the constant itself."""
        return x.meta.get("val") if isinstance(x, fx.Node) else x

    def tensor(self, x: Any) -> torch.Tensor:
        """The meta tensor behind `x`; declines when `x` is not a tensor of known shape."""
        v = self.val(x)
        if not isinstance(v, torch.Tensor):
            raise Decline(f"not a tensor: {x!r}")
        return v

    def size(self, x: Any) -> tuple:
        """The shape of tensor `x`, with SymInts for sizes that depend on dynamic dims (graph/symbolic_shapes.py):
        rules computing shapes or counts for the graph read them here, so `B * T` does not become a number."""
        if self.symbolic and isinstance(x, fx.Node):
            self.tensor(x)
            return symbolic_shapes.shape_of(x)
        return tuple(self.tensor(x).shape)

    def op(self, target: Any, *args: Any, **kwargs: Any) -> fx.Node:
        meta_args = fx.node.map_arg(args, self.val)
        meta_kwargs = fx.node.map_arg(kwargs, self.val)
        node = self.graph.call_function(target, args, kwargs)
        self.created.append(node)
        node.meta["val"] = to_meta(target(*meta_args, **meta_kwargs))
        return node

    def scalar(self, value: Any, like: Any) -> fx.Node:
        """A 0-d tensor holding `value`, typed as torch would type it next to `like` (wrapped-number rules), for
        the ops whose aten schema takes no Python scalar (maximum, minimum, where)."""
        dtype = torch.result_type(self.tensor(like), value)
        return self.op(aten.full.default, [], value, dtype=dtype)

    def undo(self) -> None:
        for node in reversed(self.created):
            if not node.users:
                self.graph.erase_node(node)
        self.created.clear()

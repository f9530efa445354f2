"""Dead-code elimination: drop nodes nobody uses, keeping side effects (see `graph.effects`)."""

from __future__ import annotations

import torch.fx as fx

from framejit.graph.effects import is_droppable


def drop_unused(graph: fx.Graph) -> bool:
    """Erase unused droppable nodes (graph.effects.is_droppable: placeholders, writes, random draws and ops that
    may raise stay), last to first so chains of dead nodes go in one sweep. Returns changed."""
    changed = False
    for node in reversed(list(graph.nodes)):
        if not node.users and is_droppable(node):
            graph.erase_node(node)
            changed = True
    return changed


def eliminate_dead_code(gm: fx.GraphModule) -> bool:
    """The optimizer's pass: drop_unused on gm's graph."""
    return drop_unused(gm.graph)

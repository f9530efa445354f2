"""Dead-code elimination: drop nodes nobody uses, keeping side effects (see `graph.effects`)."""

from __future__ import annotations

import torch.fx as fx

from graph.effects import is_droppable


def eliminate_dead_code(gm: fx.GraphModule) -> bool:
    """Erase unused droppable nodes (graph.effects.is_droppable), last to first so chains of dead nodes go in one
    sweep. Returns changed."""
    changed = False
    for node in reversed(list(gm.graph.nodes)):
        if not node.users and node.op != "placeholder" and is_droppable(node):
            gm.graph.erase_node(node)
            changed = True
    return changed

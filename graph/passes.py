"""The pass manager: normalize, then simplify / fold / CSE / DCE until nothing changes.

The cleanup passes feed each other (folding makes a constant that a rule removes, a removed rule leaves dead
nodes, CSE exposes view-of-view), so they run as a loop to a fixed point, capped in case two rules ever undo each
other. Logging goes to "jit.graph" (INFO): the graph before and after, formatted only when enabled.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch.fx as fx

from framejit.graph import meta_memo
from framejit.graph.const_fold import fold_constants
from framejit.graph.cse import eliminate_common_subexpressions
from framejit.graph.dce import eliminate_dead_code
from framejit.graph.normalize import normalize
from framejit.graph.select_sum import pick_selected_values
from framejit.graph.simplify import simplify

log = logging.getLogger("jit.graph")

CLEANUP_PASSES: list[Callable[[fx.GraphModule], bool]] = [
    fold_constants, simplify, pick_selected_values, eliminate_common_subexpressions, eliminate_dead_code,
]
MAX_ROUNDS = 16
# Rewrites left out of a graph autograd is about to differentiate (graph/autodiff/joint.py): a one-hot selection
# read as a gather differentiates into a scatter into zeros, where the one-hot sum gives a pointwise gradient
# fused into the softmax's. The forward graph the partition keeps gets them when its backend optimizes it.
NOT_BEFORE_AUTODIFF = (pick_selected_values,)


def optimize(gm: fx.GraphModule, example_inputs: list | tuple, for_autodiff: bool = False) -> fx.GraphModule:
    """Optimize `gm` in place (and return it): core ops only where the table allows, shapes in meta["val"].
    `for_autodiff`: without the rewrites of NOT_BEFORE_AUTODIFF."""
    passes = [p for p in CLEANUP_PASSES if not (for_autodiff and p in NOT_BEFORE_AUTODIFF)]
    if log.isEnabledFor(logging.INFO):
        log.info("graph before optimization:\n%s", gm.graph)
    with meta_memo.remembering():  # torch's Python meta kernels answered from an earlier run's results
        normalize(gm, example_inputs)
        for _ in range(MAX_ROUNDS):
            changed = False
            for run_pass in passes:
                changed |= run_pass(gm)
            if not changed:
                break
    gm.graph.lint()
    gm.recompile()
    if log.isEnabledFor(logging.INFO):
        log.info("graph after optimization:\n%s", gm.graph)
    return gm

"""Constant folding: a pure node whose inputs are all constants is computed once, at compile time.

Only small tensors are folded (inputs and result at most SIZE_LIMIT elements): folding `weight.t()` would copy a
parameter into a second buffer that no longer follows the module's state_dict, and costs memory.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from framejit.graph.effects import is_removable
from framejit.graph.symbolic_sizes import is_symbolic
from framejit.graph.shape_prop import fetch_attr, to_meta

SIZE_LIMIT = 1024  # elements


def _small(value: Any) -> bool:
    return not isinstance(value, torch.Tensor) or value.numel() <= SIZE_LIMIT


def fold_constants(gm: fx.GraphModule) -> bool:
    """Evaluate constant subexpressions and store each result as a `_folded_N` buffer. Returns changed."""
    values: dict[fx.Node, Any] = {}  # node -> its real value, for nodes known to be constant
    changed = False
    for node in list(gm.graph.nodes):
        if node.op == "get_attr":
            value = fetch_attr(gm, node.target)
            # a parameter is state, not a constant: a folded copy would stop following load_state_dict/training
            if _small(value) and not isinstance(value, torch.nn.Parameter):
                values[node] = value
            continue
        if node.op not in ("call_function", "call_method") or not is_removable(node):
            continue
        inputs = node.all_input_nodes
        # A constructor alone (full([], 0.5)) stays: a backend writes it as a literal, better than a buffer load.
        if not inputs or any(n not in values for n in inputs):
            continue
        if is_symbolic((node.args, node.kwargs)):  # a shape given by dynamic sizes: computed per call
            continue
        args = fx.node.map_arg(node.args, values.__getitem__)
        kwargs = fx.node.map_arg(node.kwargs, values.__getitem__)
        try:
            if node.op == "call_function":
                result = node.target(*args, **kwargs)
            else:
                result = getattr(args[0], node.target)(*args[1:], **kwargs)
        except Exception:  # leave the node to run at run time, which reports the error where eager would
            continue
        if not isinstance(result, torch.Tensor) or not _small(result):
            continue
        index = 0
        while hasattr(gm, f"_folded_{index}"):
            index += 1
        name = f"_folded_{index}"
        gm.register_buffer(name, result.detach())
        with gm.graph.inserting_before(node):
            folded = gm.graph.get_attr(name)
        folded.meta["val"] = to_meta(result)
        node.replace_all_uses_with(folded)
        gm.graph.erase_node(node)
        values[folded] = result
        changed = True
    return changed

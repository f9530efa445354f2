"""The truth of a one-element tensor that is known without its value: a comparison of a uniform draw in [0, 1)
with a number outside that range. transformers' LayerDrop, in every BART / OPT / Whisper-family layer loop:

    dropout_probability = torch.rand([])
    if dropout_probability < self.layerdrop:   # layerdrop = 0.0 by default: never true
        continue

broke the graph at every layer of every training step. `torch.rand` (float32 or float64: half types may round a
draw up to 1.0) returns values in [0, 1), so `r < c` is False for c <= 0 and True for c >= 1, and so on. The draw
stays in the graph (random ops are never removed), so the random stream is eager's."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

_UNIFORM = {torch.rand, torch.rand_like, "uniform_"}
# comparison -> (decided False when, decided True when) for r in [0, 1) compared with c, as `r op c`
_RULES = {
    "lt": (lambda c: c <= 0, lambda c: c >= 1),
    "le": (lambda c: c < 0, lambda c: c >= 1),
    "gt": (lambda c: c >= 1, lambda c: c < 0),
    "ge": (lambda c: c >= 1, lambda c: c <= 0),
}
_FLIPPED = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_NAMES = {operator.lt: "lt", operator.le: "le", operator.gt: "gt", operator.ge: "ge", torch.lt: "lt",
          torch.le: "le", torch.gt: "gt", torch.ge: "ge", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge",
          "__lt__": "lt", "__le__": "le", "__gt__": "gt", "__ge__": "ge"}


def _uniform(node) -> bool:
    if not isinstance(node, fx.Node) or node.op not in ("call_function", "call_method") or node.target not in _UNIFORM:
        return False
    if node.target == "uniform_" and tuple(node.args[1:3]) not in ((), (0.0,), (0.0, 1.0), (0, 1)):
        return False
    val = node.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype in (torch.float32, torch.float64)


def known_truth(node: fx.Node, example: torch.Tensor) -> bool | None:
    """bool() of the comparison `node` (its example says one element), where the draw's range decides it."""
    if example.numel() != 1 or node.op not in ("call_function", "call_method") or len(node.args) != 2 or \
            node.kwargs:
        return None
    name = _NAMES.get(node.target)
    if name is None:
        return None
    a, b = node.args
    if _uniform(a) and type(b) in (int, float):
        drawn, c = a, b
    elif _uniform(b) and type(a) in (int, float):
        drawn, c, name = b, a, _FLIPPED[name]
    else:
        return None
    never, always = _RULES[name]
    return False if never(c) else True if always(c) else None

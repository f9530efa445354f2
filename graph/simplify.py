"""Algebraic simplification over core ops, written as a table: one `(target, rewrite)` line per rule.

A rewrite gets the node and its args and returns the replacement (an existing node, or `New(target, args,
kwargs)` for a node to build) or None when it does not apply. Every rewrite must leave eager's result unchanged:
`_keeps(node, x)` asks that the replacement have the node's exact shape and dtype, which is what stops
`int_x + 0.0` (float result) or `x * ones(broadcast)` (bigger result) from collapsing to `x`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.fx as fx

from framejit.graph.effects import has_mutation
from framejit.graph.symbolic_shapes import is_dynamic, shape_of
from framejit.graph.symbolic_sizes import SymInt
from framejit.graph.shape_prop import meta_tensor, meta_value, to_meta

aten = torch.ops.aten


class New(NamedTuple):
    target: Any
    args: tuple
    kwargs: dict


def _keeps(node: fx.Node, x: Any) -> bool:
    """The replacement `x` has the node's shape and dtype (so dropping the op changes nothing observable)."""
    a, b = meta_tensor(node), meta_tensor(x)
    if a is None or b is None or a.shape != b.shape or a.dtype != b.dtype:
        return False
    gm = node.graph.owning_module
    if gm is not None and is_dynamic(gm):  # equal at the hints is not enough: equal for every size
        return shape_of(node) == shape_of(x)
    return True


def _is(value: Any, constant: float) -> bool:
    """`value` is the Python number `constant` (bool excluded: True + x is not x + 1 for bool tensors)."""
    if isinstance(value, SymInt):  # a size: `constant` only for some sizes, so never the literal
        return False
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == constant


def _floating(x: Any) -> bool:
    t = meta_tensor(x)
    return t is None or t.dtype.is_floating_point or t.dtype.is_complex


def _adds_nothing(x: Any, y: Any) -> bool:
    """x + y is x for every x. IEEE addition turns -0.0 + 0 into +0.0 (so 1 / (x + 0) is +inf at x = -0.0), so for
    floats only y = -0.0 adds nothing; for integers and bools 0 does."""
    if not _is(y, 0):
        return False
    return isinstance(y, float) and math.copysign(1.0, y) < 0 or not _floating(x)


def _subtracts_nothing(x: Any, y: Any) -> bool:
    """x - y is x for every x: y = +0 (-0.0 - 0 is -0.0; x - (-0.0) is x + 0, which is not x)."""
    if not _is(y, 0):
        return False
    return not (isinstance(y, float) and math.copysign(1.0, y) < 0) or not _floating(x)


def _call(x: Any, target: Any) -> bool:
    return isinstance(x, fx.Node) and x.op == "call_function" and x.target == target


def _only_dtype(node: fx.Node) -> bool:
    return set(node.kwargs) == {"dtype"}


RULES: list[tuple[Any, Any]] = [
    # IEEE: x * 1, x / 1 and x ** 1 are x exactly (-0.0, inf and NaN included); x * 0 is not 0 (inf * 0 is NaN,
    # -1 * 0 is -0.0) and has no rule
    (aten.add.Tensor, lambda n, x, y, **kw: x if not kw and _adds_nothing(x, y) and _keeps(n, x) else None),
    (aten.sub.Tensor, lambda n, x, y, **kw: x if not kw and _subtracts_nothing(x, y) and _keeps(n, x) else None),
    (aten.mul.Tensor, lambda n, x, y: x if _is(y, 1) and _keeps(n, x) else None),
    (aten.div.Tensor, lambda n, x, y: x if _is(y, 1) and _keeps(n, x) else None),
    (aten.pow.Tensor_Scalar, lambda n, x, y: x if _is(y, 1) and _keeps(n, x) else None),
    (aten.neg.default, lambda n, x: x.args[0] if _call(x, aten.neg.default) and _keeps(n, x.args[0]) else None),
    (aten.view.default, lambda n, x, shape: x if _keeps(n, x) else None),
    (aten.view.default, lambda n, x, shape: New(aten.view.default, (x.args[0], shape), {})
        if _call(x, aten.view.default) else None),
    (aten.permute.default, lambda n, x, dims: x if list(dims) == sorted(dims) else None),
    (aten.permute.default, lambda n, x, dims: New(aten.permute.default, (x.args[0], [x.args[1][d] for d in dims]),
        {}) if _call(x, aten.permute.default) else None),
    (aten.expand.default, lambda n, x, shape: x if _keeps(n, x) else None),
    (aten._to_copy.default, lambda n, x, **kw: x if _only_dtype(n) and _keeps(n, x) else None),
    (aten.squeeze.dims, lambda n, x, dims: x if _keeps(n, x) else None),
    (aten.clone.default, lambda n, x, **kw: x if _call(x, aten.clone.default) and not kw and not x.kwargs
        and _keeps(n, x) else None),
]


def simplify(gm: fx.GraphModule) -> bool:
    """Apply the first matching rule to each node, in one forward sweep; a node a rule builds is visited too
    (permute∘permute can compose to the identity permute). Returns changed."""
    changed = False
    if has_mutation(gm.graph):  # every rule here may create an alias; see graph.effects.has_mutation
        return False
    work = list(gm.graph.nodes)
    for node in work:
        if node.op != "call_function":
            continue
        for target, rewrite in RULES:
            if node.target != target:
                continue
            try:
                result = rewrite(node, *node.args, **node.kwargs)
                if isinstance(result, New):  # compute the new node's meta first: it raises if the fold is invalid
                    val = to_meta(result.target(*fx.node.map_arg(result.args, meta_value), **result.kwargs))
            except (TypeError, IndexError, RuntimeError):  # the arguments do not fit this rule's pattern
                continue
            if result is None:
                continue
            if isinstance(result, New):
                with gm.graph.inserting_before(node):
                    made = gm.graph.call_function(result.target, result.args, result.kwargs)
                made.meta["val"] = val
                work.append(made)
                result = made
            node.replace_all_uses_with(result)
            gm.graph.erase_node(node)
            changed = True
            break
    return changed

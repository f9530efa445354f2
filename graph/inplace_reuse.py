"""A captured CPU graph's elementwise chain written into its own intermediates: `t = tanh(x); u = t * 2; v = u + 1`
runs as `t = tanh(x); t.mul_(2); t.add_(1)`.

On small tensors a torch op's cost is mostly fixed, and a fresh result is part of it (~0.3 us on 64x64 float32:
the allocation and the TensorImpl). Where the captured graph itself runs (on the CPU, where it beat the generated
NumPy code: small tensors) an op may write into its first operand instead, when nothing can tell:
  * that operand is an intermediate this graph made with an elementwise op of the table (so a fresh tensor, no
    view of anything), and this op is its only user (not an output, read by nothing else);
  * the result has the operand's dtype and shape, and the other operand is a number or a tensor of the same
    shape and dtype, both contiguous (so the out-of-place result would have had the operand's strides too);
  * no tensor in the graph requires grad (autograd may save an intermediate for backward)."""
from __future__ import annotations

import operator

import torch
import torch.fx as fx

from framejit.graph.shape_prop import meta_tensor

_BINARY = {operator.add: "add_", operator.sub: "sub_", operator.mul: "mul_", operator.truediv: "div_",
           torch.add: "add_", torch.sub: "sub_", torch.mul: "mul_", torch.div: "div_"}
_UNARY_NAMES = ("tanh", "sigmoid", "relu", "abs", "exp", "neg", "sin", "cos", "sqrt", "rsqrt", "reciprocal",
                "square", "log", "floor", "ceil", "round", "trunc", "sign", "erf")
_UNARY = {getattr(torch, n): n + "_" for n in _UNARY_NAMES}
_METHODS = {**{n: n + "_" for n in _UNARY_NAMES}, "add": "add_", "sub": "sub_", "mul": "mul_", "div": "div_"}


def _inplace_name(node: fx.Node) -> str | None:
    if node.kwargs:
        return None
    if node.op == "call_function":
        return _BINARY.get(node.target) or _UNARY.get(node.target)
    if node.op == "call_method":
        return _METHODS.get(node.target)
    return None


def _fits(node: fx.Node, fresh: set) -> bool:
    if not node.args or not isinstance(node.args[0], fx.Node) or len(node.args) > 2:
        return False
    buf, out = node.args[0], meta_tensor(node)
    a = meta_tensor(buf)
    if a is None or out is None or buf not in fresh or len(buf.users) != 1:
        return False
    if a.dtype != out.dtype or a.shape != out.shape:
        return False
    if len(node.args) == 2:
        other = node.args[1]
        if isinstance(other, fx.Node):
            b = meta_tensor(other)
            if b is None or b.shape != a.shape or b.dtype != a.dtype or not (a.is_contiguous() and b.is_contiguous()):
                return False
        elif isinstance(other, bool) or not isinstance(other, (int, float)):
            return False
    return True


def reuse_intermediates(gm: fx.GraphModule) -> int:
    """Rewrite gm (a captured graph on CPU tensors) in place; the number of ops made in-place."""
    graph = gm.graph
    if any(v is not None and v.requires_grad for v in map(meta_tensor, graph.nodes)):
        return 0
    fresh = {n for n in graph.nodes if _inplace_name(n) is not None}  # results of the table's ops: new tensors
    count = 0
    for node in list(graph.nodes):
        name = _inplace_name(node)
        if name is None or not _fits(node, fresh):
            continue
        node.op, node.target = "call_method", name
        count += 1
    if count:
        gm.recompile()
    return count

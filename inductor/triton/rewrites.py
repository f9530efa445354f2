"""Graph rewrites the Triton backend applies before lowering.

layer_norm / rms_norm of float16 and bfloat16 tensors: the shared decomposition table declines them (torch
accumulates half types in float32, and a NumPy kernel would round every intermediate), so they reach the
backend as torch calls, and in a GPT that is two eager kernels per block around a generated one. Triton kernels
compute half types in float32 anyway, so here they are rewritten into core ops on an explicit float32 upcast with
one cast back at the end: torch's own numerics (statistics in float32, one rounding of the result), and the
fusion plan then makes each norm one persistent kernel."""
import math

import torch
import torch.fx
import torch.nn.functional as F

aten = torch.ops.aten
HALF = (torch.float16, torch.bfloat16)
NORMS = {F.layer_norm: "layer", torch.layer_norm: "layer", aten.layer_norm.default: "layer"}
if hasattr(F, "rms_norm"):
    NORMS[F.rms_norm] = "rms"
    NORMS[torch.rms_norm] = "rms"


def _arg(node, i, name, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(name, default)


def rewrite_half_norms(gm: torch.fx.GraphModule) -> int:
    """Rewrite half-precision norms in place; returns how many."""
    count = 0
    for node in list(gm.graph.nodes):
        kind = NORMS.get(node.target) if node.op == "call_function" else None
        val = node.meta.get("val")
        if kind is None or not isinstance(val, torch.Tensor) or val.dtype not in HALF:
            continue
        x = node.args[0]
        shape = _arg(node, 1, "normalized_shape")
        shape = [shape] if isinstance(shape, int) else list(shape)
        weight = _arg(node, 2, "weight")
        bias = _arg(node, 3, "bias") if kind == "layer" else None
        eps = _arg(node, 4 if kind == "layer" else 3, "eps", 1e-5 if kind == "layer" else None)
        if eps is None:
            eps = torch.finfo(val.dtype).eps
        ndim = val.dim()
        dims = list(range(ndim - len(shape), ndim))
        count_n = math.prod(shape)
        g = gm.graph
        with g.inserting_before(node):
            op = lambda target, *args, **kw: g.call_function(target, args, kw)
            h = op(aten._to_copy.default, x, dtype=torch.float32)
            if kind == "layer":
                mean = op(aten.div.Tensor, op(aten.sum.dim_IntList, h, dims, True), count_n)
                h = op(aten.sub.Tensor, h, mean)
            power = op(aten.div.Tensor, op(aten.sum.dim_IntList, op(aten.mul.Tensor, h, h), dims, True), count_n)
            y = op(aten.mul.Tensor, h, op(aten.rsqrt.default, op(aten.add.Tensor, power, eps)))
            if weight is not None:
                y = op(aten.mul.Tensor, y, weight)
            if bias is not None:
                y = op(aten.add.Tensor, y, bias)
            out = op(aten._to_copy.default, y, dtype=val.dtype)
        node.replace_all_uses_with(out)
        g.erase_node(node)
        count += 1
    if count:  # the new nodes get their meta tensors from lowering.propagate_meta
        gm.graph.lint()
        gm.recompile()
    return count

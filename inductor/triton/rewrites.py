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


# cuDNN runs a convolution of channels-last (NHWC) tensors on its tensor-core kernels directly; given NCHW it
# transposes inside. Measured on the H100 (2026-12-06, 128x64x56x56 by 64x64x3x3, cudnn.benchmark off): NCHW
# 0.311 ms fp32 / 0.185 ms bf16 against NHWC 0.156 / 0.079, and eager's bias inside the call costs 0.09 more.
# So, as torch.compile does, the input and weight are copied to channels-last (transposing Triton kernels), the
# convolution runs without its bias, and the bias is added by a pointwise kernel that writes the result back in
# eager's NCHW layout, into which the next pointwise ops (batch_norm's affine, relu) fuse. Convolutions with few
# channels (a network's RGB stem) gain nothing from the layout and keep it.
CONV_MIN_CHANNELS = 16
CONV_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _nchw_contiguous(val) -> bool:
    return isinstance(val, torch.Tensor) and val.dim() == 4 and val.is_contiguous()


def channels_last_convolutions(gm: torch.fx.GraphModule, device: torch.device) -> int:
    """Rewrite NCHW 2-d convolutions on CUDA as described above; returns how many."""
    if device.type != "cuda":
        return 0
    count = 0
    g = gm.graph
    for node in list(g.find_nodes(op="call_function", target=aten.convolution.default)):
        x, w, bias, stride, padding, dilation, transposed, output_padding, groups = node.args
        xv, wv, out = (n.meta.get("val") if isinstance(n, torch.fx.Node) else None for n in (x, w, node))
        if transposed or groups != 1 or not (_nchw_contiguous(xv) and _nchw_contiguous(wv)) or \
                not isinstance(out, torch.Tensor) or out.dtype not in CONV_DTYPES or \
                min(wv.shape[0], wv.shape[1]) < CONV_MIN_CHANNELS:
            continue
        with g.inserting_before(node):
            op = lambda target, *args, **kw: g.call_function(target, args, kw)  # noqa: E731
            xc = op(aten.clone.default, x, memory_format=torch.channels_last)
            wc = op(aten.clone.default, w, memory_format=torch.channels_last)
            y = op(aten.convolution.default, xc, wc, None, stride, padding, dilation, False, output_padding, 1)
            if bias is not None:
                y = op(aten.add.Tensor, y, op(aten.view.default, bias, [1, -1, 1, 1]))
            result = op(aten.clone.default, y, memory_format=torch.contiguous_format)  # eager's layout
        node.replace_all_uses_with(result)
        g.erase_node(node)
        count += 1
    if count:  # the new nodes get their meta tensors from lowering.propagate_meta
        g.lint()
        gm.recompile()
    return count

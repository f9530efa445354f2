"""graph/autodiff/partition.py: what the forward saves for the backward, and what the backward computes again."""
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch.fx.experimental.proxy_tensor import make_fx

from framejit.graph.autodiff.joint import trace_joint
from framejit.graph.autodiff.partition import partition
from framejit.graph.passes import optimize

aten = torch.ops.aten
LAYERS = 8


def residual_stream(x, *weights):
    """A transformer's residual stream in miniature: float32 h, each layer's bf16 output added to it, each layer
    reading h through a norm (whose backward needs h)."""
    h = x
    for w in weights:
        h = h + (F.layer_norm(h, h.shape[-1:]).to(torch.bfloat16) @ w).float()
    return h.sum()


def _plan(fn, args):
    gm = optimize(make_fx(fn)(*[a.detach() for a in args]), list(args), for_autodiff=True)
    return partition(trace_joint(gm, list(args)))


def _widest_recomputation(backward: fx.GraphModule) -> int:
    """The most saved values one pointwise value of the backward is recomputed from (through other recomputed
    pointwise values; tangents excluded)."""
    reads: dict = {}
    tangents = {n for n in backward.graph.nodes if n.op == "placeholder" and n.name.startswith("tangents")}
    widest = 0
    for n in backward.graph.nodes:
        if n.op == "placeholder":
            reads[n] = {n} if n not in tangents else None
        elif n.op == "call_function" and n.target in (aten.add.Tensor, aten._to_copy.default):
            parts = [reads.get(a) for a in n.all_input_nodes]
            if all(p is not None for p in parts):
                reads[n] = set().union(*parts)
                widest = max(widest, len(reads[n]))
    return widest


def test_a_residual_stream_is_not_recomputed_from_every_layer_output():
    torch.manual_seed(0)
    x = torch.randn(16, 32, requires_grad=True)
    weights = [torch.randn(32, 32, dtype=torch.bfloat16, requires_grad=True) for _ in range(LAYERS)]
    plan = _plan(residual_stream, [x, *weights])
    # saving each bf16 layer output is half the bytes of saving each float32 h, but the backward would then sum
    # k of them to get h_k back: at most a few are read per recomputed value
    assert _widest_recomputation(plan.backward) <= 3
    leaves = [x.detach().clone().requires_grad_(), *[w.detach().clone().requires_grad_() for w in weights]]
    want = torch.autograd.grad(residual_stream(*leaves), leaves)  # the split still computes eager's gradients
    inputs = [x.detach(), *[w.detach() for w in weights]]
    grads = plan.backward(*_saved_values(plan, plan.forward(*inputs), inputs), torch.ones(()))
    for g, w in zip(grads, want):
        torch.testing.assert_close(g, w, rtol=2e-2, atol=2e-2)


def _saved_values(plan, fw, inputs):
    values, extra = [], iter(fw[plan.num_outputs:])
    for s in plan.saved:
        values.append(inputs[s.input_index] if s.input_index is not None else next(extra))
    return values

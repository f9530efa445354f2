"""graph/shape_prop.py: meta values for every node."""
import torch

from framejit.graph.shape_prop import propagate


def test_device_moves_propagate_on_meta():
    # transformers' rotary embedding: `inv_freq.to(dtype=torch.float32, device=x.device)`; a meta tensor cannot move
    # to a real device, and a node left without a value sent the whole Llama graph to torch on the GPU
    def f(x):
        return (x.to(dtype=torch.float32, device=torch.device("cuda", 0)), x.cuda(), x.to("cuda:0", torch.float16),
                x.cpu())

    gm = torch.fx.symbolic_trace(f)
    propagate(gm, [torch.randn(3, 2, dtype=torch.float64)])
    vals = [n.meta.get("val") for n in gm.graph.nodes if n.op == "call_method"]
    assert [(v.shape, v.dtype) for v in vals] == [((3, 2), torch.float32), ((3, 2), torch.float64),
                                                  ((3, 2), torch.float16), ((3, 2), torch.float64)]

"""An op the fusion plan counted as fused whose lowering then declines its arguments (aten.index with two index
tensors, as Hugging Face's GPT-2 builds its mask from aranges) runs in torch, and the arithmetic inlined into its
operands gets a kernel of its own: the graph around it is still generated, not handed back to torch whole."""
import torch

import jit
from framejit.inductor.backends import triton_backend
from tests.inductor.triton.support import assert_same, on_device


def _compiled(fn):
    made = []

    def backend(gm, example_inputs):
        made.append(triton_backend(gm, example_inputs))
        return made[-1]
    return jit.compile(fn, backend=backend), made


def test_index_of_aranges_is_a_torch_call_inside_generated_code(fresh_jit):
    # a training region: the joint trace spells the indexing as aten.index.Tensor
    def f(x, w):
        c = (x > 0).cumsum(1)
        rows = torch.arange(x.shape[0], device=x.device)[:, None, None]
        cols = torch.arange(x.shape[1] - 1, device=x.device)[None, :, None] + 1
        return (c[rows, cols] * w).sum()

    compiled, made = _compiled(f)
    x, w = on_device(torch.randn(3, 5)), on_device(torch.randn(3, 4, 1))
    a, b = w.clone().requires_grad_(), w.clone().requires_grad_()
    got, want = compiled(x, a), f(x, b)
    got.backward(), want.backward()
    assert_same([got, a.grad], [want, b.grad])
    (region,) = made
    source = getattr(region.forward, "source", None)
    assert source, "the forward graph was handed back to torch"
    call = source.split("def call(")[1]
    assert "index_fallback" in call and "launch[" in call

"""graph/pad_matmul.py: half-precision products with misaligned rows padded to an aligned width, same values."""
import pytest
import torch
import torch.nn.functional as F

from framejit.graph.pad_matmul import pad_misaligned_matmuls
from framejit.graph.passes import optimize

aten = torch.ops.aten
CUDA = torch.device("cuda")  # the pass reads only meta values: the graphs below run on the CPU


def _padded(fn, args, device=CUDA):
    gm = torch.fx.symbolic_trace(fn)
    optimize(gm, list(args))
    return gm, pad_misaligned_matmuls(gm, device)


@pytest.mark.parametrize("bias", [False, True])
def test_lm_head_product_is_padded_and_equal(bias):
    torch.manual_seed(0)
    x = torch.randn(1030, 64, dtype=torch.bfloat16)
    w = torch.randn(1027, 64, dtype=torch.bfloat16)
    b = torch.randn(1027, dtype=torch.bfloat16) if bias else None
    fn = (lambda x, w, b: F.linear(x, w, b)) if bias else (lambda x, w: F.linear(x, w))
    args = (x, w, b) if bias else (x, w)
    gm, count = _padded(fn, args)
    assert count == 1
    assert aten.constant_pad_nd.default in [n.target for n in gm.graph.nodes]
    got, want = gm(*args), fn(*args)
    assert got.shape == want.shape and got.stride() == want.stride() and got.dtype == want.dtype
    torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("case", ["aligned", "float32", "small", "cpu"])
def test_products_left_alone(case):
    dtype = torch.float32 if case == "float32" else torch.bfloat16
    n = 1032 if case == "aligned" else (100 if case == "small" else 1027)
    x, w = torch.randn(1030, 64, dtype=dtype), torch.randn(n, 64, dtype=dtype)
    _, count = _padded(lambda x, w: F.linear(x, w), (x, w), torch.device("cpu") if case == "cpu" else CUDA)
    assert count == 0

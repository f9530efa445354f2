"""The core op set one op at a time: outputs and gradients of the compiled forward and backward equal eager's,
on the default CPU backend and on the NumPy backend, and the backward really was compiled (counted)."""
import pytest
import torch
import torch.nn.functional as F

import jit
from grad_check import check


def r(*shape, grad=True, seed=None):
    g = torch.Generator().manual_seed(hash(shape) % 1000 if seed is None else seed)
    return torch.randn(*shape, generator=g).requires_grad_(grad)


def pos(*shape):
    return (r(*shape, grad=False).abs() + 0.5).requires_grad_(True)


CASES = {
    "matmul": (lambda a, b: a @ b, lambda: [r(4, 5), r(5, 3)]),
    "add": (lambda a, b: a + b * 2, lambda: [r(4, 5), r(5)]),
    "mul": (lambda a, b: a * b, lambda: [r(4, 5), r(4, 1)]),
    "div": (lambda a, b: a / b, lambda: [r(4, 5), pos(4, 5)]),
    "exp": (lambda a: torch.exp(a), lambda: [r(3, 7)]),
    "log": (lambda a: torch.log(a), lambda: [pos(3, 7)]),
    "tanh": (lambda a: torch.tanh(a), lambda: [r(3, 7)]),
    "sigmoid": (lambda a: torch.sigmoid(a), lambda: [r(3, 7)]),
    "gelu": (lambda a: F.gelu(a), lambda: [r(3, 7)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), lambda: [r(3, 7)]),
    "relu": (lambda a: F.relu(a), lambda: [r(3, 7)]),
    "silu": (lambda a: F.silu(a), lambda: [r(3, 7)]),
    "softmax": (lambda a: F.softmax(a, dim=-1), lambda: [r(3, 7)]),
    "log_softmax": (lambda a: F.log_softmax(a, dim=1), lambda: [r(3, 7)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (8,), w, b), lambda: [r(2, 3, 8), r(8), r(8)]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), lambda: [r(3, 4, 2, 5), r(4),
                                                                                                r(4)]),
    "batch_norm_eval": (lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b),
                        lambda: [r(3, 4, 5), r(4, grad=False), pos(4).detach(), r(4), r(4)]),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), lambda: [r(2, 6, 3, 2), r(6), r(6)]),
    "instance_norm": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b), lambda: [r(2, 3, 7), r(3), r(3)]),
    "sum": (lambda a: a.sum(dim=1), lambda: [r(3, 7)]),
    "mean": (lambda a: a.mean(), lambda: [r(3, 7)]),
    "cross_entropy": (lambda logits, y: F.cross_entropy(logits, y),
                      lambda: [r(6, 5), torch.tensor([0, 4, 2, 1, 3, 3])]),
    "embedding": (lambda idx, w: F.embedding(idx, w), lambda: [torch.tensor([[0, 3, 3], [1, 2, 0]]), r(4, 6)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda: [r(2, 3, 6, 6), r(4, 3, 3, 3), r(4)]),
    "view": (lambda a: (a.view(4, 6) * 2).sum(0), lambda: [r(2, 3, 4)]),
    "permute": (lambda a: a.permute(2, 0, 1) * torch.arange(4.0).view(4, 1, 1), lambda: [r(2, 3, 4)]),
    "transpose": (lambda a, b: a.transpose(0, 1) @ b, lambda: [r(5, 4), r(5, 3)]),
    "expand": (lambda a, b: a.expand(3, 4) * b, lambda: [r(1, 4), r(3, 4)]),
    "slicing": (lambda a: a[:, 1:3] * 3 + a[0:1, ::2].sum(), lambda: [r(3, 5)]),
    "where": (lambda a, b: torch.where(a > 0, a * b, b), lambda: [r(4, 5), r(4, 5)]),
    "dropout": (lambda a: F.dropout(a * 2, p=0.3, training=True), lambda: [r(8, 16)]),
}


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_op_gradients(name, backend, fresh_jit):
    fn, make = CASES[name]
    check(fn, make(), backend)
    assert jit.counters["backward_graphs"] == 1, "the backward ran as captured, not compiled"

"""Custom torch.autograd.Function calls (jit/semantics/autograd_functions.py): traced as their forward where
autograd records nothing, run eagerly (their own backward) where a gradient flows."""
import pytest
import torch

import jit

BACKENDS = ["eager", "numpy", "inductor"]


class RoundThrough(torch.autograd.Function):
    """A straight-through round: its backward is the identity, not round's zero derivative."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return torch.round(x * scale) / scale

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.ones_like(x), None


class Gelu(torch.autograd.Function):
    """The setup_context form: forward takes no ctx (transformers' BloomGelu uses the classic form)."""

    @staticmethod
    def forward(x):
        return x * 0.5 * (1.0 + torch.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(1.702 * x)


def model(x):
    return Gelu.apply(RoundThrough.apply(x * 3, 4.0) + 1).sum(-1)


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    yield
    jit.reset()


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_traces_forward_in_one_graph(backend):
    x = torch.randn(4, 5)
    breaks = jit.counters.graph_breaks
    with torch.no_grad():
        torch.testing.assert_close(jit.compile(model, backend=backend)(x), model(x))
    assert jit.counters.graph_breaks == breaks


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gradient_runs_the_functions_own_backward(backend):
    a = torch.randn(4, 5, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    jit.compile(model, backend=backend)(a).sum().backward()
    model(b).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)  # RoundThrough's identity, not round's zero derivative
    assert a.grad.abs().sum() > 0

"""`with torch.inference_mode():` in traced code: captured in the graph (enter / exit nodes, the graph run by
torch so its tensors are inference tensors), eager's results, flags and errors."""
import warnings

import pytest
import torch

import jit

BACKENDS = ["eager", "numpy", "inductor"]


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    jit.reset()


W = torch.randn(4, 4, requires_grad=True)


def block(x):
    a = x @ W  # outside: tracks gradients
    with torch.inference_mode():
        b = x @ W
        inner = (torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        with torch.inference_mode(False):
            c = x * 2
    return a, b, c, inner, torch.is_inference_mode_enabled()


def _flags(out):
    return [(t.requires_grad, t.is_inference()) if isinstance(t, torch.Tensor) else t for t in out]


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_mode_block_is_captured(backend):
    x = torch.randn(3, 4)
    want, got = block(x), jit.compile(block, backend=backend)(x)
    assert _flags(got) == _flags(want)
    for g, w in zip(got[:3], want[:3]):
        torch.testing.assert_close(g, w)
    explanation = jit.explain(block, x)
    assert explanation.graph_count == 1 and not explanation.break_reasons, explanation
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()


def test_inference_tensor_saved_for_backward_raises_as_eager():
    def f(x):
        with torch.inference_mode():
            y = x * 2
        return (y * W).sum()  # eager: an inference tensor cannot be saved for backward

    x = torch.randn(4)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        f(x)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        jit.compile(f)(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_break_inside_inference_mode_block(backend, capsys):
    def f(x):
        with torch.inference_mode():
            y = x * 2
            print("inside", torch.is_inference_mode_enabled())
            z = y + 1
        return z, z.is_inference()

    x = torch.randn(3)
    want = f(x)
    expected = capsys.readouterr().out
    got = jit.compile(f, backend=backend)(x)
    assert capsys.readouterr().out == expected
    assert got[1] == want[1] and got[0].is_inference() == want[0].is_inference()
    torch.testing.assert_close(got[0], want[0])

"""A training region around a torch call that returns sizes beside its tensors and a tensor of another rank than
its meta kernel promises (CUDA's cuDNN attention: ints for the sequence lengths, a (B, H, T) logsumexp promised
as (B, H, T, 1)) and saves that tensor for its backward. On the H100 such a GPT's forward ran in torch as a whole;
generated around the call, the saved logsumexp then failed to be restrided for the backward. Here a custom op
with a fake kernel of the wrong rank plays the attention: the forward and the backward are generated, and the
saved value reaches the backward's torch call as the forward made it."""
import os
import warnings

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import jit  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@torch.library.custom_op("framejit_test::softmax_lse", mutates_args=())
def softmax_lse(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    return x.softmax(-1), x.logsumexp(-1), x.shape[-1]


@softmax_lse.register_fake
def _(x):
    return torch.empty_like(x), x.new_empty(x.shape[:-1] + (1,)), x.shape[-1]


@torch.library.custom_op("framejit_test::softmax_lse_backward", mutates_args=())
def softmax_lse_backward(g: torch.Tensor, x: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
    p = (x - lse[..., None]).exp()
    return p * (g - (g * p).sum(-1, keepdim=True))


@softmax_lse_backward.register_fake
def _(g, x, lse):
    return torch.empty_like(x)


def _setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[0], output[1])


def _backward(ctx, g, g_lse, g_n):
    x, lse = ctx.saved_tensors
    return torch.ops.framejit_test.softmax_lse_backward(g, x, lse)


softmax_lse.register_autograd(_backward, setup_context=_setup)


def f(x, w):
    p, _, n = torch.ops.framejit_test.softmax_lse(x * 2)
    return ((p * w).relu() * n).sum()


def test_both_graphs_are_generated_and_give_eagers_gradients(fresh_jit):
    x, w = torch.randn(4, 6, device=DEVICE), torch.randn(4, 6, device=DEVICE)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    made = []
    from framejit.inductor.backends import triton_backend
    from framejit.inductor import training

    def backend(gm, example_inputs):
        made.append(triton_backend(gm, example_inputs))
        return made[-1]
    loss = jit.compile(f, backend=backend)(a, w)
    loss.backward()
    ref = f(b, w)
    ref.backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(a.grad, b.grad)
    (region,) = made
    assert isinstance(region, training.CompiledRegion)
    assert getattr(region.forward, "source", None) and "launch[" in region.forward.source  # not run in torch
    assert getattr(region.backward, "source", None) and "launch[" in region.backward.source
    assert jit.counters["backward_graphs"] == 1


def test_a_backward_whose_generated_code_would_read_it_runs_in_torch(fresh_jit, monkeypatch):
    """The misdescribed value read by a core op of the backward: that graph runs as traced, in torch."""
    from framejit.inductor import training
    monkeypatch.setattr(training, "read_by_torch_calls_only", lambda node: False)  # as if generated code read it
    x, w = torch.randn(4, 6, device=DEVICE), torch.randn(4, 6, device=DEVICE)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    jit.compile(f, backend="triton")(a, w).backward()
    f(b, w).backward()
    torch.testing.assert_close(a.grad, b.grad)


def two_layers(x, w):
    p, _, n = torch.ops.framejit_test.softmax_lse(x * 2)
    q, _, _ = torch.ops.framejit_test.softmax_lse(p * w + x)
    return ((q * w).relu() * n).sum()


def test_two_calls_of_one_op_keep_their_own_items(fresh_jit):
    """The second call's tuple is `softmax_lse_fallback_1`; the first call's item 1 was named so too, so the
    second's saved logsumexp became the first's [1] (on the H100: a GPT's second cuDNN attention, and wrong
    gradients in every layer below it)."""
    x, w = torch.randn(5, 6, device=DEVICE), torch.randn(5, 6, device=DEVICE)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first-call check's warning: the generated code disagreed
        loss = jit.compile(two_layers, backend="triton")(a, w)
        loss.backward()
    ref = two_layers(b, w)
    ref.backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(a.grad, b.grad)
    assert jit.counters["backward_graphs"] == 1


def _padded_rows(t):
    """t in memory whose rows are 8 elements longer: the layout the LM head's padded product leaves."""
    if t.dim() != 2:
        return t
    return torch.zeros(t.shape[0], t.shape[1] + 8, dtype=t.dtype)[:, :t.shape[1]].copy_(t)


@pytest.mark.parametrize("viewed", [False, True])
def test_saved_values_in_padded_rows_are_read_as_they_come(fresh_jit, viewed):
    """A forward that leaves its saved values in padded rows (graph/pad_matmul.py on CUDA) has them read in place
    by a backward whose readers take any layout (inductor/training.py adopt_saved_layouts); a backward that views
    one gets it copied into the traced layout. Gradients are eager's either way."""
    from framejit.inductor import training
    from framejit.inductor.backends import numpy_backend
    seen = []

    def compile_inference(gm, example_inputs):
        if type(gm).__name__ == "ForwardGraph":
            def forward(*args):
                out = list(gm(*args))
                return out[:1] + [_padded_rows(t) for t in out[1:]]
            return forward
        seen.append([(tuple(x.stride()), n.meta["val"].stride())
                     for x, n in zip(example_inputs, gm.graph.find_nodes(op="placeholder"))])
        return numpy_backend(gm, example_inputs)

    def f(x, w):
        h = x @ w  # saved: the backward reads it through tanh, or views it first
        return (h.reshape(-1) ** 3).sum() if viewed else (torch.tanh(h) * h.sum(0)).sum()

    backend = lambda gm, example_inputs: training.compile_training(gm, example_inputs, compile_inference)  # noqa: E731
    fast = jit.compile(f, backend=backend)
    for _ in range(2):
        x, w = torch.randn(6, 5), torch.randn(5, 7)
        a, b = w.clone().requires_grad_(), w.clone().requires_grad_()
        fast(x, a).backward()
        f(x, b).backward()
        torch.testing.assert_close(a.grad, b.grad)
    (strides,) = seen
    padded = [s for s, _ in strides if s == (15, 1)]
    assert len(padded) == (0 if viewed else 1)
    assert all(s == m for s, m in strides)  # each placeholder described as its value comes

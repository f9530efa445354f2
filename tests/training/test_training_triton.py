"""The Triton backend compiles both graphs of a training region: on a GPU the kernels run on CUDA, here in Triton's
CPU interpreter (TRITON_INTERPRET=1, set before triton is imported) at small sizes."""
import os

import pytest
import torch
import torch.nn.functional as F

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import triton  # noqa: E402,F401  (a missing triton fails loudly)

import jit  # noqa: E402
from grad_check import check  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _block(x, w1, b1, w2, ln_w, ln_b):
    h = F.gelu(F.linear(F.layer_norm(x, (8,), ln_w, ln_b), w1, b1))
    return (x + F.linear(h, w2)).pow(2).mean()


@pytest.mark.parametrize("fn,shapes", [
    (lambda x, w: (torch.tanh(x) * w).sum(), [(4, 8), (4, 8)]),
    (lambda x, w: F.softmax(x * w, dim=-1).pow(2).sum(), [(4, 8), (8,)]),
    (_block, [(4, 8), (16, 8), (16,), (8, 16), (8,), (8,)]),
])
def test_triton_forward_and_backward(fn, shapes, fresh_jit):
    from framejit.inductor.backends import triton_backend
    from framejit.inductor.training import CompiledRegion
    made = []

    def backend(gm, example_inputs):  # the Triton backend, keeping what it returns
        made.append(triton_backend(gm, example_inputs))
        return made[-1]
    torch.manual_seed(0)
    args = [torch.randn(*s, device=DEVICE).requires_grad_(i > 0) for i, s in enumerate(shapes)]
    check(fn, args, backend=backend, tol=dict(rtol=1e-4, atol=1e-5))
    assert jit.counters["backward_graphs"] == 1
    (region,) = made
    assert isinstance(region, CompiledRegion)
    assert getattr(region.forward, "source", None) and getattr(region.backward, "source", None), \
        "a graph of the region ran in torch rather than as Triton code"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cross_entropy_backward_is_one_kernel(dtype, fresh_jit):
    """The loss's gradient (softmax minus the one-hot target, scaled) is one kernel writing only the logits'
    gradient: the values it reads in two places (the upcast logits minus their max, the one-hot term) are computed
    again where they are read, not stored as logits-sized float32 buffers (a language model's vocabulary makes
    each a gigabyte), and its row sum is not split into partials a normalization cannot read."""
    from framejit.inductor.backends import triton_backend
    made = []

    def backend(gm, example_inputs):
        made.append(triton_backend(gm, example_inputs))
        return made[-1]
    n, c = 32, 1024  # rows long enough that a column layout would have split the row sum
    logits = torch.randn(n, c, device=DEVICE).to(dtype).requires_grad_()
    target = torch.randint(0, c, (n,), device=DEVICE)
    check(lambda x, t: F.cross_entropy(x, t), [logits, target], backend=backend,
          tol=dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=1e-2))
    (region,) = made
    source = region.backward.source
    assert source.count("\n@triton.jit\n") == 1
    assert source.count(f"empty_strided(({n}, {c})") == 1  # the gradient itself


def test_autocast_language_model_head_reads_the_logits_once_per_pass(fresh_jit):
    """A bf16 head under autocast, its loss in float32 (the cast chain Hugging Face's GPT-2 trains through): the
    forward's only pass over the logits is the online softmax, and the backward reduces nothing over them; the
    target's logit and the one-hot's row sum are read at the target (graph/select_sum.py)."""
    from framejit.inductor.backends import triton_backend
    made = []

    def backend(gm, example_inputs):
        made.append(triton_backend(gm, example_inputs))
        return made[-1]

    def head_loss(h, w, t):
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            logits = (h @ w.t()).view(2, 16, -1)
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), t.view(-1))
    torch.manual_seed(0)
    h, w = torch.randn(32, 16, device=DEVICE, requires_grad=True), torch.randn(1027, 16, device=DEVICE, requires_grad=True)
    check(head_loss, [h, w, torch.randint(0, 1027, (2, 16), device=DEVICE)], backend=backend,
          tol=dict(rtol=2e-2, atol=2e-2))
    (region,) = made
    assert region.forward.source.count("\ndef red_") == 2, region.forward.source  # softmax's max and sum; the loss
    assert "\ndef red_" not in region.backward.source, region.backward.source


def test_backward_decompositions_spelled_as_core_ops(fresh_jit):
    """torch's decompositions of gelu's and tanh's backward spell casts `x.to(dtype)` and a real tensor's
    `conj_physical()`; CPU attention's math path calls softmax and builds its causal mask with ones and tril. Each
    is a core op in the joint graph, not a torch call inside the generated code (Hugging Face's GPT-2 backward had
    six)."""
    from framejit.inductor.backends import triton_backend
    made = []

    def backend(gm, example_inputs):
        made.append(triton_backend(gm, example_inputs))
        return made[-1]

    def f(x, w, q):
        h = torch.tanh(F.gelu(x * w, approximate="tanh"))
        return (h + F.scaled_dot_product_attention(q, q, q, is_causal=True).sum()).pow(2).mean()
    torch.manual_seed(0)
    args = [torch.randn(4, 8, device=DEVICE), torch.randn(8, device=DEVICE).requires_grad_(),
            torch.randn(1, 2, 4, 8, device=DEVICE).requires_grad_()]
    check(f, args, backend=backend, tol=dict(rtol=1e-4, atol=1e-5))
    (region,) = made
    for graph in (region.forward, region.backward):
        source = getattr(graph, "source", None)
        assert source and "launch[" in source
        calls = [line for line in source.split("def call(")[1].splitlines() if "torch.ops.aten" in line]
        assert not [c for c in calls if any(op in c for op in (".to.", "conj_physical", "softmax", "ones", "tril"))], \
            calls

"""A torch fallback returning a tuple with Python values beside its tensors (CUDA attention's forward returns its
sizes and seeds so), or a tensor whose real layout its meta kernel does not promise (cuDNN attention's
logsumexp has one dim fewer): the graph around it is still generated, and the items only torch reads (graph
outputs saved for a backward, other fallbacks' operands) are passed on as the call returned them
(triton/host.py `untouched_items`)."""
import torch

import jit
from framejit.inductor.backends import triton_backend
from tests.inductor.triton.support import assert_same, on_device


@torch.library.custom_op("framejit_test::lse_like", mutates_args=())
def lse_like(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    return x * 2, x.logsumexp(-1), x.shape[-1]


@lse_like.register_fake
def _(x):  # promises (N, 1) for the logsumexp, which is (N,)
    return torch.empty_like(x), x.new_empty(x.shape[:-1] + (1,)), x.shape[-1]


def _compiled(fn):
    made = []

    def backend(gm, example_inputs):
        made.append(triton_backend(gm, example_inputs))
        return made[-1]
    return jit.compile(fn, backend=backend), made


def test_items_only_torch_reads_are_passed_on_as_returned(fresh_jit):
    def f(x):
        a, lse, n = torch.ops.framejit_test.lse_like(x)
        return (a + 1).relu() * n, lse, n

    compiled, made = _compiled(f)
    x = on_device(torch.randn(4, 6))
    got, want = compiled(x), f(x)
    assert_same(list(got), list(want))
    (module,) = made
    call = module.source.split("def call(")[1]
    assert "launch[" in call  # the pointwise work around the call is generated
    assert "lse_like_fallback_item1 = lse_like_fallback[1]\n" in call  # returned untouched, shape (4,)


def test_a_second_fallback_reads_the_item_untouched(fresh_jit):
    def f(x):
        a, lse, _ = torch.ops.framejit_test.lse_like(x)
        b, lse2, _ = torch.ops.framejit_test.lse_like(lse)  # lse is (4,) for real: lse2 is a 0-d tensor
        return a.sin() + 1, lse2, b

    compiled, made = _compiled(f)
    x = on_device(torch.randn(4, 6))
    assert_same(list(compiled(x)), list(f(x)))


def test_a_tuples_elements_get_the_strides_the_call_returns(fresh_jit):
    """The layout probe runs tuple-valued calls too (triton/probe.py `_probed_items`): the kernel reading an
    element laid out otherwise than its meta tensor promises indexes it as the call returned it, where it cost a
    copy per call (CPU SVD's Vh comes column-major, meta says row-major; cuDNN attention's output and its
    backward's gradients come in (B, T, H, D) memory order, meta says contiguous: copies in every layer)."""
    def f(x):
        u, s, vh = torch.linalg.svd(x, full_matrices=False)
        return (vh * 2 + 1).relu() * s[:, None]

    compiled, made = _compiled(f)
    x = on_device(torch.randn(5, 4, dtype=torch.float64))
    assert_same(compiled(x), f(x))
    source = made[0].source
    lines = [ln.strip() for ln in source.splitlines() if "_item2 = " in ln]
    # Vh as this device's SVD returns it (column-major on the CPU: (1, 4); cuSOLVER's may differ)
    strides = tuple(torch.linalg.svd(x, full_matrices=False)[2].stride())
    assert lines and all(ln.endswith(f", {strides})") for ln in lines), (lines, strides)

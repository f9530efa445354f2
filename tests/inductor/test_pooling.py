"""Issue 20's 2-D pooling in both backends (graph/pooling_rules.py): max_pool2d with and without indices,
avg_pool2d, adaptive_avg_pool2d (torchvision's global (1, 1) pool among them), compared with eager and run in
generated code; the gradient through max_pool2d goes to eager's element among ties (ReLU zeros) and NaNs."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.inductor.generated import BACKENDS, compiled, kernels_with, run

import jit


def rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def with_nans(t):
    t = t.clone()
    t.view(-1)[::7] = float("nan")
    return t


def _pair(pool):
    return lambda t: tuple(pool(t))


CASES = {
    "max_k2": (lambda t: F.max_pool2d(t, 2), lambda: [rand(2, 3, 6, 6)]),
    "max_resnet_stem": (lambda t: F.max_pool2d(t, 3, 2, 1), lambda: [rand(2, 3, 9, 9)]),
    "max_dilated": (lambda t: F.max_pool2d(t, 2, 1, 0, 2), lambda: [rand(1, 2, 7, 7)]),
    "max_rect": (lambda t: F.max_pool2d(t, (2, 3), (1, 2)), lambda: [rand(1, 2, 5, 8)]),
    "max_nan": (lambda t: F.max_pool2d(t, 3, 2, 1), lambda: [with_nans(rand(1, 2, 7, 7))]),
    "max_ties_after_relu": (lambda t: F.max_pool2d(F.relu(t), 2), lambda: [rand(1, 2, 6, 6) - 1]),
    "max_unbatched": (lambda t: F.max_pool2d(t, 2), lambda: [rand(3, 6, 4)]),
    "max_bf16": (lambda t: F.max_pool2d(t, 3, 2, 1), lambda: [rand(1, 2, 7, 7, dtype=torch.bfloat16)]),
    "max_indices": (lambda t: F.max_pool2d(t, 2, return_indices=True)[1], lambda: [rand(2, 2, 6, 6)]),
    "max_indices_nan_ties": (lambda t: F.max_pool2d(F.relu(t), 3, 2, return_indices=True)[1],
                             lambda: [with_nans(rand(1, 2, 7, 7) - 1)]),
    "max_indices_values": (lambda t: F.max_pool2d(t, 2, return_indices=True)[0] * 2, lambda: [rand(1, 2, 4, 6)]),
    "avg_k2": (lambda t: F.avg_pool2d(t, 2), lambda: [rand(2, 3, 6, 6)]),
    "avg_padded": (lambda t: F.avg_pool2d(t, 3, 2, 1), lambda: [rand(2, 3, 7, 7)]),
    "avg_divisor_override": (lambda t: F.avg_pool2d(t, 3, 1, 1, divisor_override=5), lambda: [rand(1, 2, 5, 5)]),
    "avg_no_pad_count": (lambda t: F.avg_pool2d(t, 2, count_include_pad=False), lambda: [rand(1, 2, 4, 4)]),
    "avg_bf16": (lambda t: F.avg_pool2d(t, 2), lambda: [rand(1, 2, 6, 6, dtype=torch.bfloat16)]),
    "adaptive_global": (lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1), lambda: [rand(2, 3, 5, 7)]),
    "adaptive_global_half": (lambda t: F.adaptive_avg_pool2d(t, (1, 1)), lambda: [rand(2, 3, 4, 4,
                                                                                     dtype=torch.float16)]),
    "adaptive_divides": (lambda t: F.adaptive_avg_pool2d(t, (2, 3)), lambda: [rand(1, 2, 6, 6)]),
    "adaptive_tiles": (lambda t: F.adaptive_avg_pool2d(t, (2, 3)), lambda: [rand(2, 3, 8, 15)]),  # 4x5 windows
    "adaptive_tiles_bf16": (lambda t: F.adaptive_avg_pool2d(t, 2), lambda: [rand(1, 2, 8, 8, dtype=torch.bfloat16)]),
    "adaptive_tiles_channels_last": (lambda t: F.adaptive_avg_pool2d(t, 2),
                                     lambda: [rand(2, 5, 8, 12).to(memory_format=torch.channels_last)]),
    "avg_k4_tiles_unbatched": (lambda t: F.avg_pool2d(t, 4), lambda: [rand(3, 8, 12)]),
    "adaptive_none": (lambda t: F.adaptive_avg_pool2d(t, (None, 2)), lambda: [rand(1, 2, 3, 6)]),
    "adaptive_uneven": (lambda t: F.adaptive_avg_pool2d(t, (3, 5)), lambda: [rand(2, 2, 8, 7)]),
    "adaptive_uneven_bf16": (lambda t: F.adaptive_avg_pool2d(t, 3), lambda: [rand(1, 2, 5, 5, dtype=torch.bfloat16)]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CASES)
def test_pooling_matches_eager_in_generated_code(backend, name):
    fn, make = CASES[name]
    run(backend, fn, *make())


def test_max_pool_fuses_into_one_triton_kernel():
    # relu (a where), the padding (a cat), the nine window offsets and the scale after the pool: one kernel
    c = run("triton", lambda t: F.max_pool2d(F.relu(t), 3, 2, 1) * 2, rand(1, 2, 9, 9))
    assert len(c.lowered.kernels) == 1 and kernels_with(c, "lt", "cat", "where_self_7", "mul")


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_tiling_windows_are_one_reduction(backend):
    """adaptive_avg_pool2d to 7x7 of a 56x56 plane (here 2x2 of 8x8): one sum over the (kh, kw) dims of a
    (..., oh, kh, ow, kw) view of the input, no slice per window offset; its scale fused into it."""
    c = run(backend, lambda t: F.adaptive_avg_pool2d(t, 2) * 3, rand(2, 3, 8, 8))
    (k,) = c.lowered.kernels
    assert kernels_with(c, "sum", "div", "mul") and not any("slice" in s for s in k.source)


def test_global_pool_fuses_with_its_reader():
    c = run("triton", lambda t, w: (F.adaptive_avg_pool2d(t, 1).flatten(1) + w).sigmoid(), rand(2, 3, 4, 4), rand(3))
    assert kernels_with(c, "sum", "sigmoid")


def test_ceil_mode_stays_eager_but_correct():
    for fn in (lambda t: F.max_pool2d(t, 2, ceil_mode=True), lambda t: F.avg_pool2d(t, 3, 2, 1, True)):
        c, inputs = compiled("numpy", fn, [rand(1, 2, 5, 5)])
        torch.testing.assert_close(c(*inputs), fn(*inputs))


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_through_max_pool_routes_gradients_as_eager(backend, fresh_jit):
    """conv -> relu -> max_pool2d -> avg_pool2d -> linear: the ReLU zeros tie inside windows; eager's backward
    gives each window's gradient to its first maximum, and so must the compiled backward."""
    torch.manual_seed(0)
    make = lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model, twin = make(), make()
    twin.load_state_dict(model.state_dict())
    x = torch.randn(2, 2, 8, 8) - 0.5
    step = jit.compile(lambda m, x: m(x).square().sum(), backend=BACKENDS[backend] if backend == "numpy" else "triton")
    if backend == "triton":
        from tests.inductor.triton.support import on_device
        model, twin, x = model.to(on_device(x).device), twin.to(on_device(x).device), on_device(x)
    step(model, x).backward()
    twin(x).square().sum().backward()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5)


def test_cat_of_reductions_as_wide_as_their_input():
    # the uneven adaptive pool's shape: each band's sum is one column of a cat exactly as wide as the bands' rows
    # (was a wrong answer in Triton: run as a normalization over the reductions' columns)
    for fn in (lambda x: torch.cat([x[:, 0:2].sum(1, keepdim=True), x[:, 2:4].sum(1, keepdim=True)], 1),
               lambda x: torch.cat([x[:, :3].amax(1, keepdim=True) * 2, x[:, 3:].mean(1, keepdim=True)], 1)):
        for backend in BACKENDS:
            run(backend, fn, rand(3, 6))

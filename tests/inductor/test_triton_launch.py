"""Launching generated kernels: after the first launch, kernels start through their compiled launcher directly
(inductor/triton_runtime.DirectLaunch), per argument specialization; the interpreter always takes Triton's path."""
import torch

from triton_support import DEVICE, assert_same, check_fn, on_device


def _chain(x):
    return torch.tanh(x) * 2 + 1


def test_direct_launch_per_specialization():
    x = on_device(torch.randn(64, 64))
    fn = check_fn(_chain, x)
    for _ in range(3):
        assert_same(fn(x), _chain(x))
    (launcher,) = fn.launch.values()
    direct = launcher.direct
    if DEVICE != "cuda":
        assert not direct.usable and direct.hits == 0  # the interpreter has no compiled launcher
        return
    assert direct.usable, "direct launch is off on the GPU: launch hooks set, or compiled kernels unlike Triton's"
    assert direct.hits >= 3
    # a view 4 bytes past an aligned buffer breaks Triton's 16-byte pointer specialization: that call compiles
    # (or finds) the kernel for it through Triton, and the aligned kernel is never run on it
    y = on_device(torch.randn(64 * 64 + 1))[1:].view(64, 64)
    assert y.data_ptr() % 16 != 0
    assert_same(fn(y), _chain(y))
    assert_same(fn(y), _chain(y))
    assert len(direct.kernels) == 2
    assert_same(fn(x), _chain(x))

"""Launching generated kernels: after the first launch, kernels start through their compiled launcher directly
(inductor/triton_runtime.DirectLaunch), per argument specialization; the interpreter always takes Triton's path."""
import torch

from tests.inductor.triton.support import DEVICE, assert_same, check_fn, on_device


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


def test_elements_per_thread_follow_the_inputs_read_at_every_element():
    """16 elements per thread (2048 per 4 warps) where the inputs read at every element total under 4 bytes per
    element, 8 otherwise; a broadcast operand does not count. Results stay eager's either way."""
    import torch.nn.functional as F

    def configs(f, *inputs):
        fn = check_fn(f, *(on_device(x) for x in inputs), tol=(2e-2, 2e-2))
        return [(ls.ks.config["XBLOCK"], ls.ks.config["num_warps"]) for ls in fn.launch.values()]
    m, b = torch.randn(64, 64, dtype=torch.bfloat16), torch.randn(64)
    assert configs(lambda m, b: F.gelu(m + b), m, b) == [(2048, 4)]          # one bf16 input and a bias row
    assert configs(lambda x, y: torch.tanh(x) * y, m, m * 2) == [(1024, 4)]   # two bf16 inputs: 4 bytes
    assert configs(lambda x, y: torch.tanh(x) * y, m.float(), b) == [(1024, 4)]  # one float32 input


def test_gathers_take_fewer_elements_per_thread():
    """A pointwise kernel with a pooling window's nine taps: 512 elements over 8 warps, not 1024 over 4."""
    from framejit.inductor.runtime import launch_configs
    plain = launch_configs.heuristic("pointwise", 1 << 22, 1, 4, streamed=4, loads=1)
    taps = launch_configs.heuristic("pointwise", 1 << 22, 1, 4, streamed=0, loads=9)
    assert (plain["XBLOCK"], plain["num_warps"]) == (1024, 4)
    assert (taps["XBLOCK"], taps["num_warps"]) == (512, 8)

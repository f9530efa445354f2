"""batch_norm, group_norm and instance_norm (graph/decompositions_norms.py) in a compiled CNN, through both
backends (NumPy code; Triton kernels, in Triton's CPU interpreter without a GPU): outputs and running buffers
equal eager's over several calls in training mode and in eval mode, under CPU autocast to bfloat16 too. In eval
mode every norm runs in generated code (no torch call); in training mode the running statistics are written
into the buffers exactly as eager writes them (the graph runs in torch there: it writes its inputs)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import jit
from tests.inductor.generated import BACKENDS, run
from tests.inductor.triton.support import DEVICE, on_device

from framejit.inductor.ir import FallbackKernel

NORMS = ("batch_norm", "group_norm", "instance_norm")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8, momentum=0.3)
        self.gn = nn.GroupNorm(4, 8)
        self.proj = nn.Conv2d(8, 6, 1)
        self.inorm = nn.InstanceNorm2d(6, affine=True, track_running_stats=True)
        self.bn1d = nn.BatchNorm1d(6, momentum=None)  # a cumulative average in training

    def forward(self, x):
        h = self.gn(F.relu(self.bn(self.conv(x))))
        h = self.inorm(self.proj(h))
        return self.bn1d(h.flatten(2)).sum(-1)


def _pair(device):
    torch.manual_seed(0)
    model = Net()
    with torch.no_grad():  # statistics and affines far from their initial values, so a wrong one shows
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.InstanceNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
                if getattr(m, "running_mean", None) is not None:
                    m.running_mean.normal_()
                    m.running_var.uniform_(0.5, 2.0)
    twin = Net()
    twin.load_state_dict(model.state_dict())
    return model.to(device), twin.to(device)


def _compile(backend, model):
    regions = []

    def capture(gm, inputs):
        out = BACKENDS[backend](gm, inputs)
        regions.append(out)
        return out
    capture.dynamic_sizes = True
    return jit.compile(model, backend=capture), regions


def _norms_in_torch(regions) -> list:
    return [k.source[0] for r in regions if hasattr(r, "lowered") for k in r.lowered.kernels
            if isinstance(k, FallbackKernel) and any(n in k.source[0] for n in NORMS)]


def _assert_buffers_equal(model, twin):
    for (name, got), (_, want) in zip(model.named_buffers(), twin.named_buffers()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cnn_norms_train_then_eval_match_eager(backend, fresh_jit):
    device = DEVICE if backend == "triton" else "cpu"
    model, twin = _pair(device)
    compiled, regions = _compile(backend, model)
    with torch.no_grad():
        for step in range(3):  # training mode: batch statistics, running buffers updated every call
            x = on_device(torch.randn(4, 3, 6, 5, generator=torch.Generator().manual_seed(step))).to(device)
            torch.testing.assert_close(compiled(x), twin(x), rtol=1e-4, atol=1e-4)
            _assert_buffers_equal(model, twin)
        model.eval(), twin.eval()
        eval_regions = len(regions)
        for step in range(2):  # eval mode: the running statistics, buffers left alone
            x = on_device(torch.randn(4, 3, 6, 5, generator=torch.Generator().manual_seed(10 + step))).to(device)
            torch.testing.assert_close(compiled(x), twin(x), rtol=1e-4, atol=1e-4)
            _assert_buffers_equal(model, twin)
    assert any(hasattr(r, "lowered") for r in regions[eval_regions:]), "eval mode ran as captured"
    assert _norms_in_torch(regions[eval_regions:]) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_functional_batch_norm_training_updates_the_buffers(backend, fresh_jit):
    """F.batch_norm in training mode with running statistics: eager's kernel updates them in place (the rule
    declines it); several calls leave the buffers as eager leaves them, with a momentum."""
    device = DEVICE if backend == "triton" else "cpu"
    fn = lambda x, m, v, w: F.batch_norm(x * 2, m, v, w, None, True, 0.25, 1e-3).relu()
    compiled, _ = _compile(backend, fn)
    buffers = [torch.zeros(5, device=device), torch.ones(5, device=device)]
    twins = [b.clone() for b in buffers]
    w = torch.rand(5, device=device) + 0.5
    for step in range(3):
        x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(step)).to(device)
        torch.testing.assert_close(compiled(x, *buffers, w), fn(x, *twins, w))
        for got, want in zip(buffers, twins):
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_norms_under_autocast(backend, fresh_jit):
    """Under autocast the convolutions run in bfloat16 and the norms read bfloat16 activations with float32
    parameters and statistics: computed in float32, rounded once, as eager's mixed-type kernels. (The Triton
    backend's tensors are on the GPU where there is one: autocast of that device.)"""
    device = DEVICE if backend == "triton" else "cpu"
    model, twin = _pair(device)
    model.eval(), twin.eval()
    compiled, regions = _compile(backend, model)
    x = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(3)).to(device)
    with torch.no_grad(), torch.autocast(device, torch.bfloat16):
        got, want = compiled(x), twin(x)
    # bfloat16 on the CPU; float32 under CUDA's autocast, whose sum runs with dtype=float32
    assert got.dtype == want.dtype == (torch.float32 if device == "cuda" else torch.bfloat16)
    # a convolution in the Triton module may round its bf16 product differently by an ulp (a pre-existing,
    # norm-independent difference): the tolerance is bf16's few ulps at the outputs' magnitude
    torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=6e-2)
    assert _norms_in_torch(regions) == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("call,expected", [
    (lambda x: F.batch_norm(x[:1, :, :1], None, None, training=True), ValueError),  # one value per channel
    (lambda x: F.group_norm(x, 3), RuntimeError),  # 4 channels in 3 groups
    (lambda x: F.instance_norm(x[:, :, :1]), ValueError),  # one spatial element
    (lambda x: F.batch_norm(x, None, None), RuntimeError),  # eval mode without running statistics
], ids=["batch_norm_one_value", "group_norm_groups", "instance_norm_one_element", "batch_norm_eval_no_stats"])
def test_argument_errors_raise_as_eager(backend, call, expected, fresh_jit):
    x = torch.randn(2, 4, 3)
    with pytest.raises(expected) as eager:
        call(x)
    compiled = jit.compile(call, backend=backend)
    with pytest.raises(expected) as got:
        compiled(on_device(x) if backend == "triton" else x)
    assert str(got.value) == str(eager.value)


ONE_KERNEL = {
    "batch_norm_eval_relu": (lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b).relu(), torch.float32),
    "group_norm": (lambda x, m, v, w, b: F.group_norm(x, 2, w, b), torch.float32),
    "group_norm_bf16": (lambda x, m, v, w, b: F.group_norm(x, 2, w.bfloat16(), b.bfloat16()), torch.bfloat16),
    "instance_norm": (lambda x, m, v, w, b: F.instance_norm(x, weight=w, bias=b), torch.float32),
}


def test_group_norm_of_bfloat16_with_float32_parameters_as_eager():
    """The CPU's group_norm computes a bfloat16 input with float32 parameters in float32; CUDA's raises "expected
    scalar type BFloat16 but found Float". Compiled, it does what eager does on the device."""
    fn = lambda x, w, b: F.group_norm(x, 2, w, b)  # noqa: E731
    x, w, b = on_device(torch.randn(2, 4, 3, 5).bfloat16()), on_device(torch.randn(4)), on_device(torch.randn(4))
    compiled = jit.compile(fn, backend="triton")
    try:
        want = fn(x, w, b)
    except RuntimeError as eager:
        with pytest.raises(RuntimeError) as got:
            compiled(x, w, b)
        assert str(got.value) == str(eager)
        return
    torch.testing.assert_close(compiled(x, w, b).float(), want.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("name", ONE_KERNEL)
def test_triton_norm_is_one_kernel(name):
    """Statistics, normalization, affine (and the rounding to bfloat16) in one Triton kernel: x read once, the
    result written once (group_norm's grouped view is rounded before it is viewed back, so every op has the
    reduction's shape)."""
    fn, dtype = ONE_KERNEL[name]
    inputs = [torch.randn(3, 4, 5, 2).to(dtype), torch.randn(4) * 0.1, torch.rand(4) + 0.5, torch.randn(4),
              torch.randn(4)]
    c = run("triton", fn, *inputs)
    assert c.source.count("\n@triton.jit\n") == 1, c.source

"""torchvision's ResNet-50 under jit.compile on a GPU, against eager: eval outputs in fp32 and bf16, and three
training steps (SGD with momentum, batch norm in train mode) with parameters and running statistics compared.
Needs CUDA and torchvision (the lent GPU machine has both); tests/executor/test_cnn_models.py checks the same
pieces at small size on the CPU everywhere."""
import copy

import pytest
import torch

import jit

torchvision = pytest.importorskip("torchvision")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="runs ResNet-50 on a GPU")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative error of a against b in the 2-norm (elementwise tolerances mean little for bf16 logits)."""
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12)).item()


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    jit.reset()


def _assert_compiled():
    """An equal answer means nothing if the model ran eagerly: the forward must have become graphs."""
    assert jit.counters.graphs >= 1 and jit.counters.compile_errors == 0, jit.counters
    assert jit.counters.frames_run_eagerly == 0, jit.counters


def _resnet(dtype=torch.float32):
    torch.manual_seed(0)
    return torchvision.models.resnet50(weights=None).cuda().to(dtype)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 3e-2)])
def test_resnet50_eval(dtype, tol):
    eager = _resnet(dtype).eval()
    model = copy.deepcopy(eager)
    fast = jit.compile(model)
    x = torch.randn(8, 3, 224, 224, device="cuda", dtype=dtype)
    with torch.no_grad():
        expected = eager(x)
        for _ in range(3):  # the first call compiles, the second records, the third replays
            assert _rel(fast(x), expected) < tol
    _assert_compiled()


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-3), (torch.bfloat16, 5e-2)])
def test_resnet50_three_training_steps(dtype, tol):
    eager = _resnet(dtype).train()
    model = copy.deepcopy(eager)
    fast = jit.compile(model)
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.01, momentum=0.9)
    opt_c = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator(device="cuda").manual_seed(1)
    for step in range(3):
        x = torch.randn(8, 3, 224, 224, device="cuda", dtype=dtype, generator=gen)
        y = torch.randint(0, 1000, (8,), device="cuda", generator=gen)
        losses = []
        for net, opt in ((eager, opt_e), (fast, opt_c)):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x).float(), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert abs(losses[0] - losses[1]) <= tol * abs(losses[0]), (step, losses)
    _assert_compiled()
    for (name, pe), pc in zip(eager.named_parameters(), model.parameters()):
        assert _rel(pc, pe) < tol, name
    for (name, be), bc in zip(eager.named_buffers(), model.buffers()):
        if be.is_floating_point():
            assert _rel(bc, be) < tol, name
        else:
            assert torch.equal(bc, be), name

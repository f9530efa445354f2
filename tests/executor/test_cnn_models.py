"""A ResNet-style CNN (conv, batch norm, ReLU(inplace=True), max pool, residual `+=`, adaptive pool) compiled
against eager, in eval and in train mode: outputs, batch-norm running statistics, gradients, and parameters after
a few optimizer steps. torchvision's ResNets are built from exactly these pieces."""
import copy

import pytest
import torch
import torch.nn as nn

import jit

BACKENDS = ["eager", "inductor"]


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class SmallResNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5, 2, 2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    model = SmallResNet()
    return model, copy.deepcopy(model)


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    yield
    jit.reset()


def _images(n: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _assert_state_equal(a: nn.Module, b: nn.Module, rtol=1e-5, atol=1e-5):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        torch.testing.assert_close(sb[k], sa[k], rtol=rtol, atol=atol, msg=lambda m: f"{k}: {m}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_resnet_eval_matches_eager(backend):
    eager, model = _pair()
    eager.eval(), model.eval()
    fast = jit.compile(model, backend=backend)
    with torch.no_grad():
        for n in (4, 4, 2):
            x = _images(n, seed=n)
            torch.testing.assert_close(fast(x), eager(x), rtol=1e-4, atol=1e-5)
    _assert_state_equal(eager, model)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resnet_train_forward_updates_running_stats(backend):
    eager, model = _pair()
    fast = jit.compile(model, backend=backend)
    with torch.no_grad():
        for step in range(3):
            x = _images(4, seed=10 + step)
            torch.testing.assert_close(fast(x), eager(x), rtol=1e-4, atol=1e-5)
    _assert_state_equal(eager, model)  # running_mean / running_var / num_batches_tracked as eager left them


@pytest.mark.parametrize("backend", BACKENDS)
def test_resnet_training_steps_match_eager(backend):
    eager, model = _pair()
    fast = jit.compile(model, backend=backend)
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.1, momentum=0.9)
    opt_c = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    targets = torch.tensor([1, 3, 5, 7])
    for step in range(3):
        x = _images(4, seed=20 + step)
        for net, opt in ((eager, opt_e), (fast, opt_c)):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x), targets)
            loss.backward()
            opt.step()
        for (name, pe), pc in zip(eager.named_parameters(), model.parameters()):
            torch.testing.assert_close(pc.grad, pe.grad, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")
    _assert_state_equal(eager, model, rtol=1e-4, atol=1e-5)


def test_resnet_eval_is_one_graph():
    model = SmallResNet().eval()
    with torch.no_grad():
        exp = jit.explain(model, _images(2))
    assert exp.graph_break_count == 0, [str(r) for r in exp.break_reasons]
    assert exp.graph_count == 1

"""nn.Module cases: attributes, submodules, parameters, buffers, training flag, containers iterated in forward.

Every module gets its weights from a private seeded generator (`_seeded`), never the global RNG, so two
instances built for the eager and compiled runs are identical.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .case import ModuleCase, randn, tensors, values

T8 = tensors((2, 8))
MODULE_CASES: list[ModuleCase] = []


def _seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module


def _isolated(build):
    """make_module for `build`: nn.Linear & co. draw their default init from the global RNG, so construct
    under fork_rng (restores the global state afterwards) and then overwrite every parameter from a seed."""

    def make():
        with torch.random.fork_rng(devices=[]):
            return _seeded(build())

    return make


def _isolated_unseeded(build):
    def make():
        with torch.random.fork_rng(devices=[]):
            return build()

    return make


def module_case(make_inputs, graphs=1, name=None):
    def register(cls):
        MODULE_CASES.append(ModuleCase(name or cls.__name__, _isolated(cls), make_inputs, graphs))
        return cls

    return register


@module_case(T8)
class LinearOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(x)


@module_case(T8)
class TwoLayerMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 8)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x))) + x


@module_case(T8)
class RawParameters(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.empty(8, 3))
        self.b = nn.Parameter(torch.empty(3))

    def forward(self, x):
        return x @ self.w + self.b


@module_case(T8)
class WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.arange(8.0))
        self.register_buffer("unused", None)

    def forward(self, x):
        return x - self.mean if self.unused is None else x


@module_case(T8)
class BufferMutation(nn.Module):
    # Updates its buffer in forward (like BatchNorm's running stats): state_dicts must agree afterwards.
    def __init__(self):
        super().__init__()
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("ema", torch.zeros(8))

    def forward(self, x):
        self.count += 1
        self.ema.mul_(0.9).add_(x.mean(0), alpha=0.1)
        return x * self.count


@module_case(T8)
class PlainAttributes(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = 0.5
        self.use_bias = True
        self.name = "attrs"
        self.dims = (2, 4)
        self.bias = nn.Parameter(torch.empty(8))

    def forward(self, x):
        y = x * self.scale
        if self.use_bias:
            y = y + self.bias
        return y.view(-1, *self.dims)


@module_case(T8)
class TrainingFlag(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x) * (2.0 if self.training else 1.0)


def _eval_training_flag():
    return TrainingFlag().eval()


MODULE_CASES.append(ModuleCase("TrainingFlagEval", _isolated(_eval_training_flag), T8))


@module_case(T8)
class SequentialStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 8), nn.GELU(), nn.Linear(8, 4), nn.Tanh())

    def forward(self, x):
        return self.net(x)


@module_case(T8)
class SequentialIterate(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))

    def forward(self, x):
        outs = []
        for layer in self.net:
            x = layer(x)
            outs.append(x)
        return x, outs[0]


@module_case(T8)
class ModuleListLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x) + i
        return x


@module_case(T8)
class ModuleListIndexRange(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.n = 2

    def forward(self, x):
        for i in range(self.n):
            x = torch.tanh(self.layers[i](x))
        return self.layers[-1](x), len(self.layers)


@module_case(T8)
class ModuleDictRouting(nn.Module):
    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleDict({"a": nn.Linear(8, 2), "b": nn.Linear(8, 3)})

    def forward(self, x):
        out = {name: head(x) for name, head in self.heads.items()}
        return out, self.heads["a"](x).sum()


@module_case(T8)
class ParameterListDict(nn.Module):
    def __init__(self):
        super().__init__()
        self.plist = nn.ParameterList([nn.Parameter(torch.empty(8)) for _ in range(2)])
        self.pdict = nn.ParameterDict({"s": nn.Parameter(torch.empty(8))})

    def forward(self, x):
        for p in self.plist:
            x = x * p
        return x + self.pdict["s"]


@module_case(T8)
class NestedSubmodules(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = TwoLayerMLP()
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(self.inner(x) + self.inner.fc2.bias)


@module_case(T8)
class SharedWeights(nn.Module):
    # The same submodule reached twice and a tied parameter: one weight, two names.
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8, bias=False)
        self.b = nn.Linear(8, 8, bias=False)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.a(self.a(x)) - self.b(x)


@module_case(T8)
class ParametersIteration(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        reg = sum(p.pow(2).sum() for p in self.parameters())
        names = [n for n, _ in self.named_parameters()]
        return self.fc(x), reg, names


@module_case(tensors((2, 3, 8)))
class BatchNormTrain(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(3)

    def forward(self, x):
        return self.bn(x)


@module_case(values(lambda: torch.arange(6).view(2, 3)))
class EmbeddingBag(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.proj = nn.Linear(4, 2)

    def forward(self, idx):
        return self.proj(self.emb(idx).mean(1))


@module_case(tensors((1, 2, 6, 6)))
class SmallConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(4 * 3 * 3, 5)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        return self.head(x.flatten(1))


@module_case(values(lambda: randn(2, 8), mask=None))
class KwargForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x, mask=None, scale=1.0):
        y = self.fc(x) * scale
        if mask is not None:
            y = y.masked_fill(mask, 0.0)
        return y


@module_case(T8)
class NoGradInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        with torch.no_grad():
            target = self.fc(x).detach()
        return self.fc(x) - target


@module_case(T8)
class HooklessCallMethod(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def helper(self, x):
        return self.fc(x).softmax(-1)

    def forward(self, x):
        return self.helper(x), self.fc.weight.shape, self.fc.in_features


def _gpt():
    from benchmarks.models.gpt import GPT, small_config

    return GPT(small_config(), seed=0).eval()


def _loop_gpt():
    from benchmarks.models.gpt import LoopGPT, small_config

    return LoopGPT(small_config(), seed=0).eval()


def _gpt_block():
    from benchmarks.models.gpt import gpt_block, small_config

    return gpt_block(small_config(), seed=0)


_IDX = values(lambda: torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(3)))
# The GPT models seed themselves; _seeded would overwrite LayerNorm weights with noise, which is also fine,
# but keeping their own init makes these the same models the benchmarks run.
MODULE_CASES.append(ModuleCase("GPT", _isolated_unseeded(_gpt), _IDX))
MODULE_CASES.append(ModuleCase("LoopGPT", _isolated_unseeded(_loop_gpt), _IDX))
MODULE_CASES.append(ModuleCase("GPTBlock", _isolated_unseeded(_gpt_block), tensors((2, 8, 32))))

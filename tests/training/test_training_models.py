"""Whole models trained compiled against eager: an MLP, a small conv net, the benchmarks' GPT (with dropout) and
Hugging Face's GPT-2 from a tiny config: loss and every gradient, and the parameters after three AdamW steps."""
import copy
import os
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import jit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from benchmarks.models.gpt import GPT, GPTConfig  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
BACKENDS = ["inductor", "numpy"]


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 32), nn.ReLU(), nn.LayerNorm(32),
                         nn.Linear(32, 4))


def conv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                         nn.SiLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))


class _Residual(nn.Module):
    """A torchvision BasicBlock's shape: BatchNorm (running statistics written in training), ReLU(inplace=True)
    and `out += identity`."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c, momentum=0.3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


def resnet_bn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                         _Residual(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


def gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1))


def gpt2():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=4, n_inner=64, vocab_size=64, n_positions=32, bos_token_id=63,
        eos_token_id=63))


def classify(model, x, y):
    return F.cross_entropy(model(x), y)


def language_model(model, idx, _):
    logits = model(idx)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1))


def hf_language_model(model, idx, _):
    return model(input_ids=idx, labels=idx).loss


MODELS = {
    "mlp": (mlp, classify, lambda: (torch.randn(8, 16), torch.randint(0, 4, (8,)))),
    "conv_net": (conv_net, classify, lambda: (torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,)))),
    "resnet_bn": (resnet_bn, classify, lambda: (torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,)))),
    "gpt": (gpt, language_model, lambda: (torch.randint(0, 64, (2, 16)), None)),
    "hf_gpt2": (gpt2, hf_language_model, lambda: (torch.randint(0, 64, (2, 12)), None)),
}


def _train(model, step, batches, seed):
    # eps=1e-6: attention's key bias has a gradient that is exactly zero in exact arithmetic (softmax ignores a
    # constant added to every score), so both runs hand Adam rounding noise (~1e-9) there, which eps=1e-8 would
    # blow up into full-size steps of opposite signs; every real gradient is compared above at 1e-5
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, eps=1e-6)
    losses = []
    for i, (x, y) in enumerate(batches):
        torch.manual_seed(seed + i)  # dropout draws the same masks in both runs
        loss = step(model, x, y)
        loss.backward()
        losses.append(loss.detach())
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        opt.step()
        opt.zero_grad()
    return losses, grads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_three_adamw_steps_match_eager(name, backend, fresh_jit):
    make, step, data = MODELS[name]
    model = make()
    model.train()
    twin = copy.deepcopy(model)
    torch.manual_seed(1)
    batches = [data() for _ in range(3)]
    want_losses, want_grads = _train(twin, step, batches, seed=10)
    got_losses, got_grads = _train(model, jit.compile(step, backend=backend), batches, seed=10)
    for a, b in zip(got_losses, want_losses):
        torch.testing.assert_close(a, b, **TOL)
    assert got_grads.keys() == want_grads.keys()
    for n in want_grads:
        torch.testing.assert_close(got_grads[n], want_grads[n], **TOL, msg=lambda m: f"{n}: {m}")
    for (n, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, **TOL, msg=lambda m: f"{n}: {m}")
    for (n, b), c in zip(model.named_buffers(), twin.buffers()):  # BatchNorm's running statistics
        torch.testing.assert_close(b, c, **TOL, msg=lambda m: f"{n}: {m}")
    assert jit.counters["backward_graphs"] >= 1, "no backward was compiled"

"""End to end: symbolic_trace of real modules -> optimize -> same output as eager, core ops only."""

import logging
import operator

import torch
import torch.fx as fx
import torch.nn as nn

from framejit.graph.core_ops import is_core
from framejit.graph.passes import optimize


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.drop, self.fc2 = nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 5)
        self.norm = nn.LayerNorm(5)

    def forward(self, x):
        return self.norm(self.fc2(self.drop(self.act(self.fc1(x))))).softmax(-1)


class Block(nn.Module):
    """A pre-norm transformer block with attention written out by hand (matmul, transpose, view)."""

    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        k = k.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        v = v.view(B, T, self.heads, C // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / (C // self.heads) ** 0.5)
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.drop(self.proj(y))
        return x + self.fc2(self.act(self.fc(self.ln2(x))))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 4, 3, padding=1), nn.SiLU()

    def forward(self, x):
        return self.act(self.conv(x)).flatten(1).mean(-1)


class Embedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.soft = nn.Embedding(10, 8), nn.Softmax(dim=-1)

    def forward(self, idx):
        return self.soft(self.emb(idx))


def _non_core(gm):
    return [n.target for n in gm.graph.nodes
            if n.op not in ("placeholder", "output", "get_attr") and not is_core(n.target)]


def _check(model, *inputs, dtype=torch.float32):
    model = model.to(dtype).eval()
    inputs = [i.to(dtype) if i.is_floating_point() else i for i in inputs]
    with torch.no_grad():
        expected = model(*inputs)
        gm = optimize(fx.symbolic_trace(model), inputs)
        actual = gm(*inputs)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
    assert not _non_core(gm), _non_core(gm)
    assert all("val" in n.meta for n in gm.graph.nodes)
    return gm


def test_mlp():
    torch.manual_seed(0)
    _check(MLP(), torch.randn(4, 12))
    _check(MLP(), torch.randn(4, 12), dtype=torch.float64)


def test_transformer_block():
    torch.manual_seed(0)
    gm = _check(Block(), torch.randn(2, 5, 16))
    _check(Block(), torch.randn(2, 5, 16), dtype=torch.float64)
    # parameters stay parameters: no folded copies of weights
    assert not any(name.startswith("_folded") for name, _ in gm.named_buffers())


def test_embedding_and_softmax_modules():
    torch.manual_seed(0)
    _check(Embedder(), torch.tensor([[1, 2, 3], [4, 5, 9]]))


def test_conv_module():
    torch.manual_seed(0)
    _check(ConvNet(), torch.randn(2, 3, 5, 5))


def test_parameters_follow_state_dict():
    torch.manual_seed(0)
    model, x = MLP().eval(), torch.randn(4, 12)
    gm = optimize(fx.symbolic_trace(model), [x])
    with torch.no_grad():
        model.fc1.weight.mul_(2)  # the traced module shares parameters with the model
        torch.testing.assert_close(gm(x), model(x), rtol=1e-5, atol=1e-5)


def test_training_dropout_is_kept_for_eager():
    model, x = MLP().train(), torch.randn(4, 12)
    gm = optimize(fx.symbolic_trace(model), [x])
    assert _non_core(gm) == [torch.nn.functional.dropout]


def test_logging_shows_graph_before_and_after(caplog):
    with caplog.at_level(logging.INFO, logger="jit.graph"):
        optimize(fx.symbolic_trace(lambda x: torch.relu(x) * 1), [torch.randn(3)])
    text = caplog.text
    assert "before" in text and "after" in text and "aten.where.self" in text


def test_fixed_point_cleans_up():
    fn = lambda x: (x.transpose(0, 1).transpose(0, 1) - 0).view(6).view(2, 3) * 1  # x - 0 is x, x + 0 is not
    x = torch.randn(2, 3)
    gm = optimize(fx.symbolic_trace(fn), [x])
    torch.testing.assert_close(gm(x), fn(x))
    assert [n.op for n in gm.graph.nodes] == ["placeholder", "output"]


def test_bytecode_tracer_style_graph():
    """A bytecode tracer records methods as call_function(torch.Tensor.view, ...) and shapes via getattr."""
    g = fx.Graph()
    x = g.placeholder("x")
    rows = g.call_function(operator.getitem, (g.call_function(getattr, (x, "shape")), 0))
    v = g.call_function(torch.Tensor.view, (x, rows, -1))
    y = g.call_function(torch.Tensor.transpose, (v, 0, 1))
    g.output(g.call_function(operator.mul, (y, g.call_function(torch.Tensor.sum, (y,)))))
    gm = fx.GraphModule(nn.Module(), g)
    x = torch.randn(2, 3, 4)
    expected = gm(x)
    optimize(gm, [x])
    torch.testing.assert_close(gm(x), expected)
    assert not _non_core(gm)


def noise():
    import random
    return random.random()


def test_python_random_is_not_baked_in():
    """Only shape arithmetic is specialized to constants: a Python call returning a number stays a call."""
    g = fx.Graph()
    x = g.placeholder("x")
    g.output(g.call_function(torch.ops.aten.mul.Tensor, (x, g.call_function(noise, ()))))
    gm = optimize(fx.GraphModule(nn.Module(), g), [torch.randn(3)])
    assert any(n.target is noise for n in gm.graph.nodes)


def test_device_queries_are_not_baked_in():
    """Meta tensors answer "meta" / is_cuda=False whatever the real input is: those queries stay in the graph."""
    x = torch.randn(3)
    g = fx.Graph()
    p = g.placeholder("x")
    dev = g.call_function(getattr, (p, "device"))
    cuda = g.call_function(getattr, (p, "is_cuda"))
    ones = g.call_function(torch.ones, (3,), {"device": dev})
    g.output((g.call_function(operator.add, (p, ones)), cuda))
    gm = optimize(fx.GraphModule(nn.Module(), g), [x])
    out, is_cuda = gm(x)
    assert out.device == x.device and is_cuda is False
    torch.testing.assert_close(out, x + 1)


def test_no_alias_rewrites_when_the_graph_mutates():
    def fn(x):
        y = x * 1
        y.add_(1)  # must not reach x
        z = x.contiguous().float()
        return x, y, z
    x = torch.randn(3)
    gm = optimize(fx.symbolic_trace(fn), [x])
    a, b, _ = gm(x.clone())
    torch.testing.assert_close(a, x)
    torch.testing.assert_close(b, x + 1)

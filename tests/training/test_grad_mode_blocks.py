"""`with torch.no_grad():` inside a compiled training graph (graph/grad_mode.py): the block's reads are detached
and the switches dropped, so the graph's forward and backward compile, with eager's gradients: none through what
the block computed. transformers' Llama-family rotary embeddings are such a block."""
import copy

import pytest
import torch
import torch.fx as fx

import jit
from framejit.graph.grad_mode import detach_no_grad_blocks

TOL = dict(rtol=1e-5, atol=1e-6)


def _grads(fn, *args):
    leaves = [a.detach().clone().requires_grad_(a.requires_grad) for a in args]
    loss = fn(*leaves)
    loss.backward()
    return loss.detach(), [a.grad for a in leaves if a.requires_grad], leaves


def scale_without_grad(x, w):
    h = x @ w
    with torch.no_grad():
        s = h.square().mean().rsqrt()  # a statistic used as a constant, as a normalizer's running scale
        t = torch.arange(h.shape[-1], dtype=h.dtype) * s
    return ((h * s + t).tanh() * h).sum()


def ema_update(x, w, avg):
    out = (x @ w).relu().sum()
    with torch.no_grad():
        avg.mul_(0.9).add_(w, alpha=0.1)  # a write inside the block: the graph keeps it (runs as captured)
    return out


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_no_grad_block_gets_no_gradient(backend, fresh_jit):
    torch.manual_seed(0)
    x, w = torch.randn(5, 4), torch.randn(4, 3, requires_grad=True)
    want_loss, want, _ = _grads(scale_without_grad, x, w)
    got_loss, got, _ = _grads(jit.compile(scale_without_grad, backend=backend), x, w)
    torch.testing.assert_close(got_loss, want_loss, **TOL)
    torch.testing.assert_close(got[0], want[0], **TOL)
    assert jit.counters["backward_graphs"] >= 1
    assert torch.is_grad_enabled()


def test_write_inside_the_block_keeps_eager_behaviour(fresh_jit):
    torch.manual_seed(0)
    x, w, avg = torch.randn(5, 4), torch.randn(4, 3, requires_grad=True), torch.zeros(4, 3)
    want_loss, want, (_, _, want_avg) = _grads(ema_update, x, w, avg)
    got_loss, got, (_, _, got_avg) = _grads(jit.compile(ema_update), x, w, avg)
    torch.testing.assert_close(got_loss, want_loss, **TOL)
    torch.testing.assert_close(got[0], want[0], **TOL)
    torch.testing.assert_close(got_avg, want_avg, **TOL)


def _switching_graph(final: bool) -> fx.GraphModule:
    g = fx.Graph()
    x = g.placeholder("x")
    x.meta["val"] = torch.empty(3, device="meta")
    g.call_function(torch._C._set_grad_enabled, (False,))
    y = g.call_method("exp", (x,))
    y.meta["val"] = torch.empty(3, device="meta")
    if final:
        g.call_function(torch._C._set_grad_enabled, (True,))
    z = g.call_method("mul", (x, y))
    z.meta["val"] = torch.empty(3, device="meta")
    g.output((z,))
    return fx.GraphModule(torch.nn.Module(), g)


def test_block_reads_are_detached_and_switches_dropped():
    gm = _switching_graph(final=True)
    assert detach_no_grad_blocks(gm, True)
    exp = next(n for n in gm.graph.nodes if n.target == "exp")
    assert exp.args[0].target == "detach"
    assert not any(n.target is torch._C._set_grad_enabled for n in gm.graph.nodes)
    x = torch.randn(3, requires_grad=True)
    gm(x)[0].sum().backward()
    torch.testing.assert_close(x.grad, x.detach().exp())  # d/dx of x * c, c = exp(x) held constant


def test_a_graph_ending_in_another_mode_is_left_alone():
    gm = _switching_graph(final=False)
    before = gm.code
    assert not detach_no_grad_blocks(gm, True)
    assert gm.code == before


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_llama_trains_compiled(backend, fresh_jit):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=64, max_position_embeddings=32)).train()
    twin = copy.deepcopy(model)
    idx = torch.randint(0, 64, (2, 10))

    def step(m, idx):
        return m(input_ids=idx, labels=idx).loss

    want = step(twin, idx)
    want.backward()
    got = jit.compile(step, backend=backend)(model, idx)
    got.backward()
    torch.testing.assert_close(got, want, **TOL)
    for (n, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=lambda m, n=n: f"{n}: {m}")
    assert jit.counters["backward_graphs"] >= 1 and jit.counters["graph_breaks"] == 0


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_frozen_model_with_grad_on_compiles_its_no_grad_block(backend, fresh_jit, caplog):
    """Inference without torch.no_grad() around it, parameters frozen: nothing requires grad, the block's switches
    go and the graph is generated code, not the captured graph."""
    torch.manual_seed(0)
    x, w = torch.randn(5, 4), torch.randn(4, 3)
    fn = lambda x, w: scale_without_grad(x, w) * 2  # noqa: E731
    with caplog.at_level("INFO", logger="jit"):
        got = jit.compile(fn, backend=backend)(x, w)
    torch.testing.assert_close(got, fn(x, w), **TOL)
    assert not [r for r in caplog.records if "grad mode changes" in r.getMessage()]


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_index_with_a_list_of_ints_trains_compiled(backend, fresh_jit):
    """transformers' Falcon: `qkv[..., [-2], :]` (a list index becomes a tensor inside torch, which the joint
    trace on meta tensors could not read: the region ran in torch's autograd)."""
    def f(x, w):
        h = (x @ w).view(2, 3, 8, 2)
        return (h[..., [-2], :] * h[..., [0, 1, 0], :].sum(-2, keepdim=True)).square().mean()

    torch.manual_seed(0)
    x, w = torch.randn(6, 5), torch.randn(5, 16, requires_grad=True)
    want_loss, want, _ = _grads(f, x, w)
    got_loss, got, _ = _grads(jit.compile(f, backend=backend), x, w)
    torch.testing.assert_close(got_loss, want_loss, **TOL)
    torch.testing.assert_close(got[0], want[0], **TOL)
    assert jit.counters["backward_graphs"] >= 1

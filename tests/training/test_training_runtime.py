"""The autograd side of compiled regions: mixed requires_grad, outputs that need no grad (integer ones too),
unused outputs (their gradients materialized as zeros), retain_graph, graph breaks, guards on requires_grad and
grad mode, autocast, dynamic sizes, and the create_graph fallback."""
import logging

import pytest
import torch
import torch.nn.functional as F

import jit
from grad_check import TOL, assert_same, check, leaves, run_and_grads

BACKENDS = ["inductor", "numpy"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_requires_grad(backend, fresh_jit):
    def f(x, w, b):
        return torch.tanh(x @ w + b)
    check(f, [torch.randn(3, 4), torch.randn(4, 5).requires_grad_(), torch.randn(5).requires_grad_()], backend)
    check(f, [torch.randn(3, 4).requires_grad_(), torch.randn(4, 5), torch.randn(5).requires_grad_()], backend)
    assert jit.counters["backward_graphs"] == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_not_needing_grad(backend, fresh_jit):
    def f(x, c):
        y = x.sigmoid() * 3
        return y, y.argmax(dim=1), c * 2, (y > 1).sum()  # float needing grad, integers, a float needing none
    x, c = torch.randn(4, 6).requires_grad_(), torch.randn(4, 6)
    eager_in, jit_in = leaves([x, c]), leaves([x, c])
    want = f(*eager_in)
    got = jit.compile(f, backend=backend)(*jit_in)
    assert_same(got, want)
    assert [o.requires_grad for o in got] == [True, False, False, False]
    got[0].sum().backward()
    want[0].sum().backward()
    torch.testing.assert_close(jit_in[0].grad, eager_in[0].grad, **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unused_output_gets_zero_grads(backend, fresh_jit):
    def f(x):
        return x.exp(), x.sin() * 2
    x = torch.randn(5).requires_grad_()
    a, b = leaves([x]), leaves([x])
    f(*a)[1].sum().backward()  # the first output never reaches the loss: its grad_output is None
    jit.compile(f, backend=backend)(*b)[1].sum().backward()
    torch.testing.assert_close(b[0].grad, a[0].grad, **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_retain_graph(backend, fresh_jit):
    def f(x, w):
        return (torch.relu(x @ w) ** 2).mean()
    x, w = torch.randn(6, 4), torch.randn(4, 3).requires_grad_()
    eager_in, jit_in = leaves([x, w]), leaves([x, w])
    want = f(*eager_in)
    got = jit.compile(f, backend=backend)(*jit_in)
    for _ in range(2):
        want.backward(retain_graph=True)
        got.backward(retain_graph=True)
    torch.testing.assert_close(jit_in[1].grad, eager_in[1].grad, **TOL)
    assert jit.counters["backward_graphs"] == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_graph_break_segments_both_need_grad(backend, fresh_jit):
    def f(x, w1, w2):
        h = torch.tanh(x @ w1)
        print("", end="")  # a graph break: two regions, two nodes in autograd's graph
        return (torch.sigmoid(h @ w2) * h.sum()).sum()
    args = [torch.randn(3, 4), torch.randn(4, 5).requires_grad_(), torch.randn(5, 2).requires_grad_()]
    check(f, args, backend)
    assert jit.counters["graph_breaks"] == 1
    assert jit.counters["backward_graphs"] == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_mode_and_requires_grad_guards(backend, fresh_jit):
    lin = torch.nn.Linear(4, 3)
    f = jit.compile(lambda x: lin(x).sum(), backend=backend)
    x = torch.randn(2, 4)
    with torch.no_grad():
        assert not f(x).requires_grad
    assert f(x).requires_grad  # grad mode is guarded: a new entry, with a backward
    lin.weight.requires_grad_(False)  # freezing a parameter recompiles (its requires_grad is guarded)
    f(x).backward()
    assert lin.weight.grad is None and lin.bias.grad is not None
    assert jit.counters["recompiles"] >= 2


def test_create_graph_falls_back_to_torch(fresh_jit, caplog):
    def f(x, w):
        return (torch.tanh(x * w) ** 2).sum()
    x, w = torch.randn(5), torch.randn(5).requires_grad_()
    eager_in, jit_in = leaves([x, w]), leaves([x, w])
    jit.set_logs("inductor")
    with caplog.at_level(logging.INFO, logger="jit"):
        got = torch.autograd.grad(jit.compile(f)(*jit_in), jit_in[1], create_graph=True)[0]
    want = torch.autograd.grad(f(*eager_in), eager_in[1], create_graph=True)[0]
    torch.testing.assert_close(got, want, **TOL)
    got.sum().backward()  # double backward: gradients of the gradients
    want.sum().backward()
    torch.testing.assert_close(jit_in[1].grad, eager_in[1].grad, **TOL)
    assert "create_graph=True" in caplog.text


def test_create_graph_with_dropout_draws_eager_numbers(fresh_jit):
    def f(x):
        return F.dropout(x.exp(), 0.5).sum()
    x = torch.randn(32)
    eager_in, jit_in = leaves([x.requires_grad_()]), leaves([x])
    torch.manual_seed(3)
    want = torch.autograd.grad(f(*eager_in), eager_in, create_graph=True)[0]
    torch.manual_seed(3)
    got = torch.autograd.grad(jit.compile(f)(*jit_in), jit_in, create_graph=True)[0]
    torch.testing.assert_close(got, want, **TOL)


def test_unsupported_region_runs_in_torch_with_reason(fresh_jit, caplog):
    def f(x, w):
        y = x @ w
        return y, w[0]  # an output that is a view of an input: autograd's view tracking stays torch's
    jit.set_logs("inductor")
    with caplog.at_level(logging.INFO, logger="jit"):
        check(f, [torch.randn(2, 3), torch.randn(3, 3).requires_grad_()])
    assert "view of an input" in caplog.text
    assert jit.counters["backward_graphs"] == 0


def test_graph_log_shows_both_graphs_and_saved(fresh_jit, caplog):
    jit.set_logs("graph")
    with caplog.at_level(logging.DEBUG, logger="jit"):
        check(lambda x, w: torch.tanh(x @ w).sum(), [torch.randn(3, 4), torch.randn(4, 2).requires_grad_()])
    assert "training forward graph" in caplog.text and "training backward graph" in caplog.text
    assert "partition saved" in caplog.text and " B" in caplog.text


def test_autocast_bf16_cpu(fresh_jit):
    def f(x, w, b):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            h = F.linear(x, w, b)
            return F.gelu(h).float().pow(2).mean()
    args = [torch.randn(8, 16), torch.randn(32, 16).requires_grad_(), torch.randn(32).requires_grad_()]
    check(f, args, tol=dict(rtol=2e-2, atol=2e-3))
    assert jit.counters["backward_graphs"] == 1


def test_autocast_entered_outside(fresh_jit):
    def f(x, w):
        return (x @ w).float().sum()
    args = [torch.randn(4, 8), torch.randn(8, 8).requires_grad_()]
    eager_in, jit_in = leaves(args), leaves(args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, want_grads = run_and_grads(f, eager_in)
        got, got_grads = run_and_grads(jit.compile(f), jit_in)
    assert_same(got, want, dict(rtol=2e-2, atol=2e-2))
    assert_same(got_grads, want_grads, dict(rtol=2e-2, atol=2e-2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_sizes_specialized_per_size(backend, fresh_jit):
    def f(x, w):
        return torch.sigmoid(x @ w).sum()
    w = torch.randn(4, 3).requires_grad_()
    compiled = jit.compile(f, backend=backend, dynamic=True)
    for n in (3, 5, 7):
        x = torch.randn(n, 4)
        a, b = leaves([x, w]), leaves([x, w])
        f(*a).backward()
        compiled(*b).backward()
        torch.testing.assert_close(b[1].grad, a[1].grad, **TOL)
    assert jit.counters["backward_graphs"] == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_reached_only_through_an_unused_output_keeps_none_grad(backend, fresh_jit):
    def f(x, w1, w2):
        return x @ w1, x @ w2  # only the first reaches the loss: w2.grad stays None, as in eager
    args = leaves([torch.randn(3, 4), torch.randn(4, 2).requires_grad_(), torch.randn(4, 2).requires_grad_()])
    jit.compile(f, backend=backend)(*args)[0].sum().backward()
    assert args[1].grad is not None and args[2].grad is None



def test_graphs_with_attention_are_known_for_the_fake_tensor_trace():
    # on CUDA the joint trace of a graph calling SDPA uses fake tensors: on meta tensors torch picks SDPA's math
    # form, and the H100 trained HF GPT-2 at 0.96x eager with 7 GB more memory that way (benchmarks/NOTES.md)
    from framejit.graph.autodiff.joint import _attends
    q = torch.randn(1, 2, 4, 8)
    attends = torch.fx.symbolic_trace(lambda q: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    plain = torch.fx.symbolic_trace(lambda q: torch.softmax(q @ q.transpose(-1, -2), -1) @ q)
    assert _attends(attends) and not _attends(plain)
    assert torch.equal(attends(q), torch.nn.functional.scaled_dot_product_attention(q, q, q))

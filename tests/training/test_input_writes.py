"""Training graphs that write to their inputs (graph/input_writes.py): BatchNorm's running statistics and
`num_batches_tracked`, buffers updated with `add_` / `+=`. The graph returns the written values and they are
copied back after it, so the forward and backward compile; where the write cannot move (a view of the written
input, the input returned, an input needing grad), the graph runs as captured. Either way: eager's results,
gradients and buffers."""
import copy

import pytest
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

import jit
from framejit.graph.input_writes import functionalize_input_writes

TOL = dict(rtol=1e-5, atol=1e-6)


def _run(fn, make_args, calls=3, backend="inductor"):
    """fn eager and compiled on equal copies of the arguments `calls` times: each result, each leaf's gradient
    and every argument afterwards (the written buffers) must agree."""
    compiled = jit.compile(fn, backend=backend)
    eager_args = make_args()
    jit_args = [copy.deepcopy(a) if isinstance(a, nn.Module) else a.detach().clone().requires_grad_(a.requires_grad)
                for a in eager_args]
    for _ in range(calls):
        for f, args in ((fn, eager_args), (compiled, jit_args)):
            for a in args:
                if isinstance(a, torch.Tensor) and a.requires_grad:
                    a.grad = None
            out = f(*args)
            out.backward()
            args.append(out.detach())
        got = jit_args.pop()
        want = eager_args.pop()
        torch.testing.assert_close(got, want, **TOL)
        for a, b in zip(jit_args, eager_args):
            if isinstance(a, nn.Module):
                for (n, p), q in zip(a.state_dict().items(), b.state_dict().values()):
                    torch.testing.assert_close(p, q, **TOL, msg=lambda m: f"{n}: {m}")
                continue
            torch.testing.assert_close(a, b, **TOL)
            if a.requires_grad:
                torch.testing.assert_close(a.grad, b.grad, **TOL)


def _leaf(*shape):
    return torch.randn(*shape).requires_grad_()


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_buffer_updated_in_place_then_read(backend, fresh_jit):
    def f(x, w, buf, count):
        count.add_(1)
        buf.mul_(0.9)
        buf += 0.1 * x.detach().mean(0)
        return ((x @ w) * buf).sum() + count.float()

    torch.manual_seed(0)
    _run(f, lambda: [torch.randn(4, 3), _leaf(3, 3), torch.zeros(3), torch.zeros((), dtype=torch.long)],
         backend=backend)
    assert jit.counters["backward_graphs"] >= 1


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_statistics(momentum, fresh_jit):
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(5, momentum=momentum)
    x = torch.randn(8, 5)

    def f(bn, x):
        return bn(x * 2).square().mean()

    _run(f, lambda: [copy.deepcopy(bn), x.clone().requires_grad_()])
    assert jit.counters["backward_graphs"] >= 1


def test_batch_norm_of_half_input_keeps_float_statistics(fresh_jit):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    x = torch.randn(6, 4, 3, 3)

    def f(bn, x):
        return bn(x.to(torch.bfloat16)).float().square().mean()

    compiled = jit.compile(f)
    a, b = copy.deepcopy(bn), copy.deepcopy(bn)
    f(a, x.requires_grad_()).backward()
    compiled(b, x).backward()
    for n, want in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[n], want, rtol=1e-5, atol=1e-6, msg=lambda m: f"{n}: {m}")
        assert b.state_dict()[n].dtype == want.dtype


def _graph(fn):
    return fx.symbolic_trace(fn)


def test_written_values_become_outputs():
    def f(x, buf):
        buf.add_(x.sum())
        return (x * buf,)

    x, buf = torch.randn(3), torch.zeros(3)
    writes = functionalize_input_writes(_graph(f), [x, buf])
    assert writes.written == (1,) and writes.num_outputs == 1
    assert not any(n.op == "call_method" and n.target.endswith("_") for n in writes.gm.graph.nodes)
    out, new = writes.gm(x.detach(), buf)
    torch.testing.assert_close(new, buf + x.sum())
    torch.testing.assert_close(out, x * new)
    assert torch.equal(buf, torch.zeros(3)), "the functional graph itself writes nothing"


def test_writes_that_cannot_move_are_left():
    def returns_the_input(x, buf):
        buf.add_(1)
        return (x * 2, buf)

    def view_read_after_the_write(x, buf):
        v = buf[:2]
        buf.add_(1)
        return (x[:2] * v,)

    def writes_a_view(x, buf):
        buf[:2].add_(1)
        return (x * buf,)

    x, buf = torch.randn(3, requires_grad=True), torch.zeros(3)
    for fn in (returns_the_input, view_read_after_the_write, writes_a_view):
        assert functionalize_input_writes(_graph(fn), [x, buf]) is None, fn.__name__
    graph = _graph(lambda x, buf: (x * buf.add_(1),))
    assert functionalize_input_writes(graph, [x, torch.zeros(3, requires_grad=True)]) is None
    same = torch.zeros(3)
    assert functionalize_input_writes(_graph(lambda a, b: (a.add_(1) * b,)), [same, same[:]]) is None


@pytest.mark.parametrize("case", ["returned", "view_after_write", "two_writes"])
def test_fallbacks_and_chains_give_eager_results(case, fresh_jit):
    def returned(x, w, buf):
        buf.add_(1)
        return (x @ w).sum() * buf.sum(), buf

    def view_after_write(x, w, buf):
        v = buf[:2]
        buf.mul_(2)
        return (x @ w)[:2].sum() * v.sum()

    def two_writes(x, w, buf):
        buf.add_(1)
        y = (x @ w) + buf * 2
        buf.mul_(3)
        return (y * buf).sum()

    fn = {"returned": returned, "view_after_write": view_after_write, "two_writes": two_writes}[case]
    loss = (lambda *a: fn(*a)[0]) if case == "returned" else fn
    torch.manual_seed(0)
    _run(loss, lambda: [torch.randn(3, 3), _leaf(3, 3), torch.ones(3)])


def test_batch_norm_reading_statistics_after_update(fresh_jit):
    torch.manual_seed(0)

    def f(x, w, mean, var):
        y = F.batch_norm(x @ w, mean, var, training=True, momentum=0.2)
        return (y * mean).sum() + var.sum()

    _run(f, lambda: [torch.randn(6, 4), _leaf(4, 4), torch.zeros(4), torch.ones(4)])
    assert jit.counters["backward_graphs"] >= 1


def test_a_saved_value_written_later_raises_as_in_eager(fresh_jit):
    """Eager's autograd saved `buf` for the product's gradient, then the write changed it: backward raises. The
    backward of the compiled graph may not read the input either (its value is gone): it runs in torch, and
    raises the same."""
    def f(x, w, buf):
        y = (x @ w) * buf
        buf.mul_(3)
        return y.sum()

    for fn in (f, jit.compile(f)):
        loss = fn(torch.randn(2, 3), _leaf(3, 3), torch.ones(3))
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            loss.backward()


def test_a_write_of_a_tracked_value_stays_in_autograd(fresh_jit):
    """`buf.add_(y)` with y requiring grad makes eager's buf part of autograd's graph: it cannot be a copy after
    the graph (the graph stays torch's, and buf gets its grad_fn as in eager)."""
    def f(x, w, buf):
        buf.mul_(0.9).add_((x @ w).mean(0))
        return (buf * 2).sum()

    x, w = torch.randn(4, 3), _leaf(3, 3)
    assert functionalize_input_writes(_graph(f), [x, w, torch.zeros(3)]) is None
    grads = []
    for fn in (f, jit.compile(f)):
        buf = torch.zeros(3)
        fn(x, w, buf).backward()
        assert buf.requires_grad and buf.grad_fn is not None
        grads.append(w.grad)
        w.grad = None
    torch.testing.assert_close(grads[1], grads[0])

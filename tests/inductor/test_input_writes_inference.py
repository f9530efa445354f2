"""Inference graphs that write to their inputs (graph/input_writes.py): the backends compile the graph made
functional and copy the written values back after each call, with eager's results and buffers afterwards."""
import copy
import warnings

import pytest
import torch
from torch import nn

import jit


def _buffers_update(x, buf, count):
    count += 1
    buf.mul_(0.5).add_(x.mean(0))
    return x * buf + 1


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_buffer_updates_in_place(backend, fresh_jit):
    compiled = jit.compile(_buffers_update, backend=backend)
    torch.manual_seed(0)
    want = [torch.randn(4, 3), torch.ones(3), torch.zeros((), dtype=torch.long)]
    got = [t.clone() for t in want]
    for _ in range(3):
        torch.testing.assert_close(compiled(*got), _buffers_update(*want))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_batch_norm_in_training_mode_without_grad(backend, fresh_jit):
    """Recomputing BatchNorm statistics over a calibration set: train mode under no_grad."""
    torch.manual_seed(0)
    bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.2)).train()
    twin = copy.deepcopy(bn)

    def f(m, x):
        return m(x).relu()

    compiled = jit.compile(f, backend=backend)
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(2, 3, 6, 6)
            torch.testing.assert_close(compiled(twin, x), f(bn, x), rtol=1e-5, atol=1e-5)
    for (n, a), b in zip(bn.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=lambda m, n=n: f"{n}: {m}")


def test_a_returned_written_input_is_the_input_itself(fresh_jit):
    def f(x, buf):
        buf.add_(x)
        return buf

    buf = torch.zeros(3)
    out = jit.compile(f)(torch.ones(3), buf)
    assert out is buf and torch.equal(buf, torch.ones(3))


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_an_expanded_written_input_keeps_eager_writes(backend, fresh_jit):
    """Program generator seed 400653: `masked_fill_` on an expanded input writes each memory location from
    several elements in eager (deprecated, allowed); copied back after the graph, `copy_` would raise. Such an
    input is not made functional: the graph runs as captured."""
    def f(x):
        x.masked_fill_(x < 0, 0)
        return x.half() * 2

    compiled = jit.compile(f, backend=backend)
    for make in (lambda: torch.randn(2, 2), lambda: torch.randn(2, 2), lambda: torch.randn(1, 2).expand(2, 2)):
        torch.manual_seed(0)
        want_x = make()
        torch.manual_seed(0)
        got_x = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # eager's deprecation warning for the expanded write
            want = f(want_x)
            got = compiled(got_x)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(got_x, want_x)


def _raising_after_write(x, n):
    n.add_(1)
    r = torch.rand(3)
    return (x * 2).sum() + (x.prod().long() % n) + r  # n holds 0 after the add: the modulo raises


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_an_error_after_an_input_write_leaves_it_written(backend, requires_grad, fresh_jit):
    # fuzz seed 464747: the write was made functional and copied back after the call, which raised first; the
    # graph as captured reruns in torch from the same generator state, so the draw before the error happens once
    x = torch.randn(3, requires_grad=requires_grad)
    outcomes = []
    for fn in (_raising_after_write, jit.compile(_raising_after_write, backend=backend)):
        n = torch.tensor([4, -1, 2])
        torch.manual_seed(0)
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(x, n)
        outcomes.append((n, torch.rand(2)))
    (want_n, want_next), (got_n, got_next) = outcomes
    assert torch.equal(got_n, want_n)
    assert torch.equal(got_next, want_next)

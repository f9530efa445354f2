"""nn.LSTM / nn.GRU: their forward calls the weakref.ref objects it keeps for its flat weights (calling a weakref
from outside gives its referent, read through the call: guards.sources.CallResultSource)."""
import pytest
import torch

import jit

BACKENDS = ["eager", "numpy", "inductor"]


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    yield
    jit.reset()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_layers_in_one_graph_with_eager_gradients(backend, kind):
    torch.manual_seed(0)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    rnn = cls(6, 8, num_layers=2, batch_first=True, bidirectional=True)

    def f(x):
        out, _ = rnn(x)
        return out.tanh().mean()

    x = torch.randn(3, 5, 6)
    fast = jit.compile(f, backend=backend)
    breaks = jit.counters.graph_breaks
    got = fast(x)
    got.backward()
    grads = [p.grad.clone() for p in rnn.parameters()]
    rnn.zero_grad()
    want = f(x)
    want.backward()
    torch.testing.assert_close(got, want)
    for g, p in zip(grads, rnn.parameters()):
        torch.testing.assert_close(g, p.grad)
    assert jit.counters.graph_breaks == breaks


def test_a_replaced_weight_recompiles():
    torch.manual_seed(0)
    rnn = torch.nn.GRU(4, 4, batch_first=True)
    fast = jit.compile(lambda x: rnn(x)[0], backend="eager")
    x = torch.randn(2, 3, 4)
    with torch.no_grad():
        fast(x)
        rnn.weight_hh_l0 = torch.nn.Parameter(rnn.weight_hh_l0 * 2)  # its weakref now points elsewhere
        torch.testing.assert_close(fast(x), rnn(x)[0])

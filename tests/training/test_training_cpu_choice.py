"""On the CPU the default backend keeps, per training graph, the faster of the compiled forward + backward and
torch's autograd over the captured graph, measured on copies of the inputs (numpy/cpu_choice.choose_training):
either way gradients are eager's, the caller's tensors and random stream are untouched by the measuring."""
import pytest
import torch
import torch.nn.functional as F

import jit
from framejit.inductor import cache
from framejit.inductor.numpy import cpu_choice

from grad_check import TOL


@pytest.fixture(autouse=True)
def _measured(monkeypatch, tmp_path):
    """Measured, in a cache directory of its own: a choice an earlier test stored would be read, not measured."""
    monkeypatch.setenv("FRAMEJIT_CPU_BACKEND", "measure")
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path))
    cache.clear_memory()
    yield
    cache.clear_memory()


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Dropout(0.25),
                               torch.nn.Linear(16, 4)).train()


def _loss(model, x, y):
    return F.cross_entropy(model(x), y)


@pytest.mark.parametrize("winner", ["compiled", "torch", "measured"])
def test_either_choice_gives_eager_gradients_and_random_stream(winner, fresh_jit, monkeypatch):
    if winner != "measured":
        real = cpu_choice.choose_training

        def forced(compile_, captured, inputs, key=None):
            compiled = compile_()
            real(lambda: compiled, captured, inputs)  # measured as usual: must leave no trace either way
            return compiled if winner == "compiled" else captured()
        monkeypatch.setattr(cpu_choice, "choose_training", forced)
    x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
    eager_model, jit_model = _mlp(), _mlp()
    fast = jit.compile(_loss)
    for step in range(2):
        torch.manual_seed(step)
        want = _loss(eager_model, x, y)
        want.backward()
        after_eager = torch.rand(3)
        torch.manual_seed(step)
        got = fast(jit_model, x, y)
        assert all(p.grad is None or step > 0 for p in jit_model.parameters())  # measuring wrote no .grad
        got.backward()
        after_jit = torch.rand(3)
        torch.testing.assert_close(got, want, **TOL)
        assert torch.equal(after_jit, after_eager)  # the same draws: measuring forked the generator
        for p, q in zip(jit_model.parameters(), eager_model.parameters()):
            torch.testing.assert_close(p.grad, q.grad, **TOL)
    assert jit.counters["graphs"] == 1


@pytest.mark.parametrize("slow", ["compiled", "torch"])
def test_the_slower_side_is_not_kept(slow, monkeypatch, fresh_jit):
    import time

    def slowed(fn):
        def run(*args):
            time.sleep(0.01)
            return fn(*args)
        return run

    real, kept = cpu_choice.choose_training, []

    def with_one_side_slowed(compile_, captured, inputs, key=None):
        compiled = compile_()
        if slow == "compiled":
            result = real(lambda: slowed(compiled), captured, inputs)
            kept.append("torch" if isinstance(result, torch.fx.GraphModule) else "compiled")
        else:
            result = real(lambda: compiled, lambda: slowed(captured()), inputs)
            kept.append("compiled" if result is compiled else "torch")
        return result
    monkeypatch.setattr(cpu_choice, "choose_training", with_one_side_slowed)

    def f(x, w):
        return (x @ w).tanh().sum()

    x, w = torch.randn(16, 16), torch.randn(16, 16, requires_grad=True)
    out = jit.compile(f)(x, w)
    out.backward()
    assert kept == ["torch" if slow == "compiled" else "compiled"]
    w2 = w.detach().clone().requires_grad_()
    f(x, w2).backward()
    torch.testing.assert_close(w.grad, w2.grad, **TOL)

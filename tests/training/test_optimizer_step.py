"""Optimizer steps under the compiler: `jit.compile(opt.step)` and a training step whose `opt.step()` is traced.

torch.optim's step runs under `record_function`, switches grad off around its body, reads `p.grad`, keeps its state
in a defaultdict keyed by parameters (filled on the first step), and its multi-tensor form calls `torch._foreach_*`
ops. Each is traced (no graph break); the state created on the first step is stored into the real dict; the step
compiles twice (the first step creates the state, later steps read it) and never again. Parameters and state after
several steps are eager's: SGD's bit for bit; the Adam family's within a few ulps (the step counter is read in
double precision as eager's `.item()` does; torch's own float32 sqrt on the CPU is not correctly rounded, NumPy's
is)."""
import copy

import pytest
import torch
import torch.nn as nn

import jit

OPTIMIZERS = {
    "sgd_momentum": lambda ps, fe: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, weight_decay=1e-3, foreach=fe),
    "adam_wd": lambda ps, fe: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.1, foreach=fe),
    "adamw": lambda ps, fe: torch.optim.AdamW(ps, lr=1e-2, foreach=fe),
    "adamw_amsgrad": lambda ps, fe: torch.optim.AdamW(ps, lr=1e-2, amsgrad=True, foreach=fe),
    "rmsprop": lambda ps, fe: torch.optim.RMSprop(ps, lr=1e-3, momentum=0.5, foreach=fe),
}


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4))


def _backward(model, i):
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(i))
    model.zero_grad()
    model(x * (1 + i)).pow(2).mean().backward()


def _assert_same_training(m_eager, o_eager, m_jit, o_jit, rtol):
    """Parameters and optimizer state equal to `rtol` of each tensor's largest magnitude (a momentum buffer's
    elements that cancel to near zero keep the absolute error of the terms)."""
    def close(got, want):
        torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * float(want.detach().abs().max()))
    for p, q in zip(m_eager.parameters(), m_jit.parameters()):
        close(q, p)
    for p, q in zip(m_eager.parameters(), m_jit.parameters()):
        want, got = o_eager.state[p], o_jit.state[q]
        assert want.keys() == got.keys()
        for k in want:
            close(got[k], want[k])


@pytest.mark.parametrize("foreach", [False, True], ids=["for_loop", "foreach"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_compiled_step_matches_eager(name, foreach):
    m_eager = _model()
    m_jit = copy.deepcopy(m_eager)
    o_eager, o_jit = OPTIMIZERS[name](m_eager.parameters(), foreach), OPTIMIZERS[name](m_jit.parameters(), foreach)
    step = jit.compile(o_jit.step)
    jit.reset()  # one wrapper code serves every optimizer's step: each test starts with no entries for it
    jit.counters.clear()
    for i in range(5):
        _backward(m_eager, i)
        _backward(m_jit, i)
        o_eager.step()
        step()
    exact = name.startswith("sgd")
    _assert_same_training(m_eager, o_eager, m_jit, o_jit, 0.0 if exact else 2e-5)
    assert jit.counters["graph_breaks"] == 0
    assert jit.counters["frames_compiled"] == 2  # the step that creates the state, then the steady one


def test_state_created_by_the_compiled_step_is_the_optimizers():
    """The first compiled step fills `opt.state` (a defaultdict keyed by parameters) with new tensors: the real
    dict holds them afterwards, keyed by the very parameters, and a later eager step continues from them."""
    m = _model()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    m_ref = copy.deepcopy(m)
    ref = torch.optim.AdamW(m_ref.parameters(), lr=1e-2)
    _backward(m, 0)
    _backward(m_ref, 0)
    jit.compile(opt.step)()
    ref.step()
    assert set(map(id, opt.state)) == set(map(id, m.parameters()))
    assert all(type(k) is nn.Parameter for k in opt.state)
    _backward(m, 1)
    _backward(m_ref, 1)
    opt.step()  # eager, from the state the compiled step left
    ref.step()
    _assert_same_training(m_ref, ref, m, opt, 2e-5)


def test_training_step_with_backward_and_step_inside_one_compiled_function():
    """forward, backward, clip_grad_norm_, step and zero_grad in one compiled function: the backward breaks the
    graph (it runs torch's autograd engine), the step after it is traced in the resume function."""
    m_eager = _model()
    m_jit = copy.deepcopy(m_eager)
    o_eager = torch.optim.AdamW(m_eager.parameters(), lr=1e-2, foreach=False)
    o_jit = torch.optim.AdamW(m_jit.parameters(), lr=1e-2, foreach=False)

    def train_step(model, opt, x):
        loss = model(x).pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    compiled = jit.compile(train_step)
    for i in range(4):
        x = torch.randn(8, 16, generator=torch.Generator().manual_seed(i))
        torch.testing.assert_close(compiled(m_jit, o_jit, x), train_step(m_eager, o_eager, x), rtol=1e-5, atol=1e-7)
    _assert_same_training(m_eager, o_eager, m_jit, o_jit, 2e-5)
    assert all(p.grad is None for p in m_jit.parameters())


def test_grad_of_an_outside_tensor_is_read_and_guarded():
    w = torch.randn(4, requires_grad=True)
    seen = []

    @jit.compile(fullgraph=True)
    def grad_norm():
        g = w.grad
        return torch.zeros(()) if g is None else g.norm()

    seen.append(grad_norm())
    assert seen[-1].item() == 0.0
    w.sum().mul(3).backward()
    torch.testing.assert_close(grad_norm(), w.grad.norm())  # None -> a tensor: recompiled, not the stale answer
    w.grad = torch.ones(4)
    torch.testing.assert_close(grad_norm(), torch.tensor(2.0))


def test_dict_keyed_by_tensors_from_outside():
    a, b = torch.randn(3), torch.randn(3)
    table = {a: torch.ones(3)}
    counts = __import__("collections").defaultdict(list)
    jit.counters.clear()

    @jit.compile
    def f(x, y):
        counts[y].append(1)
        return table[x] * 2 + x

    torch.testing.assert_close(f(a, b), torch.ones(3) * 2 + a)
    torch.testing.assert_close(f(a, b), torch.ones(3) * 2 + a)
    assert list(counts) == [b] and counts[b] == [1, 1]
    # the first call made counts[b] (the defaultdict's default, stored), the second found it
    assert jit.counters["graph_breaks"] == 0 and jit.counters["frames_compiled"] == 2
    with pytest.raises(KeyError):
        f(b, a)


def test_foreach_ops_in_user_code():
    xs = [torch.randn(3, 4), torch.randn(5)]
    ys = [torch.randn(3, 4), torch.randn(5)]

    def f(xs, ys, s):
        torch._foreach_mul_(xs, s)
        out = torch._foreach_add(xs, ys, alpha=0.5)
        torch._foreach_maximum_(out, ys)
        norms = torch._foreach_norm(out)
        return torch.stack(norms), out

    want_xs = [x.clone() for x in xs]
    want = f(want_xs, ys, torch.tensor(0.3))
    got_xs = [x.clone() for x in xs]
    got = jit.compile(f, fullgraph=True)(got_xs, ys, torch.tensor(0.3))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_xs, want_xs)


def test_profiler_ranges_and_builtin_generics_do_not_break():
    @jit.compile(fullgraph=True)
    def f(x):
        with torch.autograd.profiler.record_function("my range"):
            y = typing_cast(list[torch.Tensor], [x])[0]
            return y * 2

    typing_cast = __import__("typing").cast
    torch.testing.assert_close(f(torch.ones(2)), torch.full((2,), 2.0))


def test_step_wrapped_by_an_lr_scheduler():
    """An LR scheduler replaces `opt.step` with a wrapper that binds the original with `func.__get__`; with the
    learning rate a tensor (updated in place by the scheduler) the step compiles twice in all."""
    m_eager = _model()
    m_jit = copy.deepcopy(m_eager)
    o_eager = torch.optim.AdamW(m_eager.parameters(), lr=torch.tensor(1e-2), foreach=False)
    o_jit = torch.optim.AdamW(m_jit.parameters(), lr=torch.tensor(1e-2), foreach=False)
    s_eager = torch.optim.lr_scheduler.CosineAnnealingLR(o_eager, 10)
    s_jit = torch.optim.lr_scheduler.CosineAnnealingLR(o_jit, 10)
    step = jit.compile(o_jit.step)
    jit.reset()
    jit.counters.clear()
    for i in range(5):
        _backward(m_eager, i)
        _backward(m_jit, i)
        o_eager.step()
        step()
        s_eager.step()
        s_jit.step()
    _assert_same_training(m_eager, o_eager, m_jit, o_jit, 2e-5)
    assert jit.counters["graph_breaks"] == 0 and jit.counters["frames_compiled"] == 2


@pytest.mark.parametrize("name", ["sgd_momentum", "adamw"])
def test_float_hyperparameters_a_scheduler_changes_compile_once_more(name):
    """OneCycleLR moves the learning rate and the momentum (SGD's `momentum`, Adam's `betas[0]`), Python floats in
    the param group, every step: after the first change they are graph inputs (jit/variables/floats.py), so the
    step compiles twice in all (the state's creation, then the changed floats), and the updates stay eager's."""
    m_eager = _model()
    m_jit = copy.deepcopy(m_eager)
    o_eager, o_jit = OPTIMIZERS[name](m_eager.parameters(), False), OPTIMIZERS[name](m_jit.parameters(), False)
    s_eager = torch.optim.lr_scheduler.OneCycleLR(o_eager, 0.05, total_steps=20)
    s_jit = torch.optim.lr_scheduler.OneCycleLR(o_jit, 0.05, total_steps=20)
    step = jit.compile(o_jit.step)
    jit.reset()
    jit.counters.clear()
    for i in range(8):
        _backward(m_eager, i)
        _backward(m_jit, i)
        o_eager.step()
        step()
        s_eager.step()
        s_jit.step()
    _assert_same_training(m_eager, o_eager, m_jit, o_jit, 0.0 if name.startswith("sgd") else 2e-5)
    assert jit.counters["graph_breaks"] == 0 and jit.counters["frames_compiled"] == 2

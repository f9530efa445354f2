"""Whole models as one graph: the GPT-style models of benchmarks/models, weights reloaded without recompiling,
tied weights, training flag, grad mode, and readable recompile reasons."""
import logging

import pytest
import torch

import jit
from benchmarks.models.gpt import GPT, GPTConfig, LoopGPT, gpt_block, small_config


pytestmark = pytest.mark.usefixtures("fresh_jit")


def _tokens(config, batch=2, length=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, config.vocab_size, (batch, length), generator=g)


@pytest.mark.parametrize("cls", [GPT, LoopGPT])
@pytest.mark.parametrize("tied", [True, False])
def test_gpt_is_one_graph_and_matches_eager(cls, tied):
    config = GPTConfig(**{**small_config().__dict__, "tied_head": tied})
    model = cls(config, seed=1).eval()
    idx = _tokens(config)
    exp = jit.explain(model, idx)
    assert exp.graph_count == 1 and exp.graph_break_count == 0, str(exp)
    jit.counters.clear()
    fast = jit.compile(model, backend="eager")
    with torch.no_grad():
        torch.testing.assert_close(fast(idx), model(idx))
        torch.testing.assert_close(fast(idx), model(idx))
    assert jit.counters.frames_compiled == 1 and jit.counters.cache_hits >= 1


def test_gpt_training_mode_with_grad_matches_eager():
    config = small_config()
    model = GPT(config, seed=2).train()
    fast = jit.compile(model, backend="eager")
    idx = _tokens(config)
    out = fast(idx)
    ref = model(idx)
    torch.testing.assert_close(out, ref)
    assert out.requires_grad
    out.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ref.sum().backward()
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_load_state_dict_new_weights_without_recompile():
    config = small_config()
    model, other = GPT(config, seed=3).eval(), GPT(config, seed=4).eval()
    fast = jit.compile(model, backend="eager")
    idx = _tokens(config)
    with torch.no_grad():
        fast(idx)
        model.load_state_dict(other.state_dict())
        torch.testing.assert_close(fast(idx), other(idx))
    assert jit.counters.frames_compiled == 1


def test_replaced_parameter_object_is_read_at_call_time():
    block = gpt_block(seed=5).eval()
    fast = jit.compile(block, backend="eager")
    x = torch.randn(2, 8, block.ln_1.weight.shape[0])
    with torch.no_grad():
        fast(x)
        block.mlp.c_fc.weight = torch.nn.Parameter(torch.randn_like(block.mlp.c_fc.weight))
        torch.testing.assert_close(fast(x), block(x))


def test_training_flag_change_recompiles():
    config = GPTConfig(**{**small_config().__dict__, "dropout": 0.5})
    model = GPT(config, seed=6).eval()
    fast = jit.compile(model, backend="eager")
    idx = _tokens(config)
    with torch.no_grad():
        torch.testing.assert_close(fast(idx), model(idx))
        model.train()
        torch.manual_seed(0)
        a = fast(idx)
        torch.manual_seed(0)
        b = model(idx)
    torch.testing.assert_close(a, b)
    assert jit.counters.recompiles >= 1


def test_grad_mode_is_guarded():
    def f(x, w):
        return (x @ w).relu()

    cf = jit.compile(f, backend="eager")
    x, w = torch.randn(3, 4), torch.randn(4, 2, requires_grad=True)
    assert cf(x, w).requires_grad
    with torch.no_grad():
        assert not cf(x, w).requires_grad
    assert jit.counters.frames_compiled == 2


SCALE = 2.0


def scaled(x):
    return x * SCALE


def test_recompile_reasons_in_user_terms(caplog):
    global SCALE
    cf = jit.compile(scaled, backend="eager")
    jit.set_logs("recompiles")
    caplog.set_level(logging.DEBUG, logger="jit.recompiles")
    try:
        cf(torch.ones(8))
        cf(torch.ones(16))
        SCALE = 3.0
        torch.testing.assert_close(cf(torch.ones(16)), torch.full((16,), 3.0))
    finally:
        SCALE = 2.0
        jit.set_logs()
    messages = [r.getMessage() for r in caplog.records if r.name == "jit.recompiles"]
    assert any("tensor 'x' size mismatch at dim 0: expected 8, got 16" in m for m in messages), messages
    assert any("global 'SCALE' changed: expected 2.0, got 3.0" in m for m in messages), messages
    assert all(m.startswith("Recompiling scaled (test_models.py:") for m in messages)


def test_custom_backend_receives_graph_and_example_inputs():
    seen = []

    def backend(gm, example_inputs):
        seen.append((gm, [tuple(t.shape) for t in example_inputs]))
        return gm.forward

    model = gpt_block(seed=7).eval()
    x = torch.randn(2, 4, model.ln_1.weight.shape[0])
    with torch.no_grad():
        torch.testing.assert_close(jit.compile(model, backend=backend)(x), model(x))
    [(gm, shapes)] = seen
    assert isinstance(gm, torch.fx.GraphModule)
    assert (2, 4, model.ln_1.weight.shape[0]) in shapes
    assert len(shapes) == 1 + len(list(model.parameters())) + len(list(model.buffers()))


def test_fullgraph_raises_with_user_location():
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(jit.GraphBreakError, match=r"test_models.py:\d+: the truth value"):
        jit.compile(f, backend="eager", fullgraph=True)(torch.ones(3))

"""torch.nn modules passed directly to jit.compile are compiled, though torch's own frames are skipped: the user
named the module, so its forward is compiled (jit.skip_rules.request)."""
import warnings

import pytest
import torch

import jit


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    jit.reset()


@pytest.mark.parametrize("make", [
    lambda: torch.nn.Linear(4, 4),
    lambda: torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 4)),
    lambda: torch.nn.LayerNorm(4),
], ids=["Linear", "Sequential", "LayerNorm"])
def test_torch_module_is_compiled(make):
    torch.manual_seed(0)
    module = make()
    fast = jit.compile(module)
    x = torch.randn(3, 4)
    for _ in range(2):
        torch.testing.assert_close(fast(x), module(x))
    assert jit.counters.graphs >= 1 and jit.counters.frames_run_eagerly == 0, jit.counters


@pytest.mark.parametrize("train", [False, True])
def test_transformer_encoder_layer_one_graph(train):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).train(train)
    fast = jit.compile(layer)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(fast(x), layer(x))  # with grad: the layer's own Python path, not its fused op
    explanation = jit.explain(layer, x)
    assert explanation.graph_count == 1 and not explanation.break_reasons, explanation


def test_transformer_encoder_layer_inference_fast_path():
    # under no_grad in eval some torch builds take the fused _transformer_encoder_layer_fwd, which has no meta
    # kernel: a break there is fine; the answer must still be eager's
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()
    fast = jit.compile(layer)
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        for _ in range(2):
            torch.testing.assert_close(fast(x), layer(x))

"""The first forward and backward of a compiled training graph are checked against the same graph run in torch
(inductor/first_call_check.py): generated code that computes something else warns once, and the graph runs in
torch from then on, so the gradients stay eager's. Here a backend whose generated graphs are made wrong on purpose
plays the broken kernel; a plain one must pass the check in silence, including results that are rounding noise
(batch_norm's input gradient of a plain sum)."""
import warnings

import pytest
import torch
import torch.nn.functional as F

import jit
from framejit.inductor import training
from framejit.inductor.backends import numpy_backend
from framejit.inductor.config import config


def _broken(which: str):
    """The NumPy backend, with the graph of `which` ("forward" / "backward") returning its first result x 3."""
    def compile_inference(gm, example_inputs):
        made = numpy_backend(gm, example_inputs)
        is_backward = any(n.name.startswith("tangents") for n in gm.graph.find_nodes(op="placeholder"))
        if is_backward != (which == "backward"):
            return made

        def wrong(*args):
            out = list(made(*args))
            out[0] = out[0] * 3
            return out
        wrong.source = "generated"  # a generated graph, as the check sees it
        return wrong
    return lambda gm, example_inputs: training.compile_training(gm, example_inputs, compile_inference)


def _mlp(x, w1, w2):
    return (torch.tanh(x @ w1) @ w2).pow(2).mean()


def _args():
    torch.manual_seed(0)
    return [torch.randn(8, 6), torch.randn(6, 5), torch.randn(5, 3)]


def _grads(fn, args):
    leaves = [a.clone().requires_grad_() for a in args]
    loss = fn(*leaves)
    loss.backward()
    return loss, [a.grad for a in leaves]


@pytest.mark.parametrize("which", ["forward", "backward"])
def test_a_wrong_generated_graph_warns_and_runs_in_torch(which, fresh_jit):
    compiled = jit.compile(_mlp, backend=_broken(which))
    want_loss, want = _grads(_mlp, _args())
    with pytest.warns(RuntimeWarning, match=f"generated {which} of a training graph disagrees"):
        loss, got = _grads(compiled, _args())
    torch.testing.assert_close(loss, want_loss)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: the second step runs the torch graph, without a new warning
        loss, got = _grads(compiled, _args())
    torch.testing.assert_close(loss, want_loss)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_the_check_can_be_turned_off(fresh_jit):
    with config.override(check_first_call=False):
        compiled = jit.compile(_mlp, backend=_broken("backward"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, got = _grads(compiled, _args())
    _, want = _grads(_mlp, _args())
    assert not torch.allclose(got[1], want[1])  # the broken graph's answer, unchecked


@pytest.mark.parametrize("fn", [
    lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True).sum(),  # x's gradient: noise around 0
    lambda x, w, b: F.layer_norm(x, (5,), w, b).sum() * 1e-3,
])
def test_correct_graphs_pass_in_silence(fn, fresh_jit):
    torch.manual_seed(0)
    args = [torch.randn(3, 4, 2, 5), torch.randn(4 if fn.__code__.co_names.count("batch_norm") else 5),
            torch.randn(4 if fn.__code__.co_names.count("batch_norm") else 5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _, got = _grads(jit.compile(fn, backend="numpy"), args)
    _, want = _grads(fn, args)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_float32_results_of_half_precision_graphs_inherit_its_rounding():
    """An autocast graph's float32 layer-norm sums over bf16 activations differ by ~2e-3 between two correct
    kernels (measured on the H100); a wrong kernel is off by far more, and is still flagged."""
    from framejit.inductor.first_call_check import computes_in_half, disagreement
    torch.manual_seed(0)
    want = torch.randn(8, 512, 1)
    close = want * (1 + 2e-3 * torch.randn(8, 512, 1))
    assert disagreement([close], [want], 1.0) is not None  # a float32 graph: 1e-3
    assert disagreement([close], [want], 1.0, half=True) is None
    assert disagreement([want * 1.3], [want], 1.0, half=True) is not None
    gm = torch.fx.symbolic_trace(lambda x: x.to(torch.bfloat16).float().sum(-1))
    for node, dtype in zip(gm.graph.nodes, (torch.float32, torch.bfloat16, torch.float32, torch.float32)):  # meta
        node.meta["val"] = torch.empty(2, dtype=dtype, device="meta")
    assert computes_in_half(gm.graph)


def test_results_are_compared_in_chunks(monkeypatch):
    # the first call compared whole float32 copies of each result: 5 GB beyond the step for a GPT's saved logits
    from framejit.inductor import first_call_check
    from framejit.inductor.first_call_check import disagreement
    monkeypatch.setattr(first_call_check, "CHUNK", 7)
    want = torch.randn(5, 11, dtype=torch.bfloat16)
    assert disagreement([want.clone()], [want], 1.0) is None
    off = want.clone()
    off[4, 10] = 1e4  # in the last, partial chunk
    assert "relative error" in disagreement([off], [want], 1.0)
    nan = want.clone()
    nan[2, 3] = float("nan")
    assert "non-finite" in disagreement([nan], [want], 1.0)
    both = want.clone()
    both[0, 0] = want[0, 0] = float("inf")
    assert disagreement([both], [want], 1.0) is None
    assert disagreement([want.t().contiguous().t()], [want], 1.0) is None  # another layout, the same values


def test_the_inputs_scale_is_measured_in_chunks(monkeypatch):
    from framejit.inductor import first_call_check
    x = torch.randn(5, 11, dtype=torch.bfloat16)
    x[1, 2] = float("inf")
    finite = x.float()[torch.isfinite(x.float())]
    want = float(finite.square().mean().sqrt())
    monkeypatch.setattr(first_call_check, "CHUNK", 7)
    assert abs(first_call_check.scale([x, torch.zeros(3, dtype=torch.long)]) - want) < 1e-5 * want

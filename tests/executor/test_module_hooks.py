"""Forward pre-hooks and forward hooks on modules (jit/semantics/calls.py _call_with_forward_hooks): traced in
nn.Module.__call__'s order, their results replacing the arguments or the output; adding or removing one
recompiles. transformers' gradient checkpointing registers one on the input embeddings."""
import warnings

import pytest
import torch

import jit

BACKENDS = ["eager", "numpy", "inductor"]


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an internal error would warn and run eagerly: fail instead
        yield
    jit.reset()


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_pre_hooks_and_hooks_in_one_graph(backend):
    model = _model()
    seen = []
    model[0].register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    model[0].register_forward_pre_hook(lambda m, args, kwargs: None, with_kwargs=True)
    model[2].register_forward_hook(lambda m, args, out: out + args[0].sum(-1, keepdim=True)[..., :1])
    model[2].register_forward_hook(lambda m, args, kwargs, out: seen.append(out.shape), with_kwargs=True)
    x = torch.randn(5, 4)
    fast = jit.compile(model, backend=backend)
    breaks = jit.counters.graph_breaks
    with torch.no_grad():
        for _ in range(2):
            torch.testing.assert_close(fast(x), model(x))
    assert jit.counters.graph_breaks == breaks
    assert seen == [torch.Size([5, 3])] * 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_removing_and_adding_hooks_recompiles(backend):
    model = _model()
    handle = model[0].register_forward_hook(lambda m, args, out: out * 0)
    fast = jit.compile(model, backend=backend)
    x = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x))
        handle.remove()
        torch.testing.assert_close(fast(x), model(x))
        model[2].register_forward_pre_hook(lambda m, args: (args[0] + 1,))
        torch.testing.assert_close(fast(x), model(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hook_that_makes_the_output_require_grad(backend):
    # transformers' enable_input_require_grads: gradients reach layers behind a frozen embedding
    torch.manual_seed(0)
    emb, lin = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2)
    emb.weight.requires_grad_(False)
    emb.register_forward_hook(lambda m, args, out: out.requires_grad_(True))

    def f(ids):
        return lin(emb(ids)).sum()

    ids = torch.tensor([[1, 2, 3]])
    jit.compile(f, backend=backend)(ids).backward()
    got = lin.weight.grad.clone()
    lin.weight.grad = None
    f(ids).backward()
    torch.testing.assert_close(got, lin.weight.grad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hooks_on_every_layer_of_a_stack(backend):
    # transformers' output capturing: a closure hook on each of several layers of one class, which the compiled
    # layer code serves by structure (guarded by the hooks' positions and code, not their handles' numbers)
    torch.manual_seed(0)
    layers = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(4))
    captured = []

    def install(layer, index):
        def hook(module, args, out):
            captured.append((index, out.shape))
        layer.register_forward_hook(hook)

    for i, layer in enumerate(layers):
        install(layer, i)

    def run(layer, x):
        return layer(x).relu()

    def model(x):
        for layer in layers:
            x = jit.compile(run, backend=backend)(layer, x)
        return x

    def eager(x):
        for layer in layers:
            x = run(layer, x)
        return x

    x = torch.randn(2, 4)
    breaks = jit.counters.graph_breaks
    with torch.no_grad():
        want = eager(x)
        expected, captured[:] = list(captured), []
        torch.testing.assert_close(model(x), want)
    assert captured == expected
    assert jit.counters.graph_breaks == breaks

"""Issue 6's end-to-end promise: whole models through `jit.compile(..., backend="numpy")` match eager within 1e-5
relative in float32, and they really ran as generated NumPy code (not a torch fallback). Also the CPU suite's
workloads at their benchmark sizes, since those are the shapes the row-blocked, threaded groups run on."""
import sys

import pytest
import torch
import torch.nn as nn

import jit
from benchmarks.models.gpt import GPT, GPTConfig, LoopGPT, small_config
from framejit.inductor import numpy_backend
from framejit.inductor.runtime.numpy_graph import CompiledNumpyGraph


@pytest.fixture(autouse=True)
def fresh():
    jit.reset()
    yield
    jit.reset()


def _numpy_graphs(fn, *args):
    """Compile `fn` through jit with the NumPy backend, recording what the backend returned per graph."""
    graphs = []

    def recording(gm, example_inputs):
        compiled = numpy_backend(gm, example_inputs)
        graphs.append(compiled)
        return compiled

    return jit.compile(fn, backend=recording), graphs


def _assert_close_relative(got, ref, rtol=1e-5):
    scale = ref.abs().max().clamp_min(1e-30)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    assert ((got - ref).abs().max() / scale).item() <= rtol


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 256), nn.Linear(256, 256), nn.Linear(256, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(nn.functional.gelu(self.fc1(x)))))


@pytest.mark.parametrize("batch", [1, 33, 4096])
def test_mlp_backend_numpy_matches_eager(batch):
    torch.manual_seed(0)
    model = MLP().eval()
    x = torch.randn(batch, 64)
    fast = jit.compile(model, backend="numpy")
    with torch.no_grad():
        ref = model(x)
        for _ in range(2):  # the second call reuses the compiled code
            _assert_close_relative(fast(x), ref)
    _, graphs = _numpy_graphs(model, x)
    with torch.no_grad():
        _(x)
    assert graphs and all(isinstance(g, CompiledNumpyGraph) for g in graphs)


@pytest.mark.parametrize("cls", [GPT, LoopGPT])
@pytest.mark.parametrize("config", [small_config(), GPTConfig(vocab_size=512, block_size=64, n_layer=4, n_head=4,
                                                              n_embd=128)], ids=["small", "suite"])
def test_gpt_backend_numpy_matches_eager(cls, config):
    model = cls(config, seed=1).eval()
    idx = torch.randint(0, config.vocab_size, (2, config.block_size // 2), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(idx)
        fast = jit.compile(model, backend="numpy")
        for _ in range(2):
            _assert_close_relative(fast(idx), ref)
        compiled, graphs = _numpy_graphs(model, idx)
        _assert_close_relative(compiled(idx), ref)
    assert len(graphs) == 1 and isinstance(graphs[0], CompiledNumpyGraph)
    assert "fallbacks[" not in graphs[0].source  # every op of the model has a NumPy lowering


@pytest.mark.parametrize("name", ["pointwise", "layernorm", "softmax", "rmsnorm_residual", "linear_gelu"])
def test_cpu_suite_workloads_match_eager(name):
    from benchmarks import cpu_suite
    fn, args = cpu_suite.build(name)
    compiled, graphs = _numpy_graphs(fn, *args)
    with torch.no_grad():
        _assert_close_relative(compiled(*args), fn(*args))
    assert len(graphs) == 1 and isinstance(graphs[0], CompiledNumpyGraph)


def test_threads_give_the_same_bits_as_one_thread():
    """Blocks are independent and each runs the same code whichever thread takes it."""
    from benchmarks import cpu_suite
    fn, args = cpu_suite.build("layernorm")
    compiled, graphs = _numpy_graphs(fn, *args)
    with torch.no_grad():
        many = compiled(*args)
        registry = sys.modules["_framejit_numpy_threads"]
        count, registry.count = registry.count, 1
        try:
            one = compiled(*args)
        finally:
            registry.count = count
    assert torch.equal(many, one)


@pytest.mark.parametrize("make", [lambda x: torch.arange(x.shape[0]), lambda x: torch.arange(1, 10, 3),
                                  lambda x: torch.arange(0.5, 3, 0.25), lambda x: torch.arange(7, dtype=torch.float64),
                                  lambda x: torch.arange(0), lambda x: torch.arange(1)])
def test_arange_is_lowered_not_run_in_torch(make):
    """graph/ rewrites torch.arange to the core arange.start_step, so the GPT's position ids need no fallback."""
    fn = lambda x: make(x) + x.sum()
    x = torch.ones(5, dtype=torch.int64)
    compiled, graphs = _numpy_graphs(fn, x)
    got, ref = compiled(x), fn(x)
    assert got.dtype == ref.dtype and torch.equal(got, ref)
    assert len(graphs) == 1 and "fallbacks[" not in graphs[0].source

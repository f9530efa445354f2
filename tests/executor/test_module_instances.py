"""N instances of one layer class share compiled entries: a frame that meets a second instance of a module class
is compiled again with the modules it reads from its arguments guarded by class and contents (parameters as graph
inputs), not by identity, so a 12-layer model with a graph break inside each layer does not hit the cache limit."""
import warnings

import pytest
import torch

import jit


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cache-limit warning fails the test
        yield
    jit.reset()


class Layer(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin = torch.nn.Linear(d, d)
        self.norm = torch.nn.LayerNorm(d)
        self.scale = 0.5

    def forward(self, x):
        h = self.lin(self.norm(x))
        print("break", end="")  # a graph break inside every layer: each layer's frame is compiled on its own
        return x + h * self.scale


class Stack(torch.nn.Module):
    def __init__(self, n=12, d=8):
        super().__init__()
        self.layers = torch.nn.ModuleList(Layer(d) for _ in range(n))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def test_twelve_layers_with_a_break_compile_a_bounded_number_of_times(capsys):
    torch.manual_seed(0)
    model = Stack()
    x = torch.randn(2, 8)
    fast = jit.compile(model)
    for _ in range(3):
        torch.testing.assert_close(fast(x), model(x))
    assert jit.counters.cache_limit_hits == 0 and jit.counters.frames_run_eagerly == 0
    # Layer.forward and its resume function: once, then once by structure; the loop's resume function: once, then
    # with the loop's iterator opaque (each pass starts further on) -- not once per layer
    assert jit.counters.recompiles <= 4, jit.counters
    frames = jit.counters.frames_compiled
    fast(x)
    assert jit.counters.frames_compiled == frames  # every layer now hits an entry


def test_new_weights_and_a_layer_with_a_hook():
    torch.manual_seed(0)
    model = Stack(n=4)
    x = torch.randn(2, 8)
    fast = jit.compile(model)
    fast(x)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    torch.testing.assert_close(fast(x), model(x))  # parameters are read each call
    seen = []
    model.layers[2].lin.register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    torch.testing.assert_close(fast(x), model(x))
    assert len(seen) == 2  # the compiled call ran the hook too (a guard saw it), as the eager call did


def test_instances_with_other_shapes_or_flags_are_told_apart():
    torch.manual_seed(0)
    small, wide = Layer(4), Layer(6)
    wide.scale = 2.0

    def run(layer, x):
        return layer(x)

    fast = jit.compile(run)
    for layer, d in ((small, 4), (wide, 6), (small, 4), (Layer(4), 4)):
        x = torch.randn(3, d)
        torch.testing.assert_close(fast(layer, x), layer(x))


def test_hook_registered_after_compiling_runs():
    # a module guarded by identity: its hook dicts are guarded empty (guards.kinds.NoHooks), so the hook runs
    inner = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x) * 2

    model = Wrapper()
    fast = jit.compile(model)
    x = torch.randn(3, 2)
    fast(x)
    seen = []
    inner[0].register_forward_hook(lambda mod, args, out: seen.append(out.shape))
    torch.testing.assert_close(fast(x), model(x))
    assert len(seen) == 2

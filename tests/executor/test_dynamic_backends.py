"""How graphs with dynamic sizes reach backends (jit/backends.py: compile_graph): the built-in backends take
symbolic sizes and compile once per set of size conditions; a third-party fixed-shape backend gets one
specialized graph per size, at most jit.config.cache_size_limit of them, then the captured graph runs as is.
Every result is compared with eager."""
import logging

import pytest
import torch

import jit
from framejit.graph.size_variants import SizeVariants
from framejit.inductor.backends import numpy_backend


@pytest.fixture(autouse=True)
def fresh():
    jit.reset()
    jit.counters.clear()
    limit = jit.config.cache_size_limit
    yield
    jit.config.cache_size_limit = limit
    jit.reset()


def tokens(x, w):
    b, t = x.shape[0], x.shape[1]
    y = (x @ w).reshape(b * t, -1)
    return torch.relu(y) + t, b * t


def check(got, expected):
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)
    assert got[1] == expected[1]


def test_fixed_shape_backend_is_bounded_by_the_cache_limit(caplog):
    caplog.set_level(logging.INFO, logger="jit.dynamic")
    jit.config.cache_size_limit = 3
    seen = []

    def fixed(gm, example_inputs):  # a third-party backend: no dynamic_sizes
        seen.append(tuple(example_inputs[0].shape))
        return gm.forward

    compiled = jit.compile(tokens, backend=fixed)
    w = torch.randn(8, 4)
    for t in range(2, 12):
        x = torch.randn(2, t, 8)
        check(compiled(x, w), tokens(x, w))
    assert jit.counters["frames_compiled"] == 2
    assert len(seen) == 1 + 3  # the static first graph, then three sizes of the dynamic one
    messages = [r.getMessage() for r in caplog.records if r.name == "jit.dynamic"]
    assert any("the backend compiles for fixed sizes" in m for m in messages)
    assert any("3 size variants compiled; other sizes run the captured graph as is" in m for m in messages)


def test_growing_length_through_numpy_compiles_two_graphs_and_one_module(caplog):
    caplog.set_level(logging.INFO, logger="jit.dynamic")
    store = []

    def recording(gm, example_inputs):
        out = numpy_backend(gm, example_inputs)
        store.append(out)
        return out
    recording.dynamic_sizes = True
    compiled = jit.compile(tokens, backend=recording)
    w = torch.randn(8, 4)
    for t in range(2, 30):
        x = torch.randn(3, t, 8)
        check(compiled(x, w), tokens(x, w))
    assert jit.counters["frames_compiled"] == 2
    dynamic = [s for s in store if isinstance(s, SizeVariants)]
    assert len(dynamic) == 1 and len(dynamic[0].variants) == 1
    assert "compiled variant 1" in [r.getMessage() for r in caplog.records if r.name == "jit.dynamic"][0]


def test_changing_batch_through_inductor():
    compiled = jit.compile(tokens, backend="inductor")
    w = torch.randn(8, 4)
    for b in (2, 3, 4, 7, 16):
        x = torch.randn(b, 5, 8)
        check(compiled(x, w), tokens(x, w))
    assert jit.counters["frames_compiled"] == 2


def test_builtin_backends_declare_dynamic_sizes():
    from jit.backends import lookup_backend
    for name in ("eager", "inductor", "numpy", "triton"):
        assert getattr(lookup_backend(name), "dynamic_sizes", False), name

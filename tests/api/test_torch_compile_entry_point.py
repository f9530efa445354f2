"""The entry point that lets torch.compile find framejit by name: the metadata in pyproject.toml, and its target
called the way torch.compile calls a backend (fake example inputs), against eager. (The shared environment is
not reinstalled for this test, so the target is loaded from the metadata's `module:attr` directly.)"""
import importlib
import pathlib
import tomllib

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from jit.torch_compile_backend import framejit_backend

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean(fresh_jit):
    yield


def _entry_point():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    group = meta["project"]["entry-points"]["torch_dynamo_backends"]
    assert set(group) == {"framejit"}
    module, attr = group["framejit"].split(":")
    return getattr(importlib.import_module(module), attr)


class Block(torch.nn.Module):
    def forward(self, x, y):
        return (torch.relu(x @ y) * 2 + 1).sum(dim=-1), x.t()


def test_pyproject_names_the_adapter():
    assert _entry_point() is framejit_backend


def test_target_compiles_a_graph_from_fake_example_inputs():
    gm = torch.fx.symbolic_trace(Block())
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(torch.randn(4, 5)), mode.from_tensor(torch.randn(5, 3))]
    compiled = _entry_point()(gm, fake)
    x, y = torch.randn(4, 5), torch.randn(5, 3)
    got, want = compiled(x, y), Block()(x, y)
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
    assert got[1].stride() == want[1].stride()


def test_target_keeps_requires_grad_and_strides_of_the_examples():
    gm = torch.fx.symbolic_trace(lambda x: x.sin() * 3)
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(torch.randn(6, 4).t().requires_grad_())]
    compiled = framejit_backend(gm, fake)
    x = torch.randn(6, 4).t().requires_grad_()
    out = compiled(x)
    torch.testing.assert_close(out, x.sin() * 3)
    out.sum().backward()
    torch.testing.assert_close(x.grad, 3 * x.detach().cos())


def test_symbolic_sizes_run_the_graph_as_captured_and_options_are_rejected():
    from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, StatelessSymbolicContext
    gm = torch.fx.symbolic_trace(lambda x: x * 2)
    mode = FakeTensorMode(shape_env=ShapeEnv())
    dynamic = StatelessSymbolicContext(dynamic_sizes=[DimDynamic.DYNAMIC, DimDynamic.STATIC])
    fake = [mode.from_tensor(torch.randn(3, 4), symbolic_context=dynamic)]
    assert not isinstance(fake[0].shape[0], int)
    compiled = framejit_backend(gm, fake)
    assert compiled == gm.forward
    x = torch.randn(5, 4)
    torch.testing.assert_close(compiled(x), x * 2)
    with pytest.raises(TypeError, match="takes no options, got mode"):
        framejit_backend(gm, [torch.randn(3)], mode="max-autotune")

"""Convolutions on CUDA run in channels-last (inductor/triton/rewrites.py `channels_last_convolutions`): input and
weight copied by transposing kernels, the library call without its bias, the bias added by the epilogue that
writes eager's NCHW layout. The rewrite is CUDA's; here it is applied to the interpreter's CPU tensors too, so the
values, the layouts handed back and the module's structure are checked without a GPU."""
import pytest
import torch
import torch.fx
import torch.nn.functional as F

from framejit.inductor.triton import backend as triton_backend_module
from framejit.inductor.triton import rewrites
from tests.inductor.triton.support import check_fn, on_device

TOL = (1e-4, 1e-4)


@pytest.fixture(autouse=True)
def everywhere(monkeypatch):
    real = rewrites.channels_last_convolutions
    monkeypatch.setattr(triton_backend_module, "channels_last_convolutions",
                        lambda gm, device: real(gm, torch.device("cuda")))


def _conv_bn_relu(x, w, b, mean, var, g, beta):
    return F.batch_norm(F.conv2d(x, w, b, stride=2, padding=1), mean, var, g, beta, False, 0.0, 1e-5).relu()


def _inputs(cin=16, cout=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, cin, 9, 7, generator=gen), torch.randn(cout, cin, 3, 3, generator=gen) * 0.1,
            torch.randn(cout, generator=gen)]


CASES = {
    "bias_relu": (lambda x, w, b: F.conv2d(x, w, b, padding=1).relu(), _inputs),
    "no_bias": (lambda x, w: F.conv2d(x, w, padding=1) * 2, lambda: _inputs()[:2]),
    "returned_as_is": (lambda x, w, b: F.conv2d(x, w, b), _inputs),
    "bn_relu_stride2": (_conv_bn_relu, lambda: _inputs() + [torch.randn(24) * 0.1, torch.rand(24) + 0.5,
                                                              torch.randn(24), torch.randn(24)]),
}


@pytest.mark.parametrize("name", CASES)
def test_values_and_eagers_layout(name):
    fn, make = CASES[name]
    inputs = make()
    compiled = check_fn(fn, *inputs, tol=TOL)
    got = compiled(*[on_device(x) for x in inputs])
    want = fn(*[on_device(x) for x in inputs])
    assert got.stride() == want.stride()  # NCHW, as eager returns it
    call = compiled.source.split("def call(")[1]
    assert "memory_format" not in call and "torch.convolution(clone_default, clone_default_1, None" in call, call


def test_few_channels_keep_nchw():
    fn, _ = CASES["bias_relu"]
    compiled = check_fn(fn, *_inputs(cin=3, cout=24), tol=TOL)
    assert "torch.convolution(x, w, b" in compiled.source.split("def call(")[1]


def test_channels_last_inputs_are_left_alone():
    """An input already channels-last runs as eager runs it (its result is channels-last too)."""
    x, w, b = _inputs()
    x = x.to(memory_format=torch.channels_last)
    fn, _ = CASES["bias_relu"]
    compiled = check_fn(fn, x, w, b, tol=TOL)
    assert "clone_default" not in compiled.source.split("def call(")[1]


def test_the_rewrite_is_cudas_only():
    gm = torch.fx.symbolic_trace(lambda x, w: torch.ops.aten.convolution.default(x, w, None, [1, 1], [1, 1], [1, 1],
                                                                                   False, [0, 0], 1))
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            node.meta["val"] = torch.empty(2, 16, 5, 5, device="meta") if node.name == "x" else \
                torch.empty(16, 16, 3, 3, device="meta")
    assert rewrites.channels_last_convolutions(gm, torch.device("cpu")) == 0

"""Generated kernels that are the same code over other buffers (inductor/triton/twins.py): generated and compiled
once, launched at every call site, each call site with its own buffers; kernels that differ in code, sizes or
dtypes stay apart."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.inductor.triton.support import DEVICE, assert_same, check_fn, on_device

from framejit.inductor.triton.codegen import KernelSource
from framejit.inductor.triton.twins import note_call_sites, twin_key

TOL = (1e-4, 1e-4)


def _launches(fn) -> list:
    """The kernel name of every launch in the generated `call`, in order."""
    return [line.split("'")[1] for line in fn.source.splitlines() if line.strip().startswith("launch['")]


def _two_norms(x, y, w):
    return F.layer_norm(x, (64,), w) + 1, F.layer_norm(y, (64,), w) + 1


def test_twin_kernels_are_compiled_once_and_launched_at_each_call_site():
    x, y, w = torch.randn(8, 64), torch.randn(8, 64) * 3, torch.randn(64)
    fn = check_fn(_two_norms, x, y, w, tol=TOL)
    (name,) = fn.launch
    assert _launches(fn) == [name, name]
    assert fn.source.count("\n@triton.jit") == 1 and "launched at 2 call sites" in fn.source
    # each call site reads its own buffers: new inputs, both results right
    x2, y2 = on_device(torch.randn(8, 64) - 2), on_device(torch.randn(8, 64))
    assert_same(fn(x2, y2, on_device(w)), _two_norms(x2, y2, on_device(w)), TOL)


def test_kernels_that_differ_stay_apart():
    x, y = torch.randn(8, 64), torch.randn(8, 64)
    # another constant
    fn = check_fn(lambda x, y: (torch.tanh(x) * 2 + 1, torch.tanh(y) * 2 + 2), x, y)
    assert len(fn.launch) == 2
    # another size
    fn = check_fn(lambda x, y: (torch.tanh(x) * 2, torch.tanh(y) * 2), x, torch.randn(16, 64))
    assert len(fn.launch) == 2
    # another dtype
    fn = check_fn(lambda x, y: (torch.tanh(x) * 2, torch.tanh(y) * 2), x, y.double())
    assert len(fn.launch) == 2
    # another layout of an input: other index math
    fn = check_fn(lambda x, y: (torch.tanh(x) * 2, torch.tanh(y) * 2), x, torch.randn(64, 8).t())
    assert len(fn.launch) == 2


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln, self.fc = nn.LayerNorm(32), nn.Linear(32, 32)

    def forward(self, x):  # functional calls: symbolic_trace keeps them as graph ops over the parameters
        h = F.layer_norm(x, (32,), self.ln.weight, self.ln.bias)
        return x + F.gelu(F.linear(h, self.fc.weight, self.fc.bias))


def test_repeated_layers_share_their_kernels():
    torch.manual_seed(0)
    model = nn.Sequential(*[_Block() for _ in range(4)]).to(DEVICE).eval()
    x = torch.randn(2, 8, 32)
    fn = check_fn(model, x, tol=TOL)
    launches = _launches(fn)
    assert len(set(launches)) < len(launches) and len(fn.launch) == len(set(launches))
    assert sum(1 for line in fn.source.splitlines() if line.startswith("def ")) == len(fn.launch) + 1  # + call


def test_twin_key_ignores_names_and_comments_only():
    def ks(name, a, b, const="2.0", comment="# %x = aten.mul(a)"):
        src = (f"@triton.jit\ndef {name}({a}_ptr, {b}_ptr, XBLOCK: tl.constexpr):\n    {comment}\n"
               f"    x = tl.load({a}_ptr + tl.arange(0, XBLOCK))\n    tl.store({b}_ptr + tl.arange(0, XBLOCK), x * {const})\n")
        k = KernelSource(name, src, [a, b], b, 64, 1, "pointwise", {"XBLOCK": 64}, [])
        k.arg_dtypes = [torch.float32, torch.float32]
        return k

    assert twin_key(ks("pw_mul", "x", "out")) == twin_key(ks("pw_mul_2", "y", "out_2", comment="# other nodes"))
    assert twin_key(ks("pw_mul", "x", "out")) != twin_key(ks("pw_mul", "x", "out", const="3.0"))
    swapped = ks("pw_mul", "x", "out")
    swapped.arg_dtypes = [torch.float16, torch.float32]
    assert twin_key(ks("pw_mul", "x", "out")) != twin_key(swapped)
    noted = note_call_sites(ks("pw_mul", "x", "out").source, 3)
    assert noted.splitlines()[2] == "    # launched at 3 call sites: the same code over other buffers " \
                                    "(parameters named after the first)"

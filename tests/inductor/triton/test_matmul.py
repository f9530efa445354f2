"""inductor/triton/matmul.py: a Triton matmul with the following pointwise kernel fused into its epilogue, against
eager torch (small shapes: Triton's CPU interpreter without a GPU). Either path of a call site, Triton or library
call + epilogue kernel, must give eager's answer; which one runs is forced here with FRAMEJIT_TRITON_MM."""
import pytest
import torch
import torch.nn.functional as F

from tests.inductor.triton.support import check_fn

TOL = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (3e-2, 3e-2)}


def _matmuls(fn) -> list:
    return [l for l in fn.launch.values() if type(l).__name__ == "MatmulLauncher"]


def gelu_linear(x, w, b):
    return F.gelu(x @ w + b)


def mlp_in(x, w, b):
    return F.gelu(F.linear(x, w, b), approximate="tanh")


def act_residual(x, w, b, r):
    return torch.relu(F.linear(x, w, b)) + r


def silu_tanh(x, w):
    return F.silu(x @ w) * torch.tanh(x @ w)


def _inputs(dtype):
    torch.manual_seed(0)
    x, w, b = torch.randn(24, 40), torch.randn(40, 48) / 6, torch.randn(48)
    return [t.to(dtype) for t in (x, w, b)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("forced", ["1", "0"])
def test_gelu_epilogue_both_paths(monkeypatch, dtype, forced):
    monkeypatch.setenv("FRAMEJIT_TRITON_MM", forced)
    fn = check_fn(gelu_linear, *_inputs(dtype), tol=TOL[dtype])
    if forced == "0":  # nothing to choose: the library call and the epilogue kernel, written over the product
        assert not _matmuls(fn) and "def mm_" not in fn.source and "# written over mm_default" in fn.source
        return
    (mm,) = _matmuls(fn)
    assert mm.choice == "triton"
    assert "tl.erf" in fn.source.split("def mm_fused")[1].split("def ")[0]  # the gelu is in the matmul kernel


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_linear_epilogues(monkeypatch, dtype):
    monkeypatch.setenv("FRAMEJIT_TRITON_MM", "1")
    x, w, b = _inputs(dtype)
    x3 = x.reshape(2, 12, 40)
    wt = w.t().contiguous()  # F.linear's (out, in) weight: the kernel reads it transposed
    r = torch.randn(2, 12, 48).to(dtype)
    for fn, args in [(mlp_in, (x3, wt, b)), (act_residual, (x3, wt, b, r)), (silu_tanh, (x, w))]:
        compiled = check_fn(fn, *args, tol=TOL[dtype])
        assert all(m.choice == "triton" for m in _matmuls(compiled)) and _matmuls(compiled), fn.__name__


def test_not_fused_where_the_product_is_needed_elsewhere(monkeypatch):
    monkeypatch.setenv("FRAMEJIT_TRITON_MM", "1")
    x, w, b = _inputs(torch.float32)
    fn = check_fn(lambda x, w, b: (torch.relu(x @ w + b), x @ w + b), x, w, b)  # the product is returned
    assert not _matmuls(fn)
    fn = check_fn(lambda x, w: torch.softmax(x @ w, -1), x, w)  # a row reduction: not a tile epilogue
    assert not _matmuls(fn)


def test_autotune_chooses_and_remembers(monkeypatch):
    monkeypatch.delenv("FRAMEJIT_TRITON_MM", raising=False)
    args = _inputs(torch.bfloat16)
    fn = check_fn(gelu_linear, *args, tol=TOL[torch.bfloat16], autotune=True)
    (mm,) = _matmuls(fn)
    assert mm.choice in ("triton", "library") and mm.tune_key is None
    again = check_fn(gelu_linear, *args, tol=TOL[torch.bfloat16], autotune=True)
    (mm2,) = _matmuls(again)
    assert (mm2.choice, mm2.config) == (mm.choice, mm.config)  # read back from the cache dir, not re-timed

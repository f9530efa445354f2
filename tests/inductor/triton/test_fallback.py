"""Per-kernel fallback in the Triton backend (inductor/triton/fallback.py): a kernel the code generator cannot
express runs its op in torch inside the generated module, and every other kernel is still generated; a fused
kernel that fails because of what it fused is split instead, with nothing left to torch. The gaps are real ones
of today's code generator (an argmax too long for one program with no whole chunks, a reduction read through a permute in its own
epilogue, complex values, an op with no lowering) or, for integer pow (generated since issue 20), the code
generator's former rule put back by the `no_integer_pow` fixture; FRAMEJIT_TRITON_FALLBACK, the documented hook,
sends a named op to torch. Every result is compared with eager."""
import logging

import pytest
import torch

from tests.inductor.triton.support import DEVICE, assert_same, check_fn, on_device

import jit
from framejit.inductor.backends import triton_backend

aten = torch.ops.aten


def _kernels(fn) -> int:
    return fn.source.count("\n@triton.jit\n")


def _fallbacks(fn) -> list:
    """The `# torch fallback: <op> (<reason>)` comments of the generated `call`, in order."""
    return [line.strip()[len("# torch fallback: "):] for line in fn.source.splitlines()
            if line.strip().startswith("# torch fallback: ")]


@pytest.fixture
def no_integer_pow(monkeypatch):
    """The Triton code generator as it was before issue 20: integer pow (but by 1, 2 or 3) rejected, a gap for
    the per-kernel fallback to handle."""
    from framejit.inductor.ir import Const
    from framejit.inductor.triton import codegen
    real = codegen.emit_op

    def emit_op(w, e, *args):
        small = isinstance(e.args[-1], Const) and e.args[-1].value in (1, 2, 3)
        if e.name == "pow" and not e.compute_dtype.is_floating_point and not small:
            raise NotImplementedError("integer pow with a tensor or large exponent")
        return real(w, e, *args)
    monkeypatch.setattr(codegen, "emit_op", emit_op)


@pytest.fixture
def triton_log(caplog):
    caplog.set_level(logging.INFO, logger="jit.inductor.triton")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "jit.inductor.triton"]


def test_fallback_for_unsupported_rule(triton_log, no_integer_pow):
    """Integer pow by 5 has no Triton rule: pow runs in torch, x + 1 before it and * 2 + 3 after it are kernels."""
    x = torch.randint(-3, 4, (4, 8))
    fn = check_fn(lambda x: ((x + 1) ** 5) * 2 + 3, x)
    assert _fallbacks(fn) == ["aten.pow.Tensor_Scalar (integer pow with a tensor or large exponent)"]
    assert "torch.ops.aten.pow.Tensor_Scalar(add_tensor, 5)" in fn.source  # spelled as a torch call
    assert _kernels(fn) == 2 and "def pw_add(" in fn.source and "def pw_fused_mul_add(" in fn.source
    assert "aten.pow.Tensor_Scalar (node pow_tensor_scalar) runs in torch: integer pow" in "\n".join(triton_log())
    assert "Triton graph: torch fallback aten.pow.Tensor_Scalar (integer pow" in "\n".join(triton_log())


def test_integer_pow_by_a_tensor(no_integer_pow):
    x, y = torch.randint(-3, 4, (4, 8)), torch.randint(0, 4, (4, 8))
    fn = check_fn(lambda x, y: ((x + 1) ** y.abs()).sum(-1) - x.sum(-1), x, y)
    assert [f.split(" ")[0] for f in _fallbacks(fn)] == ["aten.pow.Tensor_Tensor"]
    assert _kernels(fn) >= 2


def test_fusion_split_instead_of_fallback(triton_log):
    """x / x.sum(1, keepdim=True).T: the fusion plan puts the sum in the division's kernel, whose rows would then
    depend on the column index. Split into two kernels: nothing runs in torch."""
    x = torch.randn(8, 8)
    fn = check_fn(lambda x: x / x.sum(1, keepdim=True).permute(1, 0), x)
    assert _fallbacks(fn) == [] and _kernels(fn) == 2
    assert any("cannot be generated (a reduction whose rows depend on the column index): lowered again one node "
               "per kernel" in m for m in triton_log())


def test_culprit_fused_with_others_is_split_out(no_integer_pow):
    """A failing kernel fusing a chain: the culprit alone runs in torch, the nodes around it fuse again."""
    x = torch.randint(-3, 4, (6, 8))
    fn = check_fn(lambda x: (((x * 3 + 1) ** 7) - 2).sum(-1) * 2, x)
    assert [f.split(" ")[0] for f in _fallbacks(fn)] == ["aten.pow.Tensor_Scalar"]
    assert _kernels(fn) == 2 and "def pw_fused_mul_add(" in fn.source and "def red_fused_sub_sum_mul(" in fn.source


def test_reduction_too_long_for_one_program():
    """An argmax over 65537 elements (a prime: no whole chunks) cannot be split: it runs in torch, x * 2 and the
    + 1 stay."""
    x = torch.randn((1 << 16) + 1)
    fn = check_fn(lambda x: (x * 2).argmax() + 1, x)
    assert _fallbacks(fn) == ["aten.argmax.default (a reduction of 65537 elements into 1 output(s) cannot be split "
                              "and would run serially in one program per output)"]
    assert _kernels(fn) == 2


def test_graph_whose_every_kernel_falls_back_runs_as_captured(triton_log):
    fn = triton_backend(torch.fx.symbolic_trace(lambda x: x.argmax()), [on_device(torch.randn((1 << 16) + 1))])
    assert not hasattr(fn, "source")
    assert any("every op runs in torch (aten.argmax.default" in m for m in triton_log())


def test_complex_values_run_in_torch():
    """Complex inputs no longer send the whole graph to torch: only the ops on complex values run there."""
    x, f = torch.randn(4, 8), torch.polar(torch.ones(4, 4), torch.randn(4, 4))
    fn = check_fn(lambda x, f: (torch.view_as_real(torch.view_as_complex(x.exp().reshape(4, 4, 2)) * f)
                                .reshape(4, 8) + 1).sigmoid(), x, f)
    assert _fallbacks(fn) == ["torch.view_as_complex (dtype complex64 not supported)",
                              "aten.mul.Tensor (dtype complex64 not supported)",
                              "torch.view_as_real (dtype complex64 not supported)"]
    assert _kernels(fn) == 2 and "def pw_exp(" in fn.source and "def pw_fused_add_sigmoid(" in fn.source


def test_op_without_lowering_is_named():
    x = torch.randn(4, 6)
    fn = check_fn(lambda x: (x.exp() + 1).logcumsumexp(-1) * 2, x)
    assert _fallbacks(fn) == ["torch.Tensor.logcumsumexp (no lowering)"]  # a method call, as torch.fx traced it
    assert "torch.Tensor.logcumsumexp(add_tensor, -1)" in fn.source and _kernels(fn) == 2


def test_hook_forces_an_op_into_torch(monkeypatch):
    monkeypatch.setenv("FRAMEJIT_TRITON_FALLBACK", "aten.exp")
    fn = check_fn(lambda x: (x * 2).exp().sum(-1) + 1, torch.randn(4, 6))
    assert _fallbacks(fn) == ["aten.exp.default (FRAMEJIT_TRITON_FALLBACK names it)"]
    assert _kernels(fn) == 2


# ---- GPT-like graphs with one unsupported op in the middle -------------------------------------------------------
def _compile_capturing(model):
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(triton_backend(gm, example_inputs))
        return graphs[-1]
    backend.dynamic_sizes = True
    return jit.compile(model, backend=backend), graphs


def test_rotary_block_generates_kernels_around_complex_ops(fresh_jit):
    """Rotary embeddings as complex numbers (benchmarks/models/rotary.py): the complex ops of q and k run in
    torch, both layer norms, the first residual sum and the matmul epilogues stay generated; the last residual
    sum is added by its matmul in place (triton/residual.py)."""
    from benchmarks.models.rotary import RotaryBlock, rotary_freqs
    torch.manual_seed(0)
    model = RotaryBlock(n_head=2, head_dim=8).to(DEVICE).eval()
    x, freqs = on_device(torch.randn(2, 8, 16)), rotary_freqs(8, 8, device=DEVICE)
    compiled, graphs = _compile_capturing(model)
    with torch.no_grad():
        assert_same(compiled(x, freqs), model(x, freqs), (1e-4, 1e-4))
    assert len(graphs) == 1 and hasattr(graphs[0], "source"), "the graph ran in torch"
    fn = graphs[0]
    assert [f.split(" ")[0] for f in _fallbacks(fn)] == ["torch.view_as_complex", "aten.mul.Tensor",
                                                          "torch.view_as_real"] * 2
    assert "def red_fused_sum_div_sub_mul(" in fn.source and "def red_fused_add_sum_div_sub(" in fn.source
    assert _kernels(fn) - fn.source.count("\n@triton.jit\ndef mm_") >= 3 and ".addmm_(" in fn.source


def test_gpt_with_one_op_in_torch(fresh_jit, monkeypatch):
    """The repository's GPT with its MLP's erf (inside gelu, fused into the c_fc epilogue) sent to torch: the
    kernels before and after it are still generated, and the answer is eager's."""
    from benchmarks.models.gpt import GPT, GPTConfig
    monkeypatch.setenv("FRAMEJIT_TRITON_FALLBACK", "aten.erf")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=32)).to(DEVICE).eval()
    idx = on_device(torch.randint(0, 64, (2, 8)))
    compiled, graphs = _compile_capturing(model)
    with torch.no_grad():
        assert_same(compiled(idx), model(idx), (2e-2, 2e-2))
    fn = next(g for g in graphs if hasattr(g, "source"))
    # (the embedding's index check runs in torch too: graph/index_checks.py)
    assert [f for f in _fallbacks(fn) if not f.startswith("framejit.check_index")] == [
        "aten.erf.default (FRAMEJIT_TRITON_FALLBACK names it)"]
    call = fn.source.split("def call(")[1]
    before, after = call.split("# torch fallback: aten.erf.default")
    assert "launch[" in before and "launch[" in after  # generated kernels on both sides of the torch call
    assert _kernels(fn) >= 5


def test_fallback_with_dynamic_sizes(fresh_jit, monkeypatch):
    """A torch fallback's size arguments are the call's own sizes (`s0 * 4`), not the first call's."""
    monkeypatch.setenv("FRAMEJIT_TRITON_FALLBACK", "aten.view")
    fn = lambda x: ((x + 1).view(-1) * 2).cumsum(0)
    compiled, graphs = _compile_capturing(fn)
    for n in (6, 9, 12):
        x = on_device(torch.randn(n, 4))
        jit.mark_dynamic(x, 0)
        assert_same(compiled(x), fn(x))
    assert len(graphs) == 1
    source = graphs[0].variants[0].fn.source
    assert "torch.ops.aten.view.default(add_tensor, [s0 * 4])" in source


def test_tuple_fallback_read_by_a_later_kernel(monkeypatch):
    """A fallback returning a tuple (sort: values, indices) between generated kernels: each item is taken from
    the tuple after its call is written (the items were once all written at the first kernel, before the call)."""
    monkeypatch.setenv("FRAMEJIT_TRITON_FALLBACK", "aten.sort")
    x = torch.randn(4, 8)
    fn = check_fn(lambda x: (lambda s: (s[0] * 2 + 1, s[1] + 1))(torch.sort((x * 3).exp(), -1)), x)
    assert any("sort" in f.split(" ")[0] for f in _fallbacks(fn)), _fallbacks(fn)

"""graph/attention.py: naive causal attention rewritten into SDPA, checked against eager on the CPU, and the near
misses that must stay as they are."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from framejit.graph.attention import causal_attention, rewrite_causal_attention
from framejit.graph.passes import optimize

aten = torch.ops.aten
TOL = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (2e-2, 2e-2)}


def _rewritten(fn, args):
    gm = torch.fx.symbolic_trace(fn)
    optimize(gm, list(args))
    return gm, rewrite_causal_attention(gm, list(args))


def check(fn, args, expect, dtype=torch.float32):
    gm, count = _rewritten(fn, args)
    assert count == expect, gm.graph
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(gm(*args), fn(*args), rtol=rtol, atol=atol, equal_nan=True)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    if expect:
        assert aten.bmm.default not in targets and aten.exp.default not in targets, gm.graph
    return gm


def qkv(*shape, dtype=torch.float32):
    torch.manual_seed(0)
    return [torch.randn(*shape).to(dtype) for _ in range(3)]


def tril(n, m=None, **kw):
    return torch.tril(torch.ones(n, n if m is None else m, dtype=torch.bool), **kw)


# ---- rewritten -------------------------------------------------------------------------------------------------
def masked_fill_keep(q, k, v, mask):
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
    att = att.masked_fill(~mask, float("-inf"))
    return torch.softmax(att, dim=-1) @ v


def where_div_in_graph_mask(q, k, v):
    att = (q @ k.transpose(-2, -1)) / 4.0
    mask = torch.tril(torch.ones(8, 8, dtype=torch.bool, device=q.device))
    return F.softmax(torch.where(mask, att, float("-inf")), dim=-1) @ v


def mask_then_scale(q, k, v, mask):
    att = (q @ k.mT).masked_fill(~mask, float("-inf")) * 0.25
    return att.softmax(-1) @ v


def additive(q, k, v, bias):
    return torch.softmax(q @ k.transpose(-1, -2) * 0.25 + bias, dim=-1) @ v


def unscaled_masked_drop(q, k, v, upper):
    return torch.softmax((q @ k.transpose(-2, -1)).masked_fill(upper, float("-inf")), -1) @ v


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_masked_fill_with_input_mask(dtype):
    args = qkv(2, 3, 8, 16, dtype=dtype) + [tril(8)]
    gm = check(masked_fill_keep, args, 1, dtype)
    assert any(n.target is causal_attention for n in gm.graph.nodes)  # checked again at run time


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mask_built_in_the_graph_becomes_plain_sdpa(dtype):
    gm = check(where_div_in_graph_mask, qkv(2, 3, 8, 16, dtype=dtype), 1, dtype)
    sdpa = [n for n in gm.graph.nodes if n.target == aten.scaled_dot_product_attention.default]
    assert len(sdpa) == 1 and sdpa[0].args[5] is True and sdpa[0].kwargs["scale"] == 0.25


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_other_spellings(dtype):
    x = qkv(2, 3, 8, 16, dtype=dtype)
    check(mask_then_scale, x + [tril(8)], 1, dtype)
    bias = torch.zeros(8, 8).masked_fill(~tril(8), float("-inf")).to(dtype)
    check(additive, x + [bias], 1, dtype)
    check(unscaled_masked_drop, x + [~tril(8)], 1, dtype)
    check(masked_fill_keep, qkv(3, 8, 16, dtype=dtype) + [tril(8)], 1, dtype)  # 3-D: no head dim


def test_query_shorter_than_keys_top_left():
    q, k, v = torch.randn(2, 4, 16), torch.randn(2, 8, 16), torch.randn(2, 8, 16)
    check(masked_fill_keep, [q, k, v, tril(4, 8)], 1)              # SDPA's is_causal: tril(ones(L, S))
    check(masked_fill_keep, [q, k, v, tril(4, 8, diagonal=4)], 0)  # bottom-right alignment: not that


class NanoAttention(nn.Module):
    """nanoGPT's spelling: a float `bias` buffer, sliced, compared with 0."""

    def __init__(self):
        super().__init__()
        self.register_buffer("bias", torch.tril(torch.ones(16, 16)).view(1, 1, 16, 16))

    def forward(self, q, k, v):
        T = q.size(-2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.dropout(F.softmax(att, dim=-1), 0.1, training=False)
        return att @ v


def test_sliced_buffer_mask_through_jit_is_checked_at_run_time():
    """Captured by the bytecode frontend (the buffer is a graph input there), rewritten, run against eager."""
    import jit
    graphs = []

    def backend(gm, example_inputs):
        optimize(gm, example_inputs)
        graphs.append((gm, rewrite_causal_attention(gm, example_inputs)))
        return gm
    model = NanoAttention()
    args = qkv(2, 3, 8, 16)
    with torch.no_grad():
        fast = jit.compile(model, backend=backend)
        torch.testing.assert_close(fast(*args), model(*args), rtol=1e-5, atol=1e-5)
        assert [count for _, count in graphs] == [1]
        assert any(n.target is causal_attention for n in graphs[0][0].graph.nodes)
        model.bias[0, 0, 2, 5] = 1.0  # in place: the buffer is no longer causal, the original formula runs
        torch.testing.assert_close(fast(*args), model(*args), rtol=1e-5, atol=1e-5)


def test_run_time_mask_that_stops_being_causal():
    args = qkv(2, 3, 8, 16)
    mask = tril(8)
    gm = check(masked_fill_keep, args + [mask], 1)
    other = torch.rand(8, 8) > 0.3
    other[:, 0] = True
    torch.testing.assert_close(gm(*args, other), masked_fill_keep(*args, other))
    mask[1, 4] = True  # the same tensor, written in place
    torch.testing.assert_close(gm(*args, mask), masked_fill_keep(*args, mask))
    torch.testing.assert_close(gm(*args, tril(8)), masked_fill_keep(*args, tril(8)))


# ---- near misses: left alone -------------------------------------------------------------------------------------
def fill_finfo_min(q, k, v, mask):
    att = (q @ k.transpose(-2, -1)).masked_fill(~mask, torch.finfo(torch.float32).min)
    return torch.softmax(att, dim=-1) @ v


def softmax_other_dim(q, k, v, mask):
    return torch.softmax((q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")), dim=-2) @ v


def probabilities_returned(q, k, v, mask):
    p = torch.softmax((q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")), dim=-1)
    return p @ v, p


def negative_scale(q, k, v, mask):
    return torch.softmax((q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")) * -0.5, dim=-1) @ v


def mask_from_input(q, k, v, pos):
    mask = pos[:, None] >= pos[None, :]
    return torch.softmax((q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")), dim=-1) @ v


def upcast_softmax(q, k, v, mask):
    att = (q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf"))
    return torch.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype) @ v


def added_constant(q, k, v, mask):
    att = (q @ k.transpose(-2, -1) + 1.0).masked_fill(~mask, float("-inf"))
    return torch.softmax(att, dim=-1) @ v


def training_dropout(q, k, v, mask):
    att = torch.softmax((q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf")), dim=-1)
    return F.dropout(att, 0.5, training=True) @ v


@pytest.mark.parametrize("fn", [fill_finfo_min, softmax_other_dim, probabilities_returned, negative_scale,
                                added_constant])
def test_near_misses_are_not_rewritten(fn):
    check(fn, qkv(2, 3, 8, 16) + [tril(8)], 0)


def test_masks_that_are_not_causal_are_not_rewritten():
    x = qkv(2, 3, 8, 16)
    check(masked_fill_keep, x + [tril(8, diagonal=-1)], 0)   # row 0 fully masked: NaN in eager
    check(masked_fill_keep, x + [tril(8).T.contiguous()], 0)   # anti-causal
    check(masked_fill_keep, x + [torch.ones(8, 8, dtype=torch.bool)], 0)
    bias = torch.zeros(8, 8).masked_fill(~tril(8), -1e9)       # additive, but not -inf
    check(additive, x + [bias], 0)
    check(mask_from_input, x + [torch.arange(8)], 0)           # computed from an input: not checkable cheaply


def test_upcast_softmax_is_the_half_softmax():
    # eager computes a bf16 softmax in float32 and rounds once: softmax(x, dtype=float32).to(bf16) is the same
    # function, and the decomposition spells both alike (graph.decompositions' _opmath)
    check(upcast_softmax, qkv(2, 3, 8, 16, dtype=torch.bfloat16) + [tril(8)], 1, torch.bfloat16)


def test_training_dropout_is_not_rewritten():
    gm, count = _rewritten(training_dropout, qkv(2, 3, 8, 16) + [tril(8)])
    assert count == 0


def _sdpa_with_mask(make_mask):
    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=make_mask(6))
    return fn


def _hf_padding_mask(t):  # transformers' sdpa_mask under a compiler: every position valid, spelled with aranges
    return (torch.arange(t) + 0)[None, None, :, None].__ge__(0).expand(2, -1, t, t)


def _hf_causal_mask(t):
    pos = torch.arange(t)
    return (pos[None, :] <= pos[:, None])[None, None]


def _additive_causal(t):
    return torch.zeros(t, t).masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))


@pytest.mark.parametrize("make_mask, dropped, causal", [
    (_hf_padding_mask, True, False), (_hf_causal_mask, True, True), (_additive_causal, True, True),
    (lambda t: torch.ones(t, t, dtype=torch.bool).triu(), False, False),  # not causal: kept
    (lambda t: torch.zeros(t, t).fill_diagonal_(0.5), False, False),  # not 0 / -inf: kept
], ids=["all-true", "causal", "additive-causal", "upper", "weights"])
def test_constant_sdpa_mask_dropped_when_it_keeps_all_or_the_triangle(make_mask, dropped, causal):
    from framejit.graph.attention import drop_constant_sdpa_masks
    q, k, v = qkv(2, 3, 6, 4)
    fn = _sdpa_with_mask(make_mask)
    gm = torch.fx.symbolic_trace(fn)
    optimize(gm, [q, k, v])
    assert drop_constant_sdpa_masks(gm, [q, k, v]) == int(dropped)
    sdpa = [n for n in gm.graph.nodes if n.target is aten.scaled_dot_product_attention.default]
    assert len(sdpa) == 1 and (sdpa[0].args[3] is None) == dropped
    assert bool(sdpa[0].args[5] if len(sdpa[0].args) > 5 else False) == causal
    torch.testing.assert_close(gm(q, k, v), fn(q, k, v))


def test_sdpa_mask_read_from_an_input_is_kept():
    from framejit.graph.attention import drop_constant_sdpa_masks
    q, k, v = qkv(2, 3, 6, 4)
    mask = torch.ones(6, 6, dtype=torch.bool)  # all True now, but the caller may pass another next time

    def fn(q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    gm = torch.fx.symbolic_trace(fn)
    optimize(gm, [q, k, v, mask])
    assert drop_constant_sdpa_masks(gm, [q, k, v, mask]) == 0

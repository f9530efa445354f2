"""Each decomposition rule, traced, normalized and run against eager torch on random inputs (fp32 and fp64)."""

import operator

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F

from framejit.graph.core_ops import is_core
from framejit.graph.normalize import normalize

# (name, function, input shapes). Each must normalize to core ops only.
CASES = [
    ("softmax", lambda x: F.softmax(x, dim=-1), [(3, 7)]),
    ("softmax_method", lambda x: x.softmax(1), [(3, 7)]),
    ("softmax_dtype", lambda x: torch.softmax(x, 0, dtype=torch.float64), [(3, 7)]),
    ("log_softmax", lambda x: F.log_softmax(x, dim=1), [(4, 5)]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (6,), w, b, 1e-5), [(2, 3, 6), (6,), (6,)]),
    ("layer_norm_2d", lambda x: F.layer_norm(x, (3, 6)), [(2, 3, 6)]),
    ("rms_norm", lambda x, w: F.rms_norm(x, (6,), w), [(2, 3, 6), (6,)]),
    ("rms_norm_eps", lambda x: F.rms_norm(x, [6], eps=1e-3), [(4, 6)]),
    ("gelu", lambda x: F.gelu(x), [(5, 8)]),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [(5, 8)]),
    ("silu", lambda x: F.silu(x), [(5, 8)]),
    ("relu", lambda x: F.relu(x), [(5, 8)]),
    ("relu_method", lambda x: x.relu(), [(5, 8)]),
    ("linear", lambda x, w, b: F.linear(x, w, b), [(4, 6), (3, 6), (3,)]),
    ("linear_3d_nobias", lambda x, w: F.linear(x, w), [(2, 4, 6), (3, 6)]),
    ("dropout_eval", lambda x: F.dropout(x, 0.3, training=False) * 2, [(4, 4)]),
    ("mean", lambda x: x.mean(), [(3, 4)]),
    ("mean_dim", lambda x: torch.mean(x, dim=(0, 2), keepdim=True), [(3, 4, 5)]),
    ("var", lambda x: x.var(dim=1), [(3, 6)]),
    ("var_biased", lambda x: torch.var(x, 0, unbiased=False), [(5, 3)]),
    ("var_correction", lambda x: x.var(dim=-1, correction=2, keepdim=True), [(3, 6)]),
    ("std", lambda x: x.std(), [(3, 6)]),
    ("matmul_2d", lambda a, b: a @ b, [(3, 4), (4, 5)]),
    ("matmul_3d_2d", lambda a, b: torch.matmul(a, b), [(2, 3, 4), (4, 5)]),
    ("matmul_batched", lambda a, b: a.matmul(b), [(2, 1, 3, 4), (3, 4, 5)]),
    ("matmul_vec", lambda a, b: a @ b, [(3, 4), (4,)]),
    ("matmul_vec_left", lambda a, b: a @ b, [(4,), (2, 4, 5)]),
    ("matmul_dot", lambda a, b: a @ b, [(4,), (4,)]),
    ("bmm", lambda a, b: torch.bmm(a, b), [(2, 3, 4), (2, 4, 5)]),
    ("transpose", lambda x: x.transpose(0, 2) + 1, [(2, 3, 4)]),
    ("t", lambda x: x.t() * 2, [(3, 4)]),
    ("reshape_contig", lambda x: x.reshape(4, -1), [(2, 3, 4)]),
    ("reshape_noncontig", lambda x: x.transpose(0, 1).reshape(-1), [(2, 3, 4)]),
    ("view_tuple", lambda x: x.view((6, 4)), [(2, 3, 4)]),
    ("flatten", lambda x: torch.flatten(x, 1), [(2, 3, 4)]),
    ("clamp", lambda x: x.clamp(-0.5, 0.5), [(4, 5)]),
    ("clamp_min", lambda x: torch.clamp(x, min=0.1), [(4, 5)]),
    ("add_alpha", lambda x, y: torch.add(x, y, alpha=2.5), [(3, 4), (3, 4)]),
    ("sub_alpha", lambda x, y: x.sub(y, alpha=3), [(3, 4), (4,)]),
    ("rsub", lambda x: 2.0 - x, [(3, 4)]),
    ("rdiv", lambda x: 2.0 / x, [(3, 4)]),
    ("rmul_radd", lambda x: 3 * x + 1, [(3, 4)]),
    ("compare_scalar", lambda x: torch.where(x > 0.1, x, 0.0), [(3, 4)]),
    ("compare_swapped", lambda x: (0.1 < x).float(), [(3, 4)]),
    ("maximum", lambda x, y: torch.maximum(x, y), [(3, 4), (4,)]),
    ("pow", lambda x: x.abs() ** 1.5, [(3, 4)]),
    ("floordiv", lambda x: x // 0.3, [(3, 4)]),
    ("sum_all", lambda x: x.sum(), [(3, 4)]),
    ("sum_dim", lambda x: x.sum(-1, keepdim=True), [(3, 4)]),
    ("amax", lambda x: torch.amax(x, 1), [(3, 4)]),
    ("argmax", lambda x: x.argmax(dim=1), [(3, 4)]),
    ("getitem", lambda x: x[1:, None, ..., ::2], [(3, 4, 6)]),
    ("getitem_int", lambda x: x[:, 1], [(3, 4, 6)]),
    ("getitem_neg", lambda x: x[-1, -3:], [(3, 4, 6)]),
    ("getitem_out_of_range", lambda x: x[1:100, 5:2, -100:-1:3], [(3, 4, 6)]),
    ("unbind", lambda x: x.unbind(-1)[2] - x.unbind(-1)[0], [(3, 4)]),
    ("argmax_flat", lambda x: x.argmax(), [(3, 4)]),
    ("max_all", lambda x: x.max() + torch.min(x), [(3, 4)]),
    ("max_dim", lambda x: x.max(dim=1)[0] * x.min(-1, keepdim=True)[1].squeeze(-1), [(3, 4)]),
    ("max_pair", lambda x, y: torch.max(x, y), [(3, 4), (3, 4)]),
    ("any_all", lambda x: (x > 0).any(dim=1).float() + (x > -3).all().float(), [(3, 4)]),
    ("prod", lambda x: x.prod(1) + x.prod(), [(3, 4)]),
    ("square", lambda x: torch.square(x), [(3, 4)]),
    ("masked_fill_causal", lambda x: x.masked_fill(torch.ones(4, 4).tril() == 0, float("-inf")).softmax(-1),
     [(2, 4, 4)]),
    ("unsqueeze_squeeze", lambda x: x.unsqueeze(-1).squeeze(), [(3, 1, 4)]),
    ("permute", lambda x: x.permute(2, 0, 1).contiguous(), [(2, 3, 4)]),
    ("expand", lambda x: x.expand(3, -1, 4), [(1, 2, 1)]),
    ("cat", lambda x, y: torch.cat([x, y], dim=1), [(2, 3), (2, 5)]),
    ("split", lambda x: x.split(2, dim=1)[1] * x.split(2, dim=1)[2], [(3, 6)]),
    ("chunk", lambda x: x.chunk(3, -1)[0] + 1, [(3, 6)]),
    ("to_dtype", lambda x: x.to(torch.float16).double(), [(3, 4)]),
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [(1, 2, 4, 8)] * 3),
    ("shape_math", lambda x: x.view(x.size(0) * x.shape[1], -1), [(2, 3, 4)]),
    ("unary_chain", lambda x: torch.exp(-x).sqrt().log1p().tanh().sigmoid(), [(3, 4)]),
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [(1, 2, 6, 6), (3, 2, 3, 3), (3,)]),
    ("conv1d_groups", lambda x, w: F.conv1d(x, w, groups=2), [(2, 4, 7), (4, 2, 3)]),
]

# Integer inputs: promotion, comparisons and bitwise ops must keep eager's dtypes exactly.
INT_CASES = [
    ("int_compare_where", lambda x, y: torch.where(x >= y, x, -1)),
    ("int_bitwise", lambda x, y: (x & y) | (x ^ 3) | ~y),
    ("int_floordiv_mod", lambda x, y: x // 3 + x % 4),
    ("int_sum", lambda x, y: x.sum(0) + y.sum()),
    ("int_true_div", lambda x, y: x / 2),
    ("int_float_scalar", lambda x, y: x * 0.5 + y),
    ("int_logical", lambda x, y: torch.logical_and(x > 0, y < 0) | torch.logical_not(x == y)),
    ("int_abs_neg_max", lambda x, y: torch.maximum(-x, y.abs())),
    ("int_argmin", lambda x, y: x.argmin(dim=1)),
]


@pytest.mark.parametrize("name,fn", INT_CASES, ids=[c[0] for c in INT_CASES])
def test_int_rule_matches_eager(name, fn):
    torch.manual_seed(0)
    x, y = torch.randint(-9, 9, (3, 4), dtype=torch.int32), torch.randint(-9, 9, (4,), dtype=torch.int32)
    expected = fn(x, y)
    gm = normalize(fx.symbolic_trace(fn), [x, y])
    actual = gm(x, y)
    assert actual.dtype == expected.dtype
    torch.testing.assert_close(actual, expected)
    assert all(is_core(n.target) for n in gm.graph.nodes if n.op in ("call_function", "call_method"))


def _run(fn, shapes, dtype):
    torch.manual_seed(0)
    inputs = [torch.randn(s, dtype=dtype) for s in shapes]
    expected = fn(*inputs)
    gm = normalize(fx.symbolic_trace(fn), inputs)
    return gm, gm(*inputs), expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("name,fn,shapes", CASES, ids=[c[0] for c in CASES])
def test_rule_matches_eager(name, fn, shapes, dtype):
    gm, actual, expected = _run(fn, shapes, dtype)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    tol = 1e-5 if expected.dtype in (torch.float32, torch.float16) else 1e-12
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)
    leftover = [n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method", "call_module")
                and not is_core(n.target)]
    assert not leftover, leftover


def test_training_dropout_stays_eager():
    gm = normalize(fx.symbolic_trace(lambda x: F.dropout(x, 0.5, training=True)), [torch.randn(4)])
    assert any(n.target is F.dropout for n in gm.graph.nodes)


def test_op_without_rule_is_left_alone():
    fn = lambda x: torch.logcumsumexp(x, 0) + 1
    x = torch.randn(5)
    gm = normalize(fx.symbolic_trace(fn), [x])
    assert any(n.target is torch.logcumsumexp for n in gm.graph.nodes)
    torch.testing.assert_close(gm(x), fn(x))


def test_int_clamp_with_float_bound_is_not_rewritten():
    fn = lambda x: x.clamp(min=0.5)
    x = torch.arange(6)
    gm = normalize(fx.symbolic_trace(fn), [x])
    assert gm(x).dtype == fn(x).dtype
    torch.testing.assert_close(gm(x), fn(x))


def test_int_scalar_promotion():
    fn = lambda x: (x * 2.5 + 1) / 2
    x = torch.arange(6, dtype=torch.int32)
    gm = normalize(fx.symbolic_trace(fn), [x])
    torch.testing.assert_close(gm(x), fn(x))
    assert all(is_core(n.target) for n in gm.graph.nodes if n.op == "call_function")


def test_advanced_indexing_by_one_tensor_is_checked_then_taken():
    # issue 20: x[i] is the bounds check and aten.index.Tensor; two index tensors stay eager's getitem
    fn = lambda x, i: x[i]
    x, i = torch.randn(5, 3), torch.tensor([0, -2])
    gm = normalize(fx.symbolic_trace(fn), [x, i])
    assert all(is_core(n.target) for n in gm.graph.nodes if n.op == "call_function")
    torch.testing.assert_close(gm(x, i), fn(x, i))
    two = lambda x, i: x[i, i]
    gm = normalize(fx.symbolic_trace(two), [x, i])
    assert any(n.target is operator.getitem for n in gm.graph.nodes)
    torch.testing.assert_close(gm(x, i), two(x, i))

"""Composite ops real models call (issue 20: losses, log-space and index reductions, moments over several dims,
scans), each as a small function with inputs, for both backends' tests (numpy/test_composite_ops.py,
triton/test_composite_ops.py): compiled must equal eager and no op may run in torch."""
import math

import pytest
import torch
import torch.nn.functional as F

INF = math.inf
aten = torch.ops.aten


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=_gen(seed)).to(dtype)


def targets(n, classes, seed=1, ignored=(), ignore_index=-100):
    t = torch.randint(0, classes, (n,) if isinstance(n, int) else n, generator=_gen(seed))
    for i in ignored:
        t.view(-1)[i] = ignore_index
    return t


def _inf_rows():
    x = randn(4, 6)
    x[1] = -INF  # a row of -inf: logsumexp is -inf, log_softmax nan
    x[2, 3] = INF
    return x


def _ties():
    """Rows with repeated maxima and minima (torch's tie rule: the first index), and a NaN (the max, and the min)."""
    x = torch.tensor([[1., 3., 3., 0., 0.], [2., 2., 2., 2., 2.], [5., -1., float("nan"), -1., 5.],
                      [0., -2., 7., -2., 7.]])
    return x


def _layer_norm_backward(g, x, shape, w, b, mask):
    stats = aten.native_layer_norm.default(x, shape, w, b, 1e-5)
    return aten.native_layer_norm_backward.default(g, x, shape, stats[1], stats[2], w, b, mask)


def _three(triple):
    return triple[0], triple[1], triple[2]


def _both(result):
    """values and indices of max / min over a dim, as a plain tuple (a graph output cannot be torch's named tuple)"""
    return result[0], result[1]


def _probs(*shape, seed=3):
    return torch.softmax(randn(*shape, seed=seed), 1)


def _norm_inputs():
    """x (N, C, H, W), running mean and variance, weight and bias for a normalization over C = 4 channels."""
    return [randn(3, 4, 5, 2), randn(4, seed=1) * 0.1, torch.rand(4, generator=_gen(2)) + 0.5, randn(4, seed=3),
            randn(4, seed=4)]


# (id, function, inputs); every case is compared with eager (values, dtype, shape)
CASES = [
    # logsumexp
    ("logsumexp", lambda x: torch.logsumexp(x, 1), lambda: [randn(5, 7)]),
    ("logsumexp_dims_keepdim", lambda x: torch.logsumexp(x, (0, 2), keepdim=True), lambda: [randn(3, 4, 5)]),
    ("logsumexp_method_neg_dim", lambda x: x.logsumexp(-1), lambda: [randn(2, 3, 6)]),
    ("logsumexp_inf_rows", lambda x: torch.logsumexp(x, 1), lambda: [_inf_rows()]),
    ("logsumexp_int", lambda x: torch.logsumexp(x, 0), lambda: [torch.arange(12).view(3, 4)]),
    ("logsumexp_bf16", lambda x: torch.logsumexp(x, -1), lambda: [randn(4, 9, dtype=torch.bfloat16)]),
    ("logsumexp_large", lambda x: torch.logsumexp(x * 100, 1), lambda: [randn(3, 8)]),
    # log_softmax
    ("log_softmax", lambda x: F.log_softmax(x, 1), lambda: [randn(4, 7)]),
    ("log_softmax_dim0", lambda x: torch.log_softmax(x, 0), lambda: [randn(4, 7)]),
    ("log_softmax_inf_rows", lambda x: F.log_softmax(x, -1), lambda: [_inf_rows()]),
    ("log_softmax_bf16_to_f32", lambda x: F.log_softmax(x, -1, dtype=torch.float32),
     lambda: [randn(3, 10, dtype=torch.bfloat16)]),
    ("log_softmax_f16", lambda x: x.log_softmax(1), lambda: [randn(3, 10, dtype=torch.float16)]),
    # cross_entropy with class indices
    ("cross_entropy", lambda x, t: F.cross_entropy(x, t), lambda: [randn(6, 10), targets(6, 10, ignored=[1])]),
    ("cross_entropy_sum", lambda x, t: F.cross_entropy(x, t, reduction="sum"),
     lambda: [randn(6, 10), targets(6, 10, ignored=[0, 5])]),
    ("cross_entropy_none", lambda x, t: F.cross_entropy(x, t, reduction="none"),
     lambda: [randn(6, 10), targets(6, 10, ignored=[2])]),
    ("cross_entropy_weight", lambda x, t, w: F.cross_entropy(x, t, weight=w),
     lambda: [randn(6, 10), targets(6, 10, ignored=[3]), torch.rand(10, generator=_gen(4))]),
    ("cross_entropy_weight_none", lambda x, t, w: F.cross_entropy(x, t, weight=w, reduction="none"),
     lambda: [randn(6, 10), targets(6, 10, ignored=[3]), torch.rand(10, generator=_gen(4))]),
    ("cross_entropy_smoothing", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
     lambda: [randn(6, 10), targets(6, 10, ignored=[1])]),
    ("cross_entropy_smoothing_sum", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.3, reduction="sum"),
     lambda: [randn(6, 10), targets(6, 10, ignored=[1])]),
    ("cross_entropy_smoothing_none", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.3, reduction="none"),
     lambda: [randn(6, 10), targets(6, 10, ignored=[1])]),
    ("cross_entropy_weight_smoothing", lambda x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.2),
     lambda: [randn(6, 10), targets(6, 10, ignored=[4]), torch.rand(10, generator=_gen(4))]),
    ("cross_entropy_ignore_index_0", lambda x, t: F.cross_entropy(x, t, ignore_index=0),
     lambda: [randn(8, 5), targets(8, 5)]),
    ("cross_entropy_all_ignored", lambda x, t: F.cross_entropy(x, t),
     lambda: [randn(3, 5), targets(3, 5, ignored=[0, 1, 2])]),
    ("cross_entropy_spatial", lambda x, t: F.cross_entropy(x, t),
     lambda: [randn(2, 5, 3, 4), targets((2, 3, 4), 5, ignored=[0, 7])]),
    ("cross_entropy_spatial_none", lambda x, t, w: F.cross_entropy(x, t, weight=w, reduction="none"),
     lambda: [randn(2, 5, 3), targets((2, 3), 5, ignored=[1]), torch.rand(5, generator=_gen(4))]),
    ("cross_entropy_1d", lambda x, t: F.cross_entropy(x, t), lambda: [randn(7), torch.tensor(3)]),
    ("cross_entropy_lm_head", lambda h, w, t: F.cross_entropy((h @ w.t()).view(-1, 11), t.view(-1)),
     lambda: [randn(2, 3, 8), randn(11, 8, seed=1), targets((2, 3), 11, ignored=[5])]),
    ("cross_entropy_bf16", lambda x, t: F.cross_entropy(x, t),
     lambda: [randn(6, 10, dtype=torch.bfloat16), targets(6, 10, ignored=[1])]),
    ("cross_entropy_f16_none", lambda x, t: F.cross_entropy(x, t, reduction="none", label_smoothing=0.1),
     lambda: [randn(6, 10, dtype=torch.float16), targets(6, 10, ignored=[1])]),
    # cross_entropy with class probabilities
    ("cross_entropy_probs", lambda x, p: F.cross_entropy(x, p), lambda: [randn(5, 6), _probs(5, 6)]),
    ("cross_entropy_probs_none_smoothing", lambda x, p: F.cross_entropy(x, p, reduction="none", label_smoothing=0.2),
     lambda: [randn(5, 6), _probs(5, 6)]),
    ("cross_entropy_probs_weight_sum", lambda x, p, w: F.cross_entropy(x, p, weight=w, reduction="sum"),
     lambda: [randn(5, 6, 2), _probs(5, 6, 2), torch.rand(6, generator=_gen(4))]),
    # nll_loss
    ("nll_loss", lambda x, t: F.nll_loss(F.log_softmax(x, 1), t), lambda: [randn(6, 9), targets(6, 9, ignored=[2])]),
    ("nll_loss_raw_sum", lambda x, t: F.nll_loss(x, t, reduction="sum"),
     lambda: [randn(6, 9), targets(6, 9, ignored=[2])]),
    ("nll_loss_weight_none", lambda x, t, w: F.nll_loss(x, t, weight=w, reduction="none", ignore_index=2),
     lambda: [randn(6, 9), targets(6, 9), torch.rand(9, generator=_gen(4))]),
    ("nll_loss_weight_mean_spatial", lambda x, t, w: F.nll_loss(x, t, weight=w),
     lambda: [randn(2, 4, 5), targets((2, 5), 4, ignored=[3]), torch.rand(4, generator=_gen(4))]),
    ("nll_loss_bf16", lambda x, t: F.nll_loss(x, t), lambda: [randn(6, 9, dtype=torch.bfloat16), targets(6, 9)]),
    # the aten spellings (CUDA autocast replays cross_entropy as these)
    ("aten_log_softmax_nll_loss_forward",
     lambda x, t: aten.nll_loss_forward.default(aten._log_softmax.default(x, 1, False), t, None, 1, -100)[0],
     lambda: [randn(6, 9), targets(6, 9, ignored=[2])]),
    ("aten_nll_loss_forward_weight_sum", lambda x, t, w: _both(aten.nll_loss_forward.default(x, t, w, 2, -100)),
     lambda: [randn(6, 9), targets(6, 9, ignored=[2]), torch.rand(9, generator=_gen(4))]),
    ("aten_nll_loss_forward_none", lambda x, t, w: _both(aten.nll_loss_forward.default(x, t, w, 0, 1)),
     lambda: [randn(6, 9), targets(6, 9), torch.rand(9, generator=_gen(4))]),
    ("aten_nll_loss2d_forward", lambda x, t: aten.nll_loss2d_forward.default(x, t, None, 1, -100)[0],
     lambda: [randn(2, 5, 3, 2), targets((2, 3, 2), 5, ignored=[0])]),
    ("aten_log_softmax_bf16", lambda x: aten._log_softmax.default(x, 0, False),
     lambda: [randn(4, 5, dtype=torch.bfloat16)]),
    ("aten_logsumexp", lambda x: aten.logsumexp.default(x, [1], True), lambda: [_inf_rows()]),
    # max / min / argmax / argmin over a dim: values and indices, the first index on ties
    ("max_dim", lambda x: _both(torch.max(x, 1)), lambda: [_ties()]),
    ("min_dim_keepdim", lambda x: _both(torch.min(x, 1, keepdim=True)), lambda: [_ties()]),
    ("max_dim0_method", lambda x: _both(x.max(0)), lambda: [_ties()]),
    ("argmax_ties", lambda x: torch.argmax(x, 1), lambda: [_ties()]),
    ("argmin_ties_keepdim", lambda x: torch.argmin(x, -1, keepdim=True), lambda: [_ties()]),
    ("argmax_flat", lambda x: x.argmax(), lambda: [_ties()]),
    ("max_int", lambda x: _both(torch.max(x, 1)), lambda: [torch.tensor([[3, 1, 3], [0, 4, 4]], dtype=torch.int32)]),
    ("max_values_fused", lambda x: torch.max(x * 2 + 1, dim=1).values - x.mean(1), lambda: [randn(4, 6)]),
    # mean / var / std over several dims
    ("mean_dims", lambda x: x.mean((0, 2)), lambda: [randn(3, 4, 5)]),
    ("mean_dims_keepdim_bf16", lambda x: x.mean((1, 2), keepdim=True), lambda: [randn(3, 4, 5, dtype=torch.bfloat16)]),
    ("var_dims", lambda x: torch.var(x, (0, 2)), lambda: [randn(3, 4, 5)]),
    ("var_correction0_keepdim", lambda x: x.var((1, 2), correction=0, keepdim=True), lambda: [randn(3, 4, 5)]),
    ("std_correction2", lambda x: torch.std(x, (0, 1), correction=2), lambda: [randn(3, 4, 5)]),
    ("std_all", lambda x: x.std(), lambda: [randn(4, 6)]),
    ("var_f16", lambda x: x.var(-1), lambda: [randn(4, 6, dtype=torch.float16)]),
    ("var_mean_dims", lambda x: _both(torch.var_mean(x, (0, 2), correction=0)), lambda: [randn(3, 4, 5)]),
    ("var_mean_legacy_unbiased_bf16", lambda x: _both(torch.var_mean(x, False)),
     lambda: [randn(4, 6, dtype=torch.bfloat16)]),
    ("std_mean_keepdim", lambda x: _both(torch.std_mean(x, -1, keepdim=True)), lambda: [randn(4, 6)]),
    # backward ops as graphs traced at the aten level hold them (a custom autograd.Function's backward)
    ("aten_softmax_backward", lambda g, x: aten._softmax_backward_data.default(g, torch.softmax(x, 0), 0,
                                                                               torch.float32),
     lambda: [randn(4, 6), randn(4, 6, seed=1)]),
    ("aten_softmax_backward_bf16", lambda g, y: aten._softmax_backward_data.default(g, y, -1, torch.bfloat16),
     lambda: [randn(4, 6, dtype=torch.bfloat16), torch.softmax(randn(4, 6, seed=1), -1).bfloat16()]),
    ("aten_log_softmax_backward", lambda g, x: aten._log_softmax_backward_data.default(
        g, torch.log_softmax(x, 1), 1, torch.float32) * 2, lambda: [randn(4, 6), randn(4, 6, seed=1)]),
    ("aten_layer_norm_backward", lambda g, x, w, b: _three(_layer_norm_backward(g, x, [5], w, b, [True] * 3)),
     lambda: [randn(2, 3, 5), randn(2, 3, 5, seed=1), randn(5, seed=2), randn(5, seed=3)]),
    ("aten_layer_norm_backward_input_only_no_affine",
     lambda g, x: _layer_norm_backward(g, x, [3, 5], None, None, [True, False, False])[0],
     lambda: [randn(2, 3, 5), randn(2, 3, 5, seed=1)]),
    # scans
    ("cumsum_fused", lambda x: torch.cumsum(x * 2, 1) + 1, lambda: [randn(3, 9)]),
    ("cumsum_transposed", lambda x: x.t().cumsum(1), lambda: [randn(5, 4)]),
    ("cumsum_int32", lambda x: x.cumsum(0), lambda: [torch.arange(-6, 6, dtype=torch.int32).view(4, 3)]),
    ("cumsum_position_ids", lambda m: m.long().cumsum(-1) - 1, lambda: [torch.tensor([[0, 1, 1, 1], [1, 1, 0, 1]])]),
    ("cumsum_bf16", lambda x: x.cumsum(-1), lambda: [randn(2, 17, dtype=torch.bfloat16)]),
    ("cumprod_dtype", lambda x: torch.cumprod(x, 1, dtype=torch.float64), lambda: [randn(3, 6)]),
    ("cumprod_inf_nan", lambda x: x.cumprod(-1),
     lambda: [torch.tensor([[1., INF, 0., 2.], [float("nan"), 1., 2., 3.]])]),
    # batch / group / instance norm (graph/decompositions_norms.py)
    ("batch_norm_eval", lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, False, 0.1, 1e-3), _norm_inputs),
    ("batch_norm_eval_relu_no_affine", lambda x, m, v, w, b: F.batch_norm(x * 2, m, v).relu(), _norm_inputs),
    ("batch_norm_eval_1d", lambda x, m, v, w, b: F.batch_norm(x.flatten(2), m, v, w, b), _norm_inputs),
    ("batch_norm_eval_bf16_input", lambda x, m, v, w, b: F.batch_norm(x.bfloat16(), m, v, w, b), _norm_inputs),
    ("batch_norm_batch_stats", lambda x, m, v, w, b: F.batch_norm(x, None, None, w, b, True), _norm_inputs),
    ("batch_norm_batch_stats_2d", lambda x: F.batch_norm(x, None, None, training=True, eps=0.1),
     lambda: [randn(5, 3)]),
    ("torch_batch_norm", lambda x, m, v, w, b: torch.batch_norm(x, w, b, m, v, False, 0.1, 1e-5, True), _norm_inputs),
    ("group_norm", lambda x, m, v, w, b: F.group_norm(x, 2, w, b), _norm_inputs),
    ("group_norm_no_affine_3d", lambda x: F.group_norm(x, 3, eps=1e-2), lambda: [randn(2, 6, 7)]),
    ("group_norm_channels_last", lambda x, m, v, w, b: F.group_norm(x.permute(0, 3, 1, 2), 2, w, b),
     lambda: [randn(2, 3, 5, 4)] + _norm_inputs()[1:]),
    ("group_norm_bf16", lambda x, w, b: F.group_norm(x, 2, w, b),
     lambda: [randn(2, 4, 3, 5, dtype=torch.bfloat16), randn(4, seed=1, dtype=torch.bfloat16),
              randn(4, seed=2, dtype=torch.bfloat16)]),
    ("instance_norm", lambda x, m, v, w, b: F.instance_norm(x, weight=w, bias=b), _norm_inputs),
    ("instance_norm_running_stats", lambda x, m, v, w, b: F.instance_norm(x, m, v, w, b, use_input_stats=False),
     _norm_inputs),
    # constant pad (Hugging Face's labels)
    ("pad_labels", lambda t: F.pad(t, (0, 1), value=-100)[..., 1:], lambda: [targets((2, 5), 7)]),
    ("pad_2d", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5) * 2, lambda: [randn(3, 4)]),
]


# cases whose rule declines on CUDA (their ops run in torch there), compared all the same
TORCH_ON_CUDA: set = set()


def cases():
    return [pytest.param(fn, make, id=name) for name, fn, make in CASES]


def generated_on(name: str, device: str) -> bool:
    """Whether the case's ops are generated code on this device (else some run in torch)."""
    return not (device == "cuda" and name in TORCH_ON_CUDA)


# (id, function, inputs) trained: loss and every input gradient compared with eager, backward compiled too
GRAD_CASES = [
    ("cross_entropy", lambda x, t: F.cross_entropy(x * 1.5, t), lambda: [randn(6, 10), targets(6, 10, ignored=[1])]),
    ("cross_entropy_weight_smoothing", lambda x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.1),
     lambda: [randn(6, 10), targets(6, 10, ignored=[1]), torch.rand(10, generator=_gen(4))]),
    ("cross_entropy_spatial_sum", lambda x, t: F.cross_entropy(x, t, reduction="sum"),
     lambda: [randn(2, 5, 3), targets((2, 3), 5, ignored=[2])]),
    ("cross_entropy_probs", lambda x, p: F.cross_entropy(x, p), lambda: [randn(5, 6), _probs(5, 6)]),
    ("nll_log_softmax", lambda x, t: F.nll_loss(F.log_softmax(x, -1), t, reduction="sum"),
     lambda: [randn(6, 9), targets(6, 9, ignored=[4])]),
    ("logsumexp", lambda x: torch.logsumexp(x, 1).sum(), lambda: [randn(5, 7)]),
    ("log_softmax", lambda x: (F.log_softmax(x, 1) * torch.arange(7., device=x.device)).sum(), lambda: [randn(5, 7)]),
    ("softmax", lambda x: (F.softmax(x, 1) * torch.arange(7., device=x.device)).sum(), lambda: [randn(5, 7)]),
    ("var_std", lambda x: x.var((0, 2)).sum() + x.std(1, correction=0).sum(), lambda: [randn(3, 4, 5)]),
    ("max_values", lambda x: torch.max(x, 1).values.sum() + x.amin(0).sum(), lambda: [randn(4, 6)]),
    ("batch_norm_batch_stats", lambda x, w, b: (F.batch_norm(x, None, None, w, b, True) * x).sum(),
     lambda: [randn(3, 4, 5, 2), randn(4, seed=1), randn(4, seed=2)]),
    ("batch_norm_eval", lambda x, m, v, w, b: (F.batch_norm(x, m, v, w, b) ** 2).sum(), _norm_inputs),
    ("group_norm", lambda x, w, b: (F.group_norm(x, 2, w, b) * x).sum(),
     lambda: [randn(3, 4, 5, 2), randn(4, seed=1), randn(4, seed=2)]),
    ("instance_norm", lambda x: (F.instance_norm(x) * x).sum(), lambda: [randn(2, 3, 4, 5)]),
]


def grad_cases():
    return [pytest.param(fn, make, id=name) for name, fn, make in GRAD_CASES]

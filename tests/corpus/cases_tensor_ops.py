"""Tensor arithmetic operators and Tensor methods: the bread and butter a tracer must put in one graph."""
import torch

from .case import CaseList, tensors, values, randn, randint

C = CaseList("tensor_ops")
T2 = tensors((3, 4), (3, 4))
T1 = tensors((3, 4))


@C.add(T2)
def add(x, y):
    return x + y


@C.add(T2)
def sub_mul_div(x, y):
    return (x - y) * y / (x.abs() + 1)


@C.add(T1)
def scalar_ops(x):
    return 2 * x + 1 - x / 3


@C.add(T1)
def reverse_scalar_ops(x):
    return 1 - x, 2 / (x.abs() + 1), 3 ** x.tanh()


@C.add(T1)
def pow_neg_pos(x):
    return -(x ** 2) + (+x)


@C.add(T2)
def floordiv_mod(x, y):
    return x // (y.abs() + 0.5), x % 2.0


@C.add(T2)
def comparisons(x, y):
    return x < y, x <= y, x > 0, x >= y, x == x, x != y


@C.add(T2)
def boolean_ops(x, y):
    a, b = x > 0, y > 0
    return a & b, a | b, a ^ b, ~a


@C.add(tensors((3, 4), (4, 5)))
def matmul_op(x, w):
    return x @ w


@C.add(T1)
def inplace_add(x):
    x.add_(1)
    return x * 2


@C.add(T1)
def inplace_augassign(x):
    y = x.clone()
    y += 1
    y *= 3
    y -= x
    y /= 2
    return y


@C.add(T1)
def mutate_input_mul(x):
    # The runner compares the mutated argument too: a tracer must replay this write.
    x.mul_(2)


@C.add(T1)
def method_chain(x):
    return x.exp().log1p().sqrt().neg().sigmoid()


@C.add(T1)
def reductions(x):
    return x.sum(), x.mean(dim=1), x.amax(0), x.std(dim=0), x.prod(1), x.norm()


@C.add(T1)
def reduce_keepdim(x):
    return x - x.mean(dim=-1, keepdim=True)


@C.add(T1)
def argmax_min(x):
    return x.argmax(dim=1), x.argmin()


@C.add(T1)
def max_with_dim(x):
    values, idx = x.max(dim=1)
    return values * 2, idx


@C.add(T1)
def sort_topk(x):
    s, i = x.sort(dim=1, descending=True)
    t = x.topk(2, dim=1)
    return s, i, t.values, t.indices


@C.add(T1)
def clamp_methods(x):
    return x.clamp(min=-0.5, max=0.5), x.clamp_min(0), x.clip(-1, 1)


@C.add(T1)
def view_reshape(x):
    return x.view(4, 3), x.reshape(-1), x.view(2, -1).t()


@C.add(T1)
def transpose_permute(x):
    y = x.unsqueeze(0)
    return x.transpose(0, 1), y.permute(2, 0, 1), x.T, x.mT


@C.add(T1)
def squeeze_unsqueeze(x):
    return x.unsqueeze(1).unsqueeze(-1).squeeze(-1).squeeze(1)


@C.add(T1)
def contiguous_after_t(x):
    return x.t().contiguous().view(-1)


@C.add(T1)
def indexing_basic(x):
    return x[0], x[:, 1], x[1:, ::2], x[..., -1], x[None, 0]


@C.add(T1)
def index_setitem(x):
    y = x.clone()
    y[0] = 0.0
    y[:, 1:3] = y[:, 1:3] * 10
    return y


@C.add(values(lambda: randn(5, 3), lambda: randint(0, 5, 4)))
def index_with_tensor(x, idx):
    return x[idx], x[idx].sum(0)


@C.add(T1)
def boolean_mask_where(x):
    # Boolean-mask indexing has a data-dependent shape; torch.where keeps the shape static.
    return torch.where(x > 0, x, torch.zeros_like(x))


@C.add(T1)
def masked_fill_method(x):
    return x.masked_fill(x < 0, float("-inf")).softmax(dim=-1)


@C.add(T1)
def type_conversions(x):
    return x.to(torch.float64), x.double().float(), x.half().float(), (x > 0).long(), x.int()


@C.add(T1)
def to_dtype_kw(x):
    return x.to(dtype=torch.bfloat16).to(torch.float32)


@C.add(T1)
def new_tensors(x):
    return x.new_zeros(2, 3), x.new_ones((4,)), x.new_full((2,), 7.0), torch.ones_like(x), x.new_empty(0)


@C.add(T1)
def expand_repeat(x):
    r = x[:, :1]
    return r.expand(3, 5), x.repeat(2, 1), r.expand_as(x) + x


@C.add(T1)
def chunk_split_unbind(x):
    a, b = x.chunk(2, dim=1)
    c, d = x.split([1, 3], dim=1)
    rows = x.unbind(0)
    return a + b, c.sum() + d.sum(), rows[2]


@C.add(T1)
def flatten_unflatten(x):
    y = x.view(3, 2, 2)
    return y.flatten(), y.flatten(1), x.unflatten(1, (2, 2))


@C.add(T1)
def cumulative(x):
    return x.cumsum(dim=1), x.cumprod(dim=0)


@C.add(T1)
def detach_clone(x):
    return x.detach() * 2, x.clone().add_(1)


@C.add(T2)
def lerp_addcmul(x, y):
    return x.lerp(y, 0.3), x.addcmul(y, y, value=0.5), x.addcdiv(y, y.abs() + 1)


@C.add(T1)
def fill_zero_inplace(x):
    y = x.clone()
    y.zero_()
    y.fill_(3.0)
    return y


@C.add(T1)
def tril_triu(x):
    return x.tril(), x.triu(diagonal=1)


@C.add(tensors((3, 4), requires_grad=None))
def requires_grad_ops(x, requires_grad=None):
    y = x.detach().requires_grad_()
    return (y * 2).sum(), y.requires_grad


@C.add(T1)
def dunder_methods(x):
    return x.__add__(1), x.__mul__(x), x.__neg__()


@C.add(tensors((3,), (3,), (3,)))
def in_place_results_are_their_receivers(x, y, c):
    # In-place methods, out= and augmented assignment hand back the very tensor they wrote to.
    a = x.add_(1)
    b = x.unsqueeze_(0)
    d = torch.add(y, 1, out=c)
    e = y.copy_(x[0])
    f = y.requires_grad_(False)
    g = y.clamp_(min=0)
    z = y
    z += 1
    return a is x, b is x, d is c, e is y, f is y, g is y, z is y, x, y, c


@C.add(tensors((4, 3)))
def tensor_new_size_and_type_names(x):
    # from PyTorch's Dynamo tests: `x.new(torch.Size)` is a shape (a tuple is data), `t.type()` names the legacy
    # type of the tensor's device (the meta example named 'torch.meta.FloatTensor'), `t.type(name or class)`
    # converts, and `torch.is_floating_point(input=t)` takes its tensor by keyword
    y = x * 2
    h = y.to(torch.float16)
    return (y.new(torch.Size([5, 8])).shape, y.new(y.size()).shape, y.new((5.0, 8.0)), y.type(), h.type(),
            x.type(h.type()), x.type(torch.DoubleTensor), x.type(torch.int32), torch.is_floating_point(input=y),
            torch.numel(input=h))

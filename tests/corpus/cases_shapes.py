"""Shape arithmetic and torch.Size: static shapes become constants (guarded), used in Python and in ops."""
import torch

from .case import CaseList, tensors

C = CaseList("shapes")
T1 = tensors((3, 4))
T3 = tensors((2, 3, 4))


@C.add(T1)
def shape_unpack(x):
    a, b = x.shape
    return x.view(b, a)


@C.add(T3)
def size_method(x):
    B, T, C_ = x.size()
    return x.reshape(B * T, C_)


@C.add(T3)
def size_dim(x):
    return x.view(x.size(0), -1) * x.size(-1)


@C.add(T1)
def shape_index_negative(x):
    return x.new_zeros(x.shape[-1], x.shape[-2])


@C.add(T3)
def shape_slice(x):
    return x.view(*x.shape[:-1], 2, 2), x.shape[1:]


@C.add(T1, graphs=0)
def return_shape(x):
    return x.shape, x.size(), x.dim(), x.ndim, x.numel()


@C.add(T1)
def shape_arith(x):
    n = x.shape[0] * x.shape[1]
    half = x.shape[1] // 2
    return x.view(n), x[:, :half], n % 5, half + 1


@C.add(T1)
def size_equality(x):
    same = x.shape == torch.Size([3, 4])
    return x * 2 if same else x, same


@C.add(T1)
def size_to_tuple(x):
    t = tuple(x.shape)
    l = list(x.shape)
    return t, l, x.view(l[::-1])


@C.add(T1)
def torch_size_ctor(x):
    s = torch.Size([2, 6])
    return x.reshape(s), s.numel(), len(s)


@C.add(T3)
def size_concat(x):
    new_shape = x.shape[:-1] + (2, 2)
    return x.view(new_shape), new_shape


@C.add(T3)
def shape_in_factory(x):
    return torch.zeros(x.shape) + x, torch.ones(x.shape[0], 1, x.shape[2]) * x


@C.add(T1)
def len_tensor(x):
    return len(x), x[: len(x) - 1]


@C.add(T3)
def dim_loop(x):
    total = 1
    for d in x.shape:
        total *= d
    return x.reshape(total), total


@C.add(T3)
def shape_max_min(x):
    m = max(x.shape)
    return x.new_ones(m), min(x.shape), sum(x.shape)


@C.add(T1)
def shape_float_scale(x):
    scale = 1.0 / x.shape[-1] ** 0.5
    return x * scale


@C.add(tensors((2, 8)))
def split_by_shape(x):
    n = x.shape[1] // 4
    return x.split(n, dim=1)


@C.add(T3, graphs=0)
def stride_and_contig(x):
    return x.stride(), x.is_contiguous(), x.transpose(0, 1).is_contiguous()


@C.add(T1)
def dtype_device_attrs(x):
    return x.dtype == torch.float32, x.device.type, x.is_cuda, x.dtype.is_floating_point, x * 1


@C.add(T3)
def shape_enumerate(x):
    dims = [i * s for i, s in enumerate(x.shape)]
    return x.sum(dim=tuple(range(1, x.dim()))), dims


@C.add(tensors((4, 4)))
def square_check(x):
    if x.shape[0] == x.shape[1]:
        return x @ x
    return x


@C.add(T1)
def size_negative_index(x):
    return x.size(-1), x.size()[-2], x.new_full((x.size(-1),), x.size(0))


@C.add(T3)
def broadcast_shapes(x):
    s = torch.broadcast_shapes(x.shape, (1, 3, 1))
    return s, x.expand(s)


@C.add(T1)
def numel_scalar_math(x):
    return x.sum() / x.numel()

"""Branches a tracer resolves at trace time: on constants, shapes, dtypes, None and isinstance (then guards)."""
import torch

from .case import CaseList, tensors, values, randn

C = CaseList("control_flow")
T1 = tensors((3, 4))


@C.add(values(lambda: randn(3, 4), True))
def branch_on_bool_arg(x, flag):
    if flag:
        return x + 1
    return x - 1


@C.add(values(lambda: randn(3, 4), False))
def branch_on_bool_arg_false(x, flag):
    if flag:
        return x + 1
    return x - 1


@C.add(values(lambda: randn(3, 4), None))
def branch_on_none(x, bias):
    if bias is None:
        return x * 2
    return x * 2 + bias


@C.add(values(lambda: randn(3, 4), lambda: randn(4, seed=9)))
def branch_on_not_none(x, bias):
    if bias is not None:
        x = x + bias
    return x


@C.add(values(lambda: randn(3, 4), 3))
def branch_isinstance_int(x, k):
    if isinstance(k, int):
        return x * k
    return x


@C.add(values(lambda: randn(3, 4), lambda: randn(3, 4, seed=5)))
def branch_isinstance_tensor(x, other):
    if isinstance(other, torch.Tensor):
        return x + other
    return x + float(other)


@C.add(values(lambda: randn(3, 4), (1, 2)))
def branch_isinstance_tuple(x, dims):
    if isinstance(dims, (tuple, list)):
        return x.sum(dim=dims[0] - 1) if len(dims) == 2 else x
    return x


@C.add(T1)
def branch_on_shape(x):
    if x.shape[0] > 2:
        return x[:2]
    return x


@C.add(T1)
def branch_on_dim(x):
    if x.dim() == 2:
        x = x.unsqueeze(0)
    return x


@C.add(T1)
def branch_on_dtype(x):
    if x.dtype == torch.float32:
        return x.double()
    return x


@C.add(T1)
def branch_on_is_floating(x):
    return x * 0.5 if x.is_floating_point() else x // 2


@C.add(T1)
def branch_on_requires_grad(x):
    if x.requires_grad:
        return x.detach()
    return x + 1


@C.add(values(lambda: randn(3, 4), "relu"))
def branch_on_string(x, act):
    if act == "relu":
        return torch.relu(x)
    elif act == "tanh":
        return torch.tanh(x)
    else:
        return x


@C.add(values(lambda: randn(3, 4), "gelu"))
def elif_chain(x, act):
    if act == "relu":
        return torch.relu(x)
    elif act == "gelu":
        return torch.nn.functional.gelu(x)
    return x


@C.add(T1)
def ternary_constant(x):
    k = 3
    return x * (2 if k > 2 else 5)


@C.add(values(lambda: randn(3, 4), 0, 1))
def and_or_shortcircuit(x, a, b):
    c = a or b
    d = a and b
    return x * c + d


@C.add(values(lambda: randn(3, 4), None))
def or_default(x, scale):
    scale = scale or 2.0
    return x * scale


@C.add(T1)
def not_operator(x):
    flag = not (x.shape[0] == 3)
    return x if flag else -x


@C.add(T1)
def chained_comparison(x):
    if 1 < x.shape[0] < 5 <= x.shape[1]:
        return x + 1
    return x - 1


@C.add(T1)
def assert_on_shape(x):
    assert x.shape[-1] == 4, "last dim must be 4"
    return x.sum(-1)


@C.add(T1)
def early_return_in_branch(x):
    for i in range(3):
        if i == 1:
            return x * i
    return x


@C.add(values(lambda: randn(3, 4), {"mode": "sum"}))
def branch_on_dict_value(x, opts):
    if opts.get("mode") == "sum":
        return x.sum()
    return x.mean()


@C.add(values(lambda: randn(3, 4), []), graphs=0)
def branch_on_empty_list(x, extras):
    if not extras:
        return x
    return x + sum(extras)


@C.add(T1)
def try_except_no_raise(x):
    try:
        y = x + 1
    except RuntimeError:
        y = x
    return y


@C.add(T1)
def try_finally(x):
    out = []
    try:
        out.append(x * 2)
    finally:
        out.append(x * 3)
    return out


@C.add(T1)
def caught_python_exception(x):
    # The raise/except happens entirely on constants, so a tracer can model it without breaking.
    try:
        {}["missing"]
    except KeyError:
        return x - 1
    return x


@C.add(T1)
def is_comparisons(x):
    y = x
    return (x * 2) if y is x else x, x is not None


@C.add(values(lambda: randn(3, 4), 2))
def match_statement(x, n):
    match n:
        case 1:
            return x
        case 2:
            return x * 2
        case _:
            return -x

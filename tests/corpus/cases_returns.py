"""Return values of every shape: nested tuples/lists/dicts, None, constants and aliases mixed with tensors."""
import torch

from .case import CaseList, tensors

C = CaseList("returns")
T1 = tensors((3, 4))
T2 = tensors((3, 4), (3, 4))


@C.add(T1)
def return_none(x):
    x.add_(1)
    return None


@C.add(T1, graphs=0)
def return_input_unchanged(x):
    return x


@C.add(T1)
def return_input_alias(x):
    # The same tensor twice: a tracer must return two references to one object, not two copies.
    y = x * 2
    return y, y


@C.add(T1)
def return_view_of_input(x):
    return x[0], x.view(-1), x.t()


@C.add(T2)
def return_nested_tuple(x, y):
    return (x, (y, (x + y, None)), 3)


@C.add(T2)
def return_nested_list(x, y):
    return [x, [y, [x * y]], []]


@C.add(T2)
def return_dict(x, y):
    return {"sum": x + y, "diff": x - y, "n": 2}


@C.add(T2, graphs=0)
def return_nested_dict(x, y):
    return {"a": {"b": [x, {"c": (y, None)}]}, "meta": {"shape": x.shape}}


@C.add(T1, graphs=0)
def return_constant_only_after_tensor_work(x):
    # Dead tensor work with no side effect: a perfect tracer eliminates it and emits no graph.
    y = x * 2  # noqa: F841
    return 42


@C.add(T1)
def return_mixed_types(x):
    return x.sum(), 1, 2.5, "s", True, None, (1, "a"), torch.float32


@C.add(T1, graphs=0)
def return_empty_containers(x):
    return (), [], {}, x


@C.add(T1)
def return_single_element_tuple(x):
    return (x * 2,)


@C.add(T1)
def return_scalar_tensor(x):
    return x.sum(), x.mean(dim=None)


@C.add(T1)
def return_dict_int_keys(x):
    return {0: x, 1: x + 1, (2, 3): x * 2}


@C.add(T2, graphs=0)
def return_ordered_dict_order(x, y):
    d = {}
    d["z"] = x
    d["a"] = y
    return d


@C.add(T1)
def return_list_of_views(x):
    return list(x.unbind(1))


@C.add(T1)
def return_integer_tensor_and_bool(x):
    return (x > 0).sum(), (x > 0).any(), (x > -10).all()


@C.add(T1)
def return_new_and_mutated_input(x):
    x.sub_(1)
    return x.clone() * 2


@C.add(T1, graphs=0)
def return_size_and_dtype(x):
    return x.shape, x.dtype, x.device

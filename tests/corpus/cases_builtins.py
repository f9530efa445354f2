"""Python builtins on constants and tensors: a tracer folds them or maps them onto graph ops."""
import abc
import itertools
import operator

import torch

from .case import CaseList, tensors, values

C = CaseList("builtins")
T1 = tensors((3, 4))


@C.add(T1)
def builtin_len(x):
    return x * len((1, 2, 3)) + len("ab") + len({"a": 1})


@C.add(T1)
def builtin_isinstance(x):
    return x * isinstance(x, torch.Tensor) + isinstance(3, (int, float))


@C.add(T1)
def builtin_min_max_constants(x):
    return x * max(1, 2, 3) - min([4, 5]) + max((1.5, 0.5), key=lambda v: -v)


@C.add(T1)
def builtin_abs(x):
    return abs(x) + abs(-3)


@C.add(T1)
def builtin_sum_any_all(x):
    return x * sum([1, 2, 3]), any([False, True]), all([1, 0]), sum((0.5, 0.5), 1.0)


@C.add(tensors((3, 4), (3, 4)))
def builtin_sum_tensors(x, y):
    return sum([x, y, x])


@C.add(T1)
def builtin_getattr_hasattr(x):
    method = getattr(x, "relu")
    return method(), hasattr(x, "shape"), hasattr(x, "nope"), getattr(x, "missing", 5)


@C.add(T1)
def builtin_int_float_bool(x):
    return x * int("3") + float(2) + bool(1), int(3.9), float("1.5"), bool(0)


@C.add(T1)
def builtin_str_format(x):
    name = "layer" + str(3)
    tag = f"{name}_{2:02d}"
    return x * len(tag), tag, "-".join(["a", "b"]), tag.upper()


@C.add(T1)
def builtin_round_divmod_pow(x):
    q, r = divmod(17, 5)
    return x * round(2.6) + q * r, pow(2, 5), round(3.14159, 2)


@C.add(T1)
def builtin_range_list(x):
    return x * len(list(range(5))), list(range(2, 8, 2)), tuple(range(3))


@C.add(T1)
def builtin_type(x):
    return x * (type(3) is int), type(x) is torch.Tensor, type(1.0).__name__


@C.add(T1)
def builtin_callable_id(x):
    return x * callable(len), callable(3)


@C.add(T1)
def builtin_sorted_reversed_key(x):
    s = sorted(["bb", "a", "ccc"], key=len, reverse=True)
    return x * len(s[0]), s


@C.add(T1)
def builtin_ord_chr_hex(x):
    return x * (ord("b") - ord("a")), chr(65), hex(255), bin(5)


@C.add(T1)
def builtin_operator_module(x):
    return operator.add(x, 1), operator.mul(x, 2), operator.getitem((1, 2), 1), operator.neg(x)


@C.add(T1)
def builtin_tensor_max_min(x):
    # max/min over tensors compares element-wise only through torch; the builtin compares whole values.
    return torch.max(x), torch.min(x, dim=0).values, max(x.shape), min(2.0, 3)


@C.add(T1)
def builtin_slice_object(x):
    s = slice(1, 3)
    return x[:, s], x[s], s.start


@C.add(T1)
def builtin_dict_list_tuple_ctor(x):
    d = dict([("a", 1), ("b", 2)])
    t = tuple([x, x])
    l = list((1, 2))
    return t[0] * d["b"] + l[1], d, l


@C.add(T1)
def builtin_enumerate_zip_lists(x):
    return list(enumerate("ab")), list(zip([1, 2], "xy")), x + 1


HOOKS = {"a": 2.0}


@C.add(T1)
def builtin_itertools_chain(x):
    # the optimizers' step runs its hooks as chain(global_hooks.values(), self._hooks.values())
    for scale in itertools.chain(HOOKS.values(), [3.0], (v for v in (0.5,))):
        x = x * scale
    return x, list(itertools.chain("ab", range(2)))


@C.add(T1)
def contains_on_a_non_container_raises(x):
    # fuzz seed 661313: `'a' in 4` raises TypeError in eager; an `except` catches it where eager's does
    t = 4
    try:
        found = "a" in t
    except TypeError as e:
        return x - 1, str(e)
    return x * found


@C.add(T1)
def builtin_isinstance_subclass(x):
    return x * issubclass(bool, int), isinstance(True, int), isinstance(x, (int, torch.Tensor))


@C.add(T1)
def builtin_hash_constants(x):
    return x * (hash(3) == 3), hash("a") == hash("a")


@C.add(values(3, 4), graphs=0)
def builtin_no_tensor_work(a, b):
    # No tensors at all: a perfect tracer emits zero graphs and guards on the constants.
    return max(a, b) * min(a, b) + abs(a - b) + len(str(a))


@C.add(values("x", [1, 2, 3]), graphs=0)
def builtin_strings_lists_only(s, l):
    return s * 2, sum(l), sorted(l, reverse=True), s.join(["a", "b"])


@C.add(T1)
def builtin_iter_tensor_len(x):
    return len(x.shape), len(x[0]), x.numel(), x[0]


class _Plain:
    pass


class _Calls:
    def __call__(self):
        return 1


@C.add(T1)
def builtin_callable_follows_the_type(x):
    # callable(obj) asks whether type(obj) defines __call__; an instance attribute named __call__ does not count.
    odd = _Plain()
    odd.__call__ = len
    return (x + 1, callable(_Plain()), callable(_Calls()), callable(_Plain), callable(odd), callable(len),
            callable(x), callable(x.add), callable([].append), callable(3), callable(lambda: 1))


@C.add(T1)
def string_methods_make_new_objects(x):
    parts = "a b".split()
    parts.append("c")  # a new list the code may change
    return x * len(parts), "-".join(map(str, range(3))), "".join(str(i) for i in range(2)), parts


class _AcceptsAll(type):
    def __instancecheck__(cls, instance):
        return True


class _Anything(metaclass=_AcceptsAll):
    pass


class _Shape(abc.ABC):
    pass


class _Square:
    pass


_Shape.register(_Square)


@C.add(T1)
def isinstance_asks_the_metaclass(x):
    # isinstance(v, C) is type(C).__instancecheck__(C, v): a metaclass may say yes to anything; ABC registration
    # counts; nested tuples of classes are flattened.
    return (x + 1, isinstance(3, _Anything), isinstance(_Square(), _Shape), issubclass(_Square, _Shape),
            isinstance(_Square(), (int, (str, _Shape))), isinstance(x, (list, torch.Tensor)))


@C.add(T1)
def operators_on_constant_sequences(x):
    merged = {"a": 1} | {"b": 2}
    merged["c"] = 3  # a new dict the code may change
    return x + 1, "%5.1f|%-3d|" % (3.14159, 4), (1, 2) + (3,), [0] * 2, merged, [1, 2] < [1, 3]

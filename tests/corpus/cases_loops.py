"""Loops a tracer unrolls: constant-length iterables, range, enumerate, zip, reversed, while on constants."""
import torch

from .case import CaseList, tensors, values, randn

C = CaseList("loops")
T1 = tensors((3, 4))
T2 = tensors((3, 4), (3, 4))


@C.add(T1)
def for_range(x):
    for _ in range(3):
        x = x * 2 + 1
    return x


@C.add(T1)
def for_range_start_step(x):
    acc = torch.zeros_like(x)
    for i in range(1, 10, 3):
        acc = acc + x * i
    return acc


@C.add(T1)
def for_range_negative_step(x):
    out = []
    for i in range(4, 0, -2):
        out.append(x[:, i - 1])
    return out


@C.add(T1)
def for_enumerate(x):
    total = x
    for i, w in enumerate((0.5, 1.5, 2.5)):
        total = total + w * i
    return total


@C.add(T1)
def enumerate_start(x):
    return [x * i for i, _ in enumerate("abc", start=1)]


@C.add(T2)
def for_zip(x, y):
    out = 0
    for a, b in zip((x, y), (2.0, 3.0)):
        out = out + a * b
    return out


@C.add(T2)
def zip_three(x, y):
    return [a + b * c for a, b, c in zip([x, y], [y, x], [1, 2])]


@C.add(T1)
def for_reversed(x):
    l = []
    for i in reversed(range(3)):
        l.append(x * i)
    return torch.cat(l)


@C.add(T1)
def reversed_list(x):
    return [x + v for v in reversed([1, 2, 3])]


@C.add(T1)
def iterate_tensor_rows(x):
    # Iterating a tensor unpacks dim 0: a static shape makes the loop length a constant.
    return [row.sum() for row in x]


@C.add(T1)
def while_counter(x):
    i = 0
    while i < 4:
        x = x + i
        i += 1
    return x


@C.add(T1)
def while_with_break(x):
    i = 0
    while True:
        i += 1
        x = x * 1.5
        if i >= 3:
            break
    return x


@C.add(T1)
def for_continue(x):
    for i in range(5):
        if i % 2:
            continue
        x = x + i
    return x


@C.add(T1)
def for_else(x):
    for i in range(3):
        if i == 10:
            break
    else:
        x = x + 100
    return x


@C.add(T1)
def nested_loops(x):
    for i in range(2):
        for j in range(3):
            x = x + i * j
    return x


@C.add(T1)
def loop_over_dict(x):
    d = {"a": 1.0, "b": 2.0}
    for k in d:
        x = x * d[k]
    for k, v in d.items():
        x = x + v
    return x


@C.add(values(lambda: [randn(2, seed=i) for i in range(4)]))
def loop_over_tensor_list(xs):
    acc = xs[0]
    for t in xs[1:]:
        acc = acc + t
    return acc


@C.add(T1)
def loop_accumulate_list(x):
    outs = []
    for i in range(4):
        outs.append(x[:, i:i + 1] * i)
    return torch.cat(outs, dim=1)


@C.add(T1)
def loop_over_string(x):
    n = 0
    for ch in "hello":
        if ch == "l":
            n += 1
    return x * n


@C.add(T1)
def loop_with_tuple_unpack(x):
    pairs = [(1, 2.0), (3, 4.0)]
    for i, w in pairs:
        x = x[:, :] * w + i
    return x


@C.add(tensors((4, 4)))
def loop_over_shape_range(x):
    for i in range(x.shape[0]):
        x = x + x[i]
    return x


@C.add(T1)
def loop_iter_next(x):
    it = iter([1, 2, 3])
    a = next(it)
    b = next(it)
    return x * a + b


@C.add(T1)
def loop_map_filter(x):
    sq = list(map(lambda v: v * v, [1, 2, 3]))
    odd = list(filter(lambda v: v % 2, range(6)))
    return x * sum(sq) + len(odd)


@C.add(T1)
def loop_over_sorted(x):
    for v in sorted([3, 1, 2]):
        x = x * v - v
    return x


@C.add(T1)
def loop_range_len(x):
    ws = [0.1, 0.2, 0.3]
    for i in range(len(ws)):
        x = x + ws[i]
    return x

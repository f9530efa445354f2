"""Python containers holding tensors and constants: tuples, lists, dicts, sets, slicing, comprehensions."""
import torch

from .case import CaseList, tensors, values

C = CaseList("containers")
T1 = tensors((3, 4))
T2 = tensors((3, 4), (3, 4))


@C.add(T2)
def tuple_pack_unpack(x, y):
    t = (x, y, x + y)
    a, b, c = t
    return c - a - b


@C.add(T2)
def list_append_pop(x, y):
    l = [x]
    l.append(y)
    l.append(x * y)
    last = l.pop()
    return last + l[0] + l[-1], len(l)


@C.add(T2)
def list_extend_insert(x, y):
    l = []
    l.extend([x, y])
    l.insert(0, x - y)
    return torch.stack(l)


@C.add(T2)
def dict_build_read(x, y):
    d = {"a": x, "b": y}
    d["c"] = d["a"] * d["b"]
    return d["c"] + d.get("missing", 1.0)


@C.add(T2)
def dict_iter_items(x, y):
    d = {"x": x, "y": y}
    return sum(v * i for i, v in enumerate(d.values())), list(d.keys())


@C.add(T2)
def dict_update_pop(x, y):
    d = dict(a=x)
    d.update({"b": y})
    b = d.pop("b")
    return b + d["a"], "b" in d, len(d)


@C.add(T1)
def dict_comprehension(x):
    d = {k: x * k for k in (1, 2, 3)}
    return d[2] + d[3]


@C.add(T1)
def list_comprehension(x):
    parts = [x * i for i in range(4)]
    return torch.stack(parts).sum(0)


@C.add(T1)
def nested_comprehension(x):
    grid = [[i * j for j in range(3)] for i in range(2)]
    return x * grid[1][2], grid


@C.add(T1)
def comprehension_filter(x):
    evens = [i for i in range(10) if i % 2 == 0]
    return x * sum(evens), evens


@C.add(T1)
def set_ops(x):
    s = {1, 2, 3}
    s.add(4)
    s.discard(1)
    t = s | {10}
    return x * len(t), 4 in s, sorted(s & {2, 3, 9})


@C.add(T1)
def tuple_slicing(x):
    t = (1, 2, 3, 4, 5)
    return x * t[1], t[::2], t[-2:], t[:0]


@C.add(T2)
def list_slicing_tensors(x, y):
    l = [x, y, x * 2, y * 3]
    return l[1:3], l[::-1][0], l[-1]


@C.add(T1)
def list_setitem(x):
    l = [x, x, x]
    l[1] = x * 10
    l[-1] = l[1] + 1
    return l


@C.add(T2)
def tuple_concat(x, y):
    a = (x,) + (y,)
    b = a * 2
    return len(b), b[3] - b[0]


@C.add(T1)
def list_concat_repeat(x):
    l = [1, 2] + [3]
    m = [0] * 3
    return x * (sum(l) + len(m)), l, m


@C.add(T1)
def star_unpack(x):
    first, *rest = (x, x * 2, x * 3)
    return first + rest[-1], len(rest)


@C.add(T1)
def nested_unpack(x):
    (a, b), c = (x, x + 1), x + 2
    return a * b * c


@C.add(T2)
def swap_values(x, y):
    x, y = y, x
    return x - y


@C.add(T1)
def constant_list_methods(x):
    l = [3, 1, 2]
    l.sort()
    l.reverse()
    return x * l.index(1), l, l.count(3)


@C.add(T1)
def dict_of_lists(x):
    d = {"w": [x, x * 2], "b": (x.sum(),)}
    return d["w"][1] + d["b"][0]


@C.add(values(lambda: [torch.ones(2), torch.zeros(2) + 3]))
def list_argument(xs):
    return xs[0] + xs[1], len(xs)


@C.add(values({"a": 1, "b": 2.0}), graphs=0)
def dict_argument_constants(d):
    # Only Python numbers: nothing for a graph, the result is a guarded constant.
    return d["b"] * 2 + d["a"]


@C.add(values(lambda: {"a": torch.arange(3.0), "scale": 2.0}))
def dict_argument_tensor(d):
    return d["a"] * d["scale"]


@C.add(values(lambda: (torch.ones(2), (torch.ones(2) * 2, 3))))
def nested_tuple_argument(t):
    a, (b, k) = t
    return a + b * k


@C.add(values(lambda: [torch.ones(2)]))
def mutate_list_argument(xs):
    # A list passed in and appended to: the side effect on the caller's list must be replayed.
    xs.append(xs[0] * 5)
    return xs[0] + 1


@C.add(T1)
def membership_tuple(x):
    mode = "b"
    if mode in ("a", "b"):
        return x + 1
    return x


@C.add(T1)
def dict_keys_sorted(x):
    d = {"z": 1, "a": 2, "m": 3}
    return x * d[sorted(d)[0]], list(reversed(list(d)))


@C.add(T2)
def zip_into_dict(x, y):
    d = dict(zip(("x", "y"), (x, y)))
    return d["x"] * d["y"]


@C.add(T1)
def frozenset_and_tuple_keys(x):
    d = {(1, 2): x, (3,): x * 2}
    fs = frozenset([1, 2])
    return d[(1, 2)] + d[(3,)], 1 in fs


@C.add(T2)
def dict_views_are_live(x, y):
    # Views read the dict as it is when used, not as it was when keys()/values()/items() was called.
    d = {1: x}
    k, v, it = d.keys(), d.values(), d.items()
    d[4] = y
    return 4 in k, len(v), (4, y) in it, sum(v), list(k), bool(v), [kk for kk, _ in it]


@C.add(T1)
def dict_view_set_operations(x):
    a, b = {1: x, 2: x, 3: x}, {2: x, 5: x}
    ka, kb = a.keys(), b.keys()
    return (x + 1, ka - kb, ka & kb, ka | kb, ka ^ kb, ka == {1, 2, 3}, kb <= ka, ka - [1], {1, 9} - ka,
            ka.isdisjoint([7]), {1: "a"}.items() - {2: "b"}.items())


@C.add(T2, graphs=0)
def dict_items_set_operations_with_tensors(x, y):
    a, b = {1: x, 2: y}, {2: y, 3: x}
    common = a.items() & b.items()  # (2, y) is in both: compared by identity first, as Python does
    return len(common), len(a.items() - b.items()), a.items() == {(1, x), (2, y)}


@C.add(T1)
def list_iterator_sees_appends(x):
    xs, seen = [1, 2], []
    for v in xs:
        seen.append(v)
        if v == 1:
            xs.append(3)
    return x * len(seen), seen


@C.add(T2)
def set_of_tensors_by_identity(x, y):
    seen = set()
    out = []
    for t in (x, y, x):
        if t not in seen:
            seen.add(t)
            out.append(t * 2)
    s = {1, 2, 3}
    s |= {4}
    s.discard(1)
    return torch.stack(out), len(seen), sorted(s), s.union([9]) - {2}, s.issubset(range(10))


class _Box:
    def __init__(self, items):
        self.items = items


@C.add(T1)
def one_list_reached_two_ways(x):
    Box = _Box
    xs = [x]
    box = Box(xs)
    box.items.append(x + 1)
    return xs, box.items is xs, len(xs)


# Lists and dicts passed in, changed and read only part-way (jit/variables/outside.py reads them lazily): reads
# after writes, pops past the appended items, stores at both ends, a dict's deletes and stores in Python's order.

@C.add(values(lambda: torch.ones(2), list(range(2000))))
def outside_list_append_then_read_its_end(x, xs):
    xs.append(x * 2)
    xs.append(7)
    return xs[-2] + xs[-3] + xs[0], xs.pop(), xs[-1] * 1


@C.add(values(lambda: torch.ones(2), lambda: [torch.ones(2) * 3, 3, 4]))
def outside_list_pops_past_its_appends(x, xs):
    xs.append(x)
    a, b, c = xs.pop(), xs.pop(), xs.pop()
    xs.append(a + c)
    xs[0] = xs[0] * b
    return a, b, c, bool(xs), xs[-1]


@C.add(values(lambda: torch.ones(2), list(range(100))))
def outside_list_stores_at_both_ends(x, xs):
    xs[-1] = x
    xs[0] = xs[-1] + 1
    xs[1] = xs[-98] * 10  # xs[2]
    xs[-99] = xs[-99] + 1  # xs[1], stored just before under the other number
    return xs[-1] + xs[0], xs[1], xs[-99], len(xs)


@C.add(values(lambda: torch.ones(2), {i: i for i in range(1000)}))
def outside_dict_stores_deletes_and_restores(x, d):
    d["t"] = x * 2
    v = d.pop(3)
    d[3] = v + 1  # deleted, then stored: last, as in Python
    del d[5]
    d.setdefault(7, 0)
    d.setdefault("new", 1)
    return d["t"] + d.get(999, 0) + d.get(-1, 5), 3 in d, 5 in d, len(d), bool(d)


@C.add(values(lambda: torch.ones(2), list(range(10))))
def outside_list_iterated_after_writes(x, xs):
    xs.append(10)
    xs[0] = 100
    xs.pop()
    xs += [20, 30]
    return x * sum(xs), [v for v in xs if v > 25]


@C.add(values(lambda: torch.ones(2), lambda: [[1], [2]]))
def outside_lists_nested_changed_in_order(x, xs):
    xs.append([])
    xs[-2].append(5)
    xs[-1].append(6)
    return x * len(xs[-2])


@C.add(values(lambda: torch.ones(2), [], {}))
def outside_empty_containers_filled(x, xs, d):
    if not xs:
        xs.append(x)
    if not d:
        d["a"] = 1
    return xs[-1] + 1, bool(xs), bool(d), len(d)


@C.add(values(lambda: torch.ones(2), list(range(5)), {"a": 1}))
def outside_index_and_key_errors(x, xs, d):
    xs.append(1)
    try:
        v = xs[7]
    except IndexError:
        v = -1
    try:
        w = d["b"]
    except KeyError:
        w = 2
    return x * v * w, xs[5]

"""Code one graph cannot hold: data-dependent control flow, tensor values read into Python, I/O.

`graphs=None` here: the graph-break work decides how many graphs are right; these only check the results.
"""
import contextlib
import io

import torch

from .case import CaseList, tensors, values
from .cases_library import _Base, _logged

C = CaseList("breaks")
T1 = tensors((3, 4))


@C.add(T1, graphs=None)
def data_dependent_branch(x):
    if x.sum() > 0:
        return x * 2
    return x - 1


@C.add(T1, graphs=None)
def item_used_in_python(x):
    n = x.abs().max().item()
    return x / n, round(n, 3) > 0


@C.add(T1, graphs=None)
def print_in_middle(x):
    y = x + 1
    # Print to a private buffer: same graph-break semantics as stdout without noise in test logs.
    print("value", y.shape, file=io.StringIO())
    return y * 2


@C.add(T1, graphs=None)
def tolist_loop(x):
    total = 0.0
    for v in x[0].tolist():
        total += v
    return x + total


@C.add(T1, graphs=None)
def data_dependent_while(x):
    steps = 0
    while x.abs().max() > 0.1 and steps < 10:
        x = x / 2
        steps += 1
    return x, steps


@C.add(T1, graphs=None)
def bool_of_tensor(x):
    return x * 2 if bool((x > 0).any()) else x


@C.add(T1, graphs=None)
def nonzero_dynamic_shape(x):
    idx = (x > 0).nonzero()
    return idx.shape[0], x[x > 0].sum()


@C.add(T1, graphs=None)
def int_of_tensor_in_range(x):
    n = int((x > 0).sum()) % 3
    for _ in range(n):
        x = x + 1
    return x


@C.add(T1, graphs=None)
def numpy_roundtrip(x):
    a = x.numpy() * 2
    return torch.from_numpy(a) + 1


class _Box:
    def __init__(self, items):
        self.items = items


@C.add(T1, graphs=None)
def one_list_reached_two_ways_across_a_break(x):
    # Both the object and the list are rebuilt for real before the break: once each, the object holding the list.
    xs = [x]
    box = _Box(xs)
    print("break", file=io.StringIO())
    return box.items is xs, len(box.items)


@contextlib.contextmanager
def _cleanup_scope():
    try:
        yield 1
    finally:
        pass


@C.add(T1, graphs=None)
def contextmanager_body_raises(x):
    # The manager's generator must reach __exit__ as a generator (its throw() gets the block's exception).
    try:
        with _cleanup_scope():
            raise ValueError("boom")
    except ValueError:
        return x + 1


@C.add(T1, graphs=None)
def list_remove_compares_tensors_with_eq(x):
    items = [x, x + 1]
    try:
        items.remove(items[1])  # compares x == items[1] first: a tensor's truth is ambiguous, as in eager
    except RuntimeError:
        return x - 1
    return x + 1


@C.add(T1, graphs=None)
def loop_over_a_list_that_shrinks_across_a_break(x):
    # The list iterator's index stays past the end of the emptied list; the items added later start there.
    items, seen = [1, 2, 3], []
    for v in items:
        items.clear()
        print("break", file=io.StringIO())
        seen.append(v)
        items.extend([7, 8, 9, 10])
    return x + 1, seen



class _ResumesIntoSuper(_Base):
    """transformers' DynamicCache.__init__: a break, then super().__init__ in the resume function, where CPython
    3.11 takes the frame's first local as `self`."""

    def __init__(self, x):
        y = x + 1
        print("break", file=io.StringIO())
        super().__init__(y, scale=2.0)


@C.add(T1, graphs=None)
def super_in_a_resume_function(x):
    return _ResumesIntoSuper(x).x * 3


@C.add(values(lambda: torch.ones(3), [1]), graphs=None)
def side_effects_applied_before_a_break(x, log):
    log.append(x * 2)
    print(len(log), file=io.StringIO())  # a break: the list must already hold the new item
    log.append(len(log))
    return x + log[1]


@C.add(values(lambda: torch.ones(3), []), graphs=None)
def contextmanager_block_with_a_break(x, log):
    with _logged(log, "a"):  # a @contextmanager block with a break inside: the real manager is entered
        y = x * 2
        print("inside", file=io.StringIO())
        y = y + 1
    return y

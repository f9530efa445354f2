"""What the generated code calls at run time: objects made in the traced code rebuilt without running their
__init__ again, iterators and generators placed where the trace left them, and the side effects on outside
objects written (jit/side_effects.py). jit/codegen.py emits the calls."""
from __future__ import annotations

import collections

from jit.variables.outside import DELETED


def rebuild_object(cls, attrs: dict, items: dict | None = None):
    """A user-class instance created in the compiled code, rebuilt on return without running __init__ again; an
    instance of a dict subclass gets its items back through dict's own __setitem__ (jit/semantics/dict_objects)."""
    obj = object.__new__(cls) if items is None else dict.__new__(cls)
    if items is not None:
        setitem = collections.OrderedDict.__setitem__ if isinstance(obj, collections.OrderedDict) else \
            dict.__setitem__
        if isinstance(obj, collections.OrderedDict):
            collections.OrderedDict.__init__(obj)
        for k, v in items.items():
            setitem(obj, k, v)
    for k, v in attrs.items():
        object.__setattr__(obj, k, v)
    return obj


def advance_iterator(it, n: int) -> None:
    """Take the n items the traced code took from an outside iterator (side effects, jit/side_effects.py)."""
    for _ in range(n):
        next(it)


def replace_list_items(target: list, items: list) -> None:
    """An outside list's new contents, written in place (side effects, jit/side_effects.py)."""
    target[:] = items


def replace_dict_items(target: dict, items: dict) -> None:
    """An outside dict's new contents in their order, written in place: cleared and refilled."""
    target.clear()
    target.update(items)


def patch_list(target: list, at: tuple, values: list, dropped: int, tail: list) -> None:
    """What the traced code did to an outside list it did not read whole (jit/variables/outside.py), done to the
    real one: items stored over entry items (entry indexes, in order), `dropped` items popped off the entry end,
    then `tail` appended. Costs what the writes are, not the list's length."""
    for i, value in zip(at, values):
        target[i] = value
    if dropped:
        del target[len(target) - dropped:]
    target.extend(tail)


def patch_dict(target: dict, keys: tuple, values: list) -> None:
    """An outside dict's stores and deletes (`values[i] is DELETED`), replayed in order: the same final contents
    and key order as the traced code's, without reading the dict whole."""
    for key, value in zip(keys, values):
        if value is DELETED:
            del target[key]
        else:
            target[key] = value


def iterator_at(iterable, pos: int):
    """A real iterator over `iterable` that has already given `pos` items (-1: exhausted), for a loop in progress
    over a container the traced code made: live over the rebuilt container, as the traced iterator was."""
    it = iter(iterable)
    if pos < 0:
        for _ in it:
            pass
    advance_iterator(it, max(pos, 0))
    return it


def call_function(fn, args: tuple, kwargs: dict):
    """fn(*args, **kwargs): a generator not started in the traced code, made again (creating one runs none of
    its body)."""
    return fn(*args, **kwargs)


def exhausted_generator():
    """A generator that is finished, standing for one the traced code ran to its end."""
    return
    yield  # unreachable: it makes this a generator function

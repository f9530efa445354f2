"""`is` / `in` decided at capture time on objects from outside pins their identity: objects are otherwise guarded by
type only (and closures by code), so a different object of the same type must recompile, never reuse the answer."""
import torch

import jit


class Cfg:
    pass


A, B = Cfg(), Cfg()
current = A
choices = (A,)


def by_identity(x):
    if current is A:
        return x + 1
    return x - 1


def by_membership(x):
    if current in choices:
        return x * 2
    return x * 3


def test_is_on_objects_of_one_type(fresh_jit):
    global current
    x = torch.zeros(2)
    compiled = jit.compile(by_identity, backend="eager")
    try:
        for obj in (A, B, A):
            current = obj
            assert torch.equal(compiled(x), by_identity(x))
    finally:
        current = A


def test_in_on_objects_of_one_type(fresh_jit):
    global current
    x = torch.ones(2)
    compiled = jit.compile(by_membership, backend="eager")
    try:
        for obj in (A, B):
            current = obj
            assert torch.equal(compiled(x), by_membership(x))
    finally:
        current = A


def test_closures_compared_by_identity(fresh_jit):
    def make():
        return lambda: 1

    def f(x, g, h):
        return x + 1 if g is h else x - 1

    compiled = jit.compile(f, backend="eager")
    g = make()
    x = torch.zeros(1)
    assert torch.equal(compiled(x, g, g), f(x, g, g))
    other = make()  # same code, another object
    assert torch.equal(compiled(x, g, other), f(x, g, other))

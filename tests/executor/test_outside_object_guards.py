"""Facts about objects from outside decided at capture time stay guarded: `is` / `in` pins identity (objects are
otherwise guarded by type only, closures by code), and an attribute found missing (hasattr, getattr with a
default) must stay missing. A changed object recompiles; it never reuses the old answer."""
import warnings

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


class Holder:
    pass


holder = Holder()


def uses_hasattr(x):
    if hasattr(holder, "scale"):
        return x * holder.scale
    return x


def uses_getattr_default(x):
    return x * getattr(holder, "scale", 5)


def test_attribute_added_later(fresh_jit):
    x = torch.ones(2)
    for fn in (uses_hasattr, uses_getattr_default):
        compiled = jit.compile(fn, backend="eager")
        try:
            assert torch.equal(compiled(x), fn(x))
            holder.scale = 3
            assert torch.equal(compiled(x), fn(x))
            del holder.scale
            assert torch.equal(compiled(x), fn(x))
        finally:
            holder.__dict__.pop("scale", None)


class Cached(torch.nn.Module):
    def forward(self, x):
        if hasattr(self, "extra"):
            return x + self.extra
        return x * 2


def test_module_attribute_added_later(fresh_jit):
    m = Cached()
    x = torch.ones(3)
    compiled = jit.compile(m, backend="eager")
    assert torch.equal(compiled(x), m(x))
    m.extra = torch.full((3,), 7.0)  # a plain attribute on the module, set after the first call
    assert torch.equal(compiled(x), m(x))


class Dynamic:
    def __getattr__(self, name):
        if name == "scale":
            return 4
        raise AttributeError(name)


def test_getattr_hook_is_not_assumed(fresh_jit):
    obj = Dynamic()

    def f(x):
        return x * getattr(obj, "scale", 1) + getattr(obj, "other", 1)

    x = torch.ones(2)
    assert torch.equal(jit.compile(f, backend="eager")(x), f(x))


class Scaled:
    scale = 2.0


scaled = Scaled()


class WithEps(torch.nn.Module):
    eps = 1.0

    def forward(self, x):
        return x + self.eps


def test_class_attribute_read_through_an_instance(fresh_jit):
    def f(x):
        return x * scaled.scale

    x = torch.ones(2)
    compiled = jit.compile(f, backend="eager")
    m = WithEps()
    compiled_m = jit.compile(m, backend="eager")
    try:
        assert torch.equal(compiled(x), f(x)) and torch.equal(compiled_m(x), m(x))
        Scaled.scale, WithEps.eps = 5.0, 3.0
        assert torch.equal(compiled(x), f(x)) and torch.equal(compiled_m(x), m(x))
    finally:
        Scaled.scale, WithEps.eps = 2.0, 1.0


NAN64, NAN32, NAN = __import__("numpy").float64("nan"), __import__("numpy").float32("nan"), float("nan")


def nan_constants(x):
    return x + NAN64 + NAN32 + NAN


def test_nan_constants_match_their_guards(fresh_jit):
    # NaN equals nothing, itself included: a value guard written as `v == nan` failed on every call
    fast = jit.compile(nan_constants, backend="eager")
    for _ in range(4):
        assert torch.isnan(fast(torch.ones(2))).all()
    assert jit.counters["frames_compiled"] == 1 and jit.counters["recompiles"] == 0



def test_an_outside_list_times_a_number_is_a_new_list(fresh_jit):
    # fuzz seed 555512: `t1 * 2` in a frame of its own that reads t1 from its closure raised inside the compiler
    t1 = [torch.randn(3)]

    def h(x):
        doubled = t1 * 2
        return doubled, doubled is t1, len(t1), x + 1

    x = torch.randn(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = jit.compile(h)(x)
    want = h(x)
    assert got[1:3] == want[1:3] and len(got[0]) == 2 and all(g is w for g, w in zip(got[0], want[0]))
    assert torch.equal(got[3], want[3])

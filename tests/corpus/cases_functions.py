"""User functions: inlined calls, closures, defaults, kw-only, *args/**kwargs, lambdas, partial, recursion."""
import functools

import torch

from .case import CaseList, tensors, values, randn

C = CaseList("functions")
T1 = tensors((3, 4))
T2 = tensors((3, 4), (3, 4))


def _double(t):
    return t * 2


def _affine(t, scale=2.0, shift=1.0):
    return t * scale + shift


def _kwonly(t, *, power=2, eps=1e-5):
    return t.abs().pow(power) + eps


def _varargs(*ts):
    return sum(ts[1:], ts[0])


def _varkw(t, **opts):
    return t * opts.get("scale", 1.0) + opts.get("shift", 0.0)


def _both(t, *rest, mode="add", **extra):
    out = t
    for r in rest:
        out = out + r if mode == "add" else out * r
    return out * extra.get("k", 1)


def _fact(n):
    return 1 if n <= 1 else n * _fact(n - 1)


def _tensor_recursion(t, depth):
    if depth == 0:
        return t
    return _tensor_recursion(t * 2 - 1, depth - 1)


def _make_scaler(k):
    def scale(t):
        return t * k

    return scale


def _counter():
    count = 0

    def inc(t):
        nonlocal count
        count += 1
        return t + count

    return inc


@C.add(T1)
def call_user_function(x):
    return _double(x) + _double(x + 1)


@C.add(T1)
def defaults_used(x):
    return _affine(x)


@C.add(T1)
def defaults_overridden(x):
    return _affine(x, 3.0), _affine(x, shift=-1.0), _affine(x, scale=0.5, shift=0.5)


@C.add(T1)
def keyword_only(x):
    return _kwonly(x), _kwonly(x, power=3), _kwonly(x, eps=1.0, power=1)


@C.add(T2)
def star_args(x, y):
    return _varargs(x, y, x)


@C.add(T2)
def star_args_splat(x, y):
    args = (x, y)
    return _varargs(*args), _varargs(*[x], *(y,))


@C.add(T1)
def star_kwargs(x):
    opts = {"scale": 3.0}
    return _varkw(x, **opts), _varkw(x, shift=2.0, **opts), _varkw(x)


@C.add(T2)
def mixed_signature(x, y):
    return _both(x, y, y, mode="mul", k=2), _both(x, y)


@C.add(T1)
def closure_read(x):
    k = 3.0

    def f(t):
        return t * k

    return f(x)


@C.add(T1)
def closure_factory(x):
    triple = _make_scaler(3)
    return triple(x), _make_scaler(0.5)(x)


@C.add(T1)
def closure_over_tensor(x):
    bias = x.mean()

    def f(t):
        return t - bias

    return f(x)


@C.add(T1)
def closure_nonlocal(x):
    inc = _counter()
    a = inc(x)
    b = inc(x)
    return a, b


@C.add(T1)
def nested_def_nonlocal(x):
    acc = x

    def step(k):
        nonlocal acc
        acc = acc * k

    step(2)
    step(3)
    return acc


@C.add(T1)
def lambda_inline(x):
    f = lambda t, k=2: t * k + 1  # noqa: E731
    return f(x), f(x, 5)


@C.add(T1)
def lambda_in_list(x):
    fs = [lambda t: t + 1, lambda t: t * 2, torch.relu]
    return [f(x) for f in fs]


@C.add(T1)
def functools_partial(x):
    f = functools.partial(_affine, scale=4.0)
    g = functools.partial(torch.add, other=1.0)
    return f(x), f(x, shift=0.0), g(x)


@C.add(T1)
def functools_reduce(x):
    return functools.reduce(lambda a, b: a * b, [x, x + 1, x + 2])


@C.add(T1)
def small_recursion_constant(x):
    return x * _fact(5)


@C.add(T1)
def small_recursion_tensor(x):
    return _tensor_recursion(x, 3)


@C.add(T1)
def higher_order(x):
    def apply_twice(f, t):
        return f(f(t))

    return apply_twice(torch.sin, x), apply_twice(_double, x)


@C.add(T1)
def function_returning_tuple(x):
    def stats(t):
        return t.mean(), t.std()

    m, s = stats(x)
    return (x - m) / s


@C.add(T1)
def generator_expression(x):
    return sum(x * i for i in range(3)), tuple(i * 2 for i in range(3))


@C.add(T1)
def decorator_wrapped(x):
    def deco(f):
        @functools.wraps(f)
        def wrapper(t):
            return f(t) + 1

        return wrapper

    @deco
    def g(t):
        return t * 3

    return g(x)


@C.add(values(lambda: randn(3, 4), scale=2.0, shift=-1.0))
def called_with_kwargs(x, scale=1.0, shift=0.0):
    return x * scale + shift


@C.add(values(lambda: randn(3, 4), lambda: randn(3, 4, seed=7), lambda: randn(3, 4, seed=8)))
def own_varargs(x, *rest):
    return x + sum(rest)


@C.add(values(lambda: randn(3, 4), a=1.0, b=2.0))
def own_varkwargs(x, **kw):
    return x * kw["a"] + kw["b"], sorted(kw)


@C.add(values(lambda: randn(3, 4), power=3))
def own_kwonly(x, *, power=2):
    return x ** power


@C.add(T1)
def function_attribute_default_mutable(x):
    def collect(t, acc=None):
        acc = [] if acc is None else acc
        acc.append(t)
        return acc

    return collect(x), collect(x * 2, [x])


@C.add(T1)
def staticmethod_like_global_fn(x):
    # torch functions pulled into locals are still torch functions to the tracer.
    relu, add = torch.relu, torch.add
    return add(relu(x), 1)


@C.add(T1)
def generator_interleaves_with_its_consumer(x):
    # A generator runs up to each yield when asked: it sees what the loop body did before the next step.
    seen = []

    def counts():
        for _ in range(3):
            yield len(seen)

    for n in counts():
        seen.append(n)
    return x * len(seen), seen


@C.add(T1)
def generator_yield_from_and_return_value(x):
    def inner():
        yield x
        yield x * 2
        return 5

    def outer():
        got = yield from inner()
        yield x + got

    return tuple(outer())


@C.add(T1)
def generator_stops_where_its_consumer_stops(x):
    def items():
        yield x
        yield None
        raise ValueError("never reached: any() stops at the first true value")

    return x + 1, any(v is None for v in items()), next(iter(items())) is x


@C.add(T1)
def generator_send_and_close(x):
    def running_total():
        total = 0
        while True:
            got = yield total
            total = total + got

    acc = running_total()
    next(acc)
    acc.send(2)
    last = acc.send(3)
    unused = running_total()
    unused.close()  # never started: closing runs none of its code
    return x * last, list(unused)


@functools.lru_cache(None)
def _cached_scale(n, name="x"):
    return n * 2 + len(name)


class _Logger:
    """transformers' `logger.warning_once`: an lru_cache'd function set on the logger class, called as a method."""
    said: list = []

    @functools.lru_cache(None)
    def warning_once(self, message):
        self.said.append(message)


_LOG = _Logger()


@C.add(T1)
def lru_cache_function_and_method(x):
    _LOG.warning_once("loss_type=None: using the default loss")
    return x * _cached_scale(3, name="ab") + len(_LOG.said)


@C.add(T1)
def lru_cache_on_a_tensor_traces_the_function(x):
    return _cached_scale(x)

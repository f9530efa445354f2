"""Python that real libraries use (transformers, torchvision): zero-argument super() across graph breaks,
configuration objects with their own __getattribute__, and the like. Each case is reduced from a model that
broke or crashed under the compiler."""
import contextlib
import contextvars
import dataclasses
import functools

import torch

from .case import CaseList, randn, tensors, values



C = CaseList("library")
T1 = tensors((3, 4))


class _Base:
    def __init__(self, x, scale=1.0):
        self.x = x * scale


class _SuperFirst(_Base):
    def __init__(self, x):
        super().__init__(x, 3.0)  # the frame's first read of self is super()'s own


@C.add(T1)
def super_as_first_read_of_self(x):
    return _SuperFirst(x).x + 1


class _Mixin:
    def __getattribute__(self, key):
        spec = super().__getattribute__("__dict__").get("_spec")  # object's own lookup, past the subclass's
        if spec is not None and key in spec:
            raise AttributeError(key)
        return super().__getattribute__(key)


class _Config(_Mixin):
    """transformers' PreTrainedConfig: attribute_map renames, read through a chain of __getattribute__."""
    attribute_map = {"n_embd": "hidden_size"}

    def __init__(self):
        self.hidden_size = 4
        self.scale = 0.5

    def __getattribute__(self, key):
        if key != "attribute_map" and key in super().__getattribute__("attribute_map"):
            key = super().__getattribute__("attribute_map")[key]
        return super().__getattribute__(key)


_CONFIG = _Config()


@C.add(T1)
def config_with_its_own_getattribute(x):
    return x[:, :_CONFIG.n_embd] * _CONFIG.scale + _CONFIG.hidden_size


# ---- side effects on objects from outside: recorded, applied after the graph (jit/side_effects.py) ---------------

@C.add(values(lambda: torch.ones(3), scale=3.0, other=1))
def kwargs_pop_and_store(x, **kwargs):
    # transformers' forward wrappers pop and set entries of their own **kwargs
    scale = kwargs.pop("scale", 2.0)
    kwargs["seen"] = True
    kwargs.setdefault("other", 5)
    return x * scale, kwargs


@C.add(values(lambda: torch.ones(3), {"drop": 1, "keep": 2}))
def outside_dict_changed(x, d):
    d["y"] = x + 1
    d.pop("drop")
    d.setdefault("z", 3)
    d.update(w=x * 2)
    return x * d["keep"] + d["y"]


@C.add(values(lambda: torch.ones(3), [1, 2]))
def outside_list_changed(x, xs):
    xs.append(x)
    xs.insert(0, x * 2)
    xs.pop(1)
    xs += [4]
    xs[-1] = 5
    del xs[1]
    return x * len(xs) + xs[0]


@dataclasses.dataclass
class _State:
    step: int = 0
    last: object = None


@C.add(values(lambda: torch.ones(3), _State))
def attribute_writes_on_an_outside_object(x, st):
    st.step += 1
    st.last = x * 2
    return x + st.last  # reads see the write


@C.add(values(lambda: torch.ones(3), _State))
def attribute_written_twice(x, st):
    st.last = x * 2
    st.last = st.last + 1
    return x.sum() + st.step


# ---- Python that library functions run -----------------------------------------------------------------------

@C.add(T1)
def imports_inside_the_function(x):
    import math
    import torch.nn.functional as F
    from collections import abc  # noqa: F401 - a submodule imported with from
    from torch.nn import functional as G
    return F.relu(x) * math.pi + G.silu(x)


def _with_defaults(self, a, use_cache=None, b=2):
    return a


@C.add(T1)
def function_code_and_defaults(x):
    # transformers' merge_with_config_defaults reads func.__code__.co_varnames
    names = _with_defaults.__code__.co_varnames
    index = names.index("use_cache") - 1
    return x * index + _with_defaults.__defaults__[-1] + len(_with_defaults.__name__)


def _decorated(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs) * 2
    return wrapper


@_decorated
def _scaled(x):
    return x + 1


@C.add(T1)
def functools_wraps_wrapped(x):
    return _scaled(x) + _scaled.__wrapped__(x)


@C.add(T1)
def finfo_and_iinfo_made_inside(x):
    # transformers' attention masks: torch.finfo(dtype).min as the masked value
    return x.clamp(min=torch.finfo(x.dtype).min / 2) + torch.iinfo(torch.int8).max


@C.add(values(lambda: torch.ones(3), {"a": 2}))
def except_clause_followed_without_a_break(x, d):
    # a key missing from a dict whose keys are guarded, an index past a list: the except clause is traced
    try:
        scale = d["missing"]
    except KeyError:
        scale = d["a"]
    try:
        shift = [1, 2][4]
    except LookupError:
        shift = 3
    return x * scale + shift


# ---- try/except as libraries write it: the exception followed into the clause that catches it, no break --------
D = values(lambda: torch.ones(3), {"a": 2})


@C.add(D)
def except_as_binds_the_lookup_error(x, d):
    try:
        v = d["missing"]
    except KeyError as e:  # eager's KeyError('missing'): str() quotes the key
        v = len(str(e)) + len(e.args)
    return x * v


@C.add(D)
def except_tuple_of_classes(x, d):
    try:
        v = d["missing"]
    except (KeyError, IndexError):
        v = 2
    try:
        w = (1, 2)[3]
    except (TypeError, LookupError) as e:
        w = len(e.args[0])  # "tuple index out of range"
    return x * v + w


@C.add(T1)
def raise_caught_in_the_same_frame(x):
    try:
        raise ValueError("bad")
    except ValueError as e:
        msg = e.args[0]
    return x * len(msg)


@C.add(D)
def nested_try_inner_clause_does_not_match(x, d):
    try:
        try:
            v = d["missing"]
        except IndexError:
            v = 100
        finally:
            x = x + 1  # runs on the way out to the outer clause
    except KeyError as e:
        v = len(repr(e))
    return x * v


def _lookup(d, key):
    return d[key]


def _at_most_two(n):
    if n > 2:
        raise ValueError(f"n must be at most 2, got {n}")
    return n


@C.add(D)
def raised_in_an_inlined_helper_caught_by_the_caller(x, d):
    try:
        v = _lookup(d, "missing")
    except KeyError as e:
        v = e.args[0]
    try:
        n = _at_most_two(3)
    except ValueError as e:
        n = len(str(e))
    return x * n, v


@C.add(D)
def except_exception_catches_a_key_error(x, d):
    try:
        d["missing"]
    except Exception as e:
        facts = (str(e), repr(e), f"{e}|{e!r}", type(e).__name__, e.__class__ is KeyError, isinstance(e, LookupError),
                 isinstance(e, (IndexError, ValueError)), e.args)
    return x + 1, facts


def _reraising(d):
    try:
        return d["missing"]
    except KeyError:
        raise  # leaves the helper; its caller catches it


@C.add(D)
def reraise_leaves_the_helper_for_the_caller(x, d):
    try:
        v = _reraising(d)
    except KeyError as e:
        v = len(e.args) + 1
    return x * v


@C.add(D)
def finally_after_an_except(x, d):
    log = []
    try:
        v = d["missing"]
    except KeyError:
        log.append("except")
        v = 3
    else:
        log.append("else")
    finally:
        log.append("finally")
    return x * v, log


@C.add(D)
def raise_from_inside_a_clause_caught_outside(x, d):
    try:
        try:
            d["missing"]
        except KeyError as e:
            raise RuntimeError("lookup failed") from e
    except RuntimeError as e:
        return x - 1, str(e)


class _ConfigError(ValueError):
    code = 3

    def describe(self):
        return f"config: {self.args[0]}"


@C.add(T1)
def user_exception_subclass(x):
    try:
        raise _ConfigError("no such option")
    except ValueError as e:
        return x * e.code, e.describe(), str(e), repr(e)


@C.add(values(lambda: torch.ones(3), "12x"))
def int_of_a_bad_string_caught(x, s):
    try:
        n = int(s)
    except (TypeError, ValueError) as e:
        n = len(str(e))
    return x * n


@C.add(values(lambda: torch.ones(3, requires_grad=True), {"a": 2}))
def exception_leaves_a_no_grad_block(x, d):
    try:
        with torch.no_grad():
            y = x * 2
            v = d["missing"]
    except KeyError:
        v = 1
    return y + v, torch.is_grad_enabled()


@C.add(T1)
def tensor_carried_by_an_exception(x):
    try:
        raise ValueError(x * 2, "scaled")
    except ValueError as e:
        t, label = e.args
    return t + len(label)


@C.add(values(lambda: torch.ones(3), {"c": 4}))
def retry_over_candidate_keys(x, d):
    for key in ("a", "b", "c"):
        try:
            v = d[key]
            break
        except KeyError:
            continue
    return x * v


@C.add(T1)
def failed_assert_caught(x):
    try:
        assert x.dim() == 3, f"expected 3 dims, got {x.dim()}"
    except AssertionError as e:
        return x.unsqueeze(0), str(e)
    return x


def _counted():
    yield 1
    return 5


@C.add(values(lambda: torch.ones(3), []))
def next_of_an_exhausted_iterator_caught(x, xs):
    try:
        first = next(iter(xs))
    except StopIteration as e:
        first = len(e.args) + 2
    gen = _counted()
    next(gen)
    try:
        next(gen)
    except StopIteration as e:  # a generator's return value travels in its StopIteration
        first += e.value
    return x * first


@C.add(T1)
def torch_mode_stacks_read(x):
    # torch.nn.MultiheadAttention's fast-path checks (torch 2.11) ask whether a dispatch or function mode is active
    from torch.utils._python_dispatch import _get_current_dispatch_mode, is_in_torch_dispatch_mode
    modes = torch._C._len_torch_function_stack() + torch._C._len_torch_dispatch_stack()
    if _get_current_dispatch_mode() is None and not is_in_torch_dispatch_mode() and modes == 0:
        return x + 1
    return x - 1


# ---- contextvars.ContextVar from outside: get / set / reset as data (jit/semantics/context_vars.py) -----------
# Each case leaves its var as it found it, or sets it to a value that does not depend on what it held, so the eager
# and the compiled run see the same var. The state left after a call: tests/executor/test_context_vars.py.

_CV_SCALE = contextvars.ContextVar("corpus_scale", default=1)
_CV_LEFT = contextvars.ContextVar("corpus_left", default=0)
_CV_UNSET = contextvars.ContextVar("corpus_unset")


@C.add(T1)
def contextvar_set_get_reset(x):
    tok = _CV_SCALE.set(3)
    y = x * _CV_SCALE.get()
    _CV_SCALE.reset(tok)
    return y * _CV_SCALE.get()


@C.add(T1)
def contextvar_set_without_reset(x):
    _CV_LEFT.set(x.shape[1])  # left set after the call, as eager leaves it
    return x * _CV_LEFT.get()


@C.add(T1)
def contextvar_defaults(x):
    # the var's own default, and get's argument for a var without one
    return x * _CV_SCALE.get() + _CV_UNSET.get(0.5)


@C.add(T1)
def contextvar_without_value_caught(x):
    try:
        v = _CV_UNSET.get()
    except LookupError:
        v = 2
    return x * v


# ---- @contextlib.contextmanager: the generator inlined, to its yield at the `with`, the rest at the exit --------

@contextlib.contextmanager
def _doubled(k):
    yield k * 2


@contextlib.contextmanager
def _logged(log, name):
    log.append(("enter", name))
    yield name
    log.append(("exit", name))


@contextlib.contextmanager
def _guarded(log):
    log.append("open")
    try:
        yield len(log)
    finally:
        log.append("closed")


@contextlib.contextmanager
def _using_scale(v):
    tok = _CV_SCALE.set(v)
    try:
        yield
    finally:
        _CV_SCALE.reset(tok)


@contextlib.contextmanager
def _without_grad():
    with torch.no_grad():
        yield "no grad"


@C.add(T1)
def contextmanager_yield_is_the_as_target(x):
    with _doubled(3) as s:
        y = x * s
    return y


@C.add(values(lambda: torch.ones(3), []))
def contextmanager_state_before_and_after_yield(x, log):
    with _logged(log, "a") as name:
        y = x + len(name)
        log.append("body")
    return y


@C.add(values(lambda: torch.ones(3), ["x"]))
def contextmanager_try_finally_around_yield(x, log):
    with _guarded(log) as n:
        y = x * n
    return y, len(log)


@C.add(values(lambda: torch.ones(3), []))
def contextmanager_nested(x, log):
    with _logged(log, "outer"), _doubled(2) as s:
        with _guarded(log) as n:
            y = x * s + n
    return y


@C.add(values(lambda: torch.ones(3), []))
def contextmanager_used_twice(x, log):
    with _logged(log, "first"):
        y = x * 2
    for i in range(2):
        with _logged(log, i) as name:
            y = y + name
    return y


@C.add(T1)
def contextmanager_setting_a_contextvar(x):
    with _using_scale(4):
        y = x * _CV_SCALE.get()
    return y + _CV_SCALE.get()


@C.add(values(lambda: randn(3, requires_grad=True)))
def contextmanager_entering_no_grad(x):
    with _without_grad() as what:
        y = x * 2
    return y, y.requires_grad, x * 3, what


@C.add(values(lambda: torch.ones(3), []))
def contextmanager_returning_inside_the_block(x, log):
    with _logged(log, "r"):
        return x + 1

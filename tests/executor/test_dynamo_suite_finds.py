"""Python semantics found wrong by running PyTorch's own Dynamo unit tests (test_functions, test_dicts,
test_exceptions) with jit.compile in torch.compile's place, reduced to the programs here: each compiled with the
eager backend against plain Python, with no internal error (which would hide a wrong answer behind eager's)."""
import collections
import traceback
from contextlib import contextmanager

import torch

import jit


def same_as_eager(fn, *make_args):
    """fn compiled and plain on fresh arguments (make_args: callables), its results equal; returns them."""
    want = fn(*(m() for m in make_args))
    got = jit.compile(fn, backend="eager")(*(m() for m in make_args))
    assert jit.counters["compile_errors"] == 0
    assert repr(got) == repr(want)
    return got


def test_container_methods_called_with_arguments_they_do_not_take_raise_pythons_type_error(fresh_jit):
    def fn(x):
        out = []
        for call in (lambda: {}.update({}, {}), lambda: [x].append(1, 2), lambda: {1: x}.get(), lambda: [].pop(1, 2)):
            try:
                call()
            except TypeError as e:
                out.append(str(e))
        return out, x + 1

    assert len(same_as_eager(fn, lambda: torch.ones(2))[0]) == 4


class Plain:
    def __init__(self):
        self.a, self.b = 1, 2


def test_an_attribute_set_on_an_object_from_outside_shows_in_its_dict(fresh_jit):
    # the real __dict__ was read through its source while the write waited in the side-effect log
    def fn(obj, x):
        obj.c = 3
        return sorted(obj.__dict__.items()), len(obj.__dict__), x * 2

    same_as_eager(fn, Plain, lambda: torch.ones(2))

    def deleted(obj, x):
        del obj.a
        return x * len(obj.__dict__)

    same_as_eager(deleted, Plain, lambda: torch.ones(2))

    def read_then_set(obj, x):
        d = obj.__dict__
        obj.c = 3
        return sorted(d), x + 1

    same_as_eager(read_then_set, Plain, lambda: torch.ones(2))


def test_an_ordered_dict_is_read_in_its_own_order(fresh_jit):
    def make():
        d = collections.OrderedDict()
        d[2], d[3] = 4, 5
        d.move_to_end(2)
        return d

    assert same_as_eager(lambda d, x: (list(d.values()), list(d), x + 1), make, lambda: torch.ones(1))[0] == [5, 4]


def test_a_mappingproxy_compares_as_its_mapping(fresh_jit):
    def fn(x):
        d = {"a": 1, "b": 2}
        m = d.keys().mapping
        return m == d, m != {"a": 1}, x + 1

    assert same_as_eager(fn, lambda: torch.ones(1))[:2] == (True, True)


class AnswersEverything:
    def __getattr__(self, name):
        return 30


ANSWERS = AnswersEverything()


def test_a_global_whose_getattr_answers_anything(fresh_jit):
    # wrapping the global asked its __name__ (user code answering 30) and looked that up in builtins
    same_as_eager(lambda x: x * ANSWERS.b, lambda: torch.ones(2))


def test_an_unhashable_dict_key_raises_eagers_type_error(fresh_jit):
    def fn(x):
        try:
            return {[1, 2, 3]: x * 2}
        except TypeError as e:
            return str(e)

    assert same_as_eager(fn, lambda: torch.ones(2)) == "unhashable type: 'list'"


class ForwardingDict(dict):
    def __new__(cls, *args, **kwargs):
        return super().__new__(cls, *args, **kwargs)


def test_super_in_new_and_sizes_of_tensor_values_break_instead_of_failing(fresh_jit):
    def made(x):
        c = ForwardingDict()
        c["key"] = x
        return c["key"] + 1

    same_as_eager(made, lambda: torch.ones(2))

    def size_of_values(x):
        t = torch.tensor(x.shape[1:])
        s = torch.Size([t[0], 64])
        return s, s in {torch.Size([32, 64]): 1}

    same_as_eager(size_of_values, lambda: torch.randn(4, 32))


@contextmanager
def nothing():
    yield


def test_a_traceback_after_a_break_names_the_users_function(fresh_jit):
    def fn(x):
        try:
            with nothing():
                print("a break")
                return 1 / 0
        except ZeroDivisionError as e:
            return [(f.name, f.line) for f in traceback.extract_tb(e.__traceback__)], x + 1

    got = same_as_eager(fn, lambda: torch.ones(1))
    assert got[0] == [("fn", "return 1 / 0")]

"""Side effects as data (jit/side_effects.py): changes to objects from outside the traced code are recorded,
seen by later reads, and applied after the graph runs, leaving every object as eager leaves it, without a break."""
import warnings

import pytest
import torch

import jit


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    jit.reset()


class Holder:
    def __init__(self):
        self.a = 1
        self.extra = "x"


def _run_both(fn, make):
    e_args, c_args = make(), make()
    expected = fn(*e_args)
    got = jit.compile(fn, backend="eager")(*c_args)
    return expected, got, e_args, c_args


def test_attribute_delete_and_rewrite():
    def f(x, h):
        del h.extra
        found = hasattr(h, "extra")
        h.a = x * 2
        h.extra = "y" if not found else "z"
        return h.a + 1

    expected, got, (_, he), (_, hc) = _run_both(f, lambda: (torch.ones(2), Holder()))
    torch.testing.assert_close(got, expected)
    assert vars(hc).keys() == vars(he).keys() and hc.extra == he.extra == "y"
    torch.testing.assert_close(hc.a, he.a)
    assert jit.counters.graph_breaks == 0


def test_one_dict_reached_through_two_names():
    shared = {}

    def f(x, d):
        d["k"] = x + 1
        shared["k"] = shared["k"] * 2  # the same dict: reads see the first write
        return d["k"]

    out = jit.compile(f, backend="eager")(torch.ones(2), shared)
    torch.testing.assert_close(out, torch.full((2,), 4.0))
    torch.testing.assert_close(shared["k"], torch.full((2,), 4.0))
    assert jit.counters.graph_breaks == 0


def test_module_attribute_write():
    class Counter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.calls = 0
            self.last_shape = None

        def forward(self, x):
            self.calls += 1
            self.last_shape = tuple(x.shape)
            return self.lin(x)

    m = Counter()
    fast = jit.compile(m, backend="eager")
    x = torch.randn(3, 2)
    torch.testing.assert_close(fast(x), m.lin(x))
    assert m.calls == 1 and m.last_shape == (3, 2)
    fast(x)
    assert m.calls == 2  # a new value of an attribute the code read: recompiled, and counted right
    assert jit.counters.graph_breaks == 0


def test_writing_a_submodule_or_parameter_still_breaks():
    class Swap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

        def forward(self, x):
            self.w = torch.nn.Parameter(x.detach().clone())
            return x * 2

    m = Swap()
    out = jit.compile(m, backend="eager")(torch.full((2,), 3.0))
    torch.testing.assert_close(out, torch.full((2,), 6.0))
    torch.testing.assert_close(m.w.data, torch.full((2,), 3.0))


def test_list_changed_by_the_graph_and_a_break():
    def f(x, log):
        log.append(x * 2)
        log.insert(0, "start")
        print(len(log))  # a break: the list holds both items when print runs
        log.append(len(log))
        return x

    log_e, log_c = [], []
    f(torch.ones(1), log_e)
    jit.compile(f, backend="eager")(torch.ones(1), log_c)
    assert log_c[0] == "start" and log_c[2] == log_e[2] == 2
    torch.testing.assert_close(log_c[1], log_e[1])
    assert jit.counters.graph_breaks == 1


def test_iterator_from_outside_is_read_and_advanced():
    def f(x, it):
        a = next(it)
        b = next(it)
        return x * a + b

    for make in (lambda: iter((1, 2, 3)), lambda: iter([4, 5, 6, 7]), lambda: iter({"a": 1, "b": 2, "c": 3}.values()),
                 lambda: iter(range(10, 20))):
        jit.reset()
        it_e, it_c = make(), make()
        torch.testing.assert_close(jit.compile(f, backend="eager")(torch.ones(1), it_c), f(torch.ones(1), it_e))
        assert list(it_c) == list(it_e)  # the real iterator gave up the two items taken in the graph
    assert jit.counters.graph_breaks == 0


def test_loop_resumed_after_a_break_over_an_outside_iterator():
    class Blocks(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(5))

        def forward(self, x):
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i == 1:
                    print("break", end="")  # the rest of the loop is a resume function over the loop's iterator
            return x

    model = Blocks()
    fast = jit.compile(model)
    x = torch.randn(2, 4)
    for _ in range(4):
        torch.testing.assert_close(fast(x), model(x))
    assert jit.counters.graph_breaks == 1 and jit.counters.recompiles == 0, jit.counters


def test_comprehension_frame_over_tensors_from_its_iterator():
    # 3.11 runs a comprehension as a frame whose argument `.0` is the iterator (over a tensor: its rows). Where the
    # enclosing frame runs eagerly, the comprehension is compiled on its own and reads the rows ahead from `.0`:
    # graph inputs named after it must still be identifiers
    def f(x):
        rows = [t * 2 for t in x]
        return rows, undefined_name  # noqa: F821 - NameError: this frame runs eagerly

    for fn in (f, jit.compile(f, backend="eager")):
        with pytest.raises(NameError):
            fn(torch.ones(3, 2))
    assert jit.counters.compile_errors == 0


def test_except_clauses_that_cannot_be_followed_still_answer_as_eager(capsys):
    def bound(x, d):
        try:
            v = d["missing"]
        except KeyError as err:  # the exception object is used: the raise runs for real
            v = len(str(err))
        return x * v

    def breaks_inside(x, d):
        try:
            v = d["missing"]
        except KeyError:
            print("in the clause")  # a break inside the clause: the raise runs for real, then the clause
            v = 5
        return x * v

    def not_caught(x, d):
        try:
            v = d["missing"]
        except IndexError:
            v = 1
        return x * v

    for fn in (bound, breaks_inside):
        jit.reset()
        torch.testing.assert_close(jit.compile(fn, backend="eager")(torch.ones(2), {}), fn(torch.ones(2), {}))
    with pytest.raises(KeyError):
        jit.compile(not_caught, backend="eager")(torch.ones(2), {})
    assert jit.counters.compile_errors == 0


def test_except_attribute_error_around_a_lookup_is_guarded():
    class Cfg:
        scale = 2

    cfg = Cfg()

    def f(x):
        try:
            s = cfg.extra
        except AttributeError:  # followed in the trace: the absence is guarded, as hasattr's
            s = cfg.scale
        return x * s

    fast = jit.compile(f, backend="eager")
    torch.testing.assert_close(fast(torch.ones(2)), f(torch.ones(2)))
    assert jit.counters.graph_breaks == 0
    cfg.extra = 10  # set later: the guard sees it
    torch.testing.assert_close(fast(torch.ones(2)), torch.full((2,), 10.0))

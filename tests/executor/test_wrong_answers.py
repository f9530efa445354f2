"""Regression tests for wrong answers found by differential testing (issue 17), one per mechanism, each against
eager PyTorch on every built-in CPU backend."""
import warnings

import pytest
import torch
import torch.nn.functional as F

import jit

BACKENDS = ["eager", "numpy", "inductor"]


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an internal error would warn and run eagerly: fail instead
        yield
    jit.reset()


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except Exception as e:  # noqa: BLE001
        return type(e), None


# ---- 1. measuring never touches the caller's tensors ------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_write_to_an_input_happens_once_per_call(backend):
    def f(x):
        x.mul_(2)
        return x + 1

    fast = jit.compile(f, backend=backend)
    for n in (3, 4, 5, 6):  # a new size each call: compiles, recompiles, dynamic sizes
        x = torch.ones(n)
        out = fast(x)
        assert torch.equal(x, torch.full((n,), 2.0))
        assert torch.equal(out, torch.full((n,), 3.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_metadata_change_of_an_input_happens_once(backend):
    def f(x):
        x.unsqueeze_(0)
        return x + 1

    fast = jit.compile(f, backend=backend)
    for n in (3, 4, 5):
        x = torch.ones(n)
        fast(x)
        assert x.shape == (1, n)


def test_measuring_copies_keep_inputs_aliased():
    from framejit.inductor.numpy.cpu_choice import private_copies
    base = torch.arange(12.0)
    a, b = base[2:8].view(2, 3), base.view(3, 4).t()
    ca, cb = private_copies([a, b])
    assert ca.stride() == a.stride() and cb.stride() == b.stride() and ca.storage_offset() == 2
    assert ca.untyped_storage().data_ptr() == cb.untyped_storage().data_ptr() != base.untyped_storage().data_ptr()
    ca.fill_(-1)
    assert torch.equal(base, torch.arange(12.0)) and (cb == -1).sum() == 6


# ---- 2. every size fact Python relied on is a guard ---------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_shape_comparison_stays_guarded_with_dynamic_sizes(backend):
    def g(b, c):
        if c[0].shape == b.shape:
            return c + 1
        return b * 2

    fast = jit.compile(g, backend=backend)
    for sb, sc in [((3,), (3, 3)), ((5,), (5, 3)), ((3,), (3, 3)), ((4,), (4, 4)), ((6,), (6, 3))]:
        b, c = torch.ones(sb), torch.ones(sc)
        torch.testing.assert_close(fast(b, c), g(b, c))


@pytest.mark.parametrize("backend", BACKENDS)
def test_shape_compared_with_a_tuple(backend):
    def g(b):
        if b.shape == (3,):
            return b + 1
        if [b.shape[0]] == (b.shape[0],):  # a list never equals a tuple
            return b - 1
        return b * 2

    fast = jit.compile(g, backend=backend)
    for n in (3, 5, 3, 4, 7, 3):
        b = torch.ones(n)
        torch.testing.assert_close(fast(b), g(b))


@pytest.mark.parametrize("backend", BACKENDS)
def test_size_of_a_strided_slice_read_in_python(backend):
    def g(b):
        return b * b[::2].shape[0] + b[1::3].shape[0] % 2

    fast = jit.compile(g, backend=backend)
    for n in (3, 4, 2, 5, 7, 1):
        b = torch.ones(n, 5)
        torch.testing.assert_close(fast(b), g(b))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("index", ["[..., :3]", "[1:4]", "[-3:]", "[:, :3]", "[:-3]", "[2:]"])
def test_slice_clamped_below_the_traced_size(backend, index):
    # at the traced sizes 3 and 3 + 9973, b[:3] is 3 long both times; at 2 it is 2 long
    g = eval(f"lambda b: b * 0 + b{index}.shape[-1] if b.dim() else b")  # noqa: S307 - the test's own text

    fast = jit.compile(g, backend=backend)
    for n in (2, 3, 2, 5, 4, 7, 2):
        b = torch.ones(n, n)
        torch.testing.assert_close(fast(b), g(b))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("expr", ["b.diagonal()", "b.diagonal(1)", "b.diagonal(-1, 1, 0)", "torch.diag(b, 1)",
                                  "torch.linalg.diagonal(b)", "torch.linalg.svdvals(b)"])
def test_smaller_of_two_sizes_read_in_python(backend, expr):
    # fuzz seed 631635: b traced (s0, 3) from (3, 3); its diagonal is 3 long at s0 = 3 and at 3 + 9973, 2 at s0 = 2
    g = eval(f"lambda b: b[0] * 0 + {expr}.shape[-1]")  # noqa: S307 - the test's own text

    fast = jit.compile(g, backend=backend)
    for shape in ((3, 3), (4, 3), (5, 3), (2, 3), (7, 3), (3, 4), (6, 4), (4, 6), (2, 3)):
        b = torch.ones(shape)
        torch.testing.assert_close(fast(b), g(b))


@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_index_keys_on_dynamic_dims(backend):
    def g(b):
        try:
            picked = b[..., 2]  # a constant key: (Ellipsis, 2) is one folded tuple; needs size > 2
        except IndexError:
            picked = b[0]
        return picked * b.select(0, 0)[..., None, :1].shape[-1]  # more indices than a 1-d tensor has dims

    fast = jit.compile(g, backend=backend)
    for n in (3, 4, 2, 5, 3):
        b = torch.ones(n, n)
        torch.testing.assert_close(fast(b), g(b))


def test_floor_division_renders_with_parentheses():
    from framejit.graph.symbolic_sizes import Expr
    e = Expr.symbol("s0").add(Expr.number(1)).floordiv(Expr.number(2))
    assert eval(e.code(str), {"s0": 4}) == 2
    assert eval(e.code(str), {"s0": 5}) == 3


# ---- 3. in-place calls recorded whatever their spelling --------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spelling", ["keyword", "positional", "module", "method"])
def test_in_place_relu_is_kept(backend, spelling):
    relu = torch.nn.ReLU(inplace=True)

    def f(x):
        y = x * 2
        if spelling == "keyword":
            y = F.relu(y, inplace=True)
        elif spelling == "positional":
            y = F.relu(y, True)
        elif spelling == "module":
            y = relu(y)
        else:
            y.relu_()
        return y + 1

    x = torch.randn(4, 5)
    torch.testing.assert_close(jit.compile(f, backend=backend)(x), f(x))


def test_in_place_result_is_its_receiver():
    def f(x):
        y = x.add_(1)
        z = torch.relu_(y)
        return y is x, z is x, x * 1

    x = torch.randn(3)
    assert jit.compile(f)(x.clone())[:2] == (True, True)


# ---- 4. backward() is never dropped ------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_inside_a_compiled_function(backend):
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 1)

    def f(x):
        loss = lin(x * 2).sum()
        loss.backward()
        return loss * 3

    x = torch.randn(3, 4)
    expected = f(x)
    grad = lin.weight.grad.clone()
    lin.zero_grad()
    got = jit.compile(f, backend=backend)(x)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(lin.weight.grad, grad)
    exp = jit.explain(f, x)
    assert [r.kind for r in exp.break_reasons] == ["autograd"]
    assert exp.graph_count == 2  # the forward before the break and `loss * 3` after it


# ---- 5. what eager runs is run: random draws, raising ops, clones -------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_unused_random_draw_keeps_the_stream(backend):
    def f(x):
        torch.randn(3)
        return x + torch.randn(3)

    fast = jit.compile(f, backend=backend)
    x = torch.zeros(3)
    torch.manual_seed(0)
    expected = f(x)
    for _ in range(2):
        torch.manual_seed(0)
        torch.testing.assert_close(fast(x), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unused_op_that_raises_still_raises(backend):
    def f(x):
        y = x.std(0)  # noqa: F841  (bool tensors have no std)
        return x

    x = torch.ones(3, dtype=torch.bool)
    assert _outcome(f, x)[0] is RuntimeError
    assert _outcome(jit.compile(f, backend=backend), x)[0] is RuntimeError


@pytest.mark.parametrize("backend", BACKENDS)
def test_clone_before_a_break_is_not_an_alias(backend):
    def f(b):
        c = b.clone().T
        print(end="")
        b.add_(100)
        return c

    b1, b2 = torch.ones(2, 3), torch.ones(2, 3)
    torch.testing.assert_close(jit.compile(f, backend=backend)(b2), f(b1))
    torch.testing.assert_close(b2, b1)


# ---- 6. an op raises where and what eager raises -------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_op_error_caught_by_the_users_try(backend):
    def f(a, b):
        try:
            v = b.log_softmax(-1)
        except (RuntimeError, NotImplementedError):
            v = a
        return v + 1

    a, b = torch.ones(3), torch.ones(3, dtype=torch.long)
    torch.testing.assert_close(jit.compile(f, backend=backend)(a, b), f(a, b))


REJECTED = {
    "std_of_int": lambda x: x.long().std(),
    "bool_matmul": lambda x: x.bool() @ x.bool(),
    "trunc_of_bool": lambda x: x.bool().trunc(),
    "half_at_float": lambda x: x.half() @ x,
    "float_or_float": lambda x: x | 3.14,
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(REJECTED))
def test_ops_eager_rejects_raise_compiled(backend, name):
    fn = REJECTED[name]
    x = torch.ones(3, 3)
    kind, _ = _outcome(fn, x)
    assert kind != "ok"
    assert _outcome(jit.compile(fn, backend=backend), x)[0] is kind


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_index_valid_only_for_some_values_is_captured(backend):
    """Hugging Face's packed-sequence mask at batch 1: a (1, T) mask indexed by a batch arange and a position
    arange. The eager check's ones would index past the batch dim of size 1; eager's own indices never do, so the
    op is captured (one graph), and a real out-of-range index still raises as eager's does."""
    def f(x, mask):
        b = torch.arange(x.shape[0])[:, None]
        q = torch.arange(x.shape[1])[None, :]
        return x * mask[b, q]

    fast = jit.compile(f, backend=backend)
    x, mask = torch.randn(1, 5), torch.arange(5)[None, :]
    breaks = jit.counters["graph_breaks"]
    torch.testing.assert_close(fast(x, mask), f(x, mask))
    assert jit.counters["graph_breaks"] == breaks
    assert _outcome(jit.compile(f, backend=backend), torch.randn(2, 5), mask)[0] is _outcome(f, torch.randn(2, 5),
                                                                                              mask)[0]


def test_eager_check_remembers_each_signature():
    from jit import eager_check
    eager_check._known.clear()

    def f(x):
        return x.bool().trunc()

    for _ in range(2):  # two captures of one call: checked once
        jit.reset()
        _outcome(jit.compile(f, backend="eager"), torch.ones(3))
    keys = [k for k in eager_check._known if k[1] == "trunc"]
    assert len(keys) == 1 and eager_check._known[keys[0]].startswith("NotImplementedError")


def test_eager_check_answers_come_from_disk_in_another_process(monkeypatch, tmp_path):
    """Answers are stored in the cache dir (graph/meta_memo.py's store): a process that finds them runs no
    probe, and still breaks where eager raises."""
    from jit import eager_check
    monkeypatch.setenv("FRAMEJIT_CACHE_DIR", str(tmp_path))
    eager_check._known.clear()

    def f(x):
        return x.bool().trunc() + 1

    jit.reset()
    expected = _outcome(f, torch.ones(3))[0]
    assert _outcome(jit.compile(f, backend="eager"), torch.ones(3))[0] is expected
    assert list((tmp_path / "eager-check").glob("*.json"))
    eager_check._known.clear()  # as a new process

    def no_probe(*args):
        raise AssertionError("probed again")
    monkeypatch.setattr(eager_check, "_run", no_probe)
    jit.reset()
    assert _outcome(jit.compile(f, backend="eager"), torch.ones(3))[0] is expected
    assert eager_check._stored_key(("call_function", object(), (), (), ())) is None  # not torch's: memory only


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_argument_that_is_also_an_input(backend):
    def f(x2, x0):
        try:
            torch.add(x2, x0, out=x2)  # eager: the broadcast shape does not fit x2, which is also read
        except RuntimeError:
            pass
        return x2 * 2

    a, b = torch.ones(5), torch.ones(5, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the meta run's resize warning
        torch.testing.assert_close(jit.compile(f, backend=backend)(a.clone(), b), f(a.clone(), b))


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_op_eager_rejects_inside_try_keeps_the_stream(backend):
    def f(x):
        try:
            t = torch.rand_like(x)  # no random integers from rand_like
        except NotImplementedError:
            t = x.clone()
        return t + torch.rand(2).sum()

    x = torch.arange(3)
    torch.manual_seed(0)
    expected = f(x)
    torch.manual_seed(0)
    torch.testing.assert_close(jit.compile(f, backend=backend)(x), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_dependent_errors_reach_the_users_try(backend):
    def f(x0, x1):
        try:
            x1[x1 > 0] = x0  # fits only when the mask selects 4 elements
        except RuntimeError:
            pass
        y = x1 * 2
        try:
            z = y[torch.tensor([5])]
        except IndexError:
            z = y
        return y + 1, z

    a, b = torch.ones(4), torch.tensor([1.0, -1.0, 2.0, -3.0])
    torch.testing.assert_close(jit.compile(f, backend=backend)(a, b.clone()), f(a, b.clone()))
    exp = jit.explain(f, a, b.clone())
    assert "value_checked_in_try" in [r.kind for r in exp.break_reasons]


def _static_cache_update(cache, pos, new):
    """transformers' StaticLayer.update: index_copy_ in a try whose handler catches only NotImplementedError."""
    try:
        cache.index_copy_(1, pos, new)
    except NotImplementedError:
        cache[:, pos] = new
    return cache.sum(1) * 2


def _shadowing_handler(cache, pos, new):
    try:
        cache.index_copy_(1, pos, new)
    except NotImplementedError:  # shadowed by a global below (LookupError): catches the IndexError
        return cache * 0
    return cache * 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_checked_op_in_a_try_that_cannot_catch_its_errors_stays_in_the_graph(backend):
    make = lambda: (torch.zeros(2, 5), torch.tensor([1, 3]), torch.ones(2, 2))  # noqa: E731
    exp = jit.explain(_static_cache_update, *make())
    assert exp.graph_break_count == 0, exp.break_reasons
    want_cache, *rest = make()
    got_cache = want_cache.clone()
    torch.testing.assert_close(jit.compile(_static_cache_update, backend=backend)(got_cache, *rest),
                               _static_cache_update(want_cache, *rest))
    torch.testing.assert_close(got_cache, want_cache)
    bad = torch.tensor([1, 7])  # out of range: eager raises through the try (its handler does not catch it)
    with pytest.raises((IndexError, RuntimeError)) as want:
        _static_cache_update(torch.zeros(2, 5), bad, torch.ones(2, 2))
    with pytest.raises(want.type):
        jit.compile(_static_cache_update, backend=backend)(torch.zeros(2, 5), bad, torch.ones(2, 2))


def test_a_handler_whose_name_a_module_shadows_counts_as_catching(monkeypatch):
    monkeypatch.setitem(globals(), "NotImplementedError", LookupError)
    args = (torch.zeros(2, 5), torch.tensor([1, 7]), torch.ones(2, 2))
    exp = jit.explain(_shadowing_handler, *args)
    assert "value_checked_in_try" in [r.kind for r in exp.break_reasons]
    torch.testing.assert_close(jit.compile(_shadowing_handler, backend="eager")(*args), _shadowing_handler(*args))


def test_value_checked_ops_outside_try_stay_in_the_graph():
    def f(x, idx):
        return x[idx] + x.index_select(0, idx)

    exp = jit.explain(f, torch.randn(4, 3), torch.tensor([0, 2]))
    assert exp.graph_count == 1 and exp.graph_break_count == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_read_from_a_container_before_the_break_mutates_it(backend):
    def f(x0, xs):
        t = xs + xs
        xs.insert(0, x0)
        return t

    expected = f(torch.tensor(1), [torch.ones(1)])
    got = jit.compile(f, backend=backend)(torch.tensor(1), [torch.ones(1)])
    assert [v.dtype for v in got] == [v.dtype for v in expected] == [torch.float32] * 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_storage_bounds_of_an_empty_input(backend):
    def f(x):
        t = x.as_strided((1,), (1,))  # noqa: F841  (past the end of an empty tensor's storage)
        return x

    fast = jit.compile(f, backend=backend)
    fast(torch.zeros(2, 1, dtype=torch.int64))  # fine at this size
    empty = torch.zeros(0, 1, dtype=torch.int64)
    assert _outcome(f, empty)[0] is RuntimeError
    assert _outcome(fast, empty)[0] is RuntimeError


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["split_count", "chunk_size", "unbind_count", "strided_size"])
def test_python_values_from_dynamic_sizes_stay_guarded(backend, name):
    # values equal at a size and at size + 1 (ceil(5 / 2) == ceil(6 / 2)) were read as constants
    fn = {"split_count": lambda x: len(x.split(2)) * x,
          "chunk_size": lambda x: x.chunk(2)[0].shape[0] * x,
          "unbind_count": lambda x: len(x.unbind(0)) * x,
          "strided_size": lambda x: x[::2].shape[0] * x}[name]
    fast = jit.compile(fn, backend=backend)
    for n in (3, 5, 3, 7, 2, 9, 6):
        x = torch.ones(n, 3)
        torch.testing.assert_close(fast(x), fn(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_into_an_expanded_tensor_raises_inside_try(backend):
    def f(x):
        t = x.expand(2, *x.shape)
        try:
            t -= x  # eager: more than one element of t is one memory location
        except RuntimeError:
            pass
        v = x[1:] if x.dim() else x
        try:
            v.copy_(x[:-1] if x.dim() else x)
        except RuntimeError:
            pass
        return x * 1

    for x in (torch.ones(()), torch.arange(4.0)):
        torch.testing.assert_close(jit.compile(f, backend=backend)(x.clone()), f(x.clone()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_unused_integer_division_by_zero_still_raises(backend):
    def f(x1, x0):
        t = torch.fmod(x1, x0)  # noqa: F841
        return None

    args = (torch.arange(3), torch.zeros(1, dtype=torch.bool))
    assert _outcome(f, *args)[0] is RuntimeError
    assert _outcome(jit.compile(f, backend=backend), *args)[0] is RuntimeError


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_function_raising_python_error_on_meta(backend):
    def f(x):
        return F.normalize(x.split(1, -1), dim=-1)  # a tuple has no .norm: eager raises AttributeError

    assert _outcome(f, torch.randn(2))[0] is AttributeError
    assert _outcome(jit.compile(f, backend=backend), torch.randn(2))[0] is AttributeError


@pytest.mark.parametrize("backend", BACKENDS)
def test_strides_of_an_empty_intermediate(backend):
    def f(x):
        return torch.isfinite(x).stride()

    x = torch.zeros(1, 1, dtype=torch.int64).expand(0, 1)
    assert jit.compile(f, backend=backend)(x) == f(x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_item_store_from_overlapping_memory_raises_inside_try(backend):
    def f(x):
        try:
            x[::2] = x  # eager: source and destination share memory
        except RuntimeError:
            pass
        return x * 1

    torch.testing.assert_close(jit.compile(f, backend=backend)(torch.ones(1)), f(torch.ones(1)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_eager_checks_of_item_stores_told_apart_by_their_slices(backend):
    # program generator seed 301097: eager accepts x[1:] = x (an empty target) and rejects x[::2] = x (overlap);
    # before Python 3.12 a slice is unhashable, and the remembered answer for the first was given to the second
    def f(x):
        try:
            x[1:] = x
        except RuntimeError:
            pass
        try:
            x[::2] = x
        except RuntimeError:
            pass
        return x * 1

    torch.testing.assert_close(jit.compile(f, backend=backend)(torch.ones(1, 1)), f(torch.ones(1, 1)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_merged_by_the_optimizer_stay_distinct(backend):
    def f(x):
        y = x / x
        return [x / x, x / x, y, y]  # CSE makes one buffer of the first three

    x = torch.rand(3) + 1
    got, expected = jit.compile(f, backend=backend)(x), f(x)
    assert [a is b for a in got for b in got] == [a is b for a in expected for b in expected]
    assert [a.data_ptr() == b.data_ptr() for a in got for b in got] == \
        [a.data_ptr() == b.data_ptr() for a in expected for b in expected]


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_over_a_dim_of_bools(backend):
    def f(x):
        return x.max(dim=1), x.min(1, keepdim=True)

    x = torch.tensor([[True, False], [False, False]])
    for got, expected in zip(jit.compile(f, backend=backend)(x), f(x)):
        torch.testing.assert_close(got.values, expected.values)
        torch.testing.assert_close(got.indices, expected.indices)


@pytest.mark.parametrize("backend", BACKENDS)
def test_generated_temporaries_never_shadow_a_users_name(backend):
    def f(x0, x1):
        t1 = x1
        acc = x0.clone()
        for _ in range(3):
            acc = acc + t1
        return acc

    x0, x1 = torch.randn(()).to(torch.bfloat16), torch.randn(1)
    torch.testing.assert_close(jit.compile(f, backend=backend)(x0, x1), f(x0, x1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_metadata_change_in_a_dynamic_graph(backend):
    def f(x0, x1):
        x1.unsqueeze_(0)  # x1 is not contiguous, so static, while x0 is dynamic: one meta twin for both runs
        return x1.unsqueeze(0).expand(2, *x1.shape) + x0.sum()

    fast = jit.compile(f, backend=backend)
    for n in (2, 3, 4):
        a, b = torch.randn(n), torch.randn(n, n).t()
        expected = f(a.clone(), b.clone().t().contiguous().t())
        torch.testing.assert_close(fast(a, b), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unary_operator_on_a_constant_raises_as_python_does(backend):
    def f(x):
        return -x.unbind(0)  # an empty tuple for a (0, 1) tensor: TypeError

    x = torch.zeros(0, 1)
    assert _outcome(f, x)[0] is TypeError
    assert _outcome(jit.compile(f, backend=backend), x)[0] is TypeError


@pytest.mark.parametrize("backend", BACKENDS)
def test_tensor_lists_that_hand_back_their_inputs(backend):
    def f(x):
        return torch.broadcast_tensors(x, x)[0]  # equal shapes: eager returns x itself

    x = torch.randn(3)
    assert (jit.compile(f, backend=backend)(x) is x) == (f(x) is x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_fallback_results_stay_distinct(backend):
    def f(x):
        return [F.elu(x), F.elu(x)]

    got, expected = jit.compile(f, backend=backend)(torch.randn(3)), f(torch.randn(3))
    assert (got[0].data_ptr() == got[1].data_ptr()) == (expected[0].data_ptr() == expected[1].data_ptr())


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_write_through_detach_reaches_the_input(backend):
    def f(x):
        t = x.detach()  # shares x's memory without being a view
        F.relu(t, inplace=True)
        t.cumsum_(0)
        return x

    a, b = torch.randn(4), None
    b = a.clone()
    torch.testing.assert_close(jit.compile(f, backend=backend)(a), f(b))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_list_index_out_of_range_raises_inside_try(backend):
    def f(x0, x1):
        try:
            t = x1[..., [0]]  # x1 has no element 0
        except IndexError:
            t = x0
        return t * 2

    args = (torch.randn(()), torch.randn(0))
    torch.testing.assert_close(jit.compile(f, backend=backend)(*args), f(*args))


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_fallback_draws_over_eagers_layout(backend):
    def f(x):
        return F.dropout(x.clone(), 0.5, training=True)  # the clone of an expanded tensor is row-major

    for x in (torch.randn(1, 2).expand(2, 2), torch.randn(3, 2).t(), torch.randn(2, 3)):
        jit.reset()
        fast = jit.compile(f, backend=backend)
        torch.manual_seed(0)
        expected = f(x)
        torch.manual_seed(0)
        got = fast(x)
        torch.testing.assert_close(got, expected)
        assert got.stride() == expected.stride()


def test_reset_forgets_what_eager_accepts():
    from jit import eager_check
    jit.compile(lambda x: x + 1, backend="eager")(torch.ones(2))
    assert eager_check._known
    jit.reset()
    assert not eager_check._known


# ---- inputs that share memory ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_copy_between_overlapping_inputs_raises_in_the_users_try(backend):
    # a resume function receives a tensor and its view: the copy between them overlaps, which eager rejects, and
    # the compiled code must see that overlap when it decides whether the op can raise
    def f(x0):
        t3 = x0.reshape(x0.shape[0], -1)
        if t3:  # a break: t3 and x0 reach the rest as two inputs over one storage
            pass
        try:
            t3[:, 0] = x0
        except RuntimeError:
            return "caught"
        return t3

    fast = jit.compile(f, backend=backend)
    for n in (1, 1, 3):
        x = torch.randn(n, 1) if n == 1 else torch.randn(1, 1)
        assert fast(x.clone()) == f(x.clone()) == "caught"


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_through_one_input_is_seen_through_another(backend):
    def g(a, b):
        a.add_(1)
        return b * 2

    fast = jit.compile(g, backend=backend)
    for make in (lambda y: (y, y[1:]), lambda y: (y[:3], y[1:]), lambda y: (y[1:], y[:3]),
                 lambda y: (y[:3], y.clone()[1:]), lambda y: (y[:3], y[1:])):
        y, z = torch.zeros(4), torch.zeros(4)
        torch.testing.assert_close(fast(*make(y)), g(*make(z)))
        torch.testing.assert_close(y, z)


def test_sharing_of_memory_is_guarded(caplog):
    def g(a, b):
        a.add_(1)
        return b * 2

    fast = jit.compile(g, backend="eager")
    y = torch.zeros(4)
    jit.counters.clear()
    fast(y[:3], y[1:])
    fast(y[:3], y[1:])
    assert jit.counters.recompiles == 0
    jit.set_logs("recompiles")
    try:
        with caplog.at_level("DEBUG", logger="jit.recompiles"):
            fast(y[:3], y.clone()[1:])
    finally:
        jit.set_logs()
    assert jit.counters.recompiles == 1
    assert "'b' shared memory with 'a' when compiled" in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_sequence_times_a_float_raises_and_list_imul_is_in_place(backend):
    def f(x, alpha, xs):
        try:
            t = x.unbind(-2) * alpha  # TypeError in eager: the compiler must raise it, not crash
        except TypeError:
            t = (x,)
        ys = xs
        ys *= 2  # the same list, doubled in place
        return t[0] + len(xs)

    for args in ((torch.randn(1, 1), 0.5), (torch.randn(2, 3), 2)):
        e_list, c_list = [1], [1]
        torch.testing.assert_close(jit.compile(f, backend=backend)(*args, c_list), f(*args, e_list))
        assert c_list == e_list == [1, 1]


def _overlaps(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The two tensors' element ranges intersect (rows interleaved, or one a view of the other)."""
    def extent(t):
        start = t.data_ptr()
        return start, start + sum((n - 1) * s for n, s in zip(t.shape, t.stride())) * t.element_size() + \
            t.element_size()
    (a0, a1), (b0, b1) = extent(a), extent(b)
    return a0 < b1 and b0 < a1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [2, 3])
def test_rows_of_a_product_of_a_broadcast_do_not_overlap(backend, n):
    # NumPy's astype of an expanded input keeps the stride order and interleaves the rows; eager's rows are apart
    def f(x):
        return list(x.expand(2, *x.shape) * 3)

    fast = jit.compile(f, backend=backend)
    for size in (n, n + 1):  # the second size is the dynamic recompile
        x = torch.arange(size) > 0
        rows = fast(x)
        assert [r.stride() for r in rows] == [r.stride() for r in f(x)]
        assert not _overlaps(rows[0], rows[1])
        torch.testing.assert_close(rows, f(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_times_one_of_a_view_is_not_that_view(backend):
    # `y.unsqueeze(0).expand(1, ...) * 1` simplified to the view of y must still come back as a tensor of its own
    def f(x, k):
        y = x.pow(2)
        return y.unsqueeze(0).expand(1, *y.shape) * k, y

    x = torch.randn(3)
    out, y = jit.compile(f, backend=backend)(x, 1)
    assert not _overlaps(out, y)
    torch.testing.assert_close(out, f(x, 1)[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("empty_dtype", [torch.float32, torch.bfloat16])
def test_cat_with_a_legacy_empty_operand(backend, empty_dtype):
    # transformers' KV cache: torch.cat([torch.tensor([]), k], dim=-2); the empty operand is skipped by the shape
    # rule but still promotes the dtype (float32 empty + bf16 k -> float32)
    def f(k, v):
        return torch.cat([torch.tensor([], dtype=empty_dtype), k * 2], dim=-2), torch.cat([v, torch.tensor([])], 0)

    k, v = torch.randn(2, 3, 4).to(torch.bfloat16), torch.randn(5)
    got, want = jit.compile(f, backend=backend)(k, v), f(k, v)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_loop_over_an_outside_list_appended_to_then_broken(backend):
    # the loop's iterator was placed before the append was written back: StopIteration instead of eager's error
    def f(x, xs):
        xs.append(x.reshape(x.shape[0], -1))
        for r in xs:
            x = torch.maximum(x, r)  # the second item's shape does not fit: a break, then eager's RuntimeError
        return x

    outcomes = []
    for fn in (f, jit.compile(f, backend=backend)):
        xs = [torch.randn(0, 2)]
        outcomes.append((_outcome(fn, torch.randn(2), xs)[0], len(xs)))
    assert outcomes[0] == outcomes[1] == (RuntimeError, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dict_indexed_by_an_unhashable_key(backend):
    def f(x):
        d = dict(a=x, b=x + 1)
        try:
            return d[..., :1]  # a tuple holding a slice: unhashable before 3.12 (TypeError), a missing key after
        except (TypeError, KeyError) as e:
            return x * 2, type(e).__name__

    got, want = jit.compile(f, backend=backend)(torch.ones(2)), f(torch.ones(2))
    torch.testing.assert_close(got[0], want[0])
    assert got[1] == want[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_while_loop_on_a_tensor_condition_resumed(backend):
    # 3.11 compiles the loop's condition at its bottom as POP_JUMP_BACKWARD_IF_TRUE; the break code copied that
    # opname for a jump that goes forward in the generated code: an internal error, the frame run eagerly
    def f(x, n):
        k = 0
        while k < torch.minimum(x, n):
            k += 1
        return k

    fast = jit.compile(f, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the internal-error fallback warns
        for x in (torch.tensor(-1.0), torch.tensor(2.5), torch.tensor(7.0)):
            assert fast(x, torch.tensor(4.0)) == f(x, torch.tensor(4.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_like_of_a_computed_broadcast_keeps_eager_layout(backend):
    # fuzz seed 175399: the NumPy code computed `x * 1.5` of an expanded x with the broadcast dim innermost
    # (`astype` keeps stride order), and rand_like, which fills memory in its operand's layout, drew the same
    # numbers into other places
    x = torch.randint(-4, 5, (1, 4, 3), dtype=torch.int32).expand(3, 4, 3)

    def f(x):
        return torch.rand_like(x * 1.5), torch.empty_like(x * 2.0).stride()

    torch.manual_seed(0)
    want = f(x)
    torch.manual_seed(0)
    got = jit.compile(f, backend=backend)(x)
    assert torch.equal(got[0], want[0]) and got[0].stride() == want[0].stride() and got[1] == want[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_overlapping_in_place_write_after_a_dynamic_recompile(backend):
    # fuzz seed 173465: after sizes changed, x and its view t were traced as inputs over separate meta storages,
    # so the in-place multiply eager rejects (t overlaps x) was compiled, and raised outside the user's try
    def f(x):
        t = x[0]
        if x.float().mean().item() > -100:
            try:
                x *= t
            except RuntimeError:
                return "rejected"
        return x

    fast = jit.compile(f, backend=backend)
    for n in (2, 3, 4):
        want, got = f(torch.ones(n, n, dtype=torch.int64)), fast(torch.ones(n, n, dtype=torch.int64))
        assert want == got == "rejected"


@pytest.mark.parametrize("backend", BACKENDS)
def test_decomposed_op_keeps_eager_layout_for_a_view(backend):
    # fuzz seed 181165: masked_fill returns a contiguous tensor, its decomposition (`where`) follows the transposed
    # input's strides, so a later `.view(-1)` eager allows raised in the compiled code
    def f(x, n):
        return x.masked_fill(x > 0, n).view(-1)

    x = torch.randn(3, 4).t()
    assert torch.equal(jit.compile(f, backend=backend)(x, 1.0), f(x, 1.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_decomposed_op_keeps_eager_layout_for_random_draws(backend):
    # rand_like and dropout fill memory in their operand's layout: a decomposed softmax of a transposed input must
    # be laid out as eager's (contiguous), or the same numbers land in other places
    def f(x):
        y = torch.softmax(x, -1)
        return torch.rand_like(y) * y, F.dropout(y, 0.5, training=True), y.stride()

    x = torch.randn(5, 6).t()
    torch.manual_seed(0)
    want = f(x)
    torch.manual_seed(0)
    got = jit.compile(f, backend=backend)(x)
    assert got[2] == want[2]
    for g, w in zip(got[:2], want[:2]):  # the same draws in the same places (softmax itself may differ by an ulp)
        assert g.stride() == w.stride() and torch.equal(g == 0, w == 0)
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_rejected_by_layout_after_the_same_write_was_accepted(backend):
    # fuzz seeds 201267, 201568, 202077...: eager's answer for `x.add_(1)` was remembered by dtype and sizes alone,
    # so once a plain (2, 2) x had been accepted (kept on disk since the warm-start work), an expanded one was
    # compiled as accepted too, and its error escaped the user's try
    def plain(x):
        try:
            x.add_(1)
        except RuntimeError:
            return "rejected"
        return x * 2

    def expanded(x):
        try:
            x.add_(1)
        except RuntimeError:
            return "rejected"
        return x * 2

    jit.compile(plain, backend=backend)(torch.zeros(2, 2))
    jit.reset()  # forgets what it knows in memory; the disk keeps it
    x = torch.zeros(1, 2).expand(2, 2)
    assert jit.compile(expanded, backend=backend)(x) == expanded(x) == "rejected"


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_named_after_a_builtin(backend):
    # fuzz seed 206946: a NumPy kernel of one slicing op was named `slice`, which the module's own index helpers
    # then called instead of the builtin ('NoneType' object is not subscriptable)
    def f(x0, x1):
        t1 = x0.split(1, 0)
        x1.index_add(0, torch.arange(x1.shape[0]) % x1.shape[0], x1)
        return t1

    x0, x1 = torch.randn(1), torch.randn(2, 1)
    got, want = jit.compile(f, backend=backend)(x0, x1), f(x0, x1)
    assert len(got) == len(want) and all(torch.equal(g, w) for g, w in zip(got, want))



@pytest.mark.parametrize("backend", BACKENDS)
def test_value_checked_op_after_a_try_the_frame_resumed_in(backend):
    # fuzz seed 213729: the remainder inside the try breaks the graph; the resume function starts inside that try,
    # and its graph call was wrapped in the try's handler, so `x1 % t1` after the try (a division by zero) was
    # swallowed by the `except` and the function returned normally
    def f(x0, x1):
        try:
            t1 = torch.remainder(x1, x0)
        except Exception:
            t1 = x1
        return x1 % t1

    x0, x1 = torch.tensor(1), torch.tensor(4, dtype=torch.int32)
    assert _outcome(f, x0, x1)[0] == _outcome(jit.compile(f, backend=backend), x0, x1)[0] == RuntimeError


@pytest.mark.parametrize("backend", BACKENDS)
def test_aliasing_that_depends_on_a_dynamic_size(backend):
    # fuzz seed 222763: x[::2].contiguous() is x's own memory when the slice has one element (contiguous returns
    # it) and a copy otherwise; traced with dynamic sizes at one element, the graph wrote x in place at every size
    def f(x):
        t = x[::2].contiguous()
        t -= 1
        return t, x

    compiled = jit.compile(f, backend=backend)
    for n in (3, 2, 3, 5, 1):
        x, twin = torch.arange(n, dtype=torch.int32), torch.arange(n, dtype=torch.int32)
        got, want = compiled(x), f(twin)
        for g, w in zip(got, want):
            assert torch.equal(g, w)
        assert torch.equal(x, twin)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_output_that_is_a_view_of_another_stays_one(backend):
    # fuzz seed 265440: a graph returning t and t.squeeze() (a graph break follows) handed the NumPy code's two
    # arrays over one memory back as two separate tensors; `t /= t.squeeze()` of one element then ran where eager
    # raises (a partial overlap of the written tensor), and `_base` said the two were unrelated
    def f(x):
        t4 = torch.ceil(x)
        t6 = t4.squeeze()
        t4 /= t6
        return t4

    compiled = jit.compile(f, backend=backend)
    for n in (1, 2, 1):
        x = torch.rand(n, generator=torch.Generator().manual_seed(n)) * 3 + 0.5  # ceil: no zeros
        want, got = _outcome(f, x.clone()), _outcome(compiled, x.clone())
        assert want[0] == got[0]
        if want[0] == "ok":
            assert torch.equal(want[1], got[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_output_over_part_of_an_earlier_ones_memory_is_not_rebuilt_beyond_it(backend):
    # fuzz seed 272604 (the first form of the fix above): an output sharing memory with an earlier one but not lying
    # inside its memory was rebuilt as a torch view of it, out of the earlier tensor's storage bounds
    def f(x0):
        t1 = x0.gather(1, torch.zeros_like(x0, dtype=torch.long))
        t5 = torch.max(x0 - x0, -1)[0]
        p6 = t1.flatten()[0].item()
        t7 = t5.clamp(max=p6).ndim + 1
        return {"t8": t1 <= t1, "x0": x0, "p6": p6, "t7": t7}

    compiled = jit.compile(f, backend=backend)
    for rows, cols in ((2, 3), (2, 3), (1, 1), (1, 4)):
        x = torch.randn(rows, cols, generator=torch.Generator().manual_seed(rows * 10 + cols)).double()[1:]
        (got_kind, got), (want_kind, want) = _outcome(compiled, x), _outcome(f, x)
        assert got_kind == want_kind  # (1, 1)[1:] is empty: `.item()` raises in both
        if want_kind == "ok":
            assert got.keys() == want.keys()
            for k in want:
                assert torch.equal(got[k], want[k]) if isinstance(want[k], torch.Tensor) else got[k] == want[k]


@pytest.mark.parametrize("backend", BACKENDS)
def test_five_dynamic_dims_trace_static_rather_than_overflow(backend):
    # fuzz seed 274435: a 5-d input whose every dim changed between calls; at the second traced sizes (~10^4 a dim)
    # its meta tensor had more bytes than an int64 counts, and the compile failed (an internal error, run eagerly)
    def f(x):
        return (x * 2).sum(-1)

    compiled = jit.compile(f, backend=backend)
    for n in (2, 3, 4):
        x = torch.randn((n,) * 5, generator=torch.Generator().manual_seed(n))
        torch.testing.assert_close(compiled(x), f(x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_reduced_to_an_input_keep_eagers_sharing_with_each_other(backend, fresh_jit):
    # fuzz seed 560102: logsumexp of a 0-dim x is x, so both t4 and its view t6 came out as x: each was copied
    # on its own (eager's t6 and t4 are new tensors, but one memory), so a write through one missed the other
    # (the Triton backend's twin: tests/inductor/triton/test_fusion.py)
    def f(x0):
        t4 = torch.logsumexp(x0, -1)
        t6 = t4.squeeze(-1)
        return t6, t4, x0

    x = torch.randn(())
    t6, t4, x0 = jit.compile(f, backend=backend)(x)
    want = f(x)
    assert torch.equal(t6, want[0]) and torch.equal(t4, want[1]) and x0 is x
    assert t6 is not t4 and t6.untyped_storage().data_ptr() == t4.untyped_storage().data_ptr()
    assert t4.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    t6.add_(1)  # as in eager, the write shows through both
    assert torch.equal(t4, want[1] + 1) and torch.equal(x, x0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_of_a_floor_division_draws_eagers_mask(backend, fresh_jit):
    # fuzz seed 573898: floor division's meta kernel laid its result out otherwise than eager (by the second
    # operand), so the dropout after it drew its mask over another memory order: other elements dropped
    def f(x0):
        t2 = torch.stack([x0, x0])
        t3 = torch.div(x0, t2, rounding_mode="floor") * x0
        return F.dropout(t3, 0.5, training=True)

    compiled = jit.compile(f, backend=backend)
    for n in (2, 3):
        x = torch.randn((n, n), generator=torch.Generator().manual_seed(n)).t()
        torch.manual_seed(0)
        want = f(x)
        torch.manual_seed(0)
        got = compiled(x)
        assert got.stride() == want.stride()
        assert torch.equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_contiguous_of_a_floor_division_copies_where_eager_copies(backend, fresh_jit):
    # generator seed 829291: `x1 // x0` of a transposed x1 and a 0-dim x0 is transposed in eager, contiguous in
    # the meta kernel the trace asked; `.contiguous()` twice was then the same tensor twice (eager: two copies)
    def f(x0, x1):
        t4 = x1 // x0
        return [t4.contiguous(), t4.contiguous(), torch.logical_and(x0, x1).contiguous(), t4.stride()]

    x0, x1 = torch.tensor(0.7), torch.randn(2, 3).t()
    got, want = jit.compile(f, backend=backend)(x0, x1), f(x0, x1)
    assert got[0] is not got[1] and got[0].data_ptr() != got[1].data_ptr()
    assert got[3] == want[3] and all(torch.equal(a, b) for a, b in zip(got[:3], want[:3]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_reader_of_a_written_view_and_its_base_sees_the_write_in_both(backend, fresh_jit):
    # fuzz seed 582384: `t4 = t2.reshape(-1); t4.cumsum_(0); t4 + t2`: the add read the written view's new value
    # and the old t2 (graph/autodiff/view_writes.py replaced the wrong input of a node reading both)
    def f(x0):
        t2 = torch.clamp(x0, min=-1, max=1)
        t4 = t2.reshape(-1)
        t4.cumsum_(0)
        return t4 + t2

    x = torch.randn(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(jit.compile(f, backend=backend)(x.clone()), f(x.clone()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_view_of_a_written_input_returned_is_a_view_of_the_input(backend, fresh_jit):
    # fuzz seed 612904: `x *= x; return x[..., :1]`: the write made functional returned a slice of the new value
    # (a temporary copied into x afterwards), where eager's result is a view of x itself
    def f(x):
        t8 = x[:, None]
        t12 = t8.scatter_add(0, torch.zeros_like(t8, dtype=torch.long), t8)  # a graph break before the write
        x *= x
        return x[..., :1], t12, t8  # of one element: all of x, which the functional graph also returns

    x = torch.randn(1)
    twin = x.clone()
    got, want = jit.compile(f, backend=backend)(x), f(twin)
    assert all(torch.equal(g, w) for g, w in zip(got, want)) and torch.equal(x, twin)
    assert got[0].untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    x.zero_()
    assert torch.equal(got[0], torch.zeros(1))  # as in eager, the caller's later write shows in the result


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_output_returned_after_its_own_view_shares_its_memory(backend, fresh_jit):
    # fuzz seed 627105: t5, a view of t1, returned before t1: the NumPy code computed the cat under t5's views a
    # second time, so the two came back apart (and t5 with other strides than eager's)
    def f(x0):
        t1 = torch.cat([x0, x0], dim=-1)
        t5 = t1[:, None].unflatten(0, (1, -1))
        return t5, t1

    x0 = torch.randn(2, 2, generator=torch.Generator().manual_seed(10)).t()
    got, want = jit.compile(f, backend=backend)(x0), f(x0)
    for g, w in zip(got, want):
        assert torch.equal(g, w) and g.stride() == w.stride()
    assert got[0].untyped_storage().data_ptr() == got[1].untyped_storage().data_ptr()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["scatter_add", "scatter", "index_add", "index_copy"])
def test_scatter_family_on_a_0_dim_tensor(backend, op):
    # fuzz seed 663168: torch takes a 0-dim tensor as one of size 1 along dim 0; the NumPy code indexed dim 0
    zeros = lambda x: torch.zeros_like(x, dtype=torch.long)  # noqa: E731
    fns = {"scatter_add": lambda x: (x - x).scatter_add_(0, zeros(x), torch.ones_like(x)),
           "scatter": lambda x: (x * 2).scatter_(0, zeros(x), 2.5),
           "index_add": lambda x: (x * 1).index_add_(0, torch.tensor([0]), x),
           "index_copy": lambda x: (x * 1).index_copy_(0, torch.tensor([0]), x * 3)}
    fn = fns[op]
    x = torch.tensor(1.5)
    got, want = jit.compile(fn, backend=backend)(x), fn(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["transposed", "permuted"])
def test_dropout_mask_of_a_non_contiguous_input_in_eager_order(backend, layout):
    # fuzz seed 678426: eager's dropout fills empty_like(x) (x's strides) with bernoulli_ in memory order; the
    # functional bernoulli.p drew in a contiguous tensor's order, so the mask came out transposed
    def f(x):
        t = F.dropout(x, 0.5, training=True)
        t.scatter_add_(0, torch.zeros_like(t, dtype=torch.long), torch.ones_like(t))
        return t

    base = torch.randn(4, 5) if layout == "transposed" else torch.randn(2, 3, 4)
    x = base.transpose(-1, -2) if layout == "transposed" else base.permute(2, 0, 1)
    fast = jit.compile(f, backend=backend)
    for seed in (3, 4):
        torch.manual_seed(seed)
        want = f(x)
        torch.manual_seed(seed)
        got = fast(x)
        torch.testing.assert_close(got, want)
        assert got.stride() == want.stride()


def test_a_write_into_memory_the_op_reads_raises_inside_its_try_as_in_eager():
    """Generator seed 715054: `t[...] = x` with t a view of x (made after a graph break, so both reach the resume
    function) raises eager's overlap error at run time; the compiled graph raised it outside the `try`. Such a
    write now runs eagerly, inside the try (jit/mem_overlap.py)."""
    def f(x):
        t2 = x.movedim(0, -1)
        print("", end="")
        t5 = t2.reshape(t2.shape[0], -1)
        caught = False
        try:
            t5[...] = x
        except RuntimeError:
            caught = True
        try:
            x.mul_(x[0])
        except RuntimeError:
            caught = caught and True
        return t5 * 2, caught

    for shape in ((1,), (3,)):
        x = torch.randn(shape)
        want = f(x.clone())
        got = jit.compile(f)(x.clone())
        torch.testing.assert_close(got[0], want[0])
        assert got[1] == want[1]


def test_an_unhashable_key_stored_into_a_dict_raises_typeerror():
    """Generator seed 720742: `d[:] = x` on a dict made in the function raised TypeError inside the compiler (an
    internal error) instead of in the user's code."""
    def f(x):
        d = {"a": x}
        try:
            d[:] = x
        except TypeError:
            return x + 1
        return x - 1

    x = torch.randn(3)
    torch.testing.assert_close(jit.compile(f)(x), f(x))


def test_a_long_unrolled_chain_of_pointwise_ops_compiles():
    """Generator seed 727317: a loop unrolled by the trace made one fused expression ~200 ops deep, and the NumPy
    code generator's recursion passed Python's default limit (an internal error, the frame then ran eagerly)."""
    def f(x, ys):
        acc = x.clone()
        for y in ys.unbind(0):
            acc = torch.maximum(acc + torch.logical_not(ys[0]), y) * 0.5
        return acc

    x, ys = torch.randn(5), torch.randn(250, 5)
    jit.counters.clear()
    torch.testing.assert_close(jit.compile(f, backend="numpy")(x, ys), f(x, ys))
    assert jit.counters["compile_errors"] == 0 and jit.counters["graphs"] == 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["gather", "index_select"])
def test_gather_family_on_a_0_dim_constant(backend, op):
    # fuzz seed 752711: a 0-dim source made in the graph (full_like) reached NumPy's take_along_axis as a 0-dim
    # array, which has no axis 0 (a 0-dim input is read through a view that has one); the result unused, kept
    # because the op may raise on its index
    def f(x):
        t = torch.full_like(x, 1.5)
        if op == "gather":
            t.gather(0, torch.zeros_like(x, dtype=torch.long))
        else:
            t.index_select(0, torch.tensor([0]))
        return t.copy_(x) * 2

    x = torch.tensor(0.25)
    got, want = jit.compile(f, backend=backend)(x), f(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_error_after_a_write_through_a_view_of_an_input_is_raised_once(backend, fresh_jit):
    # fuzz seed 789688: the write into x1 through its narrow view was left in the graph made functional for x0's
    # relu_; the graph raised ZeroDivisionError after writing x1, the rerun as captured wrote x1 again and no
    # longer divided by zero: no exception and x1 written twice
    def f(x0, x1):
        t4 = x1.narrow(0, 0, 2)
        x0.relu_()
        t4.scatter_add_(0, torch.zeros_like(t4, dtype=torch.long), torch.ones_like(t4))
        torch.remainder(x0, x1)

    compiled = jit.compile(f, backend=backend)
    for x1 in (torch.tensor([1, 3]), torch.tensor([-2, 0])):
        x0 = torch.tensor(3, dtype=torch.int32)
        ours, theirs = (x0.clone(), x1.clone()), (x0.clone(), x1.clone())
        try:
            f(*theirs)
            raised = None
        except RuntimeError as e:
            raised = str(e)
        if raised is None:
            compiled(*ours)
        else:
            with pytest.raises(RuntimeError, match=raised):
                compiled(*ours)
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)


def test_a_value_read_twice_at_every_step_of_an_unrolled_loop_compiles_in_linear_time():
    # generator seed 787521: `acc = acc + acc.float()` 125 times is a DAG of 250 ops whose every value is read
    # twice; the NumPy code generator wrote each read's subtree again (2 ** 125 temporaries: it never finished),
    # and chains that deep overflowed the stack (now stored every 64 ops, inductor/fusion.py's cap_depth)
    def f(x0):
        acc = x0.clone()
        for _ in range(125):
            acc = acc + acc.to(torch.float32)
        return acc

    x0 = torch.tensor([True, False, True])
    jit.counters.clear()
    torch.testing.assert_close(jit.compile(f, backend="numpy")(x0), f(x0))
    assert jit.counters["compile_errors"] == 0 and jit.counters["graphs"] == 1

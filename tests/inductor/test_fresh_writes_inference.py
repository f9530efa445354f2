"""Inference graphs writing through views of tensors they made themselves (graph/autodiff/joint.py
`trace_functional`): BART's and T5's shift-right (`y = x.new_zeros(s); y[:, 1:] = x[:, :-1]; y[:, 0] = start`)
compile to generated code in both backends instead of running in torch, with eager's values and RNG stream;
writes into inputs and writes torch cannot make functional keep their own paths."""
import pytest
import torch
import torch.nn.functional as F

from tests.inductor.generated import BACKENDS, in_torch, on_device

import jit


def bart_shift(input_ids, pad, start):
    shifted = input_ids.new_zeros(input_ids.shape)
    shifted[:, 1:] = input_ids[:, :-1].clone()
    shifted[:, 0] = start
    shifted.masked_fill_(shifted == -100, pad)
    return shifted * 2


def t5_shift(input_ids):
    shifted = input_ids.new_zeros(input_ids.shape)
    shifted[..., 1:] = input_ids[..., :-1].clone()
    shifted[..., 0] = 7
    return shifted


def float_slice_writes(x):
    y = torch.zeros(x.shape[0], x.shape[1] + 2, dtype=torch.float64)  # a float64 buffer, a float32 source
    y[:, 1:-1] = x * 2
    y[0] = -1.0
    return y.sum(1) + x.shape[1]


def dropout_then_write(x):
    y = F.dropout(x, 0.5, training=True)
    z = torch.empty_like(y)
    z[:, :2] = y[:, :2] + 1
    z[:, 2:] = 0
    return z


CASES = {
    "bart": (lambda x: bart_shift(x, 1, 2), lambda: [torch.tensor([[5, -100, 3, 4], [-100, 2, 9, 1]])]),
    "t5": (t5_shift, lambda: [torch.randint(0, 50, (2, 3, 5))]),
    "float_slices": (float_slice_writes, lambda: [torch.randn(3, 4)]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_writes_into_fresh_tensors_compile(backend, case, fresh_jit, capsys):
    fn, make = CASES[case]
    inputs = [on_device(t) for t in make()] if backend == "triton" else make()
    jit.set_logs("inductor")
    got = jit.compile(fn, backend=backend)(*inputs)
    want = fn(*inputs)
    assert got.dtype == want.dtype
    torch.testing.assert_close(got.cpu(), want.cpu(), rtol=0, atol=0)
    assert "runs in torch" not in capsys.readouterr().err
    assert jit.counters["graphs"] == 1 and jit.counters["graph_breaks"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_generated_code_holds_the_writes(backend, fresh_jit):
    from framejit.graph.autodiff.joint import trace_functional
    x = torch.randint(0, 50, (2, 3, 5))
    traced = trace_functional(_captured(t5_shift, [x]), [x])
    assert traced is not None
    compiled = BACKENDS[backend](traced, [on_device(x)] if backend == "triton" else [x])
    assert hasattr(compiled, "lowered") and not in_torch(compiled)
    assert torch.equal(compiled(on_device(x) if backend == "triton" else x)[0].cpu(), t5_shift(x))


def _captured(fn, inputs):
    """fn's graph as jit captures it (with meta values), through a recording backend."""
    seen = []

    def record(gm, example_inputs):
        seen.append(gm)
        return gm

    jit.compile(fn, backend=record)(*inputs)
    return seen[0]


@pytest.mark.parametrize("backend", ["numpy", "inductor"])
def test_random_draws_keep_eager_stream(backend, fresh_jit):
    x = torch.randn(4, 6)
    compiled = jit.compile(dropout_then_write, backend=backend)
    for seed in (0, 1):
        torch.manual_seed(seed)
        want, want_next = dropout_then_write(x), torch.rand(3)
        torch.manual_seed(seed)
        got, got_next = compiled(x), torch.rand(3)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(got_next, want_next)  # the draws after it: the same stream


def test_a_write_into_an_input_view_is_not_taken_for_a_fresh_one(fresh_jit):
    def f(x, y):
        x[:, 0] = y.sum()  # the caller's tensor: written back, never a functional copy alone
        return x * 2

    a, b = torch.randn(3, 4), torch.randn(5)
    a2 = a.clone()
    got = jit.compile(f, backend="numpy")(a2, b)
    want = f(a, b)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(a2, a)


def clamp_by_tensor(x):  # fuzz seed 430042: clamp_'s Tensor overload has clamp.Tensor for twin, not clamp.default
    t = torch.broadcast_tensors(torch.trunc(x), x)[0].clone()
    v = t.narrow(0, 0, 1)
    v.clamp_(min=x[:1] * 0.5)
    return t


def index_fill_int(x):  # fuzz seed 430400: index_fill_'s int value: index_fill.int_Scalar
    t = x ** 2
    t[:, :2].index_fill_(0, torch.tensor([0]), -1)
    return t


def write_a_full_slice(x):  # fuzz seed 430721: t5 and t1 are two objects in eager, and c holds t1 twice
    t1 = x / 2
    t5 = torch.reciprocal(x)
    t5[:] = t1
    return t5, t1, [t1, t1]


def mask_assign(x):  # fuzz seed 431131: a boolean mask with one value is a where, not an integer index
    t = torch.empty_like(x).fill_(2)
    t[t > 0] = 3.0
    u = torch.zeros_like(x)
    u[x[:, 0, 0] > 0] += 1.5  # over the leading dim, accumulated
    return t * 1, u


def promoting_in_place(x, y):  # fuzz seeds 460377, 464670: an in-place op keeps its tensor's dtype
    t = x * 2.5
    t *= y  # float32 *= float64: float32
    u = x.bfloat16()
    u.mul_(x // x)  # bfloat16 *= float32: bfloat16
    return torch.trunc(t), u / 2


def unsqueeze_a_view(x):
    # fuzz seed 503968: the functional trace replayed the view's own sizes over the unsqueezed result
    t = x.clone().view(x.shape)
    t.unsqueeze_(0)
    return t


def write_after_a_break(x):
    # fuzz seed 506034: `x.narrow() * 1` reduced to the narrow, returned before the break as a view of x (whose
    # stale meta value did not say so); the clamp_ after it wrote x
    t = x.clone()
    y = t.narrow(0, 0, 1) * 1
    if t.sum() > -100:  # a graph break: y and t leave the first graph
        y.clamp_(min=0)
    return t, y


FUZZ = {"unsqueeze_a_view": (unsqueeze_a_view, lambda: [torch.randn(())]),
        "write_after_a_break": (write_after_a_break, lambda: [-torch.rand(3)]),
        "promoting_in_place": (promoting_in_place,  # bf16-exact x: Triton's interpreter truncates casts to bf16
                               lambda: [torch.randn(3, 4).bfloat16().float(), torch.randn(1, 4, dtype=torch.float64)]),
        "clamp_by_tensor": (clamp_by_tensor, lambda: [torch.randn(3, 4)]),
        "index_fill_int": (index_fill_int, lambda: [torch.randn(3, 4)]),
        "write_a_full_slice": (write_a_full_slice, lambda: [torch.randn(3, 3, dtype=torch.float16)]),
        "mask_assign": (mask_assign, lambda: [torch.randn(4, 3, 2)])}


def _same_structure(got, want):
    """Values equal, and identity and memory sharing between the results as in eager."""
    flat = lambda r: [t for item in r for t in (item if isinstance(item, list) else [item])]
    g, w = flat(got if isinstance(got, tuple) else (got,)), flat(want if isinstance(want, tuple) else (want,))
    assert len(g) == len(w)
    for a, b in zip(g, w):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for i in range(len(w)):
        for j in range(i):
            assert (g[i] is g[j]) == (w[i] is w[j])
            assert (g[i].data_ptr() == g[j].data_ptr()) == (w[i].data_ptr() == w[j].data_ptr())


@pytest.mark.parametrize("backend", ["numpy", "inductor", "triton"])
@pytest.mark.parametrize("case", FUZZ)
def test_fuzz_found_writes(backend, case, fresh_jit):
    fn, make = FUZZ[case]
    inputs = [on_device(t) for t in make()] if backend == "triton" else make()
    _same_structure(jit.compile(fn, backend=backend)(*inputs), fn(*inputs))


@pytest.mark.parametrize("backend", ["numpy", "inductor"])
def test_a_broadcast_write_returns_a_tensor_of_its_own(backend, fresh_jit):
    # fuzz seed 444898: `t[...] = 1` made t a broadcast 1; returned as that view, the caller's `t.mul_(2)` raised
    def f(x):
        t = x.sum(dim=0)
        t[...] = 1
        return t

    x = torch.randn(4, 4) > 0
    got, want = jit.compile(f, backend=backend)(x), f(x)
    assert torch.equal(got, want) and got.stride() == want.stride()
    got.mul_(2)  # each element its own memory, as eager's
    assert torch.equal(got, want * 2)


def _unused_division_beside_a_fresh_write(x, n):
    t = n.tril()
    n // n  # noqa: B018  (unused: eager still raises on a zero)
    t.t_()  # an in-place op on the graph's own tensor: the graph is traced functional
    return x * 2


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_an_unused_op_that_raises_survives_the_functional_trace(backend, requires_grad, fresh_jit):
    # fuzz seed 485697: the trace dropped the unused floor division (torch's dead-code rule: pure ops go)
    x, n = torch.randn(3, requires_grad=requires_grad), torch.tensor([[1], [0], [2]])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        _unused_division_beside_a_fresh_write(x, n)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        jit.compile(_unused_division_beside_a_fresh_write, backend=backend)(x, n)
    n = torch.tensor([[1], [2], [3]])
    torch.testing.assert_close(jit.compile(_unused_division_beside_a_fresh_write, backend=backend)(x, n),
                               _unused_division_beside_a_fresh_write(x, n))


def _integer_softmax(x):
    t = torch.empty_like(x).fill_(2)  # a write into the graph's own tensor: traced functional
    return torch.softmax(t, 0)


@pytest.mark.parametrize("backend", ["inductor", "numpy"])
def test_softmax_of_an_integer_tensor_is_eagers(backend, fresh_jit):
    # fuzz seed 478532: torch's softmax decomposition filled -inf into an int64 tensor ("cannot be converted to
    # type int64_t without overflow"); eager returns an empty tensor, and raises for a non-empty one
    compiled = jit.compile(_integer_softmax, backend=backend)
    empty = torch.zeros(0, 1, 1, dtype=torch.long)
    got, want = compiled(empty), _integer_softmax(empty)
    assert got.dtype == want.dtype and got.shape == want.shape
    with pytest.raises(Exception) as want_error:
        _integer_softmax(torch.ones(3, dtype=torch.long))
    with pytest.raises(want_error.type):
        compiled(torch.ones(3, dtype=torch.long))


@pytest.mark.parametrize("backend", ["numpy", "inductor", "triton"])
def test_a_copy_into_a_fresh_tensor_returns_a_tensor_of_its_own(backend, fresh_jit):
    # fuzz seed 519838: `t.copy_(x0)` traced functional is an expand of x0; the output was handed back as that
    # view of the input (eager's outputs were read from the traced graph, not the captured one)
    def f(x0, x1):
        t = x1.clone()
        t.copy_(x0)
        return t

    x0, x1 = torch.randn(()), torch.randn(3)
    if backend == "triton":
        x0, x1 = on_device(x0), on_device(x1)
    got, want = jit.compile(f, backend=backend)(x0, x1), f(x0, x1)
    torch.testing.assert_close(got, want)
    assert got.stride() == want.stride()
    assert got.untyped_storage().data_ptr() not in {x0.untyped_storage().data_ptr(), x1.untyped_storage().data_ptr()}

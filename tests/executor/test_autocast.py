"""torch.autocast in and around compiled code (jit/autocast.py): a traced `with torch.autocast(...)` block is
captured with its casts as graph nodes, and a compiled function called under autocast computes autocast's dtypes
on every backend, as eager does."""
import warnings

import pytest
import torch

import jit

BACKENDS = ["eager", "numpy", "inductor"]


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    jit.reset()


def _same(got, want):
    """Equal values and dtypes, bf16 rounding of the NumPy code allowed."""
    assert type(got) is type(want)
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
    elif isinstance(want, torch.Tensor):
        assert got.dtype == want.dtype and got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-2, atol=1e-2)
    else:
        assert got == want


torch.manual_seed(0)
LIN = torch.nn.Linear(4, 4)


def block(x):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = LIN(x)  # lower precision: bf16
        z = y.softmax(-1) + torch.mm(x, x.t())  # softmax of bf16 stays bf16 on CPU; mm in bf16
        with torch.autocast("cpu", enabled=False):  # as transformers' rotary embeddings force float32
            q = y.float() @ x
        asked = (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
    return y, z, q, x @ x, asked


@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_block_is_captured_with_eager_dtypes(backend):
    x = torch.randn(4, 4)
    _same(jit.compile(block, backend=backend)(x), block(x))
    explanation = jit.explain(block, x)
    assert explanation.graph_count == 1 and not explanation.break_reasons, explanation
    casts = [n for n in explanation.graphs[0].graph.nodes if n.target == "to"]
    assert casts and all(n.args[1] is torch.bfloat16 for n in casts)


def same_tensor_twice(x):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return x @ x, torch.addmm(x, x, x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_tensor_passed_twice_to_an_autocast_op(backend):
    # each tensor gets one probe however often the op takes it (the probes' truth value was asked for)
    x = torch.randn(4, 4)
    _same(jit.compile(same_tensor_twice, backend=backend)(x), same_tensor_twice(x))
    assert jit.counters.compile_errors == 0


def plain(x, w):
    y = x @ w
    return y, y.softmax(-1), y + 1, torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_called_under_autocast_computes_autocast_dtypes(backend):
    # the graph's casts are explicit, so the NumPy code too returns bf16 where eager does
    x, w = torch.randn(4, 4), torch.randn(4, 4)
    fast = jit.compile(plain, backend=backend)
    _same(fast(x, w), plain(x, w))  # compiled without autocast first
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = plain(x, w)
        got = fast(x, w)  # the autocast state is guarded: a second compile
        assert torch.is_autocast_enabled("cpu")  # the graph ran with autocast off, and left it on
    assert want[0].dtype == torch.bfloat16
    _same(got, want)
    _same(fast(x, w), plain(x, w))  # and the first entry still serves calls without autocast
    assert jit.counters["frames_compiled"] == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_break_inside_an_autocast_block_runs_the_rest_under_autocast(backend, capsys):
    def f(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = LIN(x)
            print("inside", y.dtype)  # a graph break inside the block
            z = LIN(y)
        return z, z.float() @ x

    x = torch.randn(4, 4)
    want = f(x)
    expected = capsys.readouterr().out
    _same(jit.compile(f, backend=backend)(x), want)
    assert capsys.readouterr().out == expected


def test_autocast_gradients_equal_eager():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))

    def step(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(x).float().pow(2).mean()
        return loss

    x = torch.randn(6, 4)
    want = step(x)
    want.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    got = jit.compile(step)(x)
    got.backward()
    torch.testing.assert_close(got, want)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g)


def test_autocast_arguments_checked_as_eager():
    def f(x):
        with torch.autocast("cpu", dtype=torch.int32):  # eager: a warning, and autocast disabled
            return x @ x

    x = torch.randn(2, 2)
    with warnings.catch_warnings(record=True) as eager_warned:
        warnings.simplefilter("always")
        want = f(x)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        got = jit.compile(f)(x)
    assert eager_warned and got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want)


def attention(q, k, v):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_lower_precision_op_probes_cannot_run(monkeypatch):
    # CUDA attention makes real tensors inside its kernel choice, so probes cannot run it: its rule (each
    # floating input cast to the autocast dtype) is autocast's lower-precision rule
    from jit import autocast

    real = autocast._run_logged

    def failing(run, args, kwargs, state):
        if any(on for on, _ in state.values()):
            raise RuntimeError("Tensor on device cuda:0 is not on the expected device meta!")
        return real(run, args, kwargs, state)

    monkeypatch.setattr(autocast, "_run_logged", failing)
    q, k, v = (torch.randn(2, 4, 8, 16) for _ in range(3))
    got, want = jit.compile(attention)(q, k, v), attention(q, k, v)
    assert got.dtype == want.dtype == torch.bfloat16
    # the default backend may keep the NumPy code (timed against torch): its attention keeps the probabilities in
    # float32 where torch's CPU kernel rounds them to bf16 before multiplying by v, a few bf16 steps apart on
    # outputs of magnitude ~0.5 (a step there is 2**-9)
    torch.testing.assert_close(got, want, atol=4 * 2**-9, rtol=1.6e-2)
    assert jit.counters.graph_breaks == 0 and jit.counters.compile_errors == 0


@pytest.mark.parametrize("op,autocast_dtype", [("sum", torch.float32), ("prod", torch.float32),
                                                 ("cumsum", torch.float32), ("neg", None)])
def test_a_dtype_argument_set_by_autocast_is_recorded(op, autocast_dtype):
    """CUDA autocast runs sum / prod / cumsum / softmax of bfloat16 with dtype=float32 instead of casting the input
    (fp32_set_opt_dtype): no cast shows, yet the result is float32 (the H100 returned a bfloat16 `x.sum(-1)` where
    eager's was float32). Probes claim CUDA, so the rule is checked without a GPU: the call is recorded as the aten
    ops autocast ran. An op autocast leaves alone gets no casts."""
    from types import SimpleNamespace

    from jit import autocast
    state = autocast.AutocastState((("cuda", torch.bfloat16),))
    x = torch.empty(3, 4, dtype=torch.bfloat16, device="meta")
    var = SimpleNamespace(example=x, device=torch.device("cuda"))
    args = (x,) if op == "neg" else (x, -1)
    plan = autocast.casts(state, [var], args, {}, lambda a, kw: getattr(a[0], op)(*a[1:], **kw), op)
    if autocast_dtype is None:
        assert plan == {}
        return
    assert isinstance(plan, autocast.Replay) and plan.replayable()
    assert plan.recording.result.dtype == autocast_dtype

"""Python floats from outside that change between calls (jit/dynamic.py note_float_changes): after the first
change they are graph inputs, so a frame compiles once more, not once per value, and computes with each call's
value. Comparisons with numbers are guarded by their answer; any other use needs the number and specializes."""
import types

import pytest
import torch

import jit


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()


def test_a_changing_float_compiles_twice_and_is_read_each_call():
    cfg = types.SimpleNamespace(scale=0.5, shift=2.0)

    @jit.compile
    def f(x):
        return x * cfg.scale + (1 - cfg.scale * 3) - x / cfg.shift

    x = torch.randn(4, 3)
    for scale in (0.5, 0.25, 1e-3, -7.5, 0.5):
        cfg.scale = scale
        torch.testing.assert_close(f(x), x * scale + (1 - scale * 3) - x / 2.0, rtol=0, atol=0)
    assert jit.counters["frames_compiled"] == 2


def test_comparisons_keep_their_answer_and_the_branch_recompiles_when_it_changes():
    cfg = types.SimpleNamespace(momentum=0.9)

    @jit.compile
    def f(x):
        if cfg.momentum != 0:
            return x * cfg.momentum
        return x - 1

    x = torch.randn(5)
    want = []
    for m in (0.9, 0.8, 0.7, 0.0, 0.6):
        cfg.momentum = m
        want.append(x * m if m != 0 else x - 1)
        torch.testing.assert_close(f(x), want[-1], rtol=0, atol=0)
    assert jit.counters["frames_compiled"] == 3  # 0.9; a graph input from 0.8 on; `momentum != 0` False at 0.0


def test_float_uses_that_need_the_number_specialize():
    cfg = types.SimpleNamespace(v=1.5)

    @jit.compile
    def f(x):
        return torch.full((2,), cfg.v) + x * cfg.v, isinstance(cfg.v, float), type(cfg.v) is float

    x = torch.ones(2)
    for v in (1.5, 2.5, 3.5):
        cfg.v = v
        out, is_float, is_type = f(x)
        torch.testing.assert_close(out, torch.full((2,), v) + x * v)
        assert is_float and is_type


def test_integer_and_half_tensors_read_the_float_as_torch_reads_a_python_scalar():
    cfg = types.SimpleNamespace(v=0.1)
    ints = torch.arange(6, dtype=torch.int32)
    halves = torch.randn(6).to(torch.bfloat16)

    @jit.compile
    def f(a, b):
        return a * cfg.v, b * cfg.v, b.mul(cfg.v), cfg.v * 2.0

    for v in (0.1, 0.3, 1 / 3):
        cfg.v = v
        got = f(ints, halves)
        want = (ints * v, halves * v, halves.mul(v), v * 2.0)
        for g, w in zip(got, want):
            if isinstance(w, torch.Tensor):
                assert g.dtype == w.dtype
            torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_compiled_floats_handed_back_to_python_are_each_calls_numbers():
    class Store:
        out = None

    cfg, store = Store(), Store()
    cfg.v = 1.5

    @jit.compile
    def f(x):
        store.out = cfg.v * 3
        return x * cfg.v, cfg.v * 2.0, [cfg.v - 1]

    x = torch.ones(2)
    for v in (1.5, 2.5, 3.5, 4.5):
        cfg.v = v
        t, doubled, listed = f(x)
        torch.testing.assert_close(t, x * v, rtol=0, atol=0)
        assert (doubled, listed, store.out) == (v * 2.0, [v - 1], v * 3)
        assert type(doubled) is float and type(store.out) is float
    assert jit.counters["frames_compiled"] == 2 and jit.counters["graph_breaks"] == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.int64])
def test_a_zero_dim_tensor_keeps_its_dtype_beside_a_compiled_float(dtype):
    """Generator seeds 706164 / 706602: `x[0] + alpha` with x half came back float32 (a 0-dim half tensor and a
    0-dim float32 tensor promote; a Python float does not)."""
    cfg = types.SimpleNamespace(alpha=0.0)

    @jit.compile
    def f(x):
        return x[0] + cfg.alpha, x[0] * cfg.alpha, x * cfg.alpha

    x = (torch.randn(3) * 4).to(dtype)
    for alpha in (0.0, 2.0, -1.5, 0.3):
        cfg.alpha = alpha
        for got, want in zip(f(x), (x[0] + alpha, x[0] * alpha, x * alpha)):
            assert got.dtype == want.dtype
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_in_place_and_reflected_operators_with_a_compiled_float():
    """`t += v` stays in place; `v / t` (reciprocal times v in eager) and `t ** v` (kernels chosen by v) keep v as
    a number; `v - t`, `v * t`, `v ** t` read it as a tensor operand."""
    cfg = types.SimpleNamespace(v=0.5)

    def f(x, t):
        x += cfg.v
        t.mul_(cfg.v)
        return cfg.v / t, t ** cfg.v, cfg.v - t, cfg.v * t, cfg.v ** t

    for v in (0.5, 2.0, -0.0, 3.0):
        cfg.v = v
        x, t = torch.randn(4), torch.rand(4) + 0.5
        xe, te = x.clone(), t.clone()
        want = f(xe, te)
        got = jit.compile(f)(x, t)
        torch.testing.assert_close(x, xe, rtol=0, atol=0)
        torch.testing.assert_close(t, te, rtol=0, atol=0)
        for i, (g, w) in enumerate(zip(got, want)):
            # (`v ** t`: NumPy's pow against torch's vectorized one; `v / t`: eager's reciprocal-then-multiply
            # comes out of the NumPy code one ulp apart at some values, as for a constant numerator: within an ulp)
            tol = dict(rtol=2.5e-7, atol=0) if i in (0, 4) else dict(rtol=0, atol=0)
            torch.testing.assert_close(g, w, equal_nan=True, **tol)

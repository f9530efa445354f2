"""Symbolic sizes through the NumPy backend (issue 5): a graph traced with dynamic sizes compiles to a module that
reads its sizes from its inputs, one module per set of size conditions (graph/size_variants.py), never one per
size. Every result is compared with eager at every size; the number of modules compiled is counted from the
JIT_LOGS=dynamic log."""
import logging

import pytest
import torch
import torch.nn.functional as F

import jit
from benchmarks.models.gpt import GPT, GPTConfig
from framejit.graph import size_variants
from framejit.inductor.backends import numpy_backend


pytestmark = pytest.mark.usefixtures("fresh_jit")


@pytest.fixture
def variants_log(caplog):
    """The `compiled variant` lines of the dynamic log, and the lines saying a variant was pinned."""
    caplog.set_level(logging.INFO, logger="jit.dynamic")

    def lines(kind="compiled variant"):
        return [r.getMessage() for r in caplog.records if r.name == "jit.dynamic" and kind in r.getMessage()]
    return lines


def capturing(store, backend=numpy_backend):
    def capture(gm, example_inputs):
        compiled = backend(gm, example_inputs)
        store.append(compiled)
        return compiled
    capture.dynamic_sizes = True
    return capture


def run_sizes(fn, make, sizes, dims, backend=numpy_backend, rtol=1e-4):
    """Call jit.compile(fn) on make(n) for each n (with `dims[i]` of argument i marked dynamic), comparing with
    eager; returns what the backend compiled."""
    store = []
    compiled = jit.compile(fn, backend=capturing(store, backend))
    for n in sizes:
        args = make(n)
        for a, d in zip(args, dims):
            if d is not None:
                jit.mark_dynamic(a, d)
        expected, got = fn(*args), compiled(*args)
        torch.testing.assert_close(got, expected, rtol=rtol, atol=rtol)
    assert jit.counters["frames_compiled"] == 1
    return store


C = 16
W = torch.randn(C, 8, generator=torch.Generator().manual_seed(0))

ONE_MODULE = [
    ("view(B*T, C)", lambda x: torch.relu(x.view(x.shape[0] * x.shape[1], C) @ W), lambda t: (torch.randn(3, t, C),), [1]),
    ("flatten", lambda x: torch.flatten(x, 0, 1).sum(-1), lambda t: (torch.randn(t, 3, C),), [0]),
    ("reshape(-1, C)", lambda x: x.reshape(-1, C) * 2, lambda t: (torch.randn(t, 3, C),), [0]),
    ("heads split and merged", lambda x: x.view(x.shape[0], x.shape[1], 4, C // 4).transpose(1, 2).contiguous()
     .transpose(1, 2).contiguous().view(x.shape[0], x.shape[1], C) + 1, lambda t: (torch.randn(2, t, C),), [1]),
    ("sum over the dynamic dim", lambda x: x.sum(1), lambda t: (torch.randn(4, t, C),), [1]),
    ("mean over it and over all", lambda x: x.mean(1) + x.mean(), lambda t: (torch.randn(4, t, C),), [1]),
    ("var over it", lambda x: x.var(1), lambda t: (torch.randn(4, t, C),), [1]),
    ("amax and argmax over it", lambda x: x.amax(1) - x.argmax(1), lambda t: (torch.randn(4, t, C),), [1]),
    ("softmax along it", lambda x: F.softmax(x, -1), lambda t: (torch.randn(4, C, t),), [2]),
    ("layer_norm along it", lambda x: F.layer_norm(x, (x.shape[-1],)), lambda t: (torch.randn(4, t),), [1]),
    ("broadcast against it", lambda x, y: x * y + x.sum(1, keepdim=True), lambda t: (torch.randn(4, t, C),
                                                                                      torch.randn(1, t, 1)), [1, 1]),
    ("select from the end", lambda x: x[:, -1] * 2 + x[:, 0], lambda t: (torch.randn(4, t, C),), [1]),
    ("slices", lambda x: x[:, 1:] * 2 + x[:, :-1], lambda t: (torch.randn(4, t, C),), [1]),
    ("slice to half", lambda x: x[:, : x.shape[1] // 2] * 2, lambda t: (torch.randn(4, t, C),), [1]),
    ("arange of a size", lambda x: x + torch.arange(x.shape[1]), lambda t: (torch.randn(4, t),), [1]),
    ("cat along it", lambda x: torch.cat([x, x * 2], 1).sum(1), lambda t: (torch.randn(4, t),), [1]),
    ("size as a scalar", lambda x: x * x.shape[1] + x.shape[1] // 2, lambda t: (torch.randn(4, t),), [1]),
    ("changing batch", lambda x: F.gelu(x @ W), lambda b: (torch.randn(b, C),), [0]),
]


@pytest.mark.parametrize("name,fn,make,dims", ONE_MODULE, ids=[c[0] for c in ONE_MODULE])
def test_one_module_serves_every_size(name, fn, make, dims, variants_log):
    store = run_sizes(fn, make, [2, 3, 5, 8, 13, 21], dims)
    assert len(store) == 1 and isinstance(store[0], size_variants.SizeVariants)
    assert len(store[0].variants) == 1, variants_log()
    assert not store[0].variants[0].pinned
    assert len(variants_log()) == 1


def test_generated_module_reads_sizes_from_its_inputs():
    store = run_sizes(lambda x: torch.relu(x.view(x.shape[0] * x.shape[1], C) @ W), lambda t: (torch.randn(3, t, C),),
                      [4, 7], [1])
    source = store[0].variants[0].fn.source
    assert "s0 = x.shape[1]  # a dynamic size" in source
    assert "np.reshape(x, (s0 * 3, 16))" in source
    assert "# Source FX graph:" in source and "s0 * 3" in source.split("import math")[0]  # the header names sizes


def test_growing_rows_compile_a_bounded_number_of_modules(variants_log):
    """Row blocking (inductor/numpy/row_blocks.py) is a size-dependent choice: small arrays run whole, big ones in
    blocks. Each choice is a condition, so rows growing from 100 to 3000 compile two modules, not five."""
    store = run_sizes(lambda x: torch.tanh(x) * 2 + 1, lambda t: (torch.randn(t, 512),), [100, 300, 600, 700, 3000],
                      [0])
    assert len(store[0].variants) == 2
    assert "fails at s0=600" in variants_log()[1]
    assert "rows_" in store[0].variants[1].fn.source and "rows_" not in store[0].variants[0].fn.source


def test_gpt_generation_loop_one_module(variants_log):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=48, n_layer=2, n_head=2, n_embd=32), seed=0).eval()
    store = []
    compiled = jit.compile(model, backend=capturing(store))
    idx = torch.randint(0, 64, (1, 3))
    with torch.no_grad():
        for _ in range(30):
            expected, got = model(idx), compiled(idx)
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
            idx = torch.cat([idx, expected[:, -1:].argmax(-1)], dim=1)
    assert jit.counters["frames_compiled"] == 2  # static first, then dynamic in the sequence length
    dynamic = [s for s in store if isinstance(s, size_variants.SizeVariants)]
    assert len(dynamic) == 1 and len(dynamic[0].variants) == 1 and not dynamic[0].variants[0].pinned
    assert len(variants_log()) == 1


def test_code_that_cannot_stay_symbolic_specializes_correctly(variants_log):
    """logcumsumexp has no lowering: it runs in torch, with no symbolic shape rule, so each size pins its own
    module (logged with the reason); results stay right, and past MAX_VARIANTS the graph runs as captured."""
    sizes = list(range(2, 2 + size_variants.MAX_VARIANTS + 3))
    store = run_sizes(lambda x: torch.logcumsumexp(x, 1) + 1, lambda t: (torch.randn(4, t),), sizes, [1])
    assert len(store[0].variants) == size_variants.MAX_VARIANTS
    assert all(any(c.op == "==" for c in v.conditions) for v in store[0].variants)
    assert "has no symbolic shape rule" in variants_log()[1]


def test_a_number_baked_from_a_hint_is_caught_and_pinned(monkeypatch, variants_log):
    """The safety net: code generated a second time at other sizes must read the same. A lowering that bakes a
    hint into the code (simulated here) makes the variant exact for its sizes, and the results stay right."""
    from framejit.inductor.numpy import codegen as numpy_codegen
    real = numpy_codegen.KernelWriter.view

    def baking(self, e):
        if e.kind == "reshape":
            e.params = (tuple(int.__int__(n) for n in e.params[0]),)  # the hints, as plain numbers
        return real(self, e)
    monkeypatch.setattr(numpy_codegen.KernelWriter, "view", baking)
    store = run_sizes(lambda x: x.view(x.shape[0] * x.shape[1], C) * 2, lambda t: (torch.randn(3, t, C),), [4, 5, 6],
                      [1])
    assert len(store[0].variants) == 3 and all(v.pinned for v in store[0].variants)
    assert "differs" in variants_log("not the same")[0]


def test_duck_sized_inputs_check_their_equality():
    """Two dynamic dims with equal sizes share a symbol; the module is used only while they stay equal."""
    store = []
    fn = lambda x, y: x @ y + 1
    compiled = jit.compile(fn, backend=capturing(store))
    for n in (3, 4, 6):
        x, y = torch.randn(n, n), torch.randn(n, 5)
        jit.mark_dynamic(x, [0, 1])
        jit.mark_dynamic(y, 0)
        torch.testing.assert_close(compiled(x, y), fn(x, y))
    check = store[0].variants[0].check_source
    assert "a1.shape[0] == s0" in check or "a0.shape[1] == s0" in check


def test_an_output_viewing_another_at_a_dynamic_offset():
    """`t[-1:]` returned beside `t` is rebuilt as a view of t's tensor; its offset depends on the size, so the
    views are not replayed with the sizes of the call that compiled them (t[2:3] of 2 rows: empty; generator
    seed 2382)."""
    def f(x0, x1):
        t2 = torch.where(x0 > 0, x1, x0)
        return t2, t2[-1:]
    g = jit.compile(f, backend="numpy")
    for n in (2, 3, 2, 5):
        x0, x1 = torch.randn(n, 1), torch.randn(())
        got, want = g(x0, x1), f(x0, x1)
        assert got[1].shape == want[1].shape and torch.equal(got[1], want[1])
        assert got[1]._base is got[0] or got[1].untyped_storage().data_ptr() == got[0].untyped_storage().data_ptr()

"""Symbolic sizes through the Triton backend (issue 5), in Triton's interpreter on CPU (or on a GPU where there is
one): kernels take numels, strides and index divisors as arguments; block sizes and persistent-or-looped are
chosen from the first call's sizes and recorded as conditions in power-of-two buckets, so a growing length
compiles O(log n) kernel sets, each logged, never one per length. Every result is compared with eager."""
import logging
import math

import pytest
import torch
import torch.nn.functional as F

from tests.inductor.triton.support import DEVICE, on_device  # noqa: F401  (sets TRITON_INTERPRET=1 without a GPU)

import jit
from benchmarks.models.gpt import GPT, GPTConfig
from framejit.graph import size_variants
from framejit.inductor.backends import triton_backend


pytestmark = pytest.mark.usefixtures("fresh_jit")


def capturing(store):
    def capture(gm, example_inputs):
        compiled = triton_backend(gm, example_inputs)
        store.append(compiled)
        return compiled
    capture.dynamic_sizes = True
    return capture


def run_sizes(fn, make, sizes, dims, tol=1e-4):
    store = []
    compiled = jit.compile(fn, backend=capturing(store))
    for n in sizes:
        args = [on_device(a) for a in make(n)]
        for a, d in zip(args, dims):
            if d is not None:
                jit.mark_dynamic(a, d)
        expected, got = fn(*args), compiled(*args)
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    assert jit.counters["frames_compiled"] == 1
    assert len(store) == 1 and isinstance(store[0], size_variants.SizeVariants)
    return store[0]


def kernel_sources(variant) -> str:
    src = variant.fn.source
    return src[src.index("@triton.jit"):src.index("def call(")]


def test_kernels_take_sizes_as_arguments():
    graph = run_sizes(lambda x: F.softmax(x, -1) * x.shape[1], lambda t: (torch.randn(4, t),), [300, 400, 512], [1])
    assert len(graph.variants) == 1  # 300..512 share a bucket: one RBLOCK, one persistent kernel
    kernels = kernel_sources(graph.variants[0])
    assert "ks0, XBLOCK: tl.constexpr" in kernels and "rmask = rindex < ks0" in kernels
    assert "300" not in kernels
    call = graph.variants[0].fn.source.split("def call(")[1]
    assert "s0 = x.shape[1]  # a dynamic size" in call and ", s0)" in call


def test_growing_length_one_kernel_set_past_the_block_cap(caplog):
    """A pointwise kernel's XBLOCK stops growing at 1024 elements: every longer length shares one kernel set."""
    caplog.set_level(logging.INFO, logger="jit.dynamic")
    graph = run_sizes(lambda x: torch.tanh(x) * 2 + x.mean(-1, keepdim=True), lambda t: (torch.randn(t, 64),),
                      [64, 65, 100, 127, 200], [0])
    assert len(graph.variants) == 1
    assert len([r for r in caplog.records if "compiled variant" in r.getMessage()]) == 1


def test_growing_length_compiles_log_many_variants_each_logged(caplog):
    caplog.set_level(logging.INFO, logger="jit.dynamic")
    sizes = list(range(2, 40, 3))
    graph = run_sizes(lambda x: (x - x.amax(1, keepdim=True)).exp().sum(1), lambda t: (torch.randn(3, t, 8),), sizes,
                      [1])
    assert len(graph.variants) <= math.ceil(math.log2(max(sizes))) + 1
    lines = [r.getMessage() for r in caplog.records if "compiled variant" in r.getMessage()]
    assert len(lines) == len(graph.variants) and all("fails at" in line for line in lines[1:])


CASES = [
    ("view(B*T, C)", lambda x: torch.relu(x.view(x.shape[0] * x.shape[1], 16) * 3), lambda t: (torch.randn(3, t, 16),),
     [1]),
    ("flatten", lambda x: torch.flatten(x, 0, 1).sum(-1), lambda t: (torch.randn(t, 3, 16),), [0]),
    ("sum and mean over the dynamic dim", lambda x: x.sum(1) + x.mean(1), lambda t: (torch.randn(4, t, 16),), [1]),
    ("layer_norm along it", lambda x: F.layer_norm(x, (x.shape[-1],)), lambda t: (torch.randn(4, t),), [1]),
    ("broadcast against it", lambda x, y: x * y + x.sum(1, keepdim=True), lambda t: (torch.randn(4, t, 8),
                                                                                      torch.randn(1, t, 1)), [1, 1]),
    ("transposed and sliced", lambda x: x.transpose(0, 1)[1:, :] * 2 + x[:, -1:].t(),
     lambda t: (torch.randn(6, t),), [1]),
    ("changing batch", lambda x: F.gelu(x * 2).sum(-1), lambda b: (torch.randn(b, 24),), [0]),
]


@pytest.mark.parametrize("name,fn,make,dims", CASES, ids=[c[0] for c in CASES])
def test_dynamic_sizes_match_eager(name, fn, make, dims):
    graph = run_sizes(fn, make, [3, 5, 9, 12, 20], dims)
    assert len(graph.variants) <= 4  # buckets (2, 4], (4, 8], (8, 16], (16, 32] at most
    assert not any(v.pinned for v in graph.variants)


def test_code_that_cannot_stay_symbolic_specializes_correctly():
    graph = run_sizes(lambda x: torch.logcumsumexp(x, 1) + 1, lambda t: (torch.randn(4, t),), [5, 6, 7], [1])
    assert len(graph.variants) == 3
    assert all(any(c.op == "==" and c.holds for c in v.conditions) for v in graph.variants)


def test_gpt_generation_loop(caplog):
    caplog.set_level(logging.INFO, logger="jit.inductor.triton")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=1, n_head=2, n_embd=32), seed=0).eval().to(DEVICE)
    store = []
    compiled = jit.compile(model, backend=capturing(store))
    idx = on_device(torch.randint(0, 64, (1, 3)))
    with torch.no_grad():
        for _ in range(14):
            expected, got = model(idx), compiled(idx)
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
            idx = torch.cat([idx, expected[:, -1:].argmax(-1)], dim=1)
    assert jit.counters["frames_compiled"] == 2
    dynamic = [s for s in store if isinstance(s, size_variants.SizeVariants)]
    assert len(dynamic) == 1 and len(dynamic[0].variants) <= 3  # lengths 4..16: buckets (2,4] (4,8] (8,16]
    assert not any(v.pinned for v in dynamic[0].variants)
    # library calls run once at compile time to learn their layouts, also on a size variant's stand-in inputs:
    # embedding indices must be in range there (on the GPU an out-of-range index is an unrecoverable assert)
    assert not [r for r in caplog.records if "layout probe" in r.getMessage() and "failed" in r.getMessage()]


def test_autotune_with_sizes_as_arguments():
    """Autotuning times candidates on the real arguments, which include the sizes (ints) of a dynamic graph."""
    def capture(gm, example_inputs):
        return triton_backend(gm, example_inputs, autotune=True)
    capture.dynamic_sizes = True
    compiled = jit.compile(lambda x: F.softmax(x, -1) * 2, backend=capture)
    for t in (40, 48, 56):
        x = on_device(torch.randn(4, t))
        jit.mark_dynamic(x, 1)
        torch.testing.assert_close(compiled(x), F.softmax(x, -1) * 2)
    assert jit.counters["frames_compiled"] == 1

"""Issue 20's indexing ops in both backends (NumPy code; Triton kernels, in Triton's CPU interpreter without a GPU):
gather, index_select, x[idx], embedding and its backward, scatter / scatter_add / scatter_reduce(sum), index_add,
index_put, flip and roll. Each is compared with eager (values, dtype, shape) and must run in generated code: the only torch call
left is the Triton backend's index check (graph/index_checks.py). Out-of-range indices raise eager's exception."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.inductor.generated import BACKENDS, TOL, compiled, kernels_with, run
from tests.inductor.triton.support import DEVICE, assert_same, on_device

import jit
from framejit.inductor.ir import FallbackKernel


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(shape, generator=g(seed)).to(dtype)


def idx(*values):
    return torch.tensor(values)


CASES = {
    "gather": (lambda x, i: torch.gather(x, 1, i), lambda: [rand(3, 6), idx([0, 5, 5], [2, 2, 1], [4, 0, 3])]),
    "gather_dim0_narrow_index": (lambda x, i: torch.gather(x, -2, i) * 2,
                                 lambda: [rand(4, 6), idx([3, 0], [1, 1])]),
    "gather_bf16": (lambda x, i: torch.gather(x, 0, i) + 1, lambda: [rand(4, 5, dtype=torch.bfloat16),
                                                                    idx([3, 0, 1, 1, 2])]),
    # one element picked: the whole tile reads one address, which is the index's (the Triton kernel read x[0])
    "gather_one_element": (lambda x, i: torch.gather(x, 0, i) * 2, lambda: [rand(7), idx(3)]),
    "getitem_one_element": (lambda x, i: x[i] - 1, lambda: [rand(7), idx(-2)]),
    "index_select_duplicates": (lambda x, i: torch.index_select(x, 1, i).exp(), lambda: [rand(3, 5), idx(4, 4, 0, 2)]),
    "index_select_0d_index": (lambda x, i: x.index_select(0, i), lambda: [rand(3, 5), torch.tensor(2)]),
    "getitem_negative": (lambda x, i: x[i] + 1, lambda: [rand(5, 3), idx([-1, 0, 4], [-5, 2, 2])]),
    "getitem_middle_dim": (lambda x, i: x[:, i].sum(-1), lambda: [rand(2, 6, 3), idx(5, -6, 1)]),
    "getitem_after_slice": (lambda x, i: x[1:, i], lambda: [rand(4, 6), idx(0, 3, -1)]),
    "getitem_int32_index": (lambda x, i: x[i], lambda: [rand(4, 3), idx(3, 1).int()]),
    "getitem_int64_source": (lambda x, i: x[i] * 2, lambda: [torch.arange(12).view(4, 3), idx(3, 1, 3)]),
    "embedding": (lambda i, w: F.embedding(i, w) * 3, lambda: [idx([1, 9, 9], [0, 4, 2]), rand(10, 4)]),
    "embedding_bf16": (lambda i, w: F.embedding(i, w).float(), lambda: [idx([1, 9], [0, 9]),
                                                                          rand(10, 8, dtype=torch.bfloat16)]),
    "embedding_backward": (lambda gr, i: torch.ops.aten.embedding_dense_backward.default(gr, i, 6, -1, False),
                           lambda: [rand(2, 3, 4), idx([1, 5, 1], [1, 0, 5])]),
    "embedding_backward_padding": (lambda gr, i: torch.ops.aten.embedding_dense_backward.default(gr, i, 6, 1, False),
                                   lambda: [rand(2, 3, 4), idx([1, 5, 1], [1, 0, 5])]),
    "embedding_backward_bf16": (lambda gr, i: torch.ops.aten.embedding_dense_backward.default(gr, i, 6, -1, False),
                                lambda: [rand(4, 8, dtype=torch.bfloat16), idx(2, 3, 2, 0)]),
    "scatter_add_duplicates": (lambda x, i, s: torch.scatter_add(x, 1, i, s),
                               lambda: [rand(3, 6), idx([0, 0, 5], [2, 2, 2], [1, 1, 1]), rand(3, 4, seed=1)]),
    "scatter_add_bf16": (lambda x, i, s: x.scatter_add(0, i, s) * 2,
                         lambda: [rand(3, 4, dtype=torch.bfloat16), idx([0, 2, 1, 0], [2, 2, 0, 1]),
                                  rand(2, 4, dtype=torch.bfloat16, seed=1)]),
    "scatter_reduce_sum": (lambda x, i, s: torch.scatter_reduce(x, 0, i, s, "sum"),
                           lambda: [rand(4), idx(3, 3, 0), rand(3, seed=1)]),
    "scatter_src": (lambda x, i, s: torch.scatter(x, 1, i, s), lambda: [rand(3, 6), idx([0, 5], [2, 3], [1, 4]),
                                                                         rand(3, 3, seed=1)]),
    "scatter_value": (lambda x, i: x.scatter(0, i, -2.0), lambda: [rand(4, 3), idx([3, 0, 1])]),
    "index_add_duplicates": (lambda x, i, s: torch.index_add(x, 0, i, s, alpha=2),
                             lambda: [rand(4, 3), idx(3, 3, 0, 3), rand(4, 3, seed=1)]),
    "index_add_dim1": (lambda x, i, s: x.index_add(1, i, s.sin()), lambda: [rand(2, 5), idx(4, 0), rand(2, 2, seed=1)]),
    "index_put_accumulate": (lambda x, i, v: torch.index_put(x, (i,), v, accumulate=True),
                             lambda: [rand(4, 3), idx(-1, 3, 0, -4), rand(4, 3, seed=1)]),
    "index_put_broadcast_value": (lambda x, i, v: x.index_put((i,), v, True),
                                  lambda: [rand(4, 3), idx(1, 1), rand(3, seed=1)]),
    "index_put_assign": (lambda x, i, v: x.index_put((i,), v), lambda: [rand(4, 3), idx(2, 0), rand(2, 3, seed=1)]),
    "flip": (lambda x: torch.flip(x, (0, -1)) * 2, lambda: [rand(3, 5)]),
    "flip_varargs_bf16": (lambda x: x.flip(1, 0) + 1, lambda: [rand(3, 5, dtype=torch.bfloat16)]),
    "flip_of_transpose": (lambda x: torch.fliplr(x.t()) - torch.flipud(x.t()), lambda: [rand(3, 5)]),
    "flip_int": (lambda x: x.flip(0) * 3, lambda: [torch.arange(6)]),
    "roll": (lambda x: torch.roll(x, (1, -7), (0, 1)), lambda: [rand(4, 5)]),
    "roll_flattened_transpose": (lambda x: x.t().roll(4) + 1, lambda: [rand(4, 5)]),
    "roll_by_a_multiple": (lambda x: x.roll(10, -1) * 2, lambda: [rand(2, 5)]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CASES)
def test_indexing_op_matches_eager_in_generated_code(backend, name):
    fn, make = CASES[name]
    inputs = make()
    dtype = next((t.dtype for t in inputs if t.dtype in TOL), None)
    run(backend, fn, *inputs, tol=TOL.get(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_embedding_fuses_with_its_neighbours(backend):
    # the gather, the position add and the row sum in one kernel (the NumPy one includes the index check too)
    fn = lambda i, w, p: (F.embedding(i, w) + p).sum(-1)
    c = run(backend, fn, idx([1, 9, 3], [0, 4, 2]), rand(10, 4), rand(3, 4, seed=1))
    assert kernels_with(c, "embedding", "add", "sum")


@pytest.mark.parametrize("backend", BACKENDS)
def test_flip_and_roll_fuse_with_their_neighbours(backend):
    # a Swin-style shifted window and a reversed sequence read by the kernel that sums them (roll: slices and a
    # cat, flip: an index_select by a descending arange); Triton computes it all in one kernel, NumPy stores the
    # first roll's cat (read twice by the second)
    fn = lambda x: (x.roll((1, 1), (1, 2)) + x.flip(2)).sum(-1)
    c = run(backend, fn, rand(2, 4, 6))
    assert kernels_with(c, "cat", "index_select", "arange", "sum")
    assert len(c.lowered.kernels) == (1 if backend == "triton" else 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scatter_add_fuses_its_operands(backend):
    # the source's arithmetic is computed inside the indexed store, the base's inside its copy
    fn = lambda x, i, s: torch.scatter_add(x * 2, 0, i, s.exp())
    c = run(backend, fn, rand(4, 3), idx([3, 0, 3], [3, 3, 3]), rand(2, 3, seed=1))
    assert kernels_with(c, "scatter_add", "exp")


OUT_OF_RANGE = [
    (lambda x, i: torch.gather(x, 1, i), lambda: [rand(3, 4), idx([0, 4], [1, 1], [0, 0])]),
    (lambda x, i: torch.gather(x, 1, i), lambda: [rand(3, 4), idx([0, -1], [1, 1], [0, 0])]),
    (lambda x, i: torch.index_select(x, 0, i), lambda: [rand(3, 4), idx(1, 3)]),
    (lambda x, i: x[i], lambda: [rand(3, 4), idx(1, -4)]),
    (lambda x, i: x[:, i], lambda: [rand(3, 4), idx(4)]),
    (lambda i, w: F.embedding(i, w), lambda: [idx(1, -1), rand(3, 4)]),
    (lambda x, i, s: x.scatter_add(0, i, s), lambda: [rand(3, 4), idx([3, 0, 0, 0]), rand(1, 4)]),
    (lambda x, i, s: x.index_add(0, i, s), lambda: [rand(3, 4), idx(-1), rand(1, 4)]),
    (lambda x, i, v: x.index_put((i,), v, True), lambda: [rand(3, 4), idx(5), rand(1, 4)]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(len(OUT_OF_RANGE)))
def test_index_out_of_range_raises_as_eager(backend, case):
    if backend == "triton" and DEVICE == "cuda":
        pytest.skip("on CUDA the check is a device-side assert, as eager's index kernels: it ends the process's "
                    "CUDA context (the CPU run checks the same code path)")
    fn, make = OUT_OF_RANGE[case]
    inputs = make()
    with pytest.raises(Exception) as eager:
        fn(*inputs)
    c, inputs = compiled(backend, fn, [t.clone() for t in inputs])
    with pytest.raises(type(eager.value)) as got:
        c(*inputs)
    assert str(got.value) == str(eager.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_language_model_training_step_lowers_embedding_backward(backend, fresh_jit):
    """A training step of an embedding + linear model: gradients as eager's, and the backward graph's
    embedding_dense_backward (padding_idx masked) in generated code, not a torch call."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(12, 8, padding_idx=0), nn.Linear(8, 12))
    twin = nn.Sequential(nn.Embedding(12, 8, padding_idx=0), nn.Linear(8, 12))
    twin.load_state_dict(model.state_dict())
    device = DEVICE if backend == "triton" else "cpu"  # NumPy code serves CPU tensors only
    model, twin = model.to(device), twin.to(device)
    regions = []

    def capture(gm, inputs):
        out = BACKENDS[backend](gm, inputs)
        regions.append(out)
        return out
    capture.dynamic_sizes = True
    step = jit.compile(lambda m, i, y: F.cross_entropy(m(i).flatten(0, 1), y.flatten()), backend=capture)
    i, y = idx([1, 0, 5, 11], [3, 3, 0, 2]).to(device), idx([2, 7, 1, 0], [0, 0, 4, 11]).to(device)
    step(model, i, y).backward()
    F.cross_entropy(twin(i).flatten(0, 1), y.flatten()).backward()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
    backwards = [r.backward for r in regions if getattr(r, "backward", None) is not None]
    lowered = [b.lowered for b in backwards if hasattr(b, "lowered")]
    assert any("embedding_dense_backward" in lg.graph_text for lg in lowered)
    assert not [k for lg in lowered for k in lg.kernels if isinstance(k, FallbackKernel) and
                "embedding_dense_backward" in k.source[0]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_sizes(backend, fresh_jit):
    store = []

    def capture(gm, inputs):
        out = BACKENDS[backend](gm, inputs)
        store.append(out)
        return out
    capture.dynamic_sizes = True
    fn = lambda i, w, x: (F.embedding(i, w) * 2, torch.index_add(x, 0, i.flatten() % 3, torch.ones(i.numel(), 4, device=x.device)))
    c = jit.compile(fn, backend=capture)
    for n in (3, 5, 8):
        i = torch.randint(0, 10, (2, n), generator=g(n))
        w, x = rand(10, 4), rand(3, 4, seed=1)
        args = [on_device(t) for t in (i, w, x)] if backend == "triton" else [i, w, x]
        jit.mark_dynamic(args[0], 1)
        for got, ref in zip(c(*args), fn(*args)):
            assert_same(got, ref)
    assert len(store) <= 2  # one module for every length (and the first, static, one)


@pytest.mark.parametrize("backend", ["numpy", "inductor"])
def test_unused_index_still_raises(backend, fresh_jit):
    # eager raises for x[i] even when the result is never read: the check is not dead code
    def f(x, i):
        x[i]
        return x * 2
    c = jit.compile(f, backend=backend)
    x = rand(3, 4)
    torch.testing.assert_close(c(x, idx(0, 2)), x * 2)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        c(x, idx(0, 5))

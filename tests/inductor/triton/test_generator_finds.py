"""Programs the generator found wrong or crashing under the Triton backend (`python -m tests.fuzz --backend
triton`, its kernels in Triton's CPU interpreter where there is no GPU), reduced: each compiled with
backend="triton" against eager."""
import torch

import jit
from tests.inductor.triton.support import on_device


def test_a_reduction_over_an_empty_dim(fresh_jit):
    # seed 48: the address of a tile over a (2, 0) tensor divided by the empty dim's zero extent (internal error)
    f = lambda x: ((x > 0).any(), x.sum(0), (x * 2).amax(-1, keepdim=True) if x.shape[-1] else x)  # noqa: E731
    x = on_device(torch.randn(2, 0))
    got, want = jit.compile(f, backend="triton")(x), f(x)
    assert jit.counters["compile_errors"] == 0
    for a, b in zip(got, want):
        assert a.shape == b.shape and torch.equal(a.cpu(), b.cpu())


def test_a_flip_of_a_one_element_dim_reads_its_index_as_a_number(fresh_jit):
    # seed 1: index_select by arange(0, -1, -1) of one element gave `tl.where(0 < 0, 0 + 1, 0)`: a mask of
    # Python bools, which the interpreter rejects ("mask has unsupported dtype")
    def f(x):
        t = x.flip(0)
        t += -2
        return t, x.flip(-1) * x

    x = on_device(torch.randn(1, 1))
    got, want = jit.compile(f, backend="triton")(x), f(x)
    assert all(torch.equal(a.cpu(), b.cpu()) for a, b in zip(got, want))


def test_an_input_returned_as_its_own_view_stays_a_view(fresh_jit):
    # seed 92: `t = x.transpose(-1, -1)` (a view of x in eager) came back a copy of x from a graph the optimizer
    # reduced to `return x`, so a write through t after a graph break did not reach x
    def f(x):
        t = x.transpose(-1, -1)
        if x.sum() > 100:
            pass
        t.add_(1)
        return None

    x = on_device(torch.randn(3))
    y = x.clone()
    jit.compile(f, backend="triton")(x)
    f(y)
    assert torch.equal(x.cpu(), y.cpu())


def test_a_detached_input_is_a_new_view_of_it(fresh_jit):
    # seed 110: `x.detach()` returned x itself (an identity view spelled as the buffer): eager's is another tensor
    # over x's memory
    f = lambda x: (x.detach(), x.transpose(-1, -1), x.t() * 2)  # noqa: E731
    for shape in ((), (3,)):
        x = on_device(torch.randn(shape))
        got = jit.compile(f, backend="triton")(x)
        assert got[0] is not x and got[0].data_ptr() == x.data_ptr()
        assert got[1] is not x and got[1].data_ptr() == x.data_ptr()
        assert torch.equal(got[2].cpu(), f(x)[2].cpu())


def test_scatter_add_into_one_element_and_into_bools(fresh_jit):
    # seed 130: a size-1 target made the atomic's pointer a scalar beside a tile of values (the interpreter
    # raised); seed 248: a bool target's sum (an or) had no atomic_add for int1
    def f(x):
        zeros = torch.zeros_like(x, dtype=torch.long)
        return x.scatter_add(0, zeros, x), (x > 0).scatter_add(0, zeros, x > 1), \
            (x > 0).index_add(0, torch.tensor([0, 0]), torch.tensor([True, False]))

    for n in (1, 3):
        x = on_device(torch.randn(n))
        got, want = jit.compile(f, backend="triton")(x), f(x)
        assert all(a.dtype == b.dtype and torch.allclose(a.cpu(), b.cpu()) for a, b in zip(got, want))


def test_an_element_of_a_scan_is_read_from_the_scan(fresh_jit):
    # seed 2077: `for r in x.cumsum(0)` read c[0] and c[1]; merged into their reader as a side output, the scan
    # was computed again under each select (the scan of one element) and failed to broadcast
    def f(x):
        c = x.cumsum(0, dtype=torch.float32)
        for r in c:
            x = x + r
        return x

    x = on_device(torch.randn(3))
    torch.testing.assert_close(jit.compile(f, backend="triton")(x).cpu(), f(x).cpu())


def test_scatter_into_a_known_index_and_into_a_scalar(fresh_jit):
    # seeds 1222 (an index known in Python: a mask of Python bools) and 1612 (a 0-d target: dim 0 of a scalar)
    def one(x):
        t = x.clone()
        t.scatter_add_(0, torch.zeros_like(t, dtype=torch.long), torch.ones_like(t))
        return t

    def scalar(x):
        t = x.mean()
        t.scatter_add_(0, torch.zeros_like(t, dtype=torch.long), torch.ones_like(t))
        return t

    for f, x in ((one, torch.randn(1)), (scalar, torch.randn(()))):
        x = on_device(x)
        torch.testing.assert_close(jit.compile(f, backend="triton")(x).cpu(), f(x).cpu())


def test_a_copy_returned_through_a_view_is_not_the_input(fresh_jit):
    # seed 472: `x.clone().reshape(-1)`: the copy became a view of x (the planner drops copies whose buffer is
    # not returned, and the returned view hid it), so the output shared x's memory
    f = lambda x: x.clone().reshape(-1)  # noqa: E731
    x = on_device(torch.randn(()))
    got = jit.compile(f, backend="triton")(x)
    assert got.data_ptr() != x.data_ptr() and torch.equal(got.cpu(), f(x).cpu())


def test_a_view_of_an_input_keeps_the_strides_of_its_size_one_dims(fresh_jit):
    # seed 523: `t = x.squeeze(2)` (no dim to squeeze) handed back as x.view(x.shape) had other strides on its
    # size-1 dims than x, and `t.div_(x)` then raised eager's partial-overlap error
    def f(x):
        t = x.squeeze(2)
        if x.sum() > 100:
            pass
        t.div_(x)
        return x

    x = on_device(torch.randn(1, 2, 1).transpose(-1, -2))
    y = x.clone().as_strided(x.shape, x.stride())
    y.copy_(x)
    torch.testing.assert_close(jit.compile(f, backend="triton")(x).cpu(), f(y).cpu())


def test_float_floor_division_is_torchs_at_infinities_zeros_and_near_integers(fresh_jit):
    # seed 1325: `x // 0` then `// 2.0`: floor(a / b) gave -inf where torch's fmod-based rule gives nan
    vals = torch.tensor([0.0, -0.0, 1.0, -1.0, 2.5, -7.0, 1e30, -1e30, float("inf"), float("-inf"), float("nan"),
                         0.3, -0.3, 5.9999999])
    a, b = on_device(vals.repeat_interleave(len(vals))), on_device(vals.repeat(len(vals)))
    for dtype in (torch.float32, torch.float64):
        got, want = jit.compile(lambda x, y: x // y, backend="triton")(a.to(dtype), b.to(dtype)).cpu(), \
            (a.to(dtype) // b.to(dtype)).cpu()
        same = (got == want) | (got.isnan() & want.isnan())
        assert bool(same.all()) and torch.equal(torch.signbit(got[~want.isnan()]), torch.signbit(want[~want.isnan()]))


def test_atan2_of_infinities_and_signed_zeros(fresh_jit):
    # seed 2269: atan2(inf, inf) was nan (the CPU interpreter's own atan2; on CUDA it is libdevice's)
    vals = torch.tensor([0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf")])
    a, b = on_device(vals.repeat_interleave(len(vals))), on_device(vals.repeat(len(vals)))
    got = jit.compile(lambda y, x: torch.atan2(y, x) * 1, backend="triton")(a, b)
    torch.testing.assert_close(got.cpu(), torch.atan2(a, b).cpu())


def test_half_values_are_rounded_before_an_op_that_jumps(fresh_jit):
    # seed 2088: `floor(x * x)` of bfloat16 floored the float32 product (1.99 -> 1) where eager floors the
    # product rounded to bfloat16 (2.0); float16 here, which the CPU interpreter rounds as a GPU does
    x = on_device(torch.linspace(0.5, 40, 5000).to(torch.float16))
    f = lambda x: (torch.floor(x * x), (x * 1.7).to(torch.int32), torch.remainder(x * 1.3, 1.0), x * 0.1 > 1)  # noqa
    for a, b in zip(jit.compile(f, backend="triton")(x), f(x)):
        assert torch.equal(a.cpu(), b.cpu())


def test_reductions_of_an_empty_tensor_and_a_softmax_of_a_scalar(fresh_jit):
    # seeds 3603 (a reshape of a (0, 2) tensor read at a constant address: an unmasked load of nothing) and 2605
    # (the softmax matcher asked a 0-d tensor's last dim: modulo by zero)
    for f, x in ((lambda x: x.prod(dtype=torch.int64) * 2, torch.randn(0, 2)),
                 (lambda x: x.reshape(-1).sum() + 1, torch.randn(2, 0)),
                 (lambda x: torch.softmax(x, 0) * 2, torch.randn(()))):
        x = on_device(x)
        got, want = jit.compile(f, backend="triton")(x), f(x)
        assert jit.counters["compile_errors"] == 0 and torch.equal(got.cpu(), want.cpu())


def test_outputs_eager_returns_as_views_of_each_other(fresh_jit):
    # seeds 140 and 200 (F6): `t.reshape(n, -1)` returned beside t, and `t.expand_as(t)` twice: eager's are views
    # over t's memory (distinct tensors); the module returned t itself twice, or tensors of their own
    def f(x):
        t = x ^ x
        return [t.reshape(t.shape[0], -1), t, x]

    def g(x):
        t = torch.atan2(x, x)
        return [t.expand_as(t), x, t.expand_as(t)]

    for fn, x in ((f, torch.randint(-4, 5, (1, 1))), (g, torch.randn(()))):
        x = on_device(x)
        got = jit.compile(fn, backend="triton")(x)
        want = fn(x)
        for i in range(3):
            for j in range(i):
                assert (got[i] is got[j]) == (want[i] is want[j])
                assert (got[i].data_ptr() == got[j].data_ptr()) == (want[i].data_ptr() == want[j].data_ptr())



def test_the_module_cache_tells_a_graph_that_writes_its_input_from_the_same_text_without(fresh_jit):
    # seed 5391, after an earlier program of the slice: a write into an input made functional has the graph text
    # of the same values only returned; the inputs written (graph meta) were not in the module key, so the second
    # graph got the first one's module, which computed into its input: x came back overwritten
    from framejit.graph.input_writes import WRITTEN_INPUTS
    from framejit.inductor.triton import module_cache

    gm = torch.fx.symbolic_trace(lambda x: (x - x, x))
    x = torch.randn(4)
    plain = module_cache.key(gm, [x], x.device, False)
    gm.meta[WRITTEN_INPUTS] = (0,)
    assert module_cache.key(gm, [x], x.device, False) != plain

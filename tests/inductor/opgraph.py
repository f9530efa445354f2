"""Helpers for inductor tests: build single-op FX graphs from aten overloads and compare backends to eager."""
import torch
import torch.fx

from framejit.inductor import numpy_backend

TOL = {torch.float16: (2e-3, 1e-2), torch.bfloat16: (1.6e-2, 5e-2), torch.float32: (1e-5, 1e-5),
       torch.float64: (1e-10, 1e-10)}


class In:
    """Marks the i-th graph input inside an argument template."""
    def __init__(self, i):
        self.i = i


def graph_of(target, args, kwargs, n_inputs):
    g = torch.fx.Graph()
    phs = [g.placeholder(f"in{i}") for i in range(n_inputs)]
    fill = lambda a: phs[a.i] if isinstance(a, In) else a
    sub = lambda v: [sub(x) for x in v] if isinstance(v, (list, tuple)) else fill(v)
    node = g.call_function(target, tuple(sub(a) for a in args), {k: sub(v) for k, v in kwargs.items()})
    g.output(node)
    return torch.fx.GraphModule(torch.nn.Module(), g)


def assert_same(got, ref):
    if isinstance(ref, (tuple, list)):
        for a, b in zip(got, ref):
            assert_same(a, b)
        return
    assert got.dtype == ref.dtype, (got.dtype, ref.dtype)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if ref.dtype.is_floating_point:
        rtol, atol = TOL[ref.dtype]
        torch.testing.assert_close(got, ref, rtol=rtol, atol=atol, equal_nan=True)
    else:
        assert torch.equal(got, ref), (got, ref)


def check(target, inputs, args, kwargs=None):
    """Compile `target(*args)` (In(i) = inputs[i]) with the NumPy backend and compare to eager torch."""
    kwargs = kwargs or {}
    gm = graph_of(target, args, kwargs, len(inputs))
    ref = gm(*inputs)
    fn = numpy_backend(gm, list(inputs))
    assert_same(fn(*inputs), ref)
    return fn


def make(shape, dtype, layout="contiguous", low=-3, high=3, nonzero=False, gen=None):
    """A random tensor of `shape` with the requested memory layout: contiguous, transposed (non-contiguous
    2-d view), sliced (every other column of a wider tensor)."""
    gen = gen or torch.Generator().manual_seed(0)
    full = list(shape)
    if layout == "transposed":
        full = full[::-1]
    elif layout == "sliced":
        full[-1] = full[-1] * 2
    if dtype == torch.bool:
        t = torch.rand(full, generator=gen) > 0.5
    elif dtype.is_floating_point:
        t = (torch.rand(full, generator=gen, dtype=torch.float64) * (high - low) + low).to(dtype)
    else:
        t = torch.randint(low, high + 1, full, generator=gen).to(dtype)
    if nonzero and dtype != torch.bool:
        t = torch.where(t == 0, torch.ones((), dtype=dtype), t)
    if layout == "transposed":
        t = t.transpose(0, 1) if t.dim() >= 2 else t
    elif layout == "sliced":
        t = t[..., ::2]
    return t

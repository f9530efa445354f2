"""Helpers for the Triton backend tests: on a machine with a GPU the kernels run on CUDA; without one they run in
Triton's CPU interpreter (TRITON_INTERPRET=1, set here before anything imports triton). `import triton` is
deliberate at module level: CI installs it with the test extra, and a missing triton must fail the run loudly
rather than skip these tests."""
import os

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import triton  # noqa: E402,F401  (fails loudly where triton is missing)

from tests.inductor.opgraph import TOL, In, graph_of  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def on_device(t):
    """t copied to DEVICE with the same sizes, strides and storage offset (sliced views stay non-contiguous)."""
    if not isinstance(t, torch.Tensor) or t.device.type == DEVICE:
        return t
    n = t.untyped_storage().nbytes() // max(t.element_size(), 1)
    buf = torch.zeros(max(n, 1), dtype=t.dtype, device=DEVICE)
    d = buf.as_strided(t.shape, t.stride(), t.storage_offset())
    d.copy_(t)
    return d


def assert_same(got, ref, tol=None):
    if isinstance(ref, (tuple, list)):
        assert len(got) == len(ref)
        for a, b in zip(got, ref):
            assert_same(a, b, tol)
        return
    if not isinstance(ref, torch.Tensor):
        assert got == ref
        return
    assert got.dtype == ref.dtype, (got.dtype, ref.dtype)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    got, ref = got.cpu(), ref.cpu()
    if ref.dtype.is_floating_point:
        rtol, atol = tol or TOL[ref.dtype]
        torch.testing.assert_close(got, ref, rtol=rtol, atol=atol, equal_nan=True)
    else:
        assert torch.equal(got, ref), (got, ref)


def compile_gm(gm, inputs, expect_triton=True, **kw):
    from framejit.inductor.backends import triton_backend
    fn = triton_backend(gm, list(inputs), **kw)
    if expect_triton:
        assert fn is not gm and hasattr(fn, "source"), "the Triton backend ran the graph in torch"
    return fn


def check_graph(gm, inputs, expect_triton=True, tol=None, **kw):
    inputs = [on_device(x) for x in inputs]
    ref = gm(*inputs)
    fn = compile_gm(gm, inputs, expect_triton, **kw)
    assert_same(fn(*inputs), ref, tol)
    return fn


def check(target, inputs, args, kwargs=None, expect_triton=True, tol=None):
    """Compile `target(*args)` (In(i) = inputs[i]) with the Triton backend and compare to eager torch."""
    gm = graph_of(target, args, kwargs or {}, len(inputs))
    return check_graph(gm, inputs, expect_triton, tol)


def check_fn(fn, *inputs, expect_triton=True, tol=None, **kw):
    """Trace a Python function with torch.fx and check it (the graph optimizer normalizes it to core ops)."""
    gm = torch.fx.symbolic_trace(fn)
    return check_graph(gm, inputs, expect_triton, tol, **kw)


__all__ = ["In", "DEVICE", "check", "check_fn", "check_graph", "assert_same", "on_device"]

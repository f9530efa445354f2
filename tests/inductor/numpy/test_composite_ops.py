"""Composite ops (tests/inductor/composite_cases.py) through the NumPy backend: each equals eager (values, dtype,
shape) and runs as generated NumPy code, with no torch fallback; losses and reductions trained, their backward
compiled too; sizes that change between calls."""
import logging

import pytest
import torch
import torch.nn.functional as F

import jit
from framejit.inductor.backends import numpy_backend
from tests.inductor.composite_cases import cases, grad_cases, randn, targets
from tests.inductor.opgraph import TOL


def assert_same(got, ref):
    if isinstance(ref, (tuple, list)):
        assert len(got) == len(ref)
        for a, b in zip(got, ref):
            assert_same(a, b)
        return
    assert got.dtype == ref.dtype and got.shape == ref.shape, (got.dtype, ref.dtype, got.shape, ref.shape)
    if ref.dtype.is_floating_point:
        rtol, atol = TOL[ref.dtype]
        torch.testing.assert_close(got, ref, rtol=rtol, atol=atol, equal_nan=True)
    else:
        assert torch.equal(got, ref), (got, ref)


@pytest.mark.parametrize("fn,make", cases())
def test_composite_op(fn, make):
    inputs = make()
    gm = torch.fx.symbolic_trace(fn)
    compiled = numpy_backend(gm, list(inputs))
    assert compiled is not gm and "fallbacks[" not in compiled.source, "an op ran in torch"
    assert_same(compiled(*inputs), fn(*inputs))


@pytest.fixture
def numpy_sources(caplog):
    caplog.set_level(logging.INFO, logger="jit.output_code")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "jit.output_code"]


@pytest.mark.usefixtures("fresh_jit")
@pytest.mark.parametrize("fn,make", grad_cases())
def test_composite_op_gradients(fn, make, numpy_sources):
    """The forward and the backward graph both compiled to NumPy code without a torch fallback (so no
    nll_loss_backward, _log_softmax_backward_data, gather or scatter left in torch); loss and gradients as eager."""
    inputs = make()  # the first input is the one differentiated (eager refuses a gradient for a class weight)
    leaves = [x.clone().requires_grad_(i == 0) for i, x in enumerate(inputs)]
    refs = [x.clone().requires_grad_(i == 0) for i, x in enumerate(inputs)]
    compiled = jit.compile(fn, backend="numpy")
    loss, expected = compiled(*leaves), fn(*refs)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    for got, ref in zip(leaves, refs):
        if ref.grad is not None:
            torch.testing.assert_close(got.grad, ref.grad, rtol=1e-5, atol=1e-6)
    sources = numpy_sources()
    assert len(sources) == 2 and jit.counters["backward_graphs"] == 1, sources  # forward, then backward
    assert not any("fallbacks[" in s for s in sources), sources


@pytest.mark.usefixtures("fresh_jit")
def test_cross_entropy_dynamic_sizes(numpy_sources):
    """A second and third call at other batch sizes and class counts reuse the one module generated for symbolic
    sizes (the smoothing spread divides by the class count as a size, not as a number baked in)."""
    fn = lambda x, t, p: (F.cross_entropy(x, t, label_smoothing=0.1) + torch.logsumexp(x, 1).mean()  # noqa: E731
                          + F.cross_entropy(x, p, label_smoothing=0.2))
    compiled = jit.compile(fn, backend="numpy", dynamic=True)
    for n, c in ((5, 7), (9, 4), (3, 11)):
        x, t, p = randn(n, c), targets(n, c, ignored=[1]), torch.softmax(randn(n, c, seed=2), 1)
        torch.testing.assert_close(compiled(x, t, p), fn(x, t, p), rtol=1e-5, atol=1e-6)
    sources = numpy_sources()
    assert len(sources) == 1 and "fallbacks[" not in sources[0]
    assert jit.counters["frames_compiled"] == 1

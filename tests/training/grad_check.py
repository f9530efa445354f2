"""Run a function eagerly and compiled on identical leaves (same seed for random ops); compare outputs and every
gradient with eager's."""
import torch

import jit

TOL = dict(rtol=1e-5, atol=1e-5)


def leaves(tensors):
    """Fresh leaf copies (requires_grad as the originals)."""
    return [t.detach().clone().requires_grad_(t.requires_grad) if isinstance(t, torch.Tensor) else t
            for t in tensors]


def run_and_grads(fn, inputs, seed=0, **backward):
    torch.manual_seed(seed)
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    diff = [o for o in outs if isinstance(o, torch.Tensor) and o.requires_grad]
    total = sum((o.float() * (i + 1.5)).sum() for i, o in enumerate(diff))  # every output, weighted differently
    if diff:
        total.backward(**backward)
    return outs, [x.grad if isinstance(x, torch.Tensor) else None for x in inputs]


def assert_same(got, want, tol=TOL):
    for g, w in zip(got, want):
        if w is None or not isinstance(w, torch.Tensor):
            assert g is None or not isinstance(g, torch.Tensor), "a gradient eager does not have"
            continue
        assert g is not None, "a gradient eager has is missing"
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.requires_grad == w.requires_grad
        torch.testing.assert_close(g.detach(), w.detach(), **tol)


def check(fn, inputs, backend="inductor", tol=TOL, seed=0):
    """fn compiled with `backend` gives eager's outputs and gradients; returns the compiled function."""
    eager_in, jit_in = leaves(inputs), leaves(inputs)
    want_out, want_grads = run_and_grads(fn, eager_in, seed)
    compiled = jit.compile(fn, backend=backend)
    got_out, got_grads = run_and_grads(compiled, jit_in, seed)
    assert_same(got_out, want_out, tol)
    assert_same(got_grads, want_grads, tol)
    return compiled

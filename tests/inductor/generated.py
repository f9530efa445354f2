"""Helpers for tests asserting that an op runs in generated code in both backends (NumPy; Triton, in Triton's CPU
interpreter without a GPU), with eager's values: compile a traced function, compare, list the torch calls left."""
import torch

from tests.inductor.triton.support import assert_same, on_device  # noqa: F401 (sets TRITON_INTERPRET=1)

from framejit.graph.index_checks import CHECK_INDEX
from framejit.inductor.backends import numpy_backend, triton_backend
from framejit.inductor.ir import FallbackKernel, Kernel

BACKENDS = {"numpy": numpy_backend, "triton": triton_backend}
TOL = {torch.bfloat16: (2e-2, 5e-2), torch.float16: (2e-3, 1e-2)}


def compiled(backend: str, fn, inputs: list):
    """(fn traced and compiled by `backend`, the inputs on that backend's device)."""
    inputs = [on_device(t) for t in inputs] if backend == "triton" else list(inputs)
    out = BACKENDS[backend](torch.fx.symbolic_trace(fn), list(inputs))
    assert hasattr(out, "lowered"), f"the {backend} backend ran the graph as captured"
    return out, inputs


def in_torch(c) -> list:
    """The torch calls left in a compiled graph, but the index checks (graph/index_checks.py)."""
    return [k for k in c.lowered.kernels if isinstance(k, FallbackKernel) and k.target is not CHECK_INDEX]


def run(backend: str, fn, *inputs, tol=None):
    """Compile, compare with eager (values, dtype, shape), and assert nothing but index checks runs in torch."""
    c, inputs = compiled(backend, fn, inputs)
    ref = fn(*[t.clone() for t in inputs])
    if tol is None:
        dtype = next((t.dtype for t in inputs if t.dtype in TOL), None)
        tol = TOL.get(dtype)
    assert_same(c(*inputs), ref, tol)
    assert not in_torch(c), [k.source for k in in_torch(c)]
    return c


def kernels_with(c, *words) -> list:
    """The generated kernels whose source nodes mention every one of `words` (ops fused into one kernel)."""
    return [k for k in c.lowered.kernels if isinstance(k, Kernel) and
            all(any(w in s for s in k.source) for w in words)]

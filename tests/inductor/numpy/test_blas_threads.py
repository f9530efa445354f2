"""inductor/runtime/blas_threads.py: NumPy's OpenBLAS held to FRAMEJIT_NUMPY_BLAS_THREADS threads while generated
NumPy code runs (its workers and torch's spinning OpenMP pool fought over the cores: a CPU training step 2.2x
slower), the user's own count back after every call."""
import torch
import torch.fx as fx

from framejit.inductor.backends import numpy_backend
from framejit.inductor.runtime import blas_threads


class FakeBlas:
    def __init__(self, threads):
        self.threads, self.log = threads, []

    def set(self, n):
        self.log.append(n)
        self.threads = n

    def get(self):
        return self.threads


def _graph():
    def f(a, b):
        return torch.relu(a @ b) + 1
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    return numpy_backend(fx.symbolic_trace(f), [a, b]), (a, b), f


def test_a_call_runs_at_one_blas_thread_and_gives_the_count_back(monkeypatch):
    blas = FakeBlas(4)
    monkeypatch.setattr(blas_threads, "_openblas", lambda: (blas.set, blas.get))
    compiled, args, f = _graph()
    blas.log.clear()
    torch.testing.assert_close(compiled(*args), f(*args))
    assert blas.log == [1, 4] and blas.threads == 4  # held at 1 for the call, the user's 4 back after


def test_the_switch_leaves_blas_alone(monkeypatch):
    blas = FakeBlas(4)
    monkeypatch.setattr(blas_threads, "_openblas", lambda: (blas.set, blas.get))
    monkeypatch.setenv("FRAMEJIT_NUMPY_BLAS_THREADS", "0")
    compiled, args, f = _graph()
    blas.log.clear()
    torch.testing.assert_close(compiled(*args), f(*args))
    assert blas.log == []


def test_the_real_library_is_found_and_restored():
    found = blas_threads._openblas()
    if not found:  # NumPy built on another BLAS (MKL, Accelerate): nothing to hold, and nothing is done
        with blas_threads.held() as h:
            assert h.restore is None
        return
    setter, getter = found
    before = getter()
    setter(2)
    try:
        with blas_threads.held():
            assert getter() == 1
        assert getter() == 2
    finally:
        setter(before)

"""NumPy's BLAS held to a few threads while a generated NumPy module runs beside torch's own thread pool.

On a CPU, torch's OpenMP workers keep spinning for a while after each torch op, waiting for the next; NumPy's
OpenBLAS starts its own workers for every product. Where a compiled graph mixes the two (a training step: the
NumPy forward and backward between torch's optimizer and autograd), the two pools fight over the same cores: on
this project's 2-core machine the GPT training step took 86 ms with OpenBLAS at 2 threads and 24 ms at 1 (eager:
31-39 ms), every torch op of the optimizer slowed by the spinning BLAS workers and the reverse. So during a
module's `run`, OpenBLAS gets FRAMEJIT_NUMPY_BLAS_THREADS threads (default 1), and its own count back after;
the user's NumPy code outside our calls keeps the user's setting.

OpenBLAS is found among the process's loaded libraries (NumPy's wheels ship `scipy_openblas64_`, a system NumPy
links `openblas`); where there is none (MKL, Accelerate, no /proc), this does nothing."""
from __future__ import annotations

import ctypes
import threading

from ..config import config

_SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
            ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
            ("openblas_set_num_threads", "openblas_get_num_threads"))
_found = None
_lock = threading.Lock()


def _openblas():
    """(set, get) of the loaded OpenBLAS, or () where there is none."""
    global _found
    if _found is None:
        _found = ()
        try:
            with open("/proc/self/maps") as f:
                paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
        except OSError:
            paths = []
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for set_name, get_name in _SYMBOLS:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                    setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                    _found = (setter, getter)
                    return _found
    return _found


class held:
    """`with held():` OpenBLAS at the configured thread count inside, its own count restored after."""
    __slots__ = ("restore",)

    def __enter__(self):
        self.restore = None
        want = config.numpy_blas_threads
        blas = _openblas() if want > 0 else ()
        if blas:
            with _lock:
                have = blas[1]()
                if have > want:
                    blas[0](want)
                    self.restore = have
        return self

    def __exit__(self, *exc):
        if self.restore is not None:
            with _lock:
                _openblas()[0](self.restore)
        return False

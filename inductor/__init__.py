"""Backends that turn an FX graph into fast code: lowering to a loop-level IR, fusion, Triton kernels for CUDA
tensors and NumPy modules for CPU tensors, with a compiled-code cache in memory and on disk.

Uses `graph`; never imports `jit` (jit reaches these backends through its backend registry)."""

from .backends import export_numpy as export_numpy
from .backends import inductor_backend as inductor_backend
from .backends import numpy_backend as numpy_backend
from .backends import reset as reset

"""The Triton backend: a lowered graph as one module of @triton.jit kernels and a host function `call` (CUDA
tensors; CPU tensors under TRITON_INTERPRET=1). backend.py lists the stages in order; the modules here are
those stages: graph rewrites, fusion, planning, kernel writing, host code."""

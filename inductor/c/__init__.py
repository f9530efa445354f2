"""C kernels for the NumPy backend: codegen.py writes a fused kernel of the loop-level IR as a C loop nest;
runtime.h and mathlib.h are pasted at the top of every module (buffer checks, torch's float rules, vectorizable
math). runtime/c_modules.py compiles a graph's kernels into one extension module (cached on disk) and loads it."""

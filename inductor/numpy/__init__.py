"""The NumPy backend: a lowered graph as one readable NumPy module (CPU tensors), in the order a graph passes:
backend.py (the steps), dtypes.py (how torch dtypes are held and computed in NumPy), codegen.py (the module's
source; row_blocks.py: kernels run in blocks of rows on threads), cpu_choice.py (the default backend keeps the
faster of the NumPy module and the captured graph)."""

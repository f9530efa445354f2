"""Everything generated code imports when it runs (generated modules import nothing else of inductor/): Triton
helpers and launchers, the fused matmul's launcher, our C launcher (`_launch`), CUDA graphs, the NumPy helpers
and wrappers. From the rest of inductor/ it imports only ir.py (what the wrappers read of a lowered graph),
cache.py (the cache directory) and config.py (the switches), never a planner or a code writer."""

"""FX graph helpers shared by the capture (`jit`) and the backends (`inductor`): shape propagation with meta
tensors and the optimizer passes.

Imports neither `jit` nor `inductor`."""

"""torch.optim's step counter, read as eager reads it.

Adam, AdamW, Adagrad, RMSprop, NAdam, RAdam... keep each parameter's step count in a 0-dim float32 tensor and read
it with `_get_value(step_t)`: `.item()` in eager, whose Python float then makes the bias corrections and the step
size in double precision. Under a compiler (`torch.compiler.is_compiling()`, True in our traces) `_get_value` hands
back the float32 tensor itself so the step stays in the graph: the corrections are then computed in float32, and
`1 - 0.999 ** step` loses five digits to cancellation (parameters drift ~1e-5 relative from eager's in a few
steps: torch.compile's compiled optimizers do). Here the counter is read as a float64 0-dim tensor: in the graph
like the compiler's, with the arithmetic of eager's Python floats, so the updates are eager's. Beside parameters
on a GPU the counters stay on the CPU (capturable=False, the default): the Triton backend computes that scalar
arithmetic in Python on the host and hands the results to its kernels (inductor/triton/host_scalars.py)."""
from __future__ import annotations

import torch
from torch.optim.optimizer import _get_value as _torch_get_value  # (torch.optim deletes its submodule names)

from jit.semantics.builtins_impl import builtin
from jit.variables import Const
from jit.variables.tensor import TensorVar


@builtin(_torch_get_value)
def _get_value(tx, args, kwargs):
    (x,) = args
    if isinstance(x, TensorVar) and x.example.dim() == 0 and x.example.dtype.is_floating_point:
        return tx.output.call("call_method", "to", (x, Const(torch.float64)), {})
    return x  # not a tensor: as _get_value returns it (a tensor of another kind: what a compiler is handed)

"""A Python float that changes between calls, compiled as a graph input (see jit/dynamic.py note_float_changes).

A float read from outside is normally a constant of the compile, guarded by value: a learning rate that a
scheduler moves every step would recompile every step. Once a recompile shows such a float changed, the frame is
traced with it as a graph input: a 0-dim float64 CPU tensor made from the float at each call (`tensor`), with
`hint` its value in this trace. To Python code it is still a float (`isinstance(lr, float)`, torch.optim's
`isinstance(lr, Tensor)` checks take the float paths); arithmetic with numbers and other such floats is recorded
in the graph in float64 (exactly Python's float arithmetic); as the scalar operand of a tensor's add / sub / mul /
div it is the tensor operand cast as torch casts a Python scalar. Anything else that needs the number (a
comparison, `int()`, another torch op's argument) gets it through const(), which guards its value: that use
specializes as before."""
from __future__ import annotations

from jit.variables.base import Var


class FloatVar(Var):
    def __init__(self, tensor, hint: float, roots: tuple, output):
        self.tensor = tensor  # TensorVar: 0-dim float64, on the CPU
        self.hint = hint
        self.roots = roots    # the graph-input floats it is computed from: ((source, value), ...)
        self.output = output
        self.operands = {}    # dtype -> its tensor operand made for ops on tensors (jit/compiled_floats.py)

    def python_type(self):
        return float

    def is_const(self):
        return True  # code that needs the number gets it, pinned by guards (see const)

    def const(self):
        from jit.compiled_floats import specialize
        specialize(self.output, self.roots)
        return self.hint

    def describe(self):
        return f"float input ({self.hint!r})"

    def __repr__(self):
        return f"FloatVar({self.tensor.node.name}, hint={self.hint!r})"

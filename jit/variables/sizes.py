"""A Python int that depends on dynamic tensor sizes (see jit/dynamic.py).

It is computed in the graph (`x.size(0)`, then `operator.mul(...)` for `B * T`), so the compiled code uses the
size of each call. `hint` is its value for the example inputs, `perturbed` its value in the second shape run,
`expr` the same value as an expression over input sizes when there is one (guards compare those). Code that needs
the actual number (`range(T)`, indexing a list) gets it through const(), which pins the value with a guard."""
from __future__ import annotations

import torch

from jit.variables.base import Var


class SizeVar(Var):
    def __init__(self, proxy: torch.fx.Proxy, hint: int, perturbed: int, expr, output):
        self.proxy = proxy
        self.hint = hint
        self.perturbed = perturbed
        self.expr = expr      # guards.size_expr.SizeExpr or None
        self.output = output  # the OutputGraph: where specializing guards go

    @property
    def node(self) -> torch.fx.Node:
        return self.proxy.node

    def python_type(self):
        return int

    def is_const(self):
        # Code that asks for a constant gets one (specialized with a guard) rather than a graph break.
        return True

    def const(self):
        self.output.specialize(self)
        return self.hint

    def describe(self):
        text = self.expr.text() if self.expr is not None else self.node.name
        return f"dynamic size {text} (now {self.hint})"

    def __repr__(self):
        return f"SizeVar({self.node.name}, hint={self.hint})"


class SizeSliceVar(Var):
    """A slice with a dynamic size as a bound (x[:, :T]): the graph slices by each call's size; Python code that
    needs the slice itself gets it with the sizes pinned."""

    def __init__(self, parts: list[Var]):
        self.parts = parts

    def python_type(self):
        return slice

    def is_const(self):
        return True

    def const(self):
        return slice(*(p.const() for p in self.parts))

    def describe(self):
        return "a slice with a dynamic bound"

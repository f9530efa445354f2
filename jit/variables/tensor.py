"""Tensors: an FX proxy (where the value comes from in the graph) plus a meta tensor (its shape, dtype, strides
and requires_grad, computed without data) and its real device (meta tensors do not keep one)."""
from __future__ import annotations

import inspect
import types

import torch

from jit.variables.base import Var


class TensorVar(Var):
    def __init__(self, proxy: torch.fx.Proxy, example: torch.Tensor, device: torch.device, source=None,
                 tensor_type: type = torch.Tensor, perturbed: torch.Tensor | None = None):
        self.proxy = proxy
        self.example = example
        # the same tensor in the second shape run (jit/dynamic.py); the example itself when no size is dynamic
        self.perturbed = example if perturbed is None else perturbed
        self.device = device
        self.source = source
        self.tensor_type = tensor_type

    def python_type(self):
        return self.tensor_type

    @property
    def node(self) -> torch.fx.Node:
        return self.proxy.node

    def describe(self):
        return f"tensor {self.node.name} {tuple(self.example.shape)} {self.example.dtype}"

    def __repr__(self):
        return f"TensorVar({self.node.name}, {tuple(self.example.shape)}, {self.example.dtype}, {self.device})"


class ItemCompareVar(Var):
    """`tensor.item() <op> number`: a Python bool, computed by the break code from a graph output."""

    def __init__(self, tensor: TensorVar, op, number):  # op: a bytecode.Compare
        self.tensor, self.op, self.number = tensor, op, number

    def python_type(self):
        return bool

    def describe(self):
        return f"{self.tensor.describe()}.item() {self.op.name} {self.number!r}"


class TensorMethodVar(Var):
    """`tensor.name` looked up for a call (x.view, x.sum, ...)."""

    def __init__(self, tensor: TensorVar, name: str):
        self.tensor = tensor
        self.name = name

    def python_type(self):
        # Tensor methods written in Python (torch/_tensor.py) bind as methods, the C ones as builtin methods
        return types.MethodType if inspect.isfunction(getattr(torch.Tensor, self.name, None)) \
            else types.BuiltinMethodType

    def describe(self):
        return f"Tensor.{self.name}"

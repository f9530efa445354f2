"""`MyFunction.apply(x)` of a torch.autograd.Function subclass (transformers' BloomGelu, many repositories'
custom kernels). Where no input requires grad, or grad mode is off, autograd records nothing: the call is its
`forward`, traced as any Python code, with a context object that keeps what forward stores on it (saved tensors,
flags), which nothing reads afterwards. Where a gradient would flow, the Function's own backward must run, which
a captured graph would replace by the derivative of its forward ops: the call breaks the graph and runs eagerly."""
from __future__ import annotations

import inspect

import torch
from torch.autograd.function import _SingleLevelFunction

from jit.break_reasons import unsupported
from jit.variables import ClassVar, NewObjectVar, UserFunctionVar, Var
from jit.variables.tensor import TensorVar

APPLY = torch.autograd.Function.apply.__func__


class TracedContext:
    """What forward's `ctx` is in an inference trace: the calls forward makes on a FunctionCtx, keeping their
    arguments (nothing runs a backward)."""

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def save_for_forward(self, *tensors):
        self.saved_for_forward = tensors

    def mark_dirty(self, *tensors):
        self.dirty_tensors = tensors

    def mark_non_differentiable(self, *tensors):
        self.non_differentiable = tensors

    def set_materialize_grads(self, value):
        self.materialize_grads = value


def is_apply(fn: Var, self_var: Var) -> bool:
    """`fn` bound to `self_var` is Function.apply of a subclass."""
    return isinstance(fn, UserFunctionVar) and fn.fn is APPLY and isinstance(self_var, ClassVar) and \
        issubclass(self_var.cls, torch.autograd.Function)


def call_apply(tx, cls: type, args: list[Var], kwargs: dict[str, Var]) -> Var:
    from jit.semantics.calls import construct, inline_function
    tensors = [a for a in list(args) + list(kwargs.values()) if isinstance(a, TensorVar)]
    if torch.is_grad_enabled() and any(t.example.requires_grad for t in tensors):
        unsupported("autograd", f"{cls.__name__}.apply with inputs that require grad (its own backward runs eagerly)")
    forward = inspect.getattr_static(cls, "forward")
    if isinstance(forward, staticmethod):
        forward = forward.__func__
    if not inspect.isfunction(forward):
        unsupported("unsupported_call", f"{cls.__name__}.forward is not a Python function")
    if inspect.getattr_static(cls, "setup_context", None) is not _SingleLevelFunction.__dict__["setup_context"]:
        return inline_function(tx, UserFunctionVar(forward, None), list(args), kwargs)  # forward(*args): no ctx
    ctx = construct(tx, TracedContext, [], {})
    assert isinstance(ctx, NewObjectVar)
    return inline_function(tx, UserFunctionVar(forward, None), [ctx] + list(args), kwargs)

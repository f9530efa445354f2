"""`with` blocks. Grad-mode managers change the traced grad mode and record the switch in the graph, so the
captured code runs each region in the same mode as eager; torch.autocast changes the traced autocast state
(jit/autocast.py); BEFORE_WITH pushes the manager's __exit__, which the normal path calls with (None, None, None).
Other managers are a graph break at the `with` (see enter)."""
from __future__ import annotations

import contextlib
import types

import torch

from jit import autocast
from jit.break_reasons import unsupported
from jit.variables import Const, GradModeVar, NewObjectVar, Var

GRAD_MODE_CLASSES = {torch.no_grad: False, torch.enable_grad: True}


class ExitVar(Var):
    """The bound __exit__ of a manager entered with BEFORE_WITH."""

    def __init__(self, manager: GradModeVar):
        self.manager = manager

    def python_type(self):
        return types.MethodType  # the grad-mode managers' __exit__ are Python methods


def set_grad(tx, enabled: bool) -> None:
    if torch.is_grad_enabled() != enabled:
        tx.output.call("call_function", torch._C._set_grad_enabled, (Const(enabled),), {})
        torch._C._set_grad_enabled(enabled)


# contextlib.nullcontext's __exit__ does nothing: one real bound method stands for every such manager's, a
# constant the generated code can load where the stack holds it (a break inside the block)
NULL_EXIT = contextlib.nullcontext().__exit__


def enter(tx, manager: Var) -> tuple[Var, Var]:
    if isinstance(manager, NewObjectVar) and manager.cls is contextlib.nullcontext:
        return Const(NULL_EXIT), manager.attrs.get("enter_result", Const(None))
    if isinstance(manager, autocast.AutocastVar):  # traced: the calls inside get autocast's casts as nodes
        tx.output.autocast.enter(manager.device, manager.enabled, manager.dtype)
        return autocast.AutocastExitVar(), manager
    if not isinstance(manager, GradModeVar):
        # Any other manager (a user class, a contextlib.contextmanager, torch.autocast): the frame breaks at
        # BEFORE_WITH, which runs for real (jit/codegen.py), and the body resumes with the real __exit__ on the
        # stack, where the copied exception table expects it.
        unsupported("context_manager", f"`with` over {manager.describe()}")
    if manager.prior is None:
        manager.prior = torch.is_grad_enabled()
    set_grad(tx, manager.enabled)
    return ExitVar(manager), Const(None)


def exit_(tx, exit_var: ExitVar) -> Var:
    set_grad(tx, exit_var.manager.prior)
    return Const(None)

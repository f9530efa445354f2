"""`with` blocks. Grad-mode managers change the traced grad mode and record the switch in the graph, so the
captured code runs each region in the same mode as eager; torch.autocast changes the traced autocast state
(jit/autocast.py); BEFORE_WITH pushes the manager's __exit__, which the normal path calls with (None, None, None).
A @contextlib.contextmanager manager is inlined: contextlib's own __enter__ runs its generator up to the yield,
its __exit__ the rest (GeneratorExitVar). Other managers are a graph break at the `with` (see enter)."""
from __future__ import annotations

import contextlib
import inspect
import types

import torch

from jit import autocast
from jit.break_reasons import unsupported
from jit.variables import Const, GradModeVar, NewObjectVar, UserFunctionVar, Var

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


def profiler_range(args, kwargs) -> Var:
    """`with torch.autograd.profiler.record_function(name):` (Optimizer.step's range, a model's own ranges): a
    label for the profiler's timeline, no effect on any value. In the graph it is a `with` that does nothing (the
    range is gone from a profile of the compiled code, whose kernels no longer match eager's ops anyway)."""
    manager = NewObjectVar(contextlib.nullcontext)
    manager.attrs["enter_result"] = Const(None)
    return manager


class InferenceModeVar(Var):
    """torch.inference_mode(mode) made in the traced code, not yet entered."""

    def __init__(self, mode: bool):
        self.mode = mode

    def python_type(self):
        return torch.inference_mode

    def describe(self):
        return f"torch.inference_mode({self.mode})"


class InferenceExitVar(Var):
    """The bound __exit__ of a traced inference_mode block: the graph's enter node, and the real mode object the
    trace entered (so meta results are inference tensors, and eager's errors about them show at capture)."""

    def __init__(self, node_proxy, context):
        self.node_proxy, self.context = node_proxy, context

    def python_type(self):
        return types.MethodType


_ENTER_INFERENCE = torch.autograd.grad_mode._enter_inference_mode
_EXIT_INFERENCE = torch.autograd.grad_mode._exit_inference_mode
INFERENCE_SWITCHES = (_ENTER_INFERENCE, _EXIT_INFERENCE)


def enter_inference_mode(tx, manager: InferenceModeVar) -> InferenceExitVar:
    """A node entering torch's InferenceMode in the graph (the graph then runs in torch: inductor/backends.py),
    and the same mode entered for real while tracing."""
    proxy = tx.output.tracer.create_proxy("call_function", _ENTER_INFERENCE, (manager.mode,), {})
    context = torch._C._InferenceMode(manager.mode)
    context.__enter__()
    tx.output.open_contexts.append(context)
    return InferenceExitVar(proxy, context)


def exit_inference_mode(tx, exit_var: InferenceExitVar) -> Var:
    tx.output.tracer.create_proxy("call_function", _EXIT_INFERENCE, (exit_var.node_proxy,), {})
    exit_var.context.__exit__(None, None, None)
    tx.output.open_contexts.remove(exit_var.context)
    return Const(None)


def enter(tx, manager: Var) -> tuple[Var, Var]:
    if isinstance(manager, NewObjectVar) and manager.cls is contextlib.nullcontext:
        return Const(NULL_EXIT), manager.attrs.get("enter_result", Const(None))
    if isinstance(manager, InferenceModeVar):
        return enter_inference_mode(tx, manager), Const(None)
    if isinstance(manager, autocast.AutocastVar):  # traced: the calls inside get autocast's casts as nodes
        tx.output.autocast.enter(manager.device, manager.enabled, manager.dtype)
        return autocast.AutocastExitVar(), manager
    if isinstance(manager, NewObjectVar) and is_generator_manager(manager.cls):
        return _enter_generator_manager(tx, manager)
    if not isinstance(manager, GradModeVar):
        # Any other manager (a user class, a torch.autocast block entered for real): the frame breaks at
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


# ---- @contextlib.contextmanager ------------------------------------------------------------------------------

_GENERATOR_MANAGER = contextlib._GeneratorContextManager


def is_generator_manager(cls: type) -> bool:
    """A manager made by a @contextmanager function: contextlib's own __enter__ and __exit__, which only step its
    generator (subclasses overriding either are other managers)."""
    return inspect.getattr_static(cls, "__enter__", None) is _GENERATOR_MANAGER.__enter__ and \
        inspect.getattr_static(cls, "__exit__", None) is _GENERATOR_MANAGER.__exit__


class GeneratorExitVar(Var):
    """The bound __exit__ of a @contextmanager manager entered in the trace. `at`: the index of its BEFORE_WITH in
    the top-level frame (None in inlined code), while open listed in OutputGraph.open_generator_withs."""

    def __init__(self, manager: NewObjectVar, at: int | None):
        self.manager = manager
        self.at = at

    def python_type(self):
        return types.MethodType

    def describe(self):
        return f"__exit__ of {self.manager.describe()}"


def _enter_generator_manager(tx, manager: NewObjectVar) -> tuple[Var, Var]:
    """contextlib's __enter__, inlined: the generator runs to its first yield, whose value is the `as` target.

    Traced only where the block runs whole in the trace. A break (or an exception, or a break in the generator's
    code after the yield) while a `with` of the top-level frame is open would leave its generator suspended
    part-way at the break, which the generated code cannot rebuild: the frame compiler then traces the frame again
    with that `with` in OutputGraph.opaque_generator_withs, and it breaks here, entering the real manager
    (jit/frame_compiler.py). A `with` in inlined code needs none of this: a break inside it is a break at the
    top-level call, which then runs for real (and the callee's own frame is compiled the same way)."""
    from jit.semantics.calls import inline_function
    at = tx.ip - 1 if tx.parent is None else None
    inside = tx.output.opaque_generator_withs.get(at) if at is not None else None
    if inside is not None:
        unsupported("context_manager", f"`with` over {manager.describe()} from a @contextmanager function, entered "
                                       f"for real: its block does not run whole in the graph ({inside})")
    enter_fn = inspect.getattr_static(manager.cls, "__enter__")
    entered = inline_function(tx, UserFunctionVar(enter_fn, None), [manager], {})
    if at is not None:
        tx.output.open_generator_withs.append(at)
    return GeneratorExitVar(manager, at), entered


def exit_generator_manager(tx, exit_var: GeneratorExitVar, args: list[Var]) -> Var:
    """contextlib's __exit__, inlined (the block ended normally: args are (None, None, None)): the generator runs
    from its yield to its end, as eager (a second yield raises "generator didn't stop" in contextlib's code: a
    break, and then the real manager)."""
    from jit.semantics.calls import inline_function
    exit_fn = inspect.getattr_static(exit_var.manager.cls, "__exit__")
    result = inline_function(tx, UserFunctionVar(exit_fn, None), [exit_var.manager] + list(args), {})
    if exit_var.at is not None:
        tx.output.open_generator_withs.remove(exit_var.at)
    return result

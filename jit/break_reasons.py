"""Why the executor stops: a small catalogue of kinds, each with an explanation and a hint for the user, raised
with the user's file:line. Kept as data so explain() and logs read the same everywhere."""
from __future__ import annotations

import os
from dataclasses import dataclass
from types import CodeType


@dataclass(frozen=True)
class BreakKind:
    name: str
    explanation: str
    hint: str


KINDS = {k.name: k for k in [
    BreakKind("data_dependent_branch", "a Python branch depends on a tensor's values",
              "use torch.where / masking, or move the branch outside the compiled function"),
    BreakKind("tensor_to_python", "a tensor's value is turned into a Python value (.item(), .tolist(), bool())",
              "keep the value as a tensor, or compute it before calling the compiled function"),
    BreakKind("unsupported_opcode", "the executor does not model this bytecode instruction",
              "rewrite the construct, or wrap it in a function decorated with jit.disable"),
    BreakKind("unsupported_call", "a call the executor cannot trace (C function, library, or unknown object)",
              "wrap the call in a function decorated with jit.disable"),
    BreakKind("side_effect", "a change to an object that exists outside the function",
              "return the new value instead of mutating shared state, or wrap it in jit.disable"),
    BreakKind("unsupported_value", "a value of a type the executor cannot represent",
              "pass tensors, numbers, strings, containers of those, or nn.Modules"),
    BreakKind("operator_error", "a torch operation that eager torch rejects (shapes or dtypes do not fit): it runs "
              "eagerly, so it raises where and what eager raises",
              "run the function eagerly to see the error with its full context"),
    BreakKind("value_checked_in_try", "an op whose errors depend on tensor values (an index out of range, a mask "
              "that selects too few elements, an integer division by zero) inside a try block: it runs eagerly, "
              "so an exception it raises reaches the handler",
              "move the op out of the try block, or check the values explicitly"),
    BreakKind("value_checked_after_effects", "an op whose errors depend on tensor values (an index out of range, an "
              "integer division by zero) after changes to objects from outside that this graph could not apply "
              "exactly if the op raised (more changes follow it, or what they store is computed in the graph): the "
              "changes are applied and the op runs eagerly, so an error leaves the objects as eager leaves them",
              "make the changes to outside lists, dicts and attributes after the op, or once at the end"),
    BreakKind("autograd", "a backward pass or autograd hook (.backward(), torch.autograd.grad, register_hook) runs "
              "torch's autograd engine: it runs eagerly, between the compiled graphs before and after it",
              "nothing to fix: the forward before it is compiled; to compile the step whole, call backward outside "
              "the compiled function"),
    BreakKind("exception", "the function raises or handles an exception", "exceptions run eagerly"),
    BreakKind("too_complex", "the function is too long or too deeply nested to trace",
              "split it, or mark the inner part with jit.disable"),
    BreakKind("context_manager", "a `with` over a context manager other than torch's grad modes, torch.autocast, "
              "nullcontext, or a @contextlib.contextmanager function whose block runs whole in the graph: the graph "
              "breaks at the `with` so that __enter__ runs for real, and __exit__ runs for real when the block is left",
              "the block's body is still compiled (in a resume function); for grad mode use torch.no_grad() / "
              "torch.enable_grad(), which are captured without a break; a @contextmanager function is captured "
              "when nothing inside its block breaks the graph or raises"),
    BreakKind("autocast", "an op under torch.autocast whose autocast kernel does more than cast its inputs, or an "
              "autocast state the executor does not model (a device type, arguments computed from tensors)",
              "run the op outside the autocast block, or give it inputs of the dtype you want"),
    BreakKind("generator", "a generator or coroutine is created or consumed", "materialize it into a list first"),
]}


@dataclass(frozen=True)
class StackFrame:
    """One frame of the traced call chain where the executor stopped: the code and the line it was at."""
    code: CodeType
    line: int

    @property
    def location(self) -> str:
        return f"{self.code.co_filename}:{self.line}"

    @property
    def users(self) -> bool:
        """Code of the user's own (not a library the skip rules leave alone, though inlined from user code)."""
        from jit.skip_rules import skip_reason
        return skip_reason(self.code) is None

    def __str__(self) -> str:
        return f'File "{self.code.co_filename}", line {self.line}, in {self.code.co_qualname}'


class Unsupported(Exception):
    """The executor cannot capture something; carries the kind, details and the user's file:line.

    `stack`: the traced call chain, outermost first (the compiled frame, then each inlined call); `location` is
    the innermost frame of the user's own code in it, so a break inside torch's code inlined from a user's
    module points at the user's line that called it."""

    def __init__(self, kind: str, detail: str, location: str = ""):
        self.kind = KINDS[kind]
        self.detail = detail
        self.location = location
        self.stack: list[StackFrame] = []
        self.break_at: tuple[int, int] | None = None  # (top-level instruction index, visit), set by the translator
        super().__init__(self.message())

    def set_stack(self, frames: list[StackFrame]) -> None:
        """Where the executor stopped (outermost first); the location becomes the innermost user frame's."""
        self.stack = frames
        if not self.location and frames:
            self.location = next((f for f in reversed(frames) if f.users), frames[-1]).location
        self.args = (self.message(),)

    def message(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.detail} ({self.kind.explanation})"

    def report(self) -> str:
        """For the logs: what, why, the hint, and the user's stack (most recent call last), as a traceback shows
        it; library frames beyond the user's innermost one are summed up in one line."""
        lines = [f"{self.detail} ({self.kind.explanation})", f"  hint: {self.kind.hint}"]
        users = [i for i, f in enumerate(self.stack) if f.users]
        if users:
            lines.append("  user stack (most recent call last):")
            lines += [f"    {f}" for f in self.stack[:users[-1] + 1] if f.users]
            inner = self.stack[users[-1] + 1:]
            if inner:
                lines.append(f"    (then in library code: {_short(inner[-1])}, {self.stack[users[-1]].code.co_qualname} "
                             f"calling {inner[0].code.co_qualname})")
        elif self.location:
            lines.append(f"  at {self.location}")
        return "\n".join(lines)


def _short(frame: StackFrame) -> str:
    parts = frame.code.co_filename.split(os.sep)
    return f"{os.sep.join(parts[-2:])}:{frame.line}"


class PythonError(Unsupported):
    """The traced code raises a Python exception here, on values fixed for this compile (a key missing from a dict
    whose keys are guarded, an index past a list whose length is, a `raise` of an exception made in the trace).
    `value` is the exception (jit.variables.ExceptionVar); the translator follows it to the handler of the frame,
    or of a frame it was inlined into, that catches it (jit/translator.py). `origin`: the top-level instruction
    (index, visit) that stands for this raise at a break (set by the translator of each frame it passes)."""

    def __init__(self, value):
        self.value = value
        self.origin: tuple[int, int] | None = None
        value.raised = True
        super().__init__("exception", value.summary())

    @classmethod
    def of(cls, exc_type: type, *args) -> PythonError:
        """The error `exc_type(*args)` over constants: what an operation on known values raises."""
        from jit.variables.exceptions import ExceptionVar
        return cls(ExceptionVar.of(exc_type, *args))

    @property
    def exc_type(self) -> type:
        return self.value.cls


class AttributeMissing(PythonError):
    """An attribute lookup in the traced code raises AttributeError: hasattr and getattr with a default answer
    from it (guarding that the attribute stays missing) instead of breaking the graph; so does an `except
    AttributeError:` around the lookup (jit/translator.py guards the absence the same way). Eager's exception
    also carries the object and name looked up: only its message is modelled (`exact=False`)."""

    def __init__(self, detail: str):
        from jit.variables.exceptions import ExceptionVar
        super().__init__(ExceptionVar.of(AttributeError, detail, exact=False))


def unsupported(kind: str, detail: str):
    raise Unsupported(kind, detail)

"""Objects from outside the frame (nn.Modules, user objects, classes, Python modules, torch callables), objects
created during tracing, and grad-mode context managers."""
from __future__ import annotations

import contextvars

from jit.variables.base import KnownObject, Var


class ModuleVar(Var):
    """An nn.Module that exists outside the frame. Its identity is guarded; attributes are read for real at
    compile time and wrapped with their own sources (parameters and buffers become graph inputs)."""

    def __init__(self, module, source=None):
        self.module = module
        self.source = source

    def python_type(self):
        return type(self.module)

    def describe(self):
        return f"module {type(self.module).__name__}"


class ObjectVar(Var):
    """Any other object from outside (config dataclasses, user class instances): type guarded, attributes read
    at compile time with their own sources."""

    def __init__(self, obj, source=None):
        self.obj = obj
        self.source = source

    def python_type(self):
        return type(self.obj)

    def describe(self):
        if callable(self.obj) and type(self.obj).__module__ == "builtins":
            return f"the built-in callable {self.obj!r}"
        return f"{type(self.obj).__name__} object"


class NewObjectVar(Var):
    """An instance of a user class (or dataclass) created during tracing; its attributes are Vars."""

    def __init__(self, cls: type, attrs: dict[str, Var] | None = None):
        self.cls = cls
        self.attrs = dict(attrs or {})
        # an instance of a dict subclass (transformers' ModelOutput, an OrderedDict dataclass) also holds items:
        # a DictVar the dict's own C methods (reached through super() or not overridden) read and change
        self.dict_var = None

    def python_type(self):
        return self.cls

    def describe(self):
        return f"new {self.cls.__name__} object"


class ClassVar(KnownObject):
    kind = "class"
    cls = property(lambda self: self.value)

class PythonModuleVar(KnownObject):
    """A Python module (torch, math, torch.nn.functional, a user's module)."""
    kind = "module"
    mod = property(lambda self: self.value)

class TorchCallableVar(KnownObject):
    """A torch callable (torch.*, torch.nn.functional.*, aten ops) that becomes a graph node when any argument is
    a tensor."""
    kind = "torch function"
    fn = property(lambda self: self.value)

class GradModeVar(Var):
    """torch.no_grad() / enable_grad() / set_grad_enabled(b) / inference_mode(False is unsupported)."""

    def __init__(self, enabled: bool, cls: type):
        self.enabled = enabled
        self.cls = cls
        self.prior: bool | None = None

    def python_type(self):
        return self.cls

    def describe(self):
        return f"{self.cls.__name__}()"


class ContextVarVar(Var):
    """A contextvars.ContextVar from outside (guarded by identity). What it holds is read through
    ContextVarValueSource and changed through the side-effect log (jit/semantics/context_vars.py)."""

    def __init__(self, obj, source=None):
        self.obj = obj
        self.source = source

    def python_type(self):
        return type(self.obj)

    def describe(self):
        return f"ContextVar {self.obj.name!r}"


class TokenVar(Var):
    """The Token returned by `var.set(value)` in the traced code: `old` is what the var held before (a Var, or
    side_effects.AT_ENTRY: whatever it held when the frame started, set or not). A real Token exists only if the
    generated code replays the calls (jit/codegen.py), which it does when a token outlives the trace."""

    def __init__(self, var: ContextVarVar, old):
        self.var = var
        self.old = old
        self.used = False  # reset() with it already: a second reset raises RuntimeError

    def python_type(self):
        return contextvars.Token

    def describe(self):
        return f"Token of {self.var.describe()}"

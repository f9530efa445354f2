"""Objects from outside the frame (nn.Modules, user objects, classes, Python modules, torch callables), objects
created during tracing, and grad-mode context managers."""
from __future__ import annotations

from jit.variables.base import Var


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
        return f"{type(self.obj).__name__} object"


class NewObjectVar(Var):
    """An instance of a user class (or dataclass) created during tracing; its attributes are Vars."""

    def __init__(self, cls: type, attrs: dict[str, Var] | None = None):
        self.cls = cls
        self.attrs = dict(attrs or {})

    def python_type(self):
        return self.cls

    def describe(self):
        return f"new {self.cls.__name__} object"


class ClassVar(Var):
    def __init__(self, cls: type, source=None):
        self.cls = cls
        self.source = source

    def python_type(self):
        return type(self.cls)

    def is_const(self):
        return True

    def const(self):
        return self.cls

    def describe(self):
        return f"class {self.cls.__qualname__}"


class PythonModuleVar(Var):
    """A Python module (torch, math, torch.nn.functional, a user's module)."""

    def __init__(self, mod, source=None):
        self.mod = mod
        self.source = source

    def python_type(self):
        return type(self.mod)

    def is_const(self):
        return True

    def const(self):
        return self.mod

    def describe(self):
        return f"module {self.mod.__name__}"


class TorchCallableVar(Var):
    """A torch callable (torch.*, torch.nn.functional.*, torch.Tensor methods unbound, operator.*) that becomes a
    graph node when any argument is a tensor."""

    def __init__(self, fn, source=None):
        self.fn = fn
        self.source = source

    def python_type(self):
        return type(self.fn)

    def is_const(self):
        return True

    def const(self):
        return self.fn

    def describe(self):
        return f"torch function {getattr(self.fn, '__qualname__', getattr(self.fn, '__name__', self.fn))}"


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

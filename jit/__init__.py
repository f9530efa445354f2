"""framejit: a bytecode-level JIT for PyTorch. This module is the public API and nothing else."""
from jit import logs as _logs
from jit.api import compile as compile
from jit.api import disable as disable
from jit.api import optimize as optimize
from jit.api import reset as reset
from jit.backends import list_backends as list_backends
from jit.backends import register_backend as register_backend
from jit.config import config as config
from jit.counters import counters as counters
from jit.dynamic import mark_dynamic as mark_dynamic
from jit.errors import BackendError as BackendError
from jit.errors import GraphBreakError as GraphBreakError
from jit.explanation import explain as explain
from jit.logs import set_logs as set_logs

_logs.configure_from_env()

__all__ = ["compile", "optimize", "disable", "reset", "mark_dynamic", "config", "counters", "set_logs", "register_backend",
           "list_backends", "GraphBreakError", "BackendError", "explain"]

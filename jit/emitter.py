"""The instructions generated code is written with (`bytecode` package instructions, spelled for the running
Python version: jit/pyversion.py), and how a value is loaded from its source (guards/sources.py): one place for
both, used by codegen.py for replacement and resume code."""
from __future__ import annotations

import contextvars

import bytecode as bc

from framejit.guards.sources import (NO_VALUE, AttrSource, BuiltinSource, CallResultSource, ClosureCellSource,
                                     ClosureSource, ConstSource, ContextVarValueSource, DictValueSource, FloatTensorSource, GlobalSource,
                                     ItemSource, LocalSource, ModuleDictSource, Source, TypeSource, float_tensor,
                                     real_key)
from jit.pyversion import PY311


def _lookup_builtin(namespace: dict, name: str):
    return namespace.get(name, namespace["__builtins__"][name] if isinstance(namespace["__builtins__"], dict)
                         else getattr(namespace["__builtins__"], name))


class Emitter:
    def __init__(self, lineno: int):
        self.out: list = []
        self.lineno = lineno

    def emit(self, name: str, arg=bc.UNSET):
        self.out.append(bc.Instr(name, arg, lineno=self.lineno) if arg is not bc.UNSET else
                        bc.Instr(name, lineno=self.lineno))

    def load_attr(self, name: str):
        self.emit("LOAD_ATTR", name if PY311 else (False, name))

    def load_method(self, name: str):
        self.emit("LOAD_METHOD", name) if PY311 else self.emit("LOAD_ATTR", (True, name))

    def call(self, n: int):
        if PY311:
            self.emit("PRECALL", n)
        self.emit("CALL", n)

    def call_const(self, fn, load_args) -> None:
        self.emit("PUSH_NULL")
        self.emit("LOAD_CONST", fn)
        n = load_args()
        self.call(n)

    def load_attr_of(self, load_base, name: str, generic: bool) -> None:
        """base.name; with `generic`, object.__getattribute__(base, name): as the trace read it, not through the
        class's own Python __getattribute__ (guards/sources.AttrSource.generic)."""
        if generic:
            self.call_const(object.__getattribute__, lambda: (load_base(), self.emit("LOAD_CONST", name), 2)[-1])
        else:
            load_base()
            self.load_attr(name)

    def load_source(self, source: Source) -> None:
        if isinstance(source, LocalSource):
            self.emit("LOAD_FAST", source.local)
        elif isinstance(source, GlobalSource):
            if source.namespace is None:
                self.emit("LOAD_GLOBAL", (False, source.global_name))
            else:
                self.emit("LOAD_CONST", source.namespace)
                self.emit("LOAD_CONST", source.global_name)
                self.emit("BINARY_SUBSCR")
        elif isinstance(source, BuiltinSource):
            if source.namespace is None:
                self.emit("LOAD_GLOBAL", (False, source.builtin))
            else:
                self.call_const(_lookup_builtin, lambda: (self.emit("LOAD_CONST", source.namespace),
                                                          self.emit("LOAD_CONST", source.builtin), 2)[-1])
        elif isinstance(source, ClosureSource):
            self.emit("LOAD_DEREF", bc.FreeVar(source.var))
        elif isinstance(source, ClosureCellSource):
            self.emit("LOAD_CLOSURE", bc.FreeVar(source.var))
        elif isinstance(source, AttrSource):
            self.load_attr_of(lambda: self.load_source(source.base), source.attr, source.generic)
        elif isinstance(source, ModuleDictSource):
            self.load_source(source.base)
            self.load_attr(source.store)
            self.emit("LOAD_CONST", source.attr)
            self.emit("BINARY_SUBSCR")
        elif isinstance(source, ItemSource) and source.no_default:
            self.call_const(dict.get, lambda: (self.load_source(source.base),
                                               self.emit("LOAD_CONST", real_key(source.key)), 2)[-1])
        elif isinstance(source, ItemSource):
            self.load_source(source.base)
            self.emit("LOAD_CONST", real_key(source.key))
            self.emit("BINARY_SUBSCR")
        elif isinstance(source, FloatTensorSource):
            self.call_const(float_tensor, lambda: (self.load_source(source.base), 1)[-1])
        elif isinstance(source, CallResultSource):
            self.call_const(_called, lambda: (self.load_source(source.base), 1)[-1])
        elif isinstance(source, DictValueSource):
            self.call_const(_value_at, lambda: (self.load_source(source.base), self.emit("LOAD_CONST", source.index),
                                                2)[-1])
        elif isinstance(source, ConstSource):
            self.emit("LOAD_CONST", source.obj)
        elif isinstance(source, TypeSource):
            self.call_const(type, lambda: (self.load_source(source.base), 1)[-1])
        elif isinstance(source, ContextVarValueSource):
            self.call_const(contextvars.ContextVar.get, lambda: (self.load_source(source.base),
                                                                 self.emit("LOAD_CONST", NO_VALUE), 2)[-1])
        else:
            raise TypeError(f"cannot load {source!r}")


def _value_at(d: dict, index: int):
    """guards.sources.DictValueSource: the value at a position of a dict."""
    return list(d.values())[index]


def _called(obj):
    """guards.sources.CallResultSource: obj() (a weakref's referent)."""
    return obj()

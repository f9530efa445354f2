"""Emit the replacement code object for a captured frame (with the `bytecode` package).

    [COPY_FREE_VARS] RESUME
    compiled(<each graph input, loaded from its source>)  ->  UNPACK into __jit_out_<i>
    <rebuild the return value: outputs, constants, objects loaded from their sources, containers>
    RETURN_VALUE

The code keeps the original's name, file, first line and free variables, takes the frame's argument vector
(jit.calling_convention), and has no cell variables of its own (arguments are only read)."""
from __future__ import annotations

import inspect
from types import CodeType

import bytecode as bc

from guards.sources import (AttrSource, BuiltinSource, ClosureSource, ConstSource, GlobalSource, ItemSource,
                            LocalSource, ModuleDictSource, Source, TypeSource)
from jit.break_reasons import unsupported
from jit.calling_convention import argument_names
from jit.pyversion import PY311
from jit.variables import (Const, DictVar, ListVar, ModuleVar, NamedTupleVar, NewObjectVar, ObjectVar, TupleVar,
                           UserFunctionVar, Var)
from jit.variables.base import KnownObject
from jit.variables.tensor import TensorVar


def rebuild_object(cls, attrs: dict):
    """A user-class instance created in the compiled code, rebuilt on return without running __init__ again."""
    obj = object.__new__(cls)
    for k, v in attrs.items():
        object.__setattr__(obj, k, v)
    return obj


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

    def call(self, n: int):
        if PY311:
            self.emit("PRECALL", n)
        self.emit("CALL", n)

    def call_const(self, fn, load_args) -> None:
        self.emit("PUSH_NULL")
        self.emit("LOAD_CONST", fn)
        n = load_args()
        self.call(n)

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
        elif isinstance(source, AttrSource):
            self.load_source(source.base)
            self.load_attr(source.attr)
        elif isinstance(source, ModuleDictSource):
            self.load_source(source.base)
            self.load_attr(source.store)
            self.emit("LOAD_CONST", source.attr)
            self.emit("BINARY_SUBSCR")
        elif isinstance(source, ItemSource):
            self.load_source(source.base)
            self.emit("LOAD_CONST", source.key)
            self.emit("BINARY_SUBSCR")
        elif isinstance(source, ConstSource):
            self.emit("LOAD_CONST", source.obj)
        elif isinstance(source, TypeSource):
            self.call_const(type, lambda: (self.load_source(source.base), 1)[-1])
        else:
            raise TypeError(f"cannot load {source!r}")


_MUTABLE_CONST = (list, dict, set, bytearray)


class ReturnBuilder:
    """Emits code that pushes the value a Var stands for."""

    def __init__(self, em: Emitter, output_slot: dict):
        self.em = em
        self.output_slot = output_slot  # fx node -> local name holding that graph output

    def push(self, v: Var) -> None:
        em = self.em
        if isinstance(v, TensorVar):
            slot = self.output_slot.get(v.node)
            if slot is not None:
                em.emit("LOAD_FAST", slot)
            elif v.node.op == "placeholder" and v.source is not None:
                em.load_source(v.source)
            else:
                raise AssertionError(f"tensor {v} is neither an output nor an input")
        elif isinstance(v, NamedTupleVar):
            if hasattr(v.cls, "n_fields"):  # structseq: cls(tuple)
                em.call_const(v.cls, lambda: (self._items(v.items, "BUILD_TUPLE"), 1)[-1])
            else:
                em.call_const(v.cls, lambda: (self._push_all(v.items), len(v.items))[-1])
        elif isinstance(v, TupleVar):
            self._items(v.items, "BUILD_TUPLE")
        elif isinstance(v, ListVar):
            self._items(v.items, "BUILD_LIST")
        elif isinstance(v, DictVar):
            for k, item in v.items.items():
                em.emit("LOAD_CONST", k)
                self.push(item)
            em.emit("BUILD_MAP", len(v.items))
            if v.cls is not dict:
                raise AssertionError("dict subclasses are not rebuilt")
        elif isinstance(v, NewObjectVar):
            def args():
                em.emit("LOAD_CONST", v.cls)
                for k, item in v.attrs.items():
                    em.emit("LOAD_CONST", k)
                    self.push(item)
                em.emit("BUILD_MAP", len(v.attrs))
                return 2
            em.call_const(rebuild_object, args)
        elif isinstance(v, Const):
            if isinstance(v.value, _MUTABLE_CONST):  # a fresh object per call, as the original code makes
                em.call_const(type(v.value), lambda: (em.emit("LOAD_CONST", tuple(v.value) if not isinstance(
                    v.value, dict) else tuple(v.value.items())), 1)[-1])
            else:
                em.emit("LOAD_CONST", v.value)
        elif v.source is not None:
            em.load_source(v.source)
        elif isinstance(v, KnownObject):
            em.emit("LOAD_CONST", v.value)
        elif isinstance(v, UserFunctionVar):
            em.emit("LOAD_CONST", v.fn)
        elif isinstance(v, (ModuleVar, ObjectVar)):
            unsupported("unsupported_value", f"returning {v.describe()} reached without a source")
        else:
            unsupported("unsupported_value", f"returning {v.describe()}")

    def _push_all(self, items):
        for item in items:
            self.push(item)

    def _items(self, items, build: str):
        self._push_all(items)
        self.em.emit(build, len(items))


def replacement_code(original: CodeType, compiled, inputs: list[Source], outputs: list, result: Var) -> CodeType:
    """`compiled` is None when the graph does no work (the result is rebuilt from inputs and constants)."""
    em = Emitter(original.co_firstlineno)
    if original.co_freevars:
        em.emit("COPY_FREE_VARS", len(original.co_freevars))
    em.emit("RESUME", 0)
    slots = {}
    if compiled is not None:
        em.call_const(compiled, lambda: (_load_inputs(em, inputs), len(inputs))[-1])
        names = [f"__jit_out_{i}" for i in range(len(outputs))]
        em.emit("UNPACK_SEQUENCE", len(outputs))
        for name in names:
            em.emit("STORE_FAST", name)
        slots = {node: name for node, name in zip(outputs, names)}
    ReturnBuilder(em, slots).push(result)
    em.emit("RETURN_VALUE")

    code = bc.Bytecode(em.out)
    code.name = original.co_name
    code.qualname = original.co_qualname
    code.filename = original.co_filename
    code.first_lineno = original.co_firstlineno
    code.argnames = list(argument_names(original))
    code.argcount = len(code.argnames)
    code.posonlyargcount = 0
    code.kwonlyargcount = 0
    code.freevars = list(original.co_freevars)
    code.cellvars = []
    code.flags = (original.co_flags & ~(inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)) | inspect.CO_OPTIMIZED | \
        inspect.CO_NEWLOCALS
    if original.co_freevars:
        code.flags |= inspect.CO_NESTED
    return code.to_code()


def _load_inputs(em: Emitter, inputs: list[Source]) -> None:
    for source in inputs:
        em.load_source(source)

"""Symbolic values the executor computes with. Each knows its Python type, whether it is a compile-time constant,
and (when it came from outside the frame) its Source, so guards can pin it and generated code can load it."""
from jit.variables.base import NULL, Const, NotConstant, Var
from jit.variables.containers import DictVar, DictViewVar, IteratorVar, ListVar, NamedTupleVar, TupleVar
from jit.variables.exceptions import ExceptionVar
from jit.variables.functions import (BoundMethodVar, BuiltinVar, CachedFunctionVar, CellVar, MethodOnVar,
                                     NestedFunctionVar, PartialVar, SuperVar, UserFunctionVar)
from jit.variables.iterators import ContainerIteratorVar, GeneratorVar
from jit.variables.sets import SetVar
from jit.variables.objects import (ClassVar, ContextVarVar, GradModeVar, ModuleVar, NewObjectVar, ObjectVar, PythonModuleVar,
                                   TokenVar, TorchCallableVar)
from jit.variables.tensor import TensorMethodVar, TensorVar

__all__ = ["NULL", "Const", "NotConstant", "Var", "DictVar", "DictViewVar", "ExceptionVar", "IteratorVar", "ContainerIteratorVar",
           "GeneratorVar", "SetVar", "ListVar", "NamedTupleVar", "TupleVar",
           "BoundMethodVar", "BuiltinVar", "CachedFunctionVar", "CellVar", "MethodOnVar", "SuperVar", "NestedFunctionVar", "PartialVar", "UserFunctionVar",
           "ClassVar", "ContextVarVar", "GradModeVar", "ModuleVar", "NewObjectVar", "ObjectVar", "PythonModuleVar",
           "TokenVar", "TorchCallableVar", "TensorMethodVar", "TensorVar"]

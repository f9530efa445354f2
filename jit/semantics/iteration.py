"""Iterators over values known at compile time; loops over them unroll."""
from __future__ import annotations

from operator import getitem as _getitem

import torch

from guards.sources import ModuleDictSource
from jit.break_reasons import unsupported
from jit.variables import Const, DictVar, IteratorVar, ModuleVar, Var
from jit.variables.containers import sequence_items
from jit.variables.tensor import TensorVar


def module_children(tx, var: ModuleVar) -> list[Var]:
    mod = var.module
    if isinstance(mod, torch.nn.ModuleDict):
        return [Const(k) for k in mod.keys()]
    if isinstance(mod, (torch.nn.ModuleList, torch.nn.Sequential)):
        return [tx.builder.wrap(child, ModuleDictSource(var.source, "_modules", key) if var.source else None)
                for key, child in mod._modules.items()]
    if isinstance(mod, (torch.nn.ParameterList,)):
        return [tx.builder.wrap(p, ModuleDictSource(var.source, "_parameters", key) if var.source else None)
                for key, p in mod._parameters.items()]
    unsupported("unsupported_value", f"iterating over {type(mod).__name__}")


def items_of(tx, v: Var) -> list[Var]:
    if isinstance(v, ModuleVar):
        return module_children(tx, v)
    if isinstance(v, TensorVar):
        if v.example.dim() == 0:
            unsupported("exception", "iteration over a 0-d tensor")
        rows = tx.output.call("call_method", "size", (v, Const(0)), {}).const() if tx.output.dynamic \
            else v.example.shape[0]
        return [tx.output.call("call_function", _getitem, (v, Const(i)), {}) for i in range(rows)]
    items = sequence_items(v)
    if items is None:
        unsupported("unsupported_value", f"iterating over {v.describe()}")
    return items


def get_iter(tx, v: Var) -> IteratorVar:
    if isinstance(v, IteratorVar):
        return v
    if isinstance(v, DictVar):
        return IteratorVar([Const(k) for k in v.items])
    return IteratorVar(items_of(tx, v))


def unpack(tx, v: Var, n: int | None) -> list[Var]:
    items = items_of(tx, v)
    if n is not None and len(items) != n:
        unsupported("exception", f"cannot unpack {len(items)} values into {n}")
    return items

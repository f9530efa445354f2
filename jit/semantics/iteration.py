"""Iterators over values known at compile time; loops over them unroll. Iterating over a container made in the
traced code is live (jit/variables/iterators.py), and a generator runs up to its next yield at each step."""
from __future__ import annotations

import enum
from operator import getitem as _getitem

import torch

from framejit.guards.sources import ModuleDictSource
from jit.break_reasons import PythonError, unsupported
from jit.semantics.exceptions import leaving_a_generator
from jit.variables import (ClassVar, Const, ContainerIteratorVar, DictVar, DictViewVar, GeneratorVar, IteratorVar,
                           ListVar, ModuleVar, SetVar, TupleVar, Var)
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
    if isinstance(v, ClassVar) and isinstance(v.cls, enum.EnumMeta):  # its members, fixed when it was made
        return [Const(m) for m in v.cls]
    if isinstance(v, TensorVar):
        if v.example.dim() == 0:
            unsupported("exception", "iteration over a 0-d tensor")
        rows = tx.output.call("call_method", "size", (v, Const(0)), {}).const() if tx.output.dynamic \
            else v.example.shape[0]
        return [tx.output.call("call_function", _getitem, (v, Const(i)), {}) for i in range(rows)]
    if isinstance(v, (GeneratorVar, ContainerIteratorVar)):
        return drain(tx, v)
    from jit.semantics.operators import user_object
    if user_object(v):
        return drain(tx, get_iter(tx, v))
    items = sequence_items(v)
    if items is None:
        unsupported("unsupported_value", f"iterating over {v.describe()}")
    return items


def get_iter(tx, v: Var) -> Var:
    """iter(v): an iterator is its own iterator; containers made in the traced code get a live one."""
    if isinstance(v, (IteratorVar, ContainerIteratorVar, GeneratorVar)):
        return v
    if isinstance(v, (ListVar, TupleVar, DictVar, DictViewVar)):
        return ContainerIteratorVar(v)
    from jit.semantics.operators import call_dunder, user_object
    if user_object(v):  # type(v).__iter__(v): a generator, or iter() of a container it holds
        it = call_dunder(tx, v, "__iter__", [])
        if it is None or not isinstance(it, (IteratorVar, ContainerIteratorVar, GeneratorVar)):
            unsupported("unsupported_value", f"iterating over {v.describe()}")
        return it
    return IteratorVar(items_of(tx, v))


def next_item(tx, it: Var) -> Var | None:
    """next(it), or None when it is exhausted (StopIteration)."""
    if isinstance(it, (IteratorVar, ContainerIteratorVar)):
        return it.next()
    if isinstance(it, GeneratorVar):
        return _resume(it)
    unsupported("unsupported_value", f"next() on {it.describe()}")


def drained(tx, v: Var) -> Var:
    """An iterator passed to a function of constants, as a tuple of what it yields (any iterable will do there)."""
    if isinstance(v, (IteratorVar, ContainerIteratorVar, GeneratorVar)):
        return TupleVar(drain(tx, v))
    return v


def constant_result(value) -> Var:
    """A value computed on constants at compile time. A new list, dict or set is an object of its own that the
    code may mutate (`"a b".split().append(...)`): a container Var, not a shared constant."""
    if type(value) is list:
        return ListVar([constant_result(v) for v in value])
    if type(value) is dict:
        return DictVar({k: constant_result(v) for k, v in value.items()})
    if type(value) in (set, frozenset):
        return SetVar.of_constants(value)
    return Const(value)


def return_value_of(it: Var) -> Var:
    """What an exhausted iterator returned (StopIteration.value: a generator's return value, else None)."""
    if isinstance(it, GeneratorVar) and it.frame.return_value is not None:
        return it.frame.return_value
    return Const(None)


def drain(tx, it: Var) -> list[Var]:
    """Every item left in an iterator, in order (list(it))."""
    out = []
    while (item := next_item(tx, it)) is not None:
        out.append(item)
    return out


def generator_method(tx, gen: GeneratorVar, name: str, args: list[Var]) -> Var:
    """gen.send(v), gen.__next__(), gen.close(); throw() runs code we do not model here (a break at the call)."""
    if name in ("send", "__next__"):
        sent = args[0] if args else Const(None)
        if gen.state == "created" and not (isinstance(sent, Const) and sent.value is None):
            unsupported("exception", "TypeError: can't send non-None value to a just-started generator")
        if gen.state == "suspended":
            gen.frame.stack[-1] = sent  # the value the paused YIELD_VALUE left for the frame to receive
        item = _resume(gen)
        if item is None:
            unsupported("exception", "StopIteration")
        return item
    if name == "close" and gen.state in ("created", "done"):
        gen.state = "done"  # closing a generator that is not paused inside runs none of its code
        return Const(None)
    unsupported("unsupported_call", f"generator.{name}() ({gen.describe()})")


def _resume(gen: GeneratorVar) -> Var | None:
    """Run the generator's frame up to its next yield (its value) or its return (None)."""
    if gen.state == "done":
        return None
    if gen.state == "running":
        unsupported("exception", "ValueError: generator already executing")
    gen.state = "running"
    frame = gen.frame
    try:
        frame.run()
    except PythonError as e:  # an exception leaving a generator's frame finishes it, then goes to the consumer
        gen.state = "done"
        leaving_a_generator(e.value)
        raise
    if frame.yielded is not None:
        value, frame.yielded = frame.yielded, None
        gen.state = "suspended"
        return value
    gen.state = "done"
    return None


def unpack(tx, v: Var, n: int | None) -> list[Var]:
    items = items_of(tx, v)
    if n is not None and len(items) != n:
        unsupported("exception", f"cannot unpack {len(items)} values into {n}")
    return items

"""What a symbolic value is built from: the graph of Vars the generated code walks (jit/codegen.py) to build
values in the right order and once each, and the frame compiler walks to find a graph's outputs."""
from __future__ import annotations

from jit.variables import (BoundMethodVar, CellVar, Const, ContainerIteratorVar, DictVar, DictViewVar, ExceptionVar,
                           GeneratorVar, IteratorVar, ListVar, MethodOnVar, NamedTupleVar, NestedFunctionVar,
                           NewObjectVar, SetVar, TupleVar)
from jit.variables.sizes import SizeVar
from jit.variables.tensor import ItemCompareVar, TensorMethodVar, TensorVar

MUTABLE_CONST = (list, dict, set, bytearray)  # constants the generated code must make fresh per call


def children(v) -> list:
    """The Vars a value is built from: container items, a new object's attributes, a nested function's defaults
    and closure cells, a cell's contents, a bound method's function and receiver."""
    if isinstance(v, (ListVar, DictVar)):
        return v.held()  # an outside one read lazily: what the trace read and wrote, not the whole container
    if isinstance(v, (TupleVar, NamedTupleVar, IteratorVar)):
        return list(v.items)
    if isinstance(v, DictViewVar):
        return [v.dict_var]
    if isinstance(v, SetVar):
        return list(v.items.values())
    if isinstance(v, MethodOnVar):
        return [v.obj]
    if isinstance(v, ContainerIteratorVar):
        return [v.container]
    if isinstance(v, GeneratorVar):
        return [v.fn] + v.args + list(v.kwargs.values()) if v.state == "created" else []
    if isinstance(v, NewObjectVar):
        return list(v.attrs.values()) + (list(v.dict_var.items.values()) if v.dict_var is not None else [])
    if isinstance(v, ExceptionVar):
        return list(v.args) + list(v.kwargs.values())
    if isinstance(v, NestedFunctionVar):
        return list(v.defaults) + list(v.kwdefaults.values()) + list(v.closure)
    if isinstance(v, CellVar):
        return [v.contents] if v.contents is not None else []
    if isinstance(v, (ItemCompareVar, TensorMethodVar)):
        return [v.tensor]
    if isinstance(v, BoundMethodVar):
        return [v.fn, v.self_var]
    return []


def built_without_graph(values) -> bool:
    """Whether code can build every value in `values` from the frame's inputs and constants alone (not from a
    graph output, nor from objects made in the traced code): what can still be built when the graph raised."""
    for v in reachable(values):
        if isinstance(v, (TensorVar, SizeVar)):
            if v.node.op != "placeholder" or v.source is None:
                return False
        elif not isinstance(v, (Const, TupleVar, ListVar, DictVar)) and getattr(v, "source", None) is None:
            return False
    return True


def reachable(roots) -> list:
    """Every Var reachable from `roots` through _children, each once, in depth-first order."""
    out, seen, todo = [], set(), list(roots)[::-1]
    while todo:
        v = todo.pop()
        if v is None or id(v) in seen:
            continue
        seen.add(id(v))
        out.append(v)
        todo.extend(reversed(children(v)))
    return out


def children_first(roots) -> list:
    """reachable(roots) ordered so that each Var comes after every Var it is built from (cycles, which only
    cells close, cut where met): an object built once is then never built inline inside another first."""
    out, done, on_path = [], set(), set()
    todo = [(v, False) for v in reversed(list(roots))]
    while todo:
        v, expanded = todo.pop()
        if v is None or id(v) in done:
            continue
        if expanded:
            on_path.discard(id(v))
            done.add(id(v))
            out.append(v)
            continue
        if id(v) in on_path:
            continue
        on_path.add(id(v))
        todo.append((v, True))
        todo.extend((c, False) for c in reversed(children(v)) if id(c) not in on_path)
    return out


def shared(roots, every: list) -> set:
    """ids of the objects the replacement code must build only once: objects made in the traced code, and lists
    and dicts made there that are reached more than once (rebuilding each would split one object in two).
    `every` is reachable(roots)."""
    refs: dict = {}
    for v in list(roots) + [c for p in every for c in children(p)]:
        refs[id(v)] = refs.get(id(v), 0) + 1
    return {id(v) for v in every if v.source is None and (
        isinstance(v, (NewObjectVar, ContainerIteratorVar, GeneratorVar, ExceptionVar)) or
        isinstance(v, (ListVar, DictVar, SetVar)) and refs[id(v)] > 1 or
        isinstance(v, Const) and isinstance(v.value, MUTABLE_CONST) and refs[id(v)] > 1)}

"""Which ops may return memory of their first argument, read from the ops themselves (aten schemas' alias info,
conversions that return their input as it is, indexing) rather than from meta values: the optimizer gives a node it
rewrites (masked_fill into where, clone into aten.clone) a new value while its readers keep values of the old one,
so storage identities of meta values can miss an alias. Used by CSE (results the graph returns) and by the
backends' output copies (inductor/prepare.copy_aliased_outputs)."""
from __future__ import annotations

import functools
import operator

import torch
import torch.fx as fx


# conversions return their input itself when it has the dtype or device asked for
_CONVERSIONS = {"float", "double", "half", "bfloat16", "int", "long", "short", "char", "byte", "bool", "type",
                "type_as", "cuda", "cpu"}


def may_alias_input(node: fx.Node) -> bool:
    """The node's result may share memory with its first argument (a view, `contiguous`, `to`, `x[0]`)."""
    if node.op == "call_function" and node.target is operator.getitem:
        return True
    schema = getattr(node.target, "_schema", None)
    if node.op == "call_function" and schema is not None:
        schemas = [schema]
    elif node.op in ("call_method", "call_function"):
        name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
        if name in _CONVERSIONS or name == "__getitem__":
            return True
        return isinstance(name, str) and _aten_aliases(name)
    else:
        return False
    return _returns_alias(schemas)


@functools.lru_cache(maxsize=None)
def _aten_aliases(name: str) -> bool:
    packet = getattr(torch.ops.aten, name, None)
    return packet is not None and _returns_alias([getattr(packet, o)._schema for o in packet.overloads()])


def _returns_alias(schemas) -> bool:
    return any(s.returns and s.returns[0].alias_info is not None and not s.returns[0].alias_info.is_write
               for s in schemas)


def alias_roots(node) -> list:
    """`node` and the nodes it may be a view of, through first arguments of aliasing ops (x.narrow(...).detach():
    itself, the narrow, x)."""
    found = []
    while isinstance(node, fx.Node) and node not in found:
        found.append(node)
        node = node.args[0] if node.args and may_alias_input(node) else None
    return found

"""What eager leaves in outside objects when an op that may raise on its values raises (an index out of range),
one record per such op, against what the generated code applies when the graph raises: the changes the whole
trace made (jit/codegen.py `on_error`).

Eager, on an error at op k, has made the writes before k, then those of the cleanup code around k (a `finally`,
a `with`'s exit: jit/translator.py `cleanup_lines`, per frame instance). A record starts from the attribute
values written when the op was recorded and takes the later writes made at those cleanup lines. The graph's
changes are exact on the error path when every record ends equal to them (the same attributes, the same values):
transformers wraps an encoder and a decoder in one set-and-reset of a global each, and an embedding inside either
leaves the global reset on the error, as the whole graph does. Container items are compared by where they were
written: after a recorded op only by its cleanup, or the comparison fails (the frame is then traced again with
such ops breaking the graph where changes are pending: jit/frame_compiler.py); context variables are not
followed."""
from __future__ import annotations

from jit.variables.base import Const


class _Record:
    def __init__(self, effects, cleanup: set):
        self.at = effects.state()
        self.attrs = effects.attr_values()
        self.cleanup = cleanup
        self.containers_in_cleanup = False  # container items written by the cleanup (eager writes them too)
        self.containers_elsewhere = False  # container items written after the op, not by the cleanup
        self.containers_before = effects.writes_shared_containers()  # shared items written before the op


class ErrorStates:
    def __init__(self):
        self.records: list[_Record] = []

    def op(self, effects, cleanup: set) -> None:
        """An op that may raise on its values, recorded now; `cleanup`: translator.cleanup_lines() there."""
        self.records.append(_Record(effects, cleanup))

    def written(self, effects, kind: str, key, at_lines) -> None:
        """A write to an outside object (SideEffects.on_write, after it is recorded); `at_lines(lines)`: whether the
        trace is at one of `lines` now."""
        for r in self.records:
            cleanup = bool(r.cleanup) and at_lines(r.cleanup)
            if kind == "attr":
                if cleanup:
                    r.attrs[key] = effects.attr_values()[key]
            else:
                r.containers_in_cleanup |= cleanup
                r.containers_elsewhere |= not cleanup

    def nothing_on_error(self) -> bool:
        """Every such op came before any change and no cleanup around it writes: an error leaves nothing."""
        return all(not r.at[0] and not any(r.at[1:]) and not r.attrs and not r.containers_in_cleanup
                   for r in self.records)

    def exact(self, effects, originals: dict | None = None) -> bool:
        """The trace's changes are what eager leaves on an error at every recorded op. `originals`: attributes
        whose value at the call (guarded) is known, as Consts: an op before their first write leaves those."""
        final, now = effects.attr_values(), effects.state()
        return all(not r.containers_elsewhere and r.at[1:] == now[1:] and
                   _same({**(originals or {}), **r.attrs}, final) for r in self.records)

    def common_attrs(self, effects) -> dict | None:
        """The attribute values every recorded op leaves on an error, where they are one and the same, no shared
        container's items are written before any such op or by a cleanup around one (items written after them,
        a cache's bookkeeping dict, are what eager does not reach on an error), and the trace takes no items from
        iterators: (id, name) -> value Var / DELETED. None otherwise."""
        if any(r.containers_in_cleanup or r.containers_before or any(r.at[1:]) for r in self.records) or \
                any(effects.state()[1:]):
            return None
        first = self.records[0].attrs
        if not all(_same(r.attrs, first) and _same(first, r.attrs) for r in self.records[1:]):
            return None
        return dict(first)

    def unwritten_at_some_op(self, effects) -> set:
        """Attributes the trace writes that some recorded op came before (it leaves their value at the call)."""
        final = effects.attr_values()
        return {key for r in self.records for key in final if key not in r.attrs}


def _same(a: dict, b: dict) -> bool:
    a = {key: value for key, value in a.items() if key in b}  # originals of attributes the trace never writes
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        if x is y:
            continue
        if not (isinstance(x, Const) and isinstance(y, Const) and type(x.value) is type(y.value)):
            return False
        try:
            if x.value is not y.value and not bool(x.value == y.value):
                return False
        except Exception:  # noqa: BLE001 - a value with no truthful equality: not the same
            return False
    return True

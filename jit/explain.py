"""jit.explain(fn, *args, **kwargs): run once under capture and report graphs, breaks, ops and guards."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

_fallbacks: list | None = None  # collecting while explain() runs


@dataclass
class BreakReason:
    reason: str
    location: str
    hint: str = ""
    kind: str = ""

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}" + (f"\n    hint: {self.hint}" if self.hint else "")


@dataclass
class Explanation:
    graphs: list = field(default_factory=list)
    break_reasons: list = field(default_factory=list)
    guards: list = field(default_factory=list)
    op_count: int = 0
    frames: list = field(default_factory=list)

    @property
    def graph_count(self) -> int:
        return len(self.graphs)

    @property
    def graph_break_count(self) -> int:
        return len(self.break_reasons)

    def __str__(self) -> str:
        lines = [f"Graphs: {self.graph_count}  Graph breaks: {self.graph_break_count}  Ops: {self.op_count}"]
        for i, g in enumerate(self.graphs):
            lines.append(f"--- graph {i} ---")
            lines.append(g.code.strip())
        if self.break_reasons:
            lines.append("Break reasons:")
            lines.extend(f"  {i + 1}. {r}" for i, r in enumerate(self.break_reasons))
        if self.guards:
            lines.append("Guards:")
            lines.extend(f"  {g}" for g in self.guards)
        return "\n".join(lines)


def record_fallback(frame, error) -> None:
    if _fallbacks is not None:
        _fallbacks.append(BreakReason(error.detail + f" ({error.kind.explanation})", error.location or frame.location,
                                      error.kind.hint, error.kind.name))


def explain(fn, *args, **kwargs) -> Explanation:
    """Compile `fn` afresh with the eager backend, run it once on these inputs, and report what was captured."""
    global _fallbacks
    from jit import api, eval_frame
    from jit.convert_frame import converter_for, Settings
    exp = Explanation()
    converter = converter_for(Settings("eager", False, None))
    seen_before = _entries_snapshot()
    _fallbacks = exp.break_reasons
    try:
        with api.optimize("eager"):
            fn(*args, **kwargs)
    finally:
        _fallbacks = None
    for code, entries in _entries_after(seen_before, converter):
        for entry in entries:
            info = entry.data
            if info is None:
                continue
            exp.frames.append(info.name)
            if info.graph is not None:
                exp.graphs.append(info.graph)
                exp.op_count += info.op_count
            exp.guards.extend(info.guards.describe())
    del eval_frame
    return exp


_codes_seen: list = []


def _entries_snapshot():
    from jit import _C
    return {id(e) for code in list(_tracked_codes()) for e in _C.get_entries(code)}


def _tracked_codes():
    import gc
    import types
    from jit import _C
    # Code objects with entries are few; find them through the frame compiler's registry of compiled codes.
    from jit.frame_compiler import compiled_codes
    return [c for c in compiled_codes if isinstance(c, types.CodeType) and _C.get_entries(c)] if gc else []


def _entries_after(before, converter):
    from jit import _C
    out = []
    for code in _tracked_codes():
        new = [e for e in _C.get_entries(code) if id(e) not in before and e.owner is converter]
        if new:
            out.append((code, new))
    return out


__all__ = ["explain", "Explanation", "BreakReason", "os"]

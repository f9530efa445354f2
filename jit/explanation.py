"""jit.explain(fn, *args, **kwargs): compile and run once, and report graphs, breaks, ops and guards.

It compiles with a throw-away callback (backend "eager"), so it always compiles afresh, never reuses or leaves
entries behind, and does not disturb the caches of jit.compile'd functions."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

_recording: Explanation | None = None


@dataclass
class BreakReason:
    reason: str
    location: str
    hint: str = ""
    kind: str = ""

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}" + (f"\n     hint: {self.hint}" if self.hint else "")


@dataclass
class Explanation:
    graphs: list = field(default_factory=list)
    break_reasons: list = field(default_factory=list)
    guards: list = field(default_factory=list)
    op_count: int = 0
    frames: list = field(default_factory=list)
    thread: int = field(default=0, repr=False)  # the thread whose call is explained: frames of others are not

    @property
    def graph_count(self) -> int:
        return len(self.graphs)

    @property
    def graph_break_count(self) -> int:
        return len(self.break_reasons)

    def __str__(self) -> str:
        lines = [f"Graphs: {self.graph_count}   Graph breaks: {self.graph_break_count}   Ops: {self.op_count}"]
        for i, g in enumerate(self.graphs):
            lines += [f"--- graph {i} ---", g.code.strip()]
        if self.break_reasons:
            lines.append("Break reasons:")
            lines += [f"  {i + 1}. {r}" for i, r in enumerate(self.break_reasons)]
        if self.guards:
            lines.append("Guards:")
            lines += [f"  {g}" for g in self.guards]
        return "\n".join(lines)


def record_entry(info) -> None:
    if _recording is not None and _recording.thread == threading.get_ident():
        _recording.frames.append(info.name)
        if info.graph is not None:
            _recording.graphs.append(info.graph)
            _recording.op_count += info.op_count
        _recording.guards.extend(info.guards.describe())


def record_break(frame, error) -> None:
    if _recording is not None and _recording.thread == threading.get_ident():
        _recording.break_reasons.append(BreakReason(f"{error.detail} ({error.kind.explanation})",
                                                    error.location or frame.location, error.kind.hint,
                                                    error.kind.name))


def explain(fn, *args, **kwargs) -> Explanation:
    global _recording
    from jit import _C
    from jit.convert_frame import FrameConverter, Settings
    if not callable(fn):
        raise TypeError(f"jit.explain(fn, *args) expects a callable first, got {type(fn).__name__}")
    exp = Explanation(thread=threading.get_ident())
    converter = FrameConverter(Settings("eager", False, None))
    previous, _recording = _recording, exp
    saved = _C.set_callback(converter)
    try:
        fn(*args, **kwargs)
    finally:
        _C.set_callback(saved)
        _recording = previous
        _C.drop_entries_of(converter)
    return exp

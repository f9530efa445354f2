"""jit.counters: what the compiler did, readable as attributes or items.

Python-side events are counted here; cache hits happen in C on the hot path, so they are read from the hook's
own counters when asked for rather than counted per call in Python."""
from __future__ import annotations

from collections import Counter

from jit import _C

_HOOK_KEYS = ("cache_hits", "cache_misses")


class Counters:
    __slots__ = ("_events", "_hook_base")

    def __init__(self):
        self._events: Counter = Counter()
        self._hook_base = dict.fromkeys(_HOOK_KEYS, 0)

    def bump(self, name: str, by: int = 1) -> None:
        self._events[name] += by

    def as_dict(self) -> dict:
        stats = _C.stats()
        out = {k: stats[k] - self._hook_base[k] for k in _HOOK_KEYS}
        out.update(self._events)
        return out

    def clear(self) -> None:
        self._events.clear()
        stats = _C.stats()
        self._hook_base = {k: stats[k] for k in _HOOK_KEYS}

    def __getitem__(self, name: str) -> int:
        return self.as_dict().get(name, 0)

    def __getattr__(self, name: str) -> int:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __repr__(self) -> str:
        return "jit.counters(" + ", ".join(f"{k}={v}" for k, v in sorted(self.as_dict().items())) + ")"


counters = Counters()

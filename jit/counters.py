"""jit.counters: what the compiler did, a read-only Mapping of counter name -> count (also readable as attributes).

Every documented counter is present from the start, at 0, so `dict(jit.counters)` always has the same keys; a
counter is added by adding its line to COUNTERS. Python-side events are counted here; cache hits and misses happen
in C on the hot path, so they are read from the hook's own counters when asked for rather than counted per call
in Python."""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from jit import _C

# name -> what it counts (the documentation of jit.counters; `help(jit.counters)` and docs/guide.md list them)
COUNTERS = {
    "frames_compiled": "frames the compiler produced a cache entry for (resume functions included)",
    "graphs": "FX graphs handed to a backend",
    "graph_breaks": "frames split at an instruction the executor could not capture",
    "recompiles": "cache misses on a code that already had entries (a guard failed)",
    "frames_run_eagerly": "frames the executor gave up on: they always run as written",
    "compile_errors": "internal compiler errors that fell back to eager (with one warning)",
    "cache_limit_hits": "cache misses past jit.config.cache_size_limit: the call ran eagerly",
    "backward_graphs": "backward graphs compiled for training (inductor/training.py), at the first backward",
    "cpu_choices_measured": "CPU graphs whose backend (NumPy code or torch) was chosen by timing both sides",
    "cpu_choices_cached": "CPU graphs whose backend choice was read from the disk cache (no timing)",
    "cache_hits": "calls that ran a cached entry (counted by the C hook)",
    "cache_misses": "calls whose code had no entry whose guards passed (counted by the C hook)",
}
_HOOK_KEYS = ("cache_hits", "cache_misses")


class Counters(Mapping):
    """Read-only: `jit.counters["graphs"]`, `jit.counters.graphs`, `dict(jit.counters)`; `clear()` zeroes all."""
    __slots__ = ("_events", "_hook_base")

    def __init__(self):
        object.__setattr__(self, "_events", dict.fromkeys(COUNTERS.keys() - set(_HOOK_KEYS), 0))
        object.__setattr__(self, "_hook_base", dict.fromkeys(_HOOK_KEYS, 0))

    def bump(self, name: str, by: int = 1) -> None:
        if name not in self._events:
            raise KeyError(f"jit.counters has no counter {name!r}: add it to COUNTERS in jit/counters.py")
        self._events[name] += by

    def as_dict(self) -> dict:
        stats = _C.stats()
        hook = {k: stats[k] - self._hook_base[k] for k in _HOOK_KEYS}
        return {k: hook[k] if k in hook else self._events[k] for k in COUNTERS}

    def clear(self) -> None:
        for k in self._events:
            self._events[k] = 0
        stats = _C.stats()
        object.__setattr__(self, "_hook_base", {k: stats[k] for k in _HOOK_KEYS})

    # ---- Mapping -------------------------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> int:
        if name in _HOOK_KEYS:
            return _C.stats()[name] - self._hook_base[name]
        return self._events[name]  # KeyError for a name that is not a counter, as a Mapping raises

    def __iter__(self) -> Iterator[str]:
        return iter(COUNTERS)

    def __len__(self) -> int:
        return len(COUNTERS)

    def __contains__(self, name) -> bool:
        return name in COUNTERS

    # ---- attribute access and repr -------------------------------------------------------------------------------

    def __getattr__(self, name: str) -> int:  # only called for names that are not methods or slots
        if name in COUNTERS:
            return self[name]
        raise AttributeError(f"jit.counters has no counter {name!r}; known: {', '.join(COUNTERS)}")

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError("jit.counters is read-only (jit.counters.clear() zeroes every counter)")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | COUNTERS.keys())

    def __repr__(self) -> str:
        return "jit.counters(" + ", ".join(f"{k}={v}" for k, v in sorted(self.as_dict().items())) + ")"


counters = Counters()

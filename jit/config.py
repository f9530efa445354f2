"""jit.config: process-wide settings. Unknown names and wrong types are rejected, so a typo cannot pass silently."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Config:
    # Compiled entries per code object before new variants stop being compiled (existing ones keep running;
    # anything else runs eagerly) -- a recompile storm must not grow without bound.
    cache_size_limit: int = 8
    # An internal error while compiling a frame falls back to eager with one warning instead of raising.
    suppress_errors: bool = True

    def __setattr__(self, name, value):
        known = {f.name: f.type for f in fields(self)}
        if name not in known:
            raise AttributeError(f"jit.config has no setting {name!r}; settings: {', '.join(sorted(known))}")
        expected = {"int": int, "bool": bool}[known[name]]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise TypeError(f"jit.config.{name} must be {expected.__name__}, got {type(value).__name__}")
        if name == "cache_size_limit" and value < 0:
            raise ValueError("jit.config.cache_size_limit must be >= 0")
        object.__setattr__(self, name, value)


config = Config()

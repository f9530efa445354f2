"""jit.config: process-wide settings. Unknown names and wrong types are rejected, so a typo cannot pass silently.

The executor's own settings live here; the built-in backends' switches (inductor/config.py: CUDA graphs,
autotuning, the CPU backend, ...) are reached through it too: `jit.config.cuda_graphs = False` sets one,
`print(jit.config)` lists every setting and switch with its environment variable and where its value came from."""
from __future__ import annotations

import importlib
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
            switches = _switches()
            if name in switches.SWITCHES:
                setattr(switches.config, name, value)
                return
            raise AttributeError(f"jit.config has no setting {name!r}; settings: "
                                 f"{', '.join(sorted(known) + list(switches.SWITCHES))}")
        expected = {"int": int, "bool": bool}[known[name]]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise TypeError(f"jit.config.{name} must be {expected.__name__}, got {type(value).__name__}")
        if name == "cache_size_limit" and value < 0:
            raise ValueError("jit.config.cache_size_limit must be >= 0")
        object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only for names that are not the executor's own settings
        switches = _switches()
        if name in switches.SWITCHES:
            return getattr(switches.config, name)
        raise AttributeError(f"jit.config has no setting {name!r}; settings: "
                             f"{', '.join(sorted(f.name for f in fields(self)) + list(switches.SWITCHES))}")

    def __repr__(self) -> str:
        lines = ["jit.config:"] + [f"  {f.name} = {getattr(self, f.name)!r}" for f in fields(self)]
        return "\n".join(lines + ["  " + line for line in repr(_switches().config).splitlines()])


def _switches():
    """inductor/config.py, imported when first asked for (`import jit` stays light)."""
    return importlib.import_module("framejit.inductor.config")


config = Config()

"""jit.counters bumped from inductor, which never imports jit (the import direction): only when jit drives
this compile, and without importing anything heavier than this module."""
import sys


def bump(name: str, by: int = 1) -> None:
    counters = sys.modules.get("jit.counters")
    if counters is not None:
        counters.counters.bump(name, by)

"""The handler registry: canonical opname -> handler(tx, inst). A handler may declare the CPython versions it
exists in; families share one handler through data (see operators.py)."""
from __future__ import annotations

import sys

HANDLERS: dict = {}


def handler(*names: str, min_version: tuple = (3, 11), max_version: tuple = (3, 99)):
    def register(fn):
        if min_version <= sys.version_info[:2] <= max_version:
            for name in names:
                HANDLERS[name] = fn
        return fn
    return register

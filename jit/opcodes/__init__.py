"""Opcode handlers, one small function per canonical opname, grouped by family. Importing this package
registers them all."""
from jit.opcodes import builds, calls, control, exceptions, loads_stores, operators, stack  # noqa: F401
from jit.opcodes.registry import HANDLERS

__all__ = ["HANDLERS"]

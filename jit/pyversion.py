"""Every CPython 3.11/3.12 bytecode difference the symbolic executor sees, mapped onto one canonical form.

Handlers are written against the canonical names only. The C side has its own version layer (jit/csrc/compat.h).
- 3.11 POP_JUMP_{FORWARD,BACKWARD}_IF_* are 3.12's POP_JUMP_IF_*.
- 3.12 LOAD_ATTR (is_method, name) is 3.11's LOAD_METHOD name / LOAD_ATTR name.
- 3.11 PRECALL does nothing we model; 3.12 dropped it.
- 3.12 RETURN_CONST c is LOAD_CONST c; RETURN_VALUE (the handler takes the constant directly).
- 3.12 LOAD_FAST_CHECK is LOAD_FAST (we know whether a local is bound).
- 3.12 FOR_ITER jumps to END_FOR on exhaustion and the runtime skips END_FOR; 3.11 jumps past the loop. The
  FOR_ITER handler skips an END_FOR at its target, so both read: "pop the iterator, continue after the loop".
"""
from __future__ import annotations

import sys

PY311 = sys.version_info[:2] == (3, 11)
PY312_PLUS = sys.version_info[:2] >= (3, 12)

_RENAMES = {
    "POP_JUMP_FORWARD_IF_FALSE": "POP_JUMP_IF_FALSE",
    "POP_JUMP_BACKWARD_IF_FALSE": "POP_JUMP_IF_FALSE",
    "POP_JUMP_FORWARD_IF_TRUE": "POP_JUMP_IF_TRUE",
    "POP_JUMP_BACKWARD_IF_TRUE": "POP_JUMP_IF_TRUE",
    "POP_JUMP_FORWARD_IF_NONE": "POP_JUMP_IF_NONE",
    "POP_JUMP_BACKWARD_IF_NONE": "POP_JUMP_IF_NONE",
    "POP_JUMP_FORWARD_IF_NOT_NONE": "POP_JUMP_IF_NOT_NONE",
    "POP_JUMP_BACKWARD_IF_NOT_NONE": "POP_JUMP_IF_NOT_NONE",
    "JUMP_BACKWARD_NO_INTERRUPT": "JUMP_BACKWARD",
    "LOAD_FAST_CHECK": "LOAD_FAST",
    "PRECALL": "NOP",
    "RESUME": "NOP",
    "MAKE_CELL": "NOP",       # cells are modelled when a variable is first stored (see translator)
    "COPY_FREE_VARS": "NOP",  # free variables are read from the function's closure on demand
}


def forward_jump(name: str) -> str:
    """The concrete opname of canonical conditional jump `name` (POP_JUMP_IF_TRUE...) to a later instruction:
    3.11 spells the direction (POP_JUMP_FORWARD_IF_TRUE), 3.12 does not."""
    return name.replace("POP_JUMP_IF_", "POP_JUMP_FORWARD_IF_") if PY311 else name


def canonical(name: str, arg):
    """(opname, arg) in the canonical spelling."""
    if name == "LOAD_ATTR" and isinstance(arg, tuple):  # 3.12
        is_method, attr = arg
        return ("LOAD_METHOD" if is_method else "LOAD_ATTR"), attr
    if name == "LOAD_SUPER_ATTR":  # 3.12: arg is (is_method, is_two_arg_super, name)
        return name, arg
    return _RENAMES.get(name, name), arg

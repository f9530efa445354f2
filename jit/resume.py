"""Resume functions: the rest of a frame after a graph break, as a function of its own.

`resume_in_<function>_at_<line>` is a copy of the original code with a prologue that rebuilds the value stack
from its first parameters (NULL slots are re-pushed, not passed), then jumps to the instruction after the break.
Its other parameters are the frame's live locals, under their own names. The hook intercepts it like any frame,
so the rest of the function is captured in turn. Resume code objects are cached per (code, instruction, stack
layout, locals), so their compiled entries are reused from call to call."""
from __future__ import annotations

import inspect
from types import CodeType

import bytecode as bc

_cache: dict = {}
# resume code -> (the original code it continues, how many prologue instructions precede the original's first)
_origin: dict = {}


def origin(code: CodeType, index: int) -> tuple[CodeType, int]:
    """Map an instruction of a resume function back to the original code, so that a resume function that breaks
    again (a break inside a loop) resumes with the same resume code instead of a new one per iteration."""
    while code in _origin:
        code, shift = _origin[code]
        index -= shift
    return code, index


def stack_arg(j: int) -> str:
    return f"___stack{j}"


def resume_code(code: CodeType, target: int, null_mask: tuple[bool, ...], local_names: tuple[str, ...],
                lineno: int) -> CodeType:
    """Code that continues `code` at instruction index `target` with a stack of len(null_mask) entries (True: a
    NULL) and the given locals bound. Parameters: the non-NULL stack entries, bottom first, then the locals."""
    code, target = origin(code, target)
    key = (code, target, null_mask, local_names)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    original = bc.Bytecode.from_code(code)
    label = bc.Label()
    body: list = []
    seen = 0
    for item in original:
        if isinstance(item, bc.Instr):
            if seen == target:
                body.append(label)
            seen += 1
        body.append(item)
    if label not in body:
        raise ValueError(f"instruction {target} not found in {code.co_qualname}")
    prologue: list = []
    if code.co_freevars:
        prologue.append(bc.Instr("COPY_FREE_VARS", len(code.co_freevars), lineno=lineno))
    prologue.append(bc.Instr("RESUME", 0, lineno=lineno))
    stack_params = []
    for j, is_null in enumerate(null_mask):
        if is_null:
            prologue.append(bc.Instr("PUSH_NULL", lineno=lineno))
        else:
            stack_params.append(stack_arg(j))
            prologue.append(bc.Instr("LOAD_FAST", stack_arg(j), lineno=lineno))
    prologue.append(bc.Instr("JUMP_FORWARD", label, lineno=lineno))

    out = bc.Bytecode(prologue + body)
    out.name = f"resume_in_{code.co_name}_at_{lineno}"
    out.qualname = f"{code.co_qualname}.<resume at line {lineno}>"
    out.filename = code.co_filename
    out.first_lineno = code.co_firstlineno
    out.argnames = stack_params + list(local_names)
    out.argcount = len(out.argnames)
    out.posonlyargcount = 0
    out.kwonlyargcount = 0
    out.freevars = list(code.co_freevars)
    out.cellvars = []
    out.flags = (code.co_flags & ~(inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)) | inspect.CO_OPTIMIZED | \
        inspect.CO_NEWLOCALS
    result = out.to_code()
    _cache[key] = result
    _origin[result] = (code, len(prologue))
    return result

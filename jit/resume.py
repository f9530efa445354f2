"""Resume functions: the rest of a frame after a graph break, as a function of its own.

The resume function (named as the original, so tracebacks read as eager's; qualname `<function>.<resume at line
N>`) is a copy of the original code with a prologue that rebuilds the value stack from its first parameters (NULL
slots are re-pushed, not passed), then jumps to the instruction after the break. Its other parameters are the
frame's live locals, under their own names. The hook intercepts it like any frame, so the rest of the function is
captured in turn. Resume code objects are cached per (code, instruction, stack layout, locals), so their compiled
entries are reused from call to call."""
from __future__ import annotations

import inspect
import weakref
from types import CodeType

import bytecode as bc

from jit.code_maps import CodeMap
from jit.instructions import handlers
from jit.pyversion import PY311

# original code -> {(instruction index, stack slots, local names): resume code}: one resume code per break
# position, reused from call to call, for as long as the original lives (jit.reset forgets them all).
_resumes = CodeMap()
# resume code -> (weak reference to the original it continues, how many prologue instructions precede the
# original's first, index of the original's instruction it starts at, stack slots, local names). The original is
# held weakly: its own compiled entries (in its co_extra) hold the resume code, so a strong reference back would
# keep both alive after the function dies. While a resume function runs, the frame of the code it continues is
# still on the stack below it, so the original is alive whenever a resume frame is compiled.
_info = CodeMap()


def forget() -> None:
    """Forget which resume code continues which break (jit.reset): new compiles make new ones. What each resume
    code continues stays known while it lives (a replacement still running may call it)."""
    _resumes.clear()


def _continues(code: CodeType) -> tuple | None:
    info = _info.get(code)
    if info is None:
        return None
    original = info[0]()
    return None if original is None else (original, *info[1:])


def entry_of(code: CodeType) -> tuple | None:
    """For a resume function: (original code, index it starts at in the original, its stack slots, its local
    names, prologue length); None for any other code."""
    info = _continues(code)
    if info is None:
        return None
    original, shift, target, slots, local_names = info
    return original, target, slots, local_names, shift


def origin(code: CodeType, index: int) -> tuple[CodeType, int]:
    """Map an instruction of a resume function back to the original code, so that a resume function that breaks
    again (a break inside a loop) resumes with the same resume code instead of a new one per iteration."""
    while (info := _continues(code)) is not None:
        code, shift = info[0], info[1]
        index -= shift
    return code, index


def handler_of(code: CodeType, index: int) -> tuple[int, int, bool] | None:
    """The exception handler that covers instruction `index` of `code`: (index of its first instruction, stack
    depth it expects below the exception, whether it also expects the last instruction's offset), or None."""
    return handlers(code)[index]


def closure_names(code: CodeType) -> tuple[str, ...]:
    """The free variables of a resume function for `code`: the original's own free variables, then its cell
    variables. The frame that breaks passes the very cells its closures share (see jit/codegen.py), so a closure
    made before the break and the code after it read and write the same variable."""
    return code.co_freevars + code.co_cellvars


def _cells_as_free(instr: bc.Instr) -> bc.Instr:
    """The original's instruction as the resume function runs it: its cells arrive in its closure, so MAKE_CELL
    (which would replace a cell by a new empty one) has nothing to do (never reached: the prologue jumps past it,
    but it must still assemble), and LOAD_DEREF / STORE_DEREF / DELETE_DEREF / LOAD_CLOSURE name a free variable.
    The instruction count is unchanged (jit.resume.origin maps indices by offset)."""
    if instr.name == "MAKE_CELL":
        return bc.Instr("NOP", location=instr.location)
    if instr.name == "COPY_FREE_VARS":  # the original's own, also never reached: ours is in the prologue
        return bc.Instr("NOP", location=instr.location)
    if isinstance(instr.arg, bc.CellVar):
        return bc.Instr(instr.name, bc.FreeVar(instr.arg.name), location=instr.location)
    return instr


def super_self(code: CodeType) -> str | None:
    """The name of `code`'s first parameter when zero-argument `super()` may read it: CPython 3.11 takes the
    frame's first local as `self` (and 3.12 loads it by name), so a resume function of such code keeps it live and
    as its own first parameter. None for code without a `__class__` cell or parameters."""
    if "__class__" not in code.co_freevars or not (code.co_argcount or code.co_flags & inspect.CO_VARARGS):
        return None
    return code.co_varnames[0]


def param_order(code: CodeType, slots: tuple, local_names) -> list[str]:
    """A resume function's parameters, in order: its VALUE stack slots, then the locals it is handed; the
    original's first parameter goes first when zero-argument super() may read it (super_self). The break code
    passes its arguments in this order (jit/codegen.py, _call_resume)."""
    code = origin(code, 0)[0]
    names = [stack_arg(j) for j, slot in enumerate(slots) if slot == VALUE] + list(local_names)
    first = super_self(code)
    if first in local_names:
        names.remove(first)
        names.insert(0, first)
    return names


def stack_arg(j: int) -> str:
    return f"___stack{j}"


# Stack slot kinds in a resume function's prologue: a value passed as a parameter, a NULL re-pushed, or a
# grad-mode `with` re-entered (its __exit__ is what sits in that slot): ("grad", manager class, its arguments).
VALUE, NULL_SLOT = "value", "null"


def resume_code(code: CodeType, target: int, slots: tuple, local_names: tuple[str, ...], lineno: int) -> CodeType:
    """Code that continues `code` at instruction index `target` with a stack of len(slots) entries (see VALUE,
    NULL_SLOT, grad slots) and the given locals bound. Parameters: the VALUE stack entries, bottom first, then the
    locals. Jumping into the body of a `with` keeps the exception table's stack depths (the re-entered manager's
    __exit__ is in its slot), so an exception still runs __exit__."""
    code, target = origin(code, target)
    key = (target, slots, local_names)
    cached = _resumes.get(code, {}).get(key)
    if cached is not None:
        return cached
    original = bc.Bytecode.from_code(code, conserve_exception_block_stackdepth=True)
    label = bc.Label()
    body: list = []
    seen = 0
    for item in original:
        if isinstance(item, bc.Instr):
            if seen == target:
                body.append(label)
            seen += 1
            item = _cells_as_free(item)
        body.append(item)
    if label not in body:
        raise ValueError(f"instruction {target} not found in {code.co_qualname}")
    free = closure_names(code)
    prologue: list = []
    if free:
        prologue.append(bc.Instr("COPY_FREE_VARS", len(free), lineno=lineno))
    prologue.append(bc.Instr("RESUME", 0, lineno=lineno))
    for j, slot in enumerate(slots):
        if slot == NULL_SLOT:
            prologue.append(bc.Instr("PUSH_NULL", lineno=lineno))
        elif slot == VALUE:
            prologue.append(bc.Instr("LOAD_FAST", stack_arg(j), lineno=lineno))
        else:  # ("grad", cls, args): cls(*args).__enter__(), leaving its __exit__ on the stack
            _, cls, args = slot
            prologue += [bc.Instr("PUSH_NULL", lineno=lineno), bc.Instr("LOAD_CONST", cls, lineno=lineno)]
            prologue += [bc.Instr("LOAD_CONST", a, lineno=lineno) for a in args]
            if PY311:
                prologue.append(bc.Instr("PRECALL", len(args), lineno=lineno))
            prologue += [bc.Instr("CALL", len(args), lineno=lineno), bc.Instr("BEFORE_WITH", lineno=lineno),
                         bc.Instr("POP_TOP", lineno=lineno)]
    prologue.append(bc.Instr("JUMP_FORWARD", label, lineno=lineno))

    out = bc.Bytecode(prologue + body)
    out.name = code.co_name  # a traceback names the user's function, as eager's does (its qualname says resume)
    out.qualname = f"{code.co_qualname}.<resume at line {lineno}>"
    out.filename = code.co_filename
    out.first_lineno = code.co_firstlineno
    out.argnames = param_order(code, slots, local_names)
    out.argcount = len(out.argnames)
    out.posonlyargcount = 0
    out.kwonlyargcount = 0
    out.freevars = list(free)
    out.cellvars = []
    out.flags = (code.co_flags & ~(inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)) | inspect.CO_OPTIMIZED | \
        inspect.CO_NEWLOCALS
    # Keep the original exception-table depths (recomputing them from the prologue's jump into a `with` body
    # would be wrong); the stack never grows past the original's plus what the prologue holds at once.
    result = out.to_code(compute_exception_stack_depths=False, stacksize=code.co_stacksize + len(slots) + 4)
    _resumes.setdefault(code, {})[key] = result
    _info[result] = (weakref.ref(code), len(prologue), target, slots, tuple(local_names))
    return result

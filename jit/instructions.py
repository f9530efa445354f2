"""Decode a code object into the canonical instruction list the symbolic executor runs.

Built on the `bytecode` package's abstract form: jump targets are indices into the list, constants and names are
resolved, and pseudo-instructions (labels, exception-table markers) are dropped. Exception-table regions are kept
as a per-instruction `handler` index: a raise in the trace goes to the handler it names (Translator._throw), and
a break finds there where an exception from the instruction it runs for real goes."""
from __future__ import annotations

from dataclasses import dataclass
from types import CodeType

import bytecode as bc

from jit.code_maps import CodeMap
from jit.pyversion import canonical


@dataclass
class Inst:
    opname: str
    arg: object
    lineno: int | None
    target: int | None = None  # index of the jump target, for jumps and FOR_ITER
    raw: object = None         # the bytecode.Instr as decoded (original spelling, for re-emitting it)

    def __repr__(self) -> str:
        tgt = f" -> {self.target}" if self.target is not None else ""
        return f"{self.opname} {self.arg!r}{tgt} (line {self.lineno})"


# Decoded once per code object, for as long as it lives (code objects die with their functions: a fresh function
# per request must not keep its decoding).
_cache = CodeMap()  # code -> list[Inst]


def decode(code: CodeType) -> list[Inst]:
    out = _cache.get(code)
    if out is None:
        out = _cache[code] = _decode(code)
    return out


def _decode(code: CodeType) -> list[Inst]:
    raw = bc.Bytecode.from_code(code)
    insts: list[Inst] = []
    label_at: dict[int, int] = {}  # id(label) -> index of the next real instruction
    pending_targets: list[tuple[Inst, bc.Label]] = []
    lineno = code.co_firstlineno
    for item in raw:
        if isinstance(item, bc.Label):
            label_at[id(item)] = len(insts)
            continue
        if not isinstance(item, bc.Instr):  # TryBegin/TryEnd: exception regions are read by `handlers`
            continue
        if item.lineno is not None:
            lineno = item.lineno
        name, arg = canonical(item.name, item.arg)
        inst = Inst(name, arg, lineno, raw=item)
        if isinstance(arg, bc.Label):
            pending_targets.append((inst, arg))
            inst.arg = None
        insts.append(inst)
    for inst, label in pending_targets:
        inst.target = label_at[id(label)]
    return insts


_handlers = CodeMap()  # code -> handlers(code)


def forget() -> None:
    """Drop every decoding (jit.reset)."""
    _cache.clear()
    _handlers.clear()


def handlers(code: CodeType) -> list:
    """Per instruction index (as in `decode`): the exception handler covering it, as (index of the handler's first
    instruction, stack depth it expects below the exception, whether it also expects the last instruction's
    offset), or None."""
    out = _handlers.get(code)
    if out is not None:
        return out
    label_index: dict = {}
    active, regions, seen = None, [], 0
    for item in bc.Bytecode.from_code(code, conserve_exception_block_stackdepth=True):
        if isinstance(item, bc.Label):
            label_index[item] = seen
        elif isinstance(item, bc.TryBegin):
            active = item
        elif isinstance(item, bc.TryEnd):
            active = None
        elif isinstance(item, bc.Instr):
            regions.append(active)
            seen += 1
    out = _handlers[code] = [None if r is None else (label_index[r.target], r.stack_depth, r.push_lasti)
                             for r in regions]
    return out


def caught_in_frame(code: CodeType, index: int, raised: tuple = (), builtin=None) -> bool:
    """Whether an exception raised at instruction `index` reaches a try/except handler of `code` that may go on
    with the function. A `with` block's cleanup (PUSH_EXC_INFO then WITH_EXCEPT_START) calls __exit__ and
    re-raises, and a `finally` block whose straight-line body ends in RERAISE re-raises too, so past either the
    search goes on to what covers the re-raise. (Such a cleanup does not run when a graph op raises: the exception
    leaves the compiled code with its message and type, as under torch.compile.)"""
    insts, found = decode(code), handlers(code)[index]
    while found is not None:
        target = found[0]
        if insts[target].opname == "PUSH_EXC_INFO" and target + 1 < len(insts) and \
                insts[target + 1].opname == "WITH_EXCEPT_START":
            inner = handlers(code)[target]  # the cleanup's re-raise block
            found = handlers(code)[inner[0]] if inner is not None else None
            continue
        reraise = _finally_reraise(insts, target)
        if reraise is None and raised:
            reraise = _unmatched_clauses(insts, target, raised, builtin)
        if reraise is None:
            return True
        inner = handlers(code)[reraise]  # the block that pops the handled exception and re-raises it
        found = handlers(code)[inner[0]] if inner is not None else None
    return False


def _unmatched_clauses(insts: list, target: int, raised: tuple, builtin) -> int | None:
    """For an except chain (PUSH_EXC_INFO, then clauses each testing the exception by CHECK_EXC_MATCH against
    builtin exception classes, e.g. `except (KeyError, NotImplementedError):`) none of which catches an exception
    of a class in `raised`: the index of the RERAISE 0 the chain ends in. None where a clause may catch one, is
    bare, or names anything but a builtin (a module's class, a local: not read here, so taken as catching)."""
    i = target + 1
    while i < len(insts):
        if insts[i].opname == "RERAISE" and not insts[i].arg:
            return i
        classes = []
        while i < len(insts) and insts[i].opname == "LOAD_GLOBAL":
            name = insts[i].arg[1] if isinstance(insts[i].arg, tuple) else insts[i].arg
            found = builtin(name) if builtin is not None else None
            if not (isinstance(found, type) and issubclass(found, BaseException)):
                return None
            classes.append(found)
            i += 1
        if len(classes) > 1:
            if insts[i].opname != "BUILD_TUPLE" or insts[i].arg != len(classes):
                return None
            i += 1
        if not classes or insts[i].opname != "CHECK_EXC_MATCH" or insts[i + 1].opname != "POP_JUMP_IF_FALSE":
            return None
        if any(issubclass(e, c) for e in raised for c in classes):
            return None
        i = insts[i + 1].target  # the next clause, or the chain's RERAISE
    return None


def _finally_reraise(insts: list, target: int) -> int | None:
    """For a handler that is a `finally` body run on the exceptional path (PUSH_EXC_INFO, then code that on every
    path re-raises with RERAISE 0: no exception test, no POP_EXCEPT, no return): the index of a RERAISE it ends
    in (all of them share the block that covers them). None for anything else (an except clause: catching)."""
    if insts[target].opname != "PUSH_EXC_INFO":
        return None
    todo, seen, ends = [target + 1], set(), []
    while todo:
        i = todo.pop()
        if i in seen or i >= len(insts):
            continue
        seen.add(i)
        inst = insts[i]
        if inst.opname == "RERAISE":
            if inst.arg:
                return None
            ends.append(i)
            continue
        if inst.opname in ("CHECK_EXC_MATCH", "POP_EXCEPT", "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS"):
            return None
        if inst.target is not None:
            todo.append(inst.target)
        if not inst.opname.startswith("JUMP") or inst.opname.startswith("JUMP_IF"):  # falls through
            todo.append(i + 1)
    return ends[0] if ends else None

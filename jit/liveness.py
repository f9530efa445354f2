"""Which locals the rest of a frame may still read: the ones a resume function must be given.

A local that every path from the break writes before it reads (or never reads) is dead: passing it would keep
its value alive until the frame returns (a tensor the graph then has to output, memory a GPU program wants back)
and cost a guard on every call of the resume function. Backward dataflow over the canonical instructions
(jit/instructions.py), with the exception handler of each instruction as one more successor (the instruction
may raise before its own write)."""
from __future__ import annotations

from types import CodeType

from jit.code_maps import CodeMap
from jit.instructions import decode, handlers

_READS = ("LOAD_FAST", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_LOAD_FAST", "DELETE_FAST")  # DELETE_FAST needs the binding
_WRITES = ("STORE_FAST", "STORE_FAST_STORE_FAST")
_NO_FALLTHROUGH = ("RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE", "JUMP_FORWARD", "JUMP_BACKWARD",
                   "JUMP")
# Code that can see its locals without naming them (locals(), vars(), eval, exec, frame objects) keeps them all.
_INTROSPECTION = {"locals", "vars", "eval", "exec", "_getframe", "currentframe", "f_locals", "f_back", "tb_frame"}

_cache = CodeMap()  # code -> live names before each instruction, as long as the code lives


def forget() -> None:
    """Drop every analysis (jit.reset)."""
    _cache.clear()


def _names(arg) -> tuple:
    return arg if isinstance(arg, tuple) else (arg,)


def _live_in(code: CodeType) -> list:
    insts = decode(code)
    catch = [h[0] if h is not None else None for h in handlers(code)]
    reads, writes, succs = [], [], []
    for i, inst in enumerate(insts):
        if inst.opname == "STORE_FAST_LOAD_FAST":  # 3.13: stores arg[0], then loads arg[1]
            stored, loaded = inst.arg
            reads.append({loaded} - {stored})
            writes.append({stored})
        else:
            reads.append(set(_names(inst.arg)) if inst.opname in _READS else set())
            writes.append(set(_names(inst.arg)) if inst.opname in _WRITES else set())
        nxt = [] if inst.opname in _NO_FALLTHROUGH or i + 1 >= len(insts) else [i + 1]
        if inst.target is not None:
            nxt.append(inst.target)
        succs.append(nxt)
    live = [set() for _ in insts]
    changed = True
    while changed:  # iterate to the fixpoint; loops converge in a few rounds
        changed = False
        for i in range(len(insts) - 1, -1, -1):
            out = set()
            for s in succs[i]:
                out |= live[s]
            new = (out - writes[i]) | reads[i]
            if catch[i] is not None:
                new |= live[catch[i]]
            if new != live[i]:
                live[i], changed = new, True
    return live


def live_locals(code: CodeType, index: int) -> set | None:
    """Names of `code`'s locals that some path from instruction `index` (canonical index) may read before writing
    them; None when the code can read its locals in ways this cannot see."""
    if _INTROSPECTION & set(code.co_names):
        return None
    live = _cache.get(code)
    if live is None:
        live = _cache[code] = _live_in(code)
    return live[index]

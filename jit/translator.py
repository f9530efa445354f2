"""The symbolic executor: runs a frame's bytecode over Vars instead of values.

One Translator per Python frame, the inlined callees included (they share the OutputGraph, so a whole call tree
becomes one graph). Handlers live in jit/opcodes; the meaning of operations (calls, attributes, operators) in
jit/semantics."""
from __future__ import annotations

import os
from types import CodeType

from jit.break_reasons import PythonError, Unsupported, unsupported
from jit.instructions import Inst, caught_in_frame, decode, handlers
from jit.opcodes import HANDLERS
from jit.output_graph import OutputGraph
from jit.variables import CellVar, Const, Var
from jit.variables.builder import Builder

MAX_INSTRUCTIONS = 200_000  # per compiled frame, inlined callees included
MAX_INLINE_DEPTH = 24


class StopBeforeBreak(Exception):
    """Pass 2 of a graph break reached the instruction that broke in pass 1: the state is ready to emit."""


class Translator:
    def __init__(self, output: OutputGraph, code: CodeType, f_globals: dict, f_builtins: dict,
                 local_vars: dict[str, Var], cells: dict, *, globals_namespace: dict | None, trusted: bool = False,
                 parent: Translator | None = None):
        self.output = output
        self.code = code
        self.insts: list[Inst] = decode(code)
        self.f_globals, self.f_builtins = f_globals, f_builtins
        self.globals_namespace = globals_namespace  # None: the compiled frame's own globals (source-relative)
        self.locals = local_vars
        self.cells = cells
        self.stack: list[Var] = []
        self.ip = 0
        self.inst: Inst | None = None
        self.kw_names: tuple | None = None
        self.parent = parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.builder = Builder(output)
        # Globals of library code we inline (torch.nn) are trusted: guarding them would cost every call.
        self.globals_builder = Builder(output, guarded=not trusted)
        self.return_value: Var | None = None
        self.current_builtin = None
        # A generator's frame (jit.variables.iterators.GeneratorVar) runs up to each yield: YIELD_VALUE leaves the
        # value in `yielded` and run() returns; the next run() resumes after it.
        self.is_generator = False
        self.yielded: Var | None = None
        # Graph breaks (top-level frame only): how often each instruction ran, and where pass 2 must stop.
        self.visits: dict[int, int] = {}
        self.stop_before: tuple[int, int] | None = None
        # except clauses entered without a break (_enter_except_clause): where each one's exception was raised
        self.in_clause: list[tuple[int, int]] = []
        self.last_attr: tuple | None = None  # (instruction index, object Var, name) of this frame's last LOAD_ATTR
        if self.depth > MAX_INLINE_DEPTH:
            unsupported("too_complex", f"calls nested deeper than {MAX_INLINE_DEPTH} (recursion?)")

    # ---- stack ---------------------------------------------------------------------------------------------------

    def push(self, v: Var) -> None:
        self.stack.append(v)

    def pop(self) -> Var:
        return self.stack.pop()

    def popn(self, n: int) -> list[Var]:
        if n == 0:
            return []
        items = self.stack[-n:]
        del self.stack[-n:]
        return items

    # ---- running ---------------------------------------------------------------------------------------------------

    def location(self) -> str:
        line = self.inst.lineno if self.inst is not None else self.code.co_firstlineno
        return f"{self.code.co_filename}:{line}"

    def short_location(self) -> str:
        line = self.inst.lineno if self.inst is not None else self.code.co_firstlineno
        return f"{os.path.basename(self.code.co_filename)}:{line}"

    def run(self) -> Var:
        previous, self.output.translator = self.output.translator, self  # the frame whose op is being recorded
        try:
            return self._run()
        finally:
            self.output.translator = previous

    def in_try(self) -> bool:
        """Whether an exception raised by the current instruction would be caught by a try in this frame or in
        one of the frames it was inlined into (there, at the call being inlined)."""
        tx = self
        while tx is not None:
            if tx.ip > 0 and caught_in_frame(tx.code, tx.ip - 1):
                return True
            tx = tx.parent
        return False

    def _run(self) -> Var:
        top = self.parent is None
        try:
            while self.return_value is None and self.yielded is None:
                if top:
                    visit = self.visits[self.ip] = self.visits.get(self.ip, 0) + 1
                    if self.stop_before == (self.ip, visit):
                        self.inst = self.insts[self.ip]
                        raise StopBeforeBreak()
                inst = self.insts[self.ip]
                self.ip += 1
                self.inst = inst
                self.output.instructions += 1
                if self.output.instructions > MAX_INSTRUCTIONS:
                    unsupported("too_complex", f"more than {MAX_INSTRUCTIONS} instructions to trace")
                fn = HANDLERS.get(inst.opname)
                if fn is None:
                    unsupported("unsupported_opcode", f"instruction {inst.opname}")
                try:
                    fn(self, inst)
                except PythonError as e:
                    if not self._enter_except_clause(e):
                        raise
            return self.return_value
        except Unsupported as e:
            if not e.location:
                e.location = self.location()
                e.args = (e.message(),)
            if top and e.break_at is None:
                # Where the top-level frame was when it happened: the instruction to run for real after a break
                # (for a failure inside an inlined call, the call itself: the callee then runs on its own). Inside
                # an except clause entered without a break, the instruction that raised: the clause cannot be
                # resumed (the exception it handles exists only here), so the raise runs for real.
                e.break_at = self.in_clause[0] if self.in_clause else (self.ip - 1, self.visits.get(self.ip - 1, 1))
            raise

    def _enter_except_clause(self, e: PythonError) -> bool:
        """The instruction just run raised `e`: if this frame's handler for it is `except <cls>:` (no `as`, a
        class from the globals or builtins that `e` is an instance of), go on with the clause's body, as CPython
        would after PUSH_EXC_INFO, CHECK_EXC_MATCH and POP_TOP; the stack keeps a stand-in for the exception info
        PUSH_EXC_INFO saved, which POP_EXCEPT drops. Anything else: False (the break runs the raise for real)."""
        index = self.ip - 1
        found = handlers(self.code)[index]
        if found is None or found[2] or found[1] > len(self.stack):
            return False
        if e.exc_type is AttributeError and (self.last_attr is None or self.last_attr[0] != index):
            return False  # only this frame's own lookup, whose absence can be guarded as hasattr guards it
        target, depth, _ = found
        ops = [i.opname for i in self.insts[target:target + 5]]
        if len(ops) < 5 or ops[0] != "PUSH_EXC_INFO" or ops[1] != "LOAD_GLOBAL" or ops[2] != "CHECK_EXC_MATCH" or \
                not (ops[3].startswith("POP_JUMP") and ops[3].endswith("IF_FALSE")) or ops[4] != "POP_TOP":
            return False
        name = self.insts[target + 1].arg[1]
        if name in self.f_globals:
            caught = self.f_globals[name]
        elif name in self.f_builtins:
            caught = self.f_builtins[name]
        else:
            return False
        if not (isinstance(caught, type) and issubclass(caught, BaseException) and issubclass(e.exc_type, caught)):
            return False
        if e.exc_type is AttributeError:
            from jit.semantics.builtins_impl import _guard_absent
            _guard_absent(self, self.last_attr[1], self.last_attr[2])  # stays missing, or a break here
        self.inst = self.insts[target + 1]
        HANDLERS["LOAD_GLOBAL"](self, self.inst)  # reads (and guards) the class as the handler does
        self.pop()
        if self.insts[target + 1].arg[0]:
            self.pop()  # the NULL pushed with it
        del self.stack[found[1]:]
        self.push(Const(None))  # what PUSH_EXC_INFO saved: no exception was being handled (see POP_EXCEPT)
        self.in_clause.append((index, self.visits.get(index, 1)))
        self.jump(target + 5)
        return True

    def jump(self, target: int) -> None:
        self.ip = target

    # ---- cells -----------------------------------------------------------------------------------------------------

    def cell(self, name: str):
        c = self.cells.get(name)
        if c is None:
            c = self.cells[name] = CellVar(self.locals.pop(name, None))
        return c

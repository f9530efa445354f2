"""The symbolic executor: runs a frame's bytecode over Vars instead of values.

One Translator per Python frame, the inlined callees included (they share the OutputGraph, so a whole call tree
becomes one graph). Handlers live in jit/opcodes; the meaning of operations (calls, attributes, operators) in
jit/semantics."""
from __future__ import annotations

import itertools
import os
from types import CodeType

from jit.break_reasons import AttributeMissing, PythonError, Unsupported, unsupported
from jit.instructions import Inst, caught_in_frame, decode, handlers
from jit.opcodes import HANDLERS
from jit.output_graph import OutputGraph
from jit.resume import entry_of
from jit.variables import CellVar, Const, Var
from jit.variables.builder import Builder

MAX_INSTRUCTIONS = 200_000  # per compiled frame, inlined callees included
MAX_INLINE_DEPTH = 24
_SERIALS = itertools.count()  # Translator.serial


class StopBeforeBreak(Exception):
    """Pass 2 of a graph break reached the instruction that broke in pass 1: the state is ready to emit."""


class Translator:
    def __init__(self, output: OutputGraph, code: CodeType, f_globals: dict, f_builtins: dict,
                 local_vars: dict[str, Var], cells: dict, *, globals_namespace: dict | None, trusted: bool = False,
                 parent: Translator | None = None):
        self.output = output
        self.code = code
        self.serial = next(_SERIALS)  # this frame instance among all traced (cleanup_lines: whose cleanup it is)
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
        # Exceptions raised in the trace and followed to this frame's handlers (_throw): the exception-info stack
        # PUSH_EXC_INFO and POP_EXCEPT keep, as (exception, origin) pairs, and the last raise (RERAISE goes on
        # with its origin). An origin is the top-level (index, visit) a break runs for real while the exception
        # is live: the exception exists only in the trace, so its raise must happen for real, and the handler
        # after it (a resume function starting there).
        self.handling: list[tuple[Var, tuple[int, int]]] = []
        self.last_raise: tuple[Var, tuple[int, int]] | None = None
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

    def call_stack(self) -> list:
        """The traced call chain from the compiled frame down to this one, each at its current line."""
        from jit.break_reasons import StackFrame
        frames, tx = [], self
        while tx is not None:
            frames.append(StackFrame(tx.code, tx.inst.lineno if tx.inst is not None and tx.inst.lineno
                                     else tx.code.co_firstlineno))
            tx = tx.parent
        return frames[::-1]

    def short_location(self) -> str:
        line = self.inst.lineno if self.inst is not None else self.code.co_firstlineno
        return f"{os.path.basename(self.code.co_filename)}:{line}"

    def run(self) -> Var:
        previous, self.output.translator = self.output.translator, self  # the frame whose op is being recorded
        try:
            return self._run()
        finally:
            self.output.translator = previous

    def in_try(self, raised: tuple = ()) -> bool:
        """Whether an exception raised by the current instruction would be caught by a try in this frame or in
        one of the frames it was inlined into (there, at the call being inlined). A resume function that starts
        inside a try counts as in it throughout: its graph call is wrapped in that try's handler (an error from
        the graph is taken as raised by its first instruction), so an op recorded after the try ended would be
        caught by it too (fuzz seed 213729: `x % t` after the try was swallowed by its `except`).
        `raised`: the exception classes the instruction may raise; a try whose except clauses name only builtin
        classes catching none of them does not count (transformers' static KV cache: `index_copy_` inside
        `try: ... except NotImplementedError:`)."""
        tx = self
        while tx is not None:
            if tx.ip > 0 and caught_in_frame(tx.code, tx.ip - 1, raised, tx.builtin_named):
                return True
            if tx.parent is None:
                entry = entry_of(tx.code)
                if entry is not None and caught_in_frame(entry[0], entry[1], raised, tx.builtin_named):
                    return True
            tx = tx.parent
        return False

    def builtin_named(self, name: str):
        """The builtin a global name read in this frame resolves to now (None where a global of that name
        exists: a module may shadow a builtin)."""
        return None if name in self.f_globals else self.f_builtins.get(name)

    def cleanup_lines(self) -> set:
        """(frame instance, code, line) of the cleanup code eager runs when the current instruction raises: each
        handler block covering it, in this frame and the frames it was inlined into, up to the block's first
        RERAISE. CPython compiles a `finally` body (a `with`'s exit) twice, on the normal path and in the handler,
        at the same lines: a write made on the normal path at one of these lines, in the same call of the
        function, is one the error path makes too (another call of the same wrapper is not)."""
        lines: set = set()
        tx = self
        while tx is not None:
            handler = handlers(tx.code)[tx.ip - 1] if tx.ip > 0 else None
            if tx.parent is None and handler is not None and handler == self.output.real_handler:
                handler = None  # the block a resume function starts in: its cleanup runs for real on the error
            if handler is not None:
                for inst in tx.insts[handler[0]:]:
                    lines.add((tx.serial, tx.code, inst.lineno))
                    if inst.opname == "RERAISE":
                        break
            tx = tx.parent
        return lines

    def at_lines(self, lines: set) -> bool:
        """Whether this frame, or a frame it was inlined into, is at one of `lines` (cleanup_lines' triples)."""
        tx = self
        while tx is not None:
            if tx.inst is not None and (tx.serial, tx.code, tx.inst.lineno) in lines:
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
                    if not self._throw(e):
                        raise
            return self.return_value
        except Unsupported as e:
            if not e.stack:
                e.set_stack(self.call_stack())
            if top and e.break_at is None:
                # Where the top-level frame was when it happened: the instruction to run for real after a break
                # (for a failure inside an inlined call, the call itself: the callee then runs on its own). While
                # an exception raised in the trace is live (an except clause entered without a break, or the
                # exception leaving the frame), the instruction that raised it: the clause cannot be resumed
                # (the exception it handles exists only here), so the raise runs for real.
                if isinstance(e, PythonError) and e.origin is not None:
                    e.break_at = e.origin
                else:
                    e.break_at = self.handling[0][1] if self.handling else self._here()
            raise

    def _here(self) -> tuple[int, int]:
        return self.ip - 1, self.visits.get(self.ip - 1, 1)

    def _throw(self, e: PythonError) -> bool:
        """The instruction just run raised `e`: go on at this frame's handler for it, as CPython's exception table
        sends it (the stack cut to the handler's depth, the raising offset where the handler asks for it, the
        exception); the handler's instructions (PUSH_EXC_INFO, CHECK_EXC_MATCH, POP_EXCEPT, RERAISE) then run
        as any others (jit/opcodes/exceptions.py). False if no handler of this frame covers the instruction: the
        exception leaves the frame (to the caller it is inlined into, or, at the top, a break at its origin)."""
        index, exc = self.ip - 1, e.value
        if self.handling:  # raised while handling another (in an except clause or a finally)
            e.origin = self.handling[0][1]
        elif self.insts[index].opname == "RERAISE" and self.last_raise is not None and self.last_raise[0] is exc:
            e.origin = self.last_raise[1]  # going on after its clause's cleanup (COPY 3; POP_EXCEPT; RERAISE 1)
        else:
            e.origin = self._here()
        self.last_raise = (exc, e.origin)
        found = handlers(self.code)[index]
        if found is None or found[1] > len(self.stack):
            return False
        if isinstance(e, AttributeMissing):
            if self.last_attr is None or self.last_attr[0] != index:
                return False  # only this frame's own lookup, whose absence can be guarded as hasattr guards it
            from jit.semantics.builtins_impl import _guard_absent
            _guard_absent(self, self.last_attr[1], self.last_attr[2])  # stays missing, or a break here
        target, depth, push_lasti = found
        del self.stack[depth:]
        if push_lasti:
            self.push(Const(index))  # f_lasti for RERAISE to restore: nothing here reads it
        self.push(exc)
        self.jump(target)
        return True

    def current_exception(self) -> Var | None:
        """The exception a bare `raise` re-raises: the one handled innermost, here or in a frame this one is
        inlined into (Python keeps one exception-info stack per thread). A generator's frame stops the search:
        Python links it to whichever frame resumes it, not the one that made it (None: not modelled)."""
        tx = self
        while tx is not None:
            if tx.handling:
                return tx.handling[-1][0]
            if tx.is_generator:
                return None
            tx = tx.parent
        return None

    def jump(self, target: int) -> None:
        self.ip = target

    # ---- cells -----------------------------------------------------------------------------------------------------

    def cell(self, name: str):
        c = self.cells.get(name)
        if c is None:
            c = self.cells[name] = CellVar(self.locals.pop(name, None))
        return c

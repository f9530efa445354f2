"""Emit the replacement code object for a captured frame (with the `bytecode` package).

    [COPY_FREE_VARS] RESUME
    compiled(<each graph input, loaded from its source>)  ->  UNPACK into __jit_out_<i>
    <rebuild the return value: outputs, constants, objects loaded from their sources, containers>
    RETURN_VALUE

The code keeps the original's name, file, first line and free variables, takes the frame's argument vector
(jit.calling_convention), and has no cell variables of its own (arguments are only read): the frame's cells,
the nested functions over them and objects made in the traced code are built once, as real objects, right after
the graph call (ValueBuilder.prepare), and writes to outside cells are stored back there."""
from __future__ import annotations

import contextvars
import inspect
import types
from dataclasses import dataclass, field
from types import CodeType

import bytecode as bc
import torch

from framejit.guards.sources import LocalSource, Source
from jit.break_reasons import unsupported
from jit.calling_convention import argument_names
from jit.emitter import Emitter
from jit.pyversion import PY311, forward_jump
from jit.rebuild import (advance_iterator, call_function, exhausted_generator, iterator_at, patch_dict, patch_list,
                         rebuild_object, replace_dict_items, replace_list_items)
from jit.resume import NULL_SLOT, VALUE, param_order, stack_arg
from jit.semantics.context_managers import ExitVar
from jit.side_effects import AT_ENTRY, DELETED, ContextVarLog, SideEffects
from jit.variables import (NULL, BoundMethodVar, CellVar, Const, ContainerIteratorVar, DictVar, DictViewVar,
                           ExceptionVar, GeneratorVar, IteratorVar, ListVar, MethodOnVar, ModuleVar, NamedTupleVar,
                           NestedFunctionVar, NewObjectVar, ObjectVar, SetVar, TokenVar, TupleVar, UserFunctionVar, Var)
from jit.variables.base import KnownObject, LazyArg
from jit.variables.containers import _from_tuple
from jit.variables.functions import ExternalCell
from jit.variables.outside import DELETED as DELETED_KEY, OutsideListVar, lazy
from jit.variables.floats import FloatVar
from jit.variables.sizes import SizeVar
from jit.variables.tensor import ItemCompareVar, TensorMethodVar, TensorVar
from jit import var_graph
from jit.var_graph import MUTABLE_CONST, children_first, reachable


@dataclass
class FrameCells:
    """The frame's closure cells at the end of a capture: `own` are its cell variables (name -> CellVar; the
    replacement code makes them real cells, shared by the nested functions it rebuilds and handed to the resume
    function), `external` the real cells the capture read or wrote (ExternalCell; writes are stored back)."""
    own: dict = field(default_factory=dict)
    external: list = field(default_factory=list)
    effects: SideEffects = field(default_factory=SideEffects)  # changes to outside objects (jit/side_effects.py)

    def written(self) -> list:
        return [c for c in self.external if c.written is not ExternalCell.UNWRITTEN]

    def roots(self) -> list:
        """Values the replacement code may have to build because of cells and side effects."""
        return list(self.own.values()) + [c.written for c in self.written() if c.written is not ExternalCell.DELETED] \
            + self.effects.roots()


def _placed_after_effects(v) -> bool:
    """A loop in progress over an outside list: its position counts the items the list has once the side effects
    are written (an append before the loop), so it is built after them, not with the values built before."""
    return isinstance(v, ContainerIteratorVar) and getattr(v.container, "source", None) is not None


class ValueBuilder:
    """Emits code that pushes the value a Var stands for (a return value, a stack entry, a local)."""

    def __init__(self, em: Emitter, output_slot: dict, tag: str = ""):
        self.em = em
        self.tag = tag  # in the names of the locals it makes, apart from another builder's in the same code
        self.output_slot = output_slot  # fx node -> local name holding that graph output
        self.made: dict[int, str] = {}  # id(CellVar / NestedFunctionVar) -> local holding the real object
        self._unfilled: list[CellVar] = []

    # ---- cells and nested functions: made once each, before anything can call them ----------------------------

    def prepare(self, roots, cells: FrameCells) -> None:
        """Make every cell and nested function reachable from `roots` and the frame's cells (a function only once,
        so two variables holding it hold one object; cells empty first and filled after, so a function may sit
        in its own cell), then store what the capture wrote into outside cells. Runs before the instruction at a
        break, which may call those functions for real."""
        everything = list(roots) + cells.roots()
        every = reachable(everything)
        shared = var_graph.shared(everything, every)
        for v in children_first(everything):
            if isinstance(v, CellVar):
                self._cell_slot(v)
            elif isinstance(v, NestedFunctionVar):
                self._function_slot(v)
            elif id(v) in shared and id(v) not in self.made and not _placed_after_effects(v):
                # one object however many variables hold it (an object made in the traced code and entered with
                # `with`, a list two names share): built once, here, on the one path every branch below shares
                self.push(v)
                slot = self.made[id(v)] = f"__jit_obj{self.tag}_{len(self.made)}"
                self.em.emit("STORE_FAST", slot)
        while self._unfilled:
            c = self._unfilled.pop()
            if c.contents is not None:
                self.push(c.contents)
                self.em.emit("LOAD_FAST", self.made[id(c)])
                self.em.emit("STORE_ATTR", "cell_contents")
        for c in cells.written():
            if c.written is ExternalCell.DELETED:
                self.cell(c)
                self.em.emit("DELETE_ATTR", "cell_contents")
            else:
                self.push(c.written)
                self.cell(c)
                self.em.emit("STORE_ATTR", "cell_contents")

    def apply_effects(self, effects: SideEffects, live: list) -> None:
        """Write the final state of every outside object the traced code changed (jit/side_effects.py): a list's
        items, a dict's items (in their order), attributes set or deleted through object.__setattr__, ContextVars.
        What is written was built first (snapshot), so no write changes what another one reads. `live`: what the
        code builds after this (the return value, or the stack and locals at a break)."""
        em = self.em
        records = effects.records()
        context_vars = [r[1] for r in records if r[0] == "context_var"]
        # ContextVars first: another record may store a Token one of their sets returned. Every object written to
        # is loaded before anything is written (snapshot), so none is read through a value written before it: a
        # var's new value (ContextVarValueSource), or a list's new items (`xs.append([]); xs[-2].append(1)`
        # changes the list `xs[-1]` loads).
        self.snapshot(effects.roots() + effects.targets())
        if context_vars:
            kept = {id(v) for v in reachable(list(live) + effects.roots()) if isinstance(v, TokenVar)}
            for log in context_vars:
                self._context_var(log, kept)
        for record in records:
            if record[0] == "context_var":
                continue
            if record[0] == "advance":
                var = record[1]
                if not var.pos:
                    continue
                em.call_const(advance_iterator, lambda: (self.push(var), em.emit("LOAD_CONST", var.pos), 2)[-1])
            elif record[0] == "items":
                var = record[1]
                if lazy(var):
                    self._patch(var)
                elif isinstance(var, DictVar):
                    em.call_const(replace_dict_items, lambda: (self.push(var), self.push(DictVar(dict(var.items))),
                                                               2)[-1])
                else:
                    em.call_const(replace_list_items, lambda: (self.push(var), self._items(var.items, "BUILD_LIST"),
                                                               2)[-1])
            elif record[3] is DELETED:
                em.call_const(object.__delattr__, lambda: (self.push(record[1]), em.emit("LOAD_CONST", record[2]),
                                                           2)[-1])
            else:
                em.call_const(object.__setattr__, lambda: (self.push(record[1]), em.emit("LOAD_CONST", record[2]),
                                                           self.push(record[3]), 3)[-1])
            em.emit("POP_TOP")

        for v in reachable(list(live)):  # loops in progress over outside lists, placed once the lists are written
            if _placed_after_effects(v) and id(v) not in self.made:
                self.push(v)
                slot = self.made[id(v)] = f"__jit_obj{self.tag}_{len(self.made)}"
                em.emit("STORE_FAST", slot)

    def _patch(self, var) -> None:
        """A list or dict from outside changed but not read whole: its writes replayed (jit/rebuild.py)."""
        em = self.em

        def list_args() -> int:
            self.push(var)
            em.emit("LOAD_CONST", tuple(at for at, _ in var.writes))
            self._items([v for _, v in var.writes], "BUILD_LIST")
            em.emit("LOAD_CONST", var.dropped)
            self._items(var.tail, "BUILD_LIST")
            return 5

        def dict_args() -> int:
            self.push(var)
            em.emit("LOAD_CONST", tuple(k for k, _ in var.log))
            for _, v in var.log:
                em.emit("LOAD_CONST", DELETED_KEY) if v is DELETED_KEY else self.push(v)
            em.emit("BUILD_LIST", len(var.log))
            return 3

        em.call_const(patch_list, list_args) if isinstance(var, OutsideListVar) else em.call_const(patch_dict, dict_args)

    def _context_var(self, log: ContextVarLog, kept: set) -> None:
        """A ContextVar the traced code set: its final value set once (nothing when the calls left it as it was
        at entry); or, when a token the calls returned is used after this (`kept`: ids of live TokenVars), each
        call replayed for real, every Token kept in a local where the TokenVar pushes it."""
        em = self.em
        if not any(id(t) in kept for t in log.tokens()):
            if log.current is not AT_ENTRY:
                em.call_const(contextvars.ContextVar.set, lambda: (self.push(log.var), self.push(log.current), 2)[-1])
                em.emit("POP_TOP")
            return
        for call in log.calls:
            if call[0] == "set":
                _, value, token = call
                em.call_const(contextvars.ContextVar.set, lambda: (self.push(log.var), self.push(value), 2)[-1])
                slot = self.made[id(token)] = f"__jit_obj{self.tag}_{len(self.made)}"
                em.emit("STORE_FAST", slot)
            else:
                em.call_const(contextvars.ContextVar.reset, lambda: (self.push(log.var), self.push(call[1]), 2)[-1])
                em.emit("POP_TOP")

    def snapshot(self, roots) -> None:
        """Build each value in `roots` into a local now, before the instruction at a break runs: that instruction
        may change what a value is read from (`xs.insert(0, y)` changes `xs[0]`), and the resume function must get
        the values as they were when the frame reached it. Constants, the frame's own arguments, graph outputs and
        values already built are read where they are."""
        for v in roots:
            if v is NULL or id(v) in self.made or isinstance(v, (Const, CellVar, ExternalCell, NestedFunctionVar,
                                                                 ExitVar, TokenVar)):
                continue
            if isinstance(v, (TensorVar, SizeVar)) and v.node in self.output_slot:
                continue
            if isinstance(getattr(v, "source", None), LocalSource):
                continue
            if _placed_after_effects(v):
                continue
            self.push(v)
            slot = self.made[id(v)] = f"__jit_obj{self.tag}_{len(self.made)}"
            self.em.emit("STORE_FAST", slot)

    def cell(self, c) -> None:
        """Push the real cell of a CellVar (made on first use, filled by prepare) or of an ExternalCell (from its
        source)."""
        if isinstance(c, ExternalCell):
            self.em.load_source(c.cell_source)
        else:
            self.em.emit("LOAD_FAST", self._cell_slot(c))

    def _cell_slot(self, c: CellVar) -> str:
        """The local holding the real cell of `c`, made empty on first use (prepare fills it)."""
        slot = self.made.get(id(c))
        if slot is None:
            slot = self.made[id(c)] = f"__jit_cell{self.tag}_{len(self.made)}"
            self.em.call_const(types.CellType, lambda: 0)
            self.em.emit("STORE_FAST", slot)
            self._unfilled.append(c)
        return slot

    def _function_slot(self, v: NestedFunctionVar) -> str:
        """The local holding FunctionType(code, globals, name, defaults, closure) as MAKE_FUNCTION made it in the
        traced code, made on first use."""
        em = self.em
        slot = self.made.get(id(v))
        if slot is None:
            def args():
                em.emit("LOAD_CONST", v.code)
                em.emit("LOAD_CONST", v.globals)
                em.emit("LOAD_CONST", v.code.co_name)
                if v.defaults:
                    self._items(list(v.defaults), "BUILD_TUPLE")
                else:
                    em.emit("LOAD_CONST", None)
                if v.closure:
                    for c in v.closure:
                        self.cell(c)
                    em.emit("BUILD_TUPLE", len(v.closure))
                else:
                    em.emit("LOAD_CONST", None)
                return 5
            em.call_const(types.FunctionType, args)
            slot = self.made[id(v)] = f"__jit_fn{self.tag}_{len(self.made)}"
            em.emit("STORE_FAST", slot)
            if v.kwdefaults:
                self.push(DictVar(v.kwdefaults))
                em.emit("LOAD_FAST", slot)
                em.emit("STORE_ATTR", "__kwdefaults__")
        return slot

    def push(self, v: Var) -> None:
        em = self.em
        if id(v) in self.made and not isinstance(v, CellVar):  # a cell's slot holds the cell, not its contents
            em.emit("LOAD_FAST", self.made[id(v)])
        elif isinstance(v, NestedFunctionVar):
            em.emit("LOAD_FAST", self._function_slot(v))
        elif isinstance(v, (CellVar, ExternalCell)):
            self.cell(v)
        elif isinstance(v, (TensorVar, SizeVar)):
            slot = self.output_slot.get(v.node)
            if slot is not None:
                em.emit("LOAD_FAST", slot)
            elif v.node.op == "placeholder" and v.source is not None:
                em.load_source(v.source)
            else:
                raise AssertionError(f"tensor {v} is neither an output nor an input")
        elif isinstance(v, FloatVar):  # a compiled float handed back to Python: its graph value's number
            self.push(v.tensor)
            em.load_method("item")
            em.call(0)
        elif isinstance(v, ItemCompareVar):  # jit/branch_condition.py
            self.push(v.tensor)
            em.load_method("item")
            em.call(0)
            em.emit("LOAD_CONST", v.number)
            em.emit("COMPARE_OP", v.op)
        elif isinstance(v, (TupleVar, ListVar, DictVar)) and v.source is not None:
            # an outside container (never mutated symbolically: that is a break): the object itself, not a copy
            em.load_source(v.source)
        elif isinstance(v, NamedTupleVar):
            if _from_tuple(v.cls):  # structseq, torch.Size: cls(tuple)
                em.call_const(v.cls, lambda: (self._items(v.items, "BUILD_TUPLE"), 1)[-1])
            else:
                em.call_const(v.cls, lambda: (self._push_all(v.items), len(v.items))[-1])
        elif isinstance(v, TupleVar):
            self._items(v.items, "BUILD_TUPLE")
        elif isinstance(v, ListVar):
            self._items(v.items, "BUILD_LIST")
        elif isinstance(v, DictVar):
            for k, item in v.items.items():
                em.emit("LOAD_CONST", k)
                self.push(item)
            em.emit("BUILD_MAP", len(v.items))
            if v.cls is not dict:
                raise AssertionError("dict subclasses are not rebuilt")
        elif isinstance(v, NewObjectVar):
            def args():
                em.emit("LOAD_CONST", v.cls)
                for k, item in v.attrs.items():
                    em.emit("LOAD_CONST", k)
                    self.push(item)
                em.emit("BUILD_MAP", len(v.attrs))
                if v.dict_var is None:
                    return 2
                self.push(DictVar(dict(v.dict_var.items)))
                return 3
            em.call_const(rebuild_object, args)
        elif isinstance(v, ExceptionVar):
            if v.raised:  # eager's object carries a traceback and context a new one would lack
                unsupported("exception", f"{v.describe()} raised in the trace outlives its except clause")
            em.call_const(call_function, lambda: (em.emit("LOAD_CONST", v.cls), self._items(v.args, "BUILD_TUPLE"),
                                                  self.push(DictVar(v.kwargs)), 3)[-1])
        elif isinstance(v, IteratorVar) and v.source is not None:  # the outside iterator itself (advanced already)
            em.load_source(v.source)
        elif isinstance(v, IteratorVar):  # a loop in progress: iterate over what is left
            em.call_const(iter, lambda: (self._items(v.items[v.pos:], "BUILD_TUPLE"), 1)[-1])
        elif isinstance(v, SetVar):  # built in Python's order where it is known (a set of constants)
            items = v.ordered() if v.shadow is not None else list(v.items.values())
            if v.frozen:
                em.call_const(frozenset, lambda: (self._items(items, "BUILD_TUPLE"), 1)[-1])
            else:
                self._items(items, "BUILD_SET")
        elif isinstance(v, DictViewVar):  # the real live view over the real dict
            self.push(v.dict_var)
            em.load_method(v.kind)
            em.call(0)
        elif isinstance(v, ContainerIteratorVar):
            if v.size is not None and len(v.dict_items()) != v.size:
                # its next step raises "dictionary changed size"; one made over the rebuilt dict would not
                unsupported("exception", "RuntimeError: dictionary changed size during iteration")
            if not v.exhausted and v.pos > v.container_length():
                # a list that shrank below the iterator's index: a real iterator cannot be placed past the end
                unsupported("unsupported_value", f"{v.describe()} is past the end of its list")
            pos = -1 if v.exhausted else v.pos
            em.call_const(iterator_at, lambda: (self.push(v.container), em.emit("LOAD_CONST", pos), 2)[-1])

        elif isinstance(v, GeneratorVar):
            self._generator(v)
        elif isinstance(v, LazyArg):  # an argument the traced code never looked at: pass it through
            em.load_source(v.source)
        elif isinstance(v, Const):
            if isinstance(v.value, MUTABLE_CONST):  # a fresh object per call, as the original code makes
                em.call_const(type(v.value), lambda: (em.emit("LOAD_CONST", tuple(v.value) if not isinstance(
                    v.value, dict) else tuple(v.value.items())), 1)[-1])
            else:
                em.emit("LOAD_CONST", v.value)
        elif v.source is not None:
            em.load_source(v.source)
        elif isinstance(v, KnownObject):
            em.emit("LOAD_CONST", v.value)
        elif isinstance(v, UserFunctionVar):
            em.emit("LOAD_CONST", v.fn)
        elif isinstance(v, BoundMethodVar):  # e.g. a user `with`'s __exit__ carried to the next resume function
            em.call_const(types.MethodType, lambda: (self.push(v.fn), self.push(v.self_var), 2)[-1])
        elif isinstance(v, TensorMethodVar):  # `loss.backward` at a break on that call: bound again, for real
            self.push(v.tensor)
            em.load_attr(v.name)
        elif isinstance(v, MethodOnVar):
            # a method of an outside object (`log.append` at a break on that call), of a constant ("abc".index) or
            # of a container made here (the one object, see _children): bound again, for real
            em.load_attr_of(lambda: self.push(v.obj), v.name, v.generic)
        elif isinstance(v, (ModuleVar, ObjectVar)):
            unsupported("unsupported_value", f"returning {v.describe()} reached without a source")
        elif isinstance(v, TokenVar):  # needed before apply_effects made it (an attribute of a new object)
            unsupported("unsupported_value", f"{v.describe()} used before the ContextVar calls run for real")
        else:
            unsupported("unsupported_value", f"returning {v.describe()}")

    def _generator(self, v: GeneratorVar) -> None:
        """A real generator object where the traced code had one: never a plain iterator over its values, since
        its consumer may call send/throw/close (contextlib's managers throw the block's exception into it)."""
        em = self.em
        if v.state == "created":
            em.call_const(call_function, lambda: (self.push(v.fn), self._items(v.args, "BUILD_TUPLE"),
                                                  self.push(DictVar(v.kwargs)), 3)[-1])
        elif v.state == "done":
            em.call_const(exhausted_generator, lambda: 0)
        else:
            unsupported("generator", f"{v.describe()} is suspended part-way: its frame cannot be rebuilt")

    def _push_all(self, items):
        for item in items:
            self.push(item)

    def _items(self, items, build: str):
        self._push_all(items)
        self.em.emit(build, len(items))


def _start(original: CodeType, compiled, inputs: list[Source], outputs: list, lineno: int,
           entry: EntryHandler | None = None, on_error: SideEffects | None = None):
    """Prologue and the call of the compiled graph, its outputs unpacked into locals. With an `entry` handler the
    call is in an exception region whose handler (emitted by _entry_handler, label returned) continues the way
    the frame's first instruction raising would. With `on_error` (changes to outside objects made before the
    first op that may raise on its values, and none after: frame_compiler._effects_on_error), an exception from
    the graph first applies them, as eager had when it raised, then goes on."""
    em = Emitter(lineno)
    if original.co_freevars:
        em.emit("COPY_FREE_VARS", len(original.co_freevars))
    em.emit("RESUME", 0)
    slots, caught = {}, None
    if compiled is not None:
        def guarded(label: bc.Label, emit) -> None:
            region = bc.TryBegin(label, push_lasti=False, stack_depth=0)
            em.out.append(region)
            emit()
            em.out.append(bc.TryEnd(region))

        def call() -> None:
            em.call_const(compiled, lambda: (_load_inputs(em, inputs), len(inputs))[-1])

        if entry is not None:
            caught = bc.Label()
        if on_error is not None:
            failed, called = bc.Label(), bc.Label()
            guarded(failed, call)
            em.out.append(bc.Instr("JUMP_FORWARD", called))
            em.out.append(failed)  # [exception]: write the changes, raise it again (to `caught`, if any)
            apply = lambda: (ValueBuilder(em, {}, tag="e").apply_effects(on_error, []), em.emit("RERAISE", 0))
            guarded(caught, apply) if caught is not None else apply()
            em.out.append(called)
        elif caught is not None:
            guarded(caught, call)
        else:
            call()
        names = [f"__jit_out_{i}" for i in range(len(outputs))]
        em.emit("UNPACK_SEQUENCE", len(outputs))
        for name in names:
            em.emit("STORE_FAST", name)
        slots = {node: name for node, name in zip(outputs, names)}
    return em, ValueBuilder(em, slots), caught


def replacement_code(original: CodeType, compiled, inputs: list[Source], outputs: list, result: Var,
                     cells: FrameCells | None = None, entry: EntryHandler | None = None,
                     on_error: SideEffects | None = None) -> CodeType:
    """`compiled` is None when the graph does no work (the result is rebuilt from inputs and constants)."""
    em, values, caught = _start(original, compiled, inputs, outputs, original.co_firstlineno, entry, on_error)
    cells = cells or FrameCells()
    values.prepare([result], cells)
    if cells.effects:
        values.snapshot([result])
        values.apply_effects(cells.effects, [result] + cells.roots())
    values.push(result)
    em.emit("RETURN_VALUE")
    _entry_handler(em, values, original, entry, caught)
    return _assemble(original, em.out)


# Instructions a graph break can run for real: canonical opname -> (values popped, values pushed).
BREAKABLE = {
    "CALL": lambda i: (i.arg + 2, 1),
    "CALL_FUNCTION_EX": lambda i: (3 + (i.arg & 1), 1),
    "BINARY_SUBSCR": lambda i: (2, 1), "BINARY_OP": lambda i: (2, 1), "COMPARE_OP": lambda i: (2, 1),
    "IS_OP": lambda i: (2, 1), "CONTAINS_OP": lambda i: (2, 1), "BINARY_SLICE": lambda i: (3, 1),
    "UNARY_NEGATIVE": lambda i: (1, 1), "UNARY_NOT": lambda i: (1, 1), "UNARY_INVERT": lambda i: (1, 1),
    "LOAD_ATTR": lambda i: (1, 1), "STORE_ATTR": lambda i: (2, 0), "STORE_SUBSCR": lambda i: (3, 0),
    "DELETE_SUBSCR": lambda i: (2, 0), "BUILD_STRING": lambda i: (i.arg, 1), "GET_ITER": lambda i: (1, 1),
    "UNPACK_SEQUENCE": lambda i: (1, i.arg), "STORE_GLOBAL": lambda i: (1, 0),
    # `import m` / `from m import x` of a module not imported yet: the import runs for real (its module code is
    # never compiled: importlib's frames run with the hook suspended), the rest resumes compiled
    "IMPORT_NAME": lambda i: (2, 1),
    # `raise e` / `raise e from c`: the exception, made again as the trace made it (one the trace already raised
    # is never rebuilt), raised for real; a bare `raise` reaches here only where the trace handles no exception,
    # so it re-raises what the thread handles, as eager does. Nothing follows it but its handler.
    "RAISE_VARARGS": lambda i: (i.arg, 0),
    # A user's `with`: __enter__ runs here, for real; the resume function starts in the body with the bound
    # __exit__ and __enter__'s result on its stack, under the original's exception table for the block.
    "BEFORE_WITH": lambda i: (1, 2),
}
CONDITIONAL_JUMPS = ("POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE")


def break_code(original: CodeType, compiled, inputs: list[Source], outputs: list, stack: list, local_vars: dict,
               inst, index: int, kw_names, resume_for, handler=None, cells: FrameCells | None = None,
               entry: EntryHandler | None = None, on_error: SideEffects | None = None) -> CodeType:
    """Code for a frame split at instruction `index`: run the graph, rebuild the operands of `inst`, run it for
    real, then return what the resume function (for the rest of the frame) returns.

    `resume_for(target, null_mask, local_names)` gives the resume code object. If `inst` raises, open grad-mode
    `with` blocks are left as their __exit__ would (grad mode restored), and the exception goes to `handler`
    ((index, stack depth, push_lasti) of the frame's try/except/finally or user `with` cleanup that catches it:
    continued in a resume function that starts there) or to the caller.

    The frame's cells (`cells.own`) become real cells before the instruction runs, shared by the nested functions
    rebuilt from the capture, and are handed to the resume function as the free variables it has in their place
    (jit.resume.closure_names), so code before and after the break reads and writes the same variables."""
    lineno = inst.lineno or original.co_firstlineno
    cells = cells or FrameCells()
    em, values, entry_caught = _start(original, compiled, inputs, outputs, lineno, entry, on_error)
    values.prepare(list(stack) + list(local_vars.values()), cells)
    values.snapshot(list(stack) + list(local_vars.values()))
    values.apply_effects(cells.effects, list(stack) + list(local_vars.values()) + cells.roots())
    names = tuple(local_vars)

    exits = [v for v in stack if isinstance(v, ExitVar)]
    caught = bc.Label()
    region = bc.TryBegin(caught, push_lasti=False, stack_depth=0) if exits or handler is not None else None

    def leave_withs() -> None:
        """Set the grad mode the outermost open `with` found: what leaving every open `with` amounts to."""
        _set_grad_mode(em, exits[0].manager.prior)

    def begin_region() -> None:
        if region is not None:
            em.out.append(region)

    def end_region() -> None:
        if region is not None:
            em.out.append(bc.TryEnd(region))

    def call_resume(target: int, lower: list, results: list[str]) -> None:
        code = resume_for(target, _resume_slots(lower, results), names)
        if exits:  # the resume function re-enters each manager, and each __exit__ restores what __enter__ found
            leave_withs()
        _call_resume(em, values, original, code, cells, lower, results, local_vars)

    if inst.opname == "FOR_ITER":
        # The loop's iterator is a real object: step it for real. Next item: resume in the loop body with
        # [..., iterator, item]; exhausted: resume after the loop (3.11 pops the iterator and jumps to the target;
        # 3.12 also skips the instruction at the target, which must be END_FOR).
        lower, it = stack[:-1], stack[-1]
        exhausted = bc.Label()
        begin_region()
        values.push(it)
        em.out.append(bc.Instr("FOR_ITER", exhausted, lineno=lineno))
        end_region()
        em.emit("STORE_FAST", "__jit_r1")
        em.emit("STORE_FAST", "__jit_r0")
        call_resume(index + 1, lower, ["__jit_r0", "__jit_r1"])
        em.out.append(exhausted)
        if not PY311:
            em.emit("END_FOR")
        after = inst.target + 1 if not PY311 and _opname_at(original, inst.target) == "END_FOR" else inst.target
        call_resume(after, lower, [])
    elif inst.opname in CONDITIONAL_JUMPS:
        lower, cond = stack[:-1], stack[-1]
        jumped = bc.Label()
        begin_region()
        values.push(cond)
        # the jump goes forward to the second resume call here, whichever way the original's went (a `while`
        # loop's condition at its bottom jumps backward)
        em.out.append(bc.Instr(forward_jump(inst.opname), jumped, lineno=lineno))
        end_region()
        call_resume(index + 1, lower, [])
        em.out.append(jumped)
        call_resume(inst.target, lower, [])
    else:
        pops, pushes = BREAKABLE[inst.opname](inst)
        lower, operands = stack[:len(stack) - pops], stack[len(stack) - pops:]
        begin_region()
        for v in operands:
            em.emit("PUSH_NULL") if v is NULL else values.push(v)
        if inst.opname == "CALL":
            if kw_names:
                em.emit("KW_NAMES", tuple(kw_names))
            em.call(inst.arg)
        else:
            raw = inst.raw
            em.out.append(bc.Instr(raw.name, raw.arg, lineno=lineno) if raw.arg is not bc.UNSET else
                          bc.Instr(raw.name, lineno=lineno))
        end_region()
        after = index + 1
        if pushes == 1 and _opname_at(original, after) == "POP_TOP":  # a result thrown away (`print(...)`): not
            em.emit("POP_TOP")                                        # handed to the resume function to pop
            pushes, after = 0, after + 1
        if inst.opname != "RAISE_VARARGS":  # a raise never goes on: only its handler (below) resumes the frame
            results = [f"__jit_r{k}" for k in range(pushes)]
            for r in reversed(results):
                em.emit("STORE_FAST", r)
            call_resume(after, lower, results)
    if region is not None:  # the instruction raised: the exception is on the stack
        em.out.append(caught)
        if handler is None:
            leave_withs()
            em.emit("RERAISE", 0)
        else:
            target, depth, push_lasti = handler
            call_resume(target, stack[:depth], _store_caught(em, push_lasti))
    _entry_handler(em, values, original, entry, entry_caught)
    return _assemble(original, em.out)


def _call_resume(em: Emitter, values: ValueBuilder, original: CodeType, code: CodeType, cells: FrameCells,
                 lower: list, results: list[str], local_vars: dict) -> None:
    """Emits `return resume_in_...(<stack values>, <results>, <locals>)`: the resume function `code` made with the
    cells it continues with (its free variables, jit.resume.closure_names) as its closure."""
    em.emit("PUSH_NULL")
    if code.co_freevars:
        for free in code.co_freevars:
            if free in original.co_freevars:  # the frame's own closure (a resume function's: the same cells)
                em.emit("LOAD_CLOSURE", bc.FreeVar(free))
            else:
                values.cell(cells.own[free])
        em.emit("BUILD_TUPLE", len(code.co_freevars))
        em.emit("LOAD_CONST", code)
        em.emit("MAKE_FUNCTION", 0x08)
    else:
        em.emit("LOAD_CONST", code)
        em.emit("MAKE_FUNCTION", 0)
    # its parameters by name (jit.resume.resume_code orders them): stack slots, the instruction's results, locals
    pushes = {stack_arg(j): (lambda v=v: values.push(v)) for j, v in enumerate(lower) if _slot(v) == VALUE}
    pushes.update({stack_arg(len(lower) + k): (lambda r=r: em.emit("LOAD_FAST", r)) for k, r in enumerate(results)})
    pushes.update({name: (lambda v=v: values.push(v)) for name, v in local_vars.items()})
    params = param_order(original, _resume_slots(lower, results), tuple(local_vars))
    for name in params:
        pushes[name]()
    em.call(len(params))
    em.emit("RETURN_VALUE")


def _resume_slots(lower: list, results: list[str]) -> tuple:
    return tuple(_slot(v) for v in lower) + (VALUE,) * len(results)


def _store_caught(em: Emitter, push_lasti: bool) -> list[str]:
    """Store the exception a handler block caught; the locals holding what the handler expects on the stack."""
    em.emit("STORE_FAST", "__jit_exc")
    if not push_lasti:
        return ["__jit_exc"]
    # A `with` cleanup also expects the raising instruction's offset under the exception (RERAISE 2 only sets the
    # frame's line from it; the handler lookup uses RERAISE's own offset): the resume function's first
    # instruction stands in for it.
    em.emit("LOAD_CONST", 0)
    em.emit("STORE_FAST", "__jit_lasti")
    return ["__jit_lasti", "__jit_exc"]


def _set_grad_mode(em: Emitter, enabled: bool) -> None:
    em.call_const(torch._C._set_grad_enabled, lambda: (em.emit("LOAD_CONST", enabled), 1)[-1])
    em.emit("POP_TOP")


@dataclass
class EntryHandler:
    """What catches an exception raised by a resume function's graph call, before its first original instruction
    ran (a data-dependent error in a compiled op, inside a user `with` or a try the frame resumed in): the
    handler (index in the frame's code, stack depth, push_lasti), the stack and locals the frame started with
    (Vars loading its parameters, NULLs, re-entered grad-mode ExitVars), the entry grad mode, and resume_for."""
    target: int
    depth: int
    push_lasti: bool
    stack: list
    local_vars: dict
    grad_mode: bool
    resume_for: object


def _entry_handler(em: Emitter, values: ValueBuilder, original: CodeType, entry: EntryHandler | None,
                   caught: bc.Label | None) -> None:
    """The handler block for the graph call's region (see _start): as if the first instruction had raised, the
    exception continues in a resume function that starts in the frame's handler, grad mode as at entry."""
    if entry is None or caught is None:
        return
    em.out.append(caught)
    results = _store_caught(em, entry.push_lasti)
    _set_grad_mode(em, entry.grad_mode)
    lower = entry.stack[:entry.depth]
    code = entry.resume_for(entry.target, _resume_slots(lower, results), tuple(entry.local_vars))
    _call_resume(em, values, original, code, FrameCells(), lower, results, entry.local_vars)


def _slot(v: Var):
    """How a stack entry reaches the resume function: passed, re-pushed as NULL, or its `with` re-entered."""
    if v is NULL:
        return NULL_SLOT
    if isinstance(v, ExitVar):
        manager = v.manager
        args = (manager.enabled,) if manager.cls is torch.set_grad_enabled else ()
        return ("grad", manager.cls, args)
    return VALUE


def _opname_at(code: CodeType, index: int) -> str:
    from jit.instructions import decode
    return decode(code)[index].opname


def _assemble(original: CodeType, instructions: list) -> CodeType:
    code = bc.Bytecode(instructions)
    code.name = original.co_name
    code.qualname = original.co_qualname
    code.filename = original.co_filename
    code.first_lineno = original.co_firstlineno
    code.argnames = list(argument_names(original))
    code.argcount = len(code.argnames)
    code.posonlyargcount = 0
    code.kwonlyargcount = 0
    code.freevars = list(original.co_freevars)
    code.cellvars = []
    code.flags = (original.co_flags & ~(inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)) | inspect.CO_OPTIMIZED | \
        inspect.CO_NEWLOCALS
    if original.co_freevars:
        code.flags |= inspect.CO_NESTED
    return code.to_code()


def _load_inputs(em: Emitter, inputs: list[Source]) -> None:
    for source in inputs:
        em.load_source(source)

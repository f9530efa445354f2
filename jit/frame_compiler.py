"""Compile one frame: run its bytecode symbolically, hand the captured graph to the backend, emit the
replacement code and compile the guards into one check. Installed as the default frame compiler."""
from __future__ import annotations

import dis
import inspect
import io
import logging
import os
import re
from dataclasses import dataclass, field

import torch

from framejit.graph import fx_sources, meta_memo
from framejit.graph.dce import drop_unused
from framejit.guards.check import CompiledGuards, compile_guards
from framejit.guards.kinds import GradModeMatch, NoHooks, StateMatch, ValueMatch
from framejit.guards.sources import AttrSource, ClosureCellSource, ClosureSource, LocalSource
from jit import _C, backends, codegen, var_graph
from jit import explanation as explain_mod
from jit.branch_condition import item_compare
from jit.break_reasons import Unsupported
from jit.calling_convention import argument_names
from jit.code_maps import CodeMap
from jit.convert_frame import Frame, RunEagerly, Settings
from jit.config import config
from jit.counters import counters
from jit.eval_frame import CacheEntry
from jit.logs import get_logger
from jit import dynamic
from jit import autocast
from jit.dynamic import Specialize
from jit.output_graph import OutputGraph, has_work
from jit.instructions import decode
from jit.liveness import live_locals
from jit.side_effects import SideEffects
from jit.resume import NULL_SLOT, VALUE, entry_of, handler_of, origin, resume_code, stack_arg, super_self
from jit.semantics.context_managers import GRAD_MODE_CLASSES, ExitVar
from jit.translator import StopBeforeBreak, Translator
from jit.variables.functions import external_cell
from jit.variables import NULL, CellVar, Const, GradModeVar, NewObjectVar
from jit.variables.base import LazyArg
from jit.variables.floats import FloatVar
from jit.variables.sizes import SizeVar
from jit.variables.tensor import TensorVar

graph_log = get_logger("graph")
guards_log = get_logger("guards")
dynamic_log = get_logger("dynamic")
bytecode_log = get_logger("bytecode")
breaks_log = get_logger("graph_breaks")


@dataclass
class EntryInfo:
    """What jit keeps with a cache entry: for recompile reasons, explain() and logs."""
    name: str
    guards: CompiledGuards
    graph: torch.fx.GraphModule | None
    op_count: int
    fallback_reasons: list = field(default_factory=list)

    def why_failed(self, *args) -> str:
        return self.guards.why_failed(*args)

    def first_failure(self, *args) -> tuple[tuple, str]:
        return self.guards.first_failure(*args)


_ABSENT = object()


class _EffectsBeforeValueCheck(Exception):
    """Trace the frame again with ops that may raise on their values breaking the graph where changes to
    outside objects are pending (FrameCapture._effects_on_error)."""


class FrameCapture:
    """Capture one frame. Pass 1 traces to the end; if something cannot be captured at a top-level instruction
    that can run on its own, pass 2 traces again up to just before it, and the frame is split there (a graph
    break): the graph so far, that instruction run for real, and a resume function for the rest."""

    def __init__(self, frame: Frame, settings: Settings):
        self.frame = frame
        self.settings = settings
        self.dynamic = settings.dynamic is not False

    def run(self) -> CacheEntry:
        self.autocast_entry = autocast.entry_state()
        self.managers_opaque = False
        self.opaque_generator_withs: dict[int, str] = {}  # see OutputGraph.opaque_generator_withs
        self.break_value_checks = False  # see OutputGraph.break_value_checks_after_effects
        try:
            return self._run_checked()
        except Specialize as why:
            dynamic_log.debug("%s (%s): compiling for static sizes: %s", self.frame.name, self.frame.location, why)
            self.dynamic = False
            return self._run_checked()

    def _run_checked(self) -> CacheEntry:
        try:
            return self._run()
        except _EffectsBeforeValueCheck:
            self.break_value_checks = True
            return self._run()

    def _dynamic_dims(self, source, value) -> set:
        """Dims of an input tensor to trace symbolically (see jit/dynamic.py)."""
        if self.settings.dynamic:
            return set(range(value.dim()))
        return set(dynamic.marked_dims(value)) | dynamic.automatic_dims(self.frame.code).get(source.name(), set())

    def _run(self) -> CacheEntry:
        try:
            tx = self._trace()
        except Unsupported as e:
            if (self.output.autocast.open_blocks or self.output.open_contexts) and not self.managers_opaque \
                    and not self.settings.fullgraph:
                # a break inside a traced autocast or inference_mode block: the code after it must run in that
                # mode, so the frame is traced again with those blocks entered for real (a break at each `with`)
                self.managers_opaque = True
                return self._run()
            open_withs = [at for at in self.output.open_generator_withs if at not in self.opaque_generator_withs]
            if open_withs and not self.settings.fullgraph:
                # a break (or an exception) inside a traced @contextmanager block: its generator would be left
                # suspended at the break, which cannot be rebuilt; trace again with those `with`s entered for real
                for at in open_withs:
                    self.opaque_generator_withs[at] = e.detail
                return self._run()
            if e.break_at is None or self.settings.fullgraph or not self._breakable(e):
                raise
            tx = self._trace(stop_before=e.break_at)
            return self._finish_break(tx, e)
        return self._finish_return(tx)

    def _trace(self, stop_before=None) -> Translator:
        frame = self.frame
        code, fn = frame.code, frame.function
        self.output = output = OutputGraph(frame_globals=fn.__globals__,
                                           dynamic_dims=self._dynamic_dims if self.dynamic else None)
        if self.settings.dynamic is not False:
            output.dynamic_floats = dynamic.dynamic_floats(code)
        output.guards.append(GradModeMatch(None, torch.is_grad_enabled()))
        entry = self.autocast_entry
        output.guards.append(StateMatch(None, autocast.entry_state, (), entry) if entry else
                             StateMatch(None, torch._C._is_any_autocast_enabled, (), False))
        output.autocast = autocast.AutocastState(entry)
        output.managers_opaque = self.managers_opaque
        output.break_value_checks_after_effects = self.break_value_checks
        output.own_kwargs = _own_kwargs(code)
        resumed = entry_of(code)  # a resume function starting inside a block: its graph's errors reach that
        output.real_handler = handler_of(code, resumed[1] + resumed[4]) if resumed else None  # block's handler
        output.opaque_generator_withs = self.opaque_generator_withs
        output.modules_by_structure = dynamic.modules_by_structure(code)
        output.read_iterators = not dynamic.iterators_opaque(code)
        shown = _stack_names.get(code, {})  # a resume function's stack values, by their names in the user's code
        tx_locals = {n: LazyArg(v, LocalSource(n, shown.get(n, ""))) for n, v in zip(argument_names(code), frame.args)}
        cells: dict = {}
        for name in code.co_cellvars:
            cells[name] = CellVar(tx_locals.pop(name, None))
        for i, (name, cell) in enumerate(zip(code.co_freevars, fn.__closure__ or ())):
            cells[name] = external_cell(output, cell, ClosureSource(i, name), ClosureCellSource(i, name))
        builtins_ = fn.__builtins__ if isinstance(fn.__builtins__, dict) else vars(fn.__builtins__)
        tx = Translator(output, code, fn.__globals__, builtins_, tx_locals, cells, globals_namespace=None)
        tx.stop_before = stop_before
        grad = self.entry_grad = torch.is_grad_enabled()
        for device, _ in entry:  # the trace decides every cast itself (jit/autocast.py)
            torch.set_autocast_enabled(device, False)
        meta_memo.set_directory(config.cache_dir)  # torch's Python meta kernels answered from disk (output_graph)
        try:
            tx.run()
        except StopBeforeBreak:
            pass
        finally:
            for context in reversed(output.open_contexts):  # a trace stopped inside an inference_mode block
                context.__exit__(None, None, None)
            torch._C._set_grad_enabled(grad)
            for device, _ in entry:
                torch.set_autocast_enabled(device, True)
        return tx

    def _breakable(self, e: Unsupported) -> bool:
        from jit.codegen import BREAKABLE, CONDITIONAL_JUMPS
        inst = decode(self.frame.code)[e.break_at[0]]
        return inst.opname in BREAKABLE or inst.opname in CONDITIONAL_JUMPS or inst.opname == "FOR_ITER"

    def _cells(self, tx: Translator) -> codegen.FrameCells:
        return codegen.FrameCells({n: tx.cells[n] for n in self.frame.code.co_cellvars if n in tx.cells},
                                  list(self.output.external_cells.values()), self.output.side_effects)

    def _compile_graph(self, live: list, cells: codegen.FrameCells) -> tuple:
        """Compile the graph with the tensors reachable from `live` and the frame's cells as outputs:
        (compiled or None, input sources, outputs)."""
        frame, output = self.frame, self.output
        output.sealed = True
        outputs = []
        for t in var_graph.reachable(list(live) + cells.roots()):  # (every Var inside a container is reached too)
            if isinstance(t, FloatVar):
                t = t.tensor  # a compiled float handed back: its 0-dim tensor, read with .item() (jit/codegen.py)
            if isinstance(t, (TensorVar, SizeVar)) and t.node.op != "placeholder" and t.node not in outputs:
                outputs.append(t.node)
        if not outputs and not has_work(output.graph):
            return None, [], [], None
        output.graph.output(tuple(outputs))
        drop_unused(output.graph)
        used = []
        for source, value, var in output.inputs:
            if var.node.users:
                used.append((source, value))
            else:
                output.graph.erase_node(var.node)
        if not has_work(output.graph):
            return None, [], [], None
        output.storage_guard(used)
        gm = torch.fx.GraphModule(torch.nn.Module(), output.graph, class_name=_class_name(frame.name))
        if graph_log.isEnabledFor(logging.DEBUG):
            graph_log.debug("captured graph of %s (%s):\n%s", frame.name, frame.location, gm.code)
        backend = backends.lookup_backend(self.settings.backend)
        compile_graph = backends.with_options(self.settings.options, backends.compile_graph)
        compiled = backends.with_options(self.settings.options, compile_graph(backend, gm, [v for _, v in used]))
        # the graph's casts are nodes; and nothing the call runs (our wrappers, the backend's code) is compiled
        compiled = _C.run_suspended(autocast.without_autocast(compiled, self.autocast_entry))
        counters.bump("graphs")
        return compiled, [s for s, _ in used], outputs, gm

    def _guards(self) -> CompiledGuards:
        frame = self.frame
        self.output.container_alias_guards()
        if self.output.hook_dicts:
            unique = {id(d): d for d in self.output.hook_dicts}
            self.output.guards.append(NoHooks(None, tuple(unique.values())))
        guards = compile_guards(self.output.guards, argument_names(frame.code),
                                name="guard_" + re.sub(r"\W", "_", frame.code.co_name))
        if guards_log.isEnabledFor(logging.DEBUG):
            guards_log.debug("guards of %s (%s):\n  %s", frame.name, frame.location, "\n  ".join(guards.describe()))
        return guards

    def _entry(self, code, guards, gm) -> CacheEntry:
        frame = self.frame
        if bytecode_log.isEnabledFor(logging.DEBUG):
            buf = io.StringIO()
            dis.dis(code, file=buf)
            bytecode_log.debug("generated bytecode of %s:\n%s", frame.name, buf.getvalue())
        op_count = sum(1 for n in gm.graph.nodes if n.op not in ("placeholder", "output")) if gm is not None else 0
        return CacheEntry(guards.fn, code, EntryInfo(frame.name, guards, gm, op_count))

    def _effects_on_error(self) -> SideEffects | None:
        """The changes to outside objects the generated code applies when the graph raises (an index out of
        range): the trace's own, where they are what eager leaves on an error at every op that may raise on its
        values (jit/error_states.py) and are built from inputs and constants (a value the graph computes does not
        exist when it raised); None where no such op follows a change. Else the frame is traced again with such
        ops breaking the graph where changes are pending or an error would run a cleanup."""
        output = self.output
        states, effects = output.error_states, output.side_effects
        if not states.records or not effects.pending(seen_outside=True) or states.nothing_on_error():
            return None
        buildable = var_graph.built_without_graph(effects.roots() + effects.targets()) and not any(
            r[0] == "context_var" for r in effects.records())
        if buildable and (states.exact(effects) or states.exact(effects, self._originals(effects, states))):
            return effects
        common = states.common_attrs(effects)
        if common is not None:
            # every such op leaves the same attributes (a global set around the model and reset by its finally),
            # the trace then writes more that eager does not reach on an error (a KV cache's new tensors): on an
            # error, apply what those ops leave
            at_error = effects.with_attrs_only(common)
            if var_graph.built_without_graph(at_error.roots() + at_error.targets()):
                return at_error
        if self.break_value_checks:
            raise AssertionError("changes pending at an op that may raise, though such ops break the graph")
        raise _EffectsBeforeValueCheck()

    def _originals(self, effects: SideEffects, states) -> dict:
        """Attributes the trace writes, some op that may raise coming before the first write, whose value at the
        call is the constant the trace leaves in the end (a global set and reset back around the model, an op
        before it: mBART's shift of the labels), guarded to stay that constant: an error at that op leaves them
        as the graph's changes do. (id, name) -> Const."""
        wanted, out = states.unwritten_at_some_op(effects), {}
        for record in effects.records():
            if record[0] != "attr" or (id(getattr(record[1], "obj", None)), record[2]) not in wanted:
                continue
            _, obj, name, value = record
            if obj.source is None or not isinstance(value, Const) or \
                    type(value.value) not in (type(None), bool, int, float, str):
                continue
            own = getattr(obj.obj, "__dict__", None)  # the instance's own value: a class default is not written back
            now = own.get(name, _ABSENT) if isinstance(own, dict) else _ABSENT
            if type(now) is type(value.value) and now == value.value:
                self.output.guards.append(ValueMatch(AttrSource(obj.source, name, generic=True), now))
                out[(id(obj.obj), name)] = value
        return out

    def _finish_return(self, tx: Translator) -> CacheEntry:
        result, cells = tx.return_value, self._cells(tx)
        on_error = self._effects_on_error()
        compiled, inputs, outputs, gm = self._compile_graph([result], cells)
        guards = self._guards()
        code = codegen.replacement_code(self.frame.code, compiled, inputs, outputs, result, cells,
                                        self._entry_handler(), on_error)
        return self._entry(code, guards, gm)

    def _finish_break(self, tx: Translator, e: Unsupported) -> CacheEntry:
        frame = self.frame
        index = e.break_at[0]
        inst = tx.insts[index]
        # Live locals are the original function's variables (a resume function's own ___stack parameters are
        # consumed by its prologue and are not variables of the code it continues).
        # Dead ones (written before read on every path from here) are left behind, except objects made in the
        # traced code, whose lifetime a finalizer could observe.
        original, at = origin(frame.code, index)
        live = live_locals(original, at)
        if live is not None and (first := super_self(original)) is not None:
            live = set(live) | {first}  # read by a zero-argument super() without being named
        local_vars = {k: v for k, v in tx.locals.items() if v is not NULL and k in original.co_varnames and
                      (live is None or k in live or isinstance(v, NewObjectVar))}
        handler = self._handler(tx.stack, index)
        if handler is False:
            # Inside a try whose own body opened a `with`, or an exception region we cannot re-enter: eager.
            breaks_log.debug("%s cannot be split at %s (inside try/except and with)", frame.name, e.location)
            raise e
        on_error = self._effects_on_error()
        try:
            cells = self._cells(tx)
            stack = list(tx.stack)
            if inst.opname in codegen.CONDITIONAL_JUMPS:
                stack[-1] = item_compare(stack[-1], stack[:-1] + list(local_vars.values()) + cells.roots(),
                                         self.output.inputs)
            compiled, inputs, outputs, gm = self._compile_graph(stack + list(local_vars.values()), cells)
            below = _operands_below(inst, stack, handler)
            at_line = f"{frame.code.co_filename}:{inst.lineno or frame.code.co_firstlineno}"

            def resume_for(target, mask, names):
                resumed = resume_code(frame.code, target, mask, names, inst.lineno)
                # its first stack slots are the frame's own stack below the instruction's operands (or below the
                # handler's depth): name them for messages by where their values came from
                caught = bool(handler) and target == handler[0]
                _name_stack_slots(resumed, stack[:below(target)], len(mask), caught, at_line)
                return resumed

            code = codegen.break_code(
                frame.code, compiled, inputs, outputs, stack, local_vars, inst, index, tx.kw_names, resume_for,
                handler, cells, self._entry_handler(), on_error)
        except Unsupported as why:
            breaks_log.debug("%s cannot be split at %s (%s); it runs eagerly", frame.name, e.location, why.detail)
            raise e from None
        counters.bump("graph_breaks")
        breaks_log.debug("Graph break in %s at %s: %s", frame.name, e.location, e.report())
        explain_mod.record_break(frame, e)
        return self._entry(code, self._guards(), gm)


    def _handler(self, stack: list, index: int):
        """Where an exception raised by the instruction run at a break goes. Grad-mode `with` blocks on the way
        out only restore the grad mode (the break code does that itself); past them: None (nothing catches it
        in this frame), or (handler index, stack depth, push_lasti) of what catches it: a try/except/finally, or
        the cleanup of a user's `with` block (its real __exit__ is on the stack and must see the exception); the
        break code then continues in a resume function that starts in that handler. False when neither fits."""
        code, at = origin(self.frame.code, index)
        insts = decode(code)
        open_withs = sum(isinstance(v, ExitVar) for v in stack)
        exits_passed = 0
        found = handler_of(code, at)
        while found is not None and found[2]:  # push_lasti: a `with` block's cleanup (or its re-raise block)
            target, depth, _ = found
            if insts[target].opname != "PUSH_EXC_INFO" or insts[target + 1].opname != "WITH_EXCEPT_START":
                return False
            if not 0 < depth <= len(stack):
                return False
            if not isinstance(stack[depth - 1], ExitVar):  # a user's manager: its cleanup runs __exit__
                break
            exits_passed += 1
            inner = handler_of(code, target)  # the cleanup's own re-raise block; what catches its re-raise:
            found = handler_of(code, inner[0]) if inner is not None else None
        if found is None:
            return None if exits_passed == open_withs else False
        target, depth, push_lasti = found
        if depth > len(stack) or sum(isinstance(v, ExitVar) for v in stack[:depth]) != open_withs - exits_passed:
            return False
        # as an index of the frame's code (a resume function has a prologue)
        return target + (index - at), depth, push_lasti

    def _entry_handler(self) -> codegen.EntryHandler | None:
        """For a resume function that starts inside a user `with` or a try: what catches an exception raised by
        its graph call (as if its first instruction had raised), from the stack and locals it started with."""
        info = entry_of(self.frame.code)
        if info is None:
            return None
        code, target, slots, local_names, shift = info
        stack = []
        for j, slot in enumerate(slots):
            if slot == VALUE:
                stack.append(LazyArg(None, LocalSource(stack_arg(j))))
            elif slot == NULL_SLOT:
                stack.append(NULL)
            else:  # a grad-mode `with` the prologue re-entered (the handler block sets the entry grad mode itself)
                _, cls, args = slot
                stack.append(ExitVar(GradModeVar(args[0] if args else GRAD_MODE_CLASSES[cls], cls)))
        handler = self._handler(stack, target + shift)
        if not handler:
            return None
        at, depth, push_lasti = handler
        lineno = decode(code)[at - shift].lineno or code.co_firstlineno
        local_vars = {n: LazyArg(None, LocalSource(n)) for n in local_names}
        return codegen.EntryHandler(at, depth, push_lasti, stack, local_vars, self.entry_grad,
                                    lambda t, mask, names: resume_code(self.frame.code, t, mask, names, lineno))


# resume code -> {its ___stackN parameter: what the user calls that value}, for guard messages (LocalSource.shown)
_stack_names = CodeMap()


def _operands_below(inst, stack: list, handler):
    """below(target): how many entries at the bottom of `stack` a resume function starting at `target` gets as
    they are (the rest of its stack slots are the instruction's results, or the exception a handler caught)."""
    if inst.opname == "FOR_ITER" or inst.opname in codegen.CONDITIONAL_JUMPS:
        pops = 1
    else:
        pops = codegen.BREAKABLE[inst.opname](inst)[0]
    return lambda target: handler[1] if handler and target == handler[0] else len(stack) - pops


def _name_stack_slots(code, lower: list, slots: int, caught: bool, location: str) -> None:
    """What the user would call each stack value a resume function gets: a value read from outside by its source
    (`self.loss_fct`, `layers[3]`), one computed in the trace or made by the break's instruction by where."""
    path, _, line = location.rpartition(":")
    where = f"{os.path.basename(path)}:{line}"
    names = {}
    for j, var in enumerate(lower):
        if var is not NULL and not isinstance(var, ExitVar):
            names[stack_arg(j)] = var.source.name() if var.source is not None else f"<value computed before {where}>"
    for j in range(len(lower), slots):
        names[stack_arg(j)] = f"<exception caught at {where}>" if caught else f"<result of {where}>"
    _stack_names[code] = names


def _class_name(name: str) -> str:
    return "Graph_" + "".join(c if c.isalnum() else "_" for c in name)



def compile_frame(frame: Frame, settings: Settings) -> CacheEntry:
    entry = None
    try:
        with fx_sources.recording() as made:
            entry = _capture(frame, settings)
    finally:
        # torch.fx keeps every generated forward's source: ours go with the entry (graph/fx_sources.py)
        if entry is None:
            fx_sources.drop(made)
        else:
            fx_sources.release_with(entry.data, made)
    return entry


def _capture(frame: Frame, settings: Settings) -> CacheEntry:
    try:
        entry = FrameCapture(frame, settings).run()
        explain_mod.record_entry(entry.data)
        return entry
    except Unsupported as e:
        counters.bump("frames_run_eagerly")
        breaks_log.debug("%s runs eagerly (%s): %s", frame.name, e.location or frame.location, e.report())
        explain_mod.record_break(frame, e)
        if settings.fullgraph:
            from jit.errors import GraphBreakError
            raise GraphBreakError(e.detail + f" ({e.kind.explanation})", e.location, e.kind.hint) from None
        raise RunEagerly(e.message()) from None


def _own_kwargs(code) -> str | None:
    """The name of the dict Python makes for a frame's **kwargs at each call, which nothing else holds while the
    frame starts; None for a resume function (its part of the frame before may have handed the dict out)."""
    if entry_of(code) is not None or not code.co_flags & inspect.CO_VARKEYWORDS:
        return None
    return code.co_varnames[code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & inspect.CO_VARARGS)]

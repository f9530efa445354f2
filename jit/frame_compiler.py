"""Compile one frame: run its bytecode symbolically, hand the captured graph to the backend, emit the
replacement code and compile the guards into one check. Installed as the default frame compiler."""
from __future__ import annotations

import dis
import io
import logging
import re
from dataclasses import dataclass, field

import torch

from guards.check import CompiledGuards, compile_guards
from guards.kinds import GradModeMatch
from guards.sources import ClosureSource, LocalSource
from jit import _C, backends, codegen
from jit import explanation as explain_mod
from jit.break_reasons import Unsupported
from jit.calling_convention import argument_names
from jit.convert_frame import Frame, RunEagerly, Settings
from jit.counters import counters
from jit.eval_frame import CacheEntry
from jit.logs import get_logger
from jit.output_graph import OutputGraph, has_work, remove_dead_code, tensors_in
from jit.translator import ExternalCell, Translator
from jit.variables import CellVar, Var
from jit.variables.base import LazyArg

graph_log = get_logger("graph")
guards_log = get_logger("guards")
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


class FrameCapture:
    def __init__(self, frame: Frame, settings: Settings):
        self.frame = frame
        self.settings = settings
        fn = frame.function
        self.output = OutputGraph(frame_globals=fn.__globals__)

    def run(self):
        frame, output = self.frame, self.output
        code, fn = frame.code, frame.function
        names = argument_names(code)
        output.guards.append(GradModeMatch(None, torch.is_grad_enabled()))
        tx_locals = {n: LazyArg(v, LocalSource(n)) for n, v in zip(names, frame.args)}
        cells: dict = {}
        for name in code.co_cellvars:
            cells[name] = CellVar(tx_locals.pop(name, None))
        for i, (name, cell) in enumerate(zip(code.co_freevars, fn.__closure__ or ())):
            cells[name] = ExternalCell(cell, ClosureSource(i, name))
        builtins_ = fn.__builtins__ if isinstance(fn.__builtins__, dict) else vars(fn.__builtins__)
        tx = Translator(output, code, fn.__globals__, builtins_, tx_locals, cells, globals_namespace=None)
        grad = torch.is_grad_enabled()
        try:
            result = tx.run()
        finally:
            torch._C._set_grad_enabled(grad)
        return self._finish(result)

    def _finish(self, result: Var) -> CacheEntry:
        frame, output = self.frame, self.output
        tensors = tensors_in(result)
        outputs = []
        for t in tensors:
            if t.node.op != "placeholder" and t.node not in outputs:
                outputs.append(t.node)
        compiled, gm, op_count = None, None, 0
        inputs = []
        if outputs or has_work(output.graph):
            output.graph.output(tuple(outputs))
            remove_dead_code(output.graph)
            used = []
            for source, value, var in output.inputs:
                if var.node.users:
                    used.append((source, value))
                else:
                    output.graph.erase_node(var.node)
            if has_work(output.graph):
                gm = torch.fx.GraphModule(torch.nn.Module(), output.graph, class_name=_class_name(frame.name))
                op_count = sum(1 for n in gm.graph.nodes if n.op not in ("placeholder", "output"))
                inputs = [s for s, _ in used]
                example_inputs = [v for _, v in used]
                if graph_log.isEnabledFor(logging.DEBUG):
                    graph_log.debug("captured graph of %s (%s):\n%s", frame.name, frame.location, gm.code)
                backend = backends.lookup_backend(self.settings.backend)
                compiled = _C.run_suspended(backend(gm, example_inputs))
                counters.bump("graphs")
            else:
                outputs = []
        guards = compile_guards(output.guards, argument_names(frame.code), name="guard_" + re.sub(r"\W", "_", frame.code.co_name))
        if guards_log.isEnabledFor(logging.DEBUG):
            guards_log.debug("guards of %s (%s):\n  %s", frame.name, frame.location, "\n  ".join(guards.describe()))
        code = codegen.replacement_code(frame.code, compiled, inputs, outputs if compiled else [], result)
        if bytecode_log.isEnabledFor(logging.DEBUG):
            buf = io.StringIO()
            dis.dis(code, file=buf)
            bytecode_log.debug("replacement bytecode of %s:\n%s", frame.name, buf.getvalue())
        info = EntryInfo(frame.name, guards, gm, op_count)
        return CacheEntry(guards.fn, code, info)


def _class_name(name: str) -> str:
    return "Graph_" + "".join(c if c.isalnum() else "_" for c in name)



def compile_frame(frame: Frame, settings: Settings) -> CacheEntry:
    try:
        entry = FrameCapture(frame, settings).run()
        explain_mod.record_entry(entry.data)
        return entry
    except Unsupported as e:
        counters.bump("frames_run_eagerly")
        breaks_log.debug("%s runs eagerly: %s", frame.name, e.message())
        explain_mod.record_fallback(frame, e)
        if settings.fullgraph:
            from jit.errors import GraphBreakError
            raise GraphBreakError(e.detail + f" ({e.kind.explanation})", e.location, e.kind.hint) from None
        raise RunEagerly(e.message()) from None

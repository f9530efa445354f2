"""The FX graph a frame's torch work is captured into, its inputs (each with a Source) and its guards.

Each torch call is run once on meta tensors to learn the result's shape, dtype, strides and requires_grad; the
real device is tracked beside it, because meta tensors have none."""
from __future__ import annotations

import collections
import operator
import re

import torch
import torch.fx
from torch.utils._pytree import tree_leaves

from framejit.graph import meta_memo
from framejit.graph.dce import drop_unused
from framejit.graph.effects import VALUE_ERRORS, is_impure, is_removable, may_raise_on_values
from framejit.graph.shape_prop import eager_layout
from framejit.guards.kinds import (AliasMatch, Guard, IdMatch, NotAlias, RequiresGradMatch, SizeRelation, StorageMatch, TensorMatch,
                          storage_pattern)
from framejit.guards.size_expr import BinOp, Dim, Num, combine
from framejit.guards.sources import ConstSource, LocalSource, ModuleDictSource, Source
from jit import autocast
from jit.break_reasons import Unsupported, unsupported
from jit import clamped_sizes
from jit.dynamic import Specialize, SymbolTable
from jit.eager_check import eager_error
from jit import mem_overlap
from jit.error_states import ErrorStates
from jit.side_effects import SideEffects
from jit.variables import Const, DictVar, ListVar, NamedTupleVar, NewObjectVar, TupleVar, Var
from jit.variables.outside import OutsideDictVar, OutsideListVar
from jit.variables.sizes import SizeSliceVar, SizeVar
from jit.variables.tensor import TensorVar

_STRUCTSEQ_BASES = (tuple,)
NUMEL = "numel"  # _size_source's marker: the result is a tensor's element count


class OutputGraph:
    def __init__(self, frame_globals: dict | None = None, dynamic_dims=None):
        self.frame_globals = frame_globals
        # dynamic_dims(source, tensor) -> the dims of an input tensor to trace symbolically (jit/dynamic.py)
        self.dynamic_dims = dynamic_dims
        self.symbols = SymbolTable()
        # the name of the frame's **kwargs when Python made that dict for this call (not a resume function's, which
        # an earlier part of the frame may have handed out): only the frame sees it
        self.own_kwargs: str | None = None
        self.dynamic = False  # any dynamic size so far: ops run a second time on perturbed meta tensors
        self.instructions = 0
        self.graph = torch.fx.Graph()
        self.tracer = torch.fx.proxy.GraphAppendingTracer(self.graph)
        self.guards: list[Guard] = []
        self.inputs: list[tuple[Source, torch.Tensor, TensorVar]] = []  # (how the replacement loads it, value, var)
        self.dynamic_floats: set = set()  # names of float sources compiled as inputs (jit/dynamic.py)
        self.float_inputs: dict = {}  # source name -> its FloatVar
        self._input_by_id: dict[int, TensorVar] = {}
        self._storages: dict[tuple, list] = {}  # (data_ptr, device) -> [(input, its example)]: _share_storage
        self._names: set[str] = set()
        self.external_cells: dict = {}  # id(real closure cell) -> jit.translator.ExternalCell (reads and writes)
        self.outside_containers: dict = {}  # id(list/tuple/dict from outside) -> (it, its Var): one Var per object
        self.side_effects = SideEffects()  # changes to outside objects, applied by the generated code
        self.dicts_read: set[int] = set()  # ids of outside objects whose __dict__ the trace holds (attributes.py)
        self.modules_by_structure = False  # set per frame (jit.dynamic.modules_by_structure)
        self.read_iterators = True  # iterators from outside read ahead (jit.dynamic.iterators_opaque)
        self.autocast = autocast.AutocastState(())  # set per frame from the entry state (jit/autocast.py)
        # traced `with torch.autocast(...)` / `with torch.inference_mode()` blocks run for real instead (a break
        # inside one: jit/frame_compiler.py traces the frame again)
        self.managers_opaque = False
        # what an error at each op that may raise on its values leaves in outside objects (jit/error_states.py);
        # and whether such an op must break the graph when changes to outside objects are pending (frame_compiler)
        self.error_states = ErrorStates()
        self.break_value_checks_after_effects = False
        self.side_effects.on_write = self._written
        self.real_handler = None  # the handler a resume function's graph errors reach for real (frame_compiler)
        self.open_contexts: list = []  # real InferenceMode contexts entered by the trace, left if it stops
        # @contextmanager `with`s of the top-level frame (BEFORE_WITH index -> why) entered for real, and those
        # traced that are open now (jit/semantics/context_managers.py)
        self.opaque_generator_withs: dict[int, str] = {}
        self.open_generator_withs: list[int] = []
        self.hook_dicts: list = []  # hook dicts of the identity-guarded modules inlined (guards.kinds.NoHooks)
        self.translator = None  # the jit.translator.Translator running now (set by its run())
        # set once the graph is being compiled: no guard or graph input may be added after (an outside container
        # read whole only then would lose them: jit/variables/outside.py)
        self.sealed = False

    # ---- inputs ----------------------------------------------------------------------------------------------

    def add_tensor_input(self, value: torch.Tensor, source: Source) -> TensorVar:
        existing = self._input_by_id.get(id(value))
        if existing is not None:
            if source != existing.source:  # (read again through the same source: `p.grad` twice)
                self.guards.append(AliasMatch(source, existing.source))
            return existing
        load = source
        if isinstance(source, ModuleDictSource) and source.store in ("_parameters", "_buffers") and not (
                self.modules_by_structure and source.root_is_local()):
            # Parameters and buffers: the same object as when compiled (one `is` per call). load_state_dict
            # copies into them in place, so new weights are seen without recompiling; the graph is handed the
            # object itself. A parameter replaced by another object fails the guard and recompiles.
            self.guards.append(IdMatch(source, value))
            self.guards.append(RequiresGradMatch(source, value.requires_grad))
            load = ConstSource(value, source.name())
            dims = ()
        else:
            dims = self._dynamic_dims_of(source, value)
            self.guards.append(TensorMatch(
                source, type(value), value.dtype, value.device,
                tuple(None if d in dims else n for d, n in enumerate(value.shape)),
                None if dims else tuple(value.stride()), value.requires_grad))
        name = re.sub(r"\W+", "_", source.name()).strip("_") or "input"
        name = self._unique(name if name.isidentifier() else "input_" + name)  # a listcomp's `.0` gives "0_1"
        proxy = self.tracer.create_proxy("placeholder", name, (), {})
        example = torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device="meta",
                                      requires_grad=value.requires_grad)
        if not isinstance(load, ConstSource):  # dynamic ones too: overlap is a fact at every size (fuzz 173465)
            self._share_storage(value, example)
        proxy.node.meta["val"] = example
        perturbed = None
        if dims:
            proxy.node.meta["dynamic_dims"] = dims
            sizes = [self.symbols.perturbed(n) if d in dims else n for d, n in enumerate(value.shape)]
            try:
                perturbed = torch.empty(sizes, dtype=value.dtype, device="meta", requires_grad=value.requires_grad)
            except RuntimeError as e:  # five dynamic dims at the second traced size: more bytes than an int64
                raise Specialize(f"{source.name()} at the second traced sizes {sizes}: {_first_line(e)}") from e
        var = TensorVar(proxy, example, value.device, source, type(value), perturbed)
        self.inputs.append((load, value, var))
        self._input_by_id[id(value)] = var
        return var

    def _value_checked(self, node, target) -> None:
        """An op that may raise depending on its values: if it raises, eager has made the changes to outside
        objects written before it and those of the cleanup around it (a finally, a `with`'s exit: transformers'
        forward wrappers set and reset a global around the model), and none after. The generated code applies the
        trace's changes when the graph raises (jit/codegen.py), which is exact when they are what eager leaves at
        every such op (jit/error_states.py); otherwise the frame is traced again with such ops breaking the graph
        where changes are pending or an error would run a cleanup (jit/frame_compiler.py), and the error reaches
        the real finally."""
        cleanup = self.translator.cleanup_lines() if self.translator is not None else set()
        pending = self.side_effects.pending(seen_outside=True)
        if self.break_value_checks_after_effects and (pending or cleanup):
            self.graph.erase_node(node)
            unsupported("value_checked_after_effects", f"{_name(target)} after changes to outside objects"
                        if pending else f"{_name(target)} where an error runs a finally / exit")
        self.error_states.op(self.side_effects, cleanup)

    def _written(self, kind: str, key) -> None:
        """A change to an outside object: one the cleanup around an earlier op that may raise makes (then eager
        makes it on that op's error path too), or one eager skips there."""
        at_lines = self.translator.at_lines if self.translator is not None else (lambda lines: False)
        self.error_states.written(self.side_effects, kind, key, at_lines)

    def changed_in_place(self, var: Var) -> None:
        """The traced code changes the items of `var`, a list or dict: fine for one made here; for one from
        outside (the frame's own **kwargs included) the change is recorded and applied after the graph runs."""
        if var.source is None:
            return
        real = var.real if isinstance(var, (OutsideListVar, OutsideDictVar)) else \
            next((value for value, v in self.outside_containers.values() if v is var), None)
        if type(real) not in (list, dict, collections.defaultdict):
            unsupported("side_effect", f"changing {var.describe()} that exists outside the function")
        private = isinstance(var.source, LocalSource) and var.source.local == self.own_kwargs
        self.side_effects.container_changed(var, real, private)

    def container_alias_guards(self) -> None:
        """A list or dict from outside that the trace changed is not the object any other list or dict it reached
        through another source is (NotAlias): the trace kept them apart (reads of one do not see writes to the
        other, and the writes are applied one object after the other), so one object passed twice recompiles."""
        changed = [v for v in self.side_effects.targets() if isinstance(v, (ListVar, DictVar))]
        done: set = set()
        for var in changed:
            done.add(id(var))
            for _, other in self.outside_containers.values():
                if id(other) not in done and other.python_type() is var.python_type() and other.source is not None:
                    self.guards.append(NotAlias(var.source, other.source))

    def _share_storage(self, value: torch.Tensor, example: torch.Tensor) -> None:
        """Inputs that share memory (a tensor and its view, handed to a resume function) get examples over one
        meta storage at the same relative offsets, so what the meta run and eager_check see of overlap (a copy
        between overlapping tensors raises; a write through one shows through the other) holds for the call.
        Each example of the group is re-pointed in place when a new member arrives: the storage must cover all."""
        storage = value.untyped_storage()
        if not storage.nbytes() or value.layout != torch.strided:
            return
        group = self._storages.setdefault((storage.data_ptr(), value.device), [])
        group.append((value, example))
        if len(group) < 2:
            return
        low = min(v.storage_offset() for v, _ in group)
        needed = storage.nbytes() - low * value.element_size()
        held = group[0][1].untyped_storage()
        with torch.no_grad():
            if held.nbytes() >= needed and all(ex.untyped_storage()._cdata == held._cdata and
                                               ex.storage_offset() == v.storage_offset() - low for v, ex in group[:-1]):
                # the members so far sit where they belong on their storage: the new one joins it, and views the
                # trace already made of them stay over the same storage (jit/mem_overlap.py compares storages)
                group[-1][1].set_(held, value.storage_offset() - low, value.size(), value.stride())
                return
            shared = torch.UntypedStorage(needed, device="meta")
            for v, ex in group:
                ex.set_(shared, v.storage_offset() - low, v.size(), v.stride())

    def storage_guard(self, used: list) -> None:
        """Guard which of a writing graph's tensor inputs share memory (StorageMatch); `used` is (source,
        value) per input the graph reads. Parameters are guarded by identity and skipped."""
        tensors = [(s, v) for s, v in used if isinstance(v, torch.Tensor) and not isinstance(s, ConstSource) and
                   v.layout == torch.strided]
        if len(tensors) < 2 or not any(n.meta.get("mutates") for n in self.graph.nodes):
            return
        (first, _), *rest = tensors
        self.guards.append(StorageMatch(first, tuple(s for s, _ in rest), storage_pattern([v for _, v in tensors])))

    def _dynamic_dims_of(self, source: Source, value: torch.Tensor) -> tuple:
        """Dims of an input traced symbolically: asked for, of size >= 2, on a contiguous tensor (its strides then
        follow from its sizes). Dims of equal size share a symbol, guarded to stay equal."""
        if self.dynamic_dims is None or not value.is_contiguous():
            return ()
        dims = tuple(sorted(d for d in self.dynamic_dims(source, value) if d < value.dim() and value.shape[d] >= 2))
        for d in dims:
            hint = value.shape[d]
            first = self.symbols.first_dim.setdefault(hint, Dim(source, d))
            if first != Dim(source, d):
                self.guards.append(SizeRelation(None, BinOp(operator.eq, Dim(source, d), first), True))
        self.dynamic = self.dynamic or bool(dims)
        return dims

    def specialize(self, size: SizeVar) -> None:
        """The traced code needs the number itself: pin it with a guard, or give up on dynamic sizes."""
        if size.expr is None:
            raise Specialize(f"the code needs the value of {size.describe()}, which is not a size of an input")
        self.guards.append(SizeRelation(None, BinOp(operator.eq, size.expr, Num(size.hint)), True))

    def dim_expr(self, t: TensorVar, d: int):
        """Dim d of t over the inputs' dims: a number where it does not move with them."""
        hint = t.example.shape[d]
        if hint == t.perturbed.shape[d]:
            return Num(hint)
        if t.node.op == "placeholder" and t.source is not None:
            return Dim(t.source, d)
        expr = self._fitted(hint, t.perturbed.shape[d])
        if expr is None:
            raise Specialize(f"a size of {t.node.name}, computed in the function, read by Python")
        return expr

    def size_op(self, op, a: Var, b: Var) -> SizeVar:
        """Python arithmetic on sizes (B * T): a graph node, so the compiled code computes it from each call's
        sizes."""
        proxy = self.tracer.create_proxy("call_function", op, (_size_arg(a, "proxy"), _size_arg(b, "proxy")), {})
        return SizeVar(proxy, op(_size_arg(a, "hint"), _size_arg(b, "hint")),
                       op(_size_arg(a, "perturbed"), _size_arg(b, "perturbed")),
                       combine(op, _size_expr(a), _size_expr(b)), self)

    def size_compare(self, op, a: Var, b: Var) -> Const:
        """A comparison of sizes decides Python control flow: it holds for the hints; guard that it keeps holding."""
        result = bool(op(_size_arg(a, "hint"), _size_arg(b, "hint")))
        expr = combine(op, _size_expr(a), _size_expr(b))
        if expr is None:
            raise Specialize(f"the code compares {a.describe()} with {b.describe()}, not sizes of inputs")
        self.guards.append(SizeRelation(None, expr, result))
        return Const(result)

    def _unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    # ---- operations ------------------------------------------------------------------------------------------

    def call(self, kind: str, target, args: tuple, kwargs: dict) -> Var:
        """Record `target(*args, **kwargs)` (kind 'call_function') or `args[0].target(*args[1:])` ('call_method')."""
        if kind == "call_method" and target == "stride" and isinstance(args[0], TensorVar) and \
                args[0].node.op != "placeholder" and args[0].example.numel() == 0:
            # an empty tensor's strides are arbitrary, and torch's meta kernels pick others than its CPU kernels
            # (isfinite of an expanded (0, 1) tensor): read them from the real tensor
            unsupported("unsupported_value", "the strides of an empty tensor made in the function")
        mem_overlap.check_write(kind, target, args, kwargs)
        tensors = tensors_in((args, kwargs))
        if tensors and self.autocast.any_on() and not (kind == "call_method" and target in _DEVICE_MOVES):
            replaced = self._autocast_inputs(kind, target, args, kwargs, tensors)
            if isinstance(replaced, Var):  # the op as the aten ops autocast runs for it
                return replaced
            args, kwargs, tensors = replaced
        proxy_args, proxy_kwargs = to_proxy(args), to_proxy(kwargs)
        meta_args, meta_kwargs = to_meta(args), to_meta(kwargs)
        if self.dynamic:
            _separate_twins(tensors)
        versions = [_version(t.example) for t in tensors]
        origins = {id(t.example): (tuple(t.example.shape), t.device) for t in tensors}  # before any resize
        moves = kind == "call_method" and target in _DEVICE_MOVES and bool(tensors) and isinstance(args[0], TensorVar)
        target_meta = target
        if moves:
            meta_args, meta_kwargs, target_meta = _on_meta(target, meta_args, meta_kwargs)
        try:
            with meta_memo.remembering():  # a Python meta kernel answered from an earlier run's result
                if kind == "call_method":
                    result = getattr(meta_args[0], target_meta)(*meta_args[1:], **meta_kwargs)
                else:
                    result = target(*meta_args, **meta_kwargs)
        except NotImplementedError as e:
            unsupported("unsupported_call", f"{_name(target)} has no shape rule on meta tensors ({_first_line(e)})")
        except (Specialize, Unsupported):
            raise
        except Exception as e:  # noqa: BLE001 - eager raises it too (overflow: int + 2**70; a tuple's .norm)
            unsupported("operator_error", f"{_name(target)}: {type(e).__name__}: {_first_line(e)}")
        if isinstance(result, torch.Tensor):
            result = eager_layout(target, result, meta_args, meta_kwargs)  # not the meta kernel's, where it errs
        # A call that bumped an argument's version counter wrote to it (meta tensors count too): whatever its
        # name or flags say (`F.relu(y, True)`), it is in-place, so it stays in the graph.
        mutates = [_version(t.example) for t in tensors] != versions
        def run(a, kw):
            if moves:
                a, kw, _ = _on_meta(target, a, kw)
            return getattr(a[0], target_meta)(*a[1:], **kw) if kind == "call_method" else target(*a, **kw)
        perturbed = self._perturbed_run(target, result, args, kwargs, run)
        if perturbed is not result:
            clamped_sizes.guard_competing_lengths(self, _name(target), args, kwargs)
        device = result_device(kind, target, args, kwargs)
        if moves and result is meta_args[0] and device != args[0].device:
            result = result.clone()  # a copy on another device, though the meta run had nowhere to move it
        proxy = self.tracer.create_proxy(kind, target, proxy_args, proxy_kwargs)
        if mutates:
            proxy.node.meta["mutates"] = True
        self._check_eager_accepts(proxy.node, meta_args, meta_kwargs, origins)
        if may_raise_on_values(proxy.node):
            if self.translator is not None and self.translator.in_try(VALUE_ERRORS):
                # eager may raise here depending on the values (an index out of range), and the user's try would
                # catch it: the op runs eagerly, where the exception can reach the handler
                self.graph.erase_node(proxy.node)
                unsupported("value_checked_in_try", f"{_name(target)} inside try")
            self._value_checked(proxy.node, target)
        by_example = {id(t.example): t for t in tensors}
        same = by_example.get(id(result))
        if same is not None:
            # The op handed back an argument object: in-place ops (x.add_(1) is x), ops with another effect on it
            # (x.requires_grad_() is x: no data written, no version bump) and no-ops (dropout in eval or with p=0,
            # which draws nothing then; .contiguous() of a contiguous tensor, .float() of a float tensor). Eager
            # returns the same tensor, so do we: a node with an effect stays, a no-op goes.
            if not mutates and not is_impure(proxy.node):
                self.graph.erase_node(proxy.node)
            else:
                proxy.node.meta["val"] = result
            return same
        wrapped = self.wrap_result(proxy, result, device, perturbed, _size_source(kind, target, args))
        if isinstance(wrapped, (TupleVar, ListVar)) and isinstance(result, (tuple, list)):
            # items that are argument objects (torch.broadcast_tensors of equal shapes hands its inputs back)
            for i, r in enumerate(result):
                if i < len(wrapped.items) and id(r) in by_example:
                    wrapped.items[i] = by_example[id(r)]
        return wrapped

    def _autocast_inputs(self, kind: str, target, args: tuple, kwargs: dict, tensors: list):
        """The call's arguments with the casts autocast would make recorded as `.to(dtype)` nodes (jit/autocast.py)."""
        def run(a, kw):
            return getattr(a[0], target)(*a[1:], **kw) if kind == "call_method" else target(*a, **kw)
        plan = autocast.casts(self.autocast, tensors, to_meta(args), to_meta(kwargs), run, _name(target))
        if isinstance(plan, autocast.Replay):
            return self._replay_autocast(plan)
        if not plan:
            return args, kwargs, tensors
        state, self.autocast = self.autocast, autocast.AutocastState(())  # the casts themselves: no autocast
        try:
            cast = {key: self.call("call_method", "to", (var, Const(dtype)), {}) for key, (var, dtype) in plan.items()}
        finally:
            self.autocast = state
        args, kwargs = _swap_tensors(args, cast), _swap_tensors(kwargs, cast)
        return args, kwargs, tensors_in((args, kwargs))

    def _replay_autocast(self, plan) -> Var:
        """Record the aten ops autocast ran for one call (jit/autocast.py Replay), casts included, with autocast
        off: the graph then computes what eager's autocast kernel computed."""
        env = dict(plan.var_of)  # id(probe) -> Var

        def var(x):
            if isinstance(x, torch.Tensor):
                return env[id(x)]
            return Const(x)

        state, self.autocast = self.autocast, autocast.AutocastState(())
        try:
            for func, args, kwargs, out in plan.recording.calls:
                result = self.call("call_function", func, tuple(var(a) for a in args),
                                   {k: var(v) for k, v in kwargs.items()})
                if isinstance(out, torch.Tensor):
                    env[id(out)] = result
                elif isinstance(out, (tuple, list)):
                    for i, o in enumerate(out):
                        if isinstance(o, torch.Tensor):
                            env[id(o)] = result.items[i]
        finally:
            self.autocast = state
        made = plan.recording.result
        if isinstance(made, torch.Tensor):
            return env[id(made)]
        return TupleVar([env[id(o)] for o in made])

    def _check_eager_accepts(self, node, meta_args, meta_kwargs, origins: dict) -> None:
        """Stop capturing at a call eager torch would reject though its meta kernel did not (jit/eager_check.py)."""
        error = eager_error(node, meta_args, meta_kwargs,
                            lambda m: origins.get(id(m), (tuple(m.shape), torch.device("cpu"))))
        if error is not None:
            self.graph.erase_node(node)
            unsupported("operator_error", f"{_name(node.target)}: {error}")

    def call_factory(self, fn, args, kwargs) -> Var:
        """A torch call with no tensor inputs (torch.zeros, torch.arange, torch.randn...): its example is made on
        the meta device, so tracing allocates nothing and consumes no random numbers."""
        proxy_args, proxy_kwargs = to_proxy(tuple(args)), to_proxy(kwargs)
        meta_args, meta_kwargs = to_meta(tuple(args)), to_meta(kwargs)
        try:
            with meta_memo.remembering():
                result = fn(*meta_args, **{**meta_kwargs, "device": "meta"})
        except TypeError as e:
            unsupported("unsupported_call", f"{_name(fn)} without tensor arguments ({_first_line(e)})")
        except (Specialize, Unsupported):
            raise
        except Exception as e:  # noqa: BLE001 - eager raises it too
            unsupported("operator_error", f"{_name(fn)}: {type(e).__name__}: {_first_line(e)}")
        perturbed = self._perturbed_run(fn, result, tuple(args), kwargs,
                                        lambda a, kw: fn(*a, **{**kw, "device": "meta"}))
        device = result_device("call_function", fn, tuple(args), kwargs)
        proxy = self.tracer.create_proxy("call_function", fn, proxy_args, proxy_kwargs)
        return self.wrap_result(proxy, result, device, perturbed)

    def _perturbed_run(self, target, result, args, kwargs, run):
        """The op's result in the second shape run (jit/dynamic.py); `result` itself when no size is dynamic."""
        if not self.dynamic:
            return result
        _cut_along_dynamic_dim(target, args, kwargs)
        inputs = to_perturbed((args, kwargs))
        try:
            with meta_memo.remembering():
                perturbed = run(*inputs)
        except Exception as e:  # noqa: BLE001 - fine at the example sizes only: the code relies on them
            raise Specialize(f"{_name(target)} works for the example sizes only ({_first_line(e)})") from e
        if _aliases(result, to_meta((args, kwargs))) != _aliases(perturbed, inputs):
            # x[::2].contiguous() is x's own memory where the slice has one element, a copy elsewhere: whether a
            # later in-place op writes the input depends on the size (fuzz seed 222763)
            raise Specialize(f"{_name(target)} returns its input's memory at some sizes and a copy at others")
        return perturbed

    def wrap_result(self, proxy, result, device, perturbed=None, size_source=None) -> Var:
        perturbed = result if perturbed is None else perturbed
        if isinstance(result, torch.Tensor):
            proxy.node.meta["val"] = result
            return TensorVar(proxy, result, device, tensor_type=torch.Tensor, perturbed=perturbed)
        if isinstance(result, (tuple, list)) and any(isinstance(r, torch.Tensor) for r in result):
            if len(perturbed) != len(result):  # x.unbind(0), x.split(2) of a dynamic dim: Python sees a count
                raise Specialize(f"{proxy.node.name} gives {len(result)} tensors at the example sizes and "
                                 f"{len(perturbed)} at others")
            proxy.node.meta["val"] = result
            items = [self.wrap_result(proxy[i], r, device, p) if isinstance(r, torch.Tensor) else Const(r)
                     for i, (r, p) in enumerate(zip(result, perturbed))]
            if hasattr(type(result), "n_fields"):  # torch.return_types (structseq)
                return NamedTupleVar(type(result), items)
            return TupleVar(items) if isinstance(result, tuple) else ListVar(items)
        if _is_python_data(result):
            if self.dynamic and _differs(result, perturbed):
                return self._sizes(proxy, result, perturbed, size_source)
            if is_removable(proxy.node):  # setitem, grad-mode switches: kept, their value is None
                proxy.node.graph.erase_node(proxy.node)
            return Const(result)
        unsupported("unsupported_value", f"operation returned {type(result).__name__}")

    def _sizes(self, proxy, result, perturbed, size_source) -> Var:
        """Python data that depends on dynamic sizes (x.size(), x.shape[1], x.numel()): SizeVars computed by the
        graph; the parts that do not depend on them stay constants."""
        if size_source is not None and size_source[0] is NUMEL and isinstance(result, int):
            # a product of the tensor's sizes (a KV cache's `keys.numel() == 0`), each over the inputs' dims
            t = size_source[1]
            expr = Num(1)
            for d in range(t.example.dim()):
                expr = combine(operator.mul, expr, self.dim_expr(t, d))
            return SizeVar(proxy, result, perturbed, expr, self)
        source, dim = size_source if size_source is not None else (None, None)
        if isinstance(result, int) and not isinstance(result, bool):
            expr = Dim(source, dim) if source is not None and dim is not None else self._fitted(result, perturbed)
            return SizeVar(proxy, result, perturbed, expr, self)
        if isinstance(result, tuple) and len(result) == len(perturbed) and all(
                type(r) is int for r in result):
            items = []
            for i, (r, p) in enumerate(zip(result, perturbed)):
                if r == p:
                    items.append(Const(r))
                else:
                    items.append(SizeVar(proxy[i], r, p, Dim(source, i) if source is not None and dim is None
                                         else self._fitted(r, p), self))
            return NamedTupleVar(type(result), items) if isinstance(result, torch.Size) else TupleVar(items)
        raise Specialize(f"{proxy.node.name} gives {result!r} at the example sizes and {perturbed!r} at others")

    def _fitted(self, hint: int, perturbed: int):
        """An expression over input dims for a size computed in the function, so Python may compare it (guarded):
        the input dim it equals at both traced sizes (a sequence length passing through ops), or, with a single
        dynamic size in the frame, that size plus a constant (a token appended: T + 1). None otherwise (the size
        is then used only inside the graph; Python needing its value traces the frame static)."""
        dim = self.symbols.first_dim.get(hint)
        if dim is not None and perturbed == SymbolTable.perturbed(hint):
            return dim
        if len(self.symbols.first_dim) == 1 and perturbed - hint == SymbolTable.OFFSET:
            (h, dim), = self.symbols.first_dim.items()
            return combine(operator.add, dim, Num(hint - h))
        return None

    # ---- the finished graph ----------------------------------------------------------------------------------

    def graph_module(self, outputs: list[TensorVar]) -> torch.fx.GraphModule:
        self.graph.output(tuple(o.proxy.node for o in outputs))
        drop_unused(self.graph)
        gm = torch.fx.GraphModule(torch.nn.Module(), self.graph, class_name="CapturedGraph")
        return gm


# ops giving one tensor per piece of a dim: name -> (position of `dim`, its default)
_CUTS = {"unbind": (1, 0), "split": (2, 0), "chunk": (2, 0), "tensor_split": (2, 0), "split_with_sizes": (2, 0),
         "unsafe_split": (2, 0), "unsafe_chunk": (2, 0)}


def _cut_along_dynamic_dim(target, args: tuple, kwargs: dict) -> None:
    """x.unbind(0) of a dynamic dim gives as many tensors as the dim is long: Python sees that count, so the frame
    is compiled for static sizes, decided here rather than by the second shape run, which would make one meta
    tensor per element of the moved size (about 10,000: seconds)."""
    name = _name(target).rsplit(".", 1)[-1]
    if name not in _CUTS or not args or not isinstance(args[0], TensorVar):
        return
    pos, default = _CUTS[name]
    dim = args[pos] if len(args) > pos else kwargs.get("dim", default)
    dim = dim.const() if isinstance(dim, Var) and dim.is_const() else dim
    t = args[0]
    if isinstance(dim, int) and -t.example.dim() <= dim < t.example.dim() and \
            t.example.shape[dim] != t.perturbed.shape[dim]:
        raise Specialize(f"{name} along a dynamic dim gives a number of tensors that depends on its size")


def _separate_twins(tensors: list) -> None:
    """A tensor whose sizes do not depend on dynamic ones has its example as its perturbed twin (the same meta
    tensor). An in-place op (x.unsqueeze_(0)) runs on both: on one object it would run twice. Give each such
    argument a twin of its own first."""
    for t in tensors:
        if t.perturbed is t.example:
            e = t.example
            t.perturbed = torch.empty_strided(e.shape, e.stride(), dtype=e.dtype, device="meta",
                                              requires_grad=e.requires_grad)


def _version(t: torch.Tensor) -> int | None:
    """A tensor's version counter (bumped by every in-place write, on meta tensors too); inference tensors have
    none, and their in-place ops are known by name only (graph.effects)."""
    return None if t.is_inference() else t._version


def _is_python_data(value) -> bool:
    if value is None or isinstance(value, (int, float, bool, complex, str, torch.Size, torch.dtype, torch.device)):
        return True
    return isinstance(value, (tuple, list)) and all(_is_python_data(v) for v in value)


def _name(target) -> str:
    return target if isinstance(target, str) else getattr(target, "__qualname__", getattr(target, "__name__", str(target)))


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def to_proxy(value):
    return _map(value, lambda t: t.proxy)


def to_meta(value):
    return _map(value, lambda t: t.example if isinstance(t, TensorVar) else t.hint)


def _aliases(result, inputs) -> tuple:
    """For each tensor in `result`, which tensors of `inputs` it shares memory with (by position)."""
    tensors = [t for t in tree_leaves(inputs) if isinstance(t, torch.Tensor)]
    return tuple(tuple(i for i, t in enumerate(tensors) if torch._C._is_alias_of(r, t))
                 for r in tree_leaves(result) if isinstance(r, torch.Tensor))


def to_perturbed(value):
    return _map(value, lambda t: t.perturbed)


def _size_arg(v: Var, field: str):
    return getattr(v, field) if isinstance(v, SizeVar) else v.const()


def _size_expr(v: Var):
    return v.expr if isinstance(v, SizeVar) else Num(v.const())


def _differs(a, b) -> bool:
    try:
        return bool(a != b)
    except Exception:  # noqa: BLE001
        return True


def _size_source(kind: str, target, args: tuple):
    """(input source, dim) when the op reads sizes of an input tensor: x.size(d) -> (x, d), x.size() -> (x, None);
    (NUMEL, x) for x.numel() of any tensor."""
    if kind == "call_method" and target == "numel" and len(args) == 1 and isinstance(args[0], TensorVar):
        return NUMEL, args[0]
    if kind != "call_method" or target != "size" or not args:
        return None
    t = args[0]
    if not isinstance(t, TensorVar) or t.node.op != "placeholder" or t.source is None:
        return None
    if len(args) == 1:
        return t.source, None
    if isinstance(args[1], Const) and isinstance(args[1].value, int):
        return t.source, args[1].value % max(t.example.dim(), 1)
    return None


def _map(value, tensor_fn):
    if isinstance(value, (TensorVar, SizeVar)):
        return tensor_fn(value)
    if isinstance(value, SizeSliceVar):
        return slice(*(_map(p, tensor_fn) for p in value.parts))
    if isinstance(value, Var):
        if isinstance(value, NamedTupleVar):
            return tuple(_map(v, tensor_fn) for v in value.items)
        if isinstance(value, TupleVar):
            return tuple(_map(v, tensor_fn) for v in value.items)
        if isinstance(value, ListVar):
            return [_map(v, tensor_fn) for v in value.items]
        if isinstance(value, DictVar):
            return {k: _map(v, tensor_fn) for k, v in value.items.items()}
        if value.is_const():
            return _map(value.const(), tensor_fn)
        unsupported("unsupported_value", f"cannot pass {value.describe()} to a torch operation")
    if isinstance(value, tuple):
        return tuple(_map(v, tensor_fn) for v in value)
    if isinstance(value, list):
        return [_map(v, tensor_fn) for v in value]
    if isinstance(value, dict):
        return {k: _map(v, tensor_fn) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_map(value.start, tensor_fn), _map(value.stop, tensor_fn), _map(value.step, tensor_fn))
    return _graph_scalar(value)


def _graph_scalar(value):
    """A Python scalar as a graph argument. torch reads int and float subclasses (IntEnum members, np.float64)
    as the plain number, and the generated graph code must spell them (`I.A`, `np.float64(2.0)` name nothing
    there). NumPy's own scalars are not all read alike (torch.tensor(np.int32(3)) is int32, np.bool_ is a float
    to arithmetic): the operators convert them first (jit/semantics/operators.py); anywhere else they break."""
    if type(value) in _PLAIN_SCALARS or not isinstance(value, (int, float, complex)) and \
            type(value).__module__ != "numpy":
        return value
    if type(value).__module__ == "numpy":
        unsupported("unsupported_value", f"a NumPy scalar ({type(value).__name__}) passed to a torch operation "
                                         "other than an arithmetic operator")
    for plain in (bool, int, float, complex):
        if isinstance(value, plain):
            return plain(value)
    return value


_PLAIN_SCALARS = {int, float, bool, complex, str, type(None)}


def _swap_tensors(value, swap: dict):
    """`value` with each TensorVar whose id is a key of `swap` replaced by swap's value (containers rebuilt)."""
    if isinstance(value, TensorVar):
        return swap.get(id(value), value)
    if isinstance(value, NamedTupleVar):
        return value
    if isinstance(value, TupleVar):
        return TupleVar([_swap_tensors(v, swap) for v in value.items])
    if isinstance(value, ListVar):
        return ListVar([_swap_tensors(v, swap) for v in value.items])
    if isinstance(value, tuple):
        return tuple(_swap_tensors(v, swap) for v in value)
    if isinstance(value, list):
        return [_swap_tensors(v, swap) for v in value]
    if isinstance(value, dict):
        return {k: _swap_tensors(v, swap) for k, v in value.items()}
    return value


def tensors_in(value, out: list | None = None, sizes: bool = False) -> list:
    """Every TensorVar inside a Var (containers, new objects) or a plain tuple/list/dict of them, in order; with
    sizes=True also every SizeVar (both are values the graph computes)."""
    out = [] if out is None else out
    if isinstance(value, TensorVar) or sizes and isinstance(value, SizeVar):
        out.append(value)
    elif isinstance(value, (TupleVar, ListVar)):
        for v in value.items:
            tensors_in(v, out, sizes)
    elif isinstance(value, DictVar):
        for v in value.items.values():
            tensors_in(v, out, sizes)
    elif isinstance(value, NewObjectVar):
        for v in value.attrs.values():
            tensors_in(v, out, sizes)
    elif isinstance(value, (tuple, list)):
        for v in value:
            tensors_in(v, out, sizes)
    elif isinstance(value, dict):
        for v in value.values():
            tensors_in(v, out, sizes)
    return out


def _as_device(value) -> torch.device | None:
    if isinstance(value, Var):
        if isinstance(value, TensorVar):
            return value.device
        if not value.is_const():
            return None
        value = value.const()
    if isinstance(value, torch.device):
        return value
    if isinstance(value, str):
        try:
            return torch.device(value)
        except RuntimeError:
            return None
    if isinstance(value, int) and not isinstance(value, bool):
        return torch.device("cuda", value)
    return None


_DEVICE_MOVES = ("to", "cpu", "cuda")


def _on_meta(target: str, meta_args: tuple, meta_kwargs: dict) -> tuple:
    """x.to(device, ...), x.cpu(), x.cuda() as the meta run performs them: every device becomes meta (a meta
    tensor cannot be copied to a real device). Returns (args, kwargs, method name)."""
    if target != "to":
        return (meta_args[0], "meta"), {k: v for k, v in meta_kwargs.items() if k == "non_blocking"}, "to"
    moved = tuple("meta" if isinstance(a, (torch.device, str)) or type(a) is int else a for a in meta_args[1:])
    kwargs = {k: "meta" if k == "device" else v for k, v in meta_kwargs.items()}
    return (meta_args[0], *moved), kwargs, "to"


def result_device(kind: str, target, args: tuple, kwargs: dict) -> torch.device:
    """The real device of an operation's result: explicit device arguments first, then torch's rule that CPU
    scalars (0-dim tensors) follow the other operands."""
    if "device" in kwargs and (d := _as_device(kwargs["device"])) is not None:
        return d
    if kind == "call_method":
        if target == "cuda":
            return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cuda")
        if target == "cpu":
            return torch.device("cpu")
        if target == "to":
            for a in args[1:]:
                if (d := _as_device(a)) is not None and not isinstance(a, Const) or isinstance(a, Const) and \
                        isinstance(a.const(), (str, torch.device)) and _as_device(a) is not None:
                    return _as_device(a)
    tensors = tensors_in(list(args) + list(kwargs.values()))
    if not tensors:
        return torch.get_default_device() if hasattr(torch, "get_default_device") else torch.device("cpu")
    for t in tensors:
        if t.device.type != "cpu":
            return t.device
    return tensors[0].device


def has_work(graph: torch.fx.Graph) -> bool:
    return any(n.op not in ("placeholder", "output") for n in graph.nodes)

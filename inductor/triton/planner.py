"""PLAN: a graph -> the finished plan of its Triton module (triton/plan.py), every decision taken before a kernel
or a line of host code is written:
  lower_round    lowering with the Triton fusion plan (triton/fusion.py), serial reductions split (triton/split.py);
  plan_module    tuple elements read through buffers of their own; side outputs and residual sums the library
                 adds (triton/residual.py, triton/side_outputs.py); fused matmul call sites (triton/matmul.py);
                 then, in launch order, what each kernel becomes: a view, a copy that is a view, a launch into a
                 new buffer or over an input read for the last time (`_reads_in_place`).
Library layouts are probed between the two (triton/probe.py). Planners may generate a kernel to see whether it
can be (a side output kept only if the kernel still generates); the kernels the module holds are written after,
by triton/kernels.py."""
import functools

import torch

from framejit.graph import symbolic_sizes

from ..ir import (Buffer, ExternKernel, ExternKind, FallbackKernel, Item, Kernel, Layout, Load, LoweredGraph, Op,
                  Reduce, ScatterStore, View, ViewKind, contiguous_strides, kernel_loads, loads_in, readers_of,
                  reshape_only, scalar_inputs, view_base)
from ..lowering import input_sizes, lower_graph
from ..views import meta_view
from . import matmul, residual, scan
from .dtypes import supported
from .fusion import plan_triton_fusion
from .plan import (Alias, Allocate, FallbackCall, Launch, LibraryCall, LibraryResult, MatmulSite, ModulePlan, Return,
                   fresh_name, replace_items)
from .probe import all_layouts, at_hints, same_strides
from .split import share_partials, split_reductions

# names generated code uses besides its buffers and sizes
RESERVED = {"call", "torch", "triton", "tl", "h", "runtime_attention"}


def lower_round(gm, example_inputs: list, keep: frozenset, forced: dict):
    """(LoweredGraph, origin, failures): lowered with `keep` stored one node per kernel and `forced` nodes in
    torch (triton/fallback.py), serial reductions split; origin maps each kernel's buffer to the lowered kernel it
    comes from, failures lists ([kernel], why) for reductions that cannot be split."""
    lowered = lower_graph(gm, example_inputs, supported, plan=functools.partial(plan_triton_fusion, keep=keep),
                          fallback=forced)
    origin, failures, kernels, partials = {}, [], [], set()
    layouts = {b.name: b.layout for b in lowered.inputs}  # what split_reductions reads a kernel's inputs as
    for k in lowered.kernels:
        if k.out.layout is not None:
            layouts[k.out.name] = k.out.layout
        try:
            # y.sum() of 16M: not one program walking 16M; x.sum(0) of a tall matrix: not a few programs
            parts = split_reductions([k], layouts)
        except NotImplementedError as e:
            failures.append(([k], str(e)))
            parts = [k]  # planned and written all the same: its other failures, if any, show in this round too
        parts = [scan.as_kernel(p, layouts) for p in parts]  # a scan whose rows fit one tile: generated
        origin.update((p.out.name, k) for p in parts)
        partials.update(p.out.name for p in parts[:-1])
        kernels += parts
    kernels = share_partials(kernels, partials)
    kernels = scan.fuse_producers(kernels, lowered.outputs, layouts)
    lowered.kernels = scan.fuse_epilogues(kernels, lowered.outputs, layouts)
    return lowered, origin, failures


def plan_module(lg: LoweredGraph, autotune: bool, shortcuts: bool) -> ModulePlan:
    """The plan of the module for a lowered graph (library layouts already probed). Dynamic sizes (SymInts) are
    read from the inputs at the top of `call` (`s0 = x.shape[1]`) under names of their own. `autotune`: fused
    matmul call sites are planned for the module to time; `shortcuts` (FRAMEJIT_TRITON_HOST_SHORTCUTS): library
    results seen in their promised layout are used as returned."""
    used = {b.name for b in lg.inputs} | {k.out.name for k in lg.kernels} | RESERVED
    sizes = input_sizes(lg)
    size_names = {sym: sym if sym not in used else f"size_{sym}" for sym in sizes}
    used |= set(size_names.values())
    shapes = {b.name: b.layout.shape for b in lg.inputs}
    hints = {sym: symbolic_sizes.hint(shapes[buf][d]) for sym, (buf, d) in sizes.items()}
    with symbolic_sizes.rendering(symbolic_sizes.NameRenderer(size_names.get)):
        return _Planner(lg, used, sizes, size_names, hints, autotune, shortcuts).plan()


class _Planner:
    def __init__(self, lg, used, sizes, size_names, hints, autotune, shortcuts):
        self.lg, self.used, self.sizes, self.size_names, self.hints = lg, used, sizes, size_names, hints
        self.autotune, self.shortcuts = autotune, shortcuts
        self.layouts = {b.name: b.layout for b in lg.inputs}
        # library results laid out by their sizes (probe_extern_layouts), used as returned
        self.fresh = lg.exact_layouts if self.shortcuts else set()
        self.items: dict = {}
        self.memo: dict = {}
        self.tuples: dict = {}  # fallback results that are tuples, once their call is planned -> probed strides
        self.owned: set = set()  # buffers whose memory no other name (view, alias, fallback result) can reach
        self.returned = {b for o in lg.outputs if isinstance(o, (Load, View, Item)) for b in loads_in(o)}
        # buffers a returned tensor is a view of (`x.clone().reshape(-1)`): never turned into a view of their
        # operand themselves, or the output would alias the input (Triton generator seed 472)
        self.escaping = set(self.returned)
        for k in reversed(lg.kernels):
            if isinstance(k, Kernel) and k.is_view and k.out.name in self.escaping:
                self.escaping.update(loads_in(k.expr))
        self.last_reader: dict = {}
        # inputs some step other than a kernel launch reads (a view, a torch call, a library call): another name
        # may reach their memory, so none takes a result written over it (`_donated`)
        self.reached: set = set()
        self.donated: dict = {}  # input -> the buffer whose value was written into it

    def plan(self) -> ModulePlan:
        lg = self.lg
        entries = residual.plan_residuals([self._with_items(k) for k in lg.kernels], all_layouts(lg),
                                          self.returned, lambda base: fresh_name(base, self.used))
        # a fused Triton matmul launches with its sizes as numbers: with dynamic sizes, the library call + epilogue
        fused = {} if self.sizes or not matmul.sites_wanted(self.autotune) else \
            matmul.find_candidates(entries, all_layouts(lg), self.returned)
        library_calls = {i for i, _ in fused.values()}
        self.last_reader = {buf: max(ids) for buf, ids in readers_of(entries).items()}
        steps = []
        for idx, k in enumerate(entries):
            if idx in library_calls:
                continue  # planned with its epilogue below
            if idx not in fused:
                step = self._step(k, idx)
                steps += step if isinstance(step, list) else [step]  # an indexed store is several launches
                if not isinstance(step, (Launch, Allocate, list)):
                    self.reached.update(kernel_loads(k))
                continue
            self.reached.update(kernel_loads(k))
            self.reached.update(kernel_loads(entries[fused[idx][0]]))
            ext, cand = entries[fused[idx][0]], fused[idx][1]
            # the product's operands, viewed once for whichever path runs
            a, b = fresh_name(f"{ext.out.name}_a", self.used), fresh_name(f"{ext.out.name}_b", self.used)
            library = self._step(ExternKernel(ext.out, ext.kind, ext.args[:-2] + [
                Load(v, x.shape, x.dtype) for v, x in zip((a, b), ext.args[-2:])], ext.params, ext.source))
            epilogue = self._step(k, allocate=False)  # no in-place output: the Triton path writes `out`
            steps.append(MatmulSite(k.out, ext, cand, a, b, library, epilogue))
        values, items = [], []
        for o in lg.outputs:
            if isinstance(o, (Load, View, Item)):
                values.append(replace_items(o, self.items, self.memo))
                items += self._new_items()
            else:
                values.append(o)
        steps.append(Return(values, items))
        held = scalar_inputs(lg) & (self.reached | self.returned)
        if held:  # a Python float where torch wants a tensor
            raise NotImplementedError(f"host scalar {sorted(held)[0]} read by a torch call or a view, or returned")
        donated_sides = {x for step in steps if isinstance(step, Launch) for x, _ in step.donated_sides}
        steps = [step for step in steps if not (isinstance(step, Allocate) and step.buf.name in donated_sides)]
        lg.donations = dict(self.donated)
        return ModulePlan(lg, steps, self.layouts, self.items, self.sizes, self.size_names, self.hints, self.used,
                          self.shortcuts)

    def _with_items(self, k):
        """Kernels with their Item loads replaced up front (the residual plan compares buffer names)."""
        if isinstance(k, Kernel):
            return Kernel(k.out, replace_items(k.expr, self.items, self.memo), k.source, k.is_view)
        return k

    def _new_items(self) -> list:
        """Names of the tuple elements known and computed by now that have no layout yet, now laid out."""
        out = []
        for name, item in list(self.items.items()):
            # items are known for every kernel up front (the residual plan): each is laid out once its tuple is
            if name in self.layouts or item.buf not in self.tuples:
                continue
            probed = self.tuples[item.buf].get(item.index)  # (sizes, strides) the call returned (triton/probe.py)
            fits = probed is not None and probed[0] == tuple(item.shape)
            self.layouts[name] = Layout(tuple(item.shape), probed[1] if fits else contiguous_strides(item.shape),
                                        item.dtype)
            out.append(name)
        return out

    def _step(self, k, idx=None, allocate=True):
        layouts, owned = self.layouts, self.owned
        if isinstance(k, tuple):  # folded into a later kernel as a side output: only its buffer is allocated
            layouts[k[1].out.name] = k[1].out.layout
            owned.add(k[1].out.name)
            return Allocate(k[1].out)
        out = k.out.name
        if isinstance(k, FallbackKernel):
            owned.difference_update(b for a in k.inputs for b in loads_in(a))  # its result may view them
            inputs, items = [], []
            for a in k.inputs:
                inputs.append(replace_items(a, self.items, self.memo))
                items += self._new_items()
            if k.multi:
                self.tuples[out] = k.item_strides
            else:
                layouts[out] = k.out.layout
            return FallbackCall(k, inputs, items)
        if isinstance(k, ExternKernel):
            k.args = [replace_items(a, self.items, self.memo) for a in k.args]
            items = self._new_items()
            layouts[out] = k.out.layout
            if k.kind == ExternKind.ADDMM_INTO:  # the sum is the addend's buffer, now holding it
                acc = view_base(k.args[0]).buf
                if acc in owned:
                    owned.discard(acc)
                    owned.add(out)
                return LibraryCall(k, LibraryResult.INTO, items)
            if out in self.fresh:  # its layout follows from its sizes, as probed: nothing to check per call
                owned.add(out)
                return LibraryCall(k, LibraryResult.FRESH, items)
            return LibraryCall(k, LibraryResult.FIXED, items)
        expr = replace_items(k.expr, self.items, self.memo)
        items = self._new_items()
        layouts[out] = k.out.layout
        if isinstance(expr, Op) and expr.name == "scatter":
            return self._scatter(k, expr, items)
        if k.is_view:
            owned.difference_update(loads_in(expr))
            return Alias(out, expr, False, k.source[-1], items)
        view = _pure_copy_view(k, expr, layouts, self.escaping)
        if view is not None:
            owned.difference_update(loads_in(expr))
            return Alias(out, view, True, k.source[-1], items)
        lay = k.out.layout
        side = k.side_outputs
        empty = any(s == 0 for s in lay.shape)  # allocated, no kernel: nothing is written over an input
        over = None if idx is None or empty else next(
            (d for d in loads_in(expr) if d in owned and d not in self.returned and self.last_reader.get(d) == idx
             and _reads_in_place([expr] + [e for _, e in side], d, layouts[d], lay)), None)
        if over is not None:  # its memory, read for the last time here, takes the result
            owned.discard(over)
        trees = [expr] + [e for _, e in side]
        if over is None and idx is not None and not empty:
            over = self._donated(out, lay, trees, idx)
        donated_sides = []
        if idx is not None and not empty:
            for i, (b, e) in enumerate(side):
                d = self._donated(b.name, b.layout, trees, idx)
                if d is not None:  # written straight into the input whose final value it is; not allocated
                    side = side[:i] + [(Buffer(d, b.layout), e)] + side[i + 1:]
                    donated_sides.append((b.name, d))
        owned.add(out)
        kernel = Kernel(k.out if over is None else Buffer(over, lay), expr, k.source, k.is_view, side)
        return Launch(out, kernel, allocate and over is None, over, empty, items, donated_sides)

    def _donated(self, buf: str, lay: Layout, trees: list, idx: int) -> str | None:
        """The input `buf` may be computed into: the graph returns `buf` as that input's final value
        (graph/input_writes.py), nothing reads the input after this kernel or through another name, it is laid
        out as `buf` is, and this kernel reads it only where it stores (`_reads_in_place`). The copy back into the
        input after the call is then no copy (write_back)."""
        d = self.lg.donated.get(buf)
        if d is None or d in self.donated or d in self.reached or d in self.returned or \
                self.last_reader.get(d, -1) > idx or self.layouts[d] != lay or \
                not _reads_in_place(trees, d, self.layouts[d], lay):
            return None
        self.donated[d] = buf
        return d


    def _scatter(self, k: Kernel, expr: Op, items: list) -> list:
        """An indexed store (lowering.py's scatter) as launches: a copy of its base into a buffer of its own
        (never a view of the base, never written over a buffer the store reads), then one kernel walking the
        source that adds (tl.atomic_add) or stores each element at its indexed place. Half types add into a
        float32 copy, rounded once into the output by a third kernel (float32 atomics exist everywhere; sums of
        many rows stay accurate)."""
        base, index, src = expr.args
        dim, mode, take = expr.params
        lay = k.out.layout
        half = mode == "add" and lay.dtype in (torch.float16, torch.bfloat16)
        acc = Buffer(fresh_name(f"{k.out.name}_f32", self.used), Layout(lay.shape, lay.strides, torch.float32)) \
            if half else k.out
        if half:
            base = Op("cast", [base], base.shape, torch.float32, torch.float32)
        self.layouts[acc.name] = acc.layout
        self.owned.update((acc.name, k.out.name))
        shape = tuple(index.shape) if not take else \
            tuple(base.shape[:dim]) + tuple(index.shape) + tuple(base.shape[dim + 1:])
        empty = any(s == 0 for s in lay.shape)
        walk = Layout(shape, contiguous_strides(shape), acc.layout.dtype)
        store = Kernel(Buffer(acc.name, walk), src, k.source, scatter=ScatterStore(acc, index, dim, take, mode == "add"))
        steps = [Launch(acc.name, Kernel(acc, base, k.source, nodes=k.nodes), True, None, empty, items),
                 Launch(acc.name, store, False, None, empty or any(s == 0 for s in shape))]
        if half:
            rounded = Op("cast", [Load(acc.name, tuple(lay.shape), torch.float32)], tuple(lay.shape), lay.dtype,
                         lay.dtype)
            steps.append(Launch(k.out.name, Kernel(k.out, rounded, k.source), True, None, empty))
        return steps


def _reads_in_place(trees: list, d: str, d_layout: Layout, out: Layout) -> bool:
    """Every read of buffer `d` in the kernel's trees is of the element the kernel stores at the same place
    (d as the output's shape, directly with the output's layout or through reshapes with both contiguous), and d
    has the output's dtype: then each program reads its elements of d before it overwrites them, and no other
    program reads them, so the output can be written over d."""
    if d_layout.dtype != out.dtype:
        return False
    contiguous = lambda lay: tuple(lay.strides) == contiguous_strides(lay.shape)
    memo: dict = {}

    def ok(e) -> bool:
        if id(e) in memo:
            return memo[id(e)]
        if reshape_only(e, d):
            same = tuple(d_layout.shape) == tuple(out.shape) and tuple(d_layout.strides) == tuple(out.strides)
            result = tuple(e.shape) == tuple(out.shape) and (same or contiguous(d_layout) and contiguous(out))
        elif isinstance(e, View) and e.kind not in (ViewKind.RESHAPE, ViewKind.IDENTITY):
            result = d not in loads_in(e)  # d re-indexed (transposed, sliced, broadcast): read where others store
        else:
            children = [e.arg] if isinstance(e, (View, Reduce)) else e.args if isinstance(e, Op) else []
            result = all(ok(c) for c in children)
        memo[id(e)] = result
        return result
    return all(ok(t) for t in trees)




def _pure_copy_view(k: Kernel, expr, layouts: dict, outputs: set):
    """For a generated kernel that would only copy, the view chain its buffer is instead: a chain of views over one
    buffer, same dtype, whose view already has the kernel's output strides (`.contiguous()` of a tensor the
    library laid out that way). The buffer then is that view, no kernel runs. Never for graph outputs (a returned
    copy must not alias)."""
    if k.is_view or k.side_outputs or k.out.name in outputs:
        return None
    if isinstance(expr, Op) and expr.name == "cast" and expr.dtype == expr.args[0].dtype:
        expr = expr.args[0]  # a clone (lowered as a same-dtype cast): the copy itself
    e = view_base(expr)
    if not isinstance(e, Load) or e.dtype != k.out.layout.dtype or e.buf not in layouts:
        return None
    try:
        t = meta_view(expr, layouts)
    except (RuntimeError, NotImplementedError):
        return None  # not expressible as a view of the buffer (a reshape that would copy)
    lay = k.out.layout
    shape = at_hints(lay.shape)  # decided at the hints; a choice that differs elsewhere shows in the code
    if tuple(t.shape) != shape or not same_strides(shape, tuple(t.stride()), at_hints(lay.strides)):
        return None
    return expr

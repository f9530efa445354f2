"""The torch side of a generated NumPy module: tensors in, tensors out, zero-copy for CPU tensors.

Generated modules never import torch; this wrapper converts at the boundary with tensor.numpy() and
torch.from_numpy (both share memory) and supplies the eager fallbacks the module calls. A parameter is viewed
through NumPy's array interface instead: tensor.numpy() marks the storage not resizable for good, and sharding
frameworks free and refill parameters' storages by resizing them (FSDP2's free_storage, after each reshard)."""
import linecache
import types
from dataclasses import dataclass

import numpy as np
import torch

from framejit.graph.shape_prop import fetch_attr
from framejit.graph import symbolic_sizes

from ..ir import FallbackKernel, Item, Kernel, Load, LoweredGraph, Operand, View, dense, output_builder, static_shape
from . import blas_threads
from .torch_views import apply_views


class _ParameterView:
    """A parameter's memory as NumPy sees it (the array interface protocol), the tensor kept alive with it."""
    __slots__ = ("tensor", "__array_interface__")

    def __init__(self, t: torch.Tensor, typestr: str):
        self.tensor = t
        size = t.element_size()
        self.__array_interface__ = {"data": (t.data_ptr(), False), "shape": tuple(t.shape), "typestr": typestr,
                                    "strides": tuple(s * size for s in t.stride()), "version": 3}


def _typestr(dtype: torch.dtype) -> str:
    return np.dtype(torch.empty((), dtype=dtype).numpy().dtype).str


_TYPESTR = {d: _typestr(d) for d in (torch.float32, torch.float64, torch.float16, torch.int16, torch.int32,
                                     torch.int64, torch.int8, torch.uint8, torch.bool, torch.complex64,
                                     torch.complex128)}


def to_numpy(t: torch.Tensor) -> np.ndarray:
    # each step only where needed: on a small graph this wrapper is a large part of the call (1.3 us -> 0.5 us)
    parameter = isinstance(t, torch.nn.Parameter)
    if t.requires_grad:
        t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # NumPy has no bfloat16: hand over the bits, same element size, same strides
    elif t.is_complex() and t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if parameter and t.dtype in _TYPESTR and t.numel():
        return np.asarray(_ParameterView(t, _TYPESTR[t.dtype]))
    return t.numpy()


def to_torch(a, dtype: torch.dtype) -> torch.Tensor:
    a = np.asarray(a)
    if not a.flags.writeable:
        a = a.copy()  # broadcast views are read-only; torch tensors must be writable
    t = torch.from_numpy(a)
    return t.view(torch.bfloat16) if dtype == torch.bfloat16 else t


def load_module(source: str, filename: str) -> types.ModuleType:
    """Execute generated source as a module; registering it with linecache makes tracebacks show the code."""
    mod = types.ModuleType("framejit_numpy_graph")
    mod.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), mod.__dict__)
    return mod


def _make_fallback(kernel):
    def call(*arrays):
        tensors = [to_torch(a, inp.dtype) for a, inp in zip(arrays, kernel.inputs)]
        fill = lambda a: tensors[a.index] if isinstance(a, Operand) else a
        args = torch.fx.node.map_aggregate(kernel.args, fill)
        kwargs = torch.fx.node.map_aggregate(kernel.kwargs, fill)
        out = kernel.target(*args, **kwargs)
        if isinstance(out, (tuple, list)):
            return tuple(to_numpy(o) if isinstance(o, torch.Tensor) else o for o in out)
        return to_numpy(out)
    return call


# ---- outputs that alias inputs ------------------------------------------------------------------------------
# Eager returns some outputs as views of an input (x.T, x.expand(...), x[1:]) and the rest as tensors of their own;
# a caller sees the difference when it writes to either. The NumPy code's views of inputs come out as arrays
# over the input's memory, and the optimizer's rewrites can turn a computed output into one (x * 1 -> x): each
# output gets a plan from eager's aliasing (graph/normalize.py's eager_output_aliases) and the code's.
VIEW, COPY, CHECK = "view", "copy", "check"  # rebuild as a torch view of the input / copy / copy if it overlaps
SHARE = "share"  # rebuild as a torch view of an earlier output, as eager's `t.squeeze()` returned beside `t`


def _source(e, kernels: dict, inputs: dict):
    """Whose memory output expression `e` is in: ("input", buffer index), ("torch", fallback kernel) for a torch
    op's result (which may be a view of its operands), or "fresh"."""
    while True:
        if isinstance(e, View):
            e = e.arg
        elif isinstance(e, Load) and e.buf in inputs:
            return ("input", inputs[e.buf])
        elif isinstance(e, (Load, Item)):
            k = kernels.get(e.buf)
            if isinstance(k, Kernel) and k.is_view:  # stored without a copy (numpy_codegen's store)
                e = k.expr
            elif isinstance(k, FallbackKernel):
                return ("torch", k)
            else:
                return "fresh"
        else:
            return "fresh"


def alias_plan(lowered: LoweredGraph) -> list:
    """Per flat output: None (hand the array over as it is), (VIEW, input buffer index), (COPY,) or (CHECK, outputs
    it may share memory with as eager's does): a CHECK is copied where it overlaps an input or another output.
    Raises NotImplementedError where eager returns a view of an input and the code computes a new array: that
    graph must run in torch (a caller writing to the input would not see it in the output)."""
    kernels = {k.out.name: k for k in lowered.kernels}
    inputs = {b.name: i for i, b in enumerate(lowered.inputs)}
    placeholders = [i for i, b in enumerate(lowered.inputs) if not b.attr]
    attrs = {b.attr: i for i, b in enumerate(lowered.inputs) if b.attr}
    eager = lowered.eager_outputs
    plan = []
    for i, o in enumerate(lowered.outputs):
        if not isinstance(o, (Load, Item, View)):
            plan.append(None)  # a Python constant
            continue
        src = _source(o, kernels, inputs)
        want = eager[i].alias if eager is not None and i < len(eager) else "unknown"
        if want == "unknown":  # keep an input returned as it is from aliasing it (the optimizer's x * 1 -> x)
            plan.append((COPY,) if src != "fresh" and src[0] == "input" else None)
        elif want is None:
            plan.append(None if src == "fresh" else (COPY,) if src[0] == "input" else (CHECK,))
        else:
            j = placeholders[want[1]] if want[0] == "input" else attrs.get(want[1])
            torch_view = src != "fresh" and src[0] == "torch" and any(
                _source(a, kernels, inputs) == ("input", j) for a in src[1].inputs)
            if j is None or (src != ("input", j) and not torch_view):
                raise NotImplementedError(f"output {i} is a view of an input in eager, not in the NumPy code")
            plan.append((VIEW, j))
        copied_input = plan[-1] == (COPY,) and want is None  # eager's own tensor, the code's an input
        if (plan[-1] is None or plan[-1][0] == CHECK or copied_input) and eager is not None and i < len(eager):
            # two outputs eager computes separately, left in one buffer by the optimizer (CSE of `x / x` appended
            # twice; `y.expand(1, n) * 1` reduced to a view of y): the later one is a copy, as eager's are two
            # tensors
            buf = _buffer(o, kernels)
            earlier = [j for j, p in enumerate(lowered.outputs[:i])
                       if isinstance(p, (Load, View)) and buf is not None and _buffer(p, kernels) == buf]
            apart = [j for j in eager[i].shares
                     if j < i and j not in earlier and (plan[j] is None or plan[j][0] != VIEW)]
            if apart:  # eager's are one memory, the code made two (a cat computed again under an earlier output's
                #        views: fuzz seed 627105): no wrapper can join them afterwards
                raise NotImplementedError(f"output {i} shares memory with output {apart[0]} in eager, not in the "
                                          "NumPy code")
            if any(j not in eager[i].shares for j in earlier):
                plan[-1] = (COPY,)
            elif earlier and (not copied_input or plan[earlier[0]] == (COPY,)):
                # eager's output is a view of an earlier one, and so is the code's: a torch view of that tensor,
                # not a second tensor over the same memory (torch's overlap checks and `_base` tell them apart:
                # `t4 /= t4.squeeze()` of one element raises in eager, fuzz seed 265440); of an input copied for
                # both, a view of the earlier copy (fuzz seed 560102)
                plan[-1] = _share_plan(i, o, earlier, lowered.outputs, kernels)
    for i, how in enumerate(plan):
        if how is not None and how[0] == CHECK:  # a torch fallback's view of another output (`x.narrow()` left of
            # `x.narrow() * 1`: fuzz seed 506034) must not share the memory eager's own tensor does not
            together = set(eager[i].shares) if eager is not None and i < len(eager) else set()
            together |= {j for j in range(i + 1, len(plan)) if eager is not None and j < len(eager)
                         and i in eager[j].shares}
            plan[i] = (CHECK, tuple(sorted(together)))
    return plan


def _share_plan(i: int, o, earlier: list, outputs: list, kernels: dict) -> tuple:
    """(SHARE, j, views): output i rebuilt as `views` (ir.View kinds and params) applied to earlier output j's
    tensor, where i's views of their buffer extend j's; the views are applied in torch, since the array the code
    made for i may be over memory the wrapper no longer hands over (j's array copied to eager's strides, seed
    301818) or a copy (NumPy's reshape of a layout eager's reshape views). (SHARE, earlier[0], None) for views of
    one buffer neither of which views the other (x[0] and x[1]): i is a view of j's memory where it lies in it.
    Raises where an earlier output is a view of output i: the wrapper builds outputs in order, from the arrays."""
    mine = _view_chain(o, kernels)
    chains = {j: _view_chain(outputs[j], kernels) for j in earlier}
    if mine is not None:
        for j, theirs in chains.items():
            if theirs is not None and mine[:len(theirs)] == theirs:
                return (SHARE, j, mine[len(theirs):])
        if any(theirs is not None and theirs[:len(mine)] == mine for theirs in chains.values()):
            raise NotImplementedError(f"output {i} is the tensor an earlier output is a view of in eager")
    return (SHARE, earlier[0], None)


def _view_chain(e, kernels: dict) -> tuple | None:
    """The views from a buffer to output expression `e`, innermost first, as ((kind, params), ...); None where
    something else is on the way (an Item)."""
    chain = []
    while True:
        if isinstance(e, View):
            if not _fixed(e.params):  # a size of a dynamic graph (`x[s0 - 1:]`): the views hold at one size only
                return None
            chain.append((e.kind, e.params))
            e = e.arg
        elif isinstance(e, Load):
            k = kernels.get(e.buf)
            if not (isinstance(k, Kernel) and k.is_view):
                return tuple(reversed(chain))
            e = k.expr
        else:
            return None


def _fixed(params) -> bool:
    """View parameters that are plain numbers (no SymInt of a dynamic size)."""
    return all(_fixed(p) if isinstance(p, (tuple, list)) else p is None or type(p) in (int, bool) for p in params)


def _buffer(e, kernels: dict) -> str | None:
    """The buffer whose memory output expression `e` is in, through views (None: not a buffer's)."""
    while True:
        if isinstance(e, View):
            e = e.arg
        elif isinstance(e, Load):
            k = kernels.get(e.buf)
            if not (isinstance(k, Kernel) and k.is_view):
                return e.buf
            e = k.expr
        else:
            return None


def _overlaps_other(o, outs: list, i: int, how: tuple) -> bool:
    """A CHECK output overlapping another output's array, one eager's does not share memory with."""
    return how[0] == CHECK and isinstance(o, np.ndarray) and any(
        j != i and j not in how[1] and isinstance(p, np.ndarray) and np.may_share_memory(o, p)
        for j, p in enumerate(outs))


def _root(a) -> np.ndarray | None:
    """The writeable array of `a`'s own dtype that array `a` is a view of (or `a`), None where there is none."""
    if not isinstance(a, np.ndarray) or not a.flags.writeable:
        return None
    root = a
    while isinstance(root.base, np.ndarray) and root.base.dtype == a.dtype and root.base.flags.writeable:
        root = root.base
    return root


def _shared(base: torch.Tensor, made, a: np.ndarray, dtype: torch.dtype, views) -> torch.Tensor | None:
    """Output array `a` as a torch view of `base`, an earlier output's tensor: through `views` (alias_plan's) where
    the plan has them and torch takes them without a copy, else where `a` lies in the memory of the array that
    tensor was made over (`made`: (its torch tensor, the array), or None); None where neither holds."""
    if views is not None:
        try:
            view = apply_views(base, views)
            # no view left (the optimizer dropped eager's `t.reshape(t.shape)`): eager's is still a tensor of its own
            return view if view is not base else base.view(base.shape)
        except RuntimeError:  # torch's view of base's strides needs a copy: eager's strides were not known
            pass
    if made is not None and _inside(a, made[1]):
        return view_of(made[0], made[1], a, dtype)
    return None


def _inside(a, base: np.ndarray) -> bool:
    """Every byte of array `a` lies in `base`'s memory (a view of it, not an array `base` is a view of)."""
    a = np.asarray(a)
    if a.size == 0:
        return False
    lo, hi = np.lib.array_utils.byte_bounds(a)
    base_lo, base_hi = np.lib.array_utils.byte_bounds(base)
    return base_lo <= lo and hi <= base_hi


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def view_of(base: torch.Tensor, base_array: np.ndarray, a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """Array `a`, a view into `base_array` (base's memory), as the torch view of `base` eager returns: same
    storage, so writes either way show, and a read-only NumPy view (a broadcast) is no obstacle. A view as another
    dtype (x.view(torch.int32), a torch fallback's) is a tensor of that dtype over base's storage."""
    a = np.asarray(a)
    item = a.itemsize
    if a.size and (not np.may_share_memory(a, base_array) or any(s < 0 for s in a.strides)):
        raise RuntimeError("framejit internal error: an output eager returns as a view of an input was copied")
    strides = tuple(s // item for s in a.strides)
    if dtype == base.dtype:
        offset = (_address(a) - _address(base_array)) // item if a.size else 0
        return base.as_strided(a.shape, strides, base.storage_offset() + offset)
    storage = base.untyped_storage()
    offset = (_address(a) - storage.data_ptr()) // item if a.size else 0
    return torch.empty(0, dtype=dtype).set_(storage, offset, a.shape, strides)


# ---- outputs laid out as eager's ---------------------------------------------------------------------------------
def output_strides(lowered: LoweredGraph) -> list:
    """Per flat output computed by a kernel, the byte strides eager gives it where they are a dense layout of a
    static shape, else None. NumPy's results mostly follow their inputs' layout as eager's do, but not always (a
    bf16 result; a softmax, which eager returns contiguous, decomposed into ops that keep a transposed input's
    layout): a caller's later `.view(-1)` would then succeed where eager's raises, or `.stride()` differ. Eager's
    strides are those recorded before the graph was rewritten (EagerOutput), else the kernel's layout."""
    kernels = {k.out.name: k for k in lowered.kernels}
    eager = lowered.eager_outputs
    found = []
    for i, o in enumerate(lowered.outputs):
        k = kernels.get(o.buf) if isinstance(o, Load) else None
        own = eager is not None and i < len(eager) and eager[i].alias is None and not eager[i].shares
        # a view the code made of a fresh array (a written value broadcast: `t[...] = 1`) is eager's own tensor:
        # laid out too, or a later in-place op on it writes its shared elements (fuzz seed 444898)
        layout = k.out.layout if isinstance(k, Kernel) and (not k.is_view or own) else None
        strides = layout.strides if layout is not None else None
        if layout is not None and eager is not None and i < len(eager) and eager[i].strides is not None:
            strides = eager[i].strides
        if layout is None:
            found.append(None)
        elif static_shape(layout.shape) and static_shape(strides):
            found.append(tuple(s * layout.dtype.itemsize for s in strides) if dense(layout.shape, strides) else None)
        else:
            found.append(_dim_order(layout.shape, strides))
    return found


class DimOrder:
    """A dense layout of sizes known only at run time (a dynamic graph's output): its dims, outermost first."""
    __slots__ = ("dims",)

    def __init__(self, dims: tuple):
        self.dims = dims

    def strides(self, shape: tuple, itemsize: int) -> tuple:
        out, step = [0] * len(shape), itemsize
        for d in reversed(self.dims):
            out[d] = step
            step *= max(shape[d], 1)
        return tuple(out)


def _dim_order(shape, strides) -> DimOrder | None:
    """The order of symbolic `strides`, read at the sizes' hints where they are dense there (dims of equal stride,
    the ones of size 1 at the hints, keep their own order: eager's contiguous choice); else None."""
    try:
        shape, strides = tuple(map(symbolic_sizes.hint, shape)), tuple(map(symbolic_sizes.hint, strides))
    except Exception:  # noqa: BLE001  (a size with no hint: the layout is left as NumPy makes it)
        return None
    if not dense(shape, strides):
        return None
    return DimOrder(tuple(sorted(range(len(shape)), key=lambda d: -strides[d])))


def laid_out(a: np.ndarray, strides) -> np.ndarray:
    """`a`, or a copy of it with `strides` (byte strides of a dense layout, or a DimOrder) where they differ along
    a dim of more than 1."""
    a = np.asarray(a)
    if isinstance(strides, DimOrder):
        strides = strides.strides(a.shape, a.itemsize)
    if all(n <= 1 or s == t for n, s, t in zip(a.shape, a.strides, strides)):
        return a
    order = sorted(range(a.ndim), key=lambda d: -strides[d])  # outermost dim first
    out = np.empty([a.shape[d] for d in order], dtype=a.dtype).transpose(np.argsort(order))
    np.copyto(out, a)
    return out


@dataclass
class NumpyFacts:
    """What a CompiledNumpyGraph needs of its LoweredGraph (all a module read from the cache has of it)."""
    input_attrs: list   # per module input, the module attribute it reads (a constant), or None for an argument
    out_dtypes: list    # per flat output, its torch dtype (None: a Python constant)
    output_spec: object  # pytree spec of gm's return value
    strides: list       # output_strides
    aliases: list       # alias_plan
    fallbacks: list     # the FallbackKernels the module calls

    @classmethod
    def of(cls, lowered: LoweredGraph) -> "NumpyFacts":
        return cls([b.attr for b in lowered.inputs], [getattr(o, "dtype", None) for o in lowered.outputs],
                   lowered.output_spec, output_strides(lowered), alias_plan(lowered),
                   [k for k in lowered.kernels if isinstance(k, FallbackKernel)])


class CompiledNumpyGraph:
    """Callable with gm's signature: runs the generated module on the tensors' memory. `lowered` is the
    LoweredGraph it was generated from; a module read from the cache has none until asked for, when `relower()`
    optimizes and lowers the graph again."""

    def __init__(self, module: types.ModuleType, lowered: LoweredGraph | None, gm: torch.fx.GraphModule,
                 example_inputs: list | None = None, facts: NumpyFacts | None = None, relower=None):
        self.module, self._lowered, self._relower = module, lowered, relower
        self.source = getattr(module, "__source__", None)
        facts = facts or NumpyFacts.of(lowered)
        self.fallbacks = {k.out.name: _make_fallback(k) for k in facts.fallbacks}
        self.constants = []
        for i, attr in enumerate(facts.input_attrs):
            if attr:
                self.constants.append((i, fetch_attr(gm, attr)))
        self.out_dtypes = list(facts.out_dtypes)
        self._const_values = [c for _, c in self.constants]
        params = [isinstance(x, torch.nn.Parameter) for x in example_inputs] if example_inputs else []
        slots, n_const, n_arg = [], 0, 0
        for attr in facts.input_attrs:
            if attr:
                slots.append((True, n_const, True))
                n_const += 1
            else:
                slots.append((False, n_arg, n_arg < len(params) and params[n_arg]))
                n_arg += 1
        self._slots = slots
        self._memo = [None] * len(slots)
        self._returns = output_builder(facts.output_spec)
        self._strides = list(facts.strides)
        self._aliases = list(facts.aliases)
        if not any(self._aliases):
            self._aliases = None  # the common case: every output is an array of its own, handed over as it is
        # outputs a later one shares memory with as a view neither of which views the other: made over their array
        self._shared_later = {how[1] for how in self._aliases or () if how is not None and how[0] == SHARE}

    @property
    def lowered(self) -> LoweredGraph:
        if self._lowered is None:
            self._lowered = self._relower()
        return self._lowered

    def __call__(self, *args):
        # Per input slot: the constant or argument position it comes from, and for parameters and constants the
        # last tensor seen there with its array. They arrive as the same tensor on every call, so their arrays are
        # reused after a data_ptr check (assigning `.data` swaps the storage and misses; in-place updates share
        # the memory). Other inputs are converted on each call and never kept.
        memo = self._memo
        arrays = []
        if self._aliases is not None:
            return self._returns(self._with_aliases(args))
        for i, (is_const, index, stable) in enumerate(self._slots):
            t = self._const_values[index] if is_const else args[index]
            if stable:
                seen = memo[i]
                if seen is not None and seen[0] is t and seen[1] == t.data_ptr():
                    arrays.append(seen[2])
                    continue
                memo[i] = (t, t.data_ptr(), to_numpy(t))
                arrays.append(memo[i][2])
            else:
                arrays.append(to_numpy(t))
        with blas_threads.held():
            outs = self.module.run(arrays, self.fallbacks)
        flat = [o if d is None else to_torch(o if s is None or o.strides == s else laid_out(o, s), d)
                for o, d, s in zip(outs, self.out_dtypes, self._strides)]
        return self._returns(flat)

    def _with_aliases(self, args) -> list:
        """The flat outputs of a graph some of whose outputs share memory with an input (alias_plan)."""
        tensors = [self._const_values[index] if is_const else args[index] for is_const, index, _ in self._slots]
        arrays = [to_numpy(t) for t in tensors]
        with blas_threads.held():
            outs = self.module.run(arrays, self.fallbacks)
        # made: per output, (tensor, array) of the whole array it was made over (None where it is not one): two
        # outputs over one buffer neither of which views the other (list(t): its rows) are views of one tensor
        flat, made = [], []
        for i, (o, d, how, s) in enumerate(zip(outs, self.out_dtypes, self._aliases, self._strides)):
            if d is None:
                flat.append(o)
                made.append(None)
            elif how is not None and how[0] == VIEW:
                flat.append(view_of(tensors[how[1]], arrays[how[1]], o, d))
                made.append(None)
            elif how is not None and how[0] == SHARE and (shared := _shared(flat[how[1]], made[how[1]], o, d,
                                                                            how[2])) is not None:
                flat.append(shared)
                made.append(None)
            else:
                if how is not None and (how[0] == COPY or any(np.may_share_memory(o, a) for a in arrays) or
                                        _overlaps_other(o, outs, i, how)):
                    o = np.array(o)
                o = o if s is None else laid_out(o, s)
                root = _root(o) if i in self._shared_later else None
                if root is None:
                    flat.append(to_torch(o, d))
                    made.append(None)
                else:
                    whole = to_torch(root, d)
                    flat.append(whole if root is o else view_of(whole, root, o, d))
                    made.append((whole, root))
        return flat

"""The torch side of a generated NumPy module: tensors in, tensors out, zero-copy for CPU tensors.

Generated modules never import torch; this wrapper converts at the boundary with tensor.numpy() and
torch.from_numpy (both share memory) and supplies the eager fallbacks the module calls."""
import linecache
import types

import numpy as np
import torch

from graph.shape_prop import fetch_attr

from .ir import LoweredGraph, Operand


def to_numpy(t: torch.Tensor) -> np.ndarray:
    # each step only where needed: on a small graph this wrapper is a large part of the call (1.3 us -> 0.5 us)
    if t.requires_grad:
        t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # NumPy has no bfloat16: hand over the bits, same element size, same strides
    elif t.is_complex() and t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
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


class CompiledNumpyGraph:
    """Callable with gm's signature: runs the generated module on the tensors' memory."""

    def __init__(self, module: types.ModuleType, lowered: LoweredGraph, gm: torch.fx.GraphModule,
                 example_inputs: list | None = None):
        self.module, self.lowered, self.source = module, lowered, getattr(module, "__source__", None)
        self.fallbacks = {k.out.name: _make_fallback(k) for k in lowered.kernels if hasattr(k, "target")}
        self.constants = []
        for buf in lowered.inputs:
            if getattr(buf, "attr", None):
                self.constants.append((buf.name, fetch_attr(gm, buf.attr)))
        self.out_dtypes = [getattr(o, "dtype", None) for o in lowered.outputs]
        self._const_values = [c for _, c in self.constants]
        params = [isinstance(x, torch.nn.Parameter) for x in example_inputs] if example_inputs else []
        slots, n_const, n_arg = [], 0, 0
        for buf in lowered.inputs:
            if getattr(buf, "attr", None):
                slots.append((True, n_const, True))
                n_const += 1
            else:
                slots.append((False, n_arg, n_arg < len(params) and params[n_arg]))
                n_arg += 1
        self._slots = slots
        self._memo = [None] * len(slots)
        self._returns = lowered.output_builder()

    def __call__(self, *args):
        # Per input slot: the constant or argument position it comes from, and for parameters and constants the
        # last tensor seen there with its array. They arrive as the same tensor on every call, so their arrays are
        # reused after a data_ptr check (assigning `.data` swaps the storage and misses; in-place updates share
        # the memory). Other inputs are converted on each call and never kept.
        memo = self._memo
        arrays = []
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
        outs = self.module.run(arrays, self.fallbacks)
        flat = [to_torch(o, d) if d is not None else o for o, d in zip(outs, self.out_dtypes)]
        return self._returns(flat)

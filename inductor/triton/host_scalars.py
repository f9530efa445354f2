"""Scalar arithmetic on the host: 0-dim CPU tensors beside a GPU graph, computed in Python and handed to the
kernels as scalar arguments.

torch.optim keeps each parameter's step count in a 0-dim float32 CPU tensor (capturable=False, the default); the
step's bias corrections are a dozen scalar ops per parameter on those counters, whose results scale the GPU update
(`param.addcdiv_(m, denom, value=-step_size)`). A Triton kernel cannot read CPU memory, and torch's CPU kernels for
one element cost microseconds each (a GPT-2-sized AdamW step spent 20 ms in them against eager's 4.2 ms), so such
graphs ran as captured. Here they are split before lowering:
  * host nodes: core ops on 0-dim (or short 1-d, a stack of them) float32/float64 CPU tensors computed only from
    such graph inputs and constants (HOST_OPS) are written as straight-line Python over floats (`compute`): float64
    arithmetic is Python's own, float32 rounds every operand and result to float32 (exact for + - * / and sqrt:
    double then float rounding of two floats is the float result), pow and division by zero follow IEEE as
    torch's kernels do, `pow(x, 0.5)` is a square root as in torch's kernel;
  * what the rest of the graph reads of them becomes a new graph input (`host_<name>`, listed in
    gm.meta[HOST_SCALARS]), passed to the module as a Python float and to each kernel reading it as a scalar
    argument (triton/codegen.py); a graph output that is a host value is a new 0-dim tensor, or, where it is a
    written input's final value (graph/input_writes.py's WRITTEN_INPUTS), is filled into that input.
An input a torch call reads stays the tensor it is (a CPU seed efficient attention saves); where a torch call or a
view reads a computed host value, or a node left on the GPU side computes a CPU tensor, there is no split and the
graph compiles as before (backend.py)."""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.fx as fx

from framejit.graph.core_ops import is_core
from framejit.graph.input_writes import WRITTEN_INPUTS
from framejit.graph.normalize import EAGER_OUTPUTS

from ..ir import HOST_SCALARS

aten = torch.ops.aten
HOST_DTYPES = (torch.float32, torch.float64)
MAX_ELEMENTS = 256  # a stack of per-parameter scalars (foreach's step sizes) is a host value; longer ones are not


@dataclass
class HostSplit:
    gm: fx.GraphModule     # the graph without its host nodes; the host values it reads as its last inputs
    example_inputs: list   # the original inputs, then each host value as a 0-dim CPU tensor
    compute: Callable      # compute(args) -> (scalars for the new inputs, host outputs by output position)
    fills: dict            # host output -> index of the input its value is filled into (a written input's)
    positions: list        # per original output, None (the device graph's) or its position in host outputs
    kind: type | None      # tuple or list: the graph's output holds host values; None: it holds none
    dtypes: list           # per host output, its dtype
    source: str            # compute's Python source (logged with the module)

    def wrap(self, compiled: Callable) -> "HostScalarCall":
        """A callable with the original graph's inputs and outputs around `compiled` (the device graph's)."""
        return HostScalarCall(self, compiled)


class HostScalarCall:
    """The original graph's callable: the host's arithmetic, then the compiled device graph with its results;
    `compiled` (its `lowered`, `source`) is the device graph's, for logs and tests."""

    def __init__(self, split: HostSplit, compiled: Callable):
        self.compute, self.positions, self.kind, self.compiled = split.compute, split.positions, split.kind, compiled
        # per host output: the input it is filled into, or the dtype of the new tensor holding it
        self.into = [(split.fills.get(j), dtype) for j, dtype in enumerate(split.dtypes)]
        self.source = getattr(compiled, "source", None)

    @property
    def lowered(self):
        return self.compiled.lowered

    def __call__(self, *args):
        scalars, host_outs = self.compute(args)
        outs = self.compiled(*args, *scalars)
        if self.kind is None:  # no host value returned: the device graph's outputs are the graph's
            return outs
        made = []
        for v, (i, dtype) in zip(host_outs, self.into):
            if i is None:
                made.append(torch.tensor(v, dtype=dtype))
            else:  # the kernels read the values, never these tensors: written after they are queued
                made.append(args[i].fill_(v))
        it = iter(outs)
        return self.kind(next(it) if p is None else made[p] for p in self.positions)


def split(gm: fx.GraphModule, example_inputs: list, device: torch.device, keep: frozenset = frozenset()
          ) -> HostSplit | None:
    """gm split into host arithmetic and the graph for `device` (module doc), or None where there is nothing to
    split or it cannot be. gm's nodes carry meta["val"] (the optimizer's output). `keep`: inputs left tensors."""
    graph = gm.graph
    placeholders = list(graph.find_nodes(op="placeholder"))
    if len(placeholders) != len(example_inputs):
        return None
    host: dict = {}  # an ordered set: the host's inputs, then the nodes it computes, in graph order
    for p, x in zip(placeholders, example_inputs):
        if isinstance(x, torch.Tensor) and x.device.type == "cpu" and _host_value(x) and x.dim() == 0 and \
                p not in keep:
            host[p] = None
    if not host:
        return None
    cpu = _on_cpu(graph, placeholders, example_inputs)
    for node in graph.nodes:
        if node.op == "call_function" and node.target in HOST_OPS and node in cpu and \
                _host_value(node.meta.get("val")) and all(a in host for a in node.all_input_nodes) and \
                HOST_OPS[node.target][0](node):
            host[node] = None
    if device.type != "cpu" and any(n.op == "call_function" and n in cpu and n not in host for n in graph.nodes):
        return None  # a CPU value left for the kernels (an op the host does not write)
    out = next(n for n in graph.nodes if n.op == "output")
    results = out.args[0]
    returned = list(results) if isinstance(results, (tuple, list)) else [results]
    computed = {n for n in host if n.op != "placeholder"}
    if any(n in computed for n in out.all_input_nodes) and (
            not isinstance(results, (tuple, list)) or any(n in computed and n not in returned
                                                          for n in out.all_input_nodes)):
        return None  # a host value returned alone, or inside a nested output
    read = [n for n in host if any(u not in host and u is not out for u in n.users)]
    if not read and not computed:
        return None
    by_torch = {n for n in read if any(not is_core(u.target) for u in n.users if u not in host and u is not out)}
    if by_torch:
        # a torch call takes it as the tensor it is (a CPU seed efficient attention saves for its backward):
        # as before, the input stays a tensor only torch calls read; a value computed here is no tensor
        return None if by_torch & computed else split(gm, example_inputs, device, keep | by_torch)
    if any(n.meta["val"].dim() != 0 for n in read):
        return None  # a stack of host values read by the GPU side: not a scalar argument
    source, names = _write(host, placeholders, read, returned)
    compute = _compile(source)
    written = gm.meta.get(WRITTEN_INPUTS) or ()
    tail = len(returned) - len(written)
    positions, fills, kept_written, count = [], {}, [], 0
    for j, r in enumerate(returned):
        if isinstance(r, fx.Node) and r in computed:
            if j >= tail and r.meta["val"].dtype == example_inputs[written[j - tail]].dtype:
                fills[count] = written[j - tail]  # the input's final value: filled into it, no copy back
            positions.append(count)
            count += 1
        else:
            positions.append(None)
            if j >= tail:
                kept_written.append(written[j - tail])
    kind = type(results) if any(p is not None for p in positions) else None
    scalars, _ = compute(tuple(example_inputs))
    device_gm = _device_graph(gm, computed, read, returned, positions, names, tuple(kept_written))
    examples = list(example_inputs) + [torch.tensor(v, dtype=n.meta["val"].dtype) for v, n in zip(scalars, read)]
    dtypes = [r.meta["val"].dtype for r in returned if isinstance(r, fx.Node) and r in computed]
    return HostSplit(device_gm, examples, compute, fills, positions, kind, dtypes, source)


def _host_value(x) -> bool:
    """A value the host's Python holds: a float32/float64 number, or a short list of them."""
    return isinstance(x, torch.Tensor) and x.dtype in HOST_DTYPES and x.numel() <= MAX_ELEMENTS and x.dim() <= 1 \
        and not x.requires_grad


def _on_cpu(graph: fx.Graph, placeholders: list, example_inputs: list) -> set:
    """The nodes whose values live on the CPU (meta values carry no device): inputs by their examples; a factory
    by its `device` (the CPU by default); `_to_copy` to a device; any other op where its tensor operands are, a GPU
    one among them making it a GPU op (a CPU operand there is a 0-dim one, which torch reads as a number)."""
    cpu = {p for p, x in zip(placeholders, example_inputs) if isinstance(x, torch.Tensor) and x.device.type == "cpu"}
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        target = node.kwargs.get("device") if node.target in (aten._to_copy.default, aten.full.default) else None
        inputs = node.all_input_nodes
        if target is not None:
            on = torch.device(target).type == "cpu"
        elif inputs:
            on = all(a in cpu for a in inputs)
        else:
            on = torch.device(node.kwargs.get("device") or "cpu").type == "cpu"
        if on:
            cpu.add(node)
    return cpu


def _device_graph(gm: fx.GraphModule, computed: set, read: list, returned: list, positions: list, names: dict,
                  written: tuple) -> fx.GraphModule:
    """A copy of gm reading each host value in `read` from a new last input; the host nodes and the outputs they
    give dropped (`positions`: None for each output kept)."""
    graph = fx.Graph()
    env: dict = {}
    for node in gm.graph.find_nodes(op="placeholder"):
        env[node] = graph.node_copy(node, env.__getitem__)
    inputs = {}
    for n in read:
        p = inputs[n] = graph.placeholder(f"host_{names[n]}")
        p.meta["val"] = torch.empty((), dtype=n.meta["val"].dtype)
    for node in gm.graph.nodes:
        if node.op == "placeholder" or node in computed:
            continue
        if node.op == "output":
            kept = [env[r] if isinstance(r, fx.Node) else r for r, p in zip(returned, positions) if p is None]
            multi = isinstance(node.args[0], (tuple, list))
            graph.output(tuple(kept) if multi else kept[0])
            continue
        env[node] = graph.node_copy(node, lambda a: inputs[a] if a in inputs else env[a])
    new = fx.GraphModule(gm, graph)
    eager = gm.meta.get(EAGER_OUTPUTS)
    new.meta.update({k: v for k, v in gm.meta.items() if k not in (WRITTEN_INPUTS, EAGER_OUTPUTS)})
    if eager is not None and len(eager) == len(positions):  # per output: those kept
        new.meta[EAGER_OUTPUTS] = tuple(e for e, p in zip(eager, positions) if p is None)
    if written:
        new.meta[WRITTEN_INPUTS] = written
    new.meta[HOST_SCALARS] = tuple(p.name for p in inputs.values())
    return new


# ---- the Python code of the host nodes --------------------------------------------------------------------------

def _write(host: dict, placeholders: list, read: list, returned: list) -> tuple:
    """(source of `compute(args) -> (scalars, host outputs)`, node -> its variable); the outputs are numbers,
    or lists of them, made tensors by HostSplit.wrap."""
    lines = ["def compute(args):"]
    names, index = {}, {p: i for i, p in enumerate(placeholders)}
    for node in host:
        name = names[node] = f"v{len(names)}"
        if node.op == "placeholder":
            if node in read or any(u in host for u in node.users):
                lines.append(f"    {name} = args[{index[node]}].item()")
            continue
        _, write = HOST_OPS[node.target]
        dtype = node.meta["val"].dtype
        expr = write(node, lambda a: _operand(a, names, dtype), dtype)
        lines.append(f"    {name} = {expr}  # {node.format_node()}")
    outs = [names[r] for r in returned if isinstance(r, fx.Node) and r in host and r.op != "placeholder"]
    lines.append(f"    return [{', '.join(names[n] for n in read)}], [{', '.join(outs)}]")
    return "\n".join(lines) + "\n", names


def _operand(a, names: dict, dtype) -> str:
    """An operand in the op's dtype: a host value's variable, or a constant (float32: rounded to it first)."""
    if isinstance(a, fx.Node):
        return names[a]
    value = float(a)
    return repr(_f32(value) if dtype == torch.float32 else value)


def _compile(source: str) -> Callable:
    namespace = {"torch": torch, "_f32": _f32, "_div": _div, "_pow": _pow, "_sqrt": _sqrt, "math": math}
    exec(compile(source, "<framejit host scalars>", "exec"), namespace)
    return namespace["compute"]


_PACK = struct.Struct("f")


def _f32(x: float) -> float:
    """x rounded to float32 (to nearest even; overflow to infinity, as a cast does)."""
    try:
        return _PACK.unpack(_PACK.pack(x))[0]
    except OverflowError:
        with np.errstate(over="ignore"):
            return float(np.float32(x))


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError):  # a negative base to a fraction, 0 to a negative power, overflow: IEEE's
        with np.errstate(all="ignore"):
            return float(np.power(np.float64(a), np.float64(b)))


def _sqrt(a: float) -> float:
    return math.sqrt(a) if a >= 0 else math.nan if a == a else a


def _round(dtype, expr: str) -> str:
    return f"_f32({expr})" if dtype == torch.float32 else expr


def _binary(spell):
    def write(node, op, dtype):
        return _round(dtype, spell(op(node.args[0]), op(node.args[1])))
    return write


# torch's pow kernel takes these exponents as square roots, products and reciprocals, one rounding per step
_POW_SPECIAL = {
    0.5: lambda a, r: r(f"_sqrt({a})"),
    2.0: lambda a, r: r(f"{a} * {a}"),
    3.0: lambda a, r: r(f"{r(f'{a} * {a}')} * {a}"),
    -0.5: lambda a, r: r(f"_div(1.0, {r(f'_sqrt({a})')})"),
    -1.0: lambda a, r: r(f"_div(1.0, {a})"),
    -2.0: lambda a, r: r(f"_div(1.0, {r(f'{a} * {a}')})"),
}


def _pow_write(node, op, dtype):
    base, exp = node.args[0], node.args[1]
    if node.target is aten.pow.Tensor_Scalar and float(exp) in _POW_SPECIAL:
        return _POW_SPECIAL[float(exp)](op(base), lambda e: _round(dtype, f"({e})"))
    return _round(dtype, f"_pow({op(base)}, {op(exp)})")


def _to_copy_ok(node) -> bool:
    return set(node.kwargs) <= {"dtype", "layout", "device", "pin_memory", "memory_format"} and \
        node.kwargs.get("device", None) in (None, torch.device("cpu"))


def _scalar_args(*positions):
    """A 0-dim result; the node's operands at `positions` are host values or real numbers (not bools)."""
    def ok(node) -> bool:
        return node.meta["val"].dim() == 0 and len(node.args) > max(positions) and not node.kwargs and all(
            isinstance(node.args[i], fx.Node) or type(node.args[i]) in (int, float) for i in positions)
    return ok


def _full_ok(node) -> bool:
    return list(node.args[0]) == [] and type(node.args[1]) in (int, float) and \
        node.kwargs.get("device", torch.device("cpu")) == torch.device("cpu")


def _cat_ok(node) -> bool:
    return (len(node.args) < 2 or node.args[1] == 0) and not node.kwargs and \
        all(a.meta["val"].dim() == 1 for a in node.args[0])


def _select_ok(node) -> bool:
    return node.args[0].meta["val"].dim() == 1 and node.args[1] == 0 and type(node.args[2]) is int


# aten op -> (whether this call is written here, write(node, operand, dtype) -> expression). A 1-d host
# value is a Python list (unsqueeze of a scalar, cat, stack), read back by select.
HOST_OPS = {
    aten.add.Tensor: (_scalar_args(0, 1), _binary(lambda a, b: f"({a} + {b})")),
    aten.sub.Tensor: (_scalar_args(0, 1), _binary(lambda a, b: f"({a} - {b})")),
    aten.mul.Tensor: (_scalar_args(0, 1), _binary(lambda a, b: f"({a} * {b})")),
    aten.div.Tensor: (_scalar_args(0, 1), _binary(lambda a, b: f"_div({a}, {b})")),
    aten.neg.default: (_scalar_args(0), lambda n, op, dt: f"(-{op(n.args[0])})"),
    aten.reciprocal.default: (_scalar_args(0), lambda n, op, dt: _round(dt, f"_div(1.0, {op(n.args[0])})")),
    aten.sqrt.default: (_scalar_args(0), lambda n, op, dt: _round(dt, f"_sqrt({op(n.args[0])})")),
    aten.pow.Tensor_Tensor: (_scalar_args(0, 1), _pow_write),
    aten.pow.Tensor_Scalar: (_scalar_args(0, 1), _pow_write),
    aten._to_copy.default: (_to_copy_ok, lambda n, op, dt: _round(dt, op(n.args[0]))),
    aten.clone.default: (lambda n: True, lambda n, op, dt: op(n.args[0])),
    aten.detach.default: (lambda n: True, lambda n, op, dt: op(n.args[0])),
    aten.alias.default: (lambda n: True, lambda n, op, dt: op(n.args[0])),
    aten.full.default: (_full_ok, lambda n, op, dt: repr(_f32(float(n.args[1])) if dt == torch.float32
                                                                  else float(n.args[1]))),
    aten.unsqueeze.default: (lambda n: n.args[0].meta["val"].dim() == 0,
                             lambda n, op, dt: f"[{op(n.args[0])}]"),
    aten.cat.default: (_cat_ok, lambda n, op, dt: " + ".join(f"list({op(a)})" for a in n.args[0])),
    aten.stack.default: (lambda n: (len(n.args) < 2 or n.args[1] == 0) and
                         all(a.meta["val"].dim() == 0 for a in n.args[0]),
                         lambda n, op, dt: "[" + ", ".join(op(a) for a in n.args[0]) + "]"),
    aten.select.int: (_select_ok, lambda n, op, dt: f"{op(n.args[0])}[{n.args[2]}]"),
}

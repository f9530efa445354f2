"""Shape propagation: run every node once on meta tensors and record the result in `node.meta["val"]`.

Meta tensors carry size, stride and dtype but no storage, so propagation costs no memory or FLOPs and the
decomposition rules can ask "is this contiguous?" exactly as eager would answer it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
from torch._prims_common import compute_elementwise_output_strides


def to_meta(value: Any) -> Any:
    """Replace every real tensor inside `value` by a meta tensor of the same size, stride and dtype."""
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return value
        return torch.empty_strided(value.size(), value.stride(), dtype=value.dtype, device="meta")
    if isinstance(value, (list, tuple)):
        return type(value)(to_meta(v) for v in value)
    return value


def meta_value(x: Any) -> Any:
    """What propagation recorded for a node (`node.meta["val"]`); None for anything that is not a node."""
    return x.meta.get("val") if isinstance(x, fx.Node) else None


def meta_tensor(x: Any) -> torch.Tensor | None:
    """meta_value(x) where it is a tensor, else None (sizes and numbers are recorded too)."""
    val = meta_value(x)
    return val if isinstance(val, torch.Tensor) else None


def _load(value: Any) -> Any:
    """Substitute each fx.Node inside an argument structure by its recorded meta value."""
    return fx.node.map_arg(value, lambda n: n.meta.get("val"))


def fetch_attr(gm: fx.GraphModule, target: str) -> Any:
    """gm's attribute at a dotted path (`blocks.0.ln.weight`), as a get_attr node names it."""
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


# Elementwise ops whose meta kernels (Python decompositions) lay the result out otherwise than eager's CPU kernels:
# with operands read in different orders (`x.t()` beside a contiguous `y`, or a 0-dim first operand), eager's
# TensorIterator follows the operands' layout, the meta kernel another. A torch op reading the result sees another
# layout than eager's (dropout draws its mask in memory order: fuzz seed 573898), and `.contiguous()` of it copies
# in eager and not in the trace (fuzz seed 829291: two copies came back as one object). Measured against the CPU
# kernels (torch 2.13) for float and integer operands, and by a sweep of torch's OpInfo samples (unreduced
# binary_cross_entropy); their strides are computed as TensorIterator does (`_iterator_strides`). By name: the aten
# op's, a torch function's, a Tensor method's or an operator's. The sweep's other finds are not elementwise and stay
# as the meta kernels say: fft2 / fftn of real input, linalg eig / svd (LAPACK's column-major results), max_unpool.
_OPERAND_ORDER_WRONG = {"floor_divide", "floordiv", "rfloordiv", "copysign", "xlogy", "xlog1py",
                        "special_xlogy", "special_xlog1py", "heaviside", "logaddexp", "logaddexp2", "logical_and",
                        "logical_or", "logical_xor", "binary_cross_entropy"}


def _op_name(target: Any) -> str:
    """The op's name without dunder underscores; "" for an in-place op (its result is its operand, laid out)."""
    if isinstance(target, str):
        name = target
    elif isinstance(target, torch._ops.OpOverload):
        name = target._schema.name.split("::")[-1]
    else:
        name = getattr(target, "__name__", "") or ""
    if name.startswith("__i") or name.endswith("_") and not name.endswith("__"):
        return ""
    return name.strip("_")


def _misplaced_strides(target: Any, args: Any, kwargs: Any) -> bool:
    name = _op_name(target)
    if name in _OPERAND_ORDER_WRONG:
        return True
    return name in ("div", "truediv") and (kwargs.get("rounding_mode") is not None or
                                           isinstance(target, torch._ops.OpOverload) and
                                           target._overloadname.endswith("mode"))


def eager_layout(target: Any, result: Any, args: Any, kwargs: Any) -> Any:
    """The meta result of `target(*args, **kwargs)` with eager's strides where its meta kernel lays it out
    otherwise (_OPERAND_ORDER_WRONG)."""
    return _iterator_strides(result, args, kwargs) if _misplaced_strides(target, args, kwargs) else result


def _iterator_strides(result: Any, args: Any, kwargs: Any) -> Any:
    """result laid out as TensorIterator lays out an elementwise op's output over these operands."""
    if not isinstance(result, torch.Tensor) or result.dim() < 2:
        return result
    found: list = []
    fx.node.map_aggregate((args, kwargs), lambda v: found.append(v) if isinstance(v, torch.Tensor) else v)
    operands = [t.expand(result.shape) for t in found if t.dim() <= result.dim() and t.dim() > 0]
    if not operands:
        return result
    try:
        strides = compute_elementwise_output_strides(*operands)
    except (RuntimeError, ValueError):
        return result
    return torch.empty_strided(result.shape, strides, dtype=result.dtype, device=result.device)


def eval_node(gm: fx.GraphModule, node: fx.Node) -> Any:
    """The meta value of one node from its inputs' meta values; None when the op cannot run on meta."""
    args, kwargs = _load(node.args), _load(node.kwargs)
    try:
        if node.op == "call_function":
            if _is_factory(node.target, args, kwargs):
                # torch.randn(3), torch.zeros(n): made on the meta device, so propagation neither allocates nor
                # draws from the random generator (a real draw here shifts every random number the program makes)
                kwargs = {**kwargs, "device": "meta"}
            result = to_meta(node.target(*args, **kwargs))
            return eager_layout(node.target, result, args, kwargs)
        if node.op == "call_method":
            self_obj, *rest = args
            target = node.target
            if target in ("to", "cuda", "cpu"):  # a meta tensor cannot move to a real device: it stays on meta
                rest = [] if target != "to" else ["meta" if isinstance(a, (str, torch.device)) else a for a in rest]
                kwargs = {k: "meta" if k == "device" else v for k, v in kwargs.items() if k != "memory_format"
                          or target == "to"}
                target = "to"
            result = to_meta(getattr(self_obj, target)(*rest, **kwargs))
            return eager_layout(target, result, args, kwargs)
        # call_module is left unknown: modules hold real parameters that cannot mix with meta inputs, and
        # `graph.normalize` turns the common modules into functional calls before propagation runs.
        if node.op == "get_attr":
            return to_meta(fetch_attr(gm, node.target))
    except Exception:  # an op without a meta kernel (e.g. .item()): leave it unknown, rules skip it
        return None
    return None


def _is_factory(target: Any, args: Any, kwargs: Any) -> bool:
    """A torch function called with no tensor argument: it makes its result from sizes and values."""
    if not (isinstance(target, torch._ops.OpOverload) or (getattr(target, "__module__", None) or "").startswith("torch")):
        return False
    found: list = []
    fx.node.map_aggregate((args, kwargs), lambda v: found.append(v) if isinstance(v, torch.Tensor) else v)
    return not found


def propagate(gm: fx.GraphModule, example_inputs: list | tuple) -> fx.GraphModule:
    """Fill `node.meta["val"]` for every node of `gm`; placeholders take `example_inputs` in order."""
    inputs = iter(example_inputs)
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            node.meta["val"] = to_meta(next(inputs, None))
        elif node.op == "output":
            node.meta["val"] = _load(node.args[0])
        else:
            node.meta["val"] = eval_node(gm, node)
    return gm

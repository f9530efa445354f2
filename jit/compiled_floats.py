"""Python floats compiled as graph inputs (jit/variables/floats.py FloatVar; which ones: jit/dynamic.py
note_float_changes): how the trace adds one, computes with it, compares it, reads it as a tensor op's scalar
operand, and pins its value where the code needs the number."""
from __future__ import annotations

import operator
import re

import torch

from framejit.guards.kinds import FloatCompare, TypeMatch, ValueMatch
from framejit.guards.sources import FloatTensorSource, Source
from jit.variables import Const, Var
from jit.variables.floats import FloatVar
from jit.variables.tensor import TensorVar


def add_input(output, value: float, source: Source) -> FloatVar:
    """A Python float compiled as a graph input: a 0-dim float64 CPU tensor made from it at each call; its type
    is guarded, not its value. One per source."""
    known = output.float_inputs.get(source.name())
    if known is not None:
        return known
    output.guards.append(TypeMatch(source, float))
    load = FloatTensorSource(source)
    name = output._unique(re.sub(r"\W+", "_", source.name()).strip("_") or "float_input")
    proxy = output.tracer.create_proxy("placeholder", name, (), {})
    example = torch.empty((), dtype=torch.float64, device="meta")
    proxy.node.meta["val"] = example
    var = TensorVar(proxy, example, torch.device("cpu"), load)
    output.inputs.append((load, torch.tensor(value, dtype=torch.float64), var))
    output.float_inputs[source.name()] = FloatVar(var, value, ((source, value),), output)
    return output.float_inputs[source.name()]


def float_op(output, op, a: Var, b: Var | None = None) -> FloatVar:
    """Python arithmetic on compiled floats and numbers, in the graph in float64 (Python's own float math)."""
    operands = [v for v in (a, b) if v is not None]
    parts = [v.tensor if isinstance(v, FloatVar) else v for v in operands]
    hints = [v.hint if isinstance(v, FloatVar) else v.const() for v in operands]
    if not any(isinstance(p, TensorVar) for p in parts):
        raise AssertionError("float_op without a compiled float")
    result = output.call("call_function", op, tuple(parts), {})
    roots = tuple(dict.fromkeys(r for v in operands if isinstance(v, FloatVar) for r in v.roots))
    return FloatVar(result, float(op(*hints)), roots, output)


def compare(output, op, a: FloatVar, other) -> Const:
    """`lr > 0`, `momentum != 0` on a compiled float: the answer, guarded to stay the answer (for a float
    computed from inputs, their values are guarded: specialize)."""
    result = op(a.hint, other)
    if len(a.roots) == 1 and output.float_inputs.get(a.roots[0][0].name()) is a:
        output.guards.append(FloatCompare(a.roots[0][0], op.__name__, other, result))
    else:
        specialize(output, a.roots)
    return Const(result)


def specialize(output, roots) -> None:
    """The code needs a compiled float's number: its inputs' values are guarded (that use recompiles per value,
    as a float constant does)."""
    for source, value in roots:
        output.guards.append(ValueMatch(source, value))


def scalar_operand(tx, v: FloatVar, tensor: TensorVar) -> Var | None:
    """A compiled float as the scalar operand of an op on `tensor`: torch reads a Python float in the op's
    computation type (float64 beside float64, float32 beside any other real dtype, integer and half included),
    which a 0-dim CPU tensor of that type gives (made once per float and type). None (the number is then
    specialized) for complex tensors and for tensors on a GPU: the Triton backend compiles graphs whose CPU
    tensors only torch calls read, and a float's 0-dim tensor moved to the GPU at each call would wait for the
    stream (a copy from pageable memory)."""
    dtype = tensor.example.dtype
    if dtype.is_complex or tensor.device.type != "cpu":
        return None
    if tensor.example.dim() == 0 and dtype in (torch.float16, torch.bfloat16):
        return None  # a 0-dim half tensor and a 0-dim float32 one promote to float32 (a Python float does not)
    wanted = torch.float64 if dtype == torch.float64 else torch.float32
    if wanted not in v.operands:
        v.operands[wanted] = tx.output.call("call_method", "to", (v.tensor, Const(wanted)), {})
    return v.operands[wanted]


# ---- Python operators -------------------------------------------------------------------------------------------

_ARITHMETIC = {operator.add, operator.sub, operator.mul, operator.truediv}
_SWAPPED = {operator.lt: operator.gt, operator.le: operator.ge, operator.gt: operator.lt, operator.ge: operator.le,
            operator.eq: operator.eq, operator.ne: operator.ne}
_TENSOR_OPS = {operator.add, operator.sub, operator.mul, operator.truediv, operator.pow}
# `number / t` is Tensor.__rtruediv__, reciprocal(t) * number in eager (two roundings), not one division; and
# `t ** number` picks kernels by the exponent's value (square, sqrt...): those keep the number (specialized);
# `number ** t` (a compiled beta1 ** step) is pow(Scalar, Tensor), as with the 0-dim tensor
_TENSOR_FIRST_ONLY = {operator.truediv}


def _python_float_like(v: Var) -> bool:
    """A 0-dim float64 CPU tensor: how the trace holds a Python float computed from a tensor (torch.optim's step
    counter, jit/semantics/optim_steps.py), so `lr / bias_correction` is Python's one division."""
    return isinstance(v, TensorVar) and v.example.dim() == 0 and v.example.dtype == torch.float64 and \
        v.device.type == "cpu"


def binary(tx, op, a: Var, b: Var) -> Var | None:
    """A compiled float with a number or another such float: + - * and / by a nonzero number in the graph, in
    float64 as Python computes them, comparisons with a number guarded by their answer; beside a tensor: the tensor
    op with the float as torch reads a Python scalar. None: the general path, which specializes the float."""
    from jit.semantics.operators import _INPLACE_TO_PLAIN, torch_operand
    plain = _INPLACE_TO_PLAIN.get(op, op)
    if isinstance(a, TensorVar) or isinstance(b, TensorVar):
        if plain not in _TENSOR_OPS or plain in _TENSOR_FIRST_ONLY and not isinstance(a, TensorVar) and \
                not _python_float_like(b) or plain is operator.pow and isinstance(a, TensorVar):
            return None
        tensor = a if isinstance(a, TensorVar) else b
        if not isinstance(a, TensorVar):
            op = plain  # `n += t` with a Python number n rebinds n; `t += n` stays in place
        a, b = (scalar_operand(tx, v, tensor) if isinstance(v, FloatVar) else v for v in (a, b))
        return None if a is None or b is None else \
            tx.output.call("call_function", op, (torch_operand(a), torch_operand(b)), {})

    def number(v):
        return isinstance(v, FloatVar) or isinstance(v, Const) and type(v.value) in (int, float)
    if not (number(a) and number(b)):
        return None
    if plain in _SWAPPED and isinstance(b, Const) and isinstance(a, FloatVar):
        return compare(tx.output, plain, a, b.value)
    if plain in _SWAPPED and isinstance(a, Const) and isinstance(b, FloatVar):
        return compare(tx.output, _SWAPPED[plain], b, a.value)
    if plain not in _ARITHMETIC:
        return None
    if plain is operator.truediv and not (isinstance(b, Const) and b.value != 0):
        return None  # (a compiled divisor: Python raises at zero where a tensor gives inf)
    return float_op(tx.output, plain, a, b)


# ---- tensor methods ---------------------------------------------------------------------------------------------

# tensor methods whose one argument may be a compiled float, read as a 0-dim tensor of the op's type (not pow:
# its kernels are chosen by the exponent's value)
_SCALAR_OPERAND_METHODS = {"add", "sub", "mul", "div", "true_divide", "add_", "sub_", "mul_", "div_",
                           "__add__", "__sub__", "__mul__", "__truediv__", "__radd__", "__rmul__"}


def tensor_method(tx, tensor: TensorVar, name: str, args, kwargs, call_tensor_method):
    """A tensor method with a compiled float among its arguments: (a result, or None; the arguments to call it
    with). `p.add_(g, alpha=-lr)`: eager's fma(g, alpha, p) is addcmul's fma(1 * g, alpha, p) with alpha a 0-dim
    tensor; `p.mul_(1 - lr * wd)`: the tensor operand; `exp_avg.lerp_(grad, 1 - beta1)`: a tensor weight of the
    op's type runs the same kernel formula."""
    if name in ("add", "add_", "sub", "sub_") and len(args) == 1 and set(kwargs) == {"alpha"} and \
            isinstance(kwargs["alpha"], FloatVar) and isinstance(args[0], TensorVar) and \
            tensor.example.dtype.is_floating_point and args[0].example.dtype.is_floating_point:
        alpha = kwargs["alpha"] if name.startswith("add") else float_op(tx.output, operator.neg, kwargs["alpha"])
        if (operand := scalar_operand(tx, alpha, tensor)) is not None:
            return call_tensor_method(tx, tensor, "addcmul_" if name.endswith("_") else "addcmul",
                                      [args[0], operand], {}), args
    if name in _SCALAR_OPERAND_METHODS and len(args) == 1 and not kwargs and isinstance(args[0], FloatVar) and \
            (operand := scalar_operand(tx, args[0], tensor)) is not None:
        return None, (operand,)
    if name in ("lerp", "lerp_") and len(args) == 2 and not kwargs and isinstance(args[1], FloatVar) and \
            tensor.example.dtype in (torch.float32, torch.float64) and \
            (operand := scalar_operand(tx, args[1], tensor)) is not None:
        return None, (args[0], operand)
    return None, args

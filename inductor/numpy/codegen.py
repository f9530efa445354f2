"""LoweredGraph -> the source of one standalone Python module that computes the graph with NumPy.

The module imports numpy and math only (never torch): `run(inputs, fallbacks)` takes NumPy arrays in storage
form (numpy/dtypes.py) and returns the graph's outputs as arrays. Each kernel becomes one function named after the
ops it fuses. Inside a kernel, temporaries are reused through ufunc `out=` once their single reader is done
with them, so a fused chain of n ops allocates one array instead of n."""
import ast
import builtins
import math
import importlib.util
import keyword
import re
import dataclasses
from dataclasses import dataclass

import torch

from framejit.graph import symbolic_sizes
from framejit.graph.effects import random_target
from framejit.graph.index_checks import MESSAGES

from . import dtypes, row_blocks
from ..c import codegen as c_codegen
from ..runtime.numpy_helpers import PARALLEL_MIN_ELEMENTS
from ..lowering import input_sizes
from ..ir import (Const, ExternKernel, ExternKind, FallbackKernel, Item, Kernel, Load, LoweredGraph, Op, Reduce, View,
                  loads_in, readers_of, static_shape,
                  ViewKind, dense)


def _prelude() -> str:
    """The code of runtime/numpy_helpers.py without its docstring, read from the file (not imported: the
    compiler never runs the helpers itself)."""
    path = importlib.util.find_spec("framejit.inductor.runtime.numpy_helpers").origin
    with open(path) as f:
        text = f.read()
    body = ast.parse(text).body
    return "".join(text.splitlines(keepends=True)[body[0].end_lineno:]).lstrip("\n")


PRELUDE = _prelude()


def _bound(b) -> str:
    return "" if b is None else repr(b)


# each view kind as a zero-copy NumPy view of the operand's code `c` (identity: the operand itself)
NUMPY_VIEWS = {
    ViewKind.RESHAPE: lambda c, p: f"np.reshape({c}, {p[0]!r})",
    ViewKind.PERMUTE: lambda c, p: f"np.transpose({c}, {p[0]!r})",
    ViewKind.EXPAND: lambda c, p: f"_expand({c}, {p[0]!r})",
    ViewKind.UNSQUEEZE: lambda c, p: f"np.expand_dims({c}, {p[0]})",
    ViewKind.SLICE: lambda c, p: f"{c}[{':, ' * p[0]}{_bound(p[1])}:{_bound(p[2])}:{p[3]}]",
    # the trailing ... keeps a 0-d result a view, not a scalar
    ViewKind.SELECT: lambda c, p: f"{c}[{':, ' * p[0]}{p[1]}, ...]",
}

UFUNC = {
    "abs": "np.abs", "neg": "np.negative", "exp": "np.exp", "log": "np.log", "log1p": "np.log1p",
    "expm1": "np.expm1", "sqrt": "np.sqrt", "reciprocal": "np.reciprocal", "sin": "np.sin", "cos": "np.cos",
    "tanh": "np.tanh", "floor": "np.floor", "ceil": "np.ceil", "round": "np.rint", "trunc": "np.trunc",
    "sign": "np.sign", "bitwise_not": "np.invert", "add": "np.add", "sub": "np.subtract", "mul": "np.multiply",
    "div": "np.true_divide", "remainder": "np.remainder", "maximum": "np.maximum", "minimum": "np.minimum",
    "atan2": "np.arctan2", "bitwise_and": "np.bitwise_and", "bitwise_or": "np.bitwise_or",
    "bitwise_xor": "np.bitwise_xor", "eq": "np.equal", "ne": "np.not_equal", "lt": "np.less",
    "le": "np.less_equal", "gt": "np.greater", "ge": "np.greater_equal", "logical_and": "np.logical_and",
    "logical_or": "np.logical_or", "logical_xor": "np.logical_xor", "logical_not": "np.logical_not",
    "isnan": "np.isnan", "pow": "np.power", "floordiv": "np.floor_divide",
}
# torch's pow_tensor_scalar_optimized_kernel special-cases these exponents (x*x, 1/(x*x), sqrt...; 3 is x*x*x,
# written out in `_op`): the same spellings give its bits, and the generic np.power loop costs ~10x a multiply
POW_BY_EXPONENT = {2: ["np.square"], 0.5: ["np.sqrt"], -1: ["np.reciprocal"], 1: ["np.positive"],
                   -0.5: ["np.sqrt", "np.reciprocal"], -2: ["np.square", "np.reciprocal"]}
# integer ops torch raises on for a zero divisor (RuntimeError "ZeroDivisionError"); NumPy returns 0
INTEGER_DIVISIONS = ("floordiv", "remainder", "truncdiv")
# ops spelled as a short sequence of ufuncs or a helper defined in the module prelude
# issue 20's indexed loads and stores (KernelWriter.indexing)
INDEXING = ("check_index", "take", "gather", "scatter")
COMPOSITE = {"rsqrt", "sigmoid", "relu", "erf", "gelu", "gelu_tanh", "truncdiv", "cast", "where", "full",
             "arange", "cat"}



def _np(dtype_name: str) -> str:
    return f"np.{dtype_name}"


def _literal(value, dtype):
    """A Python scalar as a typed NumPy scalar of the op's compute dtype (torch's wrapped-number promotion was
    already decided at compile time, so the literal must not promote anything itself)."""
    if dtype is None:
        return repr(value)
    value = dtypes.wrapped(value, dtype)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        value = f"float({str(value)!r})"
    else:
        value = repr(value)
    return f"{_np(dtypes.compute(dtype))}({value})"


@dataclass
class Value:
    """A NumPy value inside a kernel: code (a local name), torch dtype, form ('storage' or 'compute'), whether
    this kernel owns its memory (a fresh temporary it may overwrite), and its static shape.

    `exact`: a compute-form float16/bfloat16 value holds a number of its dtype. Eager rounds every op's result to
    the op's dtype, so an op result computed in float32 is not exact until rounded; the rounding is written when a
    later op reads it (`widen`), never for a result that is only stored (storing rounds it anyway).
    `storage_code`: the narrow bits a cast already made, reused when the value is stored."""
    code: str
    dtype: torch.dtype
    form: str
    owned: bool
    shape: tuple
    exact: bool = True
    storage_code: str | None = None

    def __post_init__(self):
        self.shape = tuple(self.shape)


class KernelWriter:
    def __init__(self, *roots):
        self.lines, self.params, self.count = [], [], 0
        # a subexpression read by several ops of the kernel (`acc + acc.float()` unrolled: a DAG) is written once
        # and read by name: written per reader it doubled per level (generator seed 787521 never finished). Such
        # a value is not owned (no reader may overwrite it in place: another reads it after)
        self.shared = _shared(roots)
        self.memo: dict = {}

    def temp(self, code, dtype, form, owned, shape) -> Value:
        # "_t": buffer names come from the user's variables (a `t1` of theirs would be shadowed by our `t1`), and
        # are never made with a leading underscore
        name = f"_t{self.count}"
        self.count += 1
        self.lines.append(f"{name} = {code}")
        return Value(name, dtype, form, owned, shape)

    # -- operands ------------------------------------------------------------------------------------------------
    def value(self, e) -> Value:
        if id(e) not in self.shared:
            return self._value(e)
        hit = self.memo.get(id(e))
        if hit is None:
            hit = self.memo[id(e)] = dataclasses.replace(self._value(e), owned=False)
        return dataclasses.replace(hit)

    def _value(self, e) -> Value:
        if isinstance(e, Load):
            if e.buf not in self.params:
                self.params.append(e.buf)
            return Value(e.buf, e.dtype, "storage", False, e.shape)
        if isinstance(e, Item):
            if e.buf not in self.params:
                self.params.append(e.buf)
            return self.temp(f"{e.buf}[{e.index}]", e.dtype, "storage", False, e.shape)
        if isinstance(e, View):
            return self.view(e)
        if isinstance(e, Op):
            return self.op(e)
        if isinstance(e, Reduce):
            return self.reduce(e)
        raise TypeError(f"cannot emit {e!r}")

    def widen(self, v: Value) -> Value:
        """Storage -> compute form (float16/bfloat16 arithmetic runs in float32), rounded to its dtype."""
        if v.form == "compute" or v.dtype not in dtypes.NARROW:
            v = Value(v.code, v.dtype, "compute", v.owned, v.shape, v.exact, v.storage_code)
            return v if v.exact else self.round(v)
        code = f"{v.code}.astype(np.float32)" if v.dtype == torch.float16 else f"_bf16_to_f32({v.code})"
        return self.temp(code, v.dtype, "compute", True, v.shape)

    def round(self, v: Value) -> Value:
        """A compute-form float16/bfloat16 value rounded to its dtype (still held in float32)."""
        code = f"{v.code}.astype(np.float16).astype(np.float32)" if v.dtype == torch.float16 else \
            f"_round_bf16({v.code})"
        return self.temp(code, v.dtype, "compute", True, v.shape)

    def narrow(self, v: Value) -> Value:
        """Compute -> storage form."""
        if v.form == "storage" or v.dtype not in dtypes.NARROW:
            return Value(v.code, v.dtype, "storage", v.owned, v.shape)
        if v.storage_code is not None:  # rounded by a cast already: reuse its narrow bits
            return Value(v.storage_code, v.dtype, "storage", True, v.shape)
        code = f"{v.code}.astype(np.float16)" if v.dtype == torch.float16 else f"_f32_to_bf16({v.code})"
        return self.temp(code, v.dtype, "storage", True, v.shape)

    def operand(self, e, dtype, opmath_scalar: bool = False, scalar_tensor: bool = False) -> Value:
        """e in compute form, cast to torch dtype `dtype` (None: keep its own dtype). A value converted to a
        narrow dtype is rounded to it first, as eager's cast to the common dtype does (int 2049 -> half 2048); so
        is a Python number, unless the op reads it in float32 (`opmath_scalar`, dtypes.OPMATH_SCALAR_OPS), and so
        is a 0-dim floating tensor unless it is such an op's second operand (`scalar_tensor`: eager's kernel
        reads a CPU scalar's own value in float32, `x_bf16 * torch.tensor(1.2345)` or a float16 one: fuzz seed
        551100)."""
        if isinstance(e, Const):
            value = e.value if opmath_scalar or dtype not in dtypes.NARROW else dtypes.as_dtype(e.value, dtype)
            return Value(_literal(value, dtype), dtype, "compute", False, ())
        v = self.widen(self.value(e))
        if scalar_tensor and dtype in dtypes.NARROW and v.shape == () and v.dtype.is_floating_point and \
                v.dtype != dtype:  # a float16 scalar times bfloat16 too: its value, not bf16's rounding of it
            return self.temp(f"{v.code}.astype(np.float32)", dtype, "compute", True, v.shape)
        if dtype is not None and dtypes.compute(v.dtype) != dtypes.compute(dtype):
            v = self.temp(f"{v.code}.astype({_np(dtypes.compute(dtype))})", dtype, "compute", True, v.shape)
        if dtype in dtypes.NARROW and v.dtype != dtype:
            v = self.round(Value(v.code, dtype, "compute", v.owned, v.shape))
        return v

    # -- expression nodes ----------------------------------------------------------------------------------------
    def view(self, e: View) -> Value:
        v = self.value(e.arg)
        c, p = v.code, e.params
        if e.kind == ViewKind.IDENTITY:
            return Value(c, v.dtype, v.form, False, e.shape, v.exact)
        out = self.temp(NUMPY_VIEWS[e.kind](c, p), v.dtype, v.form, False, e.shape)
        out.exact = v.exact
        return out

    def op(self, e: Op) -> Value:
        v = self._op(e)
        if v.form == "compute" and e.dtype in dtypes.NARROW and e.name not in dtypes.EXACT_IN_DTYPE:
            v = Value(v.code, v.dtype, v.form, v.owned, v.shape, exact=False)
        return v

    def _op(self, e: Op) -> Value:
        out_np = dtypes.compute(e.dtype)
        if e.name == "where":
            c = self.operand(e.args[0], torch.bool)
            a, b = (self.operand(x, e.compute_dtype) for x in e.args[1:])
            return self.temp(f"_select({c.code}, {a.code}, {b.code})", e.dtype, "compute", True, e.shape)
        if e.name == "full":  # the fill value as eager stores it: rounded to the dtype
            value = dtypes.as_dtype(e.args[0].value, e.dtype)
            return self.temp(f"np.full({e.shape!r}, {_literal(value, e.dtype)}, dtype={_np(out_np)})",
                             e.dtype, "compute", True, e.shape)
        if e.name == "arange":
            start, end, step = e.params
            if e.dtype.is_floating_point:  # torch computes start + i*step in double, then rounds
                code = f"({start!r} + np.arange({e.shape[0]}, dtype=np.float64) * {step!r}).astype({_np(out_np)})"
            else:
                code = f"np.arange({start!r}, {end!r}, {step!r}, dtype={_np(out_np)})"
            return self.temp(code, e.dtype, "compute", True, e.shape)
        if e.name == "cat":
            parts = [self.operand(a, e.dtype).code for a in e.args]
            return self.temp(f"np.concatenate([{', '.join(parts)}], axis={e.params[0]})", e.dtype, "compute",
                             True, e.shape)
        if e.name in INDEXING:
            return self.indexing(e)
        opmath = e.name in dtypes.OPMATH_SCALAR_OPS
        args = [self.operand(a, e.compute_dtype, opmath, opmath and i == 1 and len(e.args) == 2)
                for i, a in enumerate(e.args)]
        if e.name == "cast":
            v = args[0]
            if e.dtype in dtypes.NARROW:  # round through the narrow type so later fused ops see its precision
                narrow = self.narrow(Value(v.code, e.dtype, "compute", v.owned, v.shape))
                v = self.widen(narrow)
                v.storage_code = narrow.code
                return v
            return Value(v.code, e.dtype, "compute", v.owned, e.shape)
        if e.name == "relu":
            return self.ufunc("np.maximum", [args[0], Value(_literal(0, e.compute_dtype), e.dtype, "compute", False,
                                                              ())], e)
        if e.name == "rsqrt":
            return self.ufunc("np.reciprocal", [self.ufunc("np.sqrt", args, e)], e)
        if e.name == "sigmoid":  # 1 / (1 + exp(-x)); exp overflow gives inf and then exactly 0, as torch does
            t = self.ufunc("np.exp", [self.ufunc("np.negative", args, e)], e)
            t = self.ufunc("np.add", [t, Value(_literal(1, e.dtype), e.dtype, "compute", False, ())], e)
            return self.ufunc("np.reciprocal", [t], e)
        if e.name == "sign" and e.dtype.is_floating_point:  # torch: sign(nan) is 0, NumPy's is nan
            x = args[0].code
            return self.temp(f"np.where(np.isnan({x}), {_literal(0, e.dtype)}, np.sign({x}))", e.dtype, "compute",
                             True, e.shape)
        if e.name == "erf":
            return self.temp(f"_erf({args[0].code})", e.dtype, "compute", True, e.shape)
        if e.name == "gelu":  # 0.5 * x * (1 + erf(x / sqrt(2)))
            return self.temp(f"_gelu(np.asarray({args[0].code}))", e.dtype, "compute", True, e.shape)
        if e.name == "gelu_tanh":
            x = args[0].code
            return self.temp(f"{x} * (0.5 * (1.0 + np.tanh({_literal((2 / 3.141592653589793) ** 0.5, e.dtype)}"
                             f" * ({x} + {_literal(0.044715, e.dtype)} * {x} ** 3))))", e.dtype, "compute", True,
                             e.shape)
        if e.name == "pow":
            return self.pow(e, args)
        # a constant 0 divisor never gets here: eager rejects it at any values, so lowering ran it in torch
        if e.name in INTEGER_DIVISIONS and not e.compute_dtype.is_floating_point and not (
                isinstance(e.args[1], Const) and type(e.args[1].value) is int):
            size = "1" if not e.shape else " * ".join(str(n) for n in e.shape)
            args[1] = Value(f"_divisor({args[1].code}, {size})", args[1].dtype, "compute", False, args[1].shape)
        if e.name == "remainder" and e.compute_dtype.is_floating_point:
            # torch: fmod, plus b where the signs differ; a zero result keeps fmod's sign (-4 % 2 is -0.0), where
            # np.remainder gives the divisor's
            return self.temp(f"_remainder({args[0].code}, {args[1].code})", e.dtype, "compute", True, e.shape)
        if e.name == "truncdiv":
            return self.temp(f"_truncdiv({args[0].code}, {args[1].code})", e.dtype, "compute", True, e.shape)
        return self.ufunc(UFUNC[e.name], args, e)

    def indexing(self, e: Op) -> Value:
        """Issue 20's indexed ops (lowering.py's INDEXING_OPS). Loads move elements without arithmetic: the
        source keeps its form (storage or compute) and exactness. Scatters accumulate in the compute dtype
        (float32 for half types) and round once when stored."""
        if e.name == "check_index":
            size, dim, wrap, kind = e.params
            error, message = MESSAGES[kind]
            idx = self.value(e.args[0])
            return self.temp(f"_check_index({idx.code}, {size!r}, {dim}, {wrap}, {error.__name__!r}, {message!r})",
                             e.dtype, "compute", True, e.shape)
        if e.name in ("take", "gather"):
            src, idx = self.value(e.args[0]), self.value(e.args[1])
            fn = "np.take" if e.name == "take" else "np.take_along_axis"
            if len(e.args[0].shape) == 0:  # torch reads a 0-dim tensor along dim 0 or -1; NumPy wants an axis
                call = f"np.reshape({fn}(np.reshape({src.code}, (1,)), np.reshape({idx.code}, (-1,)), axis=0), " \
                       f"{tuple(e.shape)!r})"
            else:
                call = f"{fn}({src.code}, {idx.code}, axis={e.params[0]})"
            out = self.temp(call, e.dtype, src.form, True, e.shape)
            out.exact = src.exact
            return out
        dim, mode, take = e.params
        base, src = self.operand(e.args[0], e.dtype), self.operand(e.args[2], e.dtype)
        idx = self.value(e.args[1])
        return self.temp(f"_scatter({base.code}, {idx.code}, {src.code}, {dim}, {mode == 'add'}, {take})",
                         e.dtype, "compute", True, e.shape)

    def pow(self, e: Op, args: list) -> Value:
        """torch's pow: integer powers by aten's powi (`_ipow`); for a Python-number exponent the spellings of
        pow_tensor_scalar_kernel (x*x, x*x*x, 1/(x*x), sqrt, rsqrt, reciprocal; float16 has only std::pow, whose
        pow(-inf, 0.5) is inf where sqrt's is nan), the exponent rounded to a half type as torch converts it; the
        rest through `_fpow`, which keeps NumPy from taking its own sqrt shortcut for a scalar exponent."""
        if not e.compute_dtype.is_floating_point:
            return self.temp(f"_ipow({args[0].code}, {args[1].code})", e.dtype, "compute", True, e.shape)
        c = e.args[1]
        exponent = c.value if isinstance(c, Const) and type(c.value) in (int, float) else None
        if exponent == 3:
            x = args[0].code
            return self.temp(f"{x} * {x} * {x}", e.dtype, "compute", True, e.shape)
        if exponent in POW_BY_EXPONENT and not (e.compute_dtype == torch.float16 and exponent in (0.5, -0.5)):
            v = args[0]
            for fn in POW_BY_EXPONENT[exponent]:
                v = self.ufunc(fn, [v], e)
            return v
        b = args[1].code if exponent is None else _literal(dtypes.as_dtype(exponent, e.compute_dtype), e.dtype)
        return self.temp(f"_fpow({args[0].code}, {b})", e.dtype, "compute", True, e.shape)

    def ufunc(self, fn, args, e) -> Value:
        """Call a ufunc, writing into an operand this kernel owns when shape and dtype allow (no temporary)."""
        out_np = dtypes.compute(e.dtype)
        arglist = ", ".join(a.code for a in args)
        for a in args:
            if a.owned and a.shape == tuple(e.shape) and len(e.shape) > 0 and dtypes.compute(a.dtype) == out_np:
                self.lines.append(f"{fn}({arglist}, out={a.code})")
                return Value(a.code, e.dtype, "compute", True, e.shape)
        return self.temp(f"{fn}({arglist})", e.dtype, "compute", True, e.shape)

    def reduce(self, e: Reduce) -> Value:
        v = self._reduce(e)
        if e.dtype in dtypes.NARROW and e.kind not in dtypes.EXACT_IN_DTYPE:
            # accumulated in float32; eager rounds the result to the half type before anything reads it
            v = Value(v.code, v.dtype, v.form, v.owned, v.shape, exact=False)
        return v

    def _reduce(self, e: Reduce) -> Value:
        if e.kind in ("sum", "prod", "mean") and e.dtype in dtypes.NARROW and e.arg.dtype != e.dtype:
            v = self.operand(e.arg, e.dtype)  # sum(x, dtype=float16) rounds x to float16 first, as eager
        else:
            v = self.widen(self.value(e.arg))
        out_np = _np(dtypes.compute(e.dtype))
        axis = "None" if e.axes is None else repr(e.axes)
        if e.kind in ("argmax", "argmin"):
            ax = "None" if e.axes is None else e.axes[0]
            code = f"np.reshape(np.{e.kind}({v.code}, axis={ax}), {e.shape!r})"
        elif e.kind in ("sum", "mean") and _rowsum_ok(e, v):
            k = _count(e, v)
            t = self.temp(f"_rowsum({v.code}, {k}, {axis}, {e.keepdim})", e.dtype, "compute", True, e.shape)
            if e.kind == "mean":
                self.lines.append(f"np.true_divide({t.code}, {_literal(k, e.dtype)}, out={t.code})")
            return t
        elif e.kind in ("amax", "amin") and _trailing(e, v):
            fn = "np.maximum" if e.kind == "amax" else "np.minimum"
            code = f"_rowmax({fn}, {v.code}, {_count(e, v)}, {axis}, {e.keepdim})"
        elif e.kind in ("sum", "prod", "mean"):
            # accumulate in the output's compute dtype: float32 for half types, int64 for integer sums
            code = f"np.{e.kind}({v.code}, axis={axis}, keepdims={e.keepdim}, dtype={out_np})"
        else:
            code = f"np.{ {'amax': 'max', 'amin': 'min', 'any': 'any', 'all': 'all'}[e.kind]}" \
                   f"({v.code}, axis={axis}, keepdims={e.keepdim})"
        # np.asarray turns full reductions' NumPy scalars back into 0-d arrays
        return self.temp(f"np.asarray({code}, dtype={out_np})", e.dtype, "compute", True, e.shape)

    def store(self, v: Value, dtype, alias_ok: bool) -> str:
        v = self.narrow(v)
        target = _np(dtypes.storage(dtype))
        if v.owned or alias_ok:
            return f"np.asarray({v.code}, dtype={target})"
        return f"np.array({v.code}, dtype={target})"  # a copy: the output must not alias an input


def _count(e: Reduce, v: Value) -> int:
    """How many elements each output element of `e` folds."""
    k = 1
    for d in e.axes:
        k *= v.shape[d]
    return k


def _trailing(e: Reduce, v: Value) -> bool:
    """`e` folds the trailing dims of a non-empty operand (each output element reads one contiguous run)."""
    if e.axes is None or len(v.shape) == 0:
        return False
    ndim = len(v.shape)
    return tuple(e.axes) == tuple(range(ndim - len(e.axes), ndim)) and _count(e, v) > 0


def _rowsum_ok(e: Reduce, v: Value) -> bool:
    """A float sum over trailing dims (the softmax / norm pattern) runs as a matrix-vector product; rows longer
    than ROWSUM_MAX keep np.sum, whose pairwise summation bounds the rounding error on long rows."""
    if dtypes.compute(e.dtype) not in ("float32", "float64") or dtypes.compute(v.dtype) != dtypes.compute(e.dtype):
        return False
    return _trailing(e, v) and _count(e, v) <= ROWSUM_MAX


ROWSUM_MAX = 8192


def _ops_in(e, acc, seen=None):
    seen = set() if seen is None else seen
    if id(e) in seen:  # a shared subexpression (the tree is a DAG): once
        return acc
    seen.add(id(e))
    if isinstance(e, Op):
        for a in e.args:
            _ops_in(a, acc, seen)
        acc.append(e.name)
    elif isinstance(e, Reduce):
        _ops_in(e.arg, acc, seen)
        acc.append(e.kind)
    elif isinstance(e, View):
        _ops_in(e.arg, acc, seen)
        if e.kind != ViewKind.IDENTITY:
            acc.append(e.kind)
    return acc


def _kernel_name(kernel, used):
    if isinstance(kernel, Kernel):
        ops = list(dict.fromkeys(_ops_in(kernel.expr, [])))
        base = "_".join(ops[:4]) or "copy"
        base = ("fused_" + base) if len(ops) > 1 else base
    else:
        base = kernel.kind
    name, i = base, 1
    while name in used or name in _RESERVED:
        i += 1
        name = f"{base}_{i}"
    used.add(name)
    return name


# names a kernel function must not take: the module's globals are the runtime helpers' too, and a kernel called
# `slice` (one slicing op) made `_scatter`'s own slice(None) call that kernel (fuzz seed 206946)
_RESERVED = set(dir(builtins)) | set(keyword.kwlist)


def _shared(roots) -> set:
    """ids of the computed subexpressions (ops, reductions, views) the trees under `roots` read more than once."""
    seen, shared = set(), set()
    stack = list(roots)
    while stack:
        e = stack.pop()
        if not isinstance(e, (Op, Reduce, View)):
            continue
        if id(e) in seen:
            shared.add(id(e))
            continue
        seen.add(id(e))
        stack.extend(e.children())
    return shared


def generate(lg: LoweredGraph, c_kernels: bool = True) -> str:
    """The module's source. Sizes that depend on dynamic input dims (SymInts) are read from the inputs at the
    top of `run` (`s0 = x.shape[1]`) and passed to the kernels that use them, so one module serves every size its
    compile's conditions allow (graph/size_variants.py). Kernels the `c_kernels` switch wants in C become
    functions of a C extension module the source carries (c/codegen.py); `c_kernels=False` (export_numpy): none,
    the module needs nothing but NumPy."""
    # kernel names must not shadow the buffer variables in run()
    used = {b.name for b in lg.inputs} | {k.out.name for k in lg.kernels}
    sizes = input_sizes(lg)
    names = {sym: sym if sym not in used else f"size_{sym}" for sym in sizes}
    used |= set(names.values())
    with symbolic_sizes.rendering(symbolic_sizes.NameRenderer(names.get)) as renderer:
        return _generate(lg, used, sizes, names, renderer, c_kernels)


def _generate(lg: LoweredGraph, used: set, sizes: dict, size_names: dict, renderer, c_kernels: bool) -> str:
    header = ["# Generated by framejit's NumPy backend: one function per fused kernel, `run` calls them in order.",
              "# Source FX graph:"]
    header += ["#   " + line for line in lg.graph_text.strip().splitlines()]
    body, units, c_functions = [], [], []
    view_bases = _bases_of_returned_views(lg)
    # (read only for *_like fallbacks: with dynamic sizes, asking whether a layout is dense adds size conditions)
    computed = _eager_orders(lg) if any(_reads_layout(k) for k in lg.kernels) else {}
    input_names = {b.name for b in lg.inputs}
    kept = _kept_arrays(lg, view_bases) if c_kernels else set()
    for kernel in lg.kernels:
        out = kernel.out.name
        renderer.take()
        if isinstance(kernel, FallbackKernel):
            w = KernelWriter(*kernel.inputs)
            # torch reads the operands' memory as their dtype: compute-form half values (float32 arrays) would
            # come back as float32, and bf16 ones as twice as many int16 elements
            vals = [w.narrow(w.value(a)) for a in kernel.inputs]
            # a computed operand that came out as another buffer itself (a clone, a same-dtype cast) is a new
            # tensor in eager: torch may hand back a view of it, which must not alias that other buffer
            codes = [f"_clone({v.code})" if isinstance(a, Op) and not v.owned else v.code
                     for a, v in zip(kernel.inputs, vals)]
            # a *_like op (rand_like, empty_like) makes its result in its operand's layout, a random op draws in
            # memory order and a view succeeds or raises by the strides: the operand in eager's layout, not
            # NumPy's (`astype` of a broadcast puts the broadcast dim innermost)
            like = _reads_layout(kernel)
            orders = [None if not like else computed.get(a.buf) if isinstance(a, Load) else _eager_order(a)
                      for a in kernel.inputs]
            # a buffer is laid out once, in place of itself: two views of it (`t.detach()` twice) share memory as
            # eager's do (fuzz seed 486561)
            own = [order is not None and isinstance(a, Load) and c == a.buf and a.buf not in input_names
                   for a, c, order in zip(kernel.inputs, codes, orders)]
            relaid = [f"{c} = _laid_out({c}, {order})" for c, order, o in zip(codes, orders, own) if o]
            codes = [f"_laid_out({c}, {order})" if order is not None and not o else c
                     for c, order, o in zip(codes, orders, own)]
            renderer.take()  # inline in `run`, where every size is defined
            pre = [f"        {line}" for line in w.lines + list(dict.fromkeys(relaid))]
            units.append(row_blocks.Unit(out, w.params, pre + [
                f"        {out} = fallbacks[{out!r}]({', '.join(codes)})"
                f"  # eager torch: {kernel.source[0]}"]))
            continue
        if c_kernels and c_codegen.wanted(kernel):
            fname = _kernel_name(kernel, used)
            lines, function, params = _c_kernel(kernel, fname, view_bases.get(out), out in kept)
            body += lines
            c_functions.append((fname, function))
            units.append(row_blocks.Unit(out, params, [f"        {out} = {fname}({', '.join(params)})"], kernel,
                                         fname))
            continue
        w = KernelWriter(*(kernel.args if isinstance(kernel, ExternKernel) else [kernel.expr]))
        if isinstance(kernel, ExternKernel):
            result = _extern(w, kernel)
        else:
            result = w.value(kernel.expr)
        ret = w.store(result, kernel.out.layout.dtype, alias_ok=isinstance(kernel, Kernel) and kernel.is_view)
        if out in view_bases:
            ret = f"_laid_out({ret}, {view_bases[out]})"
        fname = _kernel_name(kernel, used)
        w.params += sorted(renderer.take())  # the sizes this kernel's code names, passed by `run`
        rows = row_blocks.plan(kernel)
        lines, params = w.lines, w.params
        into = _write_into(lines, result, kernel) if rows is not None else None
        if into is not None:  # the block's last op writes straight into the output's rows: no copy
            lines, params, ret = into, w.params + ["out_block"], "out_block"
        body.append(f"def {fname}({', '.join(params)}):")
        body += [f"    # {s}" for s in kernel.source]
        body += [f"    {line}" for line in lines] + [f"    return {ret}", "", ""]
        units.append(row_blocks.Unit(out, w.params, [f"        {out} = {fname}({', '.join(w.params)})"], kernel,
                                     fname, rows, into is not None))
    returned = {o.buf for o in lg.outputs if isinstance(o, (Load, Item))}
    wrappers, calls = row_blocks.schedule(units, returned, used)
    body += wrappers
    outs = []
    for o in lg.outputs:
        if isinstance(o, Load):
            outs.append(o.buf)
        elif isinstance(o, Item):
            outs.append(f"{o.buf}[{o.index}]")
        else:
            outs.append(repr(o))
    names = [b.name for b in lg.inputs]
    run = ["def run(inputs, fallbacks=None):",
           "    \"\"\"Inputs and outputs are NumPy arrays (bfloat16 as int16 bits), in the graph's order.\"\"\"",
           f"    {', '.join(names) + (',' if len(names) == 1 else '')} = inputs" if names else "    pass"]
    run += [f"    {size_names[sym]} = {buf}.shape[{d}]  # a dynamic size" for sym, (buf, d) in sizes.items()]
    run.append("    with np.errstate(all='ignore'):  # torch's semantics: inf/nan results, no warnings")
    run += calls or ["        pass"]
    run.append(f"    return [{', '.join(outs)}]")
    if c_functions:  # compiled (or read from the disk cache) when the module is loaded
        body = [f"{C_MODULE}{c_codegen.module_source(c_functions)!r})", "", ""] + body
    return "\n".join(header) + "\n" + PRELUDE + "\n\n" + "\n".join(body + run) + "\n"


C_MODULE = "_C = _c_module("
C_BLOCKS = 8  # a big C kernel's rows in this many blocks, taken by the module's threads as they come free


def c_source(source: str) -> str | None:
    """The C a generated module's source carries, or None."""
    start = source.find("\n" + C_MODULE)
    if start < 0:
        return None
    line = source[start + 1:source.index("\n", start + 1)]
    return ast.literal_eval(line[len(C_MODULE):-1])


def _c_kernel(kernel, fname: str, order, kept: bool) -> tuple:
    """(the module's Python function calling a kernel's C function, that C function, its parameters): the output
    allocated (or kept between calls), the C called on all rows or on blocks of rows shared out to the module's
    threads (the C releases the GIL), the result laid out in `order` where a returned view needs it."""
    function, params, rows = c_codegen.kernel_function(fname, kernel)
    layout, out = kernel.out.layout, kernel.out.name
    alloc = f"_scratch({out!r}, " if kept else "np.empty("
    call = f"_C.{fname}(out{''.join(', ' + p for p in params)}"
    lines = [f"def {fname}({', '.join(params)}):", f"    # C: {'; '.join(kernel.source)}",
             f"    out = {alloc}{tuple(layout.shape)!r}, {_np(dtypes.storage(layout.dtype))})"]
    numel = math.prod(layout.shape)
    if rows is None:
        lines.append(f"    {call})")
    elif numel < PARALLEL_MIN_ELEMENTS or rows < 2:
        lines.append(f"    {call}, 0, {rows})")
    else:
        block = -(-rows // C_BLOCKS)
        lines.append(f"    _run_blocks(lambda starts: [{call}, s, min(s + {block}, {rows})) for s in starts], "
                     f"{rows}, {block}, {numel})")
    ret = "out" if order is None else f"_laid_out(out, {order})"
    return lines + [f"    return {ret}", "", ""], function, params


KEPT_BYTES = 64 << 20  # intermediates a module keeps between calls, at most (per thread)


def _kept_arrays(lg: LoweredGraph, view_bases: dict) -> set:
    """C kernels' outputs kept from call to call instead of allocated per call: a multi-MiB array malloc maps
    anew each call costs ~1 us per 4 KiB page in faults, as much as the kernel (two live 4 MiB intermediates of
    a layer norm: 994 faults, 2.4 ms for 0.25 ms of work). Only intermediates: neither returned nor viewed by
    what is returned, read by computing kernels alone (a torch fallback or a view kernel may hand a view of it
    on), up to KEPT_BYTES in all."""
    returned = {o.buf for o in lg.outputs if isinstance(o, (Load, Item))} | set(view_bases)
    for o in lg.outputs:
        if isinstance(o, View):
            returned.update(loads_in(o))
    readers = readers_of(lg.kernels)
    kept, total = set(), 0
    for k in lg.kernels:
        name = k.out.name
        if not isinstance(k, Kernel) or k.is_view or name in returned or name in lg.donated:
            continue
        if not all(isinstance(lg.kernels[i], ExternKernel) or (isinstance(lg.kernels[i], Kernel) and
                                                                not lg.kernels[i].is_view)
                   for i in readers.get(name, ())):
            continue
        size = k.out.layout.nbytes if static_shape(k.out.layout.shape) else None
        if size is not None and size >= KEPT_MIN_BYTES and total + size <= KEPT_BYTES:
            kept.add(name)
            total += size
    return kept


KEPT_MIN_BYTES = 128 << 10  # malloc serves smaller ones from its heap without faults


_LAYOUT_VIEWS = {"view", "view_as", "as_strided", "_unsafe_view"}


def _reads_layout(kernel) -> bool:
    """A torch fallback whose result depends on its operands' strides: a *_like op (rand_like, empty_like) takes
    its operand's layout, a random op (dropout, bernoulli) draws in memory order, a view needs compatible strides
    and hands the operand's strides on to its result (detach, transpose: later views of it need eager's)."""
    if not isinstance(kernel, FallbackKernel):
        return False
    if kernel.aliases:
        return True
    name = getattr(kernel.target, "__name__", kernel.target if isinstance(kernel.target, str) else "").split(".")[0]
    return name.endswith("_like") or name in _LAYOUT_VIEWS or random_target(kernel.target)


def _order(shape, strides) -> tuple | None:
    """Dims outermost first for a dense layout of 2+ dims; None for others (nothing to lay out)."""
    if len(shape) < 2 or not dense(shape, strides):
        return None
    return tuple(sorted(range(len(shape)), key=lambda d: (-strides[d], -shape[d])))


def _eager_order(e) -> tuple | None:
    """Eager's dim order for an expression computed inline (its FX node's meta value), if known."""
    val = e.fx_node.meta.get("val") if isinstance(e, Op) and e.fx_node is not None else None
    return _order(tuple(val.shape), tuple(val.stride())) if isinstance(val, torch.Tensor) else None


def _eager_orders(lg: LoweredGraph) -> dict:
    """{buffer: eager's dim order, outermost first} for each dense buffer a (non-view) kernel computes."""
    found = {}
    for k in lg.kernels:
        layout = k.out.layout
        order = _order(layout.shape, layout.strides) if isinstance(k, Kernel) and not k.is_view and layout else None
        if order is not None:
            found[k.out.name] = order
    return found


def _bases_of_returned_views(lg: LoweredGraph) -> dict:
    """{buffer: eager's dim order, outermost first} for each computed buffer some returned view kernel reads (`list(x * 3)`
    returns rows of it): the runtime lays out returned buffers as eager does, but a view's base must be laid out
    before the view is taken."""
    kernels = {k.out.name: k for k in lg.kernels}
    found = {}
    for o in lg.outputs:
        k = kernels.get(o.buf) if isinstance(o, (Load, Item)) else None
        if not (isinstance(k, Kernel) and k.is_view):
            continue
        e = k.expr
        while isinstance(e, (View, Load)):
            if isinstance(e, View):
                e = e.arg
                continue
            k = kernels.get(e.buf)
            if not (isinstance(k, Kernel) and k.is_view):
                break
            e = k.expr
        if not isinstance(e, Load) or not isinstance(k, Kernel):
            continue
        shape, strides = k.out.layout.shape, k.out.layout.strides
        if dense(shape, strides):
            found[k.out.name] = tuple(sorted(range(len(shape)), key=lambda d: (-strides[d], -shape[d])))
    return found


_CREATES = re.compile(r"^(_t\d+) = (np\.[a-z_0-9]+)\((.*)\)$")
OUT_UFUNCS = set(UFUNC.values()) | {fn for fns in POW_BY_EXPONENT.values() for fn in fns}


def _write_into(lines: list, result: Value, kernel) -> list | None:
    """The kernel's lines with the result's creating ufunc call writing into `out_block` (and the in-place
    updates after it following), or None when the result is not a fresh ufunc result of the output's dtype."""
    layout = kernel.out.layout
    if not result.owned or result.shape != tuple(layout.shape) or result.dtype != layout.dtype or \
            dtypes.compute(layout.dtype) != dtypes.storage(layout.dtype):
        return None
    for i, line in enumerate(lines):
        m = _CREATES.match(line)
        if m and m.group(1) == result.code:
            if m.group(2) not in OUT_UFUNCS:
                return None
            name = re.compile(rf"\b{result.code}\b")
            return lines[:i] + [f"{m.group(2)}({m.group(3)}, out=out_block)"] + \
                [name.sub("out_block", later) for later in lines[i + 1:]]
    return None


def _extern(w: KernelWriter, k: ExternKernel) -> Value:
    dtype, shape, p = k.out.layout.dtype, k.out.layout.shape, k.params
    args = [w.operand(a, dtype) for a in k.args]
    if k.kind == ExternKind.MATMUL:
        return w.temp(f"np.matmul({args[0].code}, {args[1].code})", dtype, "compute", True, shape)
    if k.kind == ExternKind.ADDMM:
        bias, a, b = args
        t = w.temp(f"np.matmul({a.code}, {b.code})", dtype, "compute", True, shape)
        if p["alpha"] != 1:
            w.lines.append(f"np.multiply({t.code}, {_literal(p['alpha'], dtype)}, out={t.code})")
        if p["beta"] != 0:  # beta == 0 ignores the bias entirely (even nan/inf in it), as torch does
            scaled = bias.code if p["beta"] == 1 else f"{bias.code} * {_literal(p['beta'], dtype)}"
            w.lines.append(f"np.add({t.code}, {scaled}, out={t.code})")
        return t
    if k.kind in (ExternKind.CUMSUM, ExternKind.CUMPROD):  # the operand in the result dtype first, as eager casts it
        if p["dim"] is None:  # a 0-d tensor: its own running sum
            return w.temp(f"np.array({args[0].code}, copy=True)", dtype, "compute", True, shape)
        # torch's scan returns a contiguous tensor whatever its operand's layout (NumPy's keeps a transposed one)
        return w.temp(f"np.ascontiguousarray(np.{k.kind}({args[0].code}, axis={p['dim']}))", dtype, "compute", True,
                      shape)
    if k.kind == ExternKind.SDPA:
        mask = "None"
        if p["has_mask"]:
            m = k.args[3]
            mask = (w.operand(m, None) if m.dtype == torch.bool else w.operand(m, dtype)).code
        return w.temp(f"_sdpa({args[0].code}, {args[1].code}, {args[2].code}, {mask}, {p['is_causal']}, "
                      f"{p['scale']!r})", dtype, "compute", True, shape)
    if k.kind == ExternKind.CONV:
        bias = args[2].code if p["has_bias"] else "None"
        return w.temp(f"_conv({args[0].code}, {args[1].code}, {bias}, {p['stride']}, {p['padding']}, "
                      f"{p['dilation']}, {p['groups']})", dtype, "compute", True, shape)
    raise ValueError(k.kind)

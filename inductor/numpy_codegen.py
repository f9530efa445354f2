"""LoweredGraph -> the source of one standalone Python module that computes the graph with NumPy.

The module imports numpy and math only (never torch): `run(inputs, fallbacks)` takes NumPy arrays in storage
form (dtypes.py) and returns the graph's outputs as arrays. Each kernel becomes one function named after the
ops it fuses. Inside a kernel, temporaries are reused through ufunc `out=` once their single reader is done
with them, so a fused chain of n ops allocates one array instead of n."""
import torch

from . import dtypes
from .ir import Const, ExternKernel, FallbackKernel, Item, Kernel, Load, LoweredGraph, Op, Reduce, View

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
# ops spelled as a short sequence of ufuncs or a helper defined in the module prelude
COMPOSITE = {"rsqrt", "sigmoid", "relu", "erf", "gelu", "gelu_tanh", "truncdiv", "cast", "where", "full",
             "arange", "cat"}

PRELUDE = '''import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_erf_scalar = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf is exact to double precision


def _erf(x):
    return np.asarray(_erf_scalar(x), dtype=x.dtype)


def _bf16_to_f32(bits):
    # bfloat16 is the high half of a float32: widen the raw bits (held as int16, NumPy has no bf16)
    return (np.asarray(bits).astype(np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def _f32_to_bf16(x):
    # round to nearest even on the dropped 16 bits, as torch's float->bfloat16 conversion does
    x = np.array(x, dtype=np.float32, order="C")
    u = x.view(np.uint32)
    r = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), r).view(np.int16)


def _truncdiv(a, b):
    if np.issubdtype(np.asarray(a).dtype, np.integer):
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -q, q).astype(np.asarray(a).dtype)
    return np.trunc(np.true_divide(a, b))


def _sdpa(q, k, v, mask, is_causal, scale):
    s = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    att = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(s)
    if is_causal:
        att = np.where(np.tril(np.ones(att.shape[-2:], dtype=bool)), att, -np.inf)
    if mask is not None:
        att = np.where(mask, att, -np.inf) if mask.dtype == np.bool_ else att + mask
    att = att - np.max(att, axis=-1, keepdims=True)  # softmax shifted by the row max: no overflow in exp
    np.exp(att, out=att)
    att /= att.sum(axis=-1, keepdims=True)
    return np.matmul(att, v)


def _conv(x, w, b, stride, padding, dilation, groups):
    one_d = x.ndim == 3  # a 1-d convolution is a 2-d one over a height-1 image
    if one_d:
        x, w = x[:, :, None, :], w[:, :, None, :]
        stride, padding, dilation = (1,) + stride, (0,) + padding, (1,) + dilation
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    span = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    win = sliding_window_view(x, span, axis=(2, 3))[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]
    oh, ow = win.shape[2:4]
    win = win.reshape(n, groups, cg, oh, ow, kh, kw)
    out = np.einsum("ngchwij,gocij->ngohw", win, w.reshape(groups, o // groups, cg, kh, kw), optimize=True)
    out = out.reshape(n, o, oh, ow)
    if b is not None:
        out += b[None, :, None, None]
    return out[:, :, 0, :] if one_d else out
'''


def _np(dtype_name: str) -> str:
    return f"np.{dtype_name}"


def _literal(value, dtype):
    """A Python scalar as a typed NumPy scalar of the op's compute dtype (torch's wrapped-number promotion was
    already decided at compile time, so the literal must not promote anything itself)."""
    if dtype is None:
        return repr(value)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        value = f"float({str(value)!r})"
    else:
        value = repr(value)
    return f"{_np(dtypes.compute(dtype))}({value})"


class Value:
    """A NumPy value inside a kernel: code (a local name), torch dtype, form ('storage' or 'compute'), whether
    this kernel owns its memory (a fresh temporary it may overwrite), and its static shape."""

    def __init__(self, code, dtype, form, owned, shape):
        self.code, self.dtype, self.form, self.owned, self.shape = code, dtype, form, owned, tuple(shape)


class KernelWriter:
    def __init__(self):
        self.lines, self.params, self.count = [], [], 0

    def temp(self, code, dtype, form, owned, shape) -> Value:
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"{name} = {code}")
        return Value(name, dtype, form, owned, shape)

    # -- operands ------------------------------------------------------------------------------------------------
    def value(self, e) -> Value:
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
        """Storage -> compute form (float16/bfloat16 arithmetic runs in float32)."""
        if v.form == "compute" or v.dtype not in dtypes.NARROW:
            return Value(v.code, v.dtype, "compute", v.owned, v.shape)
        code = f"{v.code}.astype(np.float32)" if v.dtype == torch.float16 else f"_bf16_to_f32({v.code})"
        return self.temp(code, v.dtype, "compute", True, v.shape)

    def narrow(self, v: Value) -> Value:
        """Compute -> storage form."""
        if v.form == "storage" or v.dtype not in dtypes.NARROW:
            return Value(v.code, v.dtype, "storage", v.owned, v.shape)
        if getattr(v, "storage_code", None):  # rounded by a cast already: reuse its narrow bits
            return Value(v.storage_code, v.dtype, "storage", True, v.shape)
        code = f"{v.code}.astype(np.float16)" if v.dtype == torch.float16 else f"_f32_to_bf16({v.code})"
        return self.temp(code, v.dtype, "storage", True, v.shape)

    def operand(self, e, dtype) -> Value:
        """e in compute form, cast to torch dtype `dtype` (None: keep its own dtype)."""
        if isinstance(e, Const):
            return Value(_literal(e.value, dtype), dtype, "compute", False, ())
        v = self.widen(self.value(e))
        if dtype is not None and dtypes.compute(v.dtype) != dtypes.compute(dtype):
            v = self.temp(f"{v.code}.astype({_np(dtypes.compute(dtype))})", dtype, "compute", True, v.shape)
        return v

    # -- expression nodes ----------------------------------------------------------------------------------------
    def view(self, e: View) -> Value:
        v = self.value(e.arg)
        c, p = v.code, e.params
        if e.kind == "identity":
            return Value(c, v.dtype, v.form, False, e.shape)
        if e.kind == "reshape":
            code = f"np.reshape({c}, {p[0]!r})"
        elif e.kind == "permute":
            code = f"np.transpose({c}, {p[0]!r})"
        elif e.kind == "expand":
            code = f"np.broadcast_to({c}, {p[0]!r})"
        elif e.kind == "unsqueeze":
            code = f"np.expand_dims({c}, {p[0]})"
        elif e.kind == "slice":
            dim, start, end, step = p
            bound = lambda b: "" if b is None else repr(b)
            code = f"{c}[{':, ' * dim}{bound(start)}:{bound(end)}:{step}]"
        elif e.kind == "select":
            code = f"{c}[{':, ' * p[0]}{p[1]}, ...]"  # the trailing ... keeps a 0-d result a view, not a scalar
        else:
            raise ValueError(e.kind)
        return self.temp(code, v.dtype, v.form, False, e.shape)

    def op(self, e: Op) -> Value:
        out_np = dtypes.compute(e.dtype)
        if e.name == "where":
            c = self.operand(e.args[0], torch.bool)
            a, b = (self.operand(x, e.compute_dtype) for x in e.args[1:])
            return self.temp(f"np.where({c.code}, {a.code}, {b.code})", e.dtype, "compute", True, e.shape)
        if e.name == "full":
            return self.temp(f"np.full({e.shape!r}, {_literal(e.args[0].value, e.dtype)}, dtype={_np(out_np)})",
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
        args = [self.operand(a, e.compute_dtype) for a in e.args]
        if e.name == "cast":
            v = args[0]
            if e.dtype in dtypes.NARROW:  # round through the narrow type so later fused ops see its precision
                narrow = self.narrow(Value(v.code, e.dtype, "compute", v.owned, v.shape))
                v = self.widen(narrow)
                v.storage_code = narrow.code
            return Value(v.code, e.dtype, "compute", v.owned, e.shape) if not hasattr(v, "storage_code") else v
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
            x = args[0]
            return self.temp(f"{x.code} * (0.5 * (1.0 + _erf({x.code} * {_literal(0.5 ** 0.5, e.dtype)})))",
                             e.dtype, "compute", True, e.shape)
        if e.name == "gelu_tanh":
            x = args[0].code
            return self.temp(f"{x} * (0.5 * (1.0 + np.tanh({_literal((2 / 3.141592653589793) ** 0.5, e.dtype)}"
                             f" * ({x} + {_literal(0.044715, e.dtype)} * {x} ** 3))))", e.dtype, "compute", True,
                             e.shape)
        if e.name == "truncdiv":
            return self.temp(f"_truncdiv({args[0].code}, {args[1].code})", e.dtype, "compute", True, e.shape)
        return self.ufunc(UFUNC[e.name], args, e)

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
        v = self.widen(self.value(e.arg))
        out_np = _np(dtypes.compute(e.dtype))
        axis = "None" if e.axes is None else repr(e.axes)
        if e.kind in ("argmax", "argmin"):
            ax = "None" if e.axes is None else e.axes[0]
            code = f"np.reshape(np.{e.kind}({v.code}, axis={ax}), {e.shape!r})"
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


def _ops_in(e, acc):
    if isinstance(e, Op):
        for a in e.args:
            _ops_in(a, acc)
        acc.append(e.name)
    elif isinstance(e, Reduce):
        _ops_in(e.arg, acc)
        acc.append(e.kind)
    elif isinstance(e, View):
        _ops_in(e.arg, acc)
        if e.kind != "identity":
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
    while name in used:
        i += 1
        name = f"{base}_{i}"
    used.add(name)
    return name


def generate(lg: LoweredGraph) -> str:
    header = ["# Generated by framejit's NumPy backend: one function per fused kernel, `run` calls them in order.",
              "# Source FX graph:"]
    header += ["#   " + line for line in lg.graph_text.strip().splitlines()]
    # kernel names must not shadow the buffer variables in run()
    used = {b.name for b in lg.inputs} | {k.out.name for k in lg.kernels}
    body, calls = [], []
    for kernel in lg.kernels:
        out = kernel.out.name
        if isinstance(kernel, FallbackKernel):
            w = KernelWriter()
            vals = [w.value(a) for a in kernel.inputs]
            pre = [f"        {line}" for line in w.lines]
            calls += pre + [f"        {out} = fallbacks[{out!r}]({', '.join(v.code for v in vals)})"
                            f"  # eager torch: {kernel.source[0]}"]
            continue
        w = KernelWriter()
        if isinstance(kernel, ExternKernel):
            result = _extern(w, kernel)
        else:
            result = w.value(kernel.expr)
        ret = w.store(result, kernel.out.layout.dtype, alias_ok=getattr(kernel, "is_view", False))
        fname = _kernel_name(kernel, used)
        body.append(f"def {fname}({', '.join(w.params)}):")
        body += [f"    # {s}" for s in kernel.source]
        body += [f"    {line}" for line in w.lines] + [f"    return {ret}", "", ""]
        calls.append(f"        {out} = {fname}({', '.join(w.params)})")
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
           f"    {', '.join(names) + (',' if len(names) == 1 else '')} = inputs" if names else "    pass",
           "    with np.errstate(all='ignore'):  # torch's semantics: inf/nan results, no warnings"]
    run += calls or ["        pass"]
    run.append(f"    return [{', '.join(outs)}]")
    return "\n".join(header) + "\n" + PRELUDE + "\n\n" + "\n".join(body + run) + "\n"


def _extern(w: KernelWriter, k: ExternKernel) -> Value:
    dtype, shape, p = k.out.layout.dtype, k.out.layout.shape, k.params
    if k.kind == "embedding":  # a gather: no arithmetic, so it stays in storage form
        weight, idx = w.value(k.args[0]), w.value(k.args[1])
        return w.temp(f"np.take({weight.code}, {idx.code}, axis=0)", dtype, "storage", True, shape)
    args = [w.operand(a, dtype) for a in k.args]
    if k.kind == "matmul":
        return w.temp(f"np.matmul({args[0].code}, {args[1].code})", dtype, "compute", True, shape)
    if k.kind == "addmm":
        bias, a, b = args
        t = w.temp(f"np.matmul({a.code}, {b.code})", dtype, "compute", True, shape)
        if p["alpha"] != 1:
            w.lines.append(f"np.multiply({t.code}, {_literal(p['alpha'], dtype)}, out={t.code})")
        if p["beta"] != 0:  # beta == 0 ignores the bias entirely (even nan/inf in it), as torch does
            scaled = bias.code if p["beta"] == 1 else f"{bias.code} * {_literal(p['beta'], dtype)}"
            w.lines.append(f"np.add({t.code}, {scaled}, out={t.code})")
        return t
    if k.kind == "sdpa":
        mask = "None"
        if p["has_mask"]:
            m = k.args[3]
            mask = (w.operand(m, None) if m.dtype == torch.bool else w.operand(m, dtype)).code
        return w.temp(f"_sdpa({args[0].code}, {args[1].code}, {args[2].code}, {mask}, {p['is_causal']}, "
                      f"{p['scale']!r})", dtype, "compute", True, shape)
    if k.kind == "conv":
        bias = args[2].code if p["has_bias"] else "None"
        return w.temp(f"_conv({args[0].code}, {args[1].code}, {bias}, {p['stride']}, {p['padding']}, "
                      f"{p['dilation']}, {p['groups']})", dtype, "compute", True, shape)
    raise ValueError(k.kind)

"""LoweredGraph -> the source of one standalone Python module that computes the graph with NumPy.

The module imports numpy and math only (never torch): `run(inputs, fallbacks)` takes NumPy arrays in storage
form (dtypes.py) and returns the graph's outputs as arrays. Each kernel becomes one function named after the
ops it fuses. Inside a kernel, temporaries are reused through ufunc `out=` once their single reader is done
with them, so a fused chain of n ops allocates one array instead of n."""
import re

import torch

from graph import symbolic_sizes

from . import dtypes, row_blocks
from .lowering import input_sizes
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
POW_BY_EXPONENT = {2: ["np.square"], 0.5: ["np.sqrt"], -1: ["np.reciprocal"], 1: ["np.positive"],
                   -0.5: ["np.sqrt", "np.reciprocal"], -2: ["np.square", "np.reciprocal"]}
# ops spelled as a short sequence of ufuncs or a helper defined in the module prelude
COMPOSITE = {"rsqrt", "sigmoid", "relu", "erf", "gelu", "gelu_tanh", "truncdiv", "cast", "where", "full",
             "arange", "cat"}

PRELUDE = '''import math
import os
import sys
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# NumPy has no erf. float64: Cephes ndtr.c's rational approximations (relative error < 1e-15, measured against
# math.erf); float32: the clamped odd rational of Eigen/XLA (absolute error < 5e-7), one branch-free pass of ~25
# ufunc calls. Both replace np.frompyfunc(math.erf), which cost one Python call per element (1.9 ms per 32k).
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2, 9.34528527171957607540e2,
           1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3, 1.65666309194161350182e3,
           5.57535340817727675546e2)
_ERFC_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
           6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_ERFC_S = (1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)
_ERF32_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
            -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF32_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
            -1.42647390514189e-02)


def _horner(z, coefs):
    # in place after the first multiply; 0-d inputs come back as NumPy scalars and rebind instead
    r = z * coefs[0]
    for c in coefs[1:-1]:
        r += c
        r *= z
    r += coefs[-1]
    return r


def _erf(x):
    x = np.asarray(x)
    if x.dtype != np.float64:
        t = np.clip(x, np.float32(-4), np.float32(4))  # erf(4) rounds to 1 in float32; nan stays nan
        z = t * t
        p = _horner(z, [np.float32(c) for c in _ERF32_P])
        p *= t
        p /= _horner(z, [np.float32(c) for c in _ERF32_Q])
        return np.asarray(p, dtype=x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # inf/inf in the unused |x| < 1 branch
        z = x * x
        small = x * _horner(z, _ERF_T) / _horner(z, _ERF_U)  # |x| < 1
        a = np.clip(np.abs(x), 1.0, 30.0)  # beyond 6 erf is 1 in double; the clip keeps exp(-a*a) finite
        e = np.exp(-(a * a))
        mid = e * _horner(a, _ERFC_P) / _horner(a, _ERFC_Q)  # erfc, 1 <= |x| < 8
        tail = e * _horner(a, _ERFC_R) / _horner(a, _ERFC_S)  # erfc, |x| >= 8
        large = np.copysign(1.0 - np.where(a < 8.0, mid, tail), x)
        return np.asarray(np.where(np.abs(x) < 1.0, small, large), dtype=np.float64)


def _gelu(x):
    # 0.5 * x * (1 + erf(x / sqrt(2))), with one temporary: erf's result is updated in place
    r = _erf(x * x.dtype.type(0.7071067811865476))
    r += x.dtype.type(1)
    r *= x
    r *= x.dtype.type(0.5)
    return r


_ONES: dict = {}


def _rowsum(x, k, axes, keepdims):
    # the sum of each row's trailing k elements as one BLAS matrix-vector product with a ones vector, ~6x faster
    # than np.sum's per-row loop on rows of a few hundred floats; accumulates in x's dtype, as np.sum does.
    # The shape comes from x, not from the graph: row-blocked kernels pass blocks of rows.
    x = np.asarray(x)
    if x.size == 0 or not x.flags.c_contiguous:
        return np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)
    ones = _ONES.get((k, x.dtype))
    if ones is None:
        if len(_ONES) > 64:  # modules for dynamic sizes see many widths: keep the cache bounded
            _ONES.clear()
        ones = _ONES[(k, x.dtype)] = np.ones(k, dtype=x.dtype)
    lead = x.shape[:x.ndim - len(axes)]
    return np.reshape(np.matmul(np.reshape(x, (-1, k)), ones), lead + (1,) * len(axes) if keepdims else lead)


# Row-blocked groups share their blocks out to threads: NumPy releases the GIL inside ufunc and BLAS loops, so
# threads run the per-block passes side by side. One pool per process, kept in a registry module every generated
# module finds (a module per graph must not bring its own threads); FRAMEJIT_NUMPY_THREADS=1 turns it off.
_THREADS = sys.modules.get("_framejit_numpy_threads")
if _THREADS is None:
    _THREADS = sys.modules["_framejit_numpy_threads"] = types.ModuleType("_framejit_numpy_threads")
    _THREADS.pool = None
    _THREADS.count = int(os.environ.get("FRAMEJIT_NUMPY_THREADS", "0")) or \
        len(getattr(os, "sched_getaffinity", lambda _: range(os.cpu_count() or 1))(0))
    if hasattr(os, "register_at_fork"):  # a forked child inherits the pool object but not its threads
        os.register_at_fork(after_in_child=lambda: setattr(_THREADS, "pool", None))
PARALLEL_MIN_ELEMENTS = 1 << 17  # below ~0.1 ms of work, waking a thread costs more than it saves


_PER_THREAD = threading.local()


def _scratch(key, shape, dtype):
    # a block-sized array kept per thread across calls: a fresh one per call costs page faults once blocks pass
    # malloc's mmap threshold (~1 us per 4 KiB page here), as much as the passes that use it
    arrays = getattr(_PER_THREAD, "arrays", None)
    if arrays is None:
        arrays = _PER_THREAD.arrays = {}
    a = arrays.get(key)
    if a is None or a.shape != shape:  # a module for dynamic sizes asks for blocks of other widths
        a = arrays[key] = np.empty(shape, dtype=dtype)
    return a


def _quiet_blocks(blocks, starts):
    with np.errstate(all="ignore"):  # errstate is per thread (a context variable): workers set their own
        blocks(starts)


def _run_blocks(blocks, rows, block, elements):
    # `starts` is shared: every thread takes the next block start from it (next() on a range iterator is one C
    # call under the GIL, so no block runs twice); the caller takes blocks too and then waits for the helpers
    starts = iter(range(0, rows, block))
    helpers = min(_THREADS.count, -(-rows // block)) - 1 if elements >= PARALLEL_MIN_ELEMENTS else 0
    if helpers <= 0:
        blocks(starts)
        return
    if _THREADS.pool is None:
        _THREADS.pool = ThreadPoolExecutor(_THREADS.count - 1, thread_name_prefix="framejit-numpy")
    futures = [_THREADS.pool.submit(_quiet_blocks, blocks, starts) for _ in range(helpers)]
    try:
        blocks(starts)
    finally:
        for f in futures:
            f.result()


_STARTS: dict = {}


def _rowmax(fn, x, k, axes, keepdims):
    # the max (min) of each row's trailing k elements as one `reduceat` over the flat array: np.max(axis=-1)
    # pays ~100 ns of reduction set-up per row (205 us on 2048 rows of 512 float32), reduceat half of that
    x = np.asarray(x)
    if x.size == 0 or not x.flags.c_contiguous:
        return fn.reduce(x, axis=axes, keepdims=keepdims)
    n = x.size // k
    starts = _STARTS.get((n, k))
    if starts is None:
        if len(_STARTS) > 64:
            _STARTS.clear()
        starts = _STARTS[(n, k)] = np.arange(0, n * k, k)
    lead = x.shape[:x.ndim - len(axes)]
    return np.reshape(fn.reduceat(np.reshape(x, -1), starts), lead + (1,) * len(axes) if keepdims else lead)


def _bf16_to_f32(bits):
    # bfloat16 is the high half of a float32: widen the raw bits (held as int16, NumPy has no bf16)
    return (np.asarray(bits).astype(np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def _f32_to_bf16(x):
    # round to nearest even on the dropped 16 bits, as torch's float->bfloat16 conversion does
    x = np.array(x, dtype=np.float32, order="C")
    u = x.view(np.uint32)
    r = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), r).view(np.int16)


def _select(c, a, b):
    # np.where branches per element: on an unpredictable mask (relu of random data) it ran 900 us for 512x512
    # float32 here, 10x a ufunc pass. Numbers of 4 or 8 bytes are picked bitwise instead, (a & m) | (b & ~m) with
    # the mask as 0 / -1 integers: exact for every value (NaN payloads, inf, -0.0), about 100 us. Its seven passes
    # cost more than np.where's branches below ~32k elements (4096: 3.2 us vs 8.1; 65536: 192 vs 29).
    a, b = np.asarray(a), np.asarray(b)
    dt = np.result_type(a, b)
    shape = np.broadcast_shapes(np.shape(c), a.shape, b.shape)
    if dt.kind not in "fiu" or dt.itemsize not in (4, 8) or math.prod(shape) < 32768:
        return np.where(c, a, b)
    bits = np.dtype(f"i{dt.itemsize}")
    m = np.broadcast_to(c, shape).astype(bits)
    np.negative(m, out=m)
    r = np.bitwise_and(a.astype(dt, copy=False).view(bits), m)
    np.invert(m, out=m)
    np.bitwise_and(b.astype(dt, copy=False).view(bits), m, out=m)
    np.bitwise_or(r, m, out=r)
    return r.view(dt)


def _truncdiv(a, b):
    if np.issubdtype(np.asarray(a).dtype, np.integer):
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -q, q).astype(np.asarray(a).dtype)
    return np.trunc(np.true_divide(a, b))


_ABOVE_DIAGONAL: dict = {}  # (L, S) -> the causal mask's masked-out positions, built once per shape


def _sdpa(q, k, v, mask, is_causal, scale):
    s = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    att = np.matmul(q, np.swapaxes(k, -1, -2))  # a new array: every step below updates it in place
    att *= q.dtype.type(s)
    if is_causal:
        above = _ABOVE_DIAGONAL.get(att.shape[-2:])
        if above is None:
            if len(_ABOVE_DIAGONAL) > 16:
                _ABOVE_DIAGONAL.clear()
            above = _ABOVE_DIAGONAL[att.shape[-2:]] = ~np.tril(np.ones(att.shape[-2:], dtype=bool))
        np.copyto(att, att.dtype.type(-np.inf), where=above)
    if mask is not None:
        att = np.where(mask, att, -np.inf) if mask.dtype == np.bool_ else att + mask
    att -= np.max(att, axis=-1, keepdims=True)  # softmax shifted by the row max: no overflow in exp
    np.exp(att, out=att)
    n = att.shape[-1]
    att /= _rowsum(att, n, (att.ndim - 1,), True) if n <= 8192 else att.sum(axis=-1, keepdims=True)
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
            return self.temp(f"_select({c.code}, {a.code}, {b.code})", e.dtype, "compute", True, e.shape)
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
            return self.temp(f"_gelu(np.asarray({args[0].code}))", e.dtype, "compute", True, e.shape)
        if e.name == "gelu_tanh":
            x = args[0].code
            return self.temp(f"{x} * (0.5 * (1.0 + np.tanh({_literal((2 / 3.141592653589793) ** 0.5, e.dtype)}"
                             f" * ({x} + {_literal(0.044715, e.dtype)} * {x} ** 3))))", e.dtype, "compute", True,
                             e.shape)
        if e.name == "pow" and isinstance(e.args[1], Const) and e.compute_dtype.is_floating_point and \
                e.args[1].value in POW_BY_EXPONENT and not isinstance(e.args[1].value, bool):
            # torch special-cases these exponents the same way (pow_tensor_scalar_optimized_kernel); the generic
            # np.power loop costs ~10x a multiply
            v = args[0]
            for fn in POW_BY_EXPONENT[e.args[1].value]:
                v = self.ufunc(fn, [v], e)
            return v
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
    """The module's source. Sizes that depend on dynamic input dims (SymInts) are read from the inputs at the
    top of `run` (`s0 = x.shape[1]`) and passed to the kernels that use them, so one module serves every size its
    compile's conditions allow (graph/size_variants.py)."""
    # kernel names must not shadow the buffer variables in run()
    used = {b.name for b in lg.inputs} | {k.out.name for k in lg.kernels}
    sizes = input_sizes(lg)
    names = {sym: sym if sym not in used else f"size_{sym}" for sym in sizes}
    used |= set(names.values())
    with symbolic_sizes.rendering(symbolic_sizes.NameRenderer(names.get)) as renderer:
        return _generate(lg, used, sizes, names, renderer)


def _generate(lg: LoweredGraph, used: set, sizes: dict, size_names: dict, renderer) -> str:
    header = ["# Generated by framejit's NumPy backend: one function per fused kernel, `run` calls them in order.",
              "# Source FX graph:"]
    header += ["#   " + line for line in lg.graph_text.strip().splitlines()]
    body, units = [], []
    for kernel in lg.kernels:
        out = kernel.out.name
        renderer.take()
        if isinstance(kernel, FallbackKernel):
            w = KernelWriter()
            vals = [w.value(a) for a in kernel.inputs]
            # a computed operand that came out as another buffer itself (a clone, a same-dtype cast) is a new
            # tensor in eager: torch may hand back a view of it, which must not alias that other buffer
            codes = [f"np.array({v.code})" if isinstance(a, Op) and not v.owned else v.code
                     for a, v in zip(kernel.inputs, vals)]
            renderer.take()  # inline in `run`, where every size is defined
            pre = [f"        {line}" for line in w.lines]
            units.append(row_blocks.Unit(out, w.params, pre + [
                f"        {out} = fallbacks[{out!r}]({', '.join(codes)})"
                f"  # eager torch: {kernel.source[0]}"]))
            continue
        w = KernelWriter()
        if isinstance(kernel, ExternKernel):
            result = _extern(w, kernel)
        else:
            result = w.value(kernel.expr)
        ret = w.store(result, kernel.out.layout.dtype, alias_ok=getattr(kernel, "is_view", False))
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
    return "\n".join(header) + "\n" + PRELUDE + "\n\n" + "\n".join(body + run) + "\n"


_CREATES = re.compile(r"^(t\d+) = (np\.[a-z_0-9]+)\((.*)\)$")
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

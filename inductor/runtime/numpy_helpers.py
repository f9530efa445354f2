"""The helpers every generated NumPy module starts with: what NumPy lacks (erf, bfloat16, torch's integer pow and
division semantics), faster spellings of hot reductions, and the thread pool row-blocked kernels share.

A module of its own (importable, testable), yet generated modules carry its code: numpy/codegen.py pastes this
file, all but this docstring (`PRELUDE`), at the top of each module, so a module `export_numpy` writes needs
nothing but NumPy."""
import math
import os
import sys
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# NumPy has no erf. float64: Cephes ndtr.c's rational approximations (relative error < 1e-15, measured against
# math.erf); float32: the clamped odd rational of Eigen/XLA (absolute error < 5e-7), one branch-free pass of ~25
# ufunc calls, then Cephes' erfc in float64 where |x| >= 1.5 (half an ulp: 1 + erf(x) keeps its digits). Both
# replace np.frompyfunc(math.erf), which cost one Python call per element (1.9 ms per 32k).
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
        p = np.asarray(p, dtype=x.dtype)
        # beyond |x| = 1.5 erf is within 0.034 of +-1, and 1 + erf(x) (gelu's gate) cancels: the rational's few
        # ulps there become a large relative error (1% at x = -3.2), where eager's float32 erf is rounded from an
        # exact one (program generator seed 301850). Those elements (3% of a standard normal's / sqrt(2)) are
        # Cephes' float64 erfc, rounded once.
        far = np.abs(x) >= 1.5  # NaN is not
        if far.any():
            f = x[far].astype(np.float64)
            a = np.minimum(np.abs(f), 6.0)  # erf rounds to 1 in float32 from 3.92 on; inf stays finite
            erfc = np.exp(-(a * a)) * _horner(a, _ERFC_P) / _horner(a, _ERFC_Q)  # 1 <= |x| < 8
            p[far] = np.copysign(1.0 - erfc, f)
        return p
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
    # round to nearest even on the dropped 16 bits, as torch's float->bfloat16 conversion does; in x's layout
    # (eager's result of an op on a transposed input is transposed: a torch op reading this sees its strides)
    x = np.asarray(x, dtype=np.float32)
    u = x.view(np.uint32)
    r = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), r).view(np.int16)


def _round_bf16(x):
    # a float32 value rounded to the nearest bfloat16 (ties to even), kept in float32: what torch stores after
    # every bf16 op, so a fused chain sees the same intermediate values as eager (x + 1 - x, overflow to inf)
    x = np.asarray(x, dtype=np.float32)
    u = x.view(np.uint32)
    r = ((u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))) & np.uint32(0xFFFF0000)).view(np.float32)
    return np.where(np.isnan(x), x, r)


def _ipow(a, b):
    # torch's integer pow (aten powi): a negative exponent gives 1 for a base of 1, +-1 for -1 and 0 otherwise;
    # np.power raises ValueError there. Overflow wraps in both (products modulo 2**bits in any order agree).
    a, b = np.asarray(a), np.asarray(b)
    negative = b < 0
    if not negative.any():
        return np.power(a, b)
    r = np.power(a, np.where(negative, 0, b).astype(b.dtype))
    odd = (b & 1) != 0
    small = np.where(a == 1, 1, np.where(a == -1, np.where(odd, -1, 1), 0)).astype(r.dtype)
    return np.where(negative, small, r)


def _fpow(a, b):
    # np.power takes a one-element exponent for a scalar and computes x ** 0.5 as sqrt(x) (its other shortcuts,
    # square, reciprocal, ones, agree with pow): sqrt(-inf) is nan and sqrt(-0.0) is -0.0, where torch's
    # pow(-inf, 0.5) is inf and pow(-0.0, 0.5) is 0.0
    a, b = np.asarray(a), np.asarray(b)
    r = np.power(a, b)
    if b.size == 1 and b.reshape(()) == 0.5:
        r = np.where(a == -np.inf, np.inf, r + 0.0)
    return r


def _remainder(a, b):
    # torch's float remainder: fmod, plus b where the signs differ; a zero keeps fmod's sign (-4 % 2 is -0.0)
    # where np.remainder gives the divisor's
    m = np.fmod(a, b)
    return np.where((m != 0) & ((b < 0) != (m < 0)), m + b, m)


def _divisor(b, size):
    # integer division, floor division and remainder by zero raise in torch (RuntimeError "ZeroDivisionError");
    # NumPy returns 0 with a warning. An empty result divides nothing, so nothing is checked.
    if size and not np.all(b):
        raise RuntimeError("ZeroDivisionError")
    return b


def _clone(x):
    # torch's clone (preserve_format): a dense, non-overlapping layout is kept; anything else (an expanded input,
    # strides of 0) becomes row-major. np.array would keep the stride order and lay a broadcast out column-major.
    x = np.asarray(x)
    strides = sorted((abs(s), n) for s, n in zip(x.strides, x.shape) if n > 1)
    step, dense = x.itemsize, True
    for s, n in strides:
        dense = dense and s == step
        step *= n
    return np.array(x, order="K" if dense else "C")


def _laid_out(x, order):
    # eager's dense layout, dims outermost first, for a buffer whose views leave the graph: NumPy's own (`astype`
    # of a broadcast keeps stride order and interleaves the rows) would make the views overlap where eager's do not
    x = np.asarray(x)
    step = x.itemsize
    for d in reversed(order):
        if x.shape[d] > 1 and x.strides[d] != step:
            break
        step *= x.shape[d]
    else:
        return x
    out = np.empty([x.shape[d] for d in order], dtype=x.dtype).transpose(np.argsort(order))
    np.copyto(out, x)
    return out


def _expand(x, shape):
    # torch's expand: a view with stride 0 along broadcast dims. np.broadcast_to makes the same view read-only,
    # and a read-only output could only be handed to torch as a copy (eager returns a view of the input).
    x = np.asarray(x)
    lead = len(shape) - x.ndim
    strides = (0,) * lead + tuple(0 if n == 1 and m != 1 else s for n, m, s in zip(x.shape, shape[lead:], x.strides))
    return np.lib.stride_tricks.as_strided(x, shape, strides)


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
        # the floor quotient, one nearer zero where the division is inexact and the signs differ (abs() of the
        # smallest integer overflows, so |a| // |b| was wrong there)
        q = np.floor_divide(a, b)
        return (q + ((np.remainder(a, b) != 0) & ((a < 0) != (b < 0)))).astype(q.dtype)
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
    top = np.max(att, axis=-1, keepdims=True)
    # a row the mask hides whole (a left-padded sequence's first queries) attends to nothing: eager's attention
    # gives zeros there (torch's safe softmax), where exp(-inf - -inf) would give NaN
    hidden = top == -np.inf
    any_hidden = bool(hidden.any())
    if any_hidden:
        top = np.where(hidden, att.dtype.type(0), top)
    att -= top  # softmax shifted by the row max: no overflow in exp
    np.exp(att, out=att)
    n = att.shape[-1]
    sums = _rowsum(att, n, (att.ndim - 1,), True) if n <= 8192 else att.sum(axis=-1, keepdims=True)
    if any_hidden:
        sums = np.where(hidden, att.dtype.type(1), sums)  # 0 / 1: the hidden rows' weights stay zero
    att /= sums
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


# ---- indexing (issue 20) -------------------------------------------------------------------------------------
_INDEX_ERRORS = {"RuntimeError": RuntimeError, "IndexError": IndexError}


def _check_index(idx, size, dim, wrap, error, message):
    # graph/index_checks.py's check_index: eager's exception for an index out of range (the first bad one in memory
    # order named), else the indices in [0, size), so the indexed loads and stores after it stay inside their buffer
    idx = np.asarray(idx, dtype=np.int64)
    low = -size if wrap else 0
    bad = (idx < low) | (idx >= size)
    if bad.any():
        first = int(idx.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]])
        raise _INDEX_ERRORS[error](message.format(index=first, dim=dim, size=size))
    return np.where(idx < 0, idx + size, idx) if wrap else idx


def _along(idx, dim):
    # the key of out[i0, .., idx[i], .., ik]: np.take_along_axis's fancy index (every dim but `dim` its coordinate)
    key = [np.arange(n).reshape((1,) * d + (n,) + (1,) * (idx.ndim - d - 1)) for d, n in enumerate(idx.shape)]
    key[dim] = idx
    return tuple(key)


def _scatter(base, idx, src, dim, add, take):
    # a copy of `base` with `src` added (np.add.at: duplicate indices accumulate) or written at the indices; take:
    # the index replaces dim `dim` (index_add, index_put), else it has src's rank (scatter, scatter_add)
    out = np.array(base, copy=True)
    if out.ndim == 0:  # torch takes a 0-dim tensor as one of size 1 along dim 0 (fuzz seed 663168)
        flat = _scatter(out.reshape(1), np.reshape(idx, -1), np.reshape(src, -1) if np.ndim(src) else src, 0, add,
                        take)
        return flat.reshape(())
    key = (slice(None),) * dim + (idx,) if take else _along(idx, dim)
    if add:
        np.add.at(out, key, src)
    else:
        out[key] = src
    return out


def _c_module(source):
    # the module's C kernels (framejit's c/codegen.py wrote them), compiled or read from the disk cache; a module
    # from export_numpy has none and never calls this
    from framejit.inductor.runtime.c_modules import load
    return load(source)

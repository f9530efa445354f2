"""@triton.jit helpers the generated kernels call: torch's semantics for the ops Triton spells differently, and
the combine functions of reductions.

On the GPU, transcendental functions come from libdevice (CUDA's own math library, what torch's kernels use).
Triton's CPU interpreter (TRITON_INTERPRET=1, used by the tests without a GPU) cannot call libdevice
(`create_extern_elementwise` raises there), so under the interpreter the same helpers are spelled with tl.math
primitives; those spellings are accurate to a few float32 ulps, enough for the tests' tolerances, and never run
on a GPU. The choice is made once, when this module is imported."""

import triton
import triton.language as tl
from ..config import config

INTERPRET = config.triton_interpret

if not INTERPRET:
    from triton.language.extra import libdevice

    @triton.jit
    def tanh(x):
        return libdevice.tanh(x)

    @triton.jit
    def log1p(x):
        return libdevice.log1p(x)

    @triton.jit
    def expm1(x):
        return libdevice.expm1(x)

    @triton.jit
    def atan2(a, b):
        return libdevice.atan2(a, b)

    @triton.jit
    def pow(a, b):
        return libdevice.pow(a, b)

    @triton.jit
    def rint(x):
        return libdevice.rint(x)

    @triton.jit
    def trunc(x):
        return libdevice.trunc(x)
else:
    @triton.jit
    def tanh(x):
        # 1 - 2 / (exp(2x) + 1): saturates cleanly to +-1 and keeps tanh(-x) == -tanh(x)
        a = tl.abs(x)
        t = 1.0 - 2.0 / (tl.exp(2.0 * a) + 1.0)
        small = x * (1.0 - x * x / 3.0)  # |x| < 1e-3: avoids the cancellation in 1 - 2/(...)
        r = tl.where(a < 1e-3, small, tl.where(x < 0, -t, t))
        return tl.where(x != x, x, r)

    @triton.jit
    def log1p(x):
        # log(u) * x / (u - 1) with u = 1 + x corrects the rounding of 1 + x (Goldberg's trick)
        u = 1.0 + x
        d = u - 1.0
        return tl.where(d == 0.0, x, tl.log(u) * (x / tl.where(d == 0.0, 1.0, d)))

    @triton.jit
    def expm1(x):
        u = tl.exp(x)
        d = tl.log(u)
        r = tl.where(u == 1.0, x, (u - 1.0) * (x / tl.where(d == 0.0, 1.0, d)))
        return tl.where(u == float("inf"), u, tl.where(x < -50.0, -1.0, r))

    @triton.jit
    def _atan(z):
        # atan on [0, 1] by argument halving twice then a short odd series (|error| < 1e-7)
        h = z / (1.0 + tl.sqrt(1.0 + z * z))
        h = h / (1.0 + tl.sqrt(1.0 + h * h))
        h2 = h * h
        s = h * (1.0 - h2 * (1.0 / 3.0 - h2 * (1.0 / 5.0 - h2 * (1.0 / 7.0 - h2 / 9.0))))
        return 4.0 * s

    @triton.jit
    def atan2(a, b):
        ax = tl.abs(a)
        bx = tl.abs(b)
        big = tl.maximum(ax, bx)
        small = tl.minimum(ax, bx)
        # both infinite: the ratio is taken as 1 (atan2(inf, inf) is pi / 4, as libdevice's and torch's)
        t = _atan(tl.where(small == float("inf"), 1.0, small / tl.where(big == 0.0, 1.0, big)))
        t = tl.where(ax > bx, 1.5707963267948966 - t, t)
        # the quadrant by sign bits: -0.0 counts as negative (atan2(0, -0) is pi, atan2(-0, -1) is -pi)
        t = tl.where((b < 0.0) | ((b == 0.0) & (1.0 / b < 0.0)), 3.141592653589793 - t, t)
        t = tl.where((a < 0.0) | ((a == 0.0) & (1.0 / a < 0.0)), -t, t)
        return tl.where((a != a) | (b != b), a + b, t)

    @triton.jit
    def pow(a, b):
        # |a|^b through exp/log, with the sign for integral b and torch's special cases
        r = tl.exp(b * tl.log(tl.abs(a)))
        bi = tl.floor(b)
        odd = (bi == b) & ((bi - 2.0 * tl.floor(bi * 0.5)) == 1.0)
        r = tl.where((a < 0.0) & odd, -r, r)
        r = tl.where((a < 0.0) & (bi != b), float("nan"), r)
        r = tl.where(b == 0.0, 1.0, r)
        return tl.where(a == 1.0, 1.0, r)

    @triton.jit
    def rint(x):
        # round half to even, as torch.round: floor(x + 0.5), minus one where x + 0.5 landed on an odd integer
        f = tl.floor(x + 0.5)
        tie = (f - x) == 0.5
        odd = (f - 2.0 * tl.floor(f * 0.5)) == 1.0
        return tl.where(tie & odd, f - 1.0, f)

    @triton.jit
    def trunc(x):
        return tl.where(x < 0, tl.ceil(x), tl.floor(x))


@triton.jit
def maximum(a, b):
    # NaN wins, as in torch.maximum (the hardware max returns the other operand)
    return tl.where((a > b) | (a != a), a, b)


@triton.jit
def minimum(a, b):
    return tl.where((a < b) | (a != a), a, b)


@triton.jit
def ipow(a, b):
    # torch's integer pow (aten powi): squaring over the exponent's bits, wrapping on overflow as torch's products
    # do; a negative exponent gives 1 for a base of 1, +-1 for -1 (odd / even) and 0 otherwise
    result = a * 0 + b * 0 + 1
    base = a + b * 0
    e = tl.where(b < 0, 0, b)
    for _ in range(63):
        result = tl.where((e & 1) != 0, result * base, result)
        base = base * base
        e = e >> 1
    small = tl.where(a == 1, 1, tl.where(a == -1, tl.where((b & 1) != 0, -1, 1), 0))
    return tl.where(b < 0, small.to(result.dtype), result)


@triton.jit
def prod(a, b):
    return a * b


@triton.jit
def argmax(v1, i1, v2, i2):
    # the first index of the maximum; NaN counts as larger than everything (torch.argmax)
    nan1 = v1 != v1
    nan2 = v2 != v2
    first = i1 < i2
    take1 = (v1 > v2) | (nan1 & ~nan2) | ((v1 == v2) & first) | (nan1 & nan2 & first)
    return tl.where(take1, v1, v2), tl.where(take1, i1, i2)


@triton.jit
def argmin(v1, i1, v2, i2):
    nan1 = v1 != v1
    nan2 = v2 != v2
    first = i1 < i2
    take1 = (v1 < v2) | (nan1 & ~nan2) | ((v1 == v2) & first) | (nan1 & nan2 & first)
    return tl.where(take1, v1, v2), tl.where(take1, i1, i2)

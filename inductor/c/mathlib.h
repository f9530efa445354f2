/* framejit's elementwise math for generated C loops: float32 functions that gcc vectorizes.

   Why these exist. A generated loop such as `for (i...) out[i] = fj_expf(a[i] * 2.0f);` is compiled with
   `-O3 -march=native -fno-math-errno -fwrapv -fopenmp-simd` and no -ffast-math (torch's IEEE results: NaN, inf,
   signed zeros and the order of operations must hold). Under those flags a call to libm's expf, logf, tanhf, ... is
   a scalar call per element (glibc's vector variants are only used under -ffast-math), which makes the loop 10-40
   times slower than torch's SLEEF kernels. The functions below are straight-line code of +, *, fmaf, fabsf and bit
   operations that gcc 12 vectorizes (AVX2/AVX-512), at torch's accuracy or better.

   Rules the code keeps (break one and the loop silently stops vectorizing; check with -fopt-info-vec-optimized):
   - No `c ? a : b` to pick a value: gcc may turn it into control flow (jump threading, sinking the unused arm's
     arithmetic into a branch), and with the default -ftrapping-math the vectorizer then refuses to if-convert the
     floating-point operations in the branch ("control flow in loop"). fj__sel selects through bit masks instead.
   - No libm calls but fmaf and fabsf, single instructions with -march=native on any x86-64 with AVX2 (FMA3). On a
     target without FMA, fmaf is a correctly rounded library call: the same results, but no vectorization.
   - No tables (gathers), no division where a multiplication does, no float-to-int conversion of values that can
     be out of range (undefined in C): integers come from the bits of x + 0x1.8p23 (round to nearest, the default
     rounding mode the code assumes).

   Accuracy. Measured over all 2^32 float32 inputs against glibc's float64 function (erfc-based for gelu) rounded
   to float32; "ULP" is the distance in representable float32 values from the correctly rounded result:

       expf 1   logf 1   log1pf 1   expm1f 1   tanhf 1   erff 1   sigmoidf 1   gelu_erff 1   gelu_tanhf 1 (a)
       sinf, cosf: 1 for |x| < 2^17, 2 for |x| < 2^21; beyond 2^21 not accurate (b)

   (a) where |result| >= 1e-30 (x > -9.2); below that it underflows towards -0.0 with an absolute error < 1e-37.
   (b) sinf and cosf reduce the argument by pi/2 in three float parts (Cody-Waite with FMA); for |x| >= 2^21
       (2097152) the result is finite and within [-1, 1] but meaningless: callers wanting torch's sin/cos of large
       arguments must use libm's sinf/cosf (which reduce exactly) for such inputs. inf and NaN give NaN.
   Special values follow torch's float32 kernels: NaN in, NaN out; signs of zero results (tanh, expm1, erf, sin,
   log1p, gelu of -0.0 are -0.0); exp overflows to inf above log(FLT_MAX) and underflows through the denormals to
   0 below -103.97 exactly as torch; log(0) = log1p(-1) = -inf, log of x < 0 and log1p of x < -1 are NaN. Where
   torch's float32 result is wrong the true limit is returned instead: sigmoid(x) for x < -88.72 (torch: 0, here the
   denormal result), gelu(-inf) = -0.0 (torch: NaN), gelu(inf) = inf (torch's erf form: NaN), and gelu of large
   negative x (torch's 1 + erf and 1 + tanh cancel: thousands of ULP off for x < -3, -0.0 below about -5.1).

   The float64 functions (fj_exp, ..., no suffix) call libm: they do not vectorize, and need not. */
#ifndef FRAMEJIT_INDUCTOR_C_MATHLIB_H
#define FRAMEJIT_INDUCTOR_C_MATHLIB_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FJ_INLINE static inline __attribute__((always_inline))
#else
#define FJ_INLINE static inline
#endif

/* ---- bit-level helpers ------------------------------------------------------------------------------------------ */

FJ_INLINE float fj__asf(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
FJ_INLINE uint32_t fj__asu(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
FJ_INLINE double fj__asd(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
FJ_INLINE uint64_t fj__asu64(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

/* c ? a : b without a branch (see the rules above); c is 0 or 1 */
FJ_INLINE float fj__sel(int c, float a, float b) {
    uint32_t m = (uint32_t)0 - (uint32_t)c;
    return fj__asf((fj__asu(a) & m) | (fj__asu(b) & ~m));
}
FJ_INLINE double fj__seld(int c, double a, double b) {
    uint64_t m = (uint64_t)0 - (uint64_t)c;
    return fj__asd((fj__asu64(a) & m) | (fj__asu64(b) & ~m));
}
FJ_INLINE float fj__copysign(float mag, float sgn) {
    return fj__asf((fj__asu(mag) & 0x7fffffffu) | (fj__asu(sgn) & 0x80000000u));
}
/* 2^n for -126 <= n <= 127 */
FJ_INLINE float fj__pow2i(int32_t n) { return fj__asf(((uint32_t)n + 127u) << 23); }

#define FJ_INFF fj__asf(0x7f800000u)
#define FJ_NANF fj__asf(0x7fc00000u)
#define FJ_MAGIC 0x1.8p23f     /* v + FJ_MAGIC rounds v (|v| < 2^22) to an integer held in the low mantissa bits */
#define FJ_LOG2E 0x1.715476p+0f
#define FJ_LN2_HI 0x1.62e43p-1f /* ln 2 = FJ_LN2_HI + FJ_LN2_LO; the high part has 21 bits: n * FJ_LN2_HI is exact */
#define FJ_LN2_LO -0x1.05c61p-29f

/* the integer n of kf = fmaf(v, c, FJ_MAGIC) */
FJ_INLINE int32_t fj__magic_int(float kf) { return (int32_t)(fj__asu(kf) - fj__asu(FJ_MAGIC)); }

/* ---- exp kernels ------------------------------------------------------------------------------------------------ */

/* (expm1(r) - r) / r^2 on |r| <= ln2/2: minimax polynomials (relative error of expm1: 2^-26 and 2^-31) */
FJ_INLINE float fj__expm1_q6(float r) {
    float q = fmaf(fmaf(fmaf(0x1.6c635p-10f, r, 0x1.12293ep-7f), r, 0x1.5555b2p-5f), r, 0x1.5554bp-3f);
    return fmaf(q, r, 0.5f);
}
FJ_INLINE float fj__expm1_q7(float r) {
    float q = fmaf(fmaf(fmaf(fmaf(0x1.9e8a1ep-13f, r, 0x1.6d405cp-10f), r, 0x1.1112dp-7f), r, 0x1.5554f4p-5f), r,
                   0x1.555554p-3f);
    return fmaf(q, r, 0.5f);
}

/* exp(x) for x in [-104, 89] (or NaN): x = n ln2 + r, exp(r) by polynomial, times 2^n in two steps so that results
   in the denormal range are rounded once and 2^128 overflows to inf. */
FJ_INLINE float fj__exp_clamped(float x) {
    float kf = fmaf(x, FJ_LOG2E, FJ_MAGIC);
    float n = kf - FJ_MAGIC;
    float r = fmaf(n, -FJ_LN2_HI, x); /* exact */
    r = fmaf(n, -FJ_LN2_LO, r);
    float p = 1.0f + fmaf(r * r, fj__expm1_q6(r), r);
    int32_t ni = fj__magic_int(kf);
    int32_t n1 = ni >> 1;
    return p * fj__pow2i(n1) * fj__pow2i(ni - n1);
}

/* exp(x + xlo) as eh + *elo (relative error of the sum ~2^-27) for x in [-110, 89], |xlo| <= 2^-20: for the
   functions that divide by or multiply with an exponential and must not add its rounding to their own. */
FJ_INLINE float fj__exp_hl(float x, float xlo, float *elo) {
    float kf = fmaf(x, FJ_LOG2E, FJ_MAGIC);
    float n = kf - FJ_MAGIC;
    float r1 = fmaf(n, -FJ_LN2_HI, x); /* exact */
    float rl = fmaf(n, -FJ_LN2_LO, xlo);
    float r = r1 + rl;
    float tail = (r * r) * fj__expm1_q6(r); /* expm1(r) - r */
    float s = 1.0f + r1;
    float lo = (((1.0f - s) + r1) + rl) + tail;
    float eh = s + lo;
    float el = lo - (eh - s);
    int32_t ni = fj__magic_int(kf);
    int32_t n1 = ni >> 1;
    float s1 = fj__pow2i(n1), s2 = fj__pow2i(ni - n1);
    *elo = el * s1 * s2;
    return eh * s1 * s2;
}

/* expf: max error 1 ULP. Torch's boundaries: inf from 88.72284 up, denormals down to -103.972, then 0. */
FJ_INLINE float fj_expf(float x) {
    float xc = fj__sel(x < -104.0f, -104.0f, x);
    xc = fj__sel(xc > 89.0f, 89.0f, xc);
    return fj__exp_clamped(xc);
}

/* expm1f: max error 1 ULP. x = n ln2 + r; expm1(x) = 2^n expm1(r) + (2^n - 1), as one fmaf (for n > 0 at half
   scale, so that n = 128 does not overflow before the result does); -1 below -18; expm1(-0) = -0. */
FJ_INLINE float fj_expm1f(float x) {
    float xc = fj__sel(x < -18.0f, -18.0f, x);
    xc = fj__sel(xc > 89.0f, 89.0f, xc);
    float kf = fmaf(xc, FJ_LOG2E, FJ_MAGIC);
    float n = kf - FJ_MAGIC;
    float r = fmaf(n, -FJ_LN2_HI, xc);
    r = fmaf(n, -FJ_LN2_LO, r);
    float p = fmaf(r * r, fj__expm1_q7(r), r);
    int32_t ni = fj__magic_int(kf);
    int32_t pos = ni > 0;
    float s = fj__pow2i(ni - pos);
    float y = fmaf(s, p, s - fj__pow2i(-pos)) * fj__pow2i(pos);
    return fj__sel(x == 0.0f, x, y);
}

/* sigmoidf: max error 1 ULP. e = exp(-|x|) in (0, 1]; (x < 0 ? e : 1) / (1 + e) with the rounding of 1 + e and
   of the division corrected (the true result, not torch's 0, for x < -88.72 where it is a denormal). */
FJ_INLINE float fj_sigmoidf(float x) {
    float a = fabsf(x);
    float e = fj__exp_clamped(-fj__sel(a > 104.0f, 104.0f, a));
    float d = 1.0f + e;
    float dl = (1.0f - d) + e; /* 1 + e = d + dl exactly */
    float num = fj__sel(x < 0.0f, e, 1.0f);
    float s = num / d;
    /* num / (d + dl) = s + (num - s d - s dl) / d; 1/d ~ 1.5 - d/2 suffices for a correction below 1 ULP */
    return fmaf(fmaf(-s, d, num) - s * dl, fmaf(-0.5f, d, 1.5f), s);
}

/* ---- log / log1p ------------------------------------------------------------------------------------------------ */

/* log1p(f) on [sqrt(1/2) - 1, sqrt(2) - 1]: f - f^2/2 + f^3 P(f), minimax P (relative error 2^-27.3) */
FJ_INLINE float fj__log1p_poly(float f) {
    float q = fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(-0x1.38c8cap-4f, f, 0x1.057338p-3f), f, -0x1.0d8beep-3f), f,
                                          0x1.22d71ap-3f), f, -0x1.547166p-3f), f, 0x1.99a028p-3f), f,
                        -0x1.00022ap-2f), f, 0x1.555554p-2f);
    q = fmaf(q, f, -0.5f);
    return fmaf(f * f, q, f);
}

/* logf: max error 1 ULP. x = 2^e m with m in [sqrt(1/2), sqrt(2)) from the bits (denormals scaled by 2^23 first);
   e ln2 + log1p(m - 1). log(+-0) = -inf, log(x < 0) = NaN, log(inf) = inf. */
FJ_INLINE float fj_logf(float x) {
    int32_t tiny = x < 0x1p-126f;
    float xs = x * fj__pow2i(23 * tiny);
    uint32_t t = fj__asu(xs) - 0x3f3504f3u;
    int32_t e = ((int32_t)t >> 23) - 23 * tiny;
    float m = fj__asf((t & 0x007fffffu) + 0x3f3504f3u);
    float ef = (float)e;
    float y = fmaf(ef, FJ_LN2_HI, fmaf(ef, FJ_LN2_LO, fj__log1p_poly(m - 1.0f)));
    y = fj__sel(x > 0.0f, y, fj__sel(x == 0.0f, -FJ_INFF, FJ_NANF));
    return fj__sel(x == FJ_INFF, x, y);
}

/* log1pf: max error 1 ULP. Where 1 + x rounds into [sqrt(1/2), sqrt(2)) the polynomial of x itself; elsewhere
   logf's reduction of u = 1 + x plus the correction (x - (u - 1)) / u for the rounding of u. log1p(-1) = -inf,
   log1p(x < -1) = NaN, log1p(-0) = -0. */
FJ_INLINE float fj_log1pf(float x) {
    float u = 1.0f + x;
    uint32_t t = fj__asu(u) - 0x3f3504f3u;
    int32_t e = (int32_t)t >> 23;
    float m = fj__asf((t & 0x007fffffu) + 0x3f3504f3u);
    float fm = m - 1.0f;
    float f = fj__sel(e == 0, x, fm);
    float c = ((x - (u - 1.0f)) - (f - fm)) / u; /* 0 where f = x */
    float ef = (float)e;
    float y = fmaf(ef, FJ_LN2_HI, fmaf(ef, FJ_LN2_LO, fj__log1p_poly(f) + c));
    y = fj__sel(x > -1.0f, y, fj__sel(x == -1.0f, -FJ_INFF, FJ_NANF));
    y = fj__sel(x == FJ_INFF, x, y);
    return fj__sel(x == 0.0f, x, y);
}

/* ---- tanh / erf ------------------------------------------------------------------------------------------------- */

/* tanhf: max error 1 ULP. |x| < 0.75: x + x^3 P(x^2) (minimax, 2^-29); else u / (u + 2) with u = expm1(2|x|)
   (|x| clamped to 9.5, where tanh rounds to 1); the sign of x, so tanh(-0) = -0. */
FJ_INLINE float fj_tanhf(float x) {
    float ax = fabsf(x);
    float x2 = ax * ax;
    float q = fmaf(fmaf(fmaf(fmaf(fmaf(0x1.c24e3ep-10f, x2, -0x1.f3e568p-8f), x2, 0x1.5f3244p-6f), x2,
                             -0x1.b9744ap-5f), x2, 0x1.110d78p-3f), x2, -0x1.555548p-2f);
    float ys = fmaf(ax * x2, q, ax);
    float a = fj__sel(ax > 9.5f, 9.5f, ax);
    float a2 = a + a;
    float kf = fmaf(a2, FJ_LOG2E, FJ_MAGIC);
    float n = kf - FJ_MAGIC;
    float r = fmaf(n, -FJ_LN2_HI, a2);
    r = fmaf(n, -FJ_LN2_LO, r);
    float p = fmaf(r * r, fj__expm1_q6(r), r);
    float s = fj__pow2i(fj__magic_int(kf));
    float u = fmaf(s, p, s - 1.0f);
    float yl = u / (u + 2.0f);
    return fj__copysign(fj__sel(ax < 0.75f, ys, yl), x);
}

/* erff: max error 1 ULP. |x| < 0.875: x + x P(x^2) (minimax, 2^-30); else 1 - erfc(|x|) with
   erfc(a) = exp(-a^2 + S(a)), S a polynomial in a - 2.5 fitted to log(erfc(a)) + a^2 on [0.875, 4] weighted by
   erfc/erf (the weight of its error in the result); |x| clamped to 4, where erf rounds to 1; sign of x. */
FJ_INLINE float fj_erff(float x) {
    float ax = fabsf(x);
    float x2 = ax * ax;
    float pa = fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(0x1.49fbb4p-14f, x2, -0x1.a4d08p-11f), x2, 0x1.54318ap-8f), x2,
                                   -0x1.b7ff9p-6f), x2, 0x1.ce2d5cp-4f), x2, -0x1.81274p-2f), x2, 0x1.06eba8p-3f);
    float ya = fmaf(ax, pa, ax);
    float a = fj__sel(ax > 4.0f, 4.0f, ax);
    float v = a - 2.5f;
    float sb = fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(0x1.a58d48p-13f, v, -0x1.4461c2p-14f), v, 0x1.5610e8p-9f), v,
                                   -0x1.5ac74ap-7f), v, 0x1.cc19cp-5f), v, -0x1.692806p-2f), v, -0x1.8e8bb8p+0f);
    float yb = 1.0f - fj__exp_clamped(fmaf(-a, a, sb));
    return fj__copysign(fj__sel(ax < 0.875f, ya, yb), x);
}

/* ---- sin / cos -------------------------------------------------------------------------------------------------- */

/* sin (qadd 0) or cos (qadd 1) of ax = |x|: n = round(ax 2/pi), r = ax - n pi/2 with pi/2 in three float parts
   (the first product exact through fmaf), minimax polynomials for sin and cos on |r| <= 0.87 (2^-32 and 2^-31
   relative: r exceeds pi/4 a little where n is rounded from the float 2/pi), chosen and negated by n's low bits.
   Accurate for ax < 2^21 (see the header); beyond, r is clamped to [-0.87, 0.87]: finite, within [-1, 1]. */
FJ_INLINE float fj__sincos(float ax, uint32_t qadd) {
    float kf = fmaf(ax, 0x1.45f306p-1f, FJ_MAGIC);
    float n = kf - FJ_MAGIC;
    float r = fmaf(n, -0x1.921fb6p+0f, ax);
    r = fmaf(n, 0x1.777a5cp-25f, r);
    r = fmaf(n, 0x1.ee59dap-50f, r);
    r = fj__sel(r > 0.87f, 0.87f, r);
    r = fj__sel(r < -0.87f, -0.87f, r);
    float r2 = r * r;
    float sp = fmaf(r * r2, fmaf(fmaf(fmaf(0x1.747b1ep-19f, r2, -0x1.a03e1cp-13f), r2, 0x1.11115ep-7f), r2,
                                 -0x1.555556p-3f), r);
    float cp = fmaf(r2, fmaf(r2, fmaf(fmaf(0x1.987848p-16f, r2, -0x1.6c06a2p-10f), r2, 0x1.55554p-5f), -0.5f), 1.0f);
    uint32_t q = fj__asu(kf) + qadd;
    float y = fj__sel((int)(q & 1u), cp, sp);
    return fj__asf(fj__asu(y) ^ ((q & 2u) << 30));
}

/* sinf: max error 1 ULP for |x| < 2^18, 2 ULP for |x| < 2^21; NOT accurate beyond 2^21 (finite, in [-1, 1]).
   sin(-0) = -0, sin(+-inf) = NaN. */
FJ_INLINE float fj_sinf(float x) {
    return fj__asf(fj__asu(fj__sincos(fabsf(x), 0u)) ^ (fj__asu(x) & 0x80000000u));
}

/* cosf: max error 1 ULP for |x| < 2^17, 2 ULP for |x| < 2^21; NOT accurate beyond 2^21 (finite, in [-1, 1]).
   cos(+-inf) = NaN. */
FJ_INLINE float fj_cosf(float x) { return fj__sincos(fabsf(x), 1u); }

/* ---- gelu ------------------------------------------------------------------------------------------------------- */

/* gelu_erff(x) = x Phi(x), Phi the normal CDF (torch's gelu, approximate='none'): max error 1 ULP (all inputs).
   Phi(-a) = exp(-a^2/2) N(a)/D(a), a = |x|: the exponential from fj__exp_hl (a^2 split exactly into two floats),
   N/D a rational fit of the Mills ratio (degrees 4 and 5, relative error 2^-28 on [0, 14]) evaluated in double,
   where float Horner would lose 2-3 ULP at a > 1; Phi(x) = 1 - Phi(-x) for x > 0 (no cancellation: the
   subtrahend is at most 1/2), and x Phi(x) rounded once. Unlike torch's 0.5 x (1 + erf(x / sqrt 2)) it does not
   cancel for negative x. |x| >= 14.5: -0.0 or x; gelu(-inf) = -0.0 and gelu(inf) = inf (torch: NaN for both). */
FJ_INLINE float fj_gelu_erff(float x) {
    float ax = fabsf(x);
    float a = fj__sel(ax > 14.5f, 14.5f, ax);
    float p = a * a;
    float pl = fmaf(a, a, -p);
    float el;
    float eh = fj__exp_hl(-0.5f * p, -0.5f * pl, &el);
    double ad = (double)a;
    double N = fma(fma(fma(fma(0x1.ff73c9aa0d68dp-9, ad, 0x1.40f471cc17f1ap-5), ad, 0x1.6e63b62aeca92p-3), ad,
                       0x1.bac91da75e12cp-2), ad, 0x1.000000110eafbp-1);
    double D = fma(fma(fma(fma(fma(0x1.407fd73ab38bbp-7, ad, 0x1.924af8fbe4422p-4), ad, 0x1.d5069d21ecdfdp-2), ad,
                           0x1.2f37953ce2704p+0), ad, 0x1.a9a6bd5427010p+0), ad, 1.0);
    double phin = fj__seld(ax < 14.5f, ((double)eh + (double)el) * N / D, 0.0);
    double phi = fj__seld(x < 0.0f, phin, 1.0 - phin);
    float y = (float)((double)x * phi);
    return fj__sel(x == -FJ_INFF, -0.0f, y);
}

/* gelu_tanhf(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) (torch's approximate='tanh'), computed
   as x sigmoid(2u), which does not cancel for negative x: max error 1 ULP where |result| >= 1e-30 (x > -9.2);
   below that the result underflows towards -0.0 with an absolute error < 1e-37. 2u is computed in double and
   split into two floats (its rounding would be amplified |2u| times by the exponential), the sigmoid from
   fj__exp_hl with the roundings of 1 + e and of the division corrected. gelu_tanh(-inf) = -0.0 (torch: NaN). */
FJ_INLINE float fj_gelu_tanhf(float x) {
    float xc = fj__sel(x < -11.0f, -11.0f, x);
    xc = fj__sel(xc > 11.0f, 11.0f, xc);
    double xd = (double)xc;
    double z = xd * (1.5957691216057307 + 0.071354816272600249 * (xd * xd)); /* 2u */
    float zh = (float)z;
    float zl = (float)(z - (double)zh);
    float a = fabsf(zh);
    float na = -fj__sel(a > 104.0f, 104.0f, a);
    float nl = fj__asf(fj__asu(zl) ^ (~fj__asu(zh) & 0x80000000u)); /* -|z| = na + nl */
    float el;
    float eh = fj__exp_hl(na, nl, &el); /* exp(-|z|) */
    float d = 1.0f + eh;
    float dl = ((1.0f - d) + eh) + el;
    int neg = zh < 0.0f;
    float numh = fj__sel(neg, eh, 1.0f);
    float numl = fj__sel(neg, el, 0.0f);
    float s = numh / d;
    float inv = fmaf(-0.5f, d, 1.5f); /* ~1/d, refined once */
    inv = inv * fmaf(-d, inv, 2.0f);
    float c = (fmaf(-s, d, numh) + fmaf(-s, dl, numl)) * inv; /* sigmoid(z) = s + c */
    float y = fmaf(x, s, x * c);
    y = fj__sel(x == FJ_INFF, x, y);
    return fj__sel(x == -FJ_INFF, -0.0f, y);
}

/* ---- float64: libm ---------------------------------------------------------------------------------------------- */

static inline double fj_exp(double x) { return exp(x); }
static inline double fj_log(double x) { return log(x); }
static inline double fj_log1p(double x) { return log1p(x); }
static inline double fj_expm1(double x) { return expm1(x); }
static inline double fj_tanh(double x) { return tanh(x); }
static inline double fj_erf(double x) { return erf(x); }
static inline double fj_sin(double x) { return sin(x); }
static inline double fj_cos(double x) { return cos(x); }
/* e / (1 + e) for x < 0: no overflow of exp(-x), the denormal results of x < -708 */
static inline double fj_sigmoid(double x) {
    double e = exp(-fabs(x));
    return (x < 0.0 ? e : 1.0) / (1.0 + e);
}
/* through erfc: no cancellation for negative x; the limits at +-inf */
static inline double fj_gelu_erf(double x) {
    return x == -INFINITY ? -0.0 : 0.5 * x * erfc(-x * 0.70710678118654752440);
}
static inline double fj_gelu_tanh(double x) {
    double z = 1.5957691216057307 * x + 0.071354816272600249 * (x * x * x); /* 2 sqrt(2/pi) (x + 0.044715 x^3) */
    return x == -INFINITY ? -0.0 : x * fj_sigmoid(z);
}

#endif

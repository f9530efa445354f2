/* DRAFT-2 */
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

/* ---- bit-level helpers ---------------------------------------------------------------------------------------- */

FJ_INLINE float fj__asf(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
FJ_INLINE uint32_t fj__asu(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
FJ_INLINE double fj__asd(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
FJ_INLINE uint64_t fj__asu64(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

FJ_INLINE float fj__sel(int c, float a, float b) {
    uint32_t m = (uint32_t)0 - (uint32_t)c;
    return fj__asf((fj__asu(a) & m) | (fj__asu(b) & ~m));
}
FJ_INLINE float fj__copysign(float mag, float sgn) {
    return fj__asf((fj__asu(mag) & 0x7fffffffu) | (fj__asu(sgn) & 0x80000000u));
}
FJ_INLINE float fj__pow2i(int32_t n) { return fj__asf((uint32_t)(n + 127) << 23); }

#define FJ_INFF fj__asf(0x7f800000u)
#define FJ_NANF fj__asf(0x7fc00000u)
#define FJ_MAGIC 0x1.8p23f
#define FJ_LOG2E 0x1.715476p+0f
#define FJ_LN2_HI 0x1.62e43p-1f
#define FJ_LN2_LO -0x1.05c61p-29f

FJ_INLINE int32_t fj__magic_int(float kf) { return (int32_t)(fj__asu(kf) - fj__asu(FJ_MAGIC)); }

/* ---- exp / expm1 kernels ----------------------------------------------------------------------------------------- */

FJ_INLINE float fj__expm1_q6(float r) {
    float q = fmaf(fmaf(fmaf(0x1.6c635p-10f, r, 0x1.12293ep-7f), r, 0x1.5555b2p-5f), r, 0x1.5554bp-3f);
    return fmaf(q, r, 0.5f);
}
FJ_INLINE float fj__expm1_q7(float r) {
    float q = fmaf(fmaf(fmaf(fmaf(0x1.9e8a1ep-13f, r, 0x1.6d405cp-10f), r, 0x1.1112dp-7f), r, 0x1.5554f4p-5f), r,
                   0x1.555554p-3f);
    return fmaf(q, r, 0.5f);
}

FJ_INLINE float fj__exp_clamped(float x) {
    float kf = fmaf(x, FJ_LOG2E, FJ_MAGIC);
    float n = kf - FJ_MAGIC;
    float r = fmaf(n, -FJ_LN2_HI, x);
    r = fmaf(n, -FJ_LN2_LO, r);
    float p = 1.0f + fmaf(r * r, fj__expm1_q6(r), r);
    int32_t ni = fj__magic_int(kf);
    int32_t n1 = ni >> 1;
    return p * fj__pow2i(n1) * fj__pow2i(ni - n1);
}

FJ_INLINE float fj__exp_hl(float x, float xlo, float *elo) {
    float kf = fmaf(x, FJ_LOG2E, FJ_MAGIC);
    float n = kf - FJ_MAGIC;
    float r1 = fmaf(n, -FJ_LN2_HI, x);
    float rl = fmaf(n, -FJ_LN2_LO, xlo);
    float r = r1 + rl;
    float tail = (r * r) * fj__expm1_q6(r);
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

FJ_INLINE float fj__sigmoid_hl(float zh, float zl, float *corr) {
    float a = fabsf(zh);
    float na = -fj__sel(a > 104.0f, 104.0f, a);
    float nl = fj__asf(fj__asu(zl) ^ (~fj__asu(zh) & 0x80000000u));
    float el;
    float eh = fj__exp_hl(na, nl, &el);
    float d = 1.0f + eh;
    float dl = ((1.0f - d) + eh) + el;
    int neg = zh < 0.0f;
    float numh = fj__sel(neg, eh, 1.0f);
    float numl = fj__sel(neg, el, 0.0f);
    float s = numh / d;
    float inv = fmaf(-0.5f, d, 1.5f);
    inv = inv * fmaf(-d, inv, 2.0f);
    *corr = (fmaf(-s, d, numh) + fmaf(-s, dl, numl)) * inv;
    return s;
}

FJ_INLINE float fj_expf(float x) {
    float xc = fj__sel(x < -104.0f, -104.0f, x);
    xc = fj__sel(xc > 89.0f, 89.0f, xc);
    return fj__exp_clamped(xc);
}

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

FJ_INLINE float fj_sigmoidf(float x) {
    float c;
    float s = fj__sigmoid_hl(x, 0.0f, &c);
    return s + c;
}

/* ---- log / log1p ------------------------------------------------------------------------------------------------ */

FJ_INLINE float fj__log1p_poly(float f) {
    float q = fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(-0x1.38c8cap-4f, f, 0x1.057338p-3f), f, -0x1.0d8beep-3f), f,
                                          0x1.22d71ap-3f), f, -0x1.547166p-3f), f, 0x1.99a028p-3f), f,
                        -0x1.00022ap-2f), f, 0x1.555554p-2f);
    q = fmaf(q, f, -0.5f);
    return fmaf(f * f, q, f);
}

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

FJ_INLINE float fj_log1pf(float x) {
    float u = 1.0f + x;
    uint32_t t = fj__asu(u) - 0x3f3504f3u;
    int32_t e = (int32_t)t >> 23;
    float m = fj__asf((t & 0x007fffffu) + 0x3f3504f3u);
    float fm = m - 1.0f;
    float f = fj__sel(e == 0, x, fm);
    float c = ((x - (u - 1.0f)) - (f - fm)) / u;
    float ef = (float)e;
    float y = fmaf(ef, FJ_LN2_HI, fmaf(ef, FJ_LN2_LO, fj__log1p_poly(f) + c));
    y = fj__sel(x > -1.0f, y, fj__sel(x == -1.0f, -FJ_INFF, FJ_NANF));
    y = fj__sel(x == FJ_INFF, x, y);
    return fj__sel(x == 0.0f, x, y);
}

/* ---- tanh / erf ------------------------------------------------------------------------------------------------- */

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

FJ_INLINE float fj_erff(float x) {
    float ax = fabsf(x);
    float x2 = ax * ax;
    float pa = fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(0x1.49fbb4p-14f, x2, -0x1.a4d08p-11f), x2, 0x1.54318ap-8f), x2,
                                   -0x1.b7ff9p-6f), x2, 0x1.ce2d5cp-4f), x2, -0x1.8127400p-2f), x2, 0x1.06eba8p-3f);
    float ya = fmaf(ax, pa, ax);
    float a = fj__sel(ax > 4.0f, 4.0f, ax);
    float v = a - 2.5f;
    float sb = fmaf(fmaf(fmaf(fmaf(fmaf(fmaf(0x1.a58d48p-13f, v, -0x1.4461c2p-14f), v, 0x1.5610e8p-9f), v,
                                   -0x1.5ac74ap-7f), v, 0x1.cc19cp-5f), v, -0x1.692806p-2f), v, -0x1.8e8bb8p+0f);
    float yb = 1.0f - fj__exp_clamped(fmaf(-a, a, sb));
    return fj__copysign(fj__sel(ax < 0.875f, ya, yb), x);
}

/* ---- sin / cos -------------------------------------------------------------------------------------------------- */

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
FJ_INLINE float fj_sinf(float x) {
    return fj__asf(fj__asu(fj__sincos(fabsf(x), 0u)) ^ (fj__asu(x) & 0x80000000u));
}
FJ_INLINE float fj_cosf(float x) { return fj__sincos(fabsf(x), 1u); }

/* ---- gelu ------------------------------------------------------------------------------------------------------- */

FJ_INLINE double fj__exp_neg_d(double x) {
    double kd = fma(x, 0x1.71547652b82fep+0, 0x1.8p52);
    double n = kd - 0x1.8p52;
    double r = fma(n, -0x1.62e42fefa3800p-1, x);
    r = fma(n, -0x1.ef35793c76730p-45, r);
    double q = fma(fma(fma(fma(fma(0x1.9e8a1ep-13, r, 0x1.6d405cp-10), r, 0x1.1112dp-7), r, 0x1.5554f4p-5), r,
                       0x1.555554p-3), r, 0.5);
    double p = 1.0 + fma(r * r, q, r);
    uint64_t sc = (fj__asu64(kd) << 52) + ((uint64_t)1023 << 52);
    return p * fj__asd(sc);
}

FJ_INLINE float fj_gelu_erff(float x) {
    float ax = fabsf(x);
    double a = (double)fj__sel(ax > 14.5f, 14.5f, ax);
    double t = 1.0 / fma(0.3, a, 1.0);
    double P = -0x1.5e758e1bb5a96p-3;
    P = fma(P, t, 0x1.3d6720e162305p+0);
    P = fma(P, t, -0x1.e940ece51961fp+1);
    P = fma(P, t, 0x1.9dc84d7fea5c5p+2);
    P = fma(P, t, -0x1.a1e1c9659c77bp+2);
    P = fma(P, t, 0x1.0f494cb794906p+2);
    P = fma(P, t, -0x1.09178c014e923p+1);
    P = fma(P, t, 0x1.4638febbbd8edp-1);
    P = fma(P, t, 0x1.d11f3c2afd1bcp-7);
    P = fma(P, t, 0x1.b81fd07f42641p-2);
    P = fma(P, t, 0x1.ff2718c96ca67p-1);
    P = fma(P, t, -0x1.0fb98b7489f27p+1);
    double phin = t * fj__exp_neg_d(fma(-0.5 * a, a, P));
    phin = fj__asd(fj__asu64(phin) & ((uint64_t)0 - (uint64_t)(ax < 14.5f)));
    uint64_t neg = (uint64_t)0 - (uint64_t)(x < 0.0f);
    double phi = fj__asd((fj__asu64(phin) & neg) | (fj__asu64(1.0 - phin) & ~neg));
    float y = (float)((double)x * phi);
    return fj__sel(x == -FJ_INFF, -0.0f, y);
}

FJ_INLINE float fj_gelu_tanhf(float x) {
    float xc = fj__sel(x < -11.0f, -11.0f, x);
    xc = fj__sel(xc > 11.0f, 11.0f, xc);
    double d = (double)xc;
    double z = d * (1.5957691216057307 + 0.071354816272600249 * (d * d));
    float zh = (float)z;
    float zl = (float)(z - (double)zh);
    float c;
    float s = fj__sigmoid_hl(zh, zl, &c);
    float y = fmaf(x, s, x * c);
    y = fj__sel(x == FJ_INFF, x, y);
    return fj__sel(x == -FJ_INFF, -0.0f, y);
}

/* ---- float64 ---------------------------------------------------------------------------------------------------- */

static inline double fj_exp(double x) { return exp(x); }
static inline double fj_log(double x) { return log(x); }
static inline double fj_log1p(double x) { return log1p(x); }
static inline double fj_expm1(double x) { return expm1(x); }
static inline double fj_tanh(double x) { return tanh(x); }
static inline double fj_erf(double x) { return erf(x); }
static inline double fj_sin(double x) { return sin(x); }
static inline double fj_cos(double x) { return cos(x); }
static inline double fj_sigmoid(double x) {
    double e = exp(-fabs(x));
    return (x < 0.0 ? e : 1.0) / (1.0 + e);
}
static inline double fj_gelu_erf(double x) {
    return x == -INFINITY ? -0.0 : 0.5 * x * erfc(-x * 0.70710678118654752440);
}
static inline double fj_gelu_tanh(double x) {
    double z = 1.5957691216057307 * x + 0.071354816272600249 * (x * x * x);
    return x == -INFINITY ? -0.0 : x * fj_sigmoid(z);
}

#endif

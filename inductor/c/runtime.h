/* What every generated C kernel module starts with (c/codegen.py pastes this file, with mathlib.h in place of
   its #include, at the top of each module): taking the arrays through the buffer protocol, torch's rules for the
   float operations C spells differently, the limits of each integer type. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "mathlib.h"

#define FJ_LOWEST(T) (_Generic((T)0, bool: 0, int8_t: INT8_MIN, uint8_t: 0, int16_t: INT16_MIN, int32_t: INT32_MIN, \
                                     int64_t: INT64_MIN))
#define FJ_HIGHEST(T) (_Generic((T)0, bool: 1, int8_t: INT8_MAX, uint8_t: UINT8_MAX, int16_t: INT16_MAX, \
                                      int32_t: INT32_MAX, int64_t: INT64_MAX))

static void fj_release(Py_buffer* v, int count) {
    for (int i = 0; i < count; i++) PyBuffer_Release(&v[i]);
}

static void fj_free_all(void** temps, int count) {
    for (int i = 0; i < count; i++) free(temps[i]);
}

static int fj_arguments(Py_ssize_t nargs, int count) {
    if (nargs == count) return 1;
    PyErr_Format(PyExc_TypeError, "framejit C kernel: %d arguments expected, %zd given", count, nargs);
    return 0;
}

/* The rows [lo, hi) of a kernel split across threads: inside the outermost loop's range. */
static int fj_range(int64_t lo, int64_t hi, int64_t rows) {
    if (0 <= lo && lo <= hi && hi <= rows) return 1;
    PyErr_Format(PyExc_ValueError, "framejit C kernel: rows %lld:%lld outside 0:%lld", (long long)lo,
                 (long long)hi, (long long)rows);
    return 0;
}

/* The output (writable) and the inputs, each checked against the rank and item size the code was generated
   for: a mismatch is a bug in the caller, reported as an exception, never a wild read. */
static int fj_buffers(PyObject* const* args, Py_buffer* v, int count, const int* ndims, const int* sizes) {
    for (int i = 0; i < count; i++) {
        if (PyObject_GetBuffer(args[i], &v[i], i == 0 ? PyBUF_RECORDS : PyBUF_RECORDS_RO) < 0) {
            fj_release(v, i);
            return 0;
        }
        if (v[i].ndim != ndims[i] || v[i].itemsize != sizes[i]) {
            PyErr_Format(PyExc_ValueError, "framejit C kernel: array %d has rank %d and items of %zd bytes, "
                         "the code expects %d and %d", i, v[i].ndim, v[i].itemsize, ndims[i], sizes[i]);
            fj_release(v, i + 1);
            return 0;
        }
    }
    return 1;
}

/* torch's remainder of floats: fmod, plus b where the signs differ (a zero keeps fmod's sign). */
static inline float fj_remainderf(float a, float b) {
    float m = fmodf(a, b);
    return (m != 0 && ((b < 0) != (m < 0))) ? m + b : m;
}
static inline double fj_remainder(double a, double b) {
    double m = fmod(a, b);
    return (m != 0 && ((b < 0) != (m < 0))) ? m + b : m;
}

/* torch's floor division of floats (c10's div_floor_floating): through fmod, so inf // 2 is nan, a quotient
   that rounding put just below an integer is that integer, a zero keeps a / b's sign, b == 0 gives a / b. */
#define FJ_FLOORDIV(T, FMOD, FLOOR)                                          \
    if (b == 0) return a / b;                                                \
    T mod = FMOD(a, b);                                                      \
    T div = (a - mod) / b;                                                   \
    if (mod != 0 && (b < 0) != (mod < 0)) div -= (T)1;                       \
    if (div == 0) return copysign((T)0, a / b);                              \
    T fl = FLOOR(div);                                                       \
    return div - fl > (T)0.5 ? fl + (T)1 : fl;
static inline float fj_floordivf(float a, float b) { FJ_FLOORDIV(float, fmodf, floorf) }
static inline double fj_floordiv(double a, double b) { FJ_FLOORDIV(double, fmod, floor) }

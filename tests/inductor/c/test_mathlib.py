"""inductor/c/mathlib.h, the vectorizable float32 math the generated C loops call: each function is compiled into
a tiny shared library with the flags generated code uses (no -ffast-math) and checked for its error in ULPs against
float64 results rounded to float32, over several distributions and the special values whose outcome torch's float32
kernels fix (NaN, infinities, signed zeros, overflow and underflow boundaries)."""
import ctypes
import math
import pathlib
import platform
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

CC = shutil.which("gcc") or shutil.which("cc")
if CC is None:
    pytest.skip("no C compiler", allow_module_level=True)

HEADER = pathlib.Path(__file__).resolve().parents[3] / "inductor" / "c" / "mathlib.h"
FLAGS = ["-O3", "-fno-math-errno", "-fwrapv", "-fopenmp-simd", "-shared", "-fPIC"]
NAMES = ["exp", "log", "log1p", "expm1", "tanh", "erf", "sigmoid", "sin", "cos", "gelu_erf", "gelu_tanh"]

# sin and cos are documented accurate for |x| < 2**21; from there on they are only finite and within [-1, 1].
SINCOS_RANGE = 2.0 ** 21
MAX_ULP = 2  # over all 2**32 inputs: 1 ULP, but 2 for sin and cos at 2**17 <= |x| < 2**21
TINY = 1e-30  # gelu near -inf: results below this magnitude need only be within it (they underflow towards -0.0)


def source() -> str:
    """One loop a line: line i + 2 applies NAMES[i]'s float32 function."""
    return "\n".join(
        [f'#include "{HEADER}"']
        + [f"void apply_{n}f(const float* x, float* y, long n) {{ for (long i = 0; i < n; i++) y[i] = fj_{n}f(x[i]); }}"
           for n in NAMES]
        + [f"void apply_{n}(const double* x, double* y, long n) {{ for (long i = 0; i < n; i++) y[i] = fj_{n}(x[i]); }}"
           for n in NAMES])


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("mathlib")
    (out / "m.c").write_text(source())
    so = out / "m.so"
    # the flags of generated code; a compiler without -march=native still gives the same results (fmaf is exact)
    for march in (["-march=native"], []):
        done = subprocess.run([CC, *FLAGS, *march, str(out / "m.c"), "-o", str(so), "-lm"],
                              capture_output=True, text=True)
        if done.returncode == 0:
            break
    assert done.returncode == 0, done.stderr
    return ctypes.CDLL(str(so))


def run(lib, name: str, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    ptr = ctypes.POINTER(ctypes.c_float if x.dtype == np.float32 else ctypes.c_double)
    fn = getattr(lib, f"apply_{name}f" if x.dtype == np.float32 else f"apply_{name}")
    fn(x.ctypes.data_as(ptr), y.ctypes.data_as(ptr), ctypes.c_long(x.size))
    return y


def reference(name: str, x: np.ndarray) -> np.ndarray:
    """float64 results (of float32 inputs), from formulas that do not cancel: gelu through erfc and a sigmoid."""
    t = torch.from_numpy(x.astype(np.float64))
    if name == "gelu_erf":
        r = 0.5 * t * torch.special.erfc(-t * math.sqrt(0.5))
    elif name == "gelu_tanh":
        r = t * torch.sigmoid(2.0 * math.sqrt(2.0 / math.pi) * (t + 0.044715 * t ** 3))
    else:
        r = getattr(torch, name)(t)
    if name.startswith("gelu"):
        r = torch.where(t == -math.inf, -0.0, r)  # the limit, -0.0 (torch itself gives NaN: see test_special_values)
    return r.numpy()


def ulps(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Distance in float32 steps from y to ref rounded to float32 (0 where both are NaN, huge where one is)."""
    def ordinal(a):
        i = a.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    with np.errstate(over="ignore"):
        r = ref.astype(np.float32)
    d = np.abs(ordinal(y) - ordinal(r))
    nan_y, nan_r = np.isnan(y), np.isnan(r)
    return np.where(nan_y | nan_r, np.where(nan_y & nan_r, 0, 1 << 40), d)


def samples(n: int = 200_000) -> dict:
    g = np.random.default_rng(0)
    out = {f"normal*{s:g}": (g.standard_normal(n) * s).astype(np.float32) for s in (1e-6, 1e-3, 1.0, 10.0, 100.0)}
    bits = g.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    out["all bit patterns"] = bits[np.isfinite(bits)]
    return out


SAMPLES = samples()


def assert_ulps(name: str, x: np.ndarray, y: np.ndarray, where: str):
    ref = reference(name, x)
    err = ulps(y, ref)
    if name.startswith("gelu"):
        with np.errstate(invalid="ignore"):
            err = np.where((np.abs(ref) < TINY) & (np.abs(y.astype(np.float64) - ref) <= TINY), 0, err)
    if name in ("sin", "cos"):
        far = np.abs(x) >= SINCOS_RANGE
        assert np.all(np.abs(y[far & np.isfinite(x)]) <= 1.0), f"{name}: from 2**21 on not within [-1, 1] ({where})"
        err = np.where(far, 0, err)
    worst = int(np.argmax(err))
    assert err[worst] <= MAX_ULP, (f"{name}f({x[worst]!r}) = {y[worst]!r}, float64 says {ref[worst]!r}: "
                                   f"{err[worst]} ULP ({where})")


@pytest.mark.parametrize("name", NAMES)
def test_ulp_error_over_distributions(lib, name):
    for dist, x in SAMPLES.items():
        assert_ulps(name, x, run(lib, name, x), dist)


F32 = np.finfo(np.float32)
SPECIALS = np.array(
    [0.0, -0.0, math.inf, -math.inf, math.nan, -math.nan,
     1e-45, -1e-45, 1e-40, -1e-40, float(F32.tiny), -float(F32.tiny), 1e-30, -1e-30, 1e-8, -1e-8,
     float(F32.max), -float(F32.max), 1e30, -1e30,
     88.72283, 88.722839, 88.7229, 89.0, -87.33654, -87.34, -88.0, -88.7, -89.0, -95.0, -100.0, -103.27893,
     -103.97, -103.972, -103.98, -104.0, -105.0, -150.0,
     1.0, -1.0, -1.0000001, -0.99999994, -0.5, -2.0, 0.5, 2.0, 9.0, 9.1, -9.1, 3.92, -3.92, 4.0, 5.0, -5.0,
     -6.0, -10.0, -13.0, -14.0, -14.5, -20.0, 10.0, 14.5, 20.0, 3.1415927, -3.1415927, 1.5707964, 6.2831855,
     1e5, -1e5, 2.0 ** 21, 2.0 ** 24, 1e20], dtype=np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_special_values(lib, name):
    """NaN, infinities and zeros (with their signs) as torch's float32 kernel gives them, and every finite result
    within the ULP bound; where torch's own float32 result is wrong, the float64 limit instead:
    - sigmoid(x) for x < -88.72: torch flushes to 0 (exp(-x) overflows first); the true result is a denormal;
    - gelu (erf) of -inf and +inf: torch gives NaN for both; the limits are -0.0 and inf;
    - gelu_tanh(-inf): torch gives NaN; the limit is -0.0;
    - gelu of x below about -5.5 (erf) or -5.1 (tanh): torch's 1 + erf / 1 + tanh cancels to 0, giving -0.0 where
      the true result is a tiny negative number; ours is that number (or -0.0 once it underflows);
    - gelu (erf) of FLT_MAX: torch overflows to inf inside x * 0.5 * (1 + erf(..)); the result is FLT_MAX."""
    x = SPECIALS
    y = run(lib, name, x)
    assert_ulps(name, x, y, "special values")
    fn = {"gelu_erf": lambda t: torch.nn.functional.gelu(t),
          "gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh")}.get(name, getattr(torch, name, None))
    want = fn(torch.from_numpy(x)).numpy()
    with np.errstate(over="ignore"):
        ref = reference(name, x).astype(np.float32)  # the float64 limit rounded, for the cases torch gets wrong
    torch_wrong = np.zeros(x.shape, bool)
    if name == "sigmoid":
        torch_wrong = (want == 0) & (ref != 0)
    if name.startswith("gelu"):
        torch_wrong = (np.isinf(x) & np.isnan(want)) | ((want == 0) & (ref != 0)) | (np.isfinite(x) & np.isinf(want))
    want = np.where(torch_wrong, ref, want)
    for i in range(x.size):
        w, g = want[i], y[i]
        msg = f"{name}f({x[i]!r}) = {g!r}, torch gives {w!r}"
        assert np.isnan(w) == np.isnan(g), msg
        if np.isinf(w) or np.isinf(g):
            assert w == g, msg
        if w == 0 and g == 0:
            assert np.signbit(w) == np.signbit(g), msg
    # the few documented deviations from torch are where torch is wrong, and are what the float64 limit says
    if name == "sigmoid":
        assert y[x == -95.0][0] > 0 and torch.sigmoid(torch.tensor([-95.0])).item() == 0
    if name == "gelu_erf":
        assert torch.nn.functional.gelu(torch.tensor([-math.inf, math.inf])).isnan().all()
        assert (y[x == math.inf][0], str(y[x == -math.inf][0])) == (math.inf, "-0.0")


SIGNED_ZERO = {"tanh": -0.0, "expm1": -0.0, "erf": -0.0, "sin": -0.0, "log1p": -0.0, "exp": 1.0, "cos": 1.0,
               "sigmoid": 0.5, "log": -math.inf, "gelu_erf": -0.0, "gelu_tanh": -0.0}


@pytest.mark.parametrize("name", NAMES)
def test_negative_zero(lib, name):
    y = run(lib, name, np.array([-0.0], np.float32))[0]
    assert str(y) == str(np.float32(SIGNED_ZERO[name])), (name, y)
    assert str(run(lib, name, np.array([-0.0]))[0]) == str(SIGNED_ZERO[name]), name  # float64 too


def test_exp_and_log_boundaries(lib):
    """exp overflows to inf just above log(FLT_MAX) and underflows through the denormals to 0 as torch does;
    log and log1p at and below their poles."""
    x = np.array([88.72283, 88.7229, -103.97, -103.972, -104.0], np.float32)
    y = run(lib, "exp", x)
    assert np.isfinite(y[0]) and y[1] == math.inf and y[2] > 0 and y[4] == 0
    assert np.array_equal(y, torch.exp(torch.from_numpy(x)).numpy())
    assert run(lib, "log", np.array([0.0, -1.0, -math.inf], np.float32)).tolist()[0] == -math.inf
    assert np.isnan(run(lib, "log", np.array([-1e-45, -1.0, -math.inf], np.float32))).all()
    y = run(lib, "log1p", np.array([-1.0, -1.0000001, -2.0, -math.inf], np.float32))
    assert y[0] == -math.inf and np.isnan(y[1:]).all()


def test_sin_cos_beyond_the_accurate_range_stay_bounded(lib):
    x = np.concatenate([SAMPLES["all bit patterns"], np.float32([3e38, -3e38, 2.0 ** 22, 1e10])]).astype(np.float32)
    for name in ("sin", "cos"):
        y = run(lib, name, x)
        finite = np.isfinite(x)
        assert np.all(np.abs(y[finite]) <= 1.0) and np.isnan(y[~finite]).all(), name


@pytest.mark.parametrize("name", NAMES)
def test_float64_versions(lib, name):
    """The float64 functions are libm calls (or libm-built formulas): close to torch's float64 results."""
    x = np.concatenate([SAMPLES["normal*1"], SAMPLES["normal*10"]]).astype(np.float64)
    x = np.concatenate([x, [0.0, 1e-300, -1e-300, 1e-310]])
    if name in ("log", "log1p"):
        x = np.abs(x)
    y = run(lib, name, x)
    ref = reference(name, x) if name.startswith("gelu") else getattr(torch, name)(torch.from_numpy(x)).numpy()
    # gelu_tanh: the cubic's rounding is amplified by |2u| (up to ~1e4 here) in exp(-2u)
    np.testing.assert_allclose(y, ref, rtol=1e-11 if name == "gelu_tanh" else 1e-13, atol=1e-300)
    specials = np.array([math.inf, -math.inf, math.nan])
    got, want = run(lib, name, specials), reference(name, specials)
    assert np.array_equal(got, want, equal_nan=True), (name, got, want)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="checked on x86-64 (AVX2/FMA)")
def test_every_float32_loop_vectorizes(tmp_path):
    """The point of the header: gcc vectorizes a loop over each float32 function under the flags of generated code
    (a ternary or a libm call slipped in would silently make it scalar)."""
    version = subprocess.run([CC, "--version"], capture_output=True, text=True).stdout
    if "clang" in version.lower() or "Free Software Foundation" not in version:
        pytest.skip("the vectorizer report read here is gcc's")
    (tmp_path / "m.c").write_text(source())
    done = subprocess.run([CC, *FLAGS[:-2], "-march=native", "-fopt-info-vec-optimized", "-c", str(tmp_path / "m.c"),
                           "-o", str(tmp_path / "m.o")], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"no -march=native build: {done.stderr[:200]}")
    lines = {int(m) for m in re.findall(r"m\.c:(\d+):\d+: optimized: loop vectorized", done.stderr)}
    assert [n for i, n in enumerate(NAMES) if i + 2 not in lines] == []

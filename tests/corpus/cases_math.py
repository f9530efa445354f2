"""math.* on constants and shapes: folded at trace time, the result enters the graph as a constant."""
import enum
import math

import numpy as np
import torch

from .case import CaseList, randint, randn, tensors, values

C = CaseList("math")
T1 = tensors((3, 4))


@C.add(T1)
def math_sqrt(x):
    return x / math.sqrt(x.shape[-1])


@C.add(T1)
def math_pi_e(x):
    return x * math.pi + math.e


@C.add(T1)
def math_exp_log(x):
    return x * math.exp(1.0) + math.log(10.0) + math.log2(8) + math.log10(100)


@C.add(T1)
def math_trig(x):
    return x * math.sin(0.5) + math.cos(0.5) + math.tan(0.1) + math.atan2(1.0, 2.0)


@C.add(T1)
def math_floor_ceil(x):
    return x[:, : math.ceil(x.shape[1] / 3)], math.floor(2.7), math.trunc(-2.5)


@C.add(T1)
def math_inf_nan(x):
    return x.masked_fill(x > 1, -math.inf), math.isinf(math.inf), math.isnan(math.nan)


@C.add(T1)
def math_prod_gcd(x):
    n = math.prod(x.shape)
    return x.view(n), math.gcd(12, 18), math.lcm(4, 6)


@C.add(T1)
def math_pow_fabs_copysign(x):
    return x * math.pow(2, 0.5) + math.fabs(-1.5), math.copysign(3, -1)


@C.add(T1)
def math_isclose_hypot(x):
    return x * math.hypot(3, 4), math.isclose(0.1 + 0.2, 0.3)


@C.add(T1)
def math_factorial_comb(x):
    return x * math.factorial(4) + math.comb(5, 2) + math.perm(4, 2)


@C.add(T1)
def math_gelu_constant(x):
    # The tanh-GELU constant, computed the way GPT-2 code writes it.
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


@C.add(T1)
def math_radians_degrees(x):
    return x * math.radians(180.0), math.degrees(math.pi / 2)


@C.add(T1)
def math_fsum_dist(x):
    return x + math.fsum([0.1] * 10), math.dist((0, 0), (3, 4))


@C.add(T1)
def math_isqrt_modf(x):
    frac, whole = math.modf(3.25)
    return x * math.isqrt(17) + frac, whole


@C.add(T1)
def math_erf_gamma(x):
    return x * math.erf(0.5) + math.lgamma(3.0), math.gamma(5)


@C.add(values(16, 4), graphs=0)
def math_only_constants(n, k):
    return math.log2(n) * k, math.sqrt(n) + math.ceil(k / 3)


@C.add(T1)
def math_on_tensor_shape_loop(x):
    scales = [math.sqrt(d) for d in x.shape]
    return x * scales[0] / scales[1]


@C.add(T1)
def math_cos_schedule(x):
    step, total = 3, 10
    lr = 0.5 * (1 + math.cos(math.pi * step / total))
    return x * lr


@C.add(T1)
def math_tau_inf_compare(x):
    return x * (math.tau / 2), float("inf") > 1e308


@C.add(T1)
def math_expm1_log1p(x):
    return x * math.expm1(1e-3) + math.log1p(1e-3)


_F64, _F32, _I64, _B = np.float64(2.5), np.float32(1.5), np.int64(3), np.bool_(True)


@C.add(values(lambda: randn(3, 4), lambda: randint(0, 5, 3, 4).int()))
def numpy_scalars_with_tensors(x, xi):
    # NumPy scalars from outside or made here: arithmetic with tensors reads them as Python numbers (np.float64
    # is a float; an np.bool_ is a float to torch's arithmetic), and they stay NumPy values in Python code.
    made = np.float64(2.0) * 2 + 1
    return (x + _F64, _F64 * x, x * _F32, xi + _I64, xi * _B, x > _F64, x - made, type(made), made,
            np.int32(4) * 2, _F64 + 1)


class _Color(enum.Enum):
    RED = 1
    GREEN = 2


class _Level(enum.IntEnum):
    LOW = 2


@C.add(T1)
def enum_members(x):
    c = _Color.RED
    return (x * c.value + _Level.LOW, c is _Color.RED, c == _Color.GREEN, c.name, _Color(2) is _Color.GREEN,
            _Color["RED"] is c, [m.name for m in _Color], len(_Color), x * _Level.LOW)

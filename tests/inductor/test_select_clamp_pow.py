"""Issue 20's selections and powers in both backends: where / masked_fill (scalar and 0-d tensor values),
clamp / clamp_min / clamp_max with scalar and tensor bounds (NaN propagating, promoting bounds), pow with scalar
and tensor exponents (integer powers exact, as torch's powi). Compared with eager, run in generated code."""
import pytest
import torch

from tests.inductor.generated import BACKENDS, run


def rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def mask(*shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) > 0.5


NAN = float("nan")
CASES = {
    "where_scalars": (lambda m, x: torch.where(m, x, 0.5) + torch.where(m, 1.0, x), lambda: [mask(4, 5), rand(4, 5)]),
    "where_broadcast": (lambda m, x, y: torch.where(m, x, y), lambda: [mask(4, 1), rand(5), rand(4, 5, seed=1)]),
    "masked_fill_scalar": (lambda x, m: x.masked_fill(m, float("-inf")).softmax(-1),
                           lambda: [rand(4, 5), mask(4, 5) & (torch.arange(5) > 0)]),
    "masked_fill_0d_tensor": (lambda x, m, v: x.masked_fill(m, v), lambda: [rand(4, 5), mask(4, 5),
                                                                           torch.tensor(3.5, dtype=torch.float64)]),
    "masked_fill_bf16": (lambda x, m: torch.masked_fill(x, m, 0.1), lambda: [rand(4, 5, dtype=torch.bfloat16),
                                                                             mask(4, 5)]),
    "clamp_scalars": (lambda x: torch.clamp(x, -0.5, 0.5), lambda: [rand(4, 5)]),
    "clamp_tensors": (lambda x, lo, hi: torch.clamp(x, lo, hi), lambda: [rand(4, 5), rand(5, seed=1) - 1,
                                                                         rand(4, 1, seed=2) + 1]),
    "clamp_nan_bounds": (lambda x, lo: torch.clamp(x, lo), lambda: [torch.tensor([1.0, NAN, -2.0]),
                                                                     torch.tensor([NAN, 0.0, 0.0])]),
    "clamp_min_above_max": (lambda x: torch.clamp(x, 1.0, -1.0), lambda: [rand(6)]),
    "clamp_int_by_float": (lambda x: torch.clamp(x, 0.5, 2.5), lambda: [torch.arange(-2, 5)]),
    "clamp_int_tensor_bounds": (lambda x, lo: x.clamp(min=lo), lambda: [torch.arange(-3, 3), torch.tensor(0)]),
    "clamp_min": (lambda x: torch.clamp_min(x, 0.1), lambda: [rand(4, 5)]),
    "clamp_max_tensor": (lambda x, hi: x.clamp_max(hi), lambda: [rand(4, 5), rand(5, seed=1)]),
    "clamp_half": (lambda x: x.clamp(-0.1, 0.1), lambda: [rand(4, 5, dtype=torch.float16)]),
    "pow_int_scalar": (lambda x: x ** 3 + x ** 2, lambda: [rand(4, 5)]),
    "pow_float_scalar": (lambda x: x.abs() ** 2.5 + x.abs() ** 0.5, lambda: [rand(4, 5)]),
    "pow_tensor": (lambda x, e: x.abs() ** e, lambda: [rand(4, 5), rand(4, 5, seed=1)]),
    "pow_integer_tensors": (lambda a, e: a ** e, lambda: [torch.tensor([2, -1, 1, 3, 0, -2, 7]),
                                                          torch.tensor([3, -3, -2, 0, 5, 63, 20])]),
    "pow_int32_scalar": (lambda a: a.int() ** 5, lambda: [torch.arange(-4, 4)]),
    "pow_scalar_base": (lambda e: 2 ** e, lambda: [rand(5)]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CASES)
def test_matches_eager_in_generated_code(backend, name):
    fn, make = CASES[name]
    run(backend, fn, *make())

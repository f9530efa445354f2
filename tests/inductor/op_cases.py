"""The op lists both backends' op tests run (NumPy: test_numpy_ops.py, Triton: test_triton_ops.py), and the
(op, dtype) cases eager torch itself supports."""
import pytest
import torch

aten = torch.ops.aten
UNARY = ["abs", "neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tanh",
         "sigmoid", "erf", "floor", "ceil", "round", "trunc", "sign", "logical_not", "bitwise_not", "isnan",
         "relu"]
BINARY = [aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor, aten.remainder.Tensor,
          aten.pow.Tensor_Tensor, aten.maximum.default, aten.minimum.default, aten.eq.Tensor, aten.ne.Tensor,
          aten.lt.Tensor, aten.le.Tensor, aten.gt.Tensor, aten.ge.Tensor, aten.logical_and.default,
          aten.logical_or.default, aten.logical_xor.default, aten.bitwise_and.Tensor, aten.bitwise_or.Tensor,
          aten.bitwise_xor.Tensor, aten.atan2.default]
REDUCTIONS = [(aten.sum.dim_IntList, ([1], False)), (aten.sum.dim_IntList, ([0, 1], True)),
              (aten.sum.default, ()), (aten.amax.default, ([1], True)), (aten.amin.default, ([0],)),
              (aten.prod.dim_int, (1, False)), (aten.argmax.default, (1, False)), (aten.argmin.default, (0, True)),
              (aten.argmax.default, ()), (aten.any.dim, (1, False)), (aten.all.dims, ([0, 1], True)),
              (aten.mean.dim, ([1], True))]


def eager_ok(fn):
    try:
        fn()
        return True
    except (RuntimeError, NotImplementedError, TypeError):
        return False


def unary_cases(dtypes):
    for name in UNARY:
        op = getattr(aten, name).default
        for dt in dtypes:
            if eager_ok(lambda: op(torch.ones(2, dtype=dt))):
                yield pytest.param(op, dt, id=f"{name}-{str(dt)[6:]}")


def binary_cases(dtypes):
    for op in BINARY:
        for dt in dtypes:
            if eager_ok(lambda: op(torch.ones(2, dtype=dt), torch.ones(2, dtype=dt))):
                yield pytest.param(op, dt, id=f"{op.__name__}-{str(dt)[6:]}")

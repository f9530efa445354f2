"""Every lowered op through the Triton backend against eager torch: dtypes, broadcasting, non-contiguous inputs,
reductions persistent and looped. Without a GPU the kernels run in Triton's interpreter (small shapes: each
program instance costs ~1 ms there)."""
import pytest
import torch

from tests.inductor.op_cases import REDUCTIONS, binary_cases, eager_ok, unary_cases
from tests.inductor.opgraph import make
from tests.inductor.triton.support import DEVICE, In, check

aten = torch.ops.aten
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.bool]
@pytest.mark.parametrize("op,dtype", list(unary_cases(DTYPES)))
@pytest.mark.parametrize("layout,shape", [("contiguous", (3, 5)), ("transposed", (4, 3)), ("sliced", (2, 3))],
                         ids=lambda v: str(v))
def test_unary(op, dtype, layout, shape):
    low = 0.1 if op in (aten.log.default, aten.sqrt.default, aten.rsqrt.default) and dtype.is_floating_point \
        else -3
    x = make(shape, dtype, layout, low=low, nonzero=op is aten.reciprocal.default)
    if dtype.is_floating_point and op not in (aten.log.default, aten.sqrt.default, aten.rsqrt.default):
        x = x.clone() if layout == "contiguous" else x
        if layout == "contiguous":
            x[0, 0] = float("nan")  # NaN handling: relu, sign, isnan, ... as torch
    check(op, [x], [In(0)])


@pytest.mark.parametrize("op,dtype", list(binary_cases(DTYPES)))
@pytest.mark.parametrize("case", ["same", "broadcast", "transposed", "scalar", "mixed"])
def test_binary(op, dtype, case):
    nz = op in (aten.div.Tensor, aten.remainder.Tensor)
    low = 0 if op is aten.pow.Tensor_Tensor and not dtype.is_floating_point else -3
    a = make((3, 4), dtype, low=low)
    b = make((3, 4), dtype, nonzero=nz, low=low, gen=torch.Generator().manual_seed(1))
    if op is aten.pow.Tensor_Tensor:
        if not dtype.is_floating_point:
            return  # integer pow by a tensor: no Triton rule; covered by test_fallback_for_unsupported_rule
        a = a.abs() + 0.5
    if case == "broadcast":
        b = b[:1, :]
    elif case == "transposed":
        a = make((3, 4), dtype, "transposed", low=low)
    elif case == "scalar":
        s = True if dtype == torch.bool else (2 if not dtype.is_floating_point else 1.5)
        if eager_ok(lambda: op(a, s)):
            check(op, [a], [In(0), s])
        return
    elif case == "mixed":  # type promotion across tensor dtypes, and a 0-d tensor operand
        b = make((), torch.float64 if dtype != torch.bool else torch.int32, nonzero=True, low=1)
        if not eager_ok(lambda: op(a, b)):
            return
    # under the interpreter atan2 is a float32-accurate series (libdevice on the GPU): float64 gets 1e-7
    tol = (1e-7, 1e-7) if op is aten.atan2.default and DEVICE == "cpu" and case == "mixed" and \
        dtype in (torch.float32, torch.int32, torch.int64, torch.bool) else None
    check(op, [a, b], [In(0), In(1)], tol=tol)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -0.5, -1, 1, -2, 1.7])
def test_pow_scalar(exponent):
    x = make((3, 5), torch.float32, low=0.5)
    check(aten.pow.Tensor_Scalar, [x], [In(0), exponent])


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32, torch.int64])
@pytest.mark.parametrize("mode", ["floor", "trunc", None])
def test_div_rounding(dtype, mode):
    a = make((4, 5), dtype, low=-9, high=9)
    b = make((4, 5), dtype, low=-4, high=4, nonzero=True, gen=torch.Generator().manual_seed(2))
    check(aten.div.Tensor_mode, [a, b], [In(0), In(1)], {"rounding_mode": mode})


@pytest.mark.parametrize("dtype", DTYPES)
def test_where_and_casts(dtype):
    c = make((3, 4), torch.bool)
    a = make((3, 4), dtype)
    check(aten.where.self, [c, a, make((4,), torch.float32, low=5)], [In(0), In(1), In(2)])
    check(aten.where.self, [c, a, make((), torch.int32)], [In(0), In(1), In(2)])
    for target in [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.bool]:
        check(aten._to_copy.default, [a], [In(0)], {"dtype": target})


@pytest.mark.parametrize("op,extra", REDUCTIONS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32, torch.bool])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "single"])
def test_reduction(op, extra, dtype, layout):
    shape = (1, 1) if layout == "single" else (4, 6)
    x = make(shape, dtype, "contiguous" if layout == "single" else layout)
    if not eager_ok(lambda: op(x, *extra)):
        return
    check(op, [x], [In(0), *extra])


@pytest.fixture
def looped(monkeypatch):
    """Rows longer than 16 float32 elements take the looped form (the GPU keeps rows up to 16K in registers)."""
    from framejit.inductor.runtime import launch_configs as triton_launch
    monkeypatch.setattr(triton_launch, "PERSISTENT_MAX_BYTES", 64)
    monkeypatch.setattr(triton_launch, "persistent_max", lambda itemsize: 16)
    real = triton_launch.heuristic

    def small_blocks(mode, xnumel, rnumel, itemsize=4, **kw):
        cfg = real(mode, xnumel, rnumel, itemsize, **kw)
        return dict(cfg, RBLOCK=16) if mode == "looped" else cfg
    monkeypatch.setattr(triton_launch, "heuristic", small_blocks)


@pytest.mark.parametrize("op,extra", REDUCTIONS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
def test_reduction_looped(looped, op, extra, dtype):
    dims = extra[0] if extra else None
    over_rows = dims in (0, [0])
    x = make((40, 5) if over_rows else (5, 40), dtype, "transposed" if op is aten.amin.default else "contiguous")
    if not eager_ok(lambda: op(x, *extra)):
        return
    fn = check(op, [x], [In(0), *extra])
    assert "for roffset in range" in fn.source


def test_nan_in_reductions():
    x = make((4, 6), torch.float32)
    x[1, 2] = float("nan")
    for op, extra in [(aten.amax.default, ([1], False)), (aten.amin.default, ([1], False)),
                      (aten.argmax.default, (1, False)), (aten.argmin.default, (1, False))]:
        check(op, [x], [In(0), *extra])


def test_sum_of_large_row_is_accurate(looped):
    big = torch.full((3, 3000), 0.1, dtype=torch.float32)
    check(aten.sum.dim_IntList, [big], [In(0), [1]])


VIEWS = [(aten.view.default, lambda x: [In(0), [6, 4]]), (aten.permute.default, lambda x: [In(0), [1, 0]]),
         (aten.expand.default, lambda x: [In(0), [2, 4, 6]]), (aten.slice.Tensor, lambda x: [In(0), 1, 1, 5, 2]),
         (aten.select.int, lambda x: [In(0), 0, -1]), (aten.unsqueeze.default, lambda x: [In(0), -1]),
         (aten.clone.default, lambda x: [In(0)])]


@pytest.mark.parametrize("op,args", VIEWS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.bool])
def test_views(op, args, dtype):
    x = make((4, 6), dtype)
    # a graph that is only a view returns an alias (no kernel); the view feeding arithmetic is index math
    check(op, [x], args(x), expect_triton=op is aten.clone.default or None)


def test_cat_full_arange():
    a, b = make((2, 3), torch.float32), make((4, 3), torch.int32)
    check(aten.cat.default, [a, b], [[In(0), In(1)], 0])
    check(aten.cat.default, [a, make((2, 5), torch.float32)], [[In(0), In(1)], 1])
    check(aten.full.default, [], [[2, 3], 1.5], {"dtype": torch.float32, "device": torch.device(_dev())},
          expect_triton=None)
    check(aten.arange.start_step, [], [0, 5, 1], {"dtype": torch.int64, "device": torch.device(_dev())},
          expect_triton=None)


def _dev():
    from tests.inductor.triton.support import DEVICE
    return DEVICE


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_externs(dtype):
    g = torch.Generator().manual_seed(3)
    a, b, bias = make((5, 7), dtype, gen=g), make((7, 3), dtype, gen=g), make((3,), dtype, gen=g)
    tol = (2e-2, 2e-2) if dtype == torch.float32 else None  # TF32 matmuls on the GPU
    check(aten.mm.default, [a, b], [In(0), In(1)], expect_triton=False, tol=tol)
    check(aten.addmm.default, [bias, a, b], [In(0), In(1), In(2)], {"beta": 0.5, "alpha": 2.0}, tol=tol,
          expect_triton=False)
    check(aten.bmm.default, [make((2, 3, 4), dtype, gen=g), make((2, 4, 5), dtype, gen=g)], [In(0), In(1)],
          expect_triton=False, tol=tol)
    check(aten.embedding.default, [make((10, 4), dtype, gen=g), torch.tensor([[1, 3], [9, 0]])],
          [In(0), In(1)], expect_triton=False)
    q, k, v = (make((2, 3, 5, 8), dtype, gen=g) for _ in range(3))
    check(aten.scaled_dot_product_attention.default, [q, k, v], [In(0), In(1), In(2)], {"is_causal": True},
          expect_triton=False, tol=tol)


def test_unlowered_op_falls_back_to_eager():
    x = make((3, 4), torch.float32)
    g = torch.fx.Graph()
    a = g.placeholder("a")
    c = g.call_function(aten.logcumsumexp.default, (g.call_function(aten.exp.default, (a,)), 1))
    g.output(g.call_function(aten.mul.Tensor, (c, 2.0)))
    from tests.inductor.triton.support import check_graph
    fn = check_graph(torch.fx.GraphModule(torch.nn.Module(), g), [x])
    assert "# torch fallback: aten.logcumsumexp.default (no lowering)" in fn.source and "@triton.jit" in fn.source
    assert "torch.ops.aten.logcumsumexp.default(" in fn.source

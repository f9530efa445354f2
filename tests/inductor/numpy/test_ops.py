"""Every lowered op against eager torch: dtypes, broadcasting, non-contiguous views, sizes 0 and 1."""
import pytest
import torch

from tests.inductor.op_cases import REDUCTIONS, binary_cases, eager_ok, unary_cases
from tests.inductor.opgraph import In, check, make

aten = torch.ops.aten
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.bool]
LAYOUTS = [("contiguous", (3, 5)), ("transposed", (4, 3)), ("sliced", (2, 3)), ("contiguous", (0, 3)),
           ("contiguous", (1, 1)), ("contiguous", ())]
@pytest.mark.parametrize("op,dtype", list(unary_cases(DTYPES)))
@pytest.mark.parametrize("layout,shape", LAYOUTS, ids=lambda v: str(v))
def test_unary(op, dtype, layout, shape):
    if layout != "contiguous" and len(shape) < 2:
        shape = (3, 2)
    low = 0.1 if op in (aten.log.default, aten.sqrt.default, aten.rsqrt.default) and dtype.is_floating_point \
        else -3
    x = make(shape, dtype, layout, low=low, nonzero=op is aten.reciprocal.default)
    check(op, [x], [In(0)])


@pytest.mark.parametrize("op,dtype", list(binary_cases(DTYPES)))
@pytest.mark.parametrize("case", ["same", "broadcast", "transposed", "empty", "scalar_int", "scalar_float",
                                  "mixed"])
def test_binary(op, dtype, case):
    nz = op in (aten.div.Tensor, aten.remainder.Tensor)
    low = 0 if op is aten.pow.Tensor_Tensor and not dtype.is_floating_point else -3
    a = make((3, 4), dtype, low=low)
    b = make((3, 4), dtype, nonzero=nz, low=low, gen=torch.Generator().manual_seed(1))
    if op is aten.pow.Tensor_Tensor and dtype.is_floating_point:
        a = a.abs() + 0.5
    if case == "broadcast":
        b = b[:1, :]
    elif case == "transposed":
        a = make((3, 4), dtype, "transposed", low=low)
    elif case == "empty":
        a, b = make((0, 4), dtype), make((1, 4), dtype, nonzero=nz, low=low)
    elif case in ("scalar_int", "scalar_float"):
        s = 2 if case == "scalar_int" else 1.5
        if dtype == torch.bool or (op.__name__.startswith("bitwise") and case == "scalar_float"):
            s = True if dtype == torch.bool else 2
        if not eager_ok(lambda: op(a, s)):
            check(aten.add.Tensor, [a], [In(0), 1 if dtype != torch.bool else True])
        else:
            check(op, [a], [In(0), s])
        return
    elif case == "mixed":  # type promotion across tensor dtypes, and a 0-d tensor operand
        b = make((), torch.float64 if dtype != torch.bool else torch.int32, nonzero=True, low=1)
        if not eager_ok(lambda: op(a, b)):
            b = make((4,), torch.int64 if dtype != torch.bool else torch.bool, nonzero=True, low=1)
        if not eager_ok(lambda: op(a, b)):
            return
    check(op, [a, b], [In(0), In(1)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int32, torch.int64, torch.float16])
@pytest.mark.parametrize("mode", ["floor", "trunc", None])
def test_div_rounding(dtype, mode):
    a = make((4, 5), dtype, low=-9, high=9)
    b = make((4, 5), dtype, low=-4, high=4, nonzero=True, gen=torch.Generator().manual_seed(2))
    check(aten.div.Tensor_mode, [a, b], [In(0), In(1)], {"rounding_mode": mode})


@pytest.mark.parametrize("dtype", DTYPES)
def test_where_and_casts(dtype):
    c = make((3, 4), torch.bool)
    a = make((3, 4), dtype)
    check(aten.where.self, [c, a, make((4,), torch.float64, low=5)], [In(0), In(1), In(2)])
    check(aten.where.self, [c, a, make((), torch.int32)], [In(0), In(1), In(2)])
    for target in [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.bool, torch.float64]:
        check(aten._to_copy.default, [a], [In(0)], {"dtype": target})


@pytest.mark.parametrize("op,extra", REDUCTIONS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced", "single"])
def test_reduction(op, extra, dtype, layout):
    shape = (1, 1) if layout == "single" else (4, 6)
    x = make(shape, dtype, "contiguous" if layout == "single" else layout)
    if not eager_ok(lambda: op(x, *extra)):
        return
    check(op, [x], [In(0), *extra])


def test_sum_of_empty_and_large():
    check(aten.sum.dim_IntList, [make((0, 3), torch.float32)], [In(0), [0]])
    big = torch.full((100000,), 0.1, dtype=torch.float32)  # pairwise summation keeps float32 accurate
    check(aten.sum.default, [big], [In(0)])


VIEWS = [(aten.view.default, lambda x: [In(0), [6, 4]]), (aten.permute.default, lambda x: [In(0), [1, 0]]),
         (aten.expand.default, lambda x: [In(0), [2, 4, 6]]), (aten.slice.Tensor, lambda x: [In(0), 1, 1, 5, 2]),
         (aten.select.int, lambda x: [In(0), 0, -1]), (aten.unsqueeze.default, lambda x: [In(0), -1]),
         (aten.squeeze.dims, lambda x: [In(0), [0]]), (aten.clone.default, lambda x: [In(0)])]


@pytest.mark.parametrize("op,args", VIEWS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.bool, torch.float16])
def test_views(op, args, dtype):
    x = make((4, 6), dtype)
    if op is aten.squeeze.dims:
        x = make((1, 6), dtype)
    check(op, [x], args(x))


def test_view_of_transposed_then_add():
    """A view feeding a pointwise op is index arithmetic inside the kernel."""
    x = make((3, 4), torch.float32, "transposed")
    g = torch.fx.Graph()
    a = g.placeholder("a")
    t = g.call_function(aten.permute.default, (a, [1, 0]))
    s = g.call_function(aten.slice.Tensor, (t, 0, 1, 3))
    g.output(g.call_function(aten.mul.Tensor, (s, 3)))
    from framejit.inductor import numpy_backend
    gm = torch.fx.GraphModule(torch.nn.Module(), g)
    torch.testing.assert_close(numpy_backend(gm, [x])(x), gm(x))


def test_cat_full_arange():
    a, b = make((2, 3), torch.float32), make((4, 3), torch.int32)
    check(aten.cat.default, [a, b], [[In(0), In(1)], 0])
    check(aten.full.default, [], [[2, 3], 1.5], {"dtype": torch.float32})
    check(aten.arange.start_step, [], [0, 5, 1], {"dtype": torch.int64})
    check(aten.arange.start_step, [], [0.0, 1.0, 0.1], {"dtype": torch.float32})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_externs(dtype):
    g = torch.Generator().manual_seed(3)
    a, b, bias = make((5, 7), dtype, gen=g), make((7, 3), dtype, gen=g), make((3,), dtype, gen=g)
    check(aten.mm.default, [a, b], [In(0), In(1)])
    check(aten.mm.default, [a, b.t().contiguous().t()], [In(0), In(1)])
    check(aten.addmm.default, [bias, a, b], [In(0), In(1), In(2)], {"beta": 0.5, "alpha": 2.0})
    check(aten.bmm.default, [make((2, 3, 4), dtype, gen=g), make((2, 4, 5), dtype, gen=g)], [In(0), In(1)])
    check(aten.embedding.default, [make((10, 4), dtype, gen=g), torch.tensor([[1, 3], [9, 0]])],
          [In(0), In(1)])
    q, k, v = (make((2, 3, 5, 8), dtype, gen=g) for _ in range(3))
    check(aten.scaled_dot_product_attention.default, [q, k, v], [In(0), In(1), In(2)], {"is_causal": True})
    mask = make((5, 5), torch.bool, gen=g) | torch.eye(5, dtype=torch.bool)
    check(aten.scaled_dot_product_attention.default, [q, k, v, mask], [In(0), In(1), In(2), In(3)])
    # rows the mask hides whole (a left-padded sequence's first queries): eager's safe softmax gives zeros there
    hidden = mask.clone()
    hidden[:2] = False
    check(aten.scaled_dot_product_attention.default, [q, k, v, hidden], [In(0), In(1), In(2), In(3)])
    additive = torch.zeros(5, 5, dtype=dtype).masked_fill(~hidden, float("-inf"))
    check(aten.scaled_dot_product_attention.default, [q, k, v, additive], [In(0), In(1), In(2), In(3)])


@pytest.mark.parametrize("groups,stride,padding,dilation", [(1, [1, 1], [0, 0], [1, 1]), (2, [2, 1], [1, 2],
                                                                                            [1, 2])])
def test_conv2d_and_1d(groups, stride, padding, dilation):
    g = torch.Generator().manual_seed(4)
    x, w, b = make((2, 4, 7, 8), torch.float32, gen=g), make((6, 4 // groups, 3, 3), torch.float32, gen=g), \
        make((6,), torch.float32, gen=g)
    check(aten.convolution.default, [x, w, b], [In(0), In(1), In(2), stride, padding, dilation, False, [0, 0],
                                                groups])
    x1, w1 = make((2, 4, 9), torch.float32, gen=g), make((6, 4, 3), torch.float32, gen=g)
    check(aten.convolution.default, [x1, w1], [In(0), In(1), None, [2], [1], [1], False, [0], 1])


def test_unlowered_op_falls_back_to_eager():
    x = make((3, 4), torch.float32)
    fn = check(aten.logcumsumexp.default, [x], [In(0), 1])
    assert "fallbacks[" in fn.source


SPECIAL = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 2.5, -2.5, 0.5, 1.5, -1e30])


@pytest.mark.parametrize("op", [aten.maximum.default, aten.minimum.default, aten.eq.Tensor, aten.lt.Tensor,
                                aten.remainder.Tensor, aten.atan2.default, aten.div.Tensor])
def test_special_values_binary(op):
    check(op, [SPECIAL, SPECIAL.flip(0)], [In(0), In(1)])


@pytest.mark.parametrize("name", ["round", "sign", "relu", "isnan", "sigmoid", "floor", "logical_not", "exp",
                                  "rsqrt", "tanh"])
def test_special_values_unary(name):
    check(getattr(aten, name).default, [SPECIAL], [In(0)])


def test_special_values_reduce():
    check(aten.amax.default, [SPECIAL.reshape(2, 5)], [In(0), [1]])
    check(aten.argmax.default, [SPECIAL.reshape(2, 5)], [In(0), 1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.float16])
def test_scalar_overloads(dtype):
    x = make((3, 4), dtype, low=0)
    check(aten.pow.Tensor_Scalar, [x], [In(0), 2])
    check(aten.pow.Tensor_Scalar, [x], [In(0), 0.5])
    for name in ["eq", "ne", "lt", "le", "gt", "ge"]:
        check(getattr(aten, name).Scalar, [x], [In(0), 1.5])
        check(getattr(aten, name).Scalar, [x], [In(0), 2])
    check(aten.div.Tensor_mode, [x], [In(0), 2], {"rounding_mode": "floor"})


@pytest.mark.parametrize("op,extra", [(aten.sum.dim_IntList, ([0], True)), (aten.amax.default, ([-1],)),
                                      (aten.argmax.default, (0,)), (aten.prod.dim_int, (0,))])
def test_reduction_of_0d(op, extra):
    check(op, [torch.tensor(2.5)], [In(0), *extra])

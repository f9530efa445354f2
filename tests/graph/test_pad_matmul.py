"""graph/pad_matmul.py: half-precision products with misaligned rows padded to an aligned width, same values."""
import pytest
import torch
import torch.nn.functional as F

from framejit.graph.pad_matmul import pad_misaligned_matmuls
from framejit.graph.passes import optimize

aten = torch.ops.aten
CUDA = torch.device("cuda")  # the pass reads only meta values: the graphs below run on the CPU


def _padded(fn, args, device=CUDA):
    gm = torch.fx.symbolic_trace(fn)
    optimize(gm, list(args))
    return gm, pad_misaligned_matmuls(gm, device)


@pytest.mark.parametrize("bias", [False, True])
def test_lm_head_product_is_padded_and_equal(bias):
    torch.manual_seed(0)
    x = torch.randn(1030, 64, dtype=torch.bfloat16)
    w = torch.randn(1027, 64, dtype=torch.bfloat16)
    b = torch.randn(1027, dtype=torch.bfloat16) if bias else None
    fn = (lambda x, w, b: F.linear(x, w, b)) if bias else (lambda x, w: F.linear(x, w))
    args = (x, w, b) if bias else (x, w)
    gm, count = _padded(fn, args)
    assert count == 1
    assert aten.constant_pad_nd.default in [n.target for n in gm.graph.nodes]
    got, want = gm(*args), fn(*args)
    assert got.shape == want.shape and got.stride() == want.stride() and got.dtype == want.dtype
    torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("case", ["aligned", "float32", "small", "cpu"])
def test_products_left_alone(case):
    dtype = torch.float32 if case == "float32" else torch.bfloat16
    n = 1032 if case == "aligned" else (100 if case == "small" else 1027)
    x, w = torch.randn(1030, 64, dtype=dtype), torch.randn(n, 64, dtype=dtype)
    _, count = _padded(lambda x, w: F.linear(x, w), (x, w), torch.device("cpu") if case == "cpu" else CUDA)
    assert count == 0


def test_a_misaligned_operand_the_graph_computes_is_made_in_padded_memory():
    # the backward of GPT-2's LM head: the logits' gradient g (8192, 50257) is read by mm(g, W) and mm(g.t(), x)
    from framejit.graph.pad_matmul import pad_misaligned_operands
    torch.manual_seed(0)
    g0 = torch.randn(1030, 1027, dtype=torch.bfloat16)
    w, x = torch.randn(1027, 64, dtype=torch.bfloat16), torch.randn(1030, 64, dtype=torch.bfloat16)

    def fn(g0, w, x):
        g = g0 * 2
        return g @ w, g.t() @ x, g.sum()

    gm = torch.fx.symbolic_trace(fn)
    optimize(gm, [g0, w, x])
    assert pad_misaligned_operands(gm, CUDA) == 1
    slices = [n for n in gm.graph.nodes if n.target is aten.slice.Tensor]
    assert len(slices) == 1 and slices[0].args[0].target is aten.cat.default  # g and zeros, in one kernel
    products = [n for n in gm.graph.nodes if n.target is aten.mm.default]
    assert len(products) == 2 and all(slices[0] in (p.args[0], *p.args[0].args) for p in products)
    for node in gm.graph.nodes:  # the padding's zeros are made on the CUDA device the pass was told: here, CPU
        if node.target is aten.full.default:
            node.kwargs = {**node.kwargs, "device": torch.device("cpu")}
    gm.recompile()
    for got, want in zip(gm(g0, w, x), fn(g0, w, x)):
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-1)
    assert pad_misaligned_operands(gm, torch.device("cpu")) == 0


def test_the_weight_gradient_reads_the_padded_buffer_and_writes_aligned_rows():
    # mm's backward for GPT-2's head gives the weight's gradient as x.t() @ g: (768, 50257), rows misaligned, its
    # operand g the padded gradient above; the product reads that buffer whole (no second pad) and is padded too
    from framejit.graph.pad_matmul import pad_misaligned_operands
    torch.manual_seed(0)
    g0 = torch.randn(1032, 1027, dtype=torch.bfloat16)
    w, x = torch.randn(1027, 64, dtype=torch.bfloat16), torch.randn(1032, 1024, dtype=torch.bfloat16)

    def fn(g0, w, x):
        g = g0 * 2
        return g @ w, x.t() @ g

    gm = torch.fx.symbolic_trace(fn)
    optimize(gm, [g0, w, x])
    assert pad_misaligned_operands(gm, CUDA) == 1
    assert pad_misaligned_matmuls(gm, CUDA) == 2  # g @ w padded in K, x.t() @ g in N
    targets = [n.target for n in gm.graph.nodes]
    assert targets.count(aten.cat.default) == 1
    pads = [n for n in gm.graph.nodes if n.target is aten.constant_pad_nd.default]
    assert [(p.args[0].name, p.args[1]) for p in pads] == [("w", [0, 0, 0, 5])]  # only the weight is copied
    inner = [n for n in gm.graph.nodes if n.target is aten.mm.default and n.args[1] is pads[0]]
    assert len(inner) == 1 and inner[0].args[0].target is aten.cat.default  # g read whole, K = 1032
    weight_grad = [n for n in gm.graph.nodes if n.target is aten.mm.default and
                   n.args[1].target is aten.cat.default]
    assert len(weight_grad) == 1 and tuple(weight_grad[0].meta["val"].shape) == (1024, 1032)
    for node in gm.graph.nodes:
        if node.target is aten.full.default:
            node.kwargs = {**node.kwargs, "device": torch.device("cpu")}
    gm.recompile()
    for got, want in zip(gm(g0, w, x), fn(g0, w, x)):
        assert got.shape == want.shape and got.stride() == want.stride()
        torch.testing.assert_close(got, want, rtol=2e-2, atol=5e-1)


def test_a_misaligned_inner_dimension_is_zero_padded_in_both_operands():
    torch.manual_seed(0)
    a, b = torch.randn(1030, 1027, dtype=torch.bfloat16), torch.randn(1027, 256, dtype=torch.bfloat16)
    fn = lambda a, b: a @ b  # noqa: E731
    gm, count = _padded(fn, (a, b))
    assert count == 1
    pads = sorted(tuple(n.args[1]) for n in gm.graph.nodes if n.target is aten.constant_pad_nd.default)
    assert pads == [(0, 0, 0, 5), (0, 5)]
    got, want = gm(a, b), fn(a, b)
    assert got.shape == want.shape and got.stride() == want.stride()
    torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-1)


@pytest.mark.parametrize("saved_only", [True, False])
def test_a_saved_product_stays_in_its_padded_rows(saved_only):
    """A training forward's saved value (graph/layout_free.py) is left as the slice of the padded product, which
    the forward's own readers and the backward read in place; any other output is copied into eager's layout."""
    from framejit.graph.layout_free import SAVED_ONLY
    torch.manual_seed(0)
    x, w = torch.randn(1030, 64, dtype=torch.bfloat16), torch.randn(1027, 64, dtype=torch.bfloat16)

    def fn(x, w):
        logits = F.linear(x, w)
        return logits.float().logsumexp(1), logits

    gm = torch.fx.symbolic_trace(fn)
    optimize(gm, [x, w])
    (product,) = [n for n in gm.graph.nodes if n.target is aten.mm.default]
    if saved_only:
        product.meta[SAVED_ONLY] = True
    assert pad_misaligned_matmuls(gm, CUDA) == 1
    clones = [n for n in gm.graph.nodes if n.target is aten.clone.default]
    assert len(clones) == (0 if saved_only else 1)
    got, want = gm(x, w), fn(x, w)
    assert got[1].stride() == ((1032, 1) if saved_only else want[1].stride())
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e, rtol=2e-2, atol=2e-2)


def test_a_viewed_product_keeps_eager_layout():
    from framejit.graph.layout_free import SAVED_ONLY
    x, w = torch.randn(1030, 64, dtype=torch.bfloat16), torch.randn(1027, 64, dtype=torch.bfloat16)
    gm = torch.fx.symbolic_trace(lambda x, w: F.linear(x, w).view(-1))
    optimize(gm, [x, w])
    for n in gm.graph.nodes:
        if n.target is aten.mm.default:
            n.meta[SAVED_ONLY] = True
    assert pad_misaligned_matmuls(gm, CUDA) == 1
    assert [n for n in gm.graph.nodes if n.target is aten.clone.default]  # a view needs eager's strides
    torch.testing.assert_close(gm(x, w), F.linear(x, w).view(-1))

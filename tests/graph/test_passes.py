"""Each cleanup pass alone on hand-built FX graphs, plus shape propagation and the core op set."""

import operator

import pytest
import torch
import torch.fx as fx

from framejit.graph import core_ops
from framejit.graph.const_fold import SIZE_LIMIT, fold_constants
from framejit.graph.cse import eliminate_common_subexpressions
from framejit.graph.dce import eliminate_dead_code
from framejit.graph.shape_prop import propagate
from framejit.graph.simplify import simplify

aten = torch.ops.aten


def _module(build, root=None):
    graph = fx.Graph()
    build(graph)
    return fx.GraphModule(root if root is not None else torch.nn.Module(), graph)


def _targets(gm):
    return [n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method")]


# ---- core op set -------------------------------------------------------------------------------------------
def test_core_groups_are_op_overloads():
    for name, ops in core_ops.GROUPS.items():
        assert ops, name
        assert all(isinstance(op, torch._ops.OpOverload) for op in ops), name
    assert core_ops.group_of(aten.add.Tensor) == "pointwise_binary"
    assert core_ops.is_core(aten.mm.default) and not core_ops.is_core(torch.add)


# ---- shape propagation -------------------------------------------------------------------------------------
def test_propagate_records_meta_for_every_node():
    fn = lambda x, n: (x.transpose(0, 1) * n, x.shape[0])
    gm = fx.symbolic_trace(fn)
    propagate(gm, [torch.randn(2, 3), 3])
    vals = {n.name: n.meta["val"] for n in gm.graph.nodes}
    assert vals["x"].device.type == "meta" and vals["n"] == 3
    assert vals["transpose"].shape == (3, 2) and vals["transpose"].stride() == (1, 3)
    assert vals["getitem"] == 2
    out = next(n for n in gm.graph.nodes if n.op == "output")
    assert out.meta["val"][0].shape == (3, 2)


# ---- DCE ---------------------------------------------------------------------------------------------------
def test_dce_removes_unused_pure_and_keeps_inplace():
    def build(g):
        x = g.placeholder("x")
        dead = g.call_function(aten.exp.default, (x,))
        g.call_function(aten.neg.default, (dead,))                       # dead chain: both go
        g.call_method("add_", (x, 1))                                    # in-place: stays
        g.call_function(torch.add, (x, 1), {"out": x})                   # out=: stays
        g.call_function(aten.bernoulli.default, (x,))                    # random: stays (generator state)
        g.output(x)
    gm = _module(build)
    assert eliminate_dead_code(gm)
    assert _targets(gm) == ["add_", torch.add, aten.bernoulli.default]
    assert not eliminate_dead_code(gm)


# ---- CSE ---------------------------------------------------------------------------------------------------
def test_cse_merges_pure_duplicates():
    def build(g):
        x = g.placeholder("x")
        a = g.call_function(aten.mul.Tensor, (x, 2))
        b = g.call_function(aten.mul.Tensor, (x, 2))
        c = g.call_function(aten.mul.Tensor, (x, 2.0))                  # 2.0 is not 2: kept apart
        g.output((g.call_function(aten.add.Tensor, (a, b)), c))
    gm = _module(build)
    assert eliminate_common_subexpressions(gm)
    assert len(_targets(gm)) == 3  # a, c and the add


def test_cse_keeps_results_returned_twice_apart():
    # eager returns two tensors: merged, a view of the second would be a view of the first (seed 333763)
    def build(g):
        x = g.placeholder("x")
        a = g.call_function(aten.mul.Tensor, (x, 2))
        b = g.call_function(aten.mul.Tensor, (x, 2))
        c = g.call_function(aten.mul.Tensor, (x, 2))                    # not returned: merged into a
        g.output((a, b, g.call_function(aten.neg.default, (c,))))
    gm = _module(build)
    assert eliminate_common_subexpressions(gm)
    assert _targets(gm).count(aten.mul.Tensor) == 2


@pytest.mark.parametrize("view", [("call_method", "detach"), ("call_function", aten.t.default),
                                  ("call_method", "float"), ("call_function", operator.getitem)])
def test_cse_keeps_results_returned_through_views_apart(view):
    # fuzz seed 480498: [a.masked_fill(m, .5).detach(), a.masked_fill(m, .5).detach()] came back sharing memory
    kind, target = view

    def build(g):
        x = g.placeholder("x")
        a = g.call_function(aten.mul.Tensor, (x, 2))
        b = g.call_function(aten.mul.Tensor, (x, 2))
        args = (0,) if target is operator.getitem else ()
        g.output((g.create_node(kind, target, (a, *args)), g.create_node(kind, target, (b, *args))))
    gm = _module(build)
    assert not eliminate_common_subexpressions(gm)
    assert _targets(gm).count(aten.mul.Tensor) == 2


def test_cse_keeps_random_and_respects_mutation():
    def build(g):
        x = g.placeholder("x")
        r1 = g.call_function(torch.rand_like, (x,))
        r2 = g.call_function(torch.rand_like, (x,))
        a = g.call_function(aten.add.Tensor, (x, 1))
        g.call_method("mul_", (x, 2))
        b = g.call_function(aten.add.Tensor, (x, 1))                    # x changed in between: not a duplicate
        g.output((r1, r2, a, b))
    gm = _module(build)
    assert not eliminate_common_subexpressions(gm)
    assert len(_targets(gm)) == 5


def test_cse_keeps_two_returned_results_apart_after_a_third_unreturned():
    # fuzz seed 442905: relu(x) used inside, then relu(x) returned twice; the first returned one merged into the
    # inner one, which then counted as not returned, so the second merged too: one tensor where eager has two
    def build(g):
        x = g.placeholder("x")
        inner = g.call_function(aten.relu.default, (x,))
        a = g.call_function(aten.relu.default, (x,))
        b = g.call_function(aten.relu.default, (x,))
        g.output((g.call_function(aten.neg.default, (inner,)), a, b))
    gm = _module(build)
    assert eliminate_common_subexpressions(gm)
    out = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    assert out[1] is not out[2] and _targets(gm).count(aten.relu.default) == 2


def test_cse_keeps_a_tensor_written_later_apart():
    # fuzz seed 434619: t2 and t3 the same sort, then t2.index_fill_: merged, the fill showed in t3 too
    def build(g):
        x = g.placeholder("x")
        t2 = g.call_function(aten.mul.Tensor, (x, 2))
        t3 = g.call_function(aten.mul.Tensor, (x, 2))
        view = g.call_function(aten.slice.Tensor, (t2, 0, 0, 1))
        g.call_function(aten.fill_.Scalar, (view, -1))                     # writes t2 through a view
        g.output((t2, g.call_function(aten.neg.default, (t3,))))
    gm = _module(build)
    propagate(gm, [torch.randn(3)])
    assert not eliminate_common_subexpressions(gm)
    assert _targets(gm).count(aten.mul.Tensor) == 2


# ---- constant folding --------------------------------------------------------------------------------------
def test_const_fold_small_constants_only():
    root = torch.nn.Module()
    root.register_buffer("small", torch.arange(4.0))
    root.register_buffer("big", torch.ones(SIZE_LIMIT + 1))
    root.weight = torch.nn.Parameter(torch.ones(3))

    def build(g):
        x = g.placeholder("x")
        s = g.call_function(aten.mul.Tensor, (g.get_attr("small"), 2))
        s = g.call_function(aten.exp.default, (s,))
        big = g.call_function(aten.mul.Tensor, (g.get_attr("big"), 2))
        w = g.call_function(aten.mul.Tensor, (g.get_attr("weight"), 2))
        full = g.call_function(aten.full.default, ([], 3.0), {"dtype": torch.float32})  # literal: stays
        g.output((g.call_function(aten.add.Tensor, (x, s)), big, w, full))
    gm = _module(build, root)
    x = torch.randn(4)
    expected = gm(x)
    assert fold_constants(gm)
    gm.recompile()
    assert _targets(gm) == [aten.mul.Tensor, aten.mul.Tensor, aten.full.default, aten.add.Tensor]
    for a, e in zip(gm(x), expected):
        torch.testing.assert_close(a, e)


def test_const_fold_keeps_random():
    def build(g):
        g.output(g.call_function(torch.rand, ([3],)))
    gm = _module(build)
    assert not fold_constants(gm)


# ---- algebraic simplification ------------------------------------------------------------------------------
def _simplified(fn, *inputs):
    gm = fx.symbolic_trace(fn)
    propagate(gm, inputs)
    simplify(gm)
    eliminate_dead_code(gm)
    gm.recompile()
    got, ref = gm(*inputs), fn(*inputs)
    torch.testing.assert_close(got, ref)
    if ref.dtype.is_floating_point:  # assert_close takes -0.0 for 0.0; 1 / x does not
        assert torch.equal(torch.signbit(got), torch.signbit(ref))
    return _targets(gm)


FIRES = [
    (lambda x: aten.mul.Tensor(x, 1), torch.randn(3)),
    (lambda x: aten.add.Tensor(x, 0), torch.arange(3)),
    (lambda x: aten.add.Tensor(x, -0.0), torch.tensor([-0.0, 0.0, 1.5])),   # -0.0 adds nothing to any float
    (lambda x: aten.sub.Tensor(x, 0), torch.arange(3)),
    (lambda x: aten.sub.Tensor(x, 0.0), torch.tensor([-0.0, 0.0, 1.5])),    # -0.0 - 0.0 is -0.0
    (lambda x: aten.div.Tensor(x, 1), torch.randn(3)),
    (lambda x: aten.pow.Tensor_Scalar(x, 1), torch.randn(3)),
    (lambda x: aten.neg.default(aten.neg.default(x)), torch.randn(3)),
    (lambda x: aten.view.default(x, [2, 3]), torch.randn(2, 3)),
    (lambda x: aten.expand.default(x, [2, 3]), torch.randn(2, 3)),
    (lambda x: aten.permute.default(x, [0, 1]), torch.randn(2, 3)),
    (lambda x: aten._to_copy.default(x, dtype=torch.float32), torch.randn(3)),
    (lambda x: aten.permute.default(aten.permute.default(x, [1, 2, 0]), [2, 0, 1]), torch.randn(2, 3, 4)),
]


@pytest.mark.parametrize("fn,x", FIRES)
def test_simplify_rule_fires(fn, x):
    assert _simplified(fn, x) == []


def test_simplify_composes_views_and_permutes():
    x = torch.randn(2, 3, 4)
    assert _simplified(lambda x: aten.view.default(aten.view.default(x, [6, 4]), [4, 6]), x) == [aten.view.default]
    assert _simplified(lambda x: aten.permute.default(aten.permute.default(x, [1, 0, 2]), [2, 0, 1]), x) == \
        [aten.permute.default]


DOES_NOT_FIRE = [
    (lambda x: aten.add.Tensor(x, 0.0), torch.arange(3)),                 # int + 0.0 is float
    (lambda x: aten.mul.Tensor(x, 1.0), torch.arange(3)),                 # int * 1.0 is float
    (lambda x: aten.div.Tensor(x, 1), torch.arange(3)),                   # int / 1 is float
    (lambda x: aten.mul.Tensor(x, True), torch.randn(3)),                 # a bool is not the number 1 here
    (lambda x: aten.add.Tensor(x, 0, alpha=2), torch.randn(3)),           # alpha makes it another op
    (lambda x: aten.expand.default(x, [2, 3]), torch.randn(1, 3)),        # a real broadcast
    (lambda x: aten._to_copy.default(x, dtype=torch.float64), torch.randn(3)),
    (lambda x: aten.mul.Tensor(x, torch.ones(2, 3)), torch.randn(3)),     # ones would broadcast x
    (lambda x: aten.add.Tensor(x, 0), torch.tensor([-0.0, 1.0])),         # -0.0 + 0 is +0.0 (1 / x flips sign)
    (lambda x: aten.add.Tensor(x, 0.0), torch.tensor([-0.0, 1.0])),
    (lambda x: aten.sub.Tensor(x, -0.0), torch.tensor([-0.0, 1.0])),      # x - (-0.0) is x + 0
]


@pytest.mark.parametrize("fn,x", DOES_NOT_FIRE)
def test_simplify_rule_does_not_fire(fn, x):
    assert _simplified(fn, x) != []


def test_dce_keeps_unknown_python_calls():
    def build(g):
        x = g.placeholder("x")
        g.call_function(print, (x,))                                     # may have effects: stays
        g.call_function(operator.add, (x, 1))                            # pure: goes
        g.call_function(operator.and_, (x, x))                           # `&`, not in-place: goes
        g.call_function(operator.iand, (x, x))                           # `&=`, in place: stays
        g.call_function(torch.Tensor.relu_, (x,))                        # in-place method: stays
        g.output(x)
    gm = _module(build)
    eliminate_dead_code(gm)
    assert _targets(gm) == [print, operator.iand, torch.Tensor.relu_]


@pytest.mark.parametrize("target, args, kwargs, random", [
    (torch.nn.functional.dropout, (0.1, False), {}, False),          # eval mode, positional
    (torch.nn.functional.dropout, (0.1,), {"training": False}, False),
    (torch.nn.functional.dropout, (0.1, True), {}, True),
    (torch.nn.functional.dropout, (0.0,), {}, True),                 # p = 0 in training still draws in torch
    (torch.ops.aten.native_dropout.default, (0.1, False), {}, False),
    (torch.ops.aten.native_dropout.default, (0.1, None), {}, True),  # train=None means training
    (torch.ops.aten.scaled_dot_product_attention.default, (None, None, None, 0.0), {}, False),
    (torch.ops.aten.scaled_dot_product_attention.default, (None, None), {}, False),  # default dropout_p
    (torch.ops.aten.scaled_dot_product_attention.default, (None, None, None), {"dropout_p": 0.1}, True),
    (torch.ops.aten.scaled_dot_product_attention.default, (None, None, None, 0.2), {}, True),
    # attention backwards replay the forward's philox seed and offset (tensors): no draw, so a CUDA graph may hold them
    (torch.ops.aten._scaled_dot_product_cudnn_attention_backward.default, (), {}, False),
    (torch.ops.aten._scaled_dot_product_efficient_attention_backward.default, (), {}, False),
    (torch.ops.aten._scaled_dot_product_efficient_attention.default, (None, None, None, True, 0.1), {}, True),
])
def test_is_random_reads_the_arguments_that_decide_a_draw(target, args, kwargs, random):
    from framejit.graph.effects import is_random
    g = fx.Graph()
    x = g.placeholder("x")
    node = g.call_function(target, (x,) + args, kwargs)
    assert is_random(node) is random

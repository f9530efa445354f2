"""graph/shape_prop.py: meta values for every node."""
import operator

import pytest
import torch
import torch.fx as fx

from framejit.graph.shape_prop import propagate


def test_device_moves_propagate_on_meta():
    # transformers' rotary embedding: `inv_freq.to(dtype=torch.float32, device=x.device)`; a meta tensor cannot move
    # to a real device, and a node left without a value sent the whole Llama graph to torch on the GPU
    def f(x):
        return (x.to(dtype=torch.float32, device=torch.device("cuda", 0)), x.cuda(), x.to("cuda:0", torch.float16),
                x.cpu())

    gm = torch.fx.symbolic_trace(f)
    propagate(gm, [torch.randn(3, 2, dtype=torch.float64)])
    vals = [n.meta.get("val") for n in gm.graph.nodes if n.op == "call_method"]
    assert [(v.shape, v.dtype) for v in vals] == [((3, 2), torch.float32), ((3, 2), torch.float64),
                                                  ((3, 2), torch.float16), ((3, 2), torch.float64)]


_LAYOUT_OPS = {
    "div_floor": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "div_trunc_method": lambda a, b: a.div(b, rounding_mode="trunc"),
    "floor_divide": torch.floor_divide,
    "copysign": torch.copysign,
    "xlogy": torch.xlogy,
    "aten_div_mode": lambda a, b: torch.ops.aten.div.Tensor_mode(a, b, rounding_mode="floor"),
    "floordiv_operator": operator.floordiv,
    "rfloordiv_method": lambda a, b: a.__rfloordiv__(b),
    "xlog1py": torch.special.xlog1py,
    "heaviside": torch.heaviside,
    "logaddexp": torch.logaddexp,
    "logaddexp2": torch.logaddexp2,
    "logical_and_method": lambda a, b: a.logical_and(b),
    "logical_or": torch.logical_or,
    "logical_xor": torch.logical_xor,
}


@pytest.mark.parametrize("name", sorted(_LAYOUT_OPS))
@pytest.mark.parametrize("transposed_first", [True, False])
def test_elementwise_results_are_laid_out_as_eagers(name, transposed_first):
    # fuzz seed 573898: these ops' meta kernels lay the result out by the second operand where eager's iterator
    # follows the first; a dropout reading the result then drew its mask in another memory order than eager's
    op = _LAYOUT_OPS[name]
    x, y = torch.randn(2, 3).t() + 3, torch.randn(2, 3, 2) + 3  # x read column-major, y row-major
    args = (x, y) if transposed_first else (y, x)
    gm = fx.symbolic_trace(lambda a, b: op(a, b))
    propagate(gm, list(args))
    (node,) = [n for n in gm.graph.nodes if n.op in ("call_function", "call_method")][-1:]
    assert node.meta["val"].stride() == op(*args).stride()


@pytest.mark.parametrize("name", sorted(_LAYOUT_OPS))
def test_a_zero_dim_first_operand_leaves_the_layout_to_the_other(name):
    # fuzz seed 829291's kind: with a 0-dim first operand the meta kernels lay out by their own rule, eager by
    # the other operand's (a transpose stays one)
    op = _LAYOUT_OPS[name]
    args = (torch.tensor(2.5), torch.randn(2, 3).t() + 3)
    gm = fx.symbolic_trace(lambda a, b: op(a, b))
    propagate(gm, list(args))
    (node,) = [n for n in gm.graph.nodes if n.op in ("call_function", "call_method")][-1:]
    assert node.meta["val"].stride() == op(*args).stride()


@pytest.mark.parametrize("transposed_first", [True, False])
def test_an_unreduced_binary_cross_entropy_is_laid_out_as_its_operands(transposed_first):
    # found by sweeping OpInfo samples (CPU against meta strides): the meta kernel returns it contiguous
    t, c = torch.rand(2, 3).t(), torch.rand(3, 2)
    args = (t, c) if transposed_first else (c, t)
    op = lambda a, b: torch.nn.functional.binary_cross_entropy(a, b, reduction="none")  # noqa: E731
    gm = fx.symbolic_trace(op)
    propagate(gm, list(args))
    (node,) = [n for n in gm.graph.nodes if n.op == "call_function"][-1:]
    assert node.meta["val"].stride() == op(*args).stride()

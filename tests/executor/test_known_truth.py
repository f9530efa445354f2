"""A uniform draw compared with a number outside [0, 1) has a known truth (jit/semantics/known_truth.py):
transformers' LayerDrop (`if torch.rand([]) < self.layerdrop: continue`, layerdrop 0 by default) no longer breaks
the graph, and the draw still happens, so the random stream is eager's."""
import pytest
import torch

import jit


def layer_loop(x, p):
    for _ in range(3):
        r = torch.rand([])
        if r < p:
            continue
        if 1.5 <= r:  # never: the number on the left
            x = x - 100
        x = x * 2 + torch.rand(1)
    return x


@pytest.mark.parametrize("p,breaks", [(0.0, 0), (1.0, 0), (-0.5, 0), (0.5, None)])
def test_layerdrop_branch(p, breaks, fresh_jit):
    exp = jit.explain(layer_loop, torch.ones(2), p)
    if breaks is not None:
        assert exp.graph_break_count == breaks, exp.break_reasons
    else:
        assert exp.graph_break_count > 0  # decided by the value drawn: eager's branch, taken for real
    for seed in (0, 1):
        torch.manual_seed(seed)
        want = layer_loop(torch.ones(2), p)
        after_eager = torch.rand(1)
        torch.manual_seed(seed)
        got = jit.compile(layer_loop)(torch.ones(2), p)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(torch.rand(1), after_eager)  # as many draws as eager made


def half_draw(x):
    if torch.rand([], dtype=torch.bfloat16) < 1.0:  # bf16 may round a draw up to 1.0: not decided
        return x + 1
    return x - 1


def several_values(x):
    if torch.rand(2) < 2.0:  # ambiguous truth: eager raises
        return x
    return x


def test_undecided_or_ambiguous_draws_run_as_eager(fresh_jit):
    assert jit.explain(half_draw, torch.ones(2)).graph_break_count > 0
    with pytest.raises(RuntimeError, match="ambiguous"):
        several_values(torch.ones(2))
    with pytest.raises(RuntimeError, match="ambiguous"):
        jit.compile(several_values)(torch.ones(2))

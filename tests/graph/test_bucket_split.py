"""graph/bucket_split.py on graphs the executor captures: segments fill buckets from the graph's end, running the
segments in order computes what the graph computes, and only tensors cross a cut."""
import operator

import pytest
import torch

import jit
from framejit.graph.bucket_split import Caps, Constant, split_at_buckets


class Stack(torch.nn.Module):
    """Three 16 KiB layers; the middle one's output is split into a tuple whose items are read further on."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(64, 64, bias=False) for _ in range(3))

    def forward(self, x):
        x = torch.relu(self.layers[0](x))
        a, b = self.layers[1](x).chunk(2, dim=-1)
        x = torch.cat([b, a], dim=-1) * 2
        return self.layers[2](x).sum(), x


def captured(model, x):
    graphs = []

    def keep(gm, example_inputs):
        graphs.append((gm, example_inputs))
        return gm
    jit.compile(model, backend=keep)(x)
    (gm, example_inputs), = graphs
    params = {id(p) for p in model.parameters()}
    param_bytes = {i: t.numel() * t.element_size() for i, t in enumerate(example_inputs) if id(t) in params}
    return gm, example_inputs, param_bytes


def run(split, inputs):
    slots = list(inputs)
    for segment in split.segments:
        slots.extend(segment.module(*[slots[i] for i in segment.reads]))
    return [r.value if isinstance(r, Constant) else slots[r] for r in split.result]


KIB16 = 16 * 1024


@pytest.mark.parametrize("cap, segments, last", [(1, 3, KIB16), (KIB16, 3, KIB16), (2 * KIB16, 2, 2 * KIB16),
                                                 (1 << 30, 1, 3 * KIB16)])
def test_segments_fill_buckets_from_the_end(fresh_jit, cap, segments, last):
    torch.manual_seed(0)
    model, x = Stack(), torch.randn(4, 64)
    gm, example_inputs, param_bytes = captured(model, x)
    assert len(param_bytes) == 3
    expected = gm(*example_inputs)
    split = split_at_buckets(gm, param_bytes, Caps(first=cap, rest=cap))
    assert len(split.segments) == segments
    # a bucket closes once its parameters reach the cap, from the end: 16 KiB per layer
    assert split.segments[-1].param_bytes == last
    for got, want in zip(run(split, example_inputs), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_only_tensors_cross_a_cut(fresh_jit):
    model, x = Stack(), torch.randn(4, 64)
    gm, example_inputs, param_bytes = captured(model, x)
    split = split_at_buckets(gm, param_bytes, Caps(first=1, rest=1))
    for segment in split.segments:
        for node in segment.module.graph.find_nodes(op="placeholder"):
            assert isinstance(node.meta["val"], torch.Tensor), node
        (out,) = segment.module.graph.find_nodes(op="output")
        assert all(isinstance(a.meta["val"], torch.Tensor) for a in out.args[0])
    chunk_users = [n for s in split.segments for n in s.module.graph.nodes
                   if n.target is operator.getitem]
    assert chunk_users, "the chunk's items are read in the segment that chunks"

"""Instances of dict subclasses from outside (transformers' ModelOutput: generate() hands the encoder's output back
to the model at every step): dict's own C methods on them are answered from the real object's items, each key read
guarded, without calling the class's Python __getitem__ (jit/semantics/dict_objects.py); writes to them break."""
import collections
import dataclasses

import pytest
import torch

import jit


@dataclasses.dataclass
class Output(collections.OrderedDict):
    """A minimal ModelOutput: items mirror the fields, a str key reads the items, an int the values in order."""
    hidden: torch.Tensor = None
    extra: torch.Tensor = None

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is not None:
                collections.OrderedDict.__setitem__(self, f.name, getattr(self, f.name))

    def __getitem__(self, k):
        if isinstance(k, str):
            return dict(self.items())[k]
        return tuple(self.values())[k]


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()


def _f(out):
    keys = list(out.keys())
    total = sum(v.sum() for v in out.values())
    return out[0] * 2, out["hidden"] + 1, keys, total, len(out), "extra" in out, dict(out.items())["hidden"] - 1


def test_reads_of_an_outside_dict_object_compile_and_match_eager():
    a = Output(hidden=torch.randn(2, 3))
    b = Output(hidden=torch.randn(2, 3), extra=torch.ones(1))
    compiled = jit.compile(_f, fullgraph=True)
    for out in (a, a, b, b):
        got, want = compiled(out), _f(out)
        assert got[2] == want[2] and got[4:6] == want[4:6]
        for g, w in zip(got[:2] + got[3:4] + got[6:], want[:2] + want[3:4] + want[6:]):
            torch.testing.assert_close(g, w)
    assert jit.counters["frames_compiled"] == 2  # one per set of keys


def test_a_key_written_in_place_by_the_caller_is_read_afresh():
    out = Output(hidden=torch.zeros(2))
    compiled = jit.compile(lambda o: o["hidden"] + 1)
    torch.testing.assert_close(compiled(out), torch.ones(2))
    collections.OrderedDict.__setitem__(out, "hidden", torch.full((2,), 5.0))
    torch.testing.assert_close(compiled(out), torch.full((2,), 6.0))


def test_writing_to_an_outside_dict_object_runs_eagerly():
    out = Output(hidden=torch.zeros(2))

    def g(o, x):
        collections.OrderedDict.__setitem__(o, "extra", x * 2)
        return o["hidden"] + x

    want_out = Output(hidden=torch.zeros(2))
    want = g(want_out, torch.ones(2))
    got = jit.compile(g)(out, torch.ones(2))
    torch.testing.assert_close(got, want)
    assert list(out.keys()) == list(want_out.keys())
    torch.testing.assert_close(out["extra"], want_out["extra"])

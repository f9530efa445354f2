"""jit.counters: a read-only Mapping with every documented counter present from the start."""
import pytest
import torch

import jit
from jit.counters import COUNTERS

DOCUMENTED = {"frames_compiled", "graphs", "graph_breaks", "recompiles", "cache_hits", "cache_misses",
              "frames_run_eagerly", "compile_errors", "cache_limit_hits"}


@pytest.fixture(autouse=True)
def clean(fresh_jit):
    yield


def test_every_documented_counter_is_present_at_zero():
    c = jit.counters
    assert DOCUMENTED <= set(c.keys())
    assert set(c) == set(COUNTERS) and len(c) == len(COUNTERS)
    assert all(v == 0 for v in dict(c).values())
    for name in DOCUMENTED:
        assert name in c and c[name] == 0 and getattr(c, name) == 0 and c.get(name) == 0
    assert dict(c.items()) == dict(c)


def test_mapping_protocol_tracks_compiles_and_hits():
    def f(x):
        return x * 2 + 1

    cf = jit.compile(f, backend="eager")
    x = torch.randn(3)
    for _ in range(3):
        assert torch.equal(cf(x), f(x))
    snapshot = dict(jit.counters)
    assert snapshot["frames_compiled"] == 1 and snapshot["graphs"] == 1
    assert snapshot["cache_hits"] == 2 and snapshot["recompiles"] == 0
    assert jit.counters.frames_compiled == 1 and jit.counters["cache_hits"] == 2
    assert list(jit.counters.keys()) == list(COUNTERS)
    cf(torch.randn(3, 2))
    assert jit.counters["recompiles"] == 1 and snapshot["recompiles"] == 0  # dict() is a snapshot


def test_unknown_names_and_writes_are_errors():
    c = jit.counters
    assert "no_such_counter" not in c and c.get("no_such_counter") is None and c.get("no_such_counter", 7) == 7
    with pytest.raises(KeyError):
        c["no_such_counter"]
    with pytest.raises(AttributeError, match="no counter 'no_such_counter'"):
        c.no_such_counter
    assert not hasattr(c, "frames_compiledd")
    with pytest.raises(AttributeError, match="read-only"):
        c.graphs = 3
    with pytest.raises(TypeError):
        c["graphs"] = 3
    with pytest.raises(KeyError, match="add it to COUNTERS"):
        c.bump("no_such_counter")


def test_clear_zeroes_every_counter_and_repr_lists_them():
    cf = jit.compile(lambda x: x + 1, backend="eager")
    cf(torch.ones(2))
    cf(torch.ones(2))
    assert jit.counters.frames_compiled == 1 and jit.counters.cache_hits == 1
    jit.counters.clear()
    assert set(jit.counters.values()) == {0}
    text = repr(jit.counters)
    assert text.startswith("jit.counters(") and all(f"{k}=0" in text for k in COUNTERS)

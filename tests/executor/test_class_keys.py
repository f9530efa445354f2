"""Dicts from outside keyed by classes and typing forms (huggingface_hub's validator table, looked up per config
field while a transformers model runs): looked up without reading the whole dict, the key guarded by identity."""
import typing
from typing import Union, get_origin

import pytest
import torch

import jit

TABLE = {Union: lambda v: v * 2, list: lambda v: v + 1, dict: lambda v: v - 1}


def by_origin(x, t):
    fn = TABLE.get(get_origin(t))
    if fn is not None:
        x = fn(x)
    if get_origin(t) in TABLE:
        x = x + 10
    return x * 3


@pytest.mark.parametrize("backend", ["eager", "inductor"])
def test_lookup_by_class_key_stays_in_one_graph(backend, fresh_jit):
    exp = jit.explain(by_origin, torch.ones(2), typing.Optional[int])
    assert exp.graph_break_count == 0, exp.break_reasons
    compiled = jit.compile(by_origin, backend=backend)
    for t in (typing.Optional[int], typing.List[int], typing.Dict[str, int], typing.Tuple[int], int,
              typing.Optional[int]):
        torch.testing.assert_close(compiled(torch.ones(2), t), by_origin(torch.ones(2), t), msg=str(t))


def test_a_changed_entry_under_a_class_key_is_seen(fresh_jit, monkeypatch):
    compiled = jit.compile(by_origin)
    torch.testing.assert_close(compiled(torch.ones(2), typing.List[int]), by_origin(torch.ones(2), typing.List[int]))
    monkeypatch.setitem(TABLE, list, lambda v: v + 100)
    torch.testing.assert_close(compiled(torch.ones(2), typing.List[int]), torch.full((2,), 333.0))
    monkeypatch.delitem(TABLE, list)
    torch.testing.assert_close(compiled(torch.ones(2), typing.List[int]), torch.full((2,), 3.0))

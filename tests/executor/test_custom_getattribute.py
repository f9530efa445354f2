"""Objects whose class defines __getattribute__ in Python (transformers' configs map attribute names): what the
trace read through `super().__getattribute__` / object's lookup is read the same way by guards and by the
generated code, never through the class's own __getattribute__ again (which, compiled itself, recursed without
end when copy.deepcopy asked a config for `__reduce_ex__`)."""
import copy

import pytest
import torch

import jit


class Config:
    attribute_map = {"hidden": "d_model"}

    def __init__(self, d_model):
        self.d_model = d_model

    def __getattribute__(self, key):
        if key != "attribute_map" and key in super().__getattribute__("attribute_map"):
            key = super().__getattribute__("attribute_map")[key]
        return super().__getattribute__(key)


class Layered(Config):
    def __getattribute__(self, key):
        return super().__getattribute__(key)


def deep_copied(x, cfg):
    c = copy.deepcopy(cfg)
    return x + c.d_model + c.hidden


def read_mapped(x, cfg):
    return x * cfg.hidden + cfg.d_model


@pytest.mark.parametrize("cls", [Config, Layered])
def test_deepcopy_of_an_object_with_its_own_getattribute(cls, fresh_jit):
    torch.testing.assert_close(jit.compile(deep_copied)(torch.ones(2), cls(3)), torch.full((2,), 7.0))


@pytest.mark.parametrize("cls", [Config, Layered])
def test_attributes_read_through_the_mapping_are_guarded(cls, fresh_jit):
    compiled = jit.compile(read_mapped)
    cfg = cls(2)
    torch.testing.assert_close(compiled(torch.ones(2), cfg), read_mapped(torch.ones(2), cfg))
    cfg.d_model = 5  # read through the mapping: the guard sees the change
    torch.testing.assert_close(compiled(torch.ones(2), cfg), read_mapped(torch.ones(2), cfg))

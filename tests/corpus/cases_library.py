"""Python that real libraries use (transformers, torchvision): zero-argument super() across graph breaks,
configuration objects with their own __getattribute__, and the like. Each case is reduced from a model that
broke or crashed under the compiler."""
import torch

from .case import CaseList, tensors

C = CaseList("library")
T1 = tensors((3, 4))


class _Base:
    def __init__(self, x, scale=1.0):
        self.x = x * scale


class _ResumesIntoSuper(_Base):
    """transformers' DynamicCache.__init__: a break, then super().__init__ in the resume function, where CPython
    3.11 takes the frame's first local as `self`."""

    def __init__(self, x):
        y = x + 1
        print("break")
        super().__init__(y, scale=2.0)


class _SuperFirst(_Base):
    def __init__(self, x):
        super().__init__(x, 3.0)  # the frame's first read of self is super()'s own


@C.add(T1, graphs=None)
def super_in_a_resume_function(x):
    return _ResumesIntoSuper(x).x * 3


@C.add(T1)
def super_as_first_read_of_self(x):
    return _SuperFirst(x).x + 1


class _Mixin:
    def __getattribute__(self, key):
        spec = super().__getattribute__("__dict__").get("_spec")  # object's own lookup, past the subclass's
        if spec is not None and key in spec:
            raise AttributeError(key)
        return super().__getattribute__(key)


class _Config(_Mixin):
    """transformers' PreTrainedConfig: attribute_map renames, read through a chain of __getattribute__."""
    attribute_map = {"n_embd": "hidden_size"}

    def __init__(self):
        self.hidden_size = 4
        self.scale = 0.5

    def __getattribute__(self, key):
        if key != "attribute_map" and key in super().__getattribute__("attribute_map"):
            key = super().__getattribute__("attribute_map")[key]
        return super().__getattribute__(key)


_CONFIG = _Config()


@C.add(T1)
def config_with_its_own_getattribute(x):
    return x[:, :_CONFIG.n_embd] * _CONFIG.scale + _CONFIG.hidden_size

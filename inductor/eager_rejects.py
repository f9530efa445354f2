"""Which calls eager torch rejects at any values (an op without a kernel for a dtype, integer pow with a negative
exponent, a division by the constant 0): lowering sends them to torch, which raises as eager does. Backend-neutral:
the answer is eager's, probed once per (op, dtypes, other arguments)."""
import functools

import torch

from framejit.graph.symbolic_sizes import SymInt


def eager_rejects(target, args: tuple, kwargs: dict) -> str | None:
    """Why eager torch raises for this call whatever the values (an op without a kernel for a dtype: bool
    matmul, half `floor_divide` on some builds; integer pow with a negative Python exponent; a division by the
    constant 0), or None. Meta kernels, which shape propagation runs, accept most of these, so the code generator
    would return a value where eager raises: a call eager rejects runs in torch instead, which raises as eager.

    Answered by running the op once on one-element tensors of the operands' dtypes and ranks (ones: no value
    trips a division), cached per (op, dtypes, other arguments)."""
    try:
        key = (target, _spec(args), _spec(kwargs))
        hash(key)
    except TypeError:
        return None
    return _probe(key)


def _spec(value):
    """Arguments with each tensor replaced by (dtype, rank): hashable, and all the probe needs. A dynamic size
    stands in as its hint: comparing the SymInt itself (the cache lookup does) would record a size condition."""
    if isinstance(value, SymInt):
        return _Number(int, value.hint)
    if isinstance(value, torch.Tensor):
        return _Tensor(value.dtype, value.dim())
    if isinstance(value, dict):
        return tuple(sorted((k, _spec(v)) for k, v in value.items()))
    if isinstance(value, (bool, int, float)):  # True == 1 as a key, but torch.sub(x, True) raises, x - 1 not
        return _Number(type(value), value)
    if isinstance(value, (list, tuple)):  # FX holds lists as immutable_list: rebuilt as plain lists
        return (list if isinstance(value, list) else tuple, tuple(_spec(v) for v in value))
    return value


class _Tensor(tuple):
    def __new__(cls, dtype, ndim):
        return super().__new__(cls, (dtype, ndim))


class _Number(tuple):
    def __new__(cls, kind, value):
        return super().__new__(cls, (kind, value))


def _build(spec):
    if isinstance(spec, _Tensor):
        return torch.ones((1,) * spec[1], dtype=spec[0])
    if isinstance(spec, _Number):
        return spec[1]
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0] in (list, tuple):
        return spec[0](_build(v) for v in spec[1])
    return spec


@functools.lru_cache(maxsize=4096)
def _probe(key) -> str | None:
    target, args, kwargs = key
    try:
        target(*_build(args), **{k: _build(v) for k, v in kwargs})
    except Exception as e:  # noqa: BLE001 - any error on ones of these dtypes is eager's, at run time too
        return f"eager raises {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None

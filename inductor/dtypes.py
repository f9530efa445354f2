"""The dtype rules of the generated code, in one place: how each torch dtype is held in NumPy (its storage form,
what arrays in and out of a kernel hold, and its compute form, what kernels do arithmetic in), which results
need rounding back to their dtype, and which (op, dtypes) eager itself rejects.

NumPy has no bfloat16, so a bf16 tensor travels as its raw int16 bits and is widened to float32 for arithmetic;
float16 is computed in float32 too, the way torch's CPU kernels compute half types (opmath). Eager rounds each
op's result to the half type before the next op reads it, so the code generator rounds there too (`EXACT_IN_DTYPE`
names the ops whose float32 result already is a number of the dtype). Reductions accumulate half types in float32
and round once at the end, as torch's CPU reductions do."""
import functools

import torch

from graph.symbolic_sizes import SymInt

# torch dtype -> numpy dtype name used for storage (arrays crossing the torch<->numpy boundary)
STORAGE = {
    torch.float64: "float64", torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "int16",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8",
    torch.bool: "bool",
}
# torch dtype -> numpy dtype name kernels compute in
COMPUTE = {**STORAGE, torch.float16: "float32", torch.bfloat16: "float32"}

# dtypes whose storage form differs from their compute form: loads widen them, stores narrow them
NARROW = (torch.float16, torch.bfloat16)

# ops whose result, computed in float32 from operands that are numbers of a narrow dtype, is itself a number of
# that dtype (a selection, a sign flip, an integer rounding): no rounding step after them
EXACT_IN_DTYPE = frozenset({"abs", "neg", "maximum", "minimum", "where", "relu", "sign", "floor", "ceil", "round",
                            "trunc", "cat", "full", "cast", "amax", "amin"})


# ops whose CPU kernels read a Python-number operand of a half-type op in float32 (mul, and division true, floor
# or trunc: `iter.original_scalar_value<opmath_t>`); every other op (add, sub, comparisons, remainder, pow) reads
# it converted to the half type first, so x == 0.1 is True at x = float16(0.1)
OPMATH_SCALAR_OPS = frozenset({"mul", "div", "floordiv", "truncdiv"})


def supported(dtype: torch.dtype) -> bool:
    return dtype in STORAGE


def storage(dtype: torch.dtype) -> str:
    return STORAGE[dtype]


def compute(dtype: torch.dtype) -> str:
    return COMPUTE[dtype]


def as_dtype(value, dtype: torch.dtype):
    """A Python number as eager stores it in a tensor of `dtype` (0.1 in float16 is 0.0999755859375)."""
    if dtype in NARROW and type(value) in (int, float):  # not a SymInt: converting it would record a guard
        return torch.tensor(float(value), dtype=dtype).item()
    return wrapped(value, dtype)


def wrapped(value, dtype: torch.dtype):
    """A Python int operand as an integer op of `dtype` sees it: torch casts a wrapped number to the op's dtype
    modulo 2**bits (int32 x < 2**40 compares with 0, uint8 x == 300 with 44), where NumPy 2 raises OverflowError."""
    if type(value) is not int or dtype.is_floating_point or dtype == torch.bool:
        return value
    bits = torch.iinfo(dtype).bits
    value %= 1 << bits
    return value - (1 << bits) if dtype.is_signed and value >= 1 << (bits - 1) else value


# ---- what eager rejects ----------------------------------------------------------------------------------------
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

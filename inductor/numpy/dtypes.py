"""The dtype rules of the generated code, in one place: how each torch dtype is held in NumPy (its storage form,
what arrays in and out of a kernel hold, and its compute form, what kernels do arithmetic in), which results
need rounding back to their dtype. Lowering asks `supported` which dtypes the backend holds.

NumPy has no bfloat16, so a bf16 tensor travels as its raw int16 bits and is widened to float32 for arithmetic;
float16 is computed in float32 too, the way torch's CPU kernels compute half types (opmath). Eager rounds each
op's result to the half type before the next op reads it, so the code generator rounds there too (`EXACT_IN_DTYPE`
names the ops whose float32 result already is a number of the dtype). Reductions accumulate half types in float32
and round once at the end, as torch's CPU reductions do."""
import torch

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

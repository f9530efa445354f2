"""How each torch dtype is held in NumPy: its storage form (what arrays in and out of a kernel hold) and its
compute form (what kernels do arithmetic in).

NumPy has no bfloat16, so a bf16 tensor travels as its raw int16 bits and is widened to float32 for arithmetic;
float16 is computed in float32 too, the way torch's CPU kernels and inductor compute half types."""
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


def supported(dtype: torch.dtype) -> bool:
    return dtype in STORAGE


def storage(dtype: torch.dtype) -> str:
    return STORAGE[dtype]


def compute(dtype: torch.dtype) -> str:
    return COMPUTE[dtype]

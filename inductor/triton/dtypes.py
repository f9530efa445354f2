"""The Triton backend's dtype rules: which torch dtypes have a Triton type (the backend's answer to lowering's
`supported`), the type each is computed in (float16 and bfloat16 in float32, as torch's CUDA kernels do), and
`Val`, a value inside a kernel with the dtype it stands for."""
import math
from dataclasses import dataclass

import torch

from framejit.graph.symbolic_sizes import SymInt

TL = {torch.float32: "tl.float32", torch.float64: "tl.float64", torch.float16: "tl.float16",
      torch.bfloat16: "tl.bfloat16", torch.int64: "tl.int64", torch.int32: "tl.int32", torch.int16: "tl.int16",
      torch.int8: "tl.int8", torch.uint8: "tl.uint8", torch.bool: "tl.int1"}
NARROW = (torch.float16, torch.bfloat16)


def compute(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in NARROW else dtype


def supported(dtype: torch.dtype) -> bool:
    return dtype in TL


@dataclass
class Val:
    """A value inside a kernel: Triton code, the torch dtype it stands for (held in that dtype's compute form),
    the tile axes it varies along; literal marks a Python number not yet given a Triton type."""
    code: str
    dtype: torch.dtype
    deps: frozenset
    literal: bool = False


def literal(value, dtype: torch.dtype) -> Val:
    cd = compute(dtype) if dtype is not None else None
    if isinstance(value, SymInt):  # a size used as a number (x * x.shape[1]): a kernel argument, then cast
        return Val(f"{value}" if cd is None else f"tl.full([1], {value}, tl.int64).to({TL[cd]})", dtype,
                   frozenset(), False)
    if cd == torch.bool:
        code = repr(bool(value))
    elif cd is not None and cd.is_floating_point:
        value = float(value)
        code = f'float("{value}")' if math.isinf(value) or math.isnan(value) else repr(value)
        if cd == torch.float64:
            return Val(f"tl.full([1], {code}, tl.float64)", dtype, frozenset(), False)
    elif cd is not None:
        code = repr(int(value))
    else:
        code = repr(value)
    return Val(code, dtype, frozenset(), True)


def rounded(scope, v: Val) -> Val:
    """A half value held in float32, rounded to its dtype (and back to float32)."""
    if v.literal or v.dtype not in (torch.float16, torch.bfloat16):
        return v
    return Val(scope.let(f"{v.code}.to({TL[v.dtype]}).to(tl.float32)"), v.dtype, v.deps)

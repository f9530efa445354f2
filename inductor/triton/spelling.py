"""Host-code spellings shared by the module writer (triton/host.py) and the layout probe (triton/probe.py), which
runs the very expression the module will: library calls (`extern_call`), torch fallbacks as aten calls
(`fallback_call`), and how logs and comments name a torch callable (`op_name`)."""
import math

import torch

from framejit.graph.symbolic_sizes import SymInt

from ..ir import ExternKernel, ExternKind, FallbackKernel, Load, Operand, View, ViewKind, unit
from ..views import torch_view


def _transposed_weight(e):
    """The 2-D buffer W where `e` is W.permute((1, 0)): an nn.Linear weight as a matmul operand."""
    if isinstance(e, View) and e.kind == ViewKind.PERMUTE and tuple(e.params[0]) == (1, 0) and \
            isinstance(e.arg, Load) and len(e.arg.shape) == 2:
        return e.arg.buf
    return None


def extern_call(k: ExternKernel, operand=torch_view, shortcuts: bool = True) -> str:
    """Host code of a library call; `operand` spells each operand (a view chain by default). Without
    `shortcuts` (FRAMEJIT_TRITON_HOST_SHORTCUTS=0), each op as the graph has it: addmm with a permuted weight,
    beta and alpha spelled."""
    p = k.params
    if shortcuts and k.kind in (ExternKind.MATMUL, ExternKind.ADDMM) and len(k.args[-2].shape) == 2:
        # x @ W.t() (+ bias) as torch.nn.functional.linear(x, W, bias): for a 2-D x, linear calls
        # at::addmm(bias, x, W.t()) (at::matmul(x, W.t()) without a bias) in C++, the same call with the same
        # operands, and the transposed view of W is made there instead of by one more Python-level torch call
        weight = _transposed_weight(k.args[-1])
        bias = k.args[0] if k.kind == ExternKind.ADDMM else None
        if weight is not None and (bias is None or isinstance(bias, Load) and tuple(bias.shape) ==
                                   (k.args[-1].shape[1],) and unit(p["beta"]) and unit(p["alpha"])):
            extra = "" if bias is None else f", {operand(bias)}"
            return f"torch.nn.functional.linear({operand(k.args[-2])}, {weight}{extra})"
    a = [operand(x) for x in k.args]
    if k.kind == ExternKind.MATMUL:
        return f"torch.matmul({a[0]}, {a[1]})"
    if k.kind == ExternKind.ADDMM:  # beta=1, alpha=1 are addmm's defaults; spelled, each costs a Scalar conversion
        scale = "" if shortcuts and unit(p["beta"]) and unit(p["alpha"]) else \
            f", beta={p['beta']!r}, alpha={p['alpha']!r}"
        return f"torch.addmm({a[0]}, {a[1]}, {a[2]}{scale})"
    if k.kind == ExternKind.ADDMM_INTO:  # residual.py: the product added into the first operand, in place
        return f"{a[0]}.addmm_({a[1]}, {a[2]})"
    if k.kind in (ExternKind.CUMSUM, ExternKind.CUMPROD):  # the operand cast to the result's dtype by torch
        return f"torch.{k.kind}({a[0]}, {p['dim'] or 0}, dtype={k.out.layout.dtype})"
    if k.kind == ExternKind.SDPA:
        mask = a[3] if p["has_mask"] else "None"
        return (f"torch.nn.functional.scaled_dot_product_attention({a[0]}, {a[1]}, {a[2]}, attn_mask={mask}, "
                f"is_causal={p['is_causal']!r}, scale={p['scale']!r})")
    if k.kind == ExternKind.CAUSAL_ATTENTION:
        return (f"runtime_attention.causal_attention({a[0]}, {a[1]}, {a[2]}, {a[3]}, scale_op={p['scale_op']!r}, "
                f"constant={p['constant']!r}, kind={p['kind']!r}, mask_first={p['mask_first']!r})")
    if k.kind == ExternKind.CONV:
        bias = a[2] if p["has_bias"] else "None"
        n = len(p["stride"])
        return (f"torch.convolution({a[0]}, {a[1]}, {bias}, {list(p['stride'])}, {list(p['padding'])}, "
                f"{list(p['dilation'])}, False, {[0] * n}, {p['groups']})")
    raise NotImplementedError(k.kind)



_NAMESPACES = (("torch", torch), ("torch.Tensor", torch.Tensor), ("torch.nn.functional", torch.nn.functional),
               ("torch.special", torch.special), ("torch.linalg", torch.linalg), ("torch.fft", torch.fft))


def spelled(target) -> str | None:
    """Python naming a torch callable from the generated module (which imports torch): `torch.ops.aten.pow.
    Tensor_Scalar`, `torch.view_as_complex`, `torch.Tensor.cumsum` (a method, called unbound); None if none does."""
    if isinstance(target, torch._ops.OpOverload):
        return f"torch.ops.{target}"
    name = getattr(target, "__name__", None)
    for prefix, namespace in _NAMESPACES if isinstance(name, str) else ():
        if getattr(namespace, name, None) is target:
            return f"{prefix}.{name}"
    return None


def op_name(target) -> str:
    """How logs and comments name a torch callable: `aten.pow.Tensor_Scalar`, `torch.cumsum`."""
    name = spelled(target)
    if name is not None:
        return name.removeprefix("torch.ops.")
    return getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)


class _NoSpelling(Exception):
    pass


def _code(v, operands: list) -> str:
    """A fallback's argument as Python source: operands by their host names, sizes by their names (`s0`), torch
    and Python constants as literals; _NoSpelling for anything else."""
    if isinstance(v, Operand):
        return operands[v.index]
    if isinstance(v, SymInt):
        return str(v)  # rendered by generate()'s NameRenderer: computed from the inputs per call
    if v is None or isinstance(v, (bool, int, str)):
        return repr(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else f'float("{v}")'
    if isinstance(v, (torch.dtype, torch.memory_format, torch.layout)):
        return str(v)  # torch.float32, torch.contiguous_format, torch.strided
    if isinstance(v, torch.device):
        return f"torch.device({str(v)!r})"
    if isinstance(v, (list, tuple)):
        items = [_code(x, operands) for x in v]
        if isinstance(v, list):
            return f"[{', '.join(items)}]"
        return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
    raise _NoSpelling(type(v).__name__)


def fallback_call(k: FallbackKernel, operands: list) -> str:
    """Host code running a torch fallback on its operands' host expressions: the op spelled out
    (`torch.ops.aten.cumsum.default(x, 1)`) where it and its arguments can be written as code, sizes by name (so
    a dynamic size is the call's own); otherwise a call through the `fallbacks` table (runtime/triton_graph.py), which
    holds the arguments as lowering saw them."""
    name = spelled(k.target)
    if name is not None:
        try:
            args = [_code(a, operands) for a in k.args] + [f"{n}={_code(v, operands)}" for n, v in k.kwargs.items()]
            return f"{name}({', '.join(args)})"
        except _NoSpelling:
            pass
    return f"fallbacks[{k.out.name!r}]({', '.join(operands)})"


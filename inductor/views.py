"""View chains (ir.View over a buffer) as torch sees them, one table keyed by ViewKind: how host code spells each
kind as a torch view call, and the same call on a tensor (runtime/torch_views.py's, which the NumPy wrapper applies
too). The host code of a chain (`torch_view`), and the chain applied to a meta tensor (`meta_view`), which says
whether torch takes the view without a copy and at which strides and offset it ends."""
from dataclasses import dataclass
from typing import Callable

import torch

from .ir import Const, Load, View, ViewKind, view_base
from .runtime.torch_views import TORCH_VIEW_CALLS


def _bound(b) -> str:
    return "" if b is None else repr(b)


@dataclass(frozen=True)
class TorchView:
    spell: Callable[[str, tuple], str]                       # (operand's code, params) -> host code
    apply: Callable[[torch.Tensor, tuple], torch.Tensor]     # (tensor, params) -> the view, raising where it copies


_SPELL = {
    ViewKind.IDENTITY: lambda a, p: a,
    ViewKind.RESHAPE: lambda a, p: f"{a}.reshape({tuple(p[0])!r})",
    ViewKind.PERMUTE: lambda a, p: f"{a}.permute({tuple(p[0])!r})",
    ViewKind.EXPAND: lambda a, p: f"{a}.expand({tuple(p[0])!r})",
    ViewKind.UNSQUEEZE: lambda a, p: f"{a}.unsqueeze({p[0]})",
    ViewKind.SELECT: lambda a, p: f"{a}.select({p[0]}, {p[1]})",
    ViewKind.SLICE: lambda a, p: f"{a}[{':, ' * p[0]}{_bound(p[1])}:{_bound(p[2])}:{p[3]}]",
}
TORCH_VIEWS = {kind: TorchView(spell, TORCH_VIEW_CALLS[kind]) for kind, spell in _SPELL.items()}


def torch_view(e) -> str:
    """Host code for a view chain over a buffer (torch views: no copy)."""
    if isinstance(e, Load):
        return e.buf
    if isinstance(e, Const):
        return repr(e.value)
    if not isinstance(e, View):
        raise NotImplementedError(f"arithmetic in an extern operand: {type(e).__name__}")
    return TORCH_VIEWS[e.kind].spell(torch_view(e.arg), e.params)


def meta_view(e, layouts: dict):
    """The view chain `e` applied to a meta tensor laid out as the buffer it views, raising where torch would
    have to copy."""
    lay = layouts[view_base(e).buf]
    return _applied(e, torch.empty_strided(lay.shape, lay.strides, dtype=lay.dtype, device="meta"))


def _applied(e, base):
    if isinstance(e, Load):
        return base
    return TORCH_VIEWS[e.kind].apply(_applied(e.arg, base), e.params)

"""View chains (ir.View over a buffer) as torch sees them: the host code spelling one as torch view calls, and
the chain applied to a meta tensor, which says whether torch can take the view without a copy and what strides
and offset it ends at."""
import torch

from .ir import Const, Load, View, view_base


def torch_view(e) -> str:
    """Host code for a view chain over a buffer (torch views: no copy)."""
    if isinstance(e, Load):
        return e.buf
    if isinstance(e, Const):
        return repr(e.value)
    if not isinstance(e, View):
        raise NotImplementedError(f"arithmetic in an extern operand: {type(e).__name__}")
    a, p = torch_view(e.arg), e.params
    if e.kind == "identity":
        return a
    if e.kind == "reshape":
        return f"{a}.reshape({tuple(p[0])!r})"
    if e.kind == "permute":
        return f"{a}.permute({tuple(p[0])!r})"
    if e.kind == "expand":
        return f"{a}.expand({tuple(p[0])!r})"
    if e.kind == "unsqueeze":
        return f"{a}.unsqueeze({p[0]})"
    if e.kind == "select":
        return f"{a}.select({p[0]}, {p[1]})"
    if e.kind == "slice":
        dim, start, end, step = p
        bound = lambda b: "" if b is None else repr(b)
        return f"{a}[{':, ' * dim}{bound(start)}:{bound(end)}:{step}]"
    raise NotImplementedError(e.kind)


def meta_view(e, layouts: dict):
    """The view chain `e` applied to a meta tensor laid out as the buffer it views (`_meta_view`)."""
    lay = layouts[view_base(e).buf]
    return _meta_view(e, torch.empty_strided(lay.shape, lay.strides, dtype=lay.dtype, device="meta"))


def _meta_view(e, base):
    """The view chain `e` applied to a meta tensor, raising where torch would have to copy."""
    if isinstance(e, Load):
        return base
    a, p = _meta_view(e.arg, base), e.params
    if e.kind == "identity":
        return a
    if e.kind == "reshape":
        return a.view(tuple(p[0]))
    if e.kind == "permute":
        return a.permute(tuple(p[0]))
    if e.kind == "expand":
        return a.expand(tuple(p[0]))
    if e.kind == "unsqueeze":
        return a.unsqueeze(p[0])
    if e.kind == "select":
        return a.select(p[0], p[1])
    if e.kind == "slice":
        dim, start, end, step = p
        return a[(slice(None),) * dim + (slice(start, end, step),)]
    raise NotImplementedError(e.kind)

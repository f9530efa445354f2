"""What each ViewKind (ir.py) means on a torch tensor: the view call, without a copy. The compile side spells the
same calls as host code (views.py, which takes its calls from here); the NumPy wrapper applies them to an output
tensor to rebuild another output eager returns as its view (numpy_graph.py's alias_plan)."""
import torch

from ..ir import ViewKind

TORCH_VIEW_CALLS = {
    ViewKind.IDENTITY: lambda t, p: t,
    ViewKind.RESHAPE: lambda t, p: t.view(tuple(p[0])),  # view, not reshape: it raises where a copy would be needed
    ViewKind.PERMUTE: lambda t, p: t.permute(tuple(p[0])),
    ViewKind.EXPAND: lambda t, p: t.expand(tuple(p[0])),
    ViewKind.UNSQUEEZE: lambda t, p: t.unsqueeze(p[0]),
    ViewKind.SELECT: lambda t, p: t.select(p[0], p[1]),
    ViewKind.SLICE: lambda t, p: t[(slice(None),) * p[0] + (slice(p[1], p[2], p[3]),)],
}


def apply_views(t: torch.Tensor, views: tuple) -> torch.Tensor:
    """`views`, ((kind, params), ...) innermost first, applied to `t`; raises where torch would have to copy."""
    for kind, params in views:
        t = TORCH_VIEW_CALLS[kind](t, params)
    return t

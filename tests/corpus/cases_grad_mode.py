"""Grad-mode context managers and autograd-visible results: the graph must record where grad is off."""
import torch

from .case import CaseList, tensors, values, randn

C = CaseList("grad_mode")
T1 = tensors((3, 4))
TG = values(lambda: randn(3, 4, requires_grad=True))


@C.add(TG)
def no_grad_block(x):
    with torch.no_grad():
        y = x * 2
    return y, y.requires_grad


@C.add(TG)
def no_grad_then_grad(x):
    with torch.no_grad():
        scale = x.abs().max()
    return x * scale


@C.add(TG)
def enable_grad_inside_no_grad(x):
    with torch.no_grad():
        a = x + 1
        with torch.enable_grad():
            b = x * 2
    return a, b, a.requires_grad, b.requires_grad


@C.add(TG)
def set_grad_enabled_false(x):
    with torch.set_grad_enabled(False):
        y = x.sin()
    return y, torch.is_grad_enabled()


@C.add(TG)
def is_grad_enabled_query(x):
    with torch.no_grad():
        inside = torch.is_grad_enabled()
    return x * 2, inside, torch.is_grad_enabled()


@C.add(TG)
def inference_mode_block(x):
    with torch.inference_mode():
        y = x * 3
    return y.clone()


@C.add(TG)
def detach_in_grad(x):
    return x.detach().requires_grad, (x * 2).requires_grad, x.detach() + x


@C.add(TG)
def requires_grad_result(x):
    y = (x * x).sum()
    return y, y.requires_grad, y.grad_fn is not None


@C.add(TG)
def no_grad_decorated_helper(x):
    @torch.no_grad()
    def stat(t):
        return t.mean()

    return x - stat(x)


@C.add(T1)
def no_grad_inplace_update(x):
    # The optimizer-step pattern: an in-place write under no_grad on a leaf-like tensor.
    w = x.clone().requires_grad_()
    with torch.no_grad():
        w.mul_(0.5)
    return w * 1


@C.add(TG)
def grad_mode_return_in_with(x):
    with torch.no_grad():
        return x + 1


@C.add(TG)
def nested_no_grad_exit_restores(x):
    with torch.no_grad():
        with torch.no_grad():
            a = x * 2
        b = x * 3
    c = x * 4
    return a.requires_grad, b.requires_grad, c.requires_grad, a + b + c


@C.add(TG)
def autocast_cpu_bf16(x):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = x @ x.t()
    return y.float(), y.dtype

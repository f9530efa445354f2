"""One training step of the training benchmark's model, eager vs compiled: the loss and every parameter's gradient,
each compared with eager's as a relative error (|g - eager| / |eager|, Frobenius norms). torch.compile's errors are
printed beside ours as the yardstick of what the precision allows (bf16 autocast on CUDA). The worst parameters are
listed first: a gradient ours gets wrong stands out against torch.compile's column.

    python benchmarks/grad_diff.py --device cuda [--model hf-gpt2] [--no-autocast]
    python benchmarks/grad_diff.py --triton          # CPU, the Triton backend in Triton's interpreter, small sizes
"""
from __future__ import annotations

import contextlib
import copy
import os
import sys

if "--triton" in sys.argv:
    os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jit  # noqa: E402
from benchmarks import training  # noqa: E402


def grads(model, fn, idx, targets, autocast, steps=4):
    """The first step's gradients, and the losses of `steps` AdamW steps (a compiled region that kept a stale
    parameter shows as losses drifting from eager's after the first)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for i in range(steps):
        torch.manual_seed(i)
        with autocast:
            loss = fn(model, idx, targets)
        loss.backward()
        losses.append(float(loss.detach()))
        if i == 0:
            first = {n: p.grad.detach().float().clone() for n, p in model.named_parameters() if p.grad is not None}
        opt.step()
        opt.zero_grad(set_to_none=True)
    return losses, first


def rel(a, b):
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def main():
    sys.argv = [a for a in sys.argv if a != "--triton"] + (["--device", "cpu"] if "TRITON_INTERPRET" in os.environ
                                                            else [])
    a = training.parse()
    base = training.build_model(a).to(a.device).train()
    g = torch.Generator().manual_seed(0)
    idx, targets = (torch.randint(0, a.vocab, (a.batch, a.seq), generator=g).to(a.device) for _ in range(2))
    autocast = torch.autocast(a.device, dtype=torch.bfloat16,
                              enabled=not a.no_autocast and (a.device == "cuda" or "CPU_AUTOCAST" in os.environ))
    backend = "inductor"
    if os.environ.get("TRITON_INTERPRET"):
        from framejit.inductor.backends import triton_backend as backend
    variants = {"eager": training.loss_fn, "framejit": jit.compile(training.loss_fn, backend=backend)}
    if a.device == "cuda" and not a.no_torch_compile:
        variants["torch.compile"] = torch.compile(training.loss_fn)
    got = {k: grads(copy.deepcopy(base), f, idx, targets, autocast) for k, f in variants.items()}
    if autocast._enabled:  # the yardstick: eager in float32
        got["fp32"] = grads(copy.deepcopy(base), training.loss_fn, idx, targets, contextlib.nullcontext())
    for k, v in got.items():
        print(f"losses, {k}: " + " ".join(f"{x:.6f}" for x in v[0]))
    want, ours = got["eager"][1], got["framejit"][1]
    print("gradients present in one and not the other:", sorted(set(want) ^ set(ours)) or "none")
    ref = "fp32" if "fp32" in got else "eager"
    cols = [k for k in got if k != ref]
    print(f"\nrelative error of each parameter's gradient from {ref}'s, worst of ours first; last column: ours "
          f"from eager's\n\n| parameter | shape | " + " | ".join(cols) + " | framejit / eager |\n|"
          + " --- |" * (3 + len(cols)))
    rows = sorted(((rel(ours[n], got[ref][1][n]), n) for n in want if n in ours), reverse=True)
    off = [n for err, n in rows if err > 10 * rel(want[n], got[ref][1][n]) + 1e-6]
    print(f"{len(off)} of {len(rows)} gradients are off by more than 10x eager's error: {' '.join(sorted(off))}")
    for _, n in rows[:12]:
        errs = " | ".join(f"{rel(got[k][1][n], got[ref][1][n]):.2e}" for k in cols)
        print(f"| {n} | {tuple(want[n].shape)} | {errs} | {rel(ours[n], want[n]):.2e} |")

if __name__ == "__main__":
    main()

"""Losses and log-space reductions on the GPU, now decomposed into core ops (graph/decompositions_losses.py):
framejit's Triton backend against eager and torch.compile, inference and one training step.

  python benchmarks/gpu_losses.py [--dtypes float32,bfloat16]

Workloads (GPT-2's vocabulary, 8 x 1024 tokens), median time per call (triton.testing.do_bench: CUDA events):
  * lm-loss: F.cross_entropy(h @ W.t(), targets) with some targets ignore_index: the LM head's product, then one
    pass over the logits (max, sum of exponentials and the target's logit in one row kernel) where eager runs
    log_softmax and nll_loss as two kernels over the logits.
  * lm-loss-smoothing: the same with label_smoothing=0.1.
  * logsumexp: torch.logsumexp over the vocabulary of logits from a product.
  * lm-loss-train: forward and backward of lm-loss (the backward's softmax minus one-hot comes from autograd over
    core ops; before, nll_loss_backward and _log_softmax_backward_data ran in torch).
Prints a markdown table per dtype; writes gpu-losses-<dtype>-<device>.md and .json to benchmarks/out
(benchmarks/results with --update-results)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("FRAMEJIT_CACHE_DIR", tempfile.mkdtemp(prefix="gpu-losses-"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import triton.testing  # noqa: E402

import jit  # noqa: E402
from benchmarks.harness import Result, Suite, environment, markdown, save  # noqa: E402
from framejit.inductor.triton import backend as triton_stats  # noqa: E402

VOCAB, WIDTH, TOKENS = 50257, 768, 8 * 1024


def _ms(fn) -> float:
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def lm_loss(h, w, t):
    return F.cross_entropy(h @ w.t(), t)


def lm_loss_smoothing(h, w, t):
    return F.cross_entropy(h @ w.t(), t, label_smoothing=0.1)


def logsumexp(h, w, t):
    return torch.logsumexp(h @ w.t(), -1)


def _step(fn, h, w, t):
    def run():
        w.grad = None
        fn(h, w, t).backward()
    return run


def run(dtype: torch.dtype) -> tuple[Suite, list[Result]]:
    torch.manual_seed(0)
    suite, results = Suite(f"gpu-losses-{str(dtype).replace('torch.', '')}"), []
    h = torch.randn(TOKENS, WIDTH, device="cuda", dtype=dtype)
    w = (torch.randn(VOCAB, WIDTH, device="cuda") * 0.02).to(dtype)
    t = torch.randint(0, VOCAB, (TOKENS,), device="cuda")
    t[::7] = -100
    variants = []
    for name, fn in [("lm-loss", lm_loss), ("lm-loss-smoothing", lm_loss_smoothing), ("logsumexp", logsumexp)]:
        ours, theirs = jit.compile(fn, backend="triton"), torch.compile(fn)
        variants += [(f"{name}: eager", lambda fn=fn: fn(h, w, t)),
                     (f"{name}: framejit", lambda ours=ours: ours(h, w, t)),
                     (f"{name}: torch.compile", lambda theirs=theirs: theirs(h, w, t))]
    wg = w.detach().clone().requires_grad_()
    variants += [("lm-loss-train: eager", _step(lm_loss, h, wg, t)),
                 ("lm-loss-train: framejit", _step(jit.compile(lm_loss, backend="triton"), h, wg, t)),
                 ("lm-loss-train: torch.compile", _step(torch.compile(lm_loss), h, wg, t))]
    for name, fn in variants:
        with torch.enable_grad() if "train" in name else torch.no_grad():
            fn()  # compiled here, outside the timing
            suite.add(name, fn)
            results.append(Result(name, _ms(fn) * 1e6, 0.0, ""))
    return suite, results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    print(environment())
    for name in args.dtypes.split(","):
        suite, results = run(getattr(torch, name))
        table = markdown(suite, results)
        print(f"## {name}\n{table}")
        print("torch fallbacks compiled:", triton_stats.stats["fallback_ops"])
        save(suite, results, table, torch.cuda.get_device_name().split()[-1].lower())


if __name__ == "__main__":
    main()

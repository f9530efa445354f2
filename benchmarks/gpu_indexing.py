"""Issue 20's indexing and pooling ops on the GPU: eager torch vs framejit's Triton backend, each graph checked
against eager first. Graphs (bf16 where a language model would be):
  * embedding + position add + layer norm (GPT's input block, forward);
  * embedding_dense_backward of a GPT-2-sized table (the scatter-add every training step runs);
  * gather of the label column of a log-softmax (cross entropy's pick);
  * a ResNet stem pool (relu -> max_pool2d 3x3/2 pad 1) and the global average pool.
Synchronized per call (GPU time, not launch time). Usage: python benchmarks/gpu_indexing.py (needs CUDA)."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.harness import Suite, environment, markdown, save  # noqa: E402
from framejit.inductor.backends import triton_backend  # noqa: E402


def graphs(dev: str) -> dict:
    bf = torch.bfloat16
    idx = torch.randint(0, 50257, (8, 1024), device=dev)
    wte, wpe = torch.randn(50257, 768, device=dev, dtype=bf), torch.randn(1024, 768, device=dev, dtype=bf)
    ln_w, ln_b = torch.ones(768, device=dev, dtype=bf), torch.zeros(768, device=dev, dtype=bf)
    grad = torch.randn(8, 1024, 768, device=dev, dtype=bf)
    logits, labels = torch.randn(8192, 1000, device=dev), torch.randint(0, 1000, (8192, 1), device=dev)
    image = torch.randn(32, 64, 112, 112, device=dev, dtype=bf)
    feats = torch.randn(32, 2048, 7, 7, device=dev, dtype=bf)
    return {
        "embedding + pos + layer_norm": (lambda i, w, p, a, b: F.layer_norm(F.embedding(i, w) + p, (768,), a, b),
                                         [idx, wte, wpe, ln_w, ln_b]),
        "embedding_dense_backward": (lambda g, i: torch.ops.aten.embedding_dense_backward.default(
            g, i, 50257, -1, False), [grad, idx]),
        "log_softmax gather": (lambda x, y: torch.gather(x.log_softmax(-1), 1, y), [logits, labels]),
        "relu + max_pool2d 3/2/1": (lambda x: F.max_pool2d(F.relu(x), 3, 2, 1), [image]),
        "global avg pool": (lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1), [feats]),
    }


def main() -> None:
    rows = []
    for name, (fn, inputs) in graphs("cuda").items():
        compiled = triton_backend(torch.fx.symbolic_trace(fn), inputs)
        torch.testing.assert_close(compiled(*inputs).float(), fn(*inputs).float(), rtol=2e-2, atol=5e-2)
        suite = Suite(f"indexing-{name}")

        def synced(f):
            def call():
                f(*inputs)
                torch.cuda.synchronize()
            return call
        suite.add("eager", synced(fn))
        suite.add("framejit triton", synced(compiled))
        results = suite.run(calls_per_round=20, rounds=9, warmup=5)
        table = markdown(suite, results)
        print(f"## {name}\n{table}\n")
        rows.append(table)
        save(suite, results, table, torch.cuda.get_device_name().split()[-1].lower())
    print(environment())


if __name__ == "__main__":
    main()

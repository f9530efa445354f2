"""What one op the Triton backend cannot generate costs, on the GPU (inductor/triton/fallback.py).

  python benchmarks/gpu_fallback.py [--dtypes float32,bfloat16]

Two workloads, median time per call (triton.testing.do_bench: CUDA events), speed-up over eager:
  * rotary: a transformer block with LLaMA-style rotary embeddings as complex numbers (benchmarks/models/
    rotary.py). No Triton type for complex64: before per-kernel fallback the whole graph ran as captured (eager's
    speed); now only the complex ops run in torch. torch.compile for reference.
  * gpt2-block: GPT-2 small's block, all generated, against the same with the MLP's erf sent to torch through
    FRAMEJIT_TRITON_FALLBACK (the price of one op in the middle of a fused epilogue).
Prints a markdown table; writes gpu-fallback-<device>.md and .json to benchmarks/out
(benchmarks/results with --update-results)."""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("FRAMEJIT_CACHE_DIR", tempfile.mkdtemp(prefix="gpu-fallback-"))

import torch  # noqa: E402
import triton.testing  # noqa: E402

import jit  # noqa: E402
from benchmarks.harness import Result, Suite, environment, markdown, save  # noqa: E402
from benchmarks.models.gpt import Block, gpt2_block_config  # noqa: E402
from benchmarks.models.rotary import RotaryBlock, rotary_freqs  # noqa: E402
from framejit.inductor.triton import backend as triton_stats  # noqa: E402


def _ms(fn) -> float:
    return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")


def _compiled(model, args: tuple, env: str | None = None):
    """A call of jit.compile(model, backend="triton") on args, compiled now with FRAMEJIT_TRITON_FALLBACK=env
    (read when the graph is compiled, i.e. at the first call)."""
    old = os.environ.pop("FRAMEJIT_TRITON_FALLBACK", None)
    if env:
        os.environ["FRAMEJIT_TRITON_FALLBACK"] = env
    try:
        fn = jit.compile(model, backend="triton")
        with torch.no_grad():
            fn(*args)
    finally:
        os.environ.pop("FRAMEJIT_TRITON_FALLBACK", None)
        if old is not None:
            os.environ["FRAMEJIT_TRITON_FALLBACK"] = old
    return lambda: fn(*args)


def run(dtype: torch.dtype) -> tuple[Suite, list[Result]]:
    torch.manual_seed(0)
    suite, results = Suite(f"gpu-fallback-{str(dtype).replace('torch.', '')}"), []
    rotary = RotaryBlock(n_head=12, head_dim=64).cuda().to(dtype).eval()
    x, freqs = torch.randn(8, 1024, 768, device="cuda", dtype=dtype), rotary_freqs(1024, 64, device="cuda")
    block = Block(gpt2_block_config()).cuda().to(dtype).eval()
    h = torch.randn(8, 1024, 768, device="cuda", dtype=dtype)
    compiled_rotary = torch.compile(rotary)
    variants = [
        ("rotary: eager (the whole graph ran in torch before)", lambda: rotary(x, freqs)),
        ("rotary: framejit, complex ops in torch", _compiled(rotary, (x, freqs))),
        ("rotary: torch.compile", lambda: compiled_rotary(x, freqs)),
        ("gpt2-block: eager", lambda: block(h)),
        ("gpt2-block: framejit, all generated", _compiled(block, (h,))),
        # another instance: the same one would reuse the entry compiled above (guards on its parameters pass)
        ("gpt2-block: framejit, erf in torch", _compiled(copy.deepcopy(block), (h,), "aten.erf")),
    ]
    with torch.no_grad():
        for name, fn in variants:
            fn()  # torch.compile compiles here, outside the timing
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

"""Where a compiled Hugging Face forward spends its GPU time, next to eager's (a CUDA-time profile per variant).

    python benchmarks/hf_profile.py gpt2,bert,llama
        # realistic sizes (benchmarks/hf_models.py), bf16, eval under no_grad; ms per forward over 10 calls, the top
        # kernels of one profiled forward; the generated code and the backend's log go to $OUT (or /tmp)
        # as NAME_code.txt and NAME_inductor.txt, and the log's tail is printed (why a graph ran in torch).
How the BERT mask and GPT-2 LM-head findings in NOTES.md were made."""
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import jit  # noqa: E402
from benchmarks.hf_models import WORKLOADS  # noqa: E402


def _log_to(path: str, *names: str) -> None:
    handler = logging.FileHandler(path)
    for name in names:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False


def main(names: list[str]) -> None:
    out = os.environ.get("OUT", "/tmp")
    for name in names:
        load = WORKLOADS[name](True)
        torch.manual_seed(0)
        model = load.build().to(device="cuda", dtype=torch.bfloat16).eval()
        ids = torch.randint(0, load.vocab, (load.batch, load.seq), device="cuda")
        _log_to(f"{out}/{name}_code.txt", "jit.output_code", "jit.graph")
        _log_to(f"{out}/{name}_inductor.txt", "jit.inductor")
        fast = jit.compile(model)
        with torch.no_grad():
            for variant, fn in [("eager", model), ("framejit", fast)]:
                for _ in range(3):
                    fn(ids)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(10):
                    fn(ids)
                torch.cuda.synchronize()
                print(f"{name} {variant}: {(time.perf_counter() - t0) * 100:.2f} ms per forward")
                if variant == "framejit":
                    with open(f"{out}/{name}_inductor.txt") as f:
                        print(f.read()[-3000:])
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    fn(ids)
                    torch.cuda.synchronize()
                for e in sorted(prof.key_averages(), key=lambda e: -e.device_time_total)[:22]:
                    print(f"  {e.device_time_total / 1000:8.3f} ms {e.count:5d}x  {e.key[:110]}")


if __name__ == "__main__":
    main(sys.argv[1].split(",") if len(sys.argv) > 1 else list(WORKLOADS))

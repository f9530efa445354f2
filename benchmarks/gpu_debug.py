"""Diagnostics for the GPU suite: what the Triton backend did with a workload (logs, kernel counts, fallbacks) and
a CUDA-time profile of ours vs torch.compile. python benchmarks/gpu_debug.py "GPT-2 block" bfloat16"""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import gpu_suite  # noqa: E402  (sets fresh cache dirs)
import torch  # noqa: E402

logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
logging.getLogger("jit.inductor.triton").setLevel(logging.INFO)


def profile(fn, inputs, label):
    from torch.profiler import ProfilerActivity, profile as prof
    for _ in range(3):
        fn(*inputs)
    torch.cuda.synchronize()
    with prof(activities=[ProfilerActivity.CUDA]) as p:
        for _ in range(5):
            fn(*inputs)
        torch.cuda.synchronize()
    print(f"== {label}")
    print(p.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))


def main():
    import jit
    from inductor import triton_backend as tb
    which, dtype = sys.argv[1], getattr(torch, sys.argv[2])
    name = next(w for w in gpu_suite.WORKLOADS if which in w)
    fn, inputs, _, _ = gpu_suite.build(name, dtype)
    with torch.no_grad():
        ours = jit.compile(fn)
        out = ours(*inputs)
        print("stats", tb.stats)
        print("rel err vs eager", gpu_suite.rel_error(out, fn(*inputs)))
        for path in sorted(os.listdir(os.path.join(os.environ["FRAMEJIT_CACHE_DIR"], "triton")))[:20]:
            print("module", path)
        profile(ours, inputs, "ours")
        profile(torch.compile(fn), inputs, "torch.compile")


if __name__ == "__main__":
    main()

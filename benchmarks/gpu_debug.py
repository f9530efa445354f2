"""Diagnostics for the GPU suite: what the Triton backend did with a workload (logs, kernel counts, fallbacks) and
a CUDA-time profile of ours vs torch.compile. python benchmarks/gpu_debug.py "GPT-2 block" bfloat16 [--gaps]
(--gaps: where the GPU waits within a call, instead of the per-kernel profile)"""
import logging
import os
import sys
import time

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


def timeline(fn, inputs, label, calls: int = 20):
    """Where the GPU waits, per call, as triton.testing.do_bench times it (a 256 MB L2 flush before each call):
    the idle time between the flush's end and the call's first kernel (host work before the first launch), the
    idle time between the call's own kernels (launches behind the GPU), and the kernels' busy time."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile as prof
    flush = torch.empty(256 * 2 ** 20 // 4, dtype=torch.int32, device="cuda")
    for _ in range(3):
        fn(*inputs)
    torch.cuda.synchronize()
    with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        for _ in range(calls):
            flush.zero_()
            fn(*inputs)
        torch.cuda.synchronize()
    kernels = sorted((e for e in p.events() if e.device_type == DeviceType.CUDA),
                     key=lambda e: e.time_range.start)
    calls_k, current = [], None
    for e in kernels:
        if "fill" in e.name.lower() and e.time_range.elapsed_us() > 50:  # the flush (a call's fills are short)
            current = {"flush_end": e.time_range.end, "kernels": []}
            calls_k.append(current)
        elif current is not None:
            current["kernels"].append(e)
    if calls_k and len(calls_k[-1]["kernels"]) > 1:  # the largest waits inside the last call, and around what
        ks = calls_k[-1]["kernels"]
        gaps = sorted(((b.time_range.start - a.time_range.end, a.name[:50], b.name[:50]) for a, b in zip(ks, ks[1:])),
                      reverse=True)[:4]
        for g, a, b in gaps:
            print(f"   idle {g:7.1f} us after {a} before {b}")
    host = []
    for _ in range(10):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(*inputs)
        host.append(time.perf_counter() - t0)
        torch.cuda.synchronize()
    print(f"   host time per call (no profiler, not synchronized): {sorted(host)[5] * 1e6:.0f} us")
    rows = []
    for c in calls_k:
        ks = c["kernels"]
        if not ks:
            continue
        busy = sum(k.time_range.elapsed_us() for k in ks)
        span = ks[-1].time_range.end - ks[0].time_range.start
        rows.append((ks[0].time_range.start - c["flush_end"], span - busy, busy, len(ks)))
    if not rows:
        print(f"== {label}: no calls found in the trace")
        return
    import statistics
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(f"== {label}: per call (median of {len(rows)}): idle before first kernel {med[0]:.1f} us, idle between "
          f"kernels {med[1]:.1f} us, kernels busy {med[2]:.1f} us, {med[3]:.0f} kernels")


def main():
    import jit
    from framejit.inductor.triton import backend as tb
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
        theirs = torch.compile(fn)
        if "--gaps" in sys.argv:
            theirs(*inputs)
            timeline(ours, inputs, "ours")
            timeline(theirs, inputs, "torch.compile")
            return
        profile(ours, inputs, "ours")
        profile(theirs, inputs, "torch.compile")


if __name__ == "__main__":
    main()

"""Host cost of one small graph call on the GPU: eager torch vs framejit's Triton backend launching through
Triton's `JITFunction.run` vs through the compiled launcher directly (inductor/triton_runtime.DirectLaunch).

The graph is `tanh(x) * 2 + 1` on 64x64: three eager kernels, one generated kernel. No synchronization inside the
timed calls, so the numbers are CPU time per call (what limits small-tensor code); the GPU runs behind.
Usage: python benchmarks/launch_overhead.py  (needs CUDA)"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.harness import Suite, environment, markdown, save  # noqa: E402
from framejit.inductor.backends import triton_backend  # noqa: E402


def chain(x):
    return torch.tanh(x) * 2 + 1


def main() -> None:
    x = torch.randn(64, 64, device="cuda")
    direct = triton_backend(torch.fx.symbolic_trace(chain), [x])
    regular = triton_backend(torch.fx.symbolic_trace(chain), [x])
    for launcher in regular.launch.values():
        launcher.direct.usable = False
        launcher.direct.kernels.clear()
        launcher._refresh()  # takes back the fast launch it published: every launch through JITFunction.run
    torch.testing.assert_close(direct(x), chain(x))
    torch.testing.assert_close(regular(x), chain(x))
    suite = Suite("launch-overhead")  # tanh(x) * 2 + 1, 64x64 fp32
    suite.add("eager (3 kernels)", lambda: chain(x))
    suite.add("framejit graph, JITFunction.run", lambda: regular(x))
    suite.add("framejit graph, direct launch", lambda: direct(x))
    results = suite.run(calls_per_round=2000, rounds=9, warmup=200)
    torch.cuda.synchronize()
    table = markdown(suite, results)
    print(environment())
    print(table)
    print("direct launches:", sum(l.direct.hits for l in direct.launch.values()))
    save(suite, results, table, torch.cuda.get_device_name().split()[-1].lower())


if __name__ == "__main__":
    main()

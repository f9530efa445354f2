"""Functions with one graph break, eager vs torch.compile vs framejit, in one process.

  print_in_middle: pointwise work, a print (to a null stream), more pointwise work
  data_dependent:  pointwise work, `if y.sum() > 0:` picks one of two continuations

Usage: python benchmarks/graph_breaks.py [cpu|cuda] [float32|bfloat16]. Goal (issue 4): correct, and not slower
than eager (on the H100 torch.compile ran a one-break function at 0.47x of eager in bf16)."""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import jit  # noqa: E402
from benchmarks.harness import RESULTS_DIR, Suite, environment, markdown  # noqa: E402

NULL = open(os.devnull, "w")


def print_in_middle(x):
    y = torch.tanh(x) * 2 + 1
    print("checkpoint", file=NULL)
    return torch.sigmoid(y) * x


def data_dependent(x):
    y = torch.relu(x) - 0.5
    if y.sum() > 0:
        return y * 2
    return y.abs() + 1


def main() -> None:
    device = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    dtype = getattr(torch, sys.argv[2] if len(sys.argv) > 2 else "float32")
    sizes = {"cpu": [(64, 64), (1024, 1024)], "cuda": [(64, 64), (4096, 4096)]}[device]
    lines = [f"# graph-break benchmark ({device}, {dtype})", "", str(environment()), ""]
    for fn in (print_in_middle, data_dependent):
        for shape in sizes:
            x = torch.randn(shape, device=device, dtype=dtype)
            ours = jit.compile(fn)
            ours_eager_backend = jit.compile(fn, backend="eager")
            theirs = torch.compile(fn)
            t = time.perf_counter()
            ref = fn(x)
            for f in (ours, ours_eager_backend):
                torch.testing.assert_close(f(x), ref, rtol=2e-2 if dtype == torch.bfloat16 else 1e-5, atol=1e-5)
            t_ours = time.perf_counter() - t
            t = time.perf_counter()
            torch.testing.assert_close(theirs(x), ref, rtol=2e-2 if dtype == torch.bfloat16 else 1e-4, atol=1e-4)
            t_theirs = time.perf_counter() - t

            def sync(f):
                if device == "cuda":
                    def run():
                        f(x)
                        torch.cuda.synchronize()
                    return run
                return lambda: f(x)

            suite = Suite(f"{fn.__name__} {tuple(shape)}")
            suite.add("eager", sync(fn))
            suite.add("torch.compile", sync(theirs))
            suite.add("framejit", sync(ours), "default backend")
            suite.add("framejit (eager backend)", sync(ours_eager_backend))
            calls = 200 if shape[0] <= 64 else 20
            results = suite.run(calls_per_round=calls, rounds=9, warmup=10)
            table = markdown(suite, results)
            head = (f"## {fn.__name__} {tuple(shape)}: first calls (compile) framejit {t_ours * 1000:.0f} ms, "
                    f"torch.compile {t_theirs * 1000:.0f} ms")
            print(head + "\n" + table + "\n")
            lines += [head, "", table, ""]
    out = os.path.join(RESULTS_DIR, f"graph-breaks-{device}-{str(dtype).split('.')[-1]}.md")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()

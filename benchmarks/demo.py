"""framejit demo (`make demo`): compile a GPT-style model, show what was captured, a recompile and the timing.

It grows with the project; today the executor captures whole models into one FX graph and the default backend
runs CPU graphs as generated NumPy code."""
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import jit  # noqa: E402
from benchmarks.models.gpt import GPT, GPTConfig  # noqa: E402


def best_of(fn, *args, rounds=5, calls=20):
    best = float("inf")  # other processes only ever add time
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            fn(*args)
        best = min(best, (time.perf_counter() - t) / calls)
    return best


def main():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=512, block_size=64, n_layer=4, n_head=4, n_embd=128)
    model = GPT(config, seed=0).eval()
    idx = torch.randint(0, config.vocab_size, (2, 32))

    print("== 1. What the executor captures (jit.explain)")
    with torch.no_grad():
        exp = jit.explain(model, idx)
    print(f"graphs: {exp.graph_count}, graph breaks: {exp.graph_break_count}, ops: {exp.op_count}, "
          f"guards: {len(exp.guards)}")
    print("first lines of the graph:\n  " + "\n  ".join(exp.graphs[0].code.strip().splitlines()[1:7]) + "\n  ...")

    print("\n== 2. Compile (default backend: NumPy code for CPU tensors) and check against eager")
    fast = jit.compile(model)
    with torch.no_grad():
        t = time.perf_counter()
        out = fast(idx)
        first = time.perf_counter() - t
        ref = model(idx)
    print(f"max |compiled - eager| = {(out - ref).abs().max().item():.2e}; first call (capture + codegen) "
          f"{first * 1000:.0f} ms")

    print("\n== 3. A new sequence length recompiles, and says why (JIT_LOGS=recompiles)")
    jit.set_logs("recompiles")
    logging.getLogger("jit").handlers[0].setStream(sys.stdout)
    with torch.no_grad():
        fast(idx[:, :16])
    jit.set_logs()

    print("\n== 4. Speed (CPU, best of 5 rounds)")
    frontend_only = jit.compile(model, backend="eager")  # captured graph run by torch: the frontend's cost alone
    with torch.no_grad():
        frontend_only(idx)
        eager_s, ours_s, front_s = best_of(model, idx), best_of(fast, idx), best_of(frontend_only, idx)
    print(f"eager {eager_s * 1e3:.2f} ms | framejit backend='eager' {front_s * 1e3:.2f} ms ({eager_s / front_s:.2f}x) | "
          f"framejit default backend {ours_s * 1e3:.2f} ms ({eager_s / ours_s:.2f}x)")
    print(f"\n{jit.counters}")


if __name__ == "__main__":
    main()

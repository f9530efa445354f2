"""framejit demo. It grows with the project: today it shows the frame hook at work.

Run with `make demo`."""
import logging
import time

import torch

import jit
from jit import eval_frame


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down = torch.nn.Linear(64, 256), torch.nn.Linear(256, 64)

    def forward(self, x):
        return self.down(torch.nn.functional.gelu(self.up(x))) + x


def main():
    torch.manual_seed(0)
    model = MLP().eval()
    fast = jit.compile(model, backend="eager")
    x = torch.randn(32, 64)

    print("== framejit demo: the PEP 523 frame hook")
    print(f"compiled module is still a {type(fast).__name__}: isinstance={isinstance(fast, MLP)}, "
          f"same state_dict keys={fast.state_dict().keys() == model.state_dict().keys()}")
    jit.set_logs("skips")
    logging.getLogger("jit.skips").handlers.clear()
    with torch.no_grad():
        same = torch.equal(fast(x), model(x))
    jit.set_logs()
    print(f"result equals eager: {same}")
    print(f"frames seen by the hook: {eval_frame.hook_stats()['callbacks']} (torch internals are skipped at first "
          "sight; user frames run eagerly until the symbolic executor lands)")
    print(f"forward's cache state: {eval_frame.get_mode(MLP.forward.__code__)!r}")

    def per_call(f, n=5000, rounds=7):
        best = float("inf")  # best of several rounds: other processes only ever add time
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(n):
                f(x)
            best = min(best, (time.perf_counter() - t) / n * 1e6)
        return best

    with torch.no_grad():
        per_call(fast, 200)
        eager_us, compiled_us = per_call(model), per_call(fast)
    print(f"per call: eager {eager_us:.1f} us, under the hook {compiled_us:.1f} us "
          f"({compiled_us - eager_us:+.1f} us: hook + wrapper)")
    print(jit.counters)


if __name__ == "__main__":
    main()

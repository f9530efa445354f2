"""Per-call cost of the frame hook, in ns, for a trivial function:

  hook off                   the function called plainly (CPython's inlined call path)
  replacement, direct        the replacement code's function called directly (the floor for a hit)
  hook on, SKIPped           the hook installed, the function marked SKIP (what every untouched frame pays)
  hook on, cache hit         the hook runs a trivial guard, then the replacement

Goals (issue 2): SKIPped < 50 ns over hook off; a hit < 1 us over calling the replacement directly."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import Suite, markdown, save  # noqa: E402
from jit import eval_frame  # noqa: E402
from jit.calling_convention import as_replacement  # noqa: E402


def trivial(x):
    return x


def skipped(x):
    return x


def compiled(x):
    return x


def driver(f, x):
    # Calls from a Python frame, as user code does: with the hook installed CPython cannot inline the call.
    return f(x)


def main() -> None:
    replacement = eval_frame.CacheEntry(lambda x, fn: True, as_replacement(trivial.__code__, compiled.__code__))
    direct = type(trivial)(replacement.code, globals())

    def callback(code, fn, args):
        if code is compiled.__code__:
            return replacement
        return eval_frame.SKIP

    suite = Suite("hook-overhead")
    suite.add("hook off", lambda: driver(trivial, 1))
    suite.add("replacement, direct", lambda: driver(direct, 1))

    def with_hook(f):
        def run():
            return driver(f, 1)
        return run

    previous = eval_frame.set_callback(callback)
    try:
        skipped(1), compiled(1), driver(trivial, 1)
        assert eval_frame.get_mode(skipped.__code__) == "skip"
        suite.add("hook on, SKIPped", with_hook(skipped), "every frame the compiler leaves alone")
        suite.add("hook on, cache hit", with_hook(compiled), "trivial guard + replacement")
        results = suite.run()
    finally:
        eval_frame.set_callback(previous)

    by = {r.name: r.ns_per_call for r in results}
    # The driver lambdas are themselves Python frames run under the hook (SKIPped) in the last two rows.
    extra = {"over hook off": {k: f"{v - by['hook off']:+.0f} ns" for k, v in by.items()},
             "over direct": {k: f"{v - by['replacement, direct']:+.0f} ns" for k, v in by.items()}}
    table = markdown(suite, results, extra)
    print(table)
    skip_cost = by["hook on, SKIPped"] - by["hook off"]
    hit_cost = by["hook on, cache hit"] - by["replacement, direct"]
    print(f"\nSKIPped frame: {skip_cost:+.0f} ns per call (goal < 50 ns); cache hit: {hit_cost:+.0f} ns over the "
          f"replacement called directly (goal < 1000 ns)")
    save(suite, results, table, tag=f"py{sys.version_info.major}{sys.version_info.minor}")


if __name__ == "__main__":
    main()

"""Seeds of the CI slice (test_fuzz.CI_SEEDS) that fail today, each because of a compiler bug written up in the
fuzz findings (F-numbers: /tmp/fuzz_findings.md while issue 17 is open; each section has a minimized
reproducer). Remove an entry when its bug is fixed: test_fuzz runs each as xfail(strict=True), so it fails once
it passes.

The seeds name programs of the generator as it is (test_fuzz.GENERATOR_DIGEST pins it): a change to the
generator or its op table renumbers every program, and this list must be recomputed
(python -m tests.fuzz --backend eager,default-numpy,default-torch,default --seeds 0:250).
"""

# (backend, seed) -> (failure category, finding)
# Empty (F1 and F5 fixed at 2b539f3; F6, two Triton-arm programs whose outputs eager returns as views of each other,
# fixed in the session that added the arm). An entry looks like
#     ("default-numpy", 102): ("aliasing", "F1: torch.broadcast_tensors(x, x)[0] is x in eager, a new view compiled"),
KNOWN: dict[tuple[str, int], tuple[str, str]] = {}

# Seeds left out of the CI slice: correct, but too slow to compile for CI, e.g.
#     94: "F2: x.view(-1).unbind(0) with dynamic sizes takes ~14 s and up to 9 GB to compile",
# (seed 94 of the generator before the indexing ops were added). seed -> finding
SLOW: dict[int, str] = {}

"""framejit's own code is never compiled, however its files were reached: a script that puts `dirname/..` on
sys.path (benchmarks/training.py) imports jit as `.../benchmarks/../jit/...`, and the compiled code's wrappers
(jit/autocast.py, jit/rebuild.py) were then compiled themselves, recursing without end on the GPU."""
import os

import jit
from jit import skip_rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _code_at(filename: str):
    return compile("def f():\n    return 1\n", filename, "exec").co_consts[0]


def test_own_files_through_a_parent_reference_are_skipped():
    for package in ("jit", "graph", "inductor", "guards"):
        roundabout = os.path.join(ROOT, "benchmarks", "..", package, "x.py")
        assert skip_rules.skip_reason(_code_at(roundabout)) == "library framejit does not compile"


def test_user_files_are_not_skipped():
    assert skip_rules.skip_reason(_code_at(os.path.join(ROOT, "benchmarks", "..", "user_script.py"))) is None
    assert skip_rules.skip_reason(_code_at("<string>")) is None


def test_wrappers_of_compiled_code_run_suspended_under_autocast():
    import torch

    def f(x):
        return (x @ x).relu()

    fast = jit.compile(f)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, want = fast(torch.randn(4, 4)), f(torch.randn(4, 4))
    assert out.dtype == want.dtype == torch.bfloat16
    assert jit.counters.frames_compiled >= 1 and jit.counters.compile_errors == 0

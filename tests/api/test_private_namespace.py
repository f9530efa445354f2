"""The compiler's internals are framejit.graph, framejit.guards and framejit.inductor: a user's own modules called
graph, guards or inductor, first on sys.path beside their script, change nothing (they used to turn the
compiler off: "backend 'inductor' could not be loaded ... cannot import name 'symbolic_sizes' from 'graph'")."""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent("""
    import sys
    import warnings

    import torch

    import jit
    import graph, guards, inductor  # the user's own modules

    def f(x):
        return torch.softmax(x * 2, -1) + 1

    x = torch.randn(4, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an internal error would fall back to eager with a warning
        for backend in ("inductor", "numpy", "eager"):
            out = jit.compile(f, backend=backend)(x)
            torch.testing.assert_close(out, f(x))
    assert jit.counters["compile_errors"] == 0 and jit.counters["graphs"] >= 3, dict(jit.counters)
    assert graph.MINE and guards.MINE and inductor.MINE
    assert sys.modules["framejit.graph"].__file__.startswith(sys.argv[1]), sys.modules["framejit.graph"].__file__
    print("ok")
""")


def test_user_modules_named_like_the_internals_change_nothing(tmp_path):
    (tmp_path / "graph.py").write_text("MINE = True\nsymbolic_sizes = None\n")
    (tmp_path / "guards.py").write_text("MINE = True\n")
    (tmp_path / "inductor").mkdir()
    (tmp_path / "inductor" / "__init__.py").write_text("MINE = True\n")
    (tmp_path / "script.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": ROOT, "FRAMEJIT_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(tmp_path / "script.py"), ROOT], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_no_internal_module_is_importable_under_its_generic_name():
    done = subprocess.run([sys.executable, "-c", "import sys, jit, torch\n"
                           "jit.compile(lambda x: x * 2 + 1)(torch.ones(3))\n"
                           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('graph', 'guards', 'inductor')))"],
                          cwd="/", env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-3000:]

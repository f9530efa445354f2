"""Every break kind the executor raises has its entry in the catalogue (jit/break_reasons.py KINDS): a missing one
turned a break into an internal error (KeyError: 'autocast') when its message was built."""
import ast
import pathlib

from jit.break_reasons import KINDS

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _kinds_raised() -> dict:
    found = {}
    for path in [*(ROOT / "jit").rglob("*.py"), *(ROOT / "guards").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
                    "unsupported", "Unsupported") and node.args and isinstance(node.args[0], ast.Constant):
                found.setdefault(node.args[0].value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_kind_raised_is_in_the_catalogue():
    raised = _kinds_raised()
    assert len(raised) >= 10  # the scan finds the executor's calls
    missing = {kind: where for kind, where in raised.items() if kind not in KINDS}
    assert not missing, missing

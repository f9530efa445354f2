"""The disk cache's key covers the source of every module that shapes generated code: an edit to a code
generator in a subpackage (inductor/triton/, inductor/numpy/) or to the optimizer (graph/) must not let a new
process load code the old compiler wrote (the key hashed only inductor/*.py once the backends moved into
subpackages)."""
from pathlib import Path

from framejit.inductor.cache import _code_version


def _tree(root: Path) -> Path:
    for rel in ("inductor/cache.py", "inductor/triton/host.py", "inductor/numpy/codegen.py", "graph/passes.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n")
    return root / "inductor"


def test_an_edit_anywhere_the_code_comes_from_changes_the_version(tmp_path):
    here = _tree(tmp_path)
    before = _code_version(here)
    assert _code_version(here) == before
    for rel in ("inductor/triton/host.py", "inductor/numpy/codegen.py", "graph/passes.py", "inductor/cache.py"):
        path = tmp_path / rel
        path.write_text(path.read_text() + "x = 1\n")
        after = _code_version(here)
        assert after != before, rel
        before = after


def test_a_file_moved_between_packages_changes_the_version(tmp_path):
    here = _tree(tmp_path)
    before = _code_version(here)
    (tmp_path / "inductor/triton/host.py").rename(tmp_path / "inductor/numpy/host.py")
    assert _code_version(here) != before

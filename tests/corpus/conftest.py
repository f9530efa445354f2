"""Put the repository root on sys.path: the module corpus imports benchmarks.models, and pytest's default
rootdir-relative import puts only tests/ there when tests/ has no __init__.py."""
import pathlib
import sys

_ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

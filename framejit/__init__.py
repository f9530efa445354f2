"""framejit's private namespace: the compiler's internals are imported as framejit.graph, framejit.guards and
framejit.inductor, never under those generic names, so a user's own graph.py or inductor/ next to their script
changes nothing. `import jit` is the public face.

Installed, pyproject's package-dir mapping puts the three folders under framejit/. In a checkout (tests, the
device machine's PYTHONPATH) they sit beside this folder, so the namespace also looks there."""
import os as _os

_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if all(_os.path.isfile(_os.path.join(_checkout, name, "__init__.py")) for name in ("graph", "guards", "inductor")):
    __path__.append(_checkout)  # noqa: F821 (a package's __path__ is defined by the import system)

"""Which code the compiler never looks at: the standard library, torch, numpy, triton, pytest, and framejit
itself. Decided once per code object (the hook then marks it SKIP), from the file it was defined in.

Nor what an import runs: a module's top-level code, the functions it calls, the `__init__` a dataclass makes
with exec. Every import executes a module under one of a few importlib functions (IMPORT_CODES); the hook runs
their frames with itself suspended in that thread (mode SUSPEND), so nothing below them is intercepted, and
other frames pay nothing for it."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
import sysconfig
from types import CodeType

from jit.code_maps import CodeSet

# Distributions whose packages' frames are never compiled: what we compile *to*, test harnesses, and
# typing_extensions (torch's own code calls it: typing machinery that reads sys._getframe, never a tensor). Each is
# expanded to every top-level package or one-file module it installs (torch's wheel also installs torchgen).
SKIPPED_DISTRIBUTIONS = ("torch", "numpy", "triton", "pytest", "pluggy", "bytecode", "sympy", "typing_extensions")
# framejit's own packages, located beside this one (not by name lookup: a user may have a package called graph).
OWN_PACKAGES = ("jit", "framejit", "guards", "graph", "inductor")

_THIRD_PARTY_DIRS = ("site-packages", "dist-packages")


def _variants(path: str) -> set[str]:
    return {os.path.join(os.path.abspath(path), ""), os.path.join(os.path.realpath(path), "")}


def _top_level_packages(distribution: str) -> list[str]:
    """The importable top-level packages a distribution installs (its name alone if its metadata does not say)."""
    try:
        listed = importlib.metadata.distribution(distribution).read_text("top_level.txt")
    except importlib.metadata.PackageNotFoundError:
        listed = None
    names = (listed or "").split()
    return names or [distribution]


def _package_dirs() -> set[str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs: set[str] = set().union(*(_variants(os.path.join(root, name)) for name in OWN_PACKAGES))
    for name in (pkg for dist in SKIPPED_DISTRIBUTIONS for pkg in _top_level_packages(dist)):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            dirs |= _variants(location)
        if spec and spec.submodule_search_locations is None and spec.origin:  # a one-file module: its file
            dirs |= {os.path.abspath(spec.origin), os.path.realpath(spec.origin)}
    return dirs


def _stdlib_dirs() -> set[str]:
    paths = sysconfig.get_paths()
    return _variants(paths["stdlib"]) | _variants(paths["platstdlib"])


_packages = tuple(sorted(_package_dirs()))
_stdlib = tuple(sorted(_stdlib_dirs()))


# Code the user asked for by name although it lives in a skipped library: the forward of a torch.nn module passed
# to jit.compile (nn.Linear, nn.TransformerEncoderLayer). Held weakly: a class made per request goes with its code.
_requested = CodeSet()


def request(code: CodeType) -> None:
    """Compile `code` even though its file is in a skipped library."""
    _requested.add(code)


def _import_codes() -> frozenset:
    """The importlib functions under which a module's code runs (the frozen modules the interpreter imports
    with): `_find_and_load` (every `import` and import_module of a module not in sys.modules), importlib.reload
    (its finders' find_spec, then `_exec`), `_load` (the legacy load_module path) and a loader's `exec_module`
    called directly."""
    import importlib
    bootstrap, external = sys.modules["_frozen_importlib"], sys.modules["_frozen_importlib_external"]
    functions = (bootstrap._find_and_load, importlib.reload, bootstrap._exec, bootstrap._load,
                 external._LoaderBasics.exec_module)
    return frozenset(f.__code__ for f in functions)


IMPORT_CODES = _import_codes()


def runs_imports(code: CodeType) -> bool:
    """Whether `code` runs a module's import: its frames (and all they call) run with the hook suspended."""
    return code in IMPORT_CODES


def skip_reason(code: CodeType, function=None) -> str | None:
    """Why `code` is never compiled, or None if it may be."""
    if code in _requested:
        return None
    if function is not None and str(getattr(function, "__globals__", {}).get("__name__", "")).startswith("namedtuple_"):
        return "standard library (collections.namedtuple's generated __new__)"
    filename = code.co_filename
    if filename.startswith("<frozen "):
        return "frozen standard-library module"
    if os.sep in filename:  # imported through a path like benchmarks/../jit: compared as the directory it names
        filename = os.path.abspath(filename)
    if filename.startswith(_packages):
        return "library framejit does not compile"
    for prefix in _stdlib:
        if filename.startswith(prefix):
            first = filename[len(prefix):].split(os.sep, 1)[0]
            if first not in _THIRD_PARTY_DIRS:
                return "standard library"
    return None

"""Compiling a generated C kernel module (inductor/c/codegen.py) into a Python extension and loading it: what a
generated NumPy module calls when it is loaded (its source carries the C).

The shared library is kept on disk under the cache directory, named by a hash of everything that shapes the
binary: the source, the compiler's identity and flags, this CPU (the code is built for it: -march=native) and
the Python ABI. A second process, or a second graph with the same kernels, loads the file without compiling.
Files are compiled to a temporary name and renamed into place, so a concurrent reader never sees half a file.

Flags: -O3 vectorizes the loops; no -ffast-math (torch's IEEE results: NaN, inf, signed zeros, the order of
float operations written); -fno-math-errno lets sqrt be one instruction; -fno-trapping-math lets both arms of a
select be computed (no result changes: nothing reads the floating-point exception flags), without which the
compiler keeps `c ? x * y : z` a branch and the loop unvectorized; -fwrapv makes signed integer overflow
wrap as torch's does; -fopenmp-simd honours the `omp simd reduction` pragmas, the one place the code allows a
float reduction to be reassociated (into vector lanes, as torch's own reductions are)."""
from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from ..config import config

log = logging.getLogger("jit.inductor")
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fwrapv", "-fopenmp-simd", "-fPIC", "-shared",
         "-fvisibility=hidden", "-w"]
_loaded: dict = {}  # module name -> module
stats = {"compiled": 0, "loaded": 0}


@functools.cache
def compiler() -> str | None:
    """The C compiler's path ($CC, else gcc, else cc), or None: then no kernel is written in C."""
    for name in (os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@functools.cache
def _identity() -> str:
    """The compiler's version line, the CPU's model and feature flags, the Python ABI: what a binary depends on
    beyond its source."""
    cc = compiler()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = "".join(line for line in f if line.startswith(("model name", "flags")))[:4096]
    except OSError:
        cpu = platform.processor()
    return "\n".join([cc, *version, cpu, sys.version, sysconfig.get_config_var("EXT_SUFFIX") or "", *FLAGS])


def load(source: str):
    """The extension module compiled from `source` (its `@NAME@` replaced by a name hashing it)."""
    digest = hashlib.sha256((_identity() + source).encode()).hexdigest()[:24]
    name = f"fj_{digest}"
    module = _loaded.get(name)
    if module is not None:
        return module
    directory = config.cache_dir / "c"
    path = directory / f"{name}{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"
    if not path.exists():
        _compile(source.replace("@NAME@", name), directory, path)
        stats["compiled"] += 1
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    stats["loaded"] += 1
    _loaded[name] = module
    return module


def _compile(source: str, directory, path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        c_file = os.path.join(tmp, "kernels.c")
        with open(c_file, "w") as f:
            f.write(source)
        out = os.path.join(tmp, "kernels.so")
        cmd = [compiler(), *FLAGS, f"-I{sysconfig.get_paths()['include']}", c_file, "-o", out, "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"C kernels failed to compile ({' '.join(cmd)}):\n{done.stderr[-4000:]}")
        os.replace(out, path)
    log.debug("compiled C kernels %s", path)

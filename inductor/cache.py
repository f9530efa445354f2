"""Compiled-code cache, in memory and on disk (~/.cache/framejit, or $FRAMEJIT_CACHE_DIR).

The key hashes everything the generated code depends on: the canonical graph text, every input's shape, strides
and dtype, the backend name and the versions of torch, numpy, Python and framejit. A new process finds the
source on disk and skips code generation. Each file carries its key and a checksum of its payload, so a
truncated, corrupted or foreign file is detected, deleted and rebuilt rather than crashing; files are written
to a temporary name and os.replace'd into place, so a reader never sees half a file."""
import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy
import torch
from .config import config

log = logging.getLogger("jit.inductor.cache")
FORMAT = 1
FRAMEJIT_VERSION = "0.1.0"
_memory: dict = {}
stats = {"memory_hits": 0, "disk_hits": 0, "misses": 0, "corrupt": 0}


def cache_dir() -> Path:
    return config.cache_dir


def input_metadata(example_inputs) -> list:
    meta = []
    for x in example_inputs:
        if isinstance(x, torch.Tensor):
            meta.append(["tensor", list(x.shape), list(x.stride()), str(x.dtype), x.device.type])
        else:
            meta.append([type(x).__name__, repr(x)])
    return meta


def _code_version(here: Path = Path(__file__).parent) -> str:
    """Hash of the compiler's source that shapes generated code: inductor/ with its subpackages (the code
    generators live in numpy/, c/ and triton/, what generated code imports in runtime/) and graph/ (the optimizer and
    decompositions the lowering starts from). Editing any of it must invalidate what it generated."""
    digest = hashlib.sha256()
    for package in (here, here.parent / "graph"):
        for f in sorted([*package.rglob("*.py"), *package.rglob("*.h")]):  # (.h: c/'s headers, pasted)
            digest.update(str(f.relative_to(package.parent)).encode() + f.read_bytes())
    return digest.hexdigest()


_CODE_VERSION = _code_version()


def make_key(graph_text: str, example_inputs, backend: str) -> str:
    versions = [torch.__version__, numpy.__version__, sys.version, FRAMEJIT_VERSION, _CODE_VERSION, FORMAT]
    blob = json.dumps([graph_text, input_metadata(example_inputs), backend, versions], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _checksum(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _path(key: str, kind: str) -> Path:
    return cache_dir() / kind / f"{key}.json"


def get(key: str, kind: str = "numpy"):
    """The payload stored under key (a dict), or None. `kind` names the folder: "numpy" (generated source),
    "choice" (numpy/cpu_choice.py's decisions)."""
    if key in _memory:
        stats["memory_hits"] += 1
        return _memory[key]
    path = _path(key, kind)
    try:
        record = json.loads(path.read_text())
        if record.get("format") != FORMAT or record.get("key") != key or \
                record.get("checksum") != _checksum(record["payload"]):
            raise ValueError("stale or corrupt cache entry")
    except FileNotFoundError:
        stats["misses"] += 1
        return None
    except (ValueError, KeyError, TypeError, OSError, UnicodeDecodeError) as e:
        stats["corrupt"] += 1
        log.warning("dropping unreadable cache file %s (%s); recompiling", path, e)
        try:
            path.unlink()
        except OSError:
            pass
        return None
    stats["disk_hits"] += 1
    _memory[key] = record["payload"]
    return record["payload"]


def put(key: str, payload: dict, disk: bool = True, kind: str = "numpy") -> None:
    _memory[key] = payload
    if not disk:
        return
    path = _path(key, kind)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"format": FORMAT, "key": key, "checksum": _checksum(payload), "payload": payload}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the whole new one
    except OSError as e:  # a read-only or full disk costs only the on-disk reuse
        log.warning("could not write cache file %s: %s", path, e)


def clear_memory() -> None:
    _memory.clear()

"""torch's Python meta kernels, remembered: their results per signature, in memory and on disk, so that a second
process computes the same shapes without running them.

Every Python meta kernel (softmax's, layer_norm's, arange's decomposition, a custom op's fake kernel...) calls
`torch._check`, whose first call imports torch.fx.experimental.symbolic_shapes and with it sympy: ~0.45 s of CPU
in a fresh process, more than the rest of a warm compile. What such a kernel computes for meta inputs depends only
on the op (and, for a custom op, its fake kernel's source), the inputs' sizes, strides, dtypes and flags, the other
arguments' values and the default dtype; its result is a fresh tensor (ops whose schema says they return views or
write are left alone) described by sizes, strides, offset, dtype and storage size. So while `remembering()` is
active (around each op the trace runs on meta tensors, the optimizer, the lowering), a TorchDispatchMode answers
such calls from what an earlier call with the same signature returned, in this process or in an earlier one
through `<cache dir>/meta/`, and otherwise runs the kernel and records its result.

Left to the kernel: anything not all-meta, ops whose Meta kernel is C++ (the dispatcher's table says: cheap, and
they import nothing), arguments of a type `_describe` does not list (an int subclass such as our SymInt, whose
comparisons record size conditions; a Generator; a tensor subclass), results that are not plain meta tensors, and
calls that raise (only a signature that succeeded is remembered, so a kernel's checks are skipped only where they
passed for exactly these inputs). Inside another dispatch mode (make_fx's fake tracing) nothing is remembered."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode_stack

from framejit.graph import dynamo_free_refs

log = logging.getLogger("jit.meta_memo")
FORMAT = 1
stats = {"hits": 0, "disk_hits": 0, "recorded": 0}
_memory: dict = {}        # key -> result description (a JSON-able list)
_remembered: dict = {}    # OpOverload -> whether its meta results are remembered
_python_kernel: dict = {}  # OpOverload -> whether its Meta kernel is a Python function
_versions: dict = {}       # OpOverload -> _op_version
_directory: Path | None = None
_PLAIN = {int: "i", float: "f", bool: "b", complex: "c", str: "s", type(None): "n"}
_NAMED = (torch.dtype, torch.device, torch.layout, torch.memory_format)


class _Undescribable(Exception):
    pass


def _describe(x) -> object:
    """A JSON-able description of an argument fixing what a meta kernel can read of it; raises _Undescribable."""
    kind = _PLAIN.get(type(x))
    if kind is not None:
        return [kind, repr(x)]
    if type(x) is torch.Tensor or type(x) is torch.nn.Parameter:
        if x.device.type != "meta" or x.layout != torch.strided:
            raise _Undescribable
        return ["T", list(x.shape), list(x.stride()), x.storage_offset(), str(x.dtype), x.is_conj(), x.is_neg()]
    if isinstance(x, _NAMED):
        return [type(x).__name__, str(x)]
    if type(x) in (list, tuple):
        return [type(x).__name__, [_describe(v) for v in x]]
    raise _Undescribable


def _result(x) -> object:
    """A description of a fresh meta result to rebuild it from, or raises _Undescribable."""
    if x is None:
        return None
    if type(x) is torch.Tensor and x.device.type == "meta" and x.layout == torch.strided and not x.is_conj() \
            and not x.is_neg():
        return [list(x.shape), list(x.stride()), x.storage_offset(), str(x.dtype), x.untyped_storage().nbytes()]
    if type(x) in (list, tuple):
        return [type(x).__name__, [_result(v) for v in x]]
    raise _Undescribable


def _dtype(text: str) -> torch.dtype:
    return getattr(torch, text.removeprefix("torch."))


def _rebuild(desc):
    if desc is None:
        return None
    if isinstance(desc[0], str):
        items = [_rebuild(v) for v in desc[1]]
        return tuple(items) if desc[0] == "tuple" else items
    shape, stride, offset, dtype, nbytes = desc
    out = torch.empty(0, dtype=_dtype(dtype), device="meta")
    out.set_(torch.UntypedStorage(nbytes, device="meta"), offset, shape, stride)
    return out


def _python_meta(func) -> bool:
    """The dispatcher's Meta kernel of `func` is a Python function: torch/_meta_registrations.py registers torch's
    Python meta kernels and decompositions for the ops it does not leave to C++ (views, clone, _to_copy...); a
    custom op's fake implementation (graph/index_checks.py's check_index) is one too."""
    known = _python_kernel.get(func)
    if known is None:  # the dispatcher names where each kernel was registered (~60 us, once per op)
        table = torch._C._dispatch_dump_table(func.name())
        line = next((entry for entry in table.splitlines() if entry.startswith("Meta:")), "")
        known = _python_kernel[func] = ".py:" in line
    return known


def _remembers(func) -> bool:
    """Ops answered from memory: a Python meta kernel (what imports sympy), a fresh result, no writes."""
    known = _remembered.get(func)
    if known is None:
        schema = func._schema
        known = (not func.is_view and not schema.is_mutable and all(r.alias_info is None for r in schema.returns)
                 and _python_meta(func))
        _remembered[func] = known
    return known


def _op_version(func) -> str:
    """What else a kernel's answer depends on: nothing for torch's own ops (torch.__version__ is in the key); for
    a custom op (graph/index_checks.py's), the source file of its fake kernel, whose edits must not be served
    stale answers. Raises _Undescribable where that file cannot be found."""
    known = _versions.get(func)
    if known is None:
        known = ""
        if func.namespace not in ("aten", "prims"):
            try:
                from torch._library import simple_registry
                where = simple_registry.singleton.find(func._schema.name).fake_impl.kernel.source
                known = hashlib.sha256(Path(where.rsplit(":", 1)[0]).read_bytes()).hexdigest()
            except Exception as e:  # noqa: BLE001 - another torch's registry, a kernel without a file
                raise _Undescribable from e
        _versions[func] = known
    return known


def _key(func, args, kwargs) -> str:
    signature = [str(func), _describe(args), _describe(sorted(kwargs.items())), str(torch.get_default_dtype()),
                 torch.__version__, _op_version(func), FORMAT]
    return hashlib.sha256(json.dumps(signature).encode()).hexdigest()


def _path(folder: str, key: str) -> Path | None:
    return None if _directory is None else _directory / folder / f"{key}.json"


def read(folder: str, key: str):
    """The answer stored under `key` in `<cache dir>/<folder>` (JSON), or None. Also jit/eager_check.py's store."""
    path = _path(folder, key)
    if path is None:
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):  # absent (the usual miss), unreadable or half-written by a foreign writer
        return None
    if not isinstance(record, dict) or record.get("key") != key or record.get("format") != FORMAT:
        return None
    stats["disk_hits"] += 1
    return record.get("result")


def write(folder: str, key: str, result) -> None:
    """Store a JSON-able answer under `key`, atomically; a read-only or full disk only costs the reuse."""
    path = _path(folder, key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"format": FORMAT, "key": key, "result": result}, f)
        os.replace(tmp, path)  # readers see no file or the whole file
    except OSError as e:
        log.debug("could not write %s: %s", path, e)


def _run(func, args, kwargs):
    if _python_meta(func):
        # a Python kernel runs: the first one in a process must find the stand-ins for torch._dynamo's disable
        # (a process whose kernels are all answered from memory never pays the ~15 ms walk)
        dynamo_free_refs.seed()
    return func(*args, **kwargs)


class _Remember(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not _remembers(func):
            return _run(func, args, kwargs)
        try:
            key = _key(func, args, kwargs)
        except _Undescribable:
            return _run(func, args, kwargs)
        desc = _memory.get(key)
        if desc is None:
            desc = read("meta", key)
            if desc is not None:
                _memory[key] = desc
        if desc is not None:
            stats["hits"] += 1
            return _rebuild(desc)
        out = _run(func, args, kwargs)
        try:
            _memory[key] = desc = _result(out)
            write("meta", key, desc)
            stats["recorded"] += 1
        except _Undescribable:
            pass
        return out


dynamo_free_refs.free(_Remember.__dict__["__torch_dispatch__"])  # its wrapper would import torch._dynamo


def set_directory(directory: Path) -> None:
    """Where the answers are kept: `<directory>/meta` (the compiled-code cache's folder; jit and inductor set it
    from the same switch, FRAMEJIT_CACHE_DIR)."""
    global _directory
    _directory = Path(directory)


@contextlib.contextmanager
def remembering(directory: Path | None = None):
    """Answer Python meta kernels from memory (and from `directory`/meta, see `set_directory`) inside the block.
    Nested uses and blocks entered inside another dispatch mode change nothing. Only torch's own code may run
    inside: the mode is visible to anything asking for the dispatch mode stack (a user's function would see it)."""
    if directory is not None:
        set_directory(directory)
    if _get_current_dispatch_mode_stack():  # ours already, or another's (make_fx): leave it alone
        dynamo_free_refs.seed()  # kernels run unanswered in there
        yield
        return
    with _Remember():
        yield


def clear_memory() -> None:
    _memory.clear()

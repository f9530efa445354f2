"""Would eager torch accept this call? Meta kernels check shapes but often not dtypes: `b.log_softmax(-1)` of an
int64 tensor, `bool @ bool`, `half @ float` and `trunc` of a bool tensor all pass on meta tensors and raise in the
real kernel. A captured op that eager rejects would raise later, when the graph runs: outside the user's `try`,
after side effects that eager never reached, or not at all once dead-code removal drops it. So such a call is not
captured: the frame breaks there and the instruction runs for real, raising where and what eager raises.

The check runs the call on real tensors of the same dtypes and devices, filled with ones, and remembers the answer
per signature (op, each tensor's dtype, device, rank and, when small, sizes; the other arguments), so a model's
repeated layers cost one run per distinct call. Small inputs are used at their sizes. Big ones are first tried
shrunk (every dim at most 2: equal dims stay equal, broadcasting and matmul shapes still fit), since dtype support
does not depend on size; only if that fails is the call tried at full size (an input as a one-element tensor
expanded to its size), so a big model's capture does not run its forward a second time. View and metadata ops accept
every dtype and are not run; random ones run on a forked generator state. Errors that depend on tensor values (an
index out of range) cannot be known here and stay the graph's: a call rejected with its integer tensors
filled with ones is tried again with them zero (an index valid along any dim) before it counts as rejected.
"""
from __future__ import annotations

import hashlib
import json
import math

import torch
from torch.utils._pytree import tree_flatten

from framejit.graph import meta_memo
from framejit.graph.effects import is_random

BIG = 1 << 16  # elements: an input larger than this is probed as an expanded one-element tensor

# Ops that only reinterpret metadata: they take every dtype, and an expanded probe input would reject some.
_DTYPE_FREE = {
    "view", "reshape", "permute", "transpose", "t", "expand", "expand_as", "unsqueeze", "squeeze", "flatten",
    "unflatten", "contiguous", "size", "dim", "numel", "stride", "storage_offset", "view_as", "reshape_as",
    "narrow", "select", "split", "chunk", "unbind", "movedim", "swapaxes", "swapdims", "detach",
    "clone", "to", "type", "float", "double", "half", "bfloat16", "int", "long", "bool", "short", "cpu", "cuda",
    "getattr", "is_contiguous", "is_floating_point", "is_complex", "element_size", "dtype", "requires_grad",
    "_set_grad_enabled",
}

# Bumped when the check itself changes what it answers, so answers stored on disk by an older check are not read
# (2: integer tensors retried as zeros)
ANSWERS_FORMAT = 2
_known: dict = {}  # signature -> None (eager accepts) or the first line of eager's error


def forget() -> None:
    """Drop every remembered answer (jit.reset)."""
    _known.clear()


def _base_name(target) -> str:
    """The op's name without torch's in-place underscore (`unsqueeze_` -> `unsqueeze`)."""
    name = target if isinstance(target, str) else getattr(target, "__name__", "")
    return name if name.endswith("__") else name.rstrip("_")


def _key(value):
    """The part of an argument the answer depends on: a tensor's dtype, device and rank; another value itself."""
    if isinstance(value, torch.Tensor):
        # a small tensor's sizes are part of the key: some errors depend on them (as_strided past the end of an
        # empty tensor's storage) and small checks are cheap; a big one's are not (it is checked shrunk)
        return ("tensor", value.dtype, value.dim(), tuple(value.shape) if value.numel() <= BIG else None)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _key(v)) for k, v in value.items()))
    if isinstance(value, slice):
        # unhashable before Python 3.12, and the answer depends on its bounds: `x[1:] = x` is accepted (an empty
        # target) where `x[::2] = x` is rejected (overlap) (program generator seed 301097)
        return ("slice", _key(value.start), _key(value.stop), _key(value.step))
    try:
        hash(value)
    except TypeError:
        # any other unhashable value: the answer may depend on what it holds, and its type alone does not say, so
        # the key is left unhashable and eager_error remembers nothing for this call
        return ("object", type(value).__name__, [id(value)])
    return (type(value).__name__, value)


def _layout_key(tensors: list) -> tuple:
    """What an answer may depend on beyond dtypes and sizes: each tensor's strides and offset, and which of them
    share memory -- `x.add_(1)` is rejected on an expanded x, `x *= x[0]` on overlapping operands and
    `torch.add(x, y, out=x)` where x would have to grow, not on plain or separate ones."""
    groups: dict = {}
    return tuple((tuple(int(s) for s in t.stride()), int(t.storage_offset()),
                  groups.setdefault(t.untyped_storage()._cdata, len(groups))) for t in tensors)


_PLAIN = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format)


class _NotPlain(Exception):
    pass


def _plain(value):
    if isinstance(value, _PLAIN):
        return str(value)
    raise _NotPlain


def _stored_key(key) -> str | None:
    """The disk key of an answer (meta_memo's store, folder "eager-check"), so another process probes nothing:
    None unless the op is torch's or a builtin and every argument is plainly described (a user object's repr
    could say the same for different values)."""
    op, target = key[0], key[1]
    if not isinstance(target, str):
        module = getattr(target, "__module__", None) or ""
        name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
        if isinstance(target, torch._ops.OpOverload):
            module, name = "torch.ops", str(target)
        if name is None or not module.split(".")[0] in ("torch", "builtins", "_operator", "operator"):
            return None
        target = f"{module}.{name}"
    try:
        text = json.dumps([op, target, key[2:], torch.__version__, ANSWERS_FORMAT], default=_plain)
    except _NotPlain:
        return None
    if '"object"' in text:  # an unhashable argument, described by its type alone
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _real(value, origin, size: str, made: dict, index_fill: int = 1):
    """A real tensor standing for a meta one: ones of its dtype on its real device, at its own size ("full"), at
    its own size but expanded from one element where big ("expanded"), or with every dim at most 2 ("shrunk").
    At full size it also has the meta tensor's strides and offset, over one real storage per meta storage, so
    writes into an expanded tensor, or into memory another argument reads, fail as they do in eager. One meta
    tensor passed twice (`torch.add(x, y, out=x)`) stands for one real tensor (`made`, by id). Integer tensors
    hold `index_fill` (0: an index valid along any dim, even one of size 1)."""
    if isinstance(value, torch.Tensor):
        if id(value) in made:
            return made[id(value)]
        shape, device = origin(value)
        fill = index_fill if _is_integer(value.dtype) else 1
        if size == "shrunk":
            real = torch.full([min(d, 2) for d in shape], fill, dtype=value.dtype, device=device)
        elif size == "full" or math.prod(shape) <= BIG:
            real = _laid_out(value, shape, device, made, fill)
        else:
            real = torch.full((), fill, dtype=value.dtype, device=device).expand(shape)
        made[id(value)] = real
        return real
    if isinstance(value, tuple):
        return tuple(_real(v, origin, size, made, index_fill) for v in value)
    if isinstance(value, list):
        return [_real(v, origin, size, made, index_fill) for v in value]
    if isinstance(value, dict):
        return {k: _real(v, origin, size, made, index_fill) for k, v in value.items()}
    return value


def _is_integer(dtype: torch.dtype) -> bool:
    return not dtype.is_floating_point and not dtype.is_complex and dtype is not torch.bool


def _laid_out(meta: torch.Tensor, shape: tuple, device, made: dict, fill: int = 1) -> torch.Tensor:
    """`fill` over a real storage standing for meta's storage (shared by the arguments that share it), viewed with
    meta's strides and offset where they still fit `shape` (the sizes before the call), else contiguous."""
    if meta.layout != torch.strided or tuple(meta.shape) != tuple(shape):
        return torch.full(shape, fill, dtype=meta.dtype, device=device)
    stride, offset = meta.stride(), meta.storage_offset()
    end = offset + 1 + sum((n - 1) * s for n, s in zip(shape, stride)) if math.prod(shape) else offset
    key = ("storage", meta.untyped_storage()._cdata, meta.dtype)
    storage = made.get(key)
    if storage is None or storage.numel() < end:
        storage = torch.full((max(end, meta.untyped_storage().nbytes() // meta.element_size()),), fill,
                             dtype=meta.dtype, device=device)
        made[key] = storage
    return storage.as_strided(shape, stride, offset)


def _run(node: torch.fx.Node, args, kwargs) -> str | None:
    """Eager's error for the call on these real arguments, as 'Type: first line', or None."""
    try:
        with torch.no_grad():
            if node.op == "call_method":
                getattr(args[0], node.target)(*args[1:], **kwargs)
            else:
                node.target(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - whatever eager raises, the op is not captured
        return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}"
    return None


def eager_error(node: torch.fx.Node, meta_args: tuple, meta_kwargs: dict, origin) -> str | None:
    """The first line of the error eager torch raises for `node`'s call with these (meta) arguments, or None when
    eager accepts it. `origin(meta_tensor)` gives the (shape, real device) the argument had when the call was
    made (the meta run may have resized it since: `out=` arguments)."""
    if _base_name(node.target) in _DTYPE_FREE:
        return None
    if _base_name(node.target) == "getitem" and not _advanced_index(meta_args[1:]):
        return None  # basic indexing (ints, slices, None, ...): meta checks it exactly
    flat = _flat_tensors((meta_args, meta_kwargs))
    devices = tuple(str(origin(t)[1]) for t in flat)
    # the sizes the arguments had when the call was made: the meta run has already resized an `out=` argument, and
    # an output that cannot grow to the broadcast shape is rejected where one that already has it is not
    before = tuple(tuple(int(n) for n in origin(t)[0]) for t in flat)
    key = (node.op, node.target, _key(meta_args), _key(meta_kwargs), devices, _layout_key(flat), before)
    try:
        if key in _known:
            return _known[key]
    except TypeError:  # an unhashable target, or an argument _key leaves unhashable
        key = None
    stored = _stored_key(key) if key is not None else None
    if stored is not None:
        answer = meta_memo.read("eager-check", stored)
        if isinstance(answer, dict) and "error" in answer:
            _known[key] = answer["error"]
            return answer["error"]
    sizes = ["full"] if node.meta.get("mutates") else ["expanded"]  # a write into an expanded input fails
    if any(math.prod(origin(t)[0]) > BIG for t in _flat_tensors((meta_args, meta_kwargs))):
        sizes.insert(0, "shrunk")
    for size in sizes:
        made: dict = {}
        args, kwargs = _real(meta_args, origin, size, made), _real(meta_kwargs, origin, size, made)
        if is_random(node):
            # a random op draws: run it on a forked generator state, so the program's stream does not move
            cuda = sorted({t.device.index or 0 for t in made.values() if t.device.type == "cuda"})
            with torch.random.fork_rng(devices=cuda):
                error = _run(node, args, kwargs)
        else:
            error = _run(node, args, kwargs)
        if error is not None and not is_random(node) and \
                any(_is_integer(t.dtype) for t in _flat_tensors((meta_args, meta_kwargs))):
            # ones index past a dim of size 1 (a (1, T) mask indexed by a batch arange): that error depends on the
            # values, which eager's own call may not have; zeros index every dim
            made = {}
            if _run(node, _real(meta_args, origin, size, made, 0), _real(meta_kwargs, origin, size, made, 0)) is None:
                error = None
        if error is None:
            break
    if key is not None:
        _known[key] = error
    if stored is not None:
        meta_memo.write("eager-check", stored, {"error": error})
    return error


def _advanced_index(index) -> bool:
    """An index holding a list or a tensor (x[..., [0]], x[mask]): out-of-range entries are found by the kernel."""
    if isinstance(index, (list, torch.Tensor)):
        return True
    return isinstance(index, tuple) and any(_advanced_index(i) for i in index)


def _flat_tensors(value) -> list:
    return [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]

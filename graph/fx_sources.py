"""The generated source of our GraphModules, released with what uses it.

Each time torch.fx generates a GraphModule's forward (every `GraphModule(...)` and `gm.recompile()`), it keeps the
source text under a new key `<eval_with_key>.N` in a private dict (`torch.fx.graph_module._loader.eval_cache`)
and a lazy entry in `linecache.cache`, so tracebacks can show the generated lines. Neither is ever removed: a
compile runs several passes that each recompile the graph, and over compile + jit.reset() cycles these entries
were the largest part of what stayed behind (issue 24).

So the keys made while framejit compiles are recorded (`recording()`), handed to the object whose life they
share (`release_with`: a cache entry's EntryInfo, a size-variant dispatcher), dropped when it dies, and all of
them on jit.reset() (`drop_all`). A key is a counter, so what a recording made is the range of counter values
it saw go by; a GraphModule another thread generated inside that window is counted in too (it then loses its
source lines when our owner dies: tracebacks show no text for it, nothing else changes)."""
from __future__ import annotations

import linecache
import weakref
from contextlib import contextmanager

import torch.fx.graph_module as fx_graph_module

_PREFIX = "<eval_with_key>."
_owned: dict[str, None] = {}  # keys recorded and not dropped yet, oldest first


def _loader():
    return getattr(fx_graph_module, "_loader", None)  # private to torch.fx: without it there is nothing to do


def _made_since(loader, start: int) -> list[str]:
    """Keys of sources generated since the loader's counter stood at `start`. Plain keys are `<eval_with_key>.N`;
    graphs carrying code fields get a suffix after N (found by scanning the newest keys)."""
    end = loader.next_id
    cache = loader.eval_cache
    keys, missing = [], set()
    for n in range(start, end):
        key = f"{_PREFIX}{n}"
        if key in cache:
            keys.append(key)
        else:
            missing.add(n)
    if missing:
        for key in reversed(list(cache)):  # list(): another thread may add keys meanwhile
            if key.startswith(_PREFIX):
                n = key[len(_PREFIX):].split(" ", 1)[0]
                if n.isdigit() and int(n) in missing:
                    keys.append(key)
    return keys


@contextmanager
def recording():
    """Collect the keys of the sources generated inside into the list this yields (filled on exit). A recording
    nested in another claims its keys first; the outer one gets only the rest."""
    made: list[str] = []
    loader = _loader()
    if loader is None:
        yield made
        return
    start = loader.next_id
    try:
        yield made
    finally:
        made.extend(k for k in _made_since(loader, start) if k not in _owned)
        for k in made:
            _owned[k] = None


def release_with(owner, keys: list[str]) -> None:
    """Drop `keys` when `owner` is garbage-collected."""
    if keys:
        weakref.finalize(owner, drop, keys).atexit = False


def drop(keys: list[str]) -> None:
    """Forget the sources of `keys`: the generated code itself has gone, or jit.reset() dropped it."""
    loader = _loader()
    for key in keys:
        if _owned.pop(key, 0) is None:
            if loader is not None:
                loader.eval_cache.pop(key, None)
            linecache.cache.pop(key, None)


def forget() -> None:
    """jit.reset(): drop every source a recording made."""
    drop(list(_owned))


def owned_count() -> int:
    return len(_owned)

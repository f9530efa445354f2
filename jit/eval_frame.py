"""Python face of the C frame hook (jit._C): per-thread callback, per-code cache entries, decisions.

The hook calls `callback(code, function, args)` on a cache miss, where `args` is the frame's argument vector
(positional, keyword-only, then the *args tuple and **kwargs dict, in co_varnames order). The callback returns
None (run the original this once), SKIP (never look at this code again), RUN_ONLY (keep the entries, run the
original on a miss without asking), SUSPEND (never look again, and run its frames with the hook suspended in
their thread: nothing they call is intercepted), or a CacheEntry(guard, code, data) to add in front and run now.
A guard is called as guard(*argument_vector, function): the frame's function comes last, for its closure
cells and globals.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import CodeType

from jit import _C

SKIP = _C.SKIP
RUN_ONLY = _C.RUN_ONLY
SUSPEND = _C.SUSPEND
CacheEntry = _C.CacheEntry

set_callback = _C.set_callback
get_callback = _C.get_callback
get_entries = _C.get_entries
get_mode = _C.get_mode
set_mode = _C.set_mode
clear_code = _C.clear_code
hook_stats = _C.stats
run_suspended = _C.run_suspended


@contextlib.contextmanager
def callback_installed(callback: Callable | None) -> Iterator[None]:
    """Run the body with `callback` as this thread's hook callback (None: hook off), restoring the previous one."""
    previous = _C.set_callback(callback)
    try:
        yield
    finally:
        _C.set_callback(previous)


def entries_for(code: CodeType) -> list:
    return _C.get_entries(code)

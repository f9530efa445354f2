"""The hook's Python callback: on a cache miss, decide what a frame runs.

Order of business for a frame: skip rules (never compile), cache limit (stop compiling new variants), recompile
bookkeeping, then the frame compiler. An internal error in the compiler falls back to eager for that code with
one warning, unless the user asked for fullgraph or switched suppress_errors off; a user's backend that fails
is not an internal error: its exception reaches the caller as the backend raised it."""
from __future__ import annotations

import inspect
import logging
import os
import re
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FunctionType

from jit import dynamic, eval_frame, skip_rules
from jit.backends import UserBackendFailed
from jit.code_maps import CodeSet
from jit.config import config
from jit.counters import counters
from jit.errors import GraphBreakError
from jit.logs import get_logger

recompile_log = get_logger("recompiles")
skip_log = get_logger("skips")


@dataclass(frozen=True)
class Settings:
    """What jit.compile / jit.optimize were asked for; frames compiled under equal settings share entries."""
    backend: object = "inductor"
    fullgraph: bool = False
    dynamic: bool | None = None
    options: tuple = ()  # ((switch, value), ...) of the built-in backends (jit.compile's mode= and options=)


@dataclass
class Frame:
    """A frame about to run, as the frame compiler sees it."""
    code: CodeType
    function: FunctionType | None
    args: tuple  # the argument vector (see jit.calling_convention)

    @property
    def location(self) -> str:
        return f"{self.code.co_filename}:{self.code.co_firstlineno}"

    @property
    def name(self) -> str:
        return self.code.co_qualname


class RunEagerly(Exception):
    """Raised by a frame compiler for a frame it will not compile; the frame then always runs as written."""


# compile_frame(frame, settings) -> CacheEntry. Replaced by the symbolic executor.
FrameCompiler = Callable[[Frame, Settings], "eval_frame.CacheEntry"]


def symbolic_executor(frame: Frame, settings: Settings):
    """The default frame compiler, imported on first use so that `import jit` does not import torch."""
    from jit.frame_compiler import compile_frame
    return compile_frame(frame, settings)


def failure_reasons(entries: list, args: tuple, function) -> list[str]:
    """The first failing guard of each entry, in words, each guard once: entries fail on the same guard again and
    again (a size, an object identity), and the most recent entry's words for it are kept. Entries whose data
    has `first_failure(*args, function)` -> (what failed, words) are grouped by what failed; those with only
    `why_failed(*args, function)` by their words."""
    reasons: dict = {}
    for entry in entries:  # most recently used first
        first = getattr(entry.data, "first_failure", None)
        explain = getattr(entry.data, "why_failed", None)
        try:
            if first is not None:
                key, text = first(*args, function)
            elif explain is not None:
                key = text = explain(*args, function)
            else:
                continue
        except Exception as e:  # a reason is a nicety: never let it break the call
            key = text = f"(could not explain guard failure: {e})"
        reasons.setdefault(key, text)
    return list(reasons.values())


_LAZY_CODE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


class FrameConverter:
    """One per Settings: the object the C hook calls, and the owner of the entries it creates."""

    def __init__(self, settings: Settings, compile_frame: FrameCompiler | None = None):
        self.settings = settings
        self.compile_frame = compile_frame
        self._warned_limit = CodeSet()

    def __call__(self, code: CodeType, function, args: tuple):
        if code.co_flags & _LAZY_CODE:
            # The hook skips these on first sight, but asks again for a code it saw before jit.reset(). A generator
            # is inlined where it is consumed (its frame runs a step at a time); it is never a frame of its own.
            return eval_frame.SKIP
        if skip_rules.runs_imports(code):
            skip_log.debug("an import (%s): nothing it runs is compiled", code.co_qualname)
            return eval_frame.SUSPEND
        reason = skip_rules.skip_reason(code, function)
        if reason is not None:
            skip_log.debug("skipping %s (%s:%d): %s", code.co_qualname, code.co_filename, code.co_firstlineno, reason)
            return eval_frame.SKIP
        if _is_disabled(code):
            return eval_frame.SKIP
        frame = Frame(code, function, args)
        entries = eval_frame.get_entries(code)
        if len(entries) >= config.cache_size_limit:
            self._hit_limit(frame, entries)
            return eval_frame.RUN_ONLY
        if entries:
            counters.bump("recompiles")
            marked = dynamic.note_size_changes(code, entries, args, function) if self.settings.dynamic is None \
                else []
            if self.settings.dynamic is not False:
                marked += dynamic.note_float_changes(code, entries, args, function)
            marked += dynamic.note_module_changes(code, entries, args, function)
            marked += dynamic.note_iterator_changes(code, entries, args, function)
            if recompile_log.isEnabledFor(logging.DEBUG):
                reasons = failure_reasons(entries, args, function) or ["no cached entry matched"]
                more = f" (now compiling {', '.join(marked)} as dynamic)" if marked else ""
                recompile_log.debug("Recompiling %s (%s), compile %d of this frame: %s%s", frame.name,
                                    _short_location(frame), len(entries) + 1, "; ".join(reasons), more)
        return self._compile(frame)

    def _compile(self, frame: Frame):
        compile_frame = self.compile_frame or _default_compiler
        try:
            entry = compile_frame(frame, self.settings)
        except RunEagerly as why:
            skip_log.debug("running %s (%s) eagerly: %s", frame.name, frame.location, why)
            return eval_frame.SKIP
        except GraphBreakError:
            raise
        except UserBackendFailed as failed:  # the user's backend failed: theirs to see, as it raised it
            raise failed.error from None
        except Exception as e:
            if self.settings.fullgraph or not config.suppress_errors:
                raise
            counters.bump("compile_errors")
            warnings.warn(f"framejit: internal error while compiling {frame.name} ({frame.location}); running it "
                          f"eagerly from now on: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
            return eval_frame.SKIP
        counters.bump("frames_compiled")
        return entry

    def _hit_limit(self, frame: Frame, entries: list) -> None:
        counters.bump("cache_limit_hits")
        if frame.code in self._warned_limit:
            return
        self._warned_limit.add(frame.code)
        reasons = list(dict.fromkeys(failure_reasons(entries, frame.args, frame.function)))
        detail = f" Last reasons: {'; '.join(reasons)}." if reasons else ""
        warnings.warn(
            f"framejit: {frame.name} ({_short_location(frame)}) was compiled {len(entries)} times "
            f"(jit.config.cache_size_limit); further variants run eagerly, compiled ones keep running.{detail} "
            f"{suggestion(reasons)}", RuntimeWarning, stacklevel=2)


_SUGGESTIONS = (  # (pattern in a failure reason, what to do about it)
    (re.compile(r"tensor '([^']+)' size mismatch at dim (\d+)"),
     "Sizes keep changing: call jit.mark_dynamic({0}, {1}) on the input, or compile with dynamic=True."),
    (re.compile(r"size relation changed: expected (.+) to be"),
     "The code branches on a size ({0}); move that branch out of the compiled function or make it a tensor op."),
    (re.compile(r"value of '([^']+)' changed"),
     "The Python value '{0}' changes between calls and each value is compiled separately: pass it as a tensor "
     "(torch.tensor(value)) or keep it constant."),
    (re.compile(r"(global '[^']+') changed"),
     "The {0} changes between calls: read it once outside, or pass it as an argument (a tensor for numbers)."),
    (re.compile(r"tensor '([^']+)' (dtype|device|rank|stride|requires_grad) mismatch"),
     "'{0}' arrives with a different {1} on different calls: make it consistent before the call."),
)


def suggestion(reasons: list[str]) -> str:
    """A concrete next step for the most common failure reason."""
    for pattern, advice in _SUGGESTIONS:
        for reason in reasons:
            m = pattern.search(reason)
            if m:
                return advice.format(*m.groups())
    return "Run with JIT_LOGS=recompiles,guards to see what changes between calls."


def _short_location(frame: Frame) -> str:
    return f"{os.path.basename(frame.code.co_filename)}:{frame.code.co_firstlineno}"


_default_compiler: FrameCompiler = symbolic_executor
_disabled_codes = CodeSet()  # jit.disable: outlives jit.reset, not the code


def _is_disabled(code: CodeType) -> bool:
    return code in _disabled_codes


def disable_code(code: CodeType) -> None:
    _disabled_codes.add(code)


def set_default_compiler(compile_frame: FrameCompiler) -> None:
    """Install the frame compiler used by jit.compile / jit.optimize (the symbolic executor plugs in here)."""
    global _default_compiler
    _default_compiler = compile_frame


# Settings -> the converter of every jit.compile / jit.optimize made with them, while one of those (or an entry the
# converter made) holds it: a service compiling with a fresh callable backend per request must not keep them all.
_converters: "weakref.WeakValueDictionary[Settings, FrameConverter]" = weakref.WeakValueDictionary()


def converter_for(settings: Settings) -> FrameConverter:
    """The one converter for these settings, so equal settings share cache entries."""
    conv = _converters.get(settings)
    if conv is None:
        conv = _converters[settings] = FrameConverter(settings)
    return conv


def reset() -> None:
    for conv in list(_converters.values()):
        conv._warned_limit.clear()

"""Hand-built replacement code for testing the hook before the symbolic executor exists."""
from __future__ import annotations

from types import FunctionType

from jit import eval_frame
from jit.calling_convention import as_replacement
from jit.convert_frame import FrameConverter, RunEagerly, Settings


class Replacer:
    """A frame compiler: for each registered original function, compile to `replacement` guarded by `guard`.

    `guard_for(args)` builds the guard of a new entry from the arguments it is compiled for (default: accept
    everything). Records every compile so tests can count them."""

    def __init__(self):
        self.rules: dict = {}
        self.compiled: list = []

    def replace(self, original: FunctionType, replacement: FunctionType, guard_for=None):
        self.rules[original.__code__] = (replacement, guard_for)
        return self

    def __call__(self, frame, settings):
        rule = self.rules.get(frame.code)
        if rule is None:
            raise RunEagerly("no replacement registered")
        replacement, guard_for = rule
        guard = guard_for(frame.args) if guard_for else (lambda *args: True)
        self.compiled.append(frame.args)
        code = as_replacement(replacement.__code__, frame.code)
        return eval_frame.CacheEntry(guard, code, None)

    def converter(self, **settings) -> FrameConverter:
        return FrameConverter(Settings(**settings), self)


def same_first_arg(args):
    """Guard specializing on the value of the first argument."""
    expected = args[0]
    return lambda *a: a[0] == expected

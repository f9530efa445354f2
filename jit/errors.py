"""Exceptions the public API raises."""


class JitError(RuntimeError):
    """Base class of framejit's own errors."""


class BackendError(JitError):
    """A backend name that is unknown or cannot be loaded."""


class GraphBreakError(JitError):
    """Raised under fullgraph=True where the function would otherwise be split or run eagerly.

    `reason` says what could not be captured, `location` is the user's 'file:line'."""

    def __init__(self, reason: str, location: str = "", hint: str = ""):
        self.reason, self.location, self.hint = reason, location, hint
        text = f"{location}: {reason}" if location else reason
        super().__init__(f"{text}\n  hint: {hint}" if hint else text)

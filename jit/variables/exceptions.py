"""Exception objects made in the traced code: by calling an exception class (`ValueError("bad")`), or by an
operation the trace knows raises (a dict lookup's KeyError, jit.break_reasons.PythonError)."""
from __future__ import annotations

from jit.variables.base import Const, Var
from jit.variables.containers import TupleVar


class ExceptionVar(Var):
    """An exception instance. `args` (and `kwargs`, for the few classes taking keywords) are what its class was
    called with; with constant arguments `prototype` is a real instance made from them now, which answers
    str/repr/.args exactly as eager's would (built-in constructors run no user code). `exact` is False where
    eager's object carries more than its arguments (the `name` and `obj` of an AttributeError Python's attribute
    lookup raised), so reading anything but its args and text is refused. `raised` becomes True once the trace
    raised it: eager's object then has a traceback and context the generated code could not give a rebuilt one.
    """

    def __init__(self, cls: type, args: list[Var], kwargs: dict[str, Var] | None = None, *, exact: bool = True):
        self.args = list(args)
        self.kwargs = dict(kwargs or {})
        self.exact = exact
        self.raised = False
        self.prototype: BaseException | None = None
        if all(a.is_const() for a in self.args) and all(v.is_const() for v in self.kwargs.values()):
            self.prototype = cls(*(a.const() for a in self.args), **{k: v.const() for k, v in self.kwargs.items()})
            cls = type(self.prototype)  # OSError(2, "x") is a FileNotFoundError
        self.cls = cls
        self.args_var = Const(self.prototype.args) if self.prototype is not None else TupleVar(self.args)

    @classmethod
    def of(cls, exc_type: type, *args, exact: bool = True) -> ExceptionVar:
        """The exception `exc_type(*args)` over constants (what an operation on known values raises)."""
        return cls(exc_type, [Const(a) for a in args], exact=exact)

    def python_type(self):
        return self.cls

    def summary(self) -> str:
        """`KeyError: 'missing'`, as a traceback's last line reads."""
        text = str(self.prototype) if self.prototype is not None else ""
        return f"{self.cls.__name__}: {text}" if text else self.cls.__name__

    def describe(self):
        return f"exception {self.summary()}"

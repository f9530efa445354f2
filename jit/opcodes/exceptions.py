"""Raising and handling exceptions made in the trace (jit.variables.ExceptionVar).

A raise is a jit.break_reasons.PythonError; the translator sends it to the handler CPython's exception table
names (Translator._throw), and the handler's own instructions run here as CPython runs them: PUSH_EXC_INFO,
CHECK_EXC_MATCH against `except A:` / `except (A, B):`, STORE_FAST of `as e` (an ordinary store), POP_EXCEPT
at the clause's end, RERAISE where nothing matched or in a cleanup block. An exception that no handler of the
traced frames catches becomes a break at the instruction that raised it (it then raises for real, as eager).
CPython 3.11 and 3.12 compile try/except alike (the `dis` docs of both; only jump spellings differ, which
jit/pyversion.py maps)."""
from jit.break_reasons import PythonError, unsupported
from jit.opcodes.registry import handler
from jit.semantics import exceptions
from jit.semantics.context_managers import NULL_EXIT, ExitVar
from jit.variables import ClassVar, Const, ExceptionVar, Var


def _raised(tx, v: Var) -> ExceptionVar:
    """What `raise v` raises: an exception object, or a new instance of an exception class."""
    if isinstance(v, ExceptionVar):
        return v
    if isinstance(v, ClassVar) and isinstance(v.cls, type) and issubclass(v.cls, BaseException):
        return exceptions.construct(tx, v.cls, [], {})
    try:
        outside = issubclass(v.python_type(), BaseException)
    except NotImplementedError:
        outside = False
    if outside:  # raising it for real gives it a traceback and context: eager's own object must get them
        unsupported("exception", f"raising {v.describe()}, an exception object made outside the trace")
    unsupported("exception", f"raising {v.describe()} (exceptions must derive from BaseException: TypeError)")


@handler("RAISE_VARARGS")
def raise_varargs(tx, inst):
    if inst.arg == 0:  # a bare `raise`: the exception being handled
        exc = tx.current_exception()
        if not isinstance(exc, ExceptionVar):
            unsupported("exception", "a bare `raise` of an exception the trace did not raise")
        raise PythonError(exc)
    cause = tx.pop() if inst.arg == 2 else None
    exc = _raised(tx, tx.pop())
    if cause is not None and not (isinstance(cause, Const) and cause.value is None):
        _raised(tx, cause)  # `raise X from Y`: Y made as eager makes it; __cause__ is not read in the trace
    raise PythonError(exc)


@handler("RERAISE")
def reraise(tx, inst):
    # the exception on the stack goes on to the next handler out (the offset below it, if any, is not modelled)
    exc = tx.pop()
    if not isinstance(exc, ExceptionVar):
        unsupported("exception", "re-raising an exception the trace did not raise")
    raise PythonError(exc)


@handler("PUSH_EXC_INFO")
def push_exc_info(tx, inst):
    # [exc] -> [exception handled before, exc]: the clause starts handling exc
    exc = tx.pop()
    if not isinstance(exc, ExceptionVar) or tx.last_raise is None or tx.last_raise[0] is not exc:
        unsupported("exception", "exception handling (PUSH_EXC_INFO) of an exception raised for real")
    before = tx.current_exception()
    tx.push(before if before is not None else Const(None))
    tx.push(exc)
    tx.handling.append((exc, tx.last_raise[1]))


@handler("CHECK_EXC_MATCH")
def check_exc_match(tx, inst):
    # [exc, classes] -> [exc, matches]
    classes = exceptions.classes_caught(tx.pop())
    exc = tx.stack[-1]
    if not isinstance(exc, ExceptionVar):
        unsupported("exception", "exception handling (CHECK_EXC_MATCH)")
    tx.push(Const(exceptions.matches(exc, classes)))


@handler("POP_EXCEPT")
def pop_except(tx, inst):
    # the end of a clause (or of its cleanup): what was handled before is handled again
    if not tx.handling:
        unsupported("exception", "exception handling (POP_EXCEPT)")
    tx.pop()
    tx.handling.pop()


@handler("WITH_EXCEPT_START")
def with_except_start(tx, inst):
    # [exit, lasti, exc before, exc] -> [..., exit(type, exc, tb)]: leaving a traced `with` (grad mode, autocast,
    # nullcontext) by an exception; their __exit__ never suppresses it
    from jit import autocast
    from jit.semantics.calls import call
    exit_fn, exc = tx.stack[-4], tx.stack[-1]
    traced_exit = isinstance(exit_fn, (ExitVar, autocast.AutocastExitVar)) or \
        isinstance(exit_fn, Const) and exit_fn.value is NULL_EXIT
    if not isinstance(exc, ExceptionVar) or not traced_exit:
        unsupported("exception", "exception handling (WITH_EXCEPT_START)")
    tx.push(call(tx, exit_fn, [ClassVar(exc.cls), exc, Const(None)], {}))


@handler("LOAD_ASSERTION_ERROR")
def load_assertion_error(tx, inst):
    tx.push(ClassVar(AssertionError))

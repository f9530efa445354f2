"""Run one program eagerly and compiled, call after call, and say whether they agree.

For each of the program's calls (the same sizes twice, then new sizes: a cache hit, a recompile, dynamic sizes)
the function runs eagerly twice and compiled once, each on freshly built, identical inputs, with torch's
generator seeded the same way and stdout captured. The two eager runs must agree with each other first: if they
do not, the program itself is nondeterministic (uninitialized memory, an unseeded source) and is skipped rather
than blamed on the compiler. Then the compiled run must agree with eager on: raising (and the exception's type),
the result (compare.diff), the inputs afterwards (mutations), which outputs are or share memory with which inputs
(compare.alias_diff), the printed text, and it must not warn "framejit: internal error".

Graph breaks and eager fallbacks are fine; a wrong answer or a crash is not.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch

import jit

from .compare import alias_diff, diff
from .program import Program

BACKENDS = {  # CLI name -> jit.compile keyword arguments
    "eager": {"backend": "eager"},
    "default": {},  # jit.compile(f): the inductor backend, which on the CPU picks NumPy code or torch per graph
    "numpy": {"backend": "numpy"},  # always the generated NumPy code
}
WRONG = ("type", "dtype", "shape", "tensor-meta", "value", "mutation", "aliasing", "stdout", "missing-exception",
         "exception-type")
CRASH = ("unexpected-exception", "internal-error")
INTERNAL_ERROR = "framejit: internal error"


@dataclass
class Run:
    raised: BaseException | None
    value: Any
    args: list  # the arguments afterwards
    stdout: str
    internal_errors: list[str]


@dataclass
class Verdict:
    status: str  # "ok", "wrong", "crash" or "skip"
    category: str = ""
    detail: str = ""
    call: int = -1

    def __str__(self) -> str:
        if self.status == "ok":
            return "ok"
        return f"{self.status} [{self.category}] at call {self.call}: {self.detail}"


def run(fn: Callable, args: list) -> Run:
    out = io.StringIO()
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
        warnings.simplefilter("always")
        try:
            value, raised = fn(*args), None
        except Exception as e:  # noqa: BLE001 - an exception is a result, compared with eager's
            value, raised = None, e
    internal = [str(w.message) for w in caught if str(w.message).startswith(INTERNAL_ERROR)]
    return Run(raised, value, args, out.getvalue(), internal)


def compare(eager: Run, compiled: Run) -> tuple[str, str] | None:
    """The first way `compiled` differs from `eager`, as (category, message), or None."""
    if compiled.internal_errors:
        return "internal-error", compiled.internal_errors[0]
    if (eager.raised is None) != (compiled.raised is None):
        if eager.raised is None:
            return "unexpected-exception", f"compiled raised {type(compiled.raised).__name__}: {compiled.raised}"
        return "missing-exception", f"eager raised {type(eager.raised).__name__}: {eager.raised}; compiled did not"
    if eager.raised is not None and type(eager.raised) is not type(compiled.raised):
        return "exception-type", (f"compiled raised {type(compiled.raised).__name__}: {compiled.raised}; eager "
                                  f"raised {type(eager.raised).__name__}: {eager.raised}")
    if eager.raised is None:
        found = diff(eager.value, compiled.value)
        if found:
            return found
    found = diff(eager.args, compiled.args, "inputs afterwards")
    if found:
        return "mutation", found[1]
    if eager.raised is None:
        found = alias_diff((eager.args, eager.value), (compiled.args, compiled.value))
        if found:
            return found
    if eager.stdout != compiled.stdout:
        return "stdout", f"printed {compiled.stdout!r}, expected {eager.stdout!r}"
    return None


def compile_with(backend: str | Callable) -> Callable[[Callable], Callable]:
    if callable(backend):  # a backend(gm, example_inputs) callable: the oracle's own tests plant bugs this way
        return lambda f: jit.compile(f, backend=backend)
    return lambda f: jit.compile(f, **BACKENDS[backend])


def check(program: Program, backend: str | Callable) -> Verdict:
    """Run every call of `program` eagerly and compiled; the first disagreement, or ok."""
    compile_fn = compile_with(backend)
    jit.reset()
    try:
        with torch.random.fork_rng(devices=[]):
            return _check_calls(program, compile_fn)
    finally:
        jit.reset()


def _check_calls(program: Program, compile_fn: Callable) -> Verdict:
    eager_fn = program.function()
    try:
        compiled_fn = compile_fn(program.function(" compiled"))
    except Exception as e:  # noqa: BLE001
        return Verdict("crash", "unexpected-exception", f"jit.compile raised {type(e).__name__}: {e}", 0)
    for call in range(len(program.calls)):
        eager = run(eager_fn, program.make_args(call))
        again = run(eager_fn, program.make_args(call))
        if compare(eager, again):
            return Verdict("skip", "nondeterministic", compare(eager, again)[1], call)
        compiled = run(compiled_fn, program.make_args(call))
        found = compare(eager, compiled)
        if found:
            category, message = found
            return Verdict("crash" if category in CRASH else "wrong", category, message, call)
    return Verdict("ok")

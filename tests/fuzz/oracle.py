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
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

import jit

from .compare import alias_diff, diff
from .program import Program

BACKENDS = {  # CLI name -> (jit.compile keyword arguments, environment while compiling and running)
    "eager": ({"backend": "eager"}, {}),
    # jit.compile(f): the inductor backend, which on the CPU keeps the NumPy code or the captured graph in torch,
    # whichever ran faster at compile time -- a timing, so which arm a graph gets can differ between machines
    "default": ({}, {}),
    # each arm of that choice, forced: deterministic, so CI checks these (inductor/numpy/cpu_choice.py reads the switch)
    "default-numpy": ({}, {"FRAMEJIT_CPU_BACKEND": "numpy"}),
    "default-torch": ({}, {"FRAMEJIT_CPU_BACKEND": "torch"}),
    "numpy": ({"backend": "numpy"}, {}),  # the NumPy backend: always the generated NumPy code
    # the NumPy backend with every kernel C can express written in C (inductor/c/), whatever its size
    "numpy-c": ({"backend": "numpy"}, {"FRAMEJIT_C_KERNELS": "always"}),
    # the Triton backend: on a machine without a GPU its kernels run in Triton's CPU interpreter, which must be
    # switched on before triton is first imported (TRITON_INTERPRET=1 in the environment of the run)
    "triton": ({"backend": "triton"}, {}),
}
WRONG = ("type", "dtype", "shape", "tensor-meta", "value", "mutation", "aliasing", "stdout", "missing-exception",
         "exception-type")
CRASH = ("unexpected-exception", "internal-error")
INTERNAL_ERROR = "framejit: internal error"
COUNTERS = ("frames_compiled", "graphs", "graph_breaks", "recompiles", "compile_errors")  # coverage, for the summary


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
    counters: dict = field(default_factory=dict)  # jit.counters after the program's compiled calls

    def signature(self) -> tuple:
        """What must stay the same while a failing program is shrunk: the category, and for exceptions the type
        raised (two different errors in one program are two bugs)."""
        raised = re.match(r"(?:compiled|eager) raised (\w+)", self.detail)
        return self.status, self.category, raised[1] if raised else None

    def __str__(self) -> str:
        if self.status == "ok":
            return "ok"
        return f"{self.status} [{self.category}] at call {self.call}: {self.detail}"


def run(fn: Callable, args: list) -> Run:
    out = io.StringIO()
    torch.manual_seed(0)
    # stderr is not compared (torch.fx prints the traceback of a failing graph there), only kept off the terminal
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("always")
        try:
            value, raised = fn(*args), None
        except Exception as e:  # noqa: BLE001 - an exception is a result, compared with eager's
            value, raised = None, e
    internal = [str(w.message) for w in caught if str(w.message).startswith(INTERNAL_ERROR)]
    return Run(raised, value, args, out.getvalue(), internal)


def compare(eager: Run, compiled: Run, floor: torch.dtype | None = None) -> tuple[str, str] | None:
    """The first way `compiled` differs from `eager`, as (category, message), or None. `floor`: see
    compare.diff."""
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
        found = diff(eager.value, compiled.value, floor=floor)
        if found:
            return found
    found = diff(eager.args, compiled.args, "inputs afterwards", floor)
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
    return lambda f: jit.compile(f, **BACKENDS[backend][0])


@contextlib.contextmanager
def environment(backend: str | Callable):
    changes = {} if callable(backend) else BACKENDS[backend][1]
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def forget_compiled_state() -> None:
    """As if in a fresh process: a seed's verdict must not depend on which programs were checked before it."""
    jit.reset()
    jit.counters.clear()
    # jit.reset() keeps eager_check's answers (per op, dtypes and ranks, not sizes), so whether an op that raises
    # for some sizes is captured depended on earlier programs (fuzz finding F13)
    from jit import eager_check
    eager_check._known.clear()


def check(program: Program, backend: str | Callable) -> Verdict:
    """Run every call of `program` eagerly and compiled; the first disagreement, or ok."""
    compile_fn = compile_with(backend)
    forget_compiled_state()
    try:
        with torch.random.fork_rng(devices=[]), environment(backend):
            verdict = _check_calls(program, compile_fn)
        verdict.counters = {k: jit.counters[k] for k in COUNTERS}
        return verdict
    finally:
        jit.reset()


def _malformed(value) -> bool:
    """A result no comparison can read: torch's expand of an empty tensor to a negative size returns a tensor
    whose size is negative (seed 217919), and any op on it raises."""
    leaves = torch.utils._pytree.tree_flatten(value)[0]
    return any(isinstance(t, torch.Tensor) and any(n < 0 for n in t.shape) for t in leaves)


def _check_calls(program: Program, compile_fn: Callable) -> Verdict:
    eager_fn = program.function()
    try:
        compiled_fn = compile_fn(program.function(" compiled"))
    except Exception as e:  # noqa: BLE001
        return Verdict("crash", "unexpected-exception", f"jit.compile raised {type(e).__name__}: {e}", 0)
    for call in range(len(program.calls)):
        eager = run(eager_fn, program.make_args(call))
        again = run(eager_fn, program.make_args(call))
        if _malformed(eager.value):
            return Verdict("skip", "malformed", "eager returned a tensor with a negative size", call)
        if compare(eager, again):
            return Verdict("skip", "nondeterministic", compare(eager, again)[1], call)
        compiled = run(compiled_fn, program.make_args(call))
        found = compare(eager, compiled, program.lowest_float())
        if found:
            category, message = found
            return Verdict("crash" if category in CRASH else "wrong", category, message, call)
    return Verdict("ok")

"""Shrink a failing program while the same kind of failure persists.

Greedy and deterministic: candidates are produced smallest-change-that-removes-most first (drop calls, delete
statements, unwrap blocks, keep one returned value, replace an operation by one of its operands, drop unused
parameters, plainer inputs, smaller sizes); the first candidate that still fails with the same category (on
the same backend) becomes the program, and the search goes on from there. Candidates already tried are
remembered by their text, so a pass never pays twice for the same program.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Callable, Iterator

from .oracle import Verdict, check
from .program import (BLOCK_FIELDS, Assign, Call, Def, ExprStmt, For, If, ListInput, Lit, Name, Program, Return,
                      ScalarInput, TensorInput, While)

Path = tuple  # alternating (index in a block, field name of a nested block, index, ...)


def minimize(program: Program, backend, verdict: Verdict, budget_s: float = 120.0,
             fails: Callable[[Program], Verdict | None] | None = None) -> Program:
    """The smallest program found within `budget_s` that fails like `verdict` on `backend`. `fails` (for tests)
    replaces the oracle: a Verdict when the candidate fails the same way, else None."""
    if fails is None:
        def fails(p: Program) -> Verdict | None:
            try:
                v = check(p, backend)
            except SyntaxError:  # a cut that leaves a `nonlocal` without its binding
                return None
            return v if v.signature() == verdict.signature() else None

    deadline = time.monotonic() + budget_s
    tried: set[str] = set()
    current = program
    progress = True
    while progress and time.monotonic() < deadline:
        progress = False
        for candidate in candidates(current, verdict.call):
            key = _key(candidate)
            if key in tried:
                continue
            tried.add(key)
            if time.monotonic() > deadline:
                break
            still = fails(candidate)
            if still:
                current, verdict, progress = candidate, still, True
                break
    return current


def _key(p: Program) -> str:
    return p.source() + repr(p.params) + repr(p.calls)


def candidates(p: Program, failing_call: int) -> Iterator[Program]:
    yield from _fewer_calls(p, failing_call)
    paths = list(_stmt_paths(p.body))
    for path in reversed(paths):  # later statements first: nothing after them reads what they define
        if not isinstance(_get(p.body, path), Return):
            yield p.replace(body=_put(p.body, path, ()))
    for path in paths:
        stmt = _get(p.body, path)
        for fld in BLOCK_FIELDS.get(type(stmt), ()):
            if not isinstance(stmt, (For, While, Def)):  # a loop body alone would read an unbound loop variable
                yield p.replace(body=_put(p.body, path, getattr(stmt, fld)))
    for path in paths:  # `t = x` dropped, later reads of t made reads of x
        stmt = _get(p.body, path)
        if len(path) == 1 and isinstance(stmt, Assign) and stmt.op == "=" and isinstance(stmt.value, Name) \
                and re.fullmatch(r"\w+", stmt.target):
            rest = tuple(_rename(s, stmt.target, stmt.value.id) for s in p.body[path[0] + 1:])
            yield p.replace(body=p.body[:path[0]] + rest)
    for path in paths:
        stmt = _get(p.body, path)
        for simpler in _simpler_stmts(stmt):
            yield p.replace(body=_put(p.body, path, (simpler,)))
    yield from _simpler_inputs(p)
    yield from _smaller_sizes(p)


# ---- calls and inputs -------------------------------------------------------------------------------------------


def keep_calls(p: Program, indices: list[int]) -> Program:
    params = tuple(replace(x, values=tuple(x.values[i] for i in indices)) if isinstance(x, ScalarInput) else x
                   for x in p.params)
    return p.replace(params=params, calls=tuple(p.calls[i] for i in indices))


def _fewer_calls(p: Program, failing: int) -> Iterator[Program]:
    n = len(p.calls)
    if failing < 0 or failing >= n:
        return
    yield keep_calls(p, [failing])
    if failing + 1 < n:
        yield keep_calls(p, list(range(failing + 1)))
    for drop in range(n):
        if drop != failing:
            yield keep_calls(p, [i for i in range(n) if i != drop])


def _simpler_inputs(p: Program) -> Iterator[Program]:
    body = "\n".join(p.source().splitlines()[1:])
    for i, param in enumerate(p.params):
        if not re.search(rf"\b{param.name}\b", body):
            yield p.replace(params=p.params[:i] + p.params[i + 1:])
    for i, param in enumerate(p.params):
        options = []
        if isinstance(param, TensorInput):
            options = [replace(param, layout="contiguous"), replace(param, dtype="float32")]
            options += [replace(param, dims=param.dims[:j] + (1,) + param.dims[j + 1:])
                        for j, d in enumerate(param.dims) if d != 1]
            options += [replace(param, dims=param.dims[1:])] if param.dims else []
        elif isinstance(param, ListInput) and len(param.items) > 1:
            options = [replace(param, items=param.items[:1])]
        for option in options:
            if option != param:
                yield p.replace(params=p.params[:i] + (option,) + p.params[i + 1:])


def _smaller_sizes(p: Program) -> Iterator[Program]:
    for c, sizes in enumerate(p.calls):
        for symbol, size in sizes.items():
            for smaller in range(1, size) if size > 1 else ():
                calls = list(p.calls)
                calls[c] = {**sizes, symbol: smaller}
                yield p.replace(calls=tuple(calls))


# ---- statements -------------------------------------------------------------------------------------------------


def _stmt_paths(body: tuple, prefix: Path = ()) -> Iterator[Path]:
    for i, stmt in enumerate(body):
        yield prefix + (i,)
        for fld in BLOCK_FIELDS.get(type(stmt), ()):
            yield from _stmt_paths(getattr(stmt, fld), prefix + (i, fld))


def _get(body: tuple, path: Path):
    stmt = body[path[0]]
    return stmt if len(path) == 1 else _get(getattr(stmt, path[1]), path[2:])


def _put(body: tuple, path: Path, new: tuple) -> tuple:
    """`body` with the statement at `path` replaced by the statements `new` (none: deleted)."""
    i = path[0]
    if len(path) == 1:
        return body[:i] + tuple(new) + body[i + 1:]
    stmt = body[i]
    inner = _put(getattr(stmt, path[1]), path[2:], new)
    return body[:i] + (replace(stmt, **{path[1]: inner}),) + body[i + 1:]


def _rename(node, old: str, new: str):
    """`node` (a statement or expression) reading `new` wherever it read `old`."""
    pattern = re.compile(rf"\b{old}\b")
    if isinstance(node, Name):
        return Name(new) if node.id == old else node
    if isinstance(node, (tuple, list)):
        return tuple(_rename(n, old, new) for n in node)
    if not hasattr(node, "__dataclass_fields__"):
        return pattern.sub(new, node) if isinstance(node, str) else node
    return replace(node, **{f: _rename(getattr(node, f), old, new) for f in node.__dataclass_fields__})


EXPR_FIELDS = {Assign: "value", ExprStmt: "value", If: "test", For: "iter", While: "limit", Return: "value"}


def _simpler_stmts(stmt) -> Iterator:
    fld = EXPR_FIELDS.get(type(stmt))
    if fld is None:
        return
    expr = getattr(stmt, fld)
    if isinstance(stmt, Return):
        if expr != Lit("None"):  # the failure may be a mutation, a print or an exception: nothing to return
            yield replace(stmt, value=Lit("None"))
        for arg in expr.args if isinstance(expr, Call) else ():  # one of the returned values alone
            yield replace(stmt, value=arg)
    for simpler in _simpler_exprs(expr):
        yield replace(stmt, **{fld: simpler})


def _simpler_exprs(expr) -> Iterator:
    """The expression with one operation replaced by one of its operands (outermost first)."""
    if not isinstance(expr, Call):
        return
    for arg in expr.args:
        if isinstance(arg, (Call, Name)):
            yield arg
    for i, arg in enumerate(expr.args):
        for simpler in _simpler_exprs(arg):
            yield Call(expr.template, expr.args[:i] + (simpler,) + expr.args[i + 1:])


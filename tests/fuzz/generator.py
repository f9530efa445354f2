"""The seeded program generator: inputs, then statements one at a time, each checked by running the program so far.

Every candidate statement is run eagerly, appended to the statements before it (a fresh run from the start on
the first call's inputs: tiny tensors, so a whole run costs well under a millisecond), and the function's locals
come back. That answers every question the generator has about a value -- is it a tensor, what dtype and shape,
does this op raise for it -- without a type system of our own. A candidate that raises is dropped, or kept inside
a try/except (exception parity is then part of what is tested), or, once in a while, kept unguarded as the
program's last statement. The same seed always gives the same program: all choices come from one
random.Random, never from hashes or addresses.

Statement kinds live in statements.py; the operation table in ops.py.
"""
from __future__ import annotations

import builtins
import contextlib
import io
import random
import types
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from . import ops
from .program import (DTYPES, GLOBALS, Assign, Call, Expr, Lit, ListInput, Name, Program, Raw, ScalarInput, Stmt,
                      TensorInput, Try, render_block)

NUMBERS = ("2", "-1", "0.5", "1.5", "-2.0", "3", "0", "1e-3", "1e4")
SIZE_WEIGHTS = {0: 0.06, 1: 0.2, 2: 0.26, 3: 0.26, 4: 0.12, 5: 0.1}
DTYPE_WEIGHTS = {"float32": 0.4, "float64": 0.1, "float16": 0.1, "bfloat16": 0.1, "int64": 0.1, "int32": 0.08,
                 "bool": 0.12}
LAYOUT_WEIGHTS = {"contiguous": 0.55, "transpose": 0.15, "step": 0.1, "offset": 0.1, "expand": 0.1}
N_CALLS = 4  # same sizes twice (a cache hit), then two new sets of sizes (a recompile, then dynamic sizes)


def simulate(params: tuple, stmts: list, args: list) -> dict | Exception:
    """Run `stmts` as the body of a function of `params` on `args`: its locals afterwards, or what it raised."""
    lines = [f"def _sim({', '.join(p.name for p in params)}):", *("    " + s for s in render_block(tuple(stmts))),
             "    return locals()"]
    namespace = dict(GLOBALS)
    try:
        exec(compile("\n".join(lines), "<fuzz simulation>", "exec"), namespace)
    except SyntaxError as e:  # a generated statement the generator did not mean to write: a bug here
        raise AssertionError(f"generated invalid source: {e}\n" + "\n".join(lines)) from e
    torch.manual_seed(0)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            return namespace["_sim"](*args)
        except Exception as e:  # noqa: BLE001 - the answer to "does this raise?"
            return e


@dataclass
class Scope:
    """Where statements are being added: what runs before them and which names they may read."""
    prefix: list  # statements run before the new ones (the enclosing blocks' code, unwrapped)
    visible: list  # names certainly bound here, in order of definition
    values: dict  # the locals after the prefix ran on the first call's inputs
    new: list = field(default_factory=list)  # statements added in this scope

    def child(self) -> "Scope":
        return Scope(self.prefix + self.new, list(self.visible), dict(self.values))

    def commit(self, stmts: list, values: dict, names: list) -> None:
        self.new += stmts
        self.values = values
        self.visible += [n for n in names if n not in self.visible]


class Generator:
    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.counter = 0
        self.raised_unguarded = False
        self.params: tuple = ()
        self.args0: list = []

    # ---- small random choices -------------------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def weighted(self, table: dict):
        return self.rng.choices(list(table), weights=list(table.values()))[0]

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    # ---- running candidates ---------------------------------------------------------------------------------

    def run(self, scope: Scope, stmts: list) -> dict | Exception:
        return simulate(self.params, scope.prefix + scope.new + stmts, self.args0)

    # ---- values in scope by kind ------------------------------------------------------------------------------

    def of_kind(self, scope: Scope, kind: str) -> list[str]:
        return [n for n in scope.visible if n in scope.values and _is_kind(scope.values[n], kind)]

    def tensor(self, scope: Scope, dtype: str = "any", like: torch.Tensor | None = None, pick: str = "any") -> str | None:
        names = self.of_kind(scope, "T")
        if not names:
            return None
        preferred = [n for n in names if _dtype_fits(scope.values[n], dtype)]
        if preferred and self.chance(0.85):
            names = preferred
        if like is not None:
            related = [n for n in names if _related(like, scope.values[n], pick)]
            if related and self.chance(0.85):
                names = related
        # recent values are more interesting than inputs read again and again
        return self.rng.choice(names[-6:] if self.chance(0.6) else names)

    # ---- expressions ------------------------------------------------------------------------------------------

    def expression(self, scope: Scope, group: str | None = None, depth: int = 0) -> Expr | None:
        """A random operation over values in scope (operands sometimes operations themselves)."""
        if group is None:
            group = self.weighted({g: w for g, (_, w) in ops.GROUPS.items()})
        table = ops.GROUPS[group][0]
        for _ in range(6):
            op = self.rng.choices(table, weights=[o.weight for o in table])[0]
            expr = self.apply(scope, op, depth)
            if expr is not None:
                return expr
        return None

    def apply(self, scope: Scope, op: ops.Op, depth: int = 0) -> Expr | None:
        args: list[Expr] = []
        first: Any = None
        for i, kind in enumerate(op.kinds):
            arg = self.operand(scope, kind, op, first, depth, args[0] if args else None)
            if arg is None:
                return None
            if i == 0:
                first = scope.values.get(arg.id) if isinstance(arg, Name) else None
            args.append(arg)
        return Call(self.fill(op.template, first), tuple(args))

    def operand(self, scope: Scope, kind: str, op: ops.Op, first: Any, depth: int,
                first_expr: Expr | None) -> Expr | None:
        if kind == "T":
            if first_expr is None and depth < 2 and self.chance(0.2):
                return self.expression(scope, self.rng.choice(["pointwise", "view", "binary"]), depth + 1)
            if isinstance(first, torch.Tensor) and self.chance(0.12):
                return first_expr  # sometimes x op x: one value read twice
            like = first if isinstance(first, torch.Tensor) else None
            name = self.tensor(scope, op.dtype, like, op.pick)
            return Name(name) if name else None
        if kind in "NIB":
            names = self.of_kind(scope, kind)
            if names and self.chance(0.6):
                return Name(self.rng.choice(names))
            literal = {"N": lambda: self.rng.choice(NUMBERS), "I": lambda: str(self.rng.randint(0, 3)),
                       "B": lambda: self.rng.choice(["True", "False"])}[kind]()
            return Lit(literal)
        names = self.of_kind(scope, kind)
        return Name(self.rng.choice(names)) if names else None

    def fill(self, template: str, first: Any) -> str:
        """Fill the named holes of a template ({dim}, {num}, ...) from operand 0's value."""
        ndim = first.dim() if isinstance(first, torch.Tensor) else 1
        fillers = {
            "{dim}": lambda: str(self.rng.randint(-ndim, ndim - 1)) if ndim else self.rng.choice(["0", "-1"]),
            "{dim2}": lambda: str(self.rng.randint(-ndim, ndim - 1)) if ndim else "0",
            "{dimp}": lambda: str(self.rng.randint(-ndim - 1, ndim)),
            "{perm}": lambda: ", ".join(map(str, self.rng.sample(range(ndim), ndim))),
            "{num}": lambda: self.rng.choice(NUMBERS),
            "{dtype}": lambda: f"torch.{self.weighted(DTYPE_WEIGHTS)}",
        }
        for hole, fill in fillers.items():
            while hole in template:
                template = template.replace(hole, fill(), 1)
        return template

    # ---- assignments ------------------------------------------------------------------------------------------

    def assign(self, scope: Scope, target: str | None = None, group: str | None = None) -> list[Stmt] | None:
        """`name = <random expression>`; a raising one kept inside try/except sometimes."""
        expr = self.expression(scope, group)
        if expr is None:
            return None
        target = target or self.fresh("t")
        stmt = Assign(target, expr)
        result = self.run(scope, [stmt])
        if not isinstance(result, Exception):
            return self.commit(scope, [stmt], result, [target])
        return self.guarded(scope, [stmt], result, fallback=Assign(target, self.fallback_value(scope)),
                            names=[target])

    def fallback_value(self, scope: Scope) -> Expr:
        name = self.tensor(scope)
        return Call("{0}.clone()", (Name(name),)) if name else Lit("0")

    def guarded(self, scope: Scope, body: list, error: Exception, fallback: Stmt | None, names: list):
        """A statement that raised: inside try/except (40%), unguarded at the end of the program (rarely), or
        dropped (None)."""
        if self.chance(0.4):
            stmt = Try(tuple(body), self.handler_spec(error), (fallback or Raw("pass"),))
            result = self.run(scope, [stmt])
            if not isinstance(result, Exception):
                return self.commit(scope, [stmt], result, names if fallback else [])
            return None
        if not self.raised_unguarded and not scope.prefix and self.chance(0.05):
            self.raised_unguarded = True  # the first call raises here; later calls, with other sizes, may not
            return self.commit(scope, body, scope.values, [])
        return None

    def handler_spec(self, error: Exception) -> str:
        name = type(error).__name__
        builtin = getattr(builtins, name, None) is type(error)
        return self.rng.choice([name if builtin else "Exception", "Exception",
                                "(RuntimeError, TypeError, IndexError, ValueError)"])

    def commit(self, scope: Scope, stmts: list, values: dict, names: list) -> list:
        scope.commit(stmts, values, names)
        return stmts

    # ---- inputs and calls ---------------------------------------------------------------------------------------

    def inputs(self) -> tuple[tuple, tuple]:
        symbols = ["A", "B", "C"]
        master = [self.rng.choice(symbols) for _ in range(3)]
        params: list = []
        for i in range(self.rng.choice([1, 1, 2, 2, 2, 3])):
            ndim = self.rng.choices([0, 1, 2, 3], weights=[0.08, 0.3, 0.42, 0.2])[0]
            dims = master[3 - ndim:] if ndim else []
            if self.chance(0.15):
                dims = [self.rng.choice(symbols) for _ in dims]
            dims = tuple(1 if self.chance(0.15) else d for d in dims)
            params.append(TensorInput(f"x{i}", self.weighted(DTYPE_WEIGHTS), dims, self.weighted(LAYOUT_WEIGHTS),
                                      seed=i + 1))
        if self.chance(0.15):
            dims = tuple(master[1:])
            params.append(ListInput("xs", tuple(TensorInput(f"xs{j}", "float32", dims, seed=10 + j)
                                                 for j in range(2))))
        for kind in self.rng.sample(["n", "alpha", "flag"], self.rng.choice([0, 0, 1, 1, 2])):
            params.append(ScalarInput(kind, tuple(self.scalar_values(kind))))
        calls = self.call_sizes(symbols)
        return tuple(params), calls

    def scalar_values(self, kind: str) -> list:
        draw = {"n": lambda: self.rng.randint(0, 4), "alpha": lambda: self.rng.choice([0.5, -1.5, 2.0, 0.0]),
                "flag": lambda: self.rng.choice([True, False])}[kind]
        first = draw()
        return [first, first] + [first if self.chance(0.5) else draw() for _ in range(N_CALLS - 2)]

    def call_sizes(self, symbols: list) -> tuple:
        base = {s: self.weighted(SIZE_WEIGHTS) for s in symbols}
        calls = [base, dict(base)]
        for _ in range(N_CALLS - 2):
            calls.append({s: (self.weighted(SIZE_WEIGHTS) if self.chance(0.7) else v) for s, v in calls[-1].items()})
        return tuple(calls)

    # ---- the program ------------------------------------------------------------------------------------------

    def program(self) -> Program:
        from . import statements
        with torch.random.fork_rng(devices=[]):
            self.params, calls = self.inputs()
            probe = Program(self.seed, self.params, (), calls)
            self.args0 = probe.make_args(0)
            values = simulate(self.params, [], self.args0)
            scope = Scope([], [p.name for p in self.params], values)
            statements.block(self, scope, self.rng.randint(3, 12))
            body = tuple(scope.new) + (statements.return_stmt(self, scope),)
        return Program(self.seed, self.params, body, calls)


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "T":
        return isinstance(value, torch.Tensor)
    if kind == "N":
        return type(value) in (int, float)
    if kind == "I":
        return type(value) is int
    if kind == "B":
        return type(value) is bool
    if kind == "L":
        return type(value) in (list, tuple) and len(value) > 0 and all(isinstance(v, torch.Tensor) for v in value)
    if kind == "D":
        return type(value) is dict and all(type(k) is str for k in value)
    if kind == "C":
        return isinstance(value, types.FunctionType)
    raise ValueError(kind)


def _dtype_fits(t: torch.Tensor, dtype: str) -> bool:
    if dtype == "float":
        return t.is_floating_point()
    if dtype == "int":
        return not t.is_floating_point() and t.dtype != torch.bool
    if dtype == "intbool":
        return not t.is_floating_point()
    return True


def _related(a: torch.Tensor, b: torch.Tensor, pick: str) -> bool:
    if pick == "same":
        return a.shape == b.shape
    if pick == "matmul":
        return a.dim() >= 1 and b.dim() >= 1 and a.shape[-1] == (b.shape[0] if b.dim() == 1 else b.shape[-2])
    if pick == "broadcast":
        try:
            torch.broadcast_shapes(a.shape, b.shape)
            return True
        except (RuntimeError, ValueError):  # some size pairs with a 0 in them raise ValueError ("negative length")
            return False
    return True


def generate(seed: int) -> Program:
    return Generator(seed).program()


assert set(DTYPE_WEIGHTS) == set(DTYPES)

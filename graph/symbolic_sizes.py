"""Symbolic sizes for the backends: an int that is also an expression over a graph's dynamic input sizes.

A graph traced with dynamic sizes is compiled once for a *range* of sizes. Every size that depends on a dynamic
input dim is a `SymInt`: an `int` subclass whose value is its hint (the size at the example inputs) and whose
`expr` says how to compute it from the inputs' sizes (`s0 * 64`). It subclasses int on purpose: the optimizer,
the lowering and the code generators were written for concrete sizes and keep running on the hints unchanged,
while Python arithmetic on sizes builds expressions, so a reshape to `B * T` stays `s0 * s1` in generated code.

What cannot stay symbolic becomes a *condition* of the compiled variant, as Dynamo's SymInt guards do: a
comparison whose answer is not the same for every size (`s0 * 4 <= 8192`), a concrete number asked for with
int()/float(), a coarse bucket chosen for a block size (`bucket`). Conditions go to the innermost `recording()`
sink; the variant runs only for sizes where all of its conditions hold (graph/size_variants.py). Comparisons that
hold for every size are answered without a condition: dynamic sizes are >= 2 (the frontend specializes 0 and 1).

Uses of the int value inside C code (range(), slice.indices(), torch's meta kernels) see the hint without asking;
graph/size_variants.py catches any such number that reached generated code by generating it a second time at
other sizes and comparing the text. Rendering: str/repr/format of a SymInt go through the innermost
`rendering()` renderer (generated code names sizes `s0`, kernels take them as arguments); with none active they
print the hint, so a graph holding SymInts prints and runs (FX codegen) as the graph specialized to its hints.

Torch-free: jit/backends.py uses it on the path of the frame hook."""
from __future__ import annotations

import contextlib
import math
import operator
import threading
from dataclasses import dataclass

# ---- expressions: integer polynomials over atoms (symbols, floor divisions, remainders) -------------------------


@dataclass(frozen=True)
class Sym:
    name: str

    def key(self) -> str:
        return self.name

    def code(self, name_of) -> str:
        return name_of(self.name)

    def value(self, env) -> int:
        return env[self.name]

    def lower(self) -> int:
        return 2  # dynamic sizes are never 0 or 1

    def upper(self) -> int:
        return SIZE_MAX

    def symbols(self) -> set:
        return {self.name}


@dataclass(frozen=True)
class FloorDiv:
    num: "Expr"
    den: "Expr"

    def key(self) -> str:
        return f"({_paren(self.num, str)} // {_paren(self.den, str)})"

    def code(self, name_of) -> str:
        return f"({_paren(self.num, name_of)} // {_paren(self.den, name_of)})"

    def value(self, env) -> int:
        return self.num.value(env) // self.den.value(env)

    def lower(self) -> int:
        return 0  # sizes are non-negative, so are their quotients

    def upper(self) -> int:
        d = self.den.lower()
        return self.num.upper() // d if d > 0 else SIZE_MAX

    def symbols(self) -> set:
        return self.num.symbols() | self.den.symbols()


@dataclass(frozen=True)
class Mod(FloorDiv):
    def key(self) -> str:
        return f"({_paren(self.num, str)} % {_paren(self.den, str)})"

    def code(self, name_of) -> str:
        return f"({_paren(self.num, name_of)} % {_paren(self.den, name_of)})"

    def value(self, env) -> int:
        return self.num.value(env) % self.den.value(env)

    def upper(self) -> int:
        return max(self.den.upper() - 1, 0)


SIZE_MAX = 1 << 48  # no tensor dim is larger: bounds for comparisons like `s0 < sys.maxsize`


def _paren(e: "Expr", name_of) -> str:
    """e's code, parenthesized unless it is one number or one atom: `(s0 + 1) // 2`, never `s0 + 1 // 2`."""
    text = e.code(name_of)
    return text if e.const() is not None or (len(e.terms) == 1 and e.terms[0][1] == 1) else f"({text})"


class Expr:
    """sum(coefficient * product of atoms): terms is a sorted tuple of (monomial, coefficient), a monomial a
    sorted tuple of atoms (repeated for powers). Equal expressions have equal terms (canonical form)."""
    __slots__ = ("terms",)

    def __init__(self, terms: dict):
        self.terms = tuple(sorted(((m, c) for m, c in terms.items() if c != 0),
                                  key=lambda t: (len(t[0]), [a.key() for a in t[0]])))

    @staticmethod
    def number(n: int) -> "Expr":
        return Expr({(): n})

    @staticmethod
    def symbol(name: str) -> "Expr":
        return Expr({(Sym(name),): 1})

    @staticmethod
    def atom(a) -> "Expr":
        return Expr({(a,): 1})

    def __eq__(self, other):
        return isinstance(other, Expr) and self.terms == other.terms

    def __hash__(self):
        return hash(self.terms)

    def const(self) -> int | None:
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return None

    def add(self, other: "Expr", sign: int = 1) -> "Expr":
        out = dict(self.terms)
        for m, c in other.terms:
            out[m] = out.get(m, 0) + sign * c
        return Expr(out)

    def mul(self, other: "Expr") -> "Expr":
        out: dict = {}
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                m = tuple(sorted(m1 + m2, key=lambda a: a.key()))
                out[m] = out.get(m, 0) + c1 * c2
        return Expr(out)

    def scale(self, k: int) -> "Expr":
        return Expr({m: c * k for m, c in self.terms})

    def _steps_of(self, d: int) -> bool:
        """Every non-constant term is a multiple of d: self == d * q + (its constant term)."""
        return all(c % d == 0 for m, c in self.terms if m)

    def _constant_term(self) -> int:
        return dict(self.terms).get((), 0)

    def floordiv(self, den: "Expr") -> "Expr":
        d = den.const()
        if d is not None and d > 0:
            if self._steps_of(d):  # (d*q + r) // d == q + r // d, exactly
                return Expr({m: c // d for m, c in self.terms if m}).add(Expr.number(self._constant_term() // d))
            g = math.gcd(d, *(c for _, c in self.terms))
            if g > 1:  # (4 * s0 + 2) // 8 == (2 * s0 + 1) // 4
                return Expr({m: c // g for m, c in self.terms}).floordiv(Expr.number(d // g))
        q = self._divide(den)
        if q is not None:
            return q
        return Expr.atom(FloorDiv(self, den))

    def mod(self, den: "Expr") -> "Expr":
        d, n = den.const(), self.const()
        if d is not None and d > 0 and self._steps_of(d):
            return Expr.number(self._constant_term() % d)
        if n is not None and d is None and -den.lower() <= n < 0:
            return den.add(Expr.number(n))  # -1 % T == T - 1 for T >= 1
        if n is not None and d is None and 0 <= n < den.lower():
            return self
        if self._divide(den) is not None:
            return Expr.number(0)
        return Expr.atom(Mod(self, den))

    def _divide(self, den: "Expr") -> "Expr | None":
        """self / den when it divides exactly as polynomials (4*s0*s1 / s0), else None."""
        if len(den.terms) != 1 or not den.terms[0][0]:  # a sum or a number: only self == k * den divides
            if den.terms and self.terms and len(self.terms) == len(den.terms):
                (m0, c0), (n0, e0) = self.terms[0], den.terms[0]
                if m0 == n0 and c0 % e0 == 0 and self == den.scale(c0 // e0):
                    return Expr.number(c0 // e0)
            return None
        (dm, dc), = den.terms
        out = {}
        for m, c in self.terms:
            rest = list(m)
            for a in dm:
                if a not in rest:
                    return None
                rest.remove(a)
            if c % dc:
                return None
            out[tuple(rest)] = c // dc
        return Expr(out)

    def lower(self) -> int:
        """A bound every size satisfies (symbols in [2, SIZE_MAX], quotients and remainders >= 0)."""
        return sum(c * math.prod(a.lower() if c > 0 else a.upper() for a in m) for m, c in self.terms)

    def upper(self) -> int:
        return sum(c * math.prod(a.upper() if c > 0 else a.lower() for a in m) for m, c in self.terms)

    def value(self, env: dict) -> int:
        total = 0
        for m, c in self.terms:
            v = c
            for a in m:
                v *= a.value(env)
            total += v
        return total

    def symbols(self) -> set:
        out = set()
        for m, _ in self.terms:
            for a in m:
                out |= a.symbols()
        return out

    def code(self, name_of) -> str:
        """Python source; `name_of(symbol name)` spells a symbol."""
        if not self.terms:
            return "0"
        parts = []
        for i, (m, c) in enumerate(sorted(self.terms, key=lambda t: not t[0])):  # the constant last
            factors = [a.code(name_of) for a in m]
            if not factors:
                text = str(abs(c))
            elif abs(c) == 1:
                text = " * ".join(factors)
            else:
                text = " * ".join(factors + [str(abs(c))])
            sign = "-" if c < 0 else "+"
            parts.append(("-" if sign == "-" else "") + text if i == 0 else f" {sign} {text}")
        return "".join(parts)

    def __repr__(self):
        return f"Expr({self.code(str)})"


# ---- conditions and the sink they go to ---------------------------------------------------------------------
_COMPARE = {"<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt,
            ">=": operator.ge}


@dataclass(frozen=True)
class Condition:
    """`lhs op rhs` evaluates to `holds` for every size the variant serves."""
    lhs: Expr
    op: str
    rhs: Expr
    holds: bool
    why: str = ""

    def code(self, name_of=str) -> str:
        text = f"{self.lhs.code(name_of)} {self.op} {self.rhs.code(name_of)}"
        return text if self.holds else f"not ({text})"

    def check(self, env: dict) -> bool:
        return _COMPARE[self.op](self.lhs.value(env), self.rhs.value(env)) == self.holds

    def key(self) -> tuple:
        return (self.lhs, self.op, self.rhs, self.holds)


_state = threading.local()


def _sinks() -> list:
    sinks = getattr(_state, "sinks", None)
    if sinks is None:
        sinks = _state.sinks = []
    return sinks


class Conditions(list):
    """A recording sink: the conditions a compile made, in order, without duplicates."""

    def add(self, c: Condition) -> None:
        if all(c.key() != d.key() for d in self):
            self.append(c)


@contextlib.contextmanager
def recording(into: "Conditions | None" = None):
    sink = Conditions() if into is None else into
    _sinks().append(sink)
    try:
        yield sink
    finally:
        _sinks().pop()


def _record(c: Condition) -> None:
    sinks = _sinks()
    if sinks:
        sinks[-1].add(c)


def decide(lhs, op: str, rhs, why: str = "") -> bool:
    """lhs op rhs for ints and SymInts: answered statically when it holds (or fails) for every size, else
    answered at the hints and recorded as a condition."""
    a, b = as_expr(lhs), as_expr(rhs)
    result = _COMPARE[op](hint(lhs), hint(rhs))
    diff = a.add(b, -1)
    known = diff.const()
    if known is not None:
        return _COMPARE[op](known, 0)
    low, high = diff.lower(), diff.upper()  # low <= a - b <= high for every size
    static = {"<": True if high < 0 else False if low >= 0 else None,
              "<=": True if high <= 0 else False if low > 0 else None,
              ">": True if low > 0 else False if high <= 0 else None,
              ">=": True if low >= 0 else False if high < 0 else None,
              "==": False if low > 0 or high < 0 else None,
              "!=": True if low > 0 or high < 0 else None}[op]
    if static is True or static is False:
        if static is not result:  # the bounds contradict the hints: a bug in the bounds, never silently
            raise AssertionError(f"size bound contradicts the hint: {a.code(str)} {op} {b.code(str)}")
        return result
    if op in ("==", "!=") and a.const() is not None:  # one spelling per equality: `s0 == 3`, not `3 == s0`
        a, b = b, a
    _record(Condition(a, op, b, result, why))
    return result


def concrete(x, why: str = "the value itself is needed") -> int:
    """The number itself; for a SymInt, pinned by an equality condition."""
    if isinstance(x, SymInt):
        decide(x, "==", x.hint, why)
        return x.hint
    return x


def bucket(x, why: str = "a size-dependent choice") -> int:
    """The power of two >= x, for choices (block sizes, loop shapes) that may stay the same over a range of
    sizes: recorded as `2**(k-1) < x <= 2**k`, so a growing size compiles O(log n) variants, not one per size."""
    h = hint(x)
    top = 1 << max(h - 1, 0).bit_length()
    if isinstance(x, SymInt):
        decide(x, "<=", top, why)
        if top > 1:
            decide(x, ">", top // 2, why)
    return top


# ---- rendering ----------------------------------------------------------------------------------------------
def _renderers() -> list:
    r = getattr(_state, "renderers", None)
    if r is None:
        r = _state.renderers = []
    return r


@contextlib.contextmanager
def rendering(renderer):
    """Inside, str()/repr()/format() of a SymInt is renderer(sym) (code for generated sources)."""
    _renderers().append(renderer)
    try:
        yield renderer
    finally:
        _renderers().pop()


class NameRenderer:
    """Renders SymInts as Python over symbol names (`s0 * 64`) and remembers which symbols it named."""

    def __init__(self, name_of=None):
        self.name_of, self.used = name_of or str, set()

    def __call__(self, s: "SymInt") -> str:
        self.used |= s.expr.symbols()
        return s.expr.code(self.name_of)

    def take(self) -> set:
        """The names used since the last take(), spelled by name_of."""
        used, self.used = self.used, set()
        return {self.name_of(n) for n in used}


def active_renderer():
    r = _renderers()
    return r[-1] if r else None


def text(obj) -> str:
    """str(obj) with its SymInts written as expressions (`view(x, [s0 * 4, 64])`): graph dumps, cache keys."""
    with rendering(NameRenderer()):
        return str(obj)


def _render(s: "SymInt") -> str:
    r = _renderers()
    return r[-1](s) if r else str(s.hint)


# ---- the int-like value -------------------------------------------------------------------------------------
def as_expr(x) -> Expr:
    return x.expr if isinstance(x, SymInt) else Expr.number(int(x))


def hint(x) -> int:
    return x.hint if isinstance(x, SymInt) else x


def make(expr: Expr, value: int):
    """A SymInt, or the plain int when the expression is a constant."""
    c = expr.const()
    if c is not None:
        if c != value:
            raise AssertionError(f"constant size {c} does not match its hint {value}")
        return c
    return SymInt(expr, value)


def is_symbolic(value) -> bool:
    """Whether a structure of args (lists, tuples, dicts, slices) holds a SymInt."""
    if isinstance(value, SymInt):
        return True
    if isinstance(value, (list, tuple)):
        return any(is_symbolic(v) for v in value)
    if isinstance(value, dict):
        return any(is_symbolic(v) for v in value.values())
    if isinstance(value, slice):
        return is_symbolic((value.start, value.stop, value.step))
    return False


def _int_like(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) or isinstance(x, SymInt)


def _arith(fn, expr_fn):
    def method(self, other):
        if isinstance(other, bool) or not isinstance(other, int):
            if isinstance(other, float):
                return fn(concrete(self), other)
            return NotImplemented
        return make(expr_fn(self.expr, as_expr(other)), fn(self.hint, hint(other)))
    return method


def _rarith(fn, expr_fn):
    def method(self, other):
        if isinstance(other, bool) or not isinstance(other, int):
            if isinstance(other, float):
                return fn(other, concrete(self))
            return NotImplemented
        return make(expr_fn(as_expr(other), self.expr), fn(hint(other), self.hint))
    return method


def _compare(op):
    def method(self, other):
        if isinstance(other, bool) or not isinstance(other, int):
            if isinstance(other, float):
                return _COMPARE[op](concrete(self), other)
            return NotImplemented
        return decide(self, op, other)
    return method


class SymInt(int):
    """An int (its hint) that is also `expr` over the graph's dynamic sizes. See the module docstring."""

    def __new__(cls, expr: Expr, value: int):
        self = int.__new__(cls, value)
        self.expr = expr
        self.hint = value
        return self

    __add__ = _arith(operator.add, lambda a, b: a.add(b))
    __radd__ = _rarith(operator.add, lambda a, b: a.add(b))
    __sub__ = _arith(operator.sub, lambda a, b: a.add(b, -1))
    __rsub__ = _rarith(operator.sub, lambda a, b: a.add(b, -1))
    __mul__ = _arith(operator.mul, lambda a, b: a.mul(b))
    __rmul__ = _rarith(operator.mul, lambda a, b: a.mul(b))
    __floordiv__ = _arith(operator.floordiv, lambda a, b: a.floordiv(b))
    __rfloordiv__ = _rarith(operator.floordiv, lambda a, b: a.floordiv(b))
    __mod__ = _arith(operator.mod, lambda a, b: a.mod(b))
    __rmod__ = _rarith(operator.mod, lambda a, b: a.mod(b))
    __lt__, __le__, __gt__, __ge__ = _compare("<"), _compare("<="), _compare(">"), _compare(">=")
    __eq__, __ne__ = _compare("=="), _compare("!=")

    def __neg__(self):
        return make(self.expr.scale(-1), -self.hint)

    def __pos__(self):
        return self

    def __abs__(self):
        return self if decide(self, ">=", 0) else -self

    def __pow__(self, k, mod=None):
        if mod is None and type(k) is int and k >= 0:
            out = 1
            for _ in range(k):
                out = out * self
            return out
        return pow(concrete(self), k, mod)

    def __truediv__(self, other):
        return concrete(self) / (concrete(other) if isinstance(other, SymInt) else other)

    def __rtruediv__(self, other):
        return other / concrete(self)

    def __bool__(self):
        return decide(self, "!=", 0)

    def __int__(self):
        return concrete(self)

    def __index__(self):
        return concrete(self)

    def __float__(self):
        return float(concrete(self))

    def __trunc__(self):
        return self

    __floor__ = __ceil__ = __trunc__

    def __round__(self, ndigits=None):
        return self

    def __hash__(self):
        return hash(self.hint)

    def __repr__(self):
        return _render(self)

    __str__ = __repr__

    def __format__(self, spec):
        return _render(self) if not spec else format(concrete(self), spec)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (SymInt, (self.expr, self.hint))

    for _name in ("__and__", "__or__", "__xor__", "__lshift__", "__rshift__", "__rand__", "__ror__", "__rxor__",
                  "__rlshift__", "__rrshift__", "__invert__", "__divmod__", "__rdivmod__", "__rpow__"):
        locals()[_name] = (lambda name: lambda self, *a: getattr(int, name)(concrete(self), *(
            concrete(x) for x in a)))(_name)
    del _name

"""Fused kernels of the NumPy backend as C loops: one function per kernel, compiled by the system's C compiler
(runtime/c_modules.py) into an extension module the generated NumPy module calls.

A NumPy kernel is a chain of whole-array calls: n ops make n passes over memory and pay NumPy's per-call cost n
times; the same tree as one loop nest reads its inputs once, keeps every intermediate in registers and is
vectorized by the compiler. The tree is the loop-level IR of inductor/ir.py, evaluated at one coordinate per
dim of each node's shape, exactly as the Triton generator does (views only rewrite coordinates: the index
arithmetic is shared, inductor/triton/index.py); what differs is the loops: the output's dims are nested loops,
a reduction is a loop nest of its own, placed at the outermost loop whose coordinates it reads (the max of a
softmax row is computed once per row, not once per element).

Every value is a C local declared at the deepest loop whose variables it reads (`Level`): a subexpression read
by several ops is computed once, and work that does not vary along the inner loops is not repeated there.

Eligible kernels (`eligible`): pointwise and reduction trees over float32/float64, integers and bool, with static
shapes and ops whose C spelling gives torch's answer (NaN propagation of max/min, relu(-0.0), sign(nan), round
half to even, torch's floor division...); half types (rounded after every op), integer division (raises on a
zero divisor), indexed loads and stores stay NumPy code. Arrays arrive through the buffer protocol, their strides
read per call, so the same function serves any layout NumPy hands it; the output is a fresh C-contiguous array."""
from __future__ import annotations

import functools
import math
import os
import re

import torch

from ..runtime import c_modules
from ..config import config
from ..ir import Const, Kernel, Load, Op, Reduce, View, ViewKind, contiguous_strides, static_shape, walk
from ..triton.index import ZERO, Ix, broadcast, through_view

CTYPES = {torch.float32: "float", torch.float64: "double", torch.int64: "int64_t", torch.int32: "int32_t",
          torch.int16: "int16_t", torch.int8: "int8_t", torch.uint8: "uint8_t", torch.bool: "bool"}
FLOATS = (torch.float32, torch.float64)

# unary float functions: (float32 spelling, float64 spelling); the fj_* ones are c/mathlib.h's vectorizable forms
MATH = {"exp": ("fj_expf", "exp"), "log": ("fj_logf", "log"), "log1p": ("fj_log1pf", "log1p"),
        "expm1": ("fj_expm1f", "expm1"), "tanh": ("fj_tanhf", "tanh"), "erf": ("fj_erff", "erf"),
        # libm's sin and cos (not vectorized): mathlib's reduce the argument exactly only up to a bound
        "sin": ("sinf", "sin"), "cos": ("cosf", "cos"), "sigmoid": ("fj_sigmoidf", "fj_sigmoid"),
        "gelu": ("fj_gelu_erff", "fj_gelu_erf"), "gelu_tanh": ("fj_gelu_tanhf", "fj_gelu_tanh"),
        "sqrt": ("sqrtf", "sqrt"), "floor": ("floorf", "floor"), "ceil": ("ceilf", "ceil"),
        "trunc": ("truncf", "trunc"), "round": ("rintf", "rint"), "abs": ("fabsf", "fabs")}
ARITH = {"add": "+", "sub": "-", "mul": "*"}
COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
BITWISE = {"bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^"}
LOGICAL = {"logical_and": "&&", "logical_or": "||", "logical_xor": "!="}
FLOAT_ONLY = {"div", "truncdiv", "floordiv", "remainder", "reciprocal", "rsqrt", "atan2", "pow"} | set(MATH) - {"abs"}
INT_OK = set(ARITH) | set(COMPARE) | set(BITWISE) | set(LOGICAL) | {
    "neg", "abs", "maximum", "minimum", "where", "relu", "sign", "cast", "full", "arange", "cat", "bitwise_not",
    "logical_not", "isnan"}
POW = {2: "{a} * {a}", 3: "{a} * {a} * {a}", 0.5: "{sqrt}({a})", -0.5: "{one} / {sqrt}({a})", -1: "{one} / {a}",
       1: "{a}", -2: "{one} / ({a} * {a})"}
REDUCTIONS = ("sum", "mean", "prod", "amax", "amin", "any", "all")
# a kernel smaller than this stays NumPy code unless config says always (a compiler run costs ~0.2 s a graph)
MIN_ELEMENTS = 4096


# ---- which kernels --------------------------------------------------------------------------------------------
def eligible(kernel) -> bool:
    """`kernel` can be written as a C loop nest with eager's results (see the module doc)."""
    if not isinstance(kernel, Kernel) or kernel.is_view or kernel.scatter is not None or kernel.side_outputs:
        return False
    layout = kernel.out.layout
    if layout.dtype not in CTYPES or not static_shape(layout.shape) or 0 in layout.shape:
        return False
    return all(_node_ok(n) for n in walk(kernel.expr))


def _node_ok(n) -> bool:
    if isinstance(n, Const):
        return type(n.value) in (int, float, bool)
    if not static_shape(n.shape) or n.dtype not in CTYPES or 0 in n.shape:
        return False
    if isinstance(n, Load):
        return True
    if isinstance(n, View):
        return True
    if isinstance(n, Reduce):
        return n.kind in REDUCTIONS and static_shape(n.arg.shape) and 0 not in n.arg.shape
    if isinstance(n, Op):
        cd = n.compute_dtype
        if cd not in CTYPES or any(not isinstance(a, Const) and a.dtype not in CTYPES for a in n.args):
            return False
        if n.name == "cast":  # a float converted to a small integer type wraps differently per kernel: NumPy's
            return not (n.args[0].dtype in FLOATS and n.dtype in (torch.int8, torch.uint8, torch.int16))
        if n.name in FLOAT_ONLY:
            return cd in FLOATS
        return n.name in INT_OK
    return False


# ---- loop levels ----------------------------------------------------------------------------------------------
class Level:
    """The statements of one loop body (or the function body): `lines` run before the nested `child` loop."""

    def __init__(self, parent: "Level | None", header: str = "", var: str | None = None, size: int = 0):
        self.parent, self.header, self.lines, self.child, self.var, self.size = parent, header, [], None, var, size
        self.depth = 0 if parent is None else parent.depth + 1
        self.names: dict = {}  # code -> the local holding it (common subexpressions)

    def chain(self):
        level = self
        while level is not None:
            yield level
            level = level.parent

    def render(self, indent: str) -> list:
        out = []
        for line in self.lines:
            out += [indent + line] if isinstance(line, str) else [indent + sub for sub in line]
        if self.child is not None:
            out += self.child.rendered(indent)
        return out

    def rendered(self, indent: str) -> list:
        """This level as a loop: its header, its body one indent deeper, the closing brace."""
        return [indent + h for h in self.header.split("\n")] + self.render(indent + "    ") + [indent + "}"]


# a name in C code (not the x or p inside a hex float literal such as 0x1.8p+1)
_IDENT = re.compile(r"(?<![0-9A-Za-z_.])[A-Za-z_][A-Za-z_0-9]*")


class Writer:
    """One kernel's C function body. `value(e, coords)` returns C code for e at coordinates `coords` (one Ix per
    dim of e.shape), declaring locals at the deepest level whose names they read."""

    def __init__(self, root: Level):
        self.root = self.level = root
        self.home: dict = {}  # local name -> the Level declaring it
        self.vars: dict = {}  # local name -> the loop variables its value varies with
        self.temps: list = []  # arrays malloc'ed for reductions computed ahead (`materialize`), freed at the end
        self.arrays: dict = {}  # id(Reduce) -> its array
        self.count = 0
        self.decodes = []  # (triton/index.py records reshape decodes for its address search; unused here)
        self.memo: dict = {}  # (id(e), coordinate codes) -> (Level, local)
        # buffer name -> (argument index, dtype, ndim, shape); in C it is in<index>, its strides s<index>_<dim>: buffer
        # names come from the user's variables, which may be C keywords
        self.buffers: dict = {}

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def place(self, code: str) -> Level:
        """The deepest level of the current chain declaring a name `code` reads (the root if none)."""
        best = self.root
        for name in _IDENT.findall(code):
            level = self.home.get(name)
            if level is not None and level.depth > best.depth:
                best = level
        return best

    def declare(self, ctype: str, code: str, prefix: str = "t") -> str:
        level = self.place(code)
        name = level.names.get((ctype, code))
        if name is None:
            name = level.names[(ctype, code)] = self.fresh(prefix)
            level.lines.append(f"const {ctype} {name} = {code};")
            self.home[name] = level
            self.vars[name] = self.varies(code)
        return name

    def loop(self, parent: Level, var: str, size: int, attach: bool = True) -> Level:
        """A loop over `var` nested in `parent` (its `child` when `attach`: else rendered by whoever made it)."""
        level = Level(parent, f"for (int64_t {var} = 0; {var} < {size}; {var}++) {{", var, size)
        if attach:
            parent.child = level
        self.home[var], self.vars[var] = level, frozenset([var])
        return level

    def varies(self, code: str) -> frozenset:
        """The loop variables the value of `code` varies with."""
        return frozenset().union(*[self.vars.get(n, frozenset()) for n in _IDENT.findall(code)])

    def let(self, code: str, prefix: str = "i") -> str:
        """An index computation (triton/index.py's interface; its `//` is C's `/` on the non-negative indices)."""
        return self.declare("int64_t", code.replace("//", "/"), prefix)

    def _visible(self, level: Level) -> bool:
        return any(level is lv for lv in self.level.chain())

    # -- values --------------------------------------------------------------------------------------------------
    def value(self, e, coords: tuple) -> str:
        key = (id(e), tuple(c.code for c in coords))
        hit = self.memo.get(key)
        if hit is not None and self._visible(hit[0]):
            return hit[1]
        code = self._value(e, coords)
        if not isinstance(e, (Const, View)) and _IDENT.fullmatch(code) is None:
            code = self.declare(CTYPES[e.dtype], code)
        if _IDENT.fullmatch(code) and code in self.home:
            self.memo[key] = (self.home[code], code)
        return code

    def _value(self, e, coords: tuple) -> str:
        if isinstance(e, Load):
            k = self.buffers.setdefault(e.buf, (len(self.buffers) + 1, e.dtype, len(e.shape), tuple(e.shape)))[0]
            terms = [f"{c.code} * s{k}_{d}" for d, (c, n) in enumerate(zip(coords, e.shape))
                     if n != 1 and c.code != "0"]
            return f"in{k}[{' + '.join(terms) or '0'}]"
        if isinstance(e, View):
            if e.kind == ViewKind.IDENTITY:
                return self.value(e.arg, coords)
            return self.value(e.arg, through_view(self, e.kind, e.params, e.arg.shape, coords))
        if isinstance(e, Reduce):
            return self.reduce(e, coords)
        if isinstance(e, Op):
            return self.op(e, coords)
        raise TypeError(f"no C for {e!r}")

    def operand(self, a, e: Op, coords: tuple, dtype) -> str:
        """Operand `a` of op `e` at e's coordinates, converted to `dtype`."""
        if isinstance(a, Const):
            return literal(a.value, dtype)
        return convert(self.value(a, broadcast(coords, tuple(e.shape), tuple(a.shape))), a.dtype, dtype)

    def op(self, e: Op, coords: tuple) -> str:
        cd, name = e.compute_dtype, e.name
        if name == "full":
            return literal(e.args[0].value, e.dtype)
        if name == "arange":
            start, _end, step = e.params
            i = coords[0].code if coords else "0"
            if e.dtype in FLOATS:  # torch computes start + i * step in double, then rounds
                return convert(f"({literal(start, torch.float64)} + (double){i} * {literal(step, torch.float64)})",
                               torch.float64, e.dtype)
            return f"({CTYPES[e.dtype]})({start} + {i} * {step})"
        if name == "cat":
            return self.cat(e, coords)
        if name == "where":
            c = self.operand(e.args[0], e, coords, torch.bool)
            a, b = (self.operand(x, e, coords, cd) for x in e.args[1:])
            return convert(f"({c} ? {a} : {b})", cd, e.dtype)
        args = [self.operand(a, e, coords, torch.bool if name in LOGICAL or name == "logical_not" else cd)
                for a in e.args]
        result, rtype = spell(name, args, cd, e), cd
        if name in COMPARE or name in LOGICAL or name in ("logical_not", "isnan"):
            rtype = torch.bool
        return convert(result, rtype, e.dtype)

    def cat(self, e: Op, coords: tuple) -> str:
        """Each part read at the coordinate clamped into its own range (every part's load runs: none may read
        outside its buffer), the one whose range holds the coordinate selected."""
        dim = e.params[0]
        c = coords[dim].code
        parts, offset = [], 0
        for a in e.args:
            n = a.shape[dim]
            local = self.let(f"({c} < {offset} ? 0 : ({c} - {offset} >= {n} ? {n - 1} : {c} - {offset}))")
            sub = tuple(coords[:dim]) + (Ix(local),) + tuple(coords[dim + 1:])
            parts.append((offset + n, convert(self.value(a, sub), a.dtype, e.dtype)))
            offset += n
        code = parts[-1][1]
        for end, part in reversed(parts[:-1]):
            code = f"({c} < {end} ? {part} : {code})"
        return code

    def reduce(self, e: Reduce, coords: tuple) -> str:
        """The reduction as a loop nest of its own, written at the deepest level its coordinates vary in."""
        arg_shape = tuple(e.arg.shape)
        axes = tuple(range(len(arg_shape))) if e.axes is None else tuple(e.axes)
        target = self.root
        for c in coords:
            level = self.place(c.code)
            target = level if level.depth > target.depth else target
        varies = frozenset().union(*[self.varies(c.code) for c in coords])
        if arg_shape and arg_shape[-1] > 1 and len(arg_shape) - 1 not in axes and \
                any(arg_shape[d] > 1 for d in axes):
            # reduced dims outside a kept innermost one (a column sum): summed a row at a time into an array,
            # along rows (contiguous, vectorized), not down each column in turn
            return self.columns(e, coords, axes)
        if any(lv.var is not None and lv.var not in varies for lv in target.chain()):
            # written at `target`, it would run again for each value of an enclosing loop it does not vary
            # with (a column sum inside a loop over rows): computed ahead into an array instead
            return self.materialize(e, coords)
        loops, arg_coords, kept = [], [], iter(coords)
        for d, n in enumerate(arg_shape):
            if d not in axes:
                arg_coords.append(next(kept))
                continue
            if e.keepdim:
                next(kept)
            if n == 1:
                arg_coords.append(ZERO)
                continue
            var = self.fresh("r")
            loops.append(self.loop(loops[-1] if loops else target, var, n, attach=bool(loops)))
            arg_coords.append(Ix(var))
        inner = loops[-1] if loops else target
        ctype, floats, kind = CTYPES[e.dtype], e.dtype in FLOATS, e.kind
        wide = _accumulator(e)
        acc = self.fresh("acc")
        nan = self.fresh("nan") if kind in ("amax", "amin") and floats else None
        target.lines.append(f"{wide} {acc} = {_identity(kind, ctype, floats)};")  # before the value's own lines: it may have none
        if nan:
            target.lines.append(f"bool {nan} = 0;")
        saved, self.level = self.level, inner
        v = convert(self.value(e.arg, tuple(arg_coords)), e.arg.dtype, e.dtype)
        self.level = saved
        if kind in ("amax", "amin"):
            inner.lines.append(f"{acc} = {v} {'>' if kind == 'amax' else '<'} {acc} ? {v} : {acc};")
            clause = f"{'max' if kind == 'amax' else 'min'}:{acc}"
            if nan:  # NaN wins, as in torch: counted apart (a vector max drops NaNs)
                inner.lines.append(f"{nan} |= {v} != {v};")
                clause += f") reduction(|:{nan}"
        else:
            op = FOLDS[kind]
            inner.lines.append(f"{acc} {op}= {v};")
            clause = f"{op}:{acc}"
        if loops:
            loops[-1].header = f"#pragma omp simd reduction({clause})\n" + loops[-1].header
            target.lines.append(loops[0].rendered(""))
        if nan:
            target.lines.append(f"if ({nan}) {acc} = NAN;")
        if kind == "mean":
            target.lines.append(f"{acc} /= ({wide}){math.prod(arg_shape[d] for d in axes)};")
        self.home[acc], self.vars[acc] = target, varies
        if wide != ctype:
            rounded = self.fresh("acc")
            target.lines.append(f"const {ctype} {rounded} = ({ctype}){acc};")
            self.home[rounded], self.vars[rounded] = target, varies
            return rounded
        return acc

    def temp_array(self, ctype: str, count: int) -> str:
        name = self.fresh("m")
        self.temps.append(name)
        self.root.lines += [f"{ctype}* {name} = ({ctype}*)malloc({count} * sizeof({ctype}));",
                            f"if (!{name}) {{ fj_free_all(temps, {len(self.temps) - 1}); fj_release(v, nv); "
                            f"return PyErr_NoMemory(); }}",
                            f"temps[{len(self.temps) - 1}] = {name};"]
        return name

    def columns(self, e: Reduce, coords: tuple, axes: tuple) -> str:
        """`e`, whose reduced dims are outside a kept innermost dim, computed ahead into an array over the kept
        dims: for each reduced index, a vectorized pass folds one row into the array."""
        arg_shape = tuple(e.arg.shape)
        kept = [d for d in range(len(arg_shape)) if d not in axes]
        kept_shape = tuple(arg_shape[d] for d in kept)
        name = self.arrays.get(id(e))
        if name is None:
            ctype, floats, kind = _accumulator(e), e.dtype in FLOATS, e.kind
            count = math.prod(kept_shape)
            name = self.arrays[id(e)] = self.temp_array(ctype, count)
            self.root.lines.append(f"for (int64_t i = 0; i < {count}; i++) {name}[i] = "
                                   f"{_identity(kind, ctype, floats)};")
            loops, own = [], [None] * len(arg_shape)
            for d in list(axes) + kept:  # the reduced dims outermost, the kept ones inside
                if arg_shape[d] == 1:
                    own[d] = ZERO
                    continue
                var = self.fresh("c")
                loops.append(self.loop(loops[-1] if loops else self.root, var, arg_shape[d], attach=bool(loops)))
                own[d] = Ix(var)
            saved, self.level = self.level, loops[-1]
            v = convert(self.value(e.arg, tuple(own)), e.arg.dtype, e.dtype)
            cell = f"{name}[{_offset([own[d] for d in kept], kept_shape)}]"
            if kind in ("amax", "amin"):
                pick = f"{v} {'>' if kind == 'amax' else '<'} {cell}" + (f" || {v} != {v}" if floats else "")
                keep = f"{cell} != {cell} || !({pick})" if floats else f"!({pick})"
                self.level.lines.append(f"{cell} = ({keep}) ? {cell} : {v};")  # NaN, once met, stays
            else:
                self.level.lines.append(f"{cell} {FOLDS[kind]}= {v};")
            self.level = saved
            self.root.lines.append(loops[0].rendered(""))
            if kind == "mean":
                self.root.lines.append(f"for (int64_t i = 0; i < {count}; i++) {name}[i] /= "
                                       f"({ctype}){math.prod(arg_shape[d] for d in axes)};")
        at = [coords[d] for d in kept] if e.keepdim else list(coords)
        return convert(f"{name}[{_offset(at, kept_shape)}]", torch.float64, e.dtype) \
            if _accumulator(e) != CTYPES[e.dtype] else f"{name}[{_offset(at, kept_shape)}]"

    def materialize(self, e: Reduce, coords: tuple) -> str:
        """`e` computed over its whole shape into an array before the kernel's loops, read at `coords`."""
        name = self.arrays.get(id(e))
        if name is None:
            ctype, count = CTYPES[e.dtype], math.prod(e.shape)
            name = self.arrays[id(e)] = self.temp_array(ctype, count)
            loops, own = [], []
            for n in e.shape:
                if n == 1:
                    own.append(ZERO)
                    continue
                var = self.fresh("m")
                loops.append(self.loop(loops[-1] if loops else self.root, var, n, attach=bool(loops)))
                own.append(Ix(var))
            saved, self.level = self.level, loops[-1] if loops else self.root
            value = self.reduce(e, tuple(own))
            self.level.lines.append(f"{name}[{_offset(own, e.shape)}] = {value};")
            self.level = saved
            if loops:
                self.root.lines.append(loops[0].rendered(""))
        return f"{name}[{_offset(coords, e.shape)}]"


FOLDS = {"sum": "+", "mean": "+", "prod": "*", "any": "|", "all": "&"}  # (max and min: selects, NaN kept)


def _identity(kind: str, ctype: str, floats: bool) -> str:
    """What a reduction's accumulator starts from."""
    return {"sum": "0", "mean": "0", "prod": "1", "any": "0", "all": "1",
            "amax": "-INFINITY" if floats else f"FJ_LOWEST({ctype})",
            "amin": "INFINITY" if floats else f"FJ_HIGHEST({ctype})"}[kind]


def _accumulator(e: Reduce) -> str:
    """The C type a reduction accumulates in: float32 sums and products in double (the summation order differs
    from torch's anyway; in double its rounding stays far below float32's, where a float32 sum of a row with
    cancellation was 5e-5 off eager's), everything else in its own type."""
    return "double" if e.dtype == torch.float32 and e.kind in ("sum", "mean", "prod") else CTYPES[e.dtype]


def _offset(coords, shape) -> str:
    """The element at `coords` of a C-contiguous array of `shape`."""
    strides = contiguous_strides(shape)
    return " + ".join(f"{c.code} * {s}" for c, s, n in zip(coords, strides, shape) if n != 1 and c.code != "0") \
        or "0"


# ---- spellings ------------------------------------------------------------------------------------------------
def literal(value, dtype) -> str:
    """A Python number as a C constant of `dtype` (torch casts a wrapped number to the op's dtype)."""
    ctype = CTYPES[dtype]
    if dtype == torch.bool:
        return "1" if value else "0"
    if dtype in FLOATS:
        value = float(value)
        if value != value:
            return f"(({ctype})NAN)"
        if value in (math.inf, -math.inf):
            return f"(({ctype}){'-' if value < 0 else ''}INFINITY)"
        return f"(({ctype}){value.hex()})"
    if isinstance(value, float):
        value = int(value)
    bits = torch.iinfo(dtype).bits
    value = int(value) % (1 << bits)
    if dtype.is_signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return f"(({ctype}){value}LL)" if value != -(1 << 63) else f"(({ctype})INT64_MIN)"


def convert(code: str, src, dst) -> str:
    if src == dst or CTYPES[src] == CTYPES[dst]:
        return code
    if dst == torch.bool:
        return f"({code} != 0)"
    return f"(({CTYPES[dst]})({code}))"


def spell(name: str, a: list, cd, e: Op) -> str:
    f32 = cd == torch.float32
    one = "1.0f" if f32 else "1.0"
    if name in ARITH:
        return f"({a[0]} {ARITH[name]} {a[1]})"
    if name in COMPARE:
        return f"({a[0]} {COMPARE[name]} {a[1]})"
    if name in BITWISE:
        return f"({a[0]} {BITWISE[name]} {a[1]})"
    if name in LOGICAL:
        return f"({a[0]} {LOGICAL[name]} {a[1]})"
    if name == "logical_not":
        return f"(!{a[0]})"
    if name == "bitwise_not":
        return f"(!{a[0]})" if cd == torch.bool else f"(~{a[0]})"
    if name == "isnan":
        return f"({a[0]} != {a[0]})"
    if name == "neg":
        return f"(-{a[0]})"
    if name == "abs" and cd not in FLOATS:
        return f"({a[0]} < 0 ? -{a[0]} : {a[0]})"
    if name in ("gelu", "gelu_tanh") and f32:
        return _gelu32(name, a[0])
    if name in MATH:
        return f"{MATH[name][0 if f32 else 1]}({a[0]})"
    if name == "div":
        return f"({a[0]} / {a[1]})"
    if name == "reciprocal":
        return f"({one} / {a[0]})"
    if name == "rsqrt":
        return f"({one} / {'sqrtf' if f32 else 'sqrt'}({a[0]}))"
    if name == "relu":  # torch: x < 0 ? 0 : x, so relu(-0.0) is -0.0 and NaN passes
        return f"({a[0]} < 0 ? 0 : {a[0]})"
    if name in ("maximum", "minimum"):  # NaN from either side wins; equal values give the first operand
        cmp = ">=" if name == "maximum" else "<="
        pick = f"({a[0]} {cmp} {a[1]} ? {a[0]} : {a[1]})"
        return f"({a[0]} != {a[0]} ? {a[0]} : ({a[1]} != {a[1]} ? {a[1]} : {pick}))" if cd in FLOATS else pick
    if name == "sign":  # sign(nan) and sign(-0.0) are 0
        return f"(({CTYPES[cd]})(({a[0]} > 0) - ({a[0]} < 0)))"
    if name == "cast":
        return a[0]
    if name == "atan2":
        return f"{'atan2f' if f32 else 'atan2'}({a[0]}, {a[1]})"
    if name == "truncdiv":
        return f"{'truncf' if f32 else 'trunc'}({a[0]} / {a[1]})"
    if name == "remainder":  # fmod, plus b where the signs differ (a zero keeps fmod's sign)
        return f"{'fj_remainderf' if f32 else 'fj_remainder'}({a[0]}, {a[1]})"
    if name == "floordiv":
        return f"{'fj_floordivf' if f32 else 'fj_floordiv'}({a[0]}, {a[1]})"
    if name == "pow":
        exponent = e.args[1].value if isinstance(e.args[1], Const) and type(e.args[1].value) in (int, float) \
            else None
        if exponent in POW:
            return "(" + POW[exponent].format(a=a[0], one=one, sqrt="sqrtf" if f32 else "sqrt") + ")"
        return f"{'powf' if f32 else 'pow'}({a[0]}, {a[1]})"
    raise ValueError(f"no C spelling for {name}")


def _gelu32(name: str, x: str) -> str:
    """mathlib's float32 gelu with torch's own values at the edges, which its CPU kernels make by the formula's
    overflows (nan at -inf; at +inf and past 2**127, nan or inf or x depending on the kernel and the version):
    probed here, once."""
    at_inf, at_big = _gelu_edges(name)
    code = f"fj__sel({x} == -INFINITY, NAN, {MATH[name][0]}({x}))"
    code = f"fj__sel({x} == INFINITY, {literal(at_inf, torch.float32)}, {code})"
    if at_big != 2.0 ** 127:
        code = f"fj__sel({x} >= 0x1p127f && {x} < INFINITY, {literal(at_big, torch.float32)}, {code})"
    return code


@functools.cache
def _gelu_edges(name: str) -> tuple:
    import torch.nn.functional as F
    values = F.gelu(torch.tensor([math.inf, 2.0 ** 127]), approximate="tanh" if name == "gelu_tanh" else "none")
    return tuple(values.tolist())


# ---- a kernel -------------------------------------------------------------------------------------------------
def kernel_function(name: str, kernel: Kernel) -> tuple:
    """(C source of a METH_FASTCALL function computing `kernel` into its first argument, the buffers it reads
    in argument order, the size of the outermost loop it can be split along or None). A splittable function
    takes two more arguments, the range of that loop to compute, and lets other Python threads run meanwhile:
    the generated module shares big kernels out to its thread pool (numpy/codegen.py)."""
    layout = kernel.out.layout
    root = Level(None)
    w = Writer(root)
    level, coords, outer = root, [], None
    for d, n in enumerate(layout.shape):
        if n == 1:
            coords.append(ZERO)
            continue
        level = w.loop(level, f"x{d}", n)
        if outer is None:
            outer = level
        coords.append(Ix(f"x{d}"))
    w.level = level
    v = convert(w.value(kernel.expr, tuple(coords)), kernel.expr.dtype, layout.dtype)
    level.lines.append(f"out[{_offset(coords, layout.shape)}] = {v};")
    # split only where a block costs what its rows cost: arrays computed ahead would be computed per block
    rows = outer.size if outer is not None and not w.temps else None
    if rows is not None:
        outer.header = outer.header.replace(f"= 0; {outer.var} < {rows};", f"= lo; {outer.var} < hi;")
    params = list(w.buffers)
    ndims = [len(layout.shape)] + [w.buffers[p][2] for p in params]
    sizes = [layout.dtype.itemsize] + [w.buffers[p][1].itemsize for p in params]
    count = len(params) + 1
    # (C's own name prefixed: a kernel named after its op, `remainder`, would be libm's function)
    lines = [f"static PyObject* k_{name}(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {{",
             f"    Py_buffer v[{count}];",
             f"    static const int ndims[] = {{{', '.join(map(str, ndims))}}}, sizes[] = {{{', '.join(map(str, sizes))}}};",
             f"    const int nv = {count};",
             f"    if (!fj_arguments(nargs, nv + {2 if rows is not None else 0})) return NULL;"]
    if rows is not None:
        lines += ["    const int64_t lo = PyLong_AsLongLong(args[nv]), hi = PyLong_AsLongLong(args[nv + 1]);",
                  f"    if (PyErr_Occurred() || !fj_range(lo, hi, {rows})) return NULL;"]
    lines += ["    if (!fj_buffers(args, v, nv, ndims, sizes)) return NULL;",
              f"    {CTYPES[layout.dtype]}* restrict out = ({CTYPES[layout.dtype]}*)v[0].buf;"]
    for p in params:
        k, dtype, ndim, _ = w.buffers[p]
        lines.append(f"    const {CTYPES[dtype]}* restrict in{k} = (const {CTYPES[dtype]}*)v[{k}].buf;")
        lines += [f"    const int64_t s{k}_{d} = v[{k}].strides[{d}] / {dtype.itemsize};" for d in range(ndim)]
    if w.temps:
        lines.append(f"    void* temps[{len(w.temps)}] = {{0}};")
    lines += ["    (void)self;"]
    body = _unit_stride_version(root.render("    "), w.buffers.values())
    if rows is not None:  # nothing in the loops touches Python objects: other threads may run meanwhile
        body = ["    Py_BEGIN_ALLOW_THREADS"] + body + ["    Py_END_ALLOW_THREADS"]
    lines += body
    if w.temps:
        lines.append(f"    fj_free_all(temps, {len(w.temps)});")
    lines += ["    fj_release(v, nv);", "    Py_RETURN_NONE;", "}"]
    return "\n".join(lines), params, rows


def _unit_stride_version(body: list, buffers) -> list:
    """The body twice: with each buffer's last stride 1 where all are (the common case: written in, so the
    compiler vectorizes along rows with plain vector loads), and as is for any other layout."""
    names = [f"s{k}_{ndim - 1}" for k, _, ndim, shape in buffers if ndim and shape[-1] != 1]
    text = "\n".join(body)
    names = [n for n in names if re.search(rf"\b{n}\b", text)]
    if not names:
        return body
    unit = re.compile(r"\b(" + "|".join(names) + r")\b")
    fast = [unit.sub("1", line) for line in body]
    return ([f"    if ({' && '.join(f'{n} == 1' for n in names)}) {{"] + ["    " + line for line in fast] +
            ["    } else {"] + ["    " + line for line in body] + ["    }"])


def module_source(functions: list) -> str:
    """The extension module's source for [(name, function source)]: the runtime header (c/runtime.h, with the
    math of c/mathlib.h), the functions, the method table. `@NAME@` stands for the module's name, which
    runtime/c_modules.py derives from a hash of this text."""
    table = [f'    {{"{name}", (PyCFunction)(void (*)(void))k_{name}, METH_FASTCALL, NULL}},' for name, _ in functions]
    return "\n\n".join([header()] + [src for _, src in functions] + [
        "static PyMethodDef methods[] = {\n" + "\n".join(table) + "\n    {NULL, NULL, 0, NULL}\n};",
        "static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, \"@NAME@\", NULL, -1, methods};",
        "PyMODINIT_FUNC PyInit_@NAME@(void) { return PyModule_Create(&module); }"]) + "\n"


def _read(name: str) -> str:
    with open(os.path.join(os.path.dirname(__file__), name)) as f:
        return f.read()


@functools.cache
def header() -> str:
    return _read("runtime.h").replace('#include "mathlib.h"', _read("mathlib.h"))


def wanted(kernel) -> bool:
    """`kernel` is written in C under the `c_kernels` switch (see config.py)."""
    mode = config.c_kernels
    if mode == "never" or c_modules.compiler() is None or not eligible(kernel):
        return False
    return mode == "always" or math.prod(kernel.out.layout.shape) >= MIN_ELEMENTS

"""Elementwise ops as Triton expressions, one rule per op (the Triton twin of numpy_codegen's UFUNC table).

Operands arrive already cast to the op's compute dtype. Rules follow torch's semantics where Triton's operators
differ: `%` and `//` truncate toward zero in Triton but follow the divisor's sign / floor in torch; the hardware
max/min drop NaN where torch.maximum/minimum propagate it; relu and sign keep NaN as torch does."""
import torch

from framejit.graph.index_checks import device_message

from ..ir import Const, Op
from .dtypes import TL, Val, compute, literal, rounded
from .index import ZERO, Ix, broadcast

F = "h."  # the generated module imports inductor.runtime.triton_helpers as h

UNARY = {
    "abs": "tl.abs({a})", "neg": "-{a}", "exp": "tl.exp({a})", "log": "tl.log({a})", "log1p": F + "log1p({a})",
    "expm1": F + "expm1({a})", "sqrt": "tl.sqrt({a})", "rsqrt": "tl.rsqrt({a})", "reciprocal": "1.0 / {a}",
    "sin": "tl.sin({a})", "cos": "tl.cos({a})", "tanh": F + "tanh({a})", "sigmoid": "tl.sigmoid({a})",
    "erf": "tl.erf({a})", "floor": "tl.floor({a})", "ceil": "tl.ceil({a})", "round": F + "rint({a})",
    "trunc": F + "trunc({a})", "relu": "tl.where({a} < 0, 0, {a})", "isnan": "{a} != {a}",
    "logical_not": "{a} == 0",
    "gelu": "0.5 * {a} * (1.0 + tl.erf({a} * 0.7071067811865476))",
    "gelu_tanh": "0.5 * {a} * (1.0 + " + F + "tanh(0.7978845608028654 * ({a} + 0.044715 * {a} * {a} * {a})))",
}
BINARY = {
    "add": "{a} + {b}", "sub": "{a} - {b}", "mul": "{a} * {b}", "div": "{a} / {b}", "bitwise_and": "{a} & {b}",
    "bitwise_or": "{a} | {b}", "bitwise_xor": "{a} ^ {b}", "eq": "{a} == {b}", "ne": "{a} != {b}",
    "lt": "{a} < {b}", "le": "{a} <= {b}", "gt": "{a} > {b}", "ge": "{a} >= {b}", "logical_and": "{a} & {b}",
    "logical_or": "{a} | {b}", "logical_xor": "{a} ^ {b}", "atan2": F + "atan2({a}, {b})",
}
BOOL_BINARY = {"add": "{a} | {b}", "mul": "{a} & {b}", "maximum": "{a} | {b}", "minimum": "{a} & {b}"}
# scans (triton/scan.py): along the row tile's reduction axis, the whole row in registers
SCAN_OPS = {"cumsum": "tl.cumsum", "cumprod": "tl.cumprod"}
# Ops whose result jumps where their operand crosses a point (an integer, the other operand): a float16 / bfloat16
# operand computed in float32 and not rounded (the kernel keeps half values in float32 from op to op) lands on the
# other side of it where eager's rounded value did not (`floor(x * x)` of bfloat16: 1.0 for eager's 2.0). Their
# half operands are rounded to their dtype first, as eager's are; smooth ops keep the float32 value (off by
# rounding only).
ROUNDED_FIRST = {"floor", "ceil", "round", "trunc", "sign", "eq", "ne", "lt", "le", "gt", "ge", "floordiv",
                 "remainder", "truncdiv", "isnan", "logical_not", "logical_and", "logical_or", "logical_xor"}
# exponent -> how a * a beats the generic pow (torch special-cases the same exponents)
POW = {2: "{a} * {a}", 3: "{a} * {a} * {a}", 0.5: "tl.sqrt({a})", -0.5: "tl.rsqrt({a})", -1: "1.0 / {a}",
       1: "{a}", -2: "1.0 / ({a} * {a})"}


def emit_op(w, e: Op, coords, scope, rgroup, extra) -> Val:
    cd = e.compute_dtype
    args = lambda dtype: [w.operand(a, e, coords, scope, rgroup, extra, dtype) for a in e.args]
    deps = lambda vals: frozenset().union(*[v.deps for v in vals]) if vals else frozenset()

    def typed(vals):
        """Literals as typed one-element tensors: helper functions (h.*) need Triton values, not Python numbers."""
        return [Val(f"tl.full([1], {v.code}, {TL[compute(v.dtype)]})", v.dtype, v.deps) if v.literal else v
                for v in vals]

    def done(code, vals, dtype=e.dtype, fix_type=False):
        if all(v.literal for v in vals) and vals:
            raise NotImplementedError(f"op {e.name} on constants only")  # const folding runs before us
        if fix_type:  # literals in the formula gave Triton's default type: cast to the result dtype
            code = f"({code}).to({TL[compute(dtype)]})"
        return Val(scope.let(code), dtype, deps(vals))

    name = e.name
    if name in ("full",):
        return literal(e.args[0].value, e.dtype)
    if name == "arange":
        start, _end, step = e.params
        c = coords[0]
        if not c.deps:  # one place for every lane (a cat's one-thick piece reads coordinate 0): a number
            try:
                at = int(c.code)
            except ValueError:
                c = Ix(scope.let(f"tl.full([1], {c.code}, tl.int64)", prefix="i"), c.deps)
            else:
                return literal(start + at * step, e.dtype)
        if e.dtype.is_floating_point:  # torch computes start + i * step in double, then rounds
            code = f"({c.code}.to(tl.float64) * {float(step)!r} + {float(start)!r})"
        else:
            code = f"({c.code} * {step} + {start})"
        return Val(scope.let(f"{code}.to({TL[compute(e.dtype)]})"), e.dtype, c.deps)
    if name == "cat":
        return _cat(w, e, coords, scope, rgroup, extra)
    if name in ("take", "gather"):
        return _indexed_load(w, e, coords, scope, rgroup, extra)
    if name == "check_index":
        return _checked_index(w, e, coords, scope, rgroup, extra)
    if name in SCAN_OPS:
        return _scan(w, e, coords, scope, rgroup, extra)
    if name == "scatter":  # host.py splits an indexed store into its copy and its atomic kernel, never fused
        raise NotImplementedError("an indexed store inside another kernel")
    if name == "where":
        c = w.operand(e.args[0], e, coords, scope, rgroup, extra, torch.bool)
        a, b = (w.operand(x, e, coords, scope, rgroup, extra, cd) for x in e.args[1:])
        return done(f"tl.where({c.code}, {a.code}, {b.code})", [c, a, b], fix_type=a.literal and b.literal)
    if name == "cast":
        (a,) = [w.value(x, _bc(coords, e, x), scope, rgroup, extra) for x in e.args]
        if not e.dtype.is_floating_point:  # to an integer or bool: truncation is a jump (codegen.ROUNDED_FIRST)
            a = rounded(scope, a)
        return w.cast(scope, a, e.dtype)
    if name == "pow" and isinstance(e.args[1], Const) and not isinstance(e.args[1].value, bool) and \
            e.args[1].value in POW and (cd.is_floating_point or e.args[1].value in (1, 2, 3)):
        (a,) = args(cd)[:1]
        return done(POW[e.args[1].value].format(a=a.code), [a])
    vals = args(cd)
    if name in ("atan2", "pow", "maximum", "minimum") or name in UNARY and UNARY[name].startswith(F):
        vals = typed(vals)
    if name in UNARY:
        return done(UNARY[name].format(a=vals[0].code), vals)
    if name == "bitwise_not":
        a = vals[0]
        return done(f"{a.code} == 0" if cd == torch.bool else f"~{a.code}", vals)
    if name == "sign":
        a = vals[0]
        if cd == torch.bool:
            return a
        return done(f"tl.where({a.code} > 0, 1, tl.where({a.code} < 0, -1, 0))", vals, fix_type=True)
    a, b = vals
    if cd == torch.bool and name in BOOL_BINARY:  # torch: bool add is or, mul is and (no wrap-around)
        return done(BOOL_BINARY[name].format(a=a.code, b=b.code), vals)
    if name in BINARY:
        return done(BINARY[name].format(a=a.code, b=b.code), vals)
    if name in ("maximum", "minimum"):
        if cd.is_floating_point:
            return done(f"{F}{name}({a.code}, {b.code})", vals)
        return done(f"tl.{name}({a.code}, {b.code})", vals)
    if name == "remainder":  # torch: the sign of the divisor
        r = scope.let(f"{a.code} % {b.code}")
        return done(f"tl.where(({r} != 0) & (({r} < 0) != ({b.code} < 0)), {r} + {b.code}, {r})", vals)
    if name == "floordiv":
        if cd.is_floating_point:
            # torch's div_floor_floating, not floor(a / b): through fmod, so inf // 2 is nan, a quotient a
            # rounding put just below an integer is that integer, a zero quotient keeps a / b's sign, and
            # division by zero is a / b
            m = scope.let(f"{a.code} % {b.code}")
            d = scope.let(f"({a.code} - {m}) / {b.code}")
            d = scope.let(f"tl.where(({m} != 0) & (({b.code} < 0) != ({m} < 0)), {d} - 1.0, {d})")
            fl = scope.let(f"tl.floor({d})")
            fl = scope.let(f"tl.where({d} - {fl} > 0.5, {fl} + 1.0, {fl})")
            q = scope.let(f"{a.code} / {b.code}")
            zero = f"tl.where(({q} < 0) | (({q} == 0) & (1.0 / {q} < 0)), -0.0, 0.0)"
            return done(f"tl.where({b.code} == 0, {q}, tl.where({d} != 0, {fl}, {zero}))", vals)
        q = scope.let(f"{a.code} // {b.code}")
        return done(f"tl.where((({a.code} % {b.code}) != 0) & (({a.code} < 0) != ({b.code} < 0)), {q} - 1, {q})",
                    vals)
    if name == "truncdiv":
        return done(f"{F}trunc({a.code} / {b.code})" if cd.is_floating_point else f"{a.code} // {b.code}", vals)
    if name == "pow":
        if not cd.is_floating_point:  # exact integer powers, as torch's powi (issue 20)
            return done(f"{F}ipow({a.code}, {b.code})", vals)
        return done(f"{F}pow({a.code}, {b.code})", vals)
    raise NotImplementedError(f"no Triton rule for op {name!r}")


def _bc(coords, e, x):
    return broadcast(coords, e.shape, x.shape)


def _cat(w, e: Op, coords, scope, rgroup, extra) -> Val:
    """Concatenation: each part loads under its own range of the cat dim (masked), then nested where; every
    element is written once by the kernel, with no buffer per part. A part one element thick along the dim (a
    stack's unsqueezed piece: the interleaved rotary's `torch.stack((a, b), -1)`) is read at coordinate 0 there,
    an address valid on every lane, so it loads unmasked, and its pieces share their loads: `a` and `b` are read
    once per lane for both pieces, not once per piece under complementary masks. Blocks of one constant around one
computed part (a padding) are one where over the part's range."""
    dim = e.params[0]
    c = coords[dim]
    parts, lo = [], 0
    for i, part in enumerate(e.args):
        size = part.shape[dim]
        hi = lo + size
        thin = type(size) is int and size == 1
        last = i == len(e.args) - 1
        # the last part is the where chain's fallthrough: its range is a mask only where its loads need one
        needed = len(e.args) > 1 and not (thin and last)
        cond = scope.let(f"({c.code} >= {lo}) & ({c.code} < {hi})", prefix="m") if needed else None
        shifted = ZERO if thin else c if lo == 0 else _shift(scope, c, lo)
        pc = tuple(coords[:dim]) + (shifted,) + tuple(coords[dim + 1:])
        piece = None if thin else cond
        mask = piece if extra is None else (f"{extra} & {piece}" if piece else extra)
        v = w.cast(scope, w.value(part, pc, scope, rgroup, mask), e.dtype)
        parts.append((cond, v))
        lo = hi
    live = [(cond, v) for cond, v in parts if not v.literal]
    pads = {v.code for _, v in parts if v.literal}
    if len(live) == 1 and len(pads) == 1 and live[0][0] is not None:  # a padding: one where, not one per block
        cond, v = live[0]
        return Val(scope.let(f"tl.where({cond}, {v.code}, {pads.pop()})"), e.dtype, frozenset(v.deps | c.deps))
    cond, acc = parts[-1]
    deps = set(acc.deps) | set(c.deps)
    code = acc.code
    for cond, v in reversed(parts[:-1]):
        code = f"tl.where({cond}, {v.code}, {code})"
        deps |= v.deps
    return Val(scope.let(code), e.dtype, frozenset(deps))


def _shift(scope, c, lo):
    return Ix(scope.let(f"{c.code} - {lo}", prefix="i"), c.deps)



def _checked_index(w, e: Op, coords, scope, rgroup, extra) -> Val:
    """check_index (graph/index_checks.py) inside the kernel that reads the index, on CUDA: each live lane's index
    asserted in range on the device, as eager's own CUDA index kernels do (an index out of range is "device-side
    assert triggered", reported at the next synchronization: no host sync, no kernel of its own), then counted
    from the end where `wrap`. Triton compiles tl.device_assert out of a kernel built without debug, so the kernel
    records that it holds one (`w.asserts`: codegen.py compiles it with debug on). Lanes past the tile's range
    are not asserted: their index is a masked load's 0, and a size-0 dim has no valid index at all. The loads
    after it stay masked to the source's range, so a failing lane reads nothing outside a buffer."""
    size, dim, wrap, kind = e.params
    i = w.cast(scope, w.value(e.args[0], coords, scope, rgroup, extra), torch.int64)
    if i.literal:
        raise NotImplementedError("an index check of a constant")  # const folding runs before us
    low = f"-{size}" if wrap else "0"
    live = [m for a, _, m in w.axes if a in i.deps] + ([extra] if extra else [])
    inside = f"({i.code} >= {low}) & ({i.code} < {size})"
    ok = scope.let(f"{inside} | ~({' & '.join(live)})" if live else inside, prefix="m")
    line = f"tl.device_assert({ok}, {device_message(kind, dim, size)!r})"
    if line not in scope.lines:
        scope.lines.append(line)
    w.asserts = True
    if not wrap:
        return Val(i.code, torch.int64, i.deps)
    return Val(scope.let(f"tl.where({i.code} < 0, {i.code} + {size}, {i.code})", prefix="i"), torch.int64, i.deps)


def _scan(w, e: Op, coords, scope, rgroup, extra) -> Val:
    """cumsum / cumprod of the operand over the persistent row tile (codegen.py plans a kernel holding a scan as a
    row kernel whose reduction axis is the scanned dim), in the result's compute dtype."""
    (a,) = [w.operand(x, e, coords, scope, rgroup, extra, e.compute_dtype) for x in e.args]
    a = w.materialize(scope, a, frozenset(axis for axis, _, _ in w.axes))
    return Val(scope.let(f"{SCAN_OPS[e.name]}({a.code}, axis={w.raxis})"), e.dtype, a.deps)


def constant_index(v: Val) -> int | None:
    """The integer a literal Val stands for, else None."""
    if not v.literal:
        return None
    try:
        return int(v.code)
    except ValueError:
        return None


def checked(idx) -> bool:
    """An index made non-negative by its check in this kernel (`_checked_index`): no wrap needed after it."""
    return isinstance(idx, Op) and idx.name == "check_index"


def _indexed_load(w, e: Op, coords, scope, rgroup, extra) -> Val:
    """take / gather (lowering.py, issue 20): the index, evaluated at its own coordinates, becomes the source's
    coordinate along `dim`. Indices arrive checked and non-negative (graph/index_checks.py); a negative one from
    torch's own decompositions (aten.index) counts from the end; and the load is masked to the range whatever
    happens, so no lane ever reads outside the source (on CUDA the check's assert is asynchronous)."""
    src, idx = e.args
    dim = e.params[0]
    k = len(idx.shape) if e.name == "take" else 1
    icoords = tuple(coords[dim:dim + k]) if e.name == "take" else broadcast(coords, e.shape, idx.shape)
    i = w.value(idx, icoords, scope, rgroup, extra)
    size = src.shape[dim]
    known = constant_index(i)
    if known is not None and isinstance(size, int) and -size <= known < size:
        # one index known here (a flip of a size-1 dim reads index 0): a coordinate, no wrap and no mask (the
        # interpreter rejects a mask made of Python bools)
        scoords = tuple(coords[:dim]) + (Ix(str(known % size), frozenset()),) + tuple(coords[dim + k:])
        v = w.value(src, scoords, scope, rgroup, extra)
        return Val(v.code, e.dtype, v.deps | i.deps, v.literal)
    at = i.code if checked(idx) else scope.let(f"tl.where({i.code} < 0, {i.code} + {size}, {i.code})", prefix="i")
    inside = scope.let(f"({at} >= 0) & ({at} < {size})", prefix="m")
    scoords = tuple(coords[:dim]) + (Ix(at, i.deps),) + tuple(coords[dim + k:])
    v = w.value(src, scoords, scope, rgroup, inside if extra is None else f"{extra} & {inside}")
    return Val(v.code, e.dtype, v.deps | i.deps, v.literal)

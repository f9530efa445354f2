"""Index arithmetic for Triton kernels: tile indices -> coordinates -> through views -> addresses.

A kernel iterates over a tile of an iteration shape: `xindex` numbers the rows (the kept dims of a reduction, or
every dim of a 1-D pointwise kernel), `rindex` the columns (the reduced dims). A tiled pointwise kernel has
`yindex` (rows: the dims a transposed input is contiguous along) and `xindex` (columns: the output's).
Each dim of the iteration shape gets a coordinate decoded from its index with // and %. An expression node is
evaluated at one coordinate per dim of its own shape; views only rewrite coordinates (NumPy-style strided views
become index arithmetic here), and a load turns coordinates into `sum(coord * stride)`.

Triton's vectorizer needs to *see* contiguity: `(i // 4096) * 4096 + i % 4096` is contiguous in i, but its
axis analysis cannot prove it, and the loads fall back to scalar ones at a third of the bandwidth. So `address`
recognizes terms that rebuild a tile index whole and emits the index itself."""
from dataclasses import dataclass

from ..ir import ViewKind

ZERO_DEPS = frozenset()


@dataclass(frozen=True)
class Ix:
    """One coordinate: Triton code (a local name or literal) and the tile axes it varies along ('x', 'y', 'r').
    A coordinate a reshape merged from several (`i3 = x0 * 1024 + x1`) keeps them in `linear`, ((Ix, multiplier),
    ...), so an address can see through it to the tile index they decode from (`address`)."""
    code: str
    deps: frozenset = ZERO_DEPS
    linear: tuple = ()


ZERO = Ix("0")


class Scope:
    """Lines of generated code with common-subexpression reuse; a loop body is a child scope that sees its
    parent's names but whose own names do not leak into sibling loops."""

    def __init__(self, parent: "Scope | None" = None, counter: list | None = None):
        self.parent, self.lines, self.names = parent, [], {}
        self.counter = counter if counter is not None else (parent.counter if parent else [0])
        self.decodes = []  # linear indices a reshape decoded into coordinates here (see `address`)

    def visible_decodes(self) -> list:
        s, out = self, []
        while s is not None:
            out += s.decodes
            s = s.parent
        return out

    def lookup(self, code: str):
        s = self
        while s is not None:
            if code in s.names:
                return s.names[code]
            s = s.parent
        return None

    def fresh(self, code: str, prefix: str = "tmp") -> str:
        """A new local holding `code`, never shared (accumulators that a loop updates in place)."""
        name = f"{prefix}{self.counter[0]}"
        self.counter[0] += 1
        self.lines.append(f"{name} = {code}")
        return name

    def let(self, code: str, prefix: str = "tmp") -> str:
        """A local holding `code` (reused when the same code was computed in this scope or a parent)."""
        name = self.lookup(code)
        if name is None:
            name = f"{prefix}{self.counter[0]}"
            self.counter[0] += 1
            self.lines.append(f"{name} = {code}")
            self.names[code] = name
        return name


@dataclass
class Group:
    """The dims one tile index walks, slowest first: coordinate k is (index // step_k) % size_k."""
    index: str          # 'xindex', 'yindex' or 'rindex'
    dims: list          # iteration-shape dims, slowest first
    sizes: list
    coords: list = None  # Ix per dim, set by decode()

    def decode(self, scope: Scope, axis: str) -> None:
        self.coords = []
        real = [i for i, s in enumerate(self.sizes) if s != 1]
        step = 1
        steps = [0] * len(self.sizes)
        for i in reversed(real):
            steps[i] = step
            step *= self.sizes[i]
        for i, size in enumerate(self.sizes):
            if size == 1:
                self.coords.append(ZERO)
                continue
            code = self.index
            if steps[i] != 1:
                code = f"({code} // {steps[i]})"
            if i != real[0]:
                code = f"({code} % {size})"
            name = code if code == self.index else scope.let(code, prefix=axis)
            self.coords.append(Ix(name, frozenset(axis)))
        self.steps = steps

    def whole(self) -> dict:
        """{coordinate code: the stride that coordinate has inside the group's linear index}."""
        return {c.code: s for c, s, size in zip(self.coords, self.steps, self.sizes) if size != 1}

    @property
    def deps(self) -> frozenset:
        return frozenset(self.index[0])  # 'xindex' -> 'x', 'rindex' -> 'r', 'yindex' -> 'y'


@dataclass
class Decode:
    """A linear index a reshape decoded into coordinates (`i // 512`, `i % 512`): like a Group, a load whose
    address rebuilds it whole is given the linear index itself (contiguous, so vectorizable)."""
    index: str
    coords: list
    steps: list
    sizes: list
    deps: frozenset

    whole = Group.whole


def mul(ix: Ix, k: int) -> str | None:
    if k == 0 or ix.code == "0":
        return None
    return ix.code if k == 1 else f"{ix.code} * {k}"


def address(scope: Scope, coords: tuple, strides: tuple, shape: tuple, groups: list) -> Ix:
    """sum(coord * stride) over the dims of a buffer, with whole tile indices recognized (see module doc). Merged
    coordinates are also tried as the coordinates they merge: a contiguous 2-D library result read through a 3-D
    view, `(x0 * 1024 + x1) * 3072 + x2`, is `xindex`, with no per-element division or remainder."""
    compact = _address(coords, strides, shape, groups, scope, expand=False)
    if not any(c.linear for c in coords):
        return compact
    expanded = _address(coords, strides, shape, groups, scope, expand=True)
    return expanded if expanded.code.count("+") <= compact.code.count("+") else compact


def _terms(c: Ix, stride: int, terms: dict, expand: bool) -> None:
    if expand and c.linear:
        for sub, k in c.linear:
            _terms(sub, stride * k, terms, expand)
    elif c.code != "0":
        terms[c.code] = (c, terms[c.code][1] + stride if c.code in terms else stride)


def _address(coords: tuple, strides: tuple, shape: tuple, groups: list, scope: Scope, expand: bool) -> Ix:
    terms = {}
    for c, st, size in zip(coords, strides, shape):
        if size != 1:
            _terms(c, st, terms, expand)
    parts, deps = [], set()
    for g in list(groups) + scope.visible_decodes():
        whole = g.whole()
        if not whole or any(code not in terms for code in whole) or 0 in whole.values():
            continue  # (a 0 multiplier: a tile over an empty dim, which addresses nothing)
        scale = {terms[code][1] // s if terms[code][1] % s == 0 else None for code, s in whole.items()}
        if len(scale) == 1 and None not in scale:
            k = scale.pop()
            for code in whole:
                del terms[code]
            parts.append(g.index if k == 1 else f"{g.index} * {k}")
            deps |= g.deps
    for c, st in terms.values():
        t = mul(c, st)
        if t is not None:
            parts.append(t)
            deps |= c.deps
    if not parts:
        return ZERO
    code = " + ".join(parts)
    return Ix(code if len(parts) == 1 else f"({code})", frozenset(deps))


def combine(scope: Scope, parts: list, deps: set) -> Ix:
    code = " + ".join(p for p in parts if p is not None) or "0"
    return Ix(scope.let(code, prefix="i") if "+" in code or "*" in code else code, frozenset(deps))


def _permuted(scope, params, in_shape, coords):
    out = [None] * len(in_shape)
    for i, d in enumerate(params[0]):
        out[d] = coords[i]
    return tuple(out)


def _expanded(scope, params, in_shape, coords):
    off = len(coords) - len(in_shape)
    return tuple(ZERO if s == 1 else coords[off + j] for j, s in enumerate(in_shape))


def _sliced(scope, params, in_shape, coords):
    dim, start, _end, step = params
    size = in_shape[dim]
    start = 0 if start is None else (start + size if start < 0 else start)
    start = min(max(start, 0), size)
    c = coords[dim]
    code = mul(c, step)
    parts = [p for p in (str(start) if start else None, code) if p]
    new = combine(scope, parts, c.deps) if parts else ZERO
    return tuple(coords[:dim]) + (new,) + tuple(coords[dim + 1:])


def _selected(scope, params, in_shape, coords):
    dim, index = params
    index = index + in_shape[dim] if index < 0 else index
    return tuple(coords[:dim]) + (Ix(str(index)),) + tuple(coords[dim:])


# view kind -> (scope, params, the argument's shape, the view's coordinates) -> the argument's coordinates
THROUGH = {
    ViewKind.IDENTITY: lambda scope, params, in_shape, coords: tuple(coords),
    ViewKind.PERMUTE: _permuted,
    ViewKind.EXPAND: _expanded,
    ViewKind.UNSQUEEZE: lambda scope, params, in_shape, coords: tuple(c for i, c in enumerate(coords)
                                                                     if i != params[0]),
    ViewKind.SLICE: _sliced,
    ViewKind.SELECT: _selected,
    ViewKind.RESHAPE: lambda scope, params, in_shape, coords: _reshape(scope, tuple(params[0]), in_shape,
                                                                       tuple(coords)),
}


def through_view(scope: Scope, kind: ViewKind, params: tuple, in_shape: tuple, coords: tuple) -> tuple:
    """The view's argument coordinates, given the view's own coordinates."""
    return THROUGH[kind](scope, params, tuple(in_shape), coords)


def _reshape(scope: Scope, out_shape: tuple, in_shape: tuple, coords: tuple) -> tuple:
    """Match runs of dims whose sizes multiply to the same product (a merge, a split, or both): within a run the
    linear index is rebuilt from the output coordinates and decoded into the input's."""
    result = [ZERO] * len(in_shape)
    if 0 in in_shape or 0 in out_shape:
        return tuple(result)  # an empty tensor: the tile addresses nothing
    oi = [i for i, s in enumerate(out_shape) if s != 1]
    ii = [i for i, s in enumerate(in_shape) if s != 1]
    a = b = 0
    while a < len(oi) or b < len(ii):
        og, ig = [oi[a]], [ii[b]]
        po, pi = out_shape[oi[a]], in_shape[ii[b]]
        a += 1
        b += 1
        while po != pi:
            if po < pi:
                og.append(oi[a])
                po *= out_shape[oi[a]]
                a += 1
            else:
                ig.append(ii[b])
                pi *= in_shape[ii[b]]
                b += 1
        if len(og) == 1 and len(ig) == 1:
            result[ig[0]] = coords[og[0]]
            continue
        step, parts, deps = 1, [], set()
        for d in reversed(og):
            parts.append(mul(coords[d], step))
            deps |= coords[d].deps
            step *= out_shape[d]
        linear = combine(scope, list(reversed(parts)), deps)
        step, steps = 1, [0] * len(ig)
        for k in range(len(ig) - 1, -1, -1):
            d = ig[k]
            code = linear.code if step == 1 else f"({linear.code} // {step})"
            if k != 0:
                code = f"({code} % {in_shape[d]})"
            merged = tuple((coords[o], st) for o, st in zip(og, _steps(out_shape, og))) if len(ig) == 1 else ()
            result[d] = Ix(scope.let(code, prefix="i") if code != linear.code else code, linear.deps, merged)
            steps[k] = step
            step *= in_shape[d]
        if len(ig) > 1 and linear.code != "0":
            scope.decodes.append(Decode(linear.code, [result[d] for d in ig], steps, [in_shape[d] for d in ig],
                                        linear.deps))
    return tuple(result)


def _steps(shape: tuple, dims: list) -> list:
    """Row-major multipliers of `dims` (slowest first) within the index they merge into."""
    out, step = [], 1
    for d in reversed(dims):
        out.append(step)
        step *= shape[d]
    return out[::-1]


def broadcast(coords: tuple, shape: tuple, arg_shape: tuple) -> tuple:
    """Coordinates of an operand broadcast (right-aligned, NumPy rules) to a node of `shape`."""
    off = len(shape) - len(arg_shape)
    return tuple(ZERO if s == 1 else coords[off + j] for j, s in enumerate(arg_shape))

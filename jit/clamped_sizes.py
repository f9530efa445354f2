"""Sizes clamped below the traced hint, which the second shape run (it moves every dynamic size up) cannot see:
with x traced (s0, 3) from hints (3, 3), `x[:3]` and `x.diagonal()` are 3 long at both traced sizes, so Python
reading their length sees the constant 3, though a (2, 3) call gives 2. Each clamp becomes a guard on which side
of it the sizes are: constant slice bounds and indices (guard_index_bounds), and ops whose size is the smaller of
two input sizes -- a diagonal's length, a reduced decomposition's k (guard_competing_lengths)."""
from __future__ import annotations

import operator

from framejit.guards.kinds import SizeRelation
from framejit.guards.size_expr import BinOp, Dim, Num, combine
from jit.dynamic import Specialize
from jit.variables import Const, TupleVar, Var
from jit.variables.tensor import TensorVar

# name -> (the offset's keyword, dim1's default, dim2's default); arguments are (input, offset, dim1, dim2)
_DIAGONALS = {"diagonal": ("offset", 0, 1), "diagonal_copy": ("offset", 0, 1), "linalg_diagonal": ("offset", -2, -1),
              "diag": ("diagonal", 0, 1)}
# reduced decompositions: k = min of the last two dims
_MATRIX_MINS = {"linalg_svd", "linalg_svdvals", "svd", "linalg_qr", "qr", "linalg_lu", "linalg_lu_factor",
                "linalg_lu_factor_ex", "lu"}


def competing_lengths(name: str, args: tuple, kwargs: dict):
    """(t, (dim_a, add_a), (dim_b, add_b)): the result has a size max(0, min(t.size(a) + add_a, t.size(b) + add_b)),
    or None where the op is not one of those (or its arguments are not constants)."""
    name = name.rsplit(".", 1)[-1]
    t = args[0] if args else kwargs.get("input", kwargs.get("A"))
    if not isinstance(t, TensorVar) or t.example.dim() < 2:
        return None  # diag of a 1-d tensor builds a matrix: no clamp
    if name in _MATRIX_MINS:
        return t, (t.example.dim() - 2, 0), (t.example.dim() - 1, 0)
    if name not in _DIAGONALS:
        return None
    offset_key, dim1, dim2 = _DIAGONALS[name]
    if name == "diag" and t.example.dim() != 2:
        return None
    keys = (offset_key, "dim1", "dim2") if name != "diag" else (offset_key,)
    values = []
    for pos, (key, default) in enumerate(zip(keys, (0, dim1, dim2)), start=1):
        v = args[pos] if len(args) > pos else kwargs.get(key, default)
        if isinstance(v, Var):
            if not v.is_const():
                return None
            v = v.const()
        if type(v) is not int:
            return None
        values.append(v)
    offset, d1, d2 = (values + [dim1, dim2])[:3]
    n = t.example.dim()
    if not (-n <= d1 < n and -n <= d2 < n):
        return None  # eager raises: the meta run did too
    return t, (d1 % n, min(offset, 0)), (d2 % n, -max(offset, 0))


def guard_index_bounds(output, t: TensorVar, key: Var) -> None:
    """x[:3] along a dynamic dim is 3 long at both traced sizes when the hint is >= 3, and shorter below it:
    the two runs cannot see a clamp that starts under the hint. Each constant bound (and integer index) on a
    dynamic dim becomes a guard on which side of it the size is. Dynamic input dims are >= 2, so bounds up to
    2 need none; a dim computed in the function has no expression to guard (bounds >= 2 trace it static).
    `output`: the OutputGraph."""
    if not output.dynamic or t.perturbed is t.example:
        return
    items = key.items if isinstance(key, TupleVar) else [key]
    if not all(isinstance(i, Const) for i in items):
        return  # tensors, SizeVars: a bound that moves with the sizes, or advanced indexing
    items = [i.value for i in items]
    if len(items) == 1 and isinstance(items[0], tuple):  # x[a, b] with a constant key: one Const tuple
        items = list(items[0])
    if not all(i is None or i is Ellipsis or isinstance(i, slice) or type(i) is int for i in items):
        return  # lists, bools, tensors: advanced indexing, which raises rather than clamps
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if used > t.example.dim():
        return  # too many indices: eager raises IndexError whatever the sizes
    dims, d = [], 0
    for i in items:
        if i is Ellipsis:
            d += t.example.dim() - used
        elif i is not None:
            dims.append((d, i))
            d += 1
    for d, i in dims:
        if d >= t.example.dim() or t.example.shape[d] == t.perturbed.shape[d]:
            continue
        bounds = [i] if isinstance(i, int) else [b for b in (i.start, i.stop) if type(b) is int]
        for b in bounds:
            need = b + 1 if isinstance(i, int) and b >= 0 else abs(b)  # x[b] needs size > b; x[-b] >= b
            if need <= 2:
                continue
            if t.node.op != "placeholder" or t.source is None:
                raise Specialize(f"a constant bound {b} on a dynamic dim of a tensor made in the function")
            hint = t.example.shape[d]
            output.guards.append(SizeRelation(None, BinOp(operator.ge, Dim(t.source, d), Num(need)),
                                            hint >= need))

def guard_competing_lengths(output, name: str, args: tuple, kwargs: dict) -> None:
    """A size that is the smaller of two (competing_lengths): guard which is smaller, and that it stays above 0
    (below it the size clamps), wherever a dynamic size takes part. `output`: the OutputGraph."""
    found = competing_lengths(name, args, kwargs)
    if found is None:
        return
    t, (a, add_a), (b, add_b) = found
    if t.example.shape[a] == t.perturbed.shape[a] and t.example.shape[b] == t.perturbed.shape[b]:
        return
    terms = [combine(operator.add, output.dim_expr(t, d), Num(add)) for d, add in ((a, add_a), (b, add_b))]
    hints = [t.example.shape[a] + add_a, t.example.shape[b] + add_b]
    output.guards.append(SizeRelation(None, BinOp(operator.le, *terms), hints[0] <= hints[1]))
    low = 0 if hints[0] <= hints[1] else 1
    output.guards.append(SizeRelation(None, BinOp(operator.gt, terms[low], Num(0)), hints[low] > 0))

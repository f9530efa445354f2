"""Ops whose result sizes are the smaller of two input sizes (a diagonal's length, the k = min(m, n) of a reduced
decomposition). The second shape run moves every dynamic size up, so with x traced (s0, 3) from hints (3, 3),
`x.diagonal()` is 3 long at both traced sizes and Python reading its length sees the constant 3, though a (2, 3)
call gives 2. The slice bounds have the same blind spot (OutputGraph.guard_index_bounds); here each such op
yields the two competing lengths, and the caller guards which one is the smaller."""
from __future__ import annotations

from jit.variables import Var
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

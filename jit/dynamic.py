"""Dynamic sizes: which tensor dims a frame is compiled for symbolically, and how their sizes are traced.

Which dims: `dynamic=True` makes every dim of every input tensor dynamic; `dynamic=False` none; the default
(None) starts static and, when a frame is recompiled because an input's size changed, makes exactly the dims
that changed dynamic (automatic dynamic shapes), plus any dim marked with `jit.mark_dynamic(t, dim)`. Sizes 0
and 1 always stay specialized (broadcasting and empty tensors behave differently).

How: the executor's shape propagation runs every op twice on meta tensors, once at the input sizes (the hints)
and once with each dynamic size moved to a different value. Tensor sizes that differ between the two runs
depend on dynamic dims: reading one in Python gives a SizeVar, which the graph computes at run time
(`x.size(0)`), and Python arithmetic on it is recorded too. Dynamic dims of equal size share one symbol (and
a guard that they stay equal). If the traced code needs a dynamic size's value, e.g. to branch on it, the
comparison becomes a guard; if a size cannot be expressed over the inputs, or the second run fails where the
first did not (the code relied on a size), the frame is traced again with static sizes (`Specialize`)."""
from __future__ import annotations

from types import CodeType

from jit.code_maps import CodeMap, CodeSet

_ATTR = "_jit_dynamic_dims"


def mark_dynamic(tensor, dim) -> None:
    """Compile code that receives `tensor` for any size of dimension `dim` (an int or a list of ints)."""
    import torch
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"jit.mark_dynamic expects a tensor, got {type(tensor).__name__}")
    if not isinstance(dim, (int, list, tuple)) or isinstance(dim, bool):
        raise TypeError(f"jit.mark_dynamic: dim must be an int or a list of ints, got {dim!r}")
    dims = [dim] if isinstance(dim, int) else list(dim)
    marked = set(getattr(tensor, _ATTR, ()))
    for d in dims:
        if not isinstance(d, int) or isinstance(d, bool):
            raise TypeError(f"jit.mark_dynamic: dim must be an int or a list of ints, got {d!r} in {dim!r}")
        if not -tensor.dim() <= d < tensor.dim():
            raise IndexError(f"jit.mark_dynamic: dim {d!r} is out of range for a tensor with {tensor.dim()} dims")
        marked.add(d % tensor.dim())
    setattr(tensor, _ATTR, frozenset(marked))


def marked_dims(tensor) -> frozenset:
    return getattr(tensor, _ATTR, frozenset())


class Specialize(Exception):
    """Raised while tracing with dynamic sizes when the code relies on a size in a way we cannot keep symbolic;
    the frame is then traced again with static sizes."""


# code object -> {input source name -> dims whose size changed between compiles}
_automatic = CodeMap()  # held weakly, by identity (jit/code_maps.py)


def automatic_dims(code: CodeType) -> dict[str, set[int]]:
    return _automatic.get(code, {})


def note_size_changes(code: CodeType, entries: list, args: tuple, function) -> list[str]:
    """After a cache miss: record the input dims whose sizes differ from what an existing entry was compiled for
    (same type, dtype, device and rank otherwise). Returns what was newly marked, in words, for the log."""
    from framejit.guards.kinds import TensorMatch  # torch-free, as is this function: the hook runs without torch
    known = _automatic.setdefault(code, {})
    news = []
    for entry in entries:
        guards = getattr(entry.data, "guards", None)
        if guards is None:
            continue
        for g, value in guards.read_all(*args, function):
            if not isinstance(g, TensorMatch) or not hasattr(value, "dtype") or not hasattr(value, "dim"):
                continue
            if value.dtype is not g.dtype or value.device != g.device or value.dim() != len(g.size):
                continue
            for d, (was, now) in enumerate(zip(g.size, value.shape)):
                if was is not None and was != now and was > 1 and now > 1:
                    dims = known.setdefault(g.source.name(), set())
                    if d not in dims:
                        dims.add(d)
                        news.append(f"dim {d} of '{g.source.name()}' ({was} -> {now})")
    return news


# Codes whose frames met a second instance of a module class (a layer class with a break inside, called once per
# layer): compiled from then on with that frame's modules guarded by structure, not identity (jit/variables/builder.py).
_by_structure = CodeSet()


def modules_by_structure(code: CodeType) -> bool:
    return code in _by_structure


def _failed_guard(entries: list, args: tuple, function, matches):
    """The first guard of an existing entry, with its value now, for which matches(guard, value) holds."""
    for entry in entries:
        guards = getattr(entry.data, "guards", None)
        if guards is None:
            continue
        for g, value in guards.read_all(*args, function):
            if matches(g, value):
                return g, value
    return None


def note_module_changes(code: CodeType, entries: list, args: tuple, function) -> list[str]:
    """After a cache miss: if an entry failed only because a module (or its parameter) reached from the frame's
    arguments is another object of the same class, compile this code with modules guarded by structure: one entry
    then serves every instance, and N layers do not make N entries. Returns what changed, in words."""
    from framejit.guards.kinds import IdMatch
    if code in _by_structure:
        return []
    found = _failed_guard(entries, args, function, lambda g, value: (
        isinstance(g, IdMatch) and value is not g.expected and type(value) is type(g.expected) and
        _is_module_state(value) and g.source.root_is_local()))
    if found is None:
        return []
    _by_structure.add(code)
    return [f"modules of '{found[0].source.name()}' by structure (another {type(found[1]).__name__})"]


# Codes whose entries failed on an iterator from outside giving other items (a loop resumed after a break inside
# its body: each pass starts further on): from then on such iterators are not read ahead (next() is a break), so
# one entry serves every position instead of one entry per position.
_iterators_opaque = CodeSet()


def iterators_opaque(code: CodeType) -> bool:
    return code in _iterators_opaque


def note_iterator_changes(code: CodeType, entries: list, args: tuple, function) -> list[str]:
    from framejit.guards.kinds import IteratorMatch
    if code in _iterators_opaque:
        return []
    found = _failed_guard(entries, args, function,
                          lambda g, value: isinstance(g, IteratorMatch) and g.explain(value) is not None)
    if found is None:
        return []
    _iterators_opaque.add(code)
    return [f"'{found[0].source.name()}' as an opaque iterator (it gives other items each call)"]


def _is_module_state(value) -> bool:
    import torch  # loaded: a module exists
    return isinstance(value, (torch.nn.Module, torch.nn.Parameter))


# code object -> names of the Python float sources compiled as graph inputs (a learning rate a scheduler changes)
_floats = CodeMap()


def dynamic_floats(code: CodeType) -> set:
    return _floats.get(code, set())


def note_float_changes(code: CodeType, entries: list, args: tuple, function) -> list[str]:
    """After a cache miss: a Python float from outside that an existing entry specialized on (a ValueMatch) and
    that is another float now is compiled from then on as a graph input (jit/variables/floats.py), so a value
    that changes every call (a scheduler's learning rate in a param group) compiles once more, not per value."""
    from framejit.guards.kinds import ValueMatch
    known = _floats.setdefault(code, set())
    news = []
    for entry in entries:
        guards = getattr(entry.data, "guards", None)
        if guards is None:
            continue
        for g, value in guards.read_all(*args, function):
            if isinstance(g, ValueMatch) and type(g.expected) is float and type(value) is float and \
                    value != g.expected and g.source is not None and g.source.name() not in known:
                known.add(g.source.name())
                news.append(f"the float '{g.source.name()}' ({g.expected!r} -> {value!r})")
    return news


def reset() -> None:
    _automatic.clear()
    _floats.clear()
    _by_structure.clear()
    _iterators_opaque.clear()


class SymbolTable:
    """The dynamic sizes of one trace: each distinct hint value is one symbol, moved to a distinct value for the
    second propagation run (hint + 1 keeps ordering between symbols and stays small enough for slices of
    static buffers, e.g. a causal mask cut to the sequence length)."""

    def __init__(self):
        self.first_dim: dict[int, object] = {}  # hint -> the first input dim (a guards.size_expr.Dim) with it

    # How far the second run moves each dynamic size. A Python value equal in both runs is taken not to depend on
    # the sizes, so the move must change every function of a size the code may compute: +1 did not (ceil(5 / 2)
    # == ceil(6 / 2): `len(x.split(2))` and `x[::2].shape[0]` were read as constants). A large prime keeps floor
    # and ceil divisions by any smaller number, and remainders, apart, and keeps sums (T and T + 1) related.
    OFFSET = 9973

    @staticmethod
    def perturbed(hint: int) -> int:
        return hint + SymbolTable.OFFSET

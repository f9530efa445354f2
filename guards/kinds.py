"""Guard kinds: one fact the compiled code relied on, its check as a Python expression, and what to say when it
fails. Cheap checks that fail often (types, values) sort before expensive ones (tensor metadata)."""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

from framejit.guards.sources import Source, literal_or_const, real_key


@dataclass(frozen=True, eq=False)
class Guard:
    source: Source | None
    cost: int = field(default=1, init=False)  # ordering only

    def check(self, value_expr: str, const: callable, value_of: callable) -> str:
        """A boolean expression over `value_expr`; `const(obj)` names an object the check compares against and
        `value_of(source)` names another source's value."""
        raise NotImplementedError

    def explain(self, value) -> str | None:
        """Why `value` fails this guard, in the user's terms; None if it passes."""
        raise NotImplementedError

    def explain_from(self, read) -> str | None:
        """Like explain, reading what it needs through `read(source)` (guards over several sources override)."""
        return self.explain(read(self.source) if self.source is not None else None)

    def describe(self) -> str:
        raise NotImplementedError

    def key(self) -> tuple:
        return (type(self).__name__, self.source, *self._key())

    def _key(self) -> tuple:
        return ()


def _typename(t) -> str:
    return getattr(t, "__qualname__", str(t))


_COMPARISONS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


@dataclass(frozen=True, eq=False)
class FloatCompare(Guard):
    """A float compiled as a graph input (jit/variables/floats.py) compared with a number by the traced code
    (`if momentum != 0`): the comparison keeps its answer; the value itself may change."""
    op: str = "eq"  # an operator module name: lt, le, gt, ge, eq, ne
    other: float = 0.0
    expected: bool = True

    def check(self, v, const, value_of):
        return f"(({v} {_COMPARISONS[self.op]} {self.other!r}) is {self.expected})"

    def explain(self, value):
        if (getattr(operator, self.op)(value, self.other)) is not self.expected:
            return f"'{self.source.name()}' {_COMPARISONS[self.op]} {self.other!r} is now {not self.expected}"
        return None

    def describe(self):
        return f"({self.source.name()} {_COMPARISONS[self.op]} {self.other!r}) is {self.expected}"

    def _key(self):
        return (self.op, type(self.other), self.other, self.expected)


@dataclass(frozen=True, eq=False)
class TypeMatch(Guard):
    expected: type = None

    def check(self, v, const, value_of):
        return f"type({v}) is {const(self.expected)}"

    def explain(self, value):
        if type(value) is not self.expected:
            got = _typename(type(value))
            if got == _typename(self.expected):  # jit.compile(module) makes one subclass of that name per module
                got = f"another class named {got} ({type(value).__module__})"
            return f"type of '{self.source.name()}' changed: expected {_typename(self.expected)}, got {got}"
        return None

    def describe(self):
        return f"type({self.source.name()}) is {_typename(self.expected)}"

    def _key(self):
        return (self.expected,)


@dataclass(frozen=True, eq=False)
class IdMatch(Guard):
    """The very same object (modules, functions, classes, Python modules)."""
    expected: object = None

    def check(self, v, const, value_of):
        return f"{v} is {const(self.expected)}"

    def explain(self, value):
        if value is not self.expected:
            return f"'{self.source.name()}' is a different object: expected {_short(self.expected)}, got {_short(value)}"
        return None

    def describe(self):
        return f"{self.source.name()} is {_short(self.expected)}"

    def _key(self):
        return (id(self.expected),)


@dataclass(frozen=True, eq=False)
class RequiresGradMatch(Guard):
    """A parameter or buffer guarded by identity: its requires_grad flag too (freezing a layer, or unfreezing it,
    changes whether the compiled region must build a backward)."""
    expected: bool = False

    def check(self, v, const, value_of):
        return f"{v}.requires_grad is {self.expected}"

    def explain(self, value):
        if value.requires_grad is not self.expected:
            return f"tensor '{self.source.name()}' requires_grad mismatch: expected {self.expected}, got {value.requires_grad}"
        return None

    def describe(self):
        return f"{self.source.name()}.requires_grad is {self.expected}"

    def _key(self):
        return (self.expected,)


@dataclass(frozen=True, eq=False)
class ValueMatch(Guard):
    """A Python constant the code specialized on (type and value)."""
    expected: object = None

    def check(self, v, const, value_of):
        t = type(self.expected)
        if self.expected is None or isinstance(self.expected, bool):
            return f"{v} is {self.expected!r}"
        if t in (int, str, float) and not (t is float and self.expected != self.expected):
            return f"(type({v}) is {t.__name__} and {v} == {self.expected!r})"
        if _is_nan(self.expected):  # NaN equals nothing, itself included: match it as NaN
            return f"(type({v}) is {const(t)} and {v} != {v})"
        return f"(type({v}) is {const(t)} and {v} == {const(self.expected)})"

    def explain(self, value):
        same = type(value) is type(self.expected) and (value is self.expected or value == self.expected
                                                       or _is_nan(value) and _is_nan(self.expected))
        if not same:
            where = self.source.name()
            if isinstance(self.source, _global_like()):
                return f"{where} changed: expected {self.expected!r}, got {value!r}"
            return f"value of '{where}' changed: expected {self.expected!r}, got {value!r}"
        return None

    def describe(self):
        return f"{self.source.name()} == {self.expected!r}"

    def _key(self):
        return (type(self.expected), repr(self.expected))


def _is_nan(value) -> bool:
    """A float NaN of any float type (float, np.float64, np.float32): the one value not equal to itself."""
    try:
        return (isinstance(value, float) or type(value).__name__.startswith("float")) and bool(value != value)
    except Exception:  # noqa: BLE001 - an object whose comparison raises is no NaN
        return False


@dataclass(frozen=True, eq=False)
class AttrAbsent(Guard):
    """An attribute the code found missing on an outside object (hasattr, getattr with a default): it must stay
    missing. Only made where looking it up runs no user code (nothing of that name on the class, no __getattr__
    but nn.Module's)."""
    name: str = ""

    def check(self, v, const, value_of):
        return f"not hasattr({v}, {self.name!r})"

    def explain(self, value):
        if hasattr(value, self.name):
            return f"'{self.source.name()}' now has an attribute {self.name!r} (it had none when compiled)"
        return None

    def describe(self):
        return f"{self.source.name()} has no attribute {self.name!r}"

    def _key(self):
        return (self.name,)


@dataclass(frozen=True, eq=False)
class LenMatch(Guard):
    """A sequence or dict from outside, unpacked or iterated: its type and length (items have their own guards)."""
    expected_type: type = None
    length: int = 0

    def check(self, v, const, value_of):
        return f"(type({v}) is {const(self.expected_type)} and len({v}) == {self.length})"

    def explain(self, value):
        if type(value) is not self.expected_type:
            return (f"type of '{self.source.name()}' changed: expected {_typename(self.expected_type)}, "
                    f"got {_typename(type(value))}")
        if len(value) != self.length:
            return f"length of '{self.source.name()}' changed: expected {self.length}, got {len(value)}"
        return None

    def describe(self):
        return f"len({self.source.name()}) == {self.length} ({_typename(self.expected_type)})"

    def _key(self):
        return (self.expected_type, self.length)


@dataclass(frozen=True, eq=False)
class LenAtLeast(Guard):
    """A list from outside read only part-way (its first items, its last ones, or whether it is empty): it still
    has at least `length` items. Its exact length is no fact of the compile, so one that grows (a log appended to
    each call) keeps its entry (jit/variables/outside.py)."""
    length: int = 0

    def check(self, v, const, value_of):
        return f"len({v}) >= {self.length}"

    def explain(self, value):
        if len(value) < self.length:
            return f"length of '{self.source.name()}' fell below {self.length}: got {len(value)}"
        return None

    def describe(self):
        return f"len({self.source.name()}) >= {self.length}"

    def _key(self):
        return (self.length,)


@dataclass(frozen=True, eq=False)
class KeyIn(Guard):
    """A dict from outside looked up by one key (jit/variables/outside.py): that key is still there, or still
    missing. Its other keys are no fact of the compile."""
    dict_key: object = None  # (`key` names Guard.key)
    present: bool = True

    def check(self, v, const, value_of):
        return f"({literal_or_const(self.dict_key, const)} in {v}) is {self.present}"

    def explain(self, value):
        if (real_key(self.dict_key) in value) is not self.present:
            now = "now has" if not self.present else "no longer has"
            return f"'{self.source.name()}' {now} the key {self.dict_key!r}"
        return None

    def describe(self):
        return f"{self.dict_key!r} {'in' if self.present else 'not in'} {self.source.name()}"

    def _key(self):
        return (type(self.dict_key), self.dict_key, self.present)


@dataclass(frozen=True, eq=False)
class InferenceMatch(Guard):
    """A tensor input whose is_inference() the traced code read (made in torch.inference_mode or not)."""
    expected: bool = False

    def check(self, v, const, value_of):
        return f"{v}.is_inference() is {self.expected}"

    def explain(self, value):
        if value.is_inference() is not self.expected:
            return f"'{self.source.name()}'.is_inference() changed to {not self.expected}"
        return None

    def describe(self):
        return f"{self.source.name()}.is_inference() is {self.expected}"

    def _key(self):
        return (self.expected,)


@dataclass(frozen=True, eq=False)
class DictKeysMatch(Guard):
    """A dict (or OrderedDict) from outside: its exact type and its keys in order."""
    keys: tuple = ()
    dict_type: type = dict

    def check(self, v, const, value_of):
        kind = "dict" if self.dict_type is dict else const(self.dict_type)
        return f"(type({v}) is {kind} and tuple({v}) == {const(self.keys)})"

    def explain(self, value):
        if type(value) is not self.dict_type:
            return (f"type of '{self.source.name()}' changed: expected {_typename(self.dict_type)}, "
                    f"got {_typename(type(value))}")
        if tuple(value) != self.keys:
            return f"keys of '{self.source.name()}' changed: expected {list(self.keys)}, got {list(value)}"
        return None

    def describe(self):
        return f"keys({self.source.name()}) == {list(self.keys)}"

    def _key(self):
        return (self.keys, self.dict_type)


@dataclass(frozen=True, eq=False)
class TensorMatch(Guard):
    """A tensor input: exact type, dtype, device, sizes, strides and requires_grad. With dynamic sizes (see
    jit/dynamic.py) a dynamic dim's size is None: any size of at least 2 (0 and 1 stay specialized: broadcasting
    and empty tensors behave differently), and stride is None: contiguous, as the example was, so the strides
    follow from the sizes."""
    tensor_type: type = None
    dtype: object = None
    device: object = None
    size: tuple = ()
    stride: tuple | None = ()
    requires_grad: bool = False

    def __post_init__(self):
        object.__setattr__(self, "cost", 3)

    def check(self, v, const, value_of):
        if self.stride is not None:
            layout = f"{v}.shape == {self.size!r} and {v}.stride() == {self.stride!r}"
        else:
            dims = [f"{v}.shape[{d}] {'>= 2' if n is None else f'== {n}'}" for d, n in enumerate(self.size)]
            layout = " and ".join([f"{v}.dim() == {len(self.size)}", *dims, f"{v}.is_contiguous()"])
        return (f"(type({v}) is {const(self.tensor_type)} and {v}.dtype is {const(self.dtype)} and "
                f"{v}.device == {const(self.device)} and {layout} and {v}.requires_grad is {self.requires_grad})")

    def explain(self, value):
        name = self.source.name()
        if type(value) is not self.tensor_type:
            return f"type of '{name}' changed: expected {_typename(self.tensor_type)}, got {_typename(type(value))}"
        if value.dtype is not self.dtype:
            return f"tensor '{name}' dtype mismatch: expected {self.dtype}, got {value.dtype}"
        if value.device != self.device:
            return f"tensor '{name}' device mismatch: expected {self.device}, got {value.device}"
        if value.dim() != len(self.size):
            return f"tensor '{name}' rank mismatch: expected {len(self.size)} dims, got {value.dim()}"
        for d, (want, got) in enumerate(zip(self.size, value.shape)):
            if want is None and got < 2:
                return f"tensor '{name}' size at dynamic dim {d} is {got} (sizes 0 and 1 are specialized)"
            if want is not None and want != got:
                return f"tensor '{name}' size mismatch at dim {d}: expected {want}, got {got}"
        if self.stride is None and not value.is_contiguous():
            return f"tensor '{name}' is not contiguous (its dynamic sizes were compiled for a contiguous tensor)"
        if self.stride is not None and value.stride() != self.stride:
            return f"tensor '{name}' stride mismatch: expected {self.stride}, got {value.stride()}"
        if value.requires_grad != self.requires_grad:
            return f"tensor '{name}' requires_grad mismatch: expected {self.requires_grad}, got {value.requires_grad}"
        return None

    def describe(self):
        sizes = "[" + ", ".join("*" if n is None else str(n) for n in self.size) + "]"
        layout = f"stride={list(self.stride)}" if self.stride is not None else "contiguous"
        return (f"{self.source.name()}: {_typename(self.tensor_type)} {self.dtype} {self.device} size={sizes} "
                f"{layout} requires_grad={self.requires_grad}")

    def _key(self):
        return (self.tensor_type, self.dtype, self.device, self.size, self.stride, self.requires_grad)


@dataclass(frozen=True, eq=False)
class GradModeMatch(Guard):
    """Global autograd state: the graph was captured with grad mode on or off."""
    enabled: bool = True

    def check(self, v, const, value_of):
        return f"{const(_grad_enabled())}() is {self.enabled}"

    def explain(self, value=None):
        if _grad_enabled()() is not self.enabled:
            return f"grad mode changed: expected {'enabled' if self.enabled else 'disabled'}"
        return None

    def describe(self):
        return f"grad mode {'enabled' if self.enabled else 'disabled'}"

    def _key(self):
        return (self.enabled,)


@dataclass(frozen=True, eq=False)
class StateMatch(Guard):
    """A global state the traced code asked about (torch.is_autocast_enabled("cuda")): the same answer now."""
    fn: object = None
    args: tuple = ()
    expected: object = None

    def check(self, v, const, value_of):
        return f"{const(self.fn)}(*{const(self.args)}) == {const(self.expected)}"

    def explain(self, value=None):
        now = self.fn(*self.args)
        if now != self.expected:
            return f"{self.describe()} changed to {now!r}"
        return None

    def describe(self):
        return f"{getattr(self.fn, '__name__', self.fn)}{self.args!r} == {self.expected!r}"

    def _key(self):
        return (self.fn, self.args, self.expected)


def remaining_items(it) -> tuple:
    """What an iterator will still give, read without advancing it (its __reduce__): for tuple, list, dict and
    range iterators. Numbers, strings and the like by value, tuples item by item (enumerate's fresh (i, x)
    pairs), anything else by identity."""
    reduced = it.__reduce__()
    seq = reduced[1][0]
    start = reduced[2] if len(reduced) > 2 else 0
    if isinstance(seq, range):
        return (seq[start:],)
    return tuple(_item_key(x) for x in seq[start:])


def _item_key(x):
    if type(x) in (int, float, str, bool, type(None)):
        return (type(x), x)
    if type(x) is tuple:
        return tuple(_item_key(y) for y in x)
    return id(x)


@dataclass(frozen=True, eq=False)
class IteratorMatch(Guard):
    """An iterator from outside (a loop in progress handed to a resume function): its type and the very items it
    will still give, in order."""
    iter_type: type = None
    remaining: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "cost", 3)

    def check(self, v, const, value_of):
        return f"(type({v}) is {const(self.iter_type)} and {const(remaining_items)}({v}) == {const(self.remaining)})"

    def explain(self, value):
        if type(value) is not self.iter_type or remaining_items(value) != self.remaining:
            return f"'{self.source.name()}' will give other items than when compiled"
        return None

    def describe(self):
        return f"{self.source.name()} gives the same {len(self.remaining)} items"

    def _key(self):
        return (self.iter_type, self.remaining)


@dataclass(frozen=True, eq=False)
class NoHooks(Guard):
    """The modules the graph inlined still have no forward/backward hooks: their hook dicts (fixed objects of
    modules guarded by identity) are all empty. One `any` over all of them, however many modules."""
    dicts: tuple = ()

    def check(self, v, const, value_of):
        return f"not any({const(self.dicts)})"

    def explain(self, value=None):
        return "a hook was registered on a module the compiled code runs" if any(self.dicts) else None

    def describe(self):
        return f"no hooks on the {len(self.dicts) // 4 or len(self.dicts)} modules inlined"

    def _key(self):
        return (id(self.dicts),)


def _grad_enabled():
    import torch
    return torch.is_grad_enabled


def _global_like():
    from framejit.guards.sources import BuiltinSource, GlobalSource
    return (GlobalSource, BuiltinSource)


def _short(obj) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"<{name} at {id(obj):#x}>"


@dataclass(frozen=True, eq=False)
class AliasMatch(Guard):
    """Two sources were the same object when compiled (tied weights): the graph reads it once."""
    other: Source = None

    def check(self, v, const, value_of):
        return f"{v} is {value_of(self.other)}"

    def explain(self, value):
        return None  # explained by why_failed through the other source's own guard, or below

    def describe(self):
        return f"{self.source.name()} is {self.other.name()}"

    def _key(self):
        return (self.other,)


def storage_pattern(tensors) -> tuple:
    """Which tensors share memory: for each, the index of the first one with its storage and how far apart their
    offsets are (its own index and 0 when none does). Empty storages share nothing."""
    firsts: dict = {}
    out = []
    for i, t in enumerate(tensors):
        storage = t.untyped_storage()
        j = firsts.setdefault((storage.data_ptr(), t.device) if storage.nbytes() else i, i)
        out.append((j, t.storage_offset() - tensors[j].storage_offset()))
    return tuple(out)


@dataclass(frozen=True, eq=False)
class StorageMatch(Guard):
    """Which tensor inputs of a graph that writes share memory, as when compiled: whether a write through one is
    seen through another, or overlaps what it copies from (an error in eager), was decided for that sharing."""
    others: tuple = ()
    pattern: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "cost", 4)  # after the tensor checks: these are tensors now

    def check(self, v, const, value_of):
        items = ", ".join([v, *(value_of(o) for o in self.others)])
        return f"{const(storage_pattern)}(({items},)) == {self.pattern!r}"

    def explain_from(self, read):
        sources = (self.source, *self.others)
        now = storage_pattern([read(s) for s in sources])
        for (j, d), (k, e), s in zip(self.pattern, now, sources):
            if (j, d) != (k, e):
                was = f"shared memory with '{sources[j].name()}'" if sources[j] is not s else "had memory of its own"
                return f"'{s.name()}' {was} when compiled, and now does not (or at another offset)"
        return None

    def explain(self, value):
        return None

    def describe(self):
        names = ", ".join(s.name() for s in (self.source, *self.others))
        return f"memory shared among ({names}) as {self.pattern}"

    def _key(self):
        return (self.others, self.pattern)


@dataclass(frozen=True, eq=False)
class NotAlias(Guard):
    """Two sources were different objects when compiled, and the code compared them with `is` (or `in`)."""
    other: Source = None

    def check(self, v, const, value_of):
        return f"{v} is not {value_of(self.other)}"

    def explain(self, value):
        return None

    def explain_from(self, read):
        if read(self.source) is read(self.other):
            return f"'{self.source.name()}' is now the same object as '{self.other.name()}'"
        return None

    def describe(self):
        return f"{self.source.name()} is not {self.other.name()}"

    def _key(self):
        return (self.other,)


@dataclass(frozen=True, eq=False)
class SizeRelation(Guard):
    """A comparison of dynamic sizes that the traced Python code branched on, e.g. x.size(0) > 4 is True; also
    the equality of two dynamic dims that had the same size (they share one symbol, so the graph may rely on it)."""
    expr: object = None        # a guards.size_expr.SizeExpr holding the comparison
    expected: bool = True

    def check(self, v, const, value_of):
        return f"({self.expr.render(value_of)}) is {self.expected}"

    def explain_from(self, read):
        if bool(self.expr.evaluate(read)) is not self.expected:
            return f"size relation changed: expected {self.expr.text()} to be {self.expected}"
        return None

    def explain(self, value):
        return None

    def describe(self):
        return f"({self.expr.text()}) is {self.expected}"

    def _key(self):
        return (self.expr, self.expected)

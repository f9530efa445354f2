"""Sources: where a value the compiled code relies on came from, relative to a frame.

A source renders as a Python expression over the guard function's parameters (the frame's argument vector, then
`__fn`, the frame's function) and as a readable name for messages ("self.lin.weight", "global 'SCALE'").
`expr(const)` may refer to long-lived objects (a module's globals dict, a closure cell, a function) through
`const(obj)`, which names a constant of the generated guard function.
Attribute reads on nn.Modules go through the module's own dicts (_parameters, _buffers, _modules), which is what
nn.Module.__getattr__ does, minus its Python call."""
from __future__ import annotations

import contextvars
import keyword
import re
import sys
from dataclasses import dataclass, field


class Source:
    def expr(self, const) -> str:
        raise NotImplementedError

    def name(self) -> str:
        raise NotImplementedError

    def root(self) -> Source:
        return self

    def root_is_local(self) -> bool:
        """Read from an argument of the frame (not a global, a constant or a closure)."""
        return isinstance(self.root(), LocalSource)

    def __str__(self) -> str:
        return self.name()


def param_name(local: str) -> str:
    """The guard function's parameter for an argument: the argument's own name when it is an identifier
    (listcomp frames in 3.11 have one called `.0`)."""
    return local if local.isidentifier() and not keyword.iskeyword(local) else "__arg_" + re.sub(r"\W", "_", local)


@dataclass(frozen=True)
class LocalSource(Source):
    """An argument of the frame (only arguments are bound when a frame starts). `shown`: what the user calls it,
    where that is not its name: a resume function's stack value (`___stack1`) named by where it came from in the
    code it continues (`self.loss_fct`), for messages; not part of its identity."""
    local: str
    shown: str = field(default="", compare=False)

    def expr(self, const) -> str:
        return param_name(self.local)

    def name(self) -> str:
        return self.shown or self.local


@dataclass(frozen=True)
class GlobalSource(Source):
    """A global of the frame's function, or of another function's globals dict (`namespace`) when inlined."""
    global_name: str
    namespace: dict | None = field(default=None, compare=False, hash=False)

    def expr(self, const) -> str:
        base = "__fn.__globals__" if self.namespace is None else const(self.namespace)
        return f"{base}[{self.global_name!r}]"

    def name(self) -> str:
        return f"global '{self.global_name}'"


@dataclass(frozen=True)
class BuiltinSource(Source):
    """A name found in builtins because the frame's globals do not define it."""
    builtin: str
    namespace: dict | None = field(default=None, compare=False, hash=False)

    def expr(self, const) -> str:
        # What the name resolves to: a global of that name would shadow the builtin.
        base = "__fn.__globals__" if self.namespace is None else const(self.namespace)
        return f"{base}.get({self.builtin!r}, __builtins__[{self.builtin!r}])"

    def name(self) -> str:
        return f"builtin '{self.builtin}'"


@dataclass(frozen=True)
class ClosureSource(Source):
    """The contents of the frame function's closure cell `index` (free variable `var`)."""
    index: int
    var: str

    def expr(self, const) -> str:
        return f"__fn.__closure__[{self.index}].cell_contents"

    def name(self) -> str:
        return self.var


@dataclass(frozen=True)
class ClosureCellSource(Source):
    """The frame function's closure cell `index` itself (free variable `var`): to check that a cell reached
    another way (a nested function's __closure__) is this very cell."""
    index: int
    var: str

    def expr(self, const) -> str:
        return f"__fn.__closure__[{self.index}]"

    def name(self) -> str:
        return f"cell of {self.var}"


@dataclass(frozen=True)
class AttrSource(Source):
    base: Source
    attr: str
    # read as object.__getattribute__ reads it: base's class has its own __getattribute__, which `base.attr` would
    # run (user code in a guard; inside that very __getattribute__, itself again: transformers' configs)
    generic: bool = False

    def expr(self, const) -> str:
        if self.generic:
            return f"{const(object.__getattribute__)}({self.base.expr(const)}, {self.attr!r})"
        return f"{self.base.expr(const)}.{self.attr}"

    def name(self) -> str:
        return f"{self.base.name()}.{self.attr}"

    def root(self) -> Source:
        return self.base.root()


@dataclass(frozen=True)
class ModuleDictSource(Source):
    """`base.attr` where base is an nn.Module and attr lives in one of its dicts (_parameters, _buffers, _modules)."""
    base: Source
    store: str
    attr: str

    def expr(self, const) -> str:
        return f"{self.base.expr(const)}.{self.store}[{self.attr!r}]"

    def name(self) -> str:
        return f"{self.base.name()}.{self.attr}"

    def root(self) -> Source:
        return self.base.root()


def literal_or_const(key, const) -> str:
    """A dict key or index in guard code: its repr where that reads back as itself, else a named constant (a class
    key, a dtype, the object of an IdentityKey)."""
    if isinstance(key, IdentityKey):
        return const(key.obj)
    return repr(key) if type(key) in (str, int, bool, type(None)) else const(key)


class IdentityKey:
    """A dict key hashed and compared by identity whose own == is no truth value (a parameter keying an
    optimizer's state), as sources and guards hold it: compared by identity, named by address."""
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, IdentityKey) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)

    def __repr__(self):
        return f"<{type(self.obj).__name__} at {id(self.obj):#x}>"


def source_key(key):
    """`key` as a source or guard holds it."""
    torch = sys.modules.get("torch")
    return IdentityKey(key) if torch is not None and isinstance(key, torch.Tensor) else key


def real_key(key):
    return key.obj if isinstance(key, IdentityKey) else key


@dataclass(frozen=True)
class ItemSource(Source):
    base: Source
    key: object  # int, str or another constant
    # an item of a dict subclass, read with dict.get: `d[key]` would call a defaultdict's __missing__ and insert a
    # default (a guard of another entry, tried on a dict without the key, must not change the user's dict), or
    # the class's own __getitem__
    no_default: bool = False

    def expr(self, const) -> str:
        if self.no_default:
            return f"{const(dict.get)}({self.base.expr(const)}, {literal_or_const(self.key, const)})"
        return f"{self.base.expr(const)}[{literal_or_const(self.key, const)}]"

    def name(self) -> str:
        return f"{self.base.name()}[{self.key!r}]"

    def root(self) -> Source:
        return self.base.root()


@dataclass(frozen=True)
class FloatTensorSource(Source):
    """A Python float handed to a graph as a 0-dim float64 tensor made at each call (jit/variables/floats.py)."""
    base: Source

    def expr(self, const) -> str:
        return f"{const(float_tensor)}({self.base.expr(const)})"

    def name(self) -> str:
        return self.base.name()

    def root(self) -> Source:
        return self.base.root()


def float_tensor(value: float):
    import torch  # loaded: a graph with a float input exists
    return torch.tensor(value, dtype=torch.float64)


@dataclass(frozen=True)
class DictValueSource(Source):
    """The value at a position of a dict: a module's forward hooks, which modules guarded by structure hold under
    other keys (hook handles count up per registration) but in the same order."""
    base: Source
    index: int

    def expr(self, const) -> str:
        return f"list({self.base.expr(const)}.values())[{self.index}]"

    def name(self) -> str:
        return f"list({self.base.name()}.values())[{self.index}]"

    def root(self) -> Source:
        return self.base.root()


@dataclass(frozen=True)
class CallResultSource(Source):
    """What calling an object with no arguments gives: a weakref's referent (nn.RNN keeps its flat weights as
    weakref.ref objects and calls them in each forward)."""
    base: Source

    def expr(self, const) -> str:
        return f"{self.base.expr(const)}()"

    def name(self) -> str:
        return f"{self.base.name()}()"

    def root(self) -> Source:
        return self.base.root()


@dataclass(frozen=True)
class DefaultSource(Source):
    """A default value of a function reached from the frame (kw-only defaults when `kw`)."""
    base: Source
    index: int | str
    kw: bool = False

    def expr(self, const) -> str:
        if self.kw:
            return f"{self.base.expr(const)}.__kwdefaults__[{self.index!r}]"
        return f"{self.base.expr(const)}.__defaults__[{self.index}]"

    def name(self) -> str:
        return f"{self.base.name()}.<default {self.index}>"

    def root(self) -> Source:
        return self.base.root()


@dataclass(frozen=True)
class ConstSource(Source):
    """A long-lived object referenced directly (a closure cell, a function reached through a class)."""
    obj: object = field(compare=False, hash=False)
    label: str = "<object>"

    def expr(self, const) -> str:
        return const(self.obj)

    def name(self) -> str:
        return self.label

    def __hash__(self):
        return hash(("ConstSource", id(self.obj)))

    def __eq__(self, other):
        return isinstance(other, ConstSource) and other.obj is self.obj


@dataclass(frozen=True)
class TypeSource(Source):
    base: Source

    def expr(self, const) -> str:
        return f"type({self.base.expr(const)})"

    def name(self) -> str:
        return f"type({self.base.name()})"

    def root(self) -> Source:
        return self.base.root()


class _NoValue:
    """What ContextVarValueSource reads from a ContextVar holding no value in the current context (one object,
    compared by identity)."""

    def __repr__(self):
        return "<no value>"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class ContextVarValueSource(Source):
    """The value a contextvars.ContextVar `base` holds in the calling thread's current context, or NO_VALUE:
    `ContextVar.get(base, NO_VALUE)` (the unbound C method, so anything but a ContextVar fails to read; the
    argument wins over the var's own default, so NO_VALUE means "not set")."""
    base: Source

    def expr(self, const) -> str:
        return f"{const(contextvars.ContextVar.get)}({self.base.expr(const)}, {const(NO_VALUE)})"

    def name(self) -> str:
        return f"{self.base.name()}.get()"

    def root(self) -> Source:
        return self.base.root()

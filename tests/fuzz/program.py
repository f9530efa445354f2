"""A generated program as data: expressions, statements, inputs and the calls to make.

Programs are trees, not text, so the minimizer can delete a statement or replace an expression by one of its
operands and render the result again; `Program.source()` is the only place text is produced. Inputs are
described too, and rendered as the Python expression that builds them (`TensorInput.expr`): the fuzzer builds
every input by evaluating that same text, so a saved reproducer builds exactly what the failing run saw.
"""
from __future__ import annotations

import dataclasses
import linecache
import math
from dataclasses import dataclass
from typing import Any, Union

import torch
import torch.nn.functional as F

# ---- expressions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    id: str

    def render(self) -> str:
        return self.id


@dataclass(frozen=True)
class Lit:
    """Python source taken as is: a literal (2, 0.5, torch.float16, "a") or an expression not worth a tree."""
    text: str

    def render(self) -> str:
        return self.text


@dataclass(frozen=True)
class Call:
    """An operation: `template` with {0}, {1}.. standing for the rendered operands (templates carry their own
    parentheses, so rendering never needs to know operator precedence)."""
    template: str
    args: tuple

    def render(self) -> str:
        return self.template.format(*(a.render() for a in self.args))


Expr = Union[Name, Lit, Call]

# ---- statements ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assign:
    target: str  # a name, "a, b" (unpacking), "x[1:]" (setitem) or "x += " style targets via `op`
    value: Expr
    op: str = "="  # "=", "+=", "*=", ...

    def lines(self) -> list[str]:
        return [f"{self.target} {self.op} {self.value.render()}"]


@dataclass(frozen=True)
class ExprStmt:
    value: Expr

    def lines(self) -> list[str]:
        return [self.value.render()]


@dataclass(frozen=True)
class Raw:
    """A statement with no parts worth shrinking: pass, break, nonlocal n, raise ValueError(..)."""
    text: str

    def lines(self) -> list[str]:
        return [self.text]


@dataclass(frozen=True)
class If:
    test: Expr
    body: tuple
    orelse: tuple = ()

    def lines(self) -> list[str]:
        out = [f"if {self.test.render()}:", *_indent(self.body)]
        if self.orelse:
            out += ["else:", *_indent(self.orelse)]
        return out


@dataclass(frozen=True)
class For:
    target: str
    iter: Expr
    body: tuple

    def lines(self) -> list[str]:
        return [f"for {self.target} in {self.iter.render()}:", *_indent(self.body)]


@dataclass(frozen=True)
class While:
    """`counter = 0; while counter < min(limit, 4): counter += 1; body`: one node, so no edit of the body (the
    minimizer's) can make the loop endless."""
    counter: str
    limit: Expr
    body: tuple

    def lines(self) -> list[str]:
        return [f"{self.counter} = 0", f"while {self.counter} < min({self.limit.render()}, 4):",
                f"    {self.counter} += 1", *_indent(self.body)]


@dataclass(frozen=True)
class Try:
    body: tuple
    exc: str  # what the handler catches, as source: "RuntimeError" or "(IndexError, KeyError)"
    handler: tuple

    def lines(self) -> list[str]:
        return ["try:", *_indent(self.body), f"except {self.exc}:", *_indent(self.handler)]


@dataclass(frozen=True)
class Def:
    name: str
    params: str
    body: tuple

    def lines(self) -> list[str]:
        return [f"def {self.name}({self.params}):", *_indent(self.body)]


@dataclass(frozen=True)
class Return:
    value: Expr

    def lines(self) -> list[str]:
        return [f"return {self.value.render()}"]


Stmt = Union[Assign, ExprStmt, Raw, If, For, While, Try, Def, Return]
BLOCK_FIELDS = {If: ("body", "orelse"), For: ("body",), While: ("body",), Try: ("body", "handler"), Def: ("body",)}


def _indent(body: tuple) -> list[str]:
    return ["    " + line for stmt in (body or (Raw("pass"),)) for line in stmt.lines()]


def render_block(body: tuple) -> list[str]:
    return [line for stmt in body for line in stmt.lines()]

# ---- inputs --------------------------------------------------------------------------------------------------


FLOATING = ("float32", "float64", "float16", "bfloat16")
DTYPES = FLOATING + ("int32", "int64", "bool")


@dataclass(frozen=True)
class TensorInput:
    """A tensor argument. `dims` are size symbols ("A", "B": their values come from each call's sizes, so inputs
    sharing a symbol stay broadcastable when sizes change) or fixed ints (1 keeps a broadcast dim).

    layout: "contiguous"; "transpose" (last two dims swapped from a contiguous base); "step" (every second element
    of a base twice as long in the last dim); "offset" (a base with one more row, sliced [1:]); "expand" (dim 0 of
    size 1 expanded: stride 0, so an in-place write to it raises in eager)."""
    name: str
    dtype: str
    dims: tuple
    layout: str = "contiguous"
    seed: int = 0

    def shape(self, sizes: dict) -> tuple:
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.dims)

    def expr(self, sizes: dict, call: int) -> str:
        shape = list(self.shape(sizes))
        layout = self.layout if _layout_fits(self.layout, shape) else "contiguous"
        base = list(shape)
        view = ""
        if layout == "transpose":
            base[-1], base[-2] = base[-2], base[-1]
            view = ".transpose(-1, -2)"
        elif layout == "step":
            base[-1] = 2 * base[-1]
            view = "[..., ::2]"
        elif layout == "offset":
            base[0] += 1
            view = "[1:]"
        elif layout == "expand":
            base[0] = 1
            view = f".expand({', '.join(map(str, shape))})"
        gen = f"generator=torch.Generator().manual_seed({self.seed * 10 + call})"
        size = f"({', '.join(map(str, base))}{',' if len(base) == 1 else ''})"
        if self.dtype == "bool":
            made = f"(torch.randn({size}, {gen}) > 0)"
        elif self.dtype in FLOATING:
            cast = "" if self.dtype == "float32" else f".to(torch.{self.dtype})"
            made = f"torch.randn({size}, {gen}){cast}"
        else:
            made = f"torch.randint(-4, 5, {size}, {gen}, dtype=torch.{self.dtype})"
        return made + view


def _layout_fits(layout: str, shape: list) -> bool:
    if layout == "transpose":
        return len(shape) >= 2
    if layout == "expand":
        return len(shape) >= 1 and shape[0] != 1
    return layout == "contiguous" or len(shape) >= 1


@dataclass(frozen=True)
class ScalarInput:
    """A Python int / float / bool argument with one value per call."""
    name: str
    values: tuple

    def expr(self, sizes: dict, call: int) -> str:
        return repr(self.values[call])


@dataclass(frozen=True)
class ListInput:
    """A list of tensors as one argument."""
    name: str
    items: tuple  # of TensorInput

    def expr(self, sizes: dict, call: int) -> str:
        return "[" + ", ".join(t.expr(sizes, call) for t in self.items) + "]"


Input = Union[TensorInput, ScalarInput, ListInput]

# ---- the program ---------------------------------------------------------------------------------------------

# What generated code may name besides its own variables: rendered in every reproducer's header too.
HEADER = "import math\nimport torch\nimport torch.nn.functional as F\n"
GLOBALS = {"math": math, "torch": torch, "F": F}


@dataclass(frozen=True)
class Program:
    seed: int
    params: tuple  # of Input
    body: tuple  # of Stmt, ending in a Return
    calls: tuple  # one {symbol: size} per call; ScalarInput.values are indexed by call too

    def source(self, name: str = "f") -> str:
        signature = ", ".join(p.name for p in self.params)
        return "\n".join([f"def {name}({signature}):", *_indent(self.body)]) + "\n"

    def function(self, tag: str = ""):
        """A fresh function object from the source (its own code object, so compiled caches never meet)."""
        text = self.source()
        filename = f"<fuzz seed {self.seed}{tag}>"
        # linecache lets tracebacks and the compiler's file:line locations show the generated lines
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        namespace = dict(GLOBALS)
        exec(compile(text, filename, "exec"), namespace)
        return namespace["f"]

    def arg_exprs(self, call: int) -> list[str]:
        return [p.expr(self.calls[call], call) for p in self.params]

    def make_args(self, call: int) -> list[Any]:
        """Fresh arguments for one call: every call of this builds new, identical tensors."""
        return [eval(text, dict(GLOBALS)) for text in self.arg_exprs(call)]

    def lowest_float(self) -> torch.dtype | None:
        """The least precise floating dtype the program may compute in (from its inputs and source text)."""
        text = self.source()
        tensors = [x for x in self.params if isinstance(x, TensorInput)] + \
            [t for x in self.params if isinstance(x, ListInput) for t in x.items]
        dtypes = {t.dtype for t in tensors}
        if "bfloat16" in dtypes or "bfloat16" in text:
            return torch.bfloat16
        if "float16" in dtypes or "float16" in text or "half()" in text:
            return torch.float16
        return None

    def replace(self, **changes) -> "Program":
        return dataclasses.replace(self, **changes)

    def reproducer(self, backend: str) -> str:
        """A standalone script: the function, its calls, eager and compiled results side by side."""
        compile_args = {"default": "", "eager": 'backend="eager"', "numpy": 'backend="numpy"'}.get(
            backend, f"backend={backend!r}")
        calls = ",\n".join(f"    lambda: ({', '.join(self.arg_exprs(i))}{',' if len(self.params) == 1 else ''})"
                           for i in range(len(self.calls)))
        return (f"{HEADER}import jit\n\n{self.source()}\ncalls = [\n{calls},\n]\n"
                f"compiled = jit.compile(f{', ' + compile_args if compile_args else ''})\n\n\n"
                "def run(fn, args):\n"
                "    try:\n"
                "        return fn(*args)\n"
                "    except Exception as e:\n"
                "        return f'raised {type(e).__name__}: {e}'\n\n\n"
                "for make in calls:\n"
                "    args = make()\n"
                "    print('eager:   ', run(f, args), args)\n"
                "    args = make()\n"
                "    print('compiled:', run(compiled, args), args)\n")

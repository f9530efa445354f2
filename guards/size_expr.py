"""Integer expressions over input tensor sizes, e.g. `x.shape[0] * x.shape[1] + 1`, for guards on dynamic sizes.

A size that a traced frame compared in Python (`if x.size(0) > 4:`) becomes a guard on such an expression, so the
compiled code runs for every size that takes the same branch. Expressions render as Python for the generated
guard function and evaluate directly for failure messages."""
from __future__ import annotations

import operator
from dataclasses import dataclass

from framejit.guards.sources import Source

OPS = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.floordiv: "//", operator.mod: "%",
       operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">=", operator.eq: "==",
       operator.ne: "!="}


class SizeExpr:
    def render(self, value_of) -> str:
        """Python source; `value_of(source)` names the value of a source in the generated function."""
        raise NotImplementedError

    def evaluate(self, read) -> int:
        """The value now; `read(source)` returns a source's current value."""
        raise NotImplementedError

    def text(self) -> str:
        """For messages: x.size(0) * 2."""
        raise NotImplementedError

    def sources(self) -> list[Source]:
        return []


@dataclass(frozen=True)
class Dim(SizeExpr):
    source: Source
    dim: int

    def render(self, value_of):
        return f"{value_of(self.source)}.shape[{self.dim}]"

    def evaluate(self, read):
        return read(self.source).shape[self.dim]

    def text(self):
        return f"{self.source.name()}.size({self.dim})"

    def sources(self):
        return [self.source]


@dataclass(frozen=True)
class Num(SizeExpr):
    value: int

    def render(self, value_of):
        return repr(self.value)

    def evaluate(self, read):
        return self.value

    def text(self):
        return repr(self.value)


@dataclass(frozen=True)
class BinOp(SizeExpr):
    op: object
    left: SizeExpr
    right: SizeExpr

    def render(self, value_of):
        return f"({self.left.render(value_of)} {OPS[self.op]} {self.right.render(value_of)})"

    def evaluate(self, read):
        return self.op(self.left.evaluate(read), self.right.evaluate(read))

    def text(self):
        return f"{_paren(self.left)} {OPS[self.op]} {_paren(self.right)}"

    def sources(self):
        return self.left.sources() + self.right.sources()


def _paren(e: SizeExpr) -> str:
    return f"({e.text()})" if isinstance(e, BinOp) else e.text()


def combine(op, left: SizeExpr | None, right: SizeExpr | None) -> SizeExpr | None:
    """op(left, right), or None when either side cannot be expressed over inputs."""
    if left is None or right is None or op not in OPS:
        return None
    return BinOp(op, left, right)

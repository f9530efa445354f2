"""Compile an entry's guards into one Python function: guard(*argument_vector, __fn) -> bool.

The function is straight-line code: each source value is computed once into a local (a module reached through
`self._modules['h']._modules['0']` is walked once, not once per parameter guard), and checks run cheapest and
likeliest-to-fail first. Any exception while checking (a missing attribute, a changed global) means "does not
match". `why_failed(*args, fn)` walks the guards one by one and returns the first failure in words."""
from __future__ import annotations

import builtins
import dataclasses
from dataclasses import dataclass

from framejit.guards.kinds import Guard
from framejit.guards.sources import LocalSource, Source, param_name


@dataclass(frozen=True)
class _Named(Source):
    """A source already held in a local of the generated function."""
    var: str

    def expr(self, const) -> str:
        return self.var

    def name(self) -> str:
        return self.var


@dataclass
class CompiledGuards:
    guards: list[Guard]
    fn: callable            # the check the hook calls
    source_text: str        # generated Python, for JIT_LOGS=guards and debugging
    arg_names: tuple[str, ...]
    _namespace: dict
    _const: callable

    def _reader(self, args: tuple):
        """read(source) -> the source's value for this argument vector (the last item is the function)."""
        env = dict(zip(map(param_name, self.arg_names), args[:-1]), __fn=args[-1])
        return lambda source: eval(source.expr(self._const), self._namespace, env)  # noqa: S307 - generated here

    def why_failed(self, *args) -> str:
        return self.first_failure(*args)[1]

    def first_failure(self, *args) -> tuple[tuple, str]:
        """(what failed, why in words) for the first guard these arguments fail. What failed is the source the
        guard reads (its kind where it reads none), the same in every entry of a code, so that a recompile log
        can say each once."""
        read = self._reader(args)
        for g in self.guards:
            try:
                reason = g.explain_from(read)
            except Exception as e:  # noqa: BLE001 - a source that cannot be read is the reason
                return _failed(g), f"'{g.source.name()}' could not be read: {type(e).__name__}: {e}"
            if reason:
                return _failed(g), reason
        return ("pass",), "all guards pass"

    def read_all(self, *args) -> list:
        """(guard, its source's current value) for each guard whose source can be read with these arguments."""
        read = self._reader(args)
        out = []
        for g in self.guards:
            if g.source is not None:
                try:
                    out.append((g, read(g.source)))
                except Exception:  # noqa: BLE001,S112 - unreadable now: nothing to learn from it
                    continue
        return out

    def describe(self) -> list[str]:
        return [g.describe() for g in self.guards]


def _failed(g: Guard) -> tuple:
    return ("source", g.source) if g.source is not None else ("kind", type(g).__name__)


def dedupe(guards: list[Guard]) -> list[Guard]:
    seen, out = set(), []
    for g in guards:
        k = g.key()
        if k not in seen:
            seen.add(k)
            out.append(g)
    return out


class _Body:
    def __init__(self, const):
        self.const = const
        self.lines: list[str] = []
        self.locals: dict[Source, str] = {}

    def value(self, source: Source) -> str:
        """A local name (or argument) holding the source's value, emitting its computation once."""
        if isinstance(source, LocalSource):
            return param_name(source.local)
        name = self.locals.get(source)
        if name is not None:
            return name
        base = getattr(source, "base", None)
        expr = dataclasses.replace(source, base=_Named(self.value(base))).expr(self.const) if base is not None \
            else source.expr(self.const)
        name = self.locals[source] = f"__v{len(self.locals)}"
        self.lines.append(f"{name} = {expr}")
        return name


def compile_guards(guards: list[Guard], arg_names: tuple[str, ...], name: str = "guard") -> CompiledGuards:
    guards = sorted(dedupe(guards), key=lambda g: g.cost)
    consts: dict[int, tuple[str, object]] = {}

    def const(obj) -> str:
        entry = consts.get(id(obj))
        if entry is None:
            entry = consts[id(obj)] = (f"__c{len(consts)}", obj)
        return entry[0]

    body = _Body(const)
    for g in guards:
        v = body.value(g.source) if g.source is not None else "None"
        body.lines.append(f"if not ({g.check(v, const, body.value)}): return False")
    params = ", ".join((*map(param_name, arg_names), "__fn"))
    lines = "\n        ".join(body.lines + ["return True"])
    text = (f"def {name}({params}):\n"
            f"    try:\n"
            f"        {lines}\n"
            f"    except Exception:\n"
            f"        return False\n")
    namespace = {n: obj for n, obj in consts.values()}
    namespace["__builtins__"] = builtins.__dict__
    exec(compile(text, f"<jit guards of {name}>", "exec"), namespace)  # noqa: S102 - generated here
    return CompiledGuards(guards, namespace[name], text, arg_names, namespace, const)

"""Compile an entry's guards into one Python function: guard(*argument_vector, __fn) -> bool.

The body is a single `and` chain, cheapest and likeliest-to-fail checks first, each source expression evaluated
where it is used. Any exception while checking (a missing attribute, a changed global) means "does not match".
`why_failed(*args, fn)` walks the same guards one by one and returns the first failure in words."""
from __future__ import annotations

import builtins
from dataclasses import dataclass

from guards.kinds import Guard


@dataclass
class CompiledGuards:
    guards: list[Guard]
    fn: callable            # the check the hook calls
    source_text: str        # generated Python, for JIT_LOGS=guards and debugging
    arg_names: tuple[str, ...]
    _namespace: dict
    _const: callable

    def why_failed(self, *args) -> str:
        env = dict(zip(self.arg_names, args[:-1]), __fn=args[-1])
        for g in self.guards:
            if g.source is None:
                reason = g.explain(None)
            else:
                try:
                    value = eval(g.source.expr(self._const), self._namespace, env)  # noqa: S307 - our own generated expression
                except Exception as e:  # noqa: BLE001
                    return f"'{g.source.name()}' could not be read: {type(e).__name__}: {e}"
                reason = g.explain(value)
            if reason:
                return reason
        return "all guards pass"

    def describe(self) -> list[str]:
        return [g.describe() for g in self.guards]


def dedupe(guards: list[Guard]) -> list[Guard]:
    seen, out = set(), []
    for g in guards:
        k = g.key()
        if k not in seen:
            seen.add(k)
            out.append(g)
    return out


def compile_guards(guards: list[Guard], arg_names: tuple[str, ...], name: str = "guard") -> CompiledGuards:
    guards = sorted(dedupe(guards), key=lambda g: g.cost)
    consts: dict[int, tuple[str, object]] = {}

    def const(obj) -> str:
        entry = consts.get(id(obj))
        if entry is None:
            entry = consts[id(obj)] = (f"__c{len(consts)}", obj)
        return entry[0]

    checks = [g.check(g.source.expr(const) if g.source is not None else "None", const) for g in guards]
    params = ", ".join((*arg_names, "__fn"))
    body = "\n        and ".join(checks) if checks else "True"
    text = (f"def {name}({params}):\n"
            f"    try:\n"
            f"        return ({body})\n"
            f"    except Exception:\n"
            f"        return False\n")
    namespace = {n: obj for n, obj in consts.values()}
    namespace["__builtins__"] = builtins.__dict__
    exec(compile(text, f"<jit guards of {name}>", "exec"), namespace)  # noqa: S102 - generated here
    return CompiledGuards(guards, namespace[name], text, arg_names, namespace, const)

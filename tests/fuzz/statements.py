"""Statement kinds of a generated program: each builds candidate statements in a Scope and keeps them only if the
program so far still runs (generator.Generator.run). One function per kind, drawn through KINDS."""
from __future__ import annotations

import torch

from . import ops
from .generator import Generator, Scope
from .program import Assign, Call, Def, Expr, ExprStmt, For, If, Lit, Name, Raw, Return, Try, While

# ---- straight-line statements ------------------------------------------------------------------------------------


def assign(g: Generator, scope: Scope):
    return g.assign(scope)


def inplace(g: Generator, scope: Scope):
    """An in-place write: a method (x.add_(y)), an augmented assignment (x += y) or an item assignment
    (x[0] = y), to an input, an intermediate or a view of either."""
    target = g.tensor(scope)
    if target is None:
        return None
    value = scope.values[target]
    style = g.rng.choices(["method", "augmented", "setitem"], weights=[0.6, 0.2, 0.2])[0]
    if style == "method":
        op = g.rng.choice(ops.INPLACE)
        stmt = ExprStmt(Call(g.fill(op.template, value), tuple(
            [Name(target)] + ([Name(g.tensor(scope, like=value, pick="broadcast"))] if op.kinds == "TT" else []))))
    else:
        source = g.tensor(scope, like=value, pick="broadcast") if g.chance(0.7) else None
        rhs = Name(source) if source else Lit(g.rng.choice(["1", "0.5", "-2", "True"]))
        if style == "augmented":
            stmt = Assign(target, rhs, g.rng.choice(ops.AUGMENTED))
        else:
            index = g.rng.choice(ops.SETITEM_INDICES).format(target)
            stmt = Assign(target + index, rhs)
    result = g.run(scope, [stmt])
    if isinstance(result, Exception):
        return g.guarded(scope, [stmt], result, fallback=None, names=[])
    return g.commit(scope, [stmt], result, [])


def container_update(g: Generator, scope: Scope):
    """Mutate a list or dict made by the program (or passed in): append, pop, item assignment, update."""
    lists = [n for n in scope.visible if type(scope.values.get(n)) is list]
    dicts = [n for n in scope.visible if type(scope.values.get(n)) is dict]
    tensor = g.tensor(scope)
    if tensor is None or not (lists or dicts):
        return None
    t = Name(tensor)
    if lists and (not dicts or g.chance(0.5)):
        name = g.rng.choice(lists)
        template = g.rng.choice(["{0}.append({1})", "{0}.insert(0, {1})", "{0}.extend([{1}, {1}])", "{0}.pop()",
                                 "{0}.reverse()", "{0}.__setitem__(0, {1})", "{0}.remove({0}[-1])"])
    else:
        name = g.rng.choice(dicts)
        template = g.rng.choice(["{0}.__setitem__('k', {1})", "{0}.update(b={1})", "{0}.pop('a', None)",
                                 "{0}.setdefault('q', {1})", "{0}.__setitem__('a', {1} * 2)", "{0}.clear()"])
    stmt = ExprStmt(Call(template, (Name(name), t)))
    result = g.run(scope, [stmt])
    return None if isinstance(result, Exception) else g.commit(scope, [stmt], result, [])


def python_value(g: Generator, scope: Scope):
    """A Python value from tensors (sizes, .item(), .tolist()) or from other Python values."""
    return g.assign(scope, g.fresh("p"), g.rng.choice(["to_python", "to_python", "python", "introspection"]))


def container(g: Generator, scope: Scope):
    return g.assign(scope, g.fresh("c"), "container")


def print_stmt(g: Generator, scope: Scope):
    """print(...) of values whose text is exact: sizes, dtypes, ints, bools, integer tensors (never floats,
    whose last digits may legitimately differ after fused arithmetic)."""
    items = [Lit(repr(g.fresh("at")))]
    for name in g.rng.sample(scope.visible, min(len(scope.visible), g.rng.randint(1, 3))):
        value = scope.values.get(name)
        if isinstance(value, torch.Tensor):
            exact = not value.is_floating_point() and value.numel() <= 16
            items.append(Name(name) if exact and g.chance(0.5) else
                         Call(g.rng.choice(["{0}.shape", "{0}.dtype", "{0}.dim()", "tuple({0}.shape)"]),
                              (Name(name),)))
        elif type(value) in (int, bool, str) or isinstance(value, (torch.Size, torch.dtype)):
            items.append(Name(name))
    template = "print(" + ", ".join("{%d}" % i for i in range(len(items))) + ")"
    stmt = ExprStmt(Call(template, tuple(items)))
    result = g.run(scope, [stmt])
    return None if isinstance(result, Exception) else g.commit(scope, [stmt], result, [])

# ---- control flow ---------------------------------------------------------------------------------------------


CONDITIONS = [  # (template, operand kinds)
    ("{0}.shape[0] > 1", "T"), ("{0}.numel() == 0", "T"), ("{0}.dim() == 2", "T"), ("{0}.is_floating_point()", "T"),
    ("{0}.dtype == torch.float32", "T"), ("{0}.sum() > 0", "T"),
    ("({0} > 0).any()", "T"), ("{0}.float().mean().item() > 0", "T"), ("bool({0}.all())", "T"),
    ("hasattr({0}, 'nope')", "T"), ("{0} > 1", "N"), ("{0} == 0", "N"), ("isinstance({0}, int)", "N"), ("{0}", "B"),
    ("len({0}) > 1", "L"), ("'a' in {0}", "D"), ("callable({0})", "C"), ("{0}.shape[-1] == {1}", "TI"),
]


def condition(g: Generator, scope: Scope):
    for _ in range(4):
        template, kinds = g.rng.choice(CONDITIONS)
        args = [g.operand(scope, k, ops.Op(template, kinds), None, 2, None) for k in kinds]
        if all(a is not None for a in args):
            return Call(template, tuple(args))
    return None


def branch(g: Generator, scope: Scope, join: str | None, length: int) -> tuple | None:
    """Statements of one branch, generated as if they ran unconditionally (so their types are known); `join`
    is assigned last, so a value made in either branch is visible after the if."""
    inner = scope.child()
    block(g, inner, length, nested=True)
    if join and not g.assign(inner, join):
        return None
    return tuple(inner.new)


def if_stmt(g: Generator, scope: Scope):
    test = condition(g, scope)
    if test is None:
        return None
    with_else = g.chance(0.6)
    join = g.fresh("t") if with_else else None
    body = branch(g, scope, join, g.rng.randint(0, 2))
    orelse = branch(g, scope, join, g.rng.randint(0, 2)) if with_else else ()
    if body is None or orelse is None or not body:
        return None
    stmt = If(test, body, orelse)
    result = g.run(scope, [stmt])
    if isinstance(result, Exception):
        return None
    return g.commit(scope, [stmt], result, [join] if join else [])


def iteration(g: Generator, scope: Scope):
    """(loop target, iterable) over values in scope."""
    t = g.tensor(scope)
    options = [("i", Lit(f"range({g.rng.randint(1, 3)})")), ("r", Name(t) if t else None)]
    ints = g.of_kind(scope, "I")
    if ints:
        options.append(("i", Call("range(min({0}, 3))", (Name(g.rng.choice(ints)),))))
    if t:
        options += [("i", Call("range({0}.shape[0])", (Name(t),))), ("r", Call("{0}.unbind(0)", (Name(t),)))]
    lists, dicts = g.of_kind(scope, "L"), g.of_kind(scope, "D")
    if lists:
        name = Name(g.rng.choice(lists))
        options += [("r", name), ("i, r", Call("enumerate({0})", (name,)))]
    if dicts:
        options.append(("k, r", Call("{0}.items()", (Name(g.rng.choice(dicts)),))))
    target, iterable = g.rng.choice([o for o in options if o[1] is not None])
    return tuple(g.fresh(v) for v in target.split(", ")), iterable


def while_header(g: Generator, scope: Scope) -> tuple[tuple, Expr]:
    """A while loop's counter (its "loop target") and its limit: a size, a Python int, a constant."""
    t, ints = g.tensor(scope), g.of_kind(scope, "I")
    options = [Lit(str(g.rng.randint(1, 3)))] + ([Call("{0}.shape[0]", (Name(t),))] if t else []) + \
        ([Name(g.rng.choice(ints))] if ints else [])
    return (g.fresh("k"),), g.rng.choice(options)


def loop(targets: tuple, header: Expr, body: tuple, is_while: bool):
    return While(targets[0], header, body) if is_while else For(", ".join(targets), header, body)


def for_stmt(g: Generator, scope: Scope):
    """A for or while loop updating an accumulator made just before it (a tensor, or a list that collects)."""
    seed_value = g.tensor(scope)
    if seed_value is None:
        return None
    acc = g.fresh("acc")
    start = Assign(acc, g.rng.choice([Call("torch.zeros_like({0})", (Name(seed_value),)),
                                      Call("{0}.clone()", (Name(seed_value),)), Lit("[]")]))
    is_while = g.chance(0.25)
    targets, iterable = while_header(g, scope) if is_while else iteration(g, scope)
    pre = g.run(scope, [start])
    if isinstance(pre, Exception):
        return None
    g.commit(scope, [start], pre, [acc])
    body: list = []
    for _ in range(g.rng.randint(1, 3)):  # each body statement checked by running the loop as it grows
        inner = scope.child()
        inner.prefix.append(loop(targets, iterable, tuple(body), is_while))
        run_once = g.run(inner, [])
        inner.values = run_once if isinstance(run_once, dict) else inner.values
        inner.visible += list(targets)
        update = loop_update(g, inner, acc, targets)
        if update is None:
            continue
        candidate = loop(targets, iterable, tuple(body + update), is_while)
        if not isinstance(g.run(scope, [candidate]), Exception):
            body += update
    if not body:
        return None
    if (is_while or iterable.render().startswith("range")) and g.chance(0.3):
        body.insert(0, If(Lit(f"{targets[0]} == 1"), (Raw(g.rng.choice(["break", "continue"])),)))
    stmt = loop(targets, iterable, tuple(body), is_while)
    result = g.run(scope, [stmt])
    if isinstance(result, Exception):
        return None
    return g.commit(scope, [stmt], result, [])


def loop_update(g: Generator, inner: Scope, acc: str, targets: tuple) -> list | None:
    value = inner.values.get(acc)
    loop_tensor = next((t for t in targets if isinstance(inner.values.get(t), torch.Tensor)), None)
    if type(value) is list:
        item = Name(loop_tensor) if loop_tensor else g.expression(inner, "pointwise")
        return [ExprStmt(Call("{0}.append({1})", (Name(acc), item)))] if item else None
    if g.chance(0.5) and loop_tensor:
        template = g.rng.choice(["({0} + {1})", "({0} * {1})", "torch.maximum({0}, {1})", "({0} - {1}.sum())"])
        return [Assign(acc, Call(template, (Name(acc), Name(loop_tensor))))]
    if g.chance(0.3):
        return [ExprStmt(Call(g.rng.choice(["{0}.add_(1)", "{0}.mul_(2)", "{0}.neg_()"]), (Name(acc),)))]
    expr = g.expression(inner, g.rng.choice(["pointwise", "binary", "tensor_python"]))
    return [Assign(acc, Call("({0} + {1})", (Name(acc), expr)))] if expr else None


def def_stmt(g: Generator, scope: Scope):
    """A nested function reading variables of the enclosing one (a closure), called right away; sometimes a
    lambda, sometimes one that writes a nonlocal counter."""
    arg = g.tensor(scope)
    if arg is None:
        return None
    name, param = g.fresh("h"), g.fresh("a")
    inner = scope.child()
    inner.values[param] = scope.values[arg]
    inner.visible.append(param)
    body_expr = g.expression(inner, g.rng.choice(["pointwise", "binary", "tensor_python", "reduction"]))
    if body_expr is None:
        return None
    style = g.rng.choice(["def", "def", "lambda", "nonlocal"])
    before: list = []
    if style == "lambda":
        fn = Assign(name, Call(f"(lambda {param}: {{0}})", (body_expr,)))
    elif style == "nonlocal":
        counter = g.fresh("n")
        before = [Assign(counter, Lit("0"))]
        fn = Def(name, param, (Raw(f"nonlocal {counter}"), Assign(counter, Lit("1"), "+="),
                               Return(Call(f"({{0}} * {counter})", (body_expr,)))))
    else:
        fn = Def(name, param, (Return(body_expr),))
    result_name = g.fresh("t")
    call = Assign(result_name, Call(f"{name}({{0}})", (Name(arg),)))
    result = g.run(scope, before + [fn, call])
    if isinstance(result, Exception):
        return None
    return g.commit(scope, before + [fn, call], result, [name, result_name])


def try_python(g: Generator, scope: Scope):
    """Python exceptions raised and caught: a missing key, an index past the end, an explicit raise."""
    fallback = Assign(g.fresh("t"), g.fallback_value(scope))
    lists, dicts = g.of_kind(scope, "L"), g.of_kind(scope, "D")
    options = [("ValueError", Raw("raise ValueError('fuzz')"))]
    if lists:
        options.append(("IndexError", Assign(fallback.target, Call("{0}[7]", (Name(g.rng.choice(lists)),)))))
    if dicts:
        options.append(("KeyError", Assign(fallback.target, Call("{0}['zz']", (Name(g.rng.choice(dicts)),)))))
    tensor = g.tensor(scope)
    if tensor:
        options.append(("ValueError", If(Call("{0}.numel() < 100", (Name(tensor),)), (Raw("raise ValueError('small')"),))))
    exc, raising = g.rng.choice(options)
    body = (raising, fallback) if isinstance(raising, (Raw, If)) else (raising,)
    stmt = Try(body, g.rng.choice([exc, "Exception"]), (fallback,))
    result = g.run(scope, [stmt])
    if isinstance(result, Exception):
        return None
    return g.commit(scope, [stmt], result, [fallback.target])

# ---- blocks and the return --------------------------------------------------------------------------------------


KINDS = {assign: 50, inplace: 10, python_value: 8, container: 6, container_update: 4, print_stmt: 4, if_stmt: 6,
         for_stmt: 5, def_stmt: 4, try_python: 3}
NESTED_KINDS = {assign: 60, inplace: 12, python_value: 8, container_update: 4, print_stmt: 4}


def block(g: Generator, scope: Scope, length: int, nested: bool = False) -> None:
    kinds = NESTED_KINDS if nested else KINDS
    made, attempts = 0, 0
    while made < length and attempts < 4 * length + 4 and not g.raised_unguarded:
        attempts += 1
        kind = g.rng.choices(list(kinds), weights=list(kinds.values()))[0]
        if kind(g, scope):
            made += 1


def return_stmt(g: Generator, scope: Scope) -> Return:
    returnable = [n for n in scope.visible if not callable(scope.values.get(n)) or
                  isinstance(scope.values.get(n), torch.Tensor)]
    recent = returnable[-4:]
    count = min(len(returnable), g.rng.randint(1, 4))
    names = list(dict.fromkeys(recent[-1:] + g.rng.sample(returnable, count)))[:count] if returnable else []
    if not names:
        return Return(Lit("None"))
    items = [Name(n) for n in names]
    form = g.rng.choice(["single", "tuple", "tuple", "list", "dict"]) if len(items) == 1 else \
        g.rng.choice(["tuple", "tuple", "list", "dict"])
    slots = ", ".join("{%d}" % i for i in range(len(items)))
    template = {"single": "{0}", "tuple": f"({slots},)", "list": f"[{slots}]",
                "dict": "{{" + ", ".join(f"'{n}': {{{i}}}" for i, n in enumerate(names)) + "}}"}[form]
    return Return(Call(template, tuple(items)))

"""Calls (the 3.11+ protocol: [NULL, callable, args] or [method, self, args]) and function creation."""
from jit.break_reasons import unsupported
from jit.opcodes.registry import handler
from jit.semantics.calls import call
from jit.semantics.iteration import items_of
from jit.variables import NULL, DictVar, NestedFunctionVar
from jit.variables.containers import sequence_items


@handler("KW_NAMES")
def kw_names(tx, inst):
    tx.kw_names = inst.arg if isinstance(inst.arg, tuple) else tx.code.co_consts[inst.arg]


@handler("CALL")
def call_(tx, inst):
    args = tx.popn(inst.arg)
    second, first = tx.pop(), tx.pop()
    if first is NULL:
        fn = second
    else:  # [method, self, args...]
        fn, args = first, [second] + args
    names = tx.kw_names or ()
    tx.kw_names = None
    kwargs = dict(zip(names, args[len(args) - len(names):])) if names else {}
    positional = args[:len(args) - len(names)] if names else args
    tx.push(call(tx, fn, positional, kwargs))


@handler("CALL_FUNCTION_EX")
def call_function_ex(tx, inst):
    kwargs = tx.pop() if inst.arg & 1 else DictVar({})
    star = tx.pop()
    fn = tx.pop()
    if tx.stack and tx.stack[-1] is NULL:
        tx.pop()
    items = items_of(tx, star)
    if not isinstance(kwargs, DictVar):
        unsupported("unsupported_value", "*args / **kwargs whose contents are not known at compile time")
    tx.push(call(tx, fn, items, dict(kwargs.items)))


def _as_dict(v) -> dict:
    if isinstance(v, DictVar):
        return dict(v.items)
    from jit.variables import Const
    return {k: Const(x) for k, x in v.const().items()}


@handler("MAKE_FUNCTION")
def make_function(tx, inst):
    code = tx.pop().const()
    flags = inst.arg
    closure = tuple(tx.pop().items) if flags & 0x08 else ()
    if flags & 0x04:
        tx.pop()  # annotations: irrelevant to execution
    kwdefaults = _as_dict(tx.pop()) if flags & 0x02 else {}
    defaults = tuple(sequence_items(tx.pop())) if flags & 0x01 else ()
    tx.push(NestedFunctionVar(code, tx.f_globals, code.co_qualname, defaults, dict(kwdefaults), closure))


"""Jumps, branches, loops, returns and `with` blocks.

Branches must be decidable at compile time: on constants, shapes, None, types and container lengths. A branch on
a tensor's value is data-dependent and stops the capture. Loops unroll: FOR_ITER runs over iterators whose items
are known at compile time."""
from jit.break_reasons import unsupported
from jit.opcodes.registry import handler
from jit.semantics import context_managers
from jit.semantics import operators as ops
from jit.semantics.iteration import get_iter, next_item, return_value_of
from jit.variables import Const


@handler("JUMP_FORWARD", "JUMP_BACKWARD", "JUMP")
def jump(tx, inst):
    tx.jump(inst.target)


def _branch(when_true: bool):
    def run(tx, inst):
        if ops.truth(tx, tx.pop()) == when_true:
            tx.jump(inst.target)
    return run


handler("POP_JUMP_IF_TRUE")(_branch(True))
handler("POP_JUMP_IF_FALSE")(_branch(False))


def _none_branch(when_none: bool):
    def run(tx, inst):
        value = tx.pop()
        if ops.is_none(tx, value) == when_none:
            tx.jump(inst.target)
    return run


handler("POP_JUMP_IF_NONE")(_none_branch(True))
handler("POP_JUMP_IF_NOT_NONE")(_none_branch(False))


def _or_pop(when_true: bool):
    # 3.11: jump keeping the value when its truth matches, else pop it.
    def run(tx, inst):
        if ops.truth(tx, tx.stack[-1]) == when_true:
            tx.jump(inst.target)
        else:
            tx.pop()
    return run


handler("JUMP_IF_TRUE_OR_POP", max_version=(3, 11))(_or_pop(True))
handler("JUMP_IF_FALSE_OR_POP", max_version=(3, 11))(_or_pop(False))


@handler("GET_ITER")
def get_iter_(tx, inst):
    tx.push(get_iter(tx, tx.pop()))


@handler("FOR_ITER")
def for_iter(tx, inst):
    item = next_item(tx, tx.stack[-1])
    if item is not None:
        tx.push(item)
        return
    tx.pop()
    target = inst.target
    if tx.insts[target].opname == "END_FOR":  # 3.12: exhaustion skips END_FOR
        target += 1
    tx.jump(target)


@handler("RETURN_VALUE")
def return_value(tx, inst):
    tx.return_value = tx.pop()


@handler("RETURN_CONST", min_version=(3, 12))
def return_const(tx, inst):
    tx.return_value = Const(inst.arg)


@handler("BEFORE_WITH")
def before_with(tx, inst):
    manager = tx.pop()
    exit_fn, entered = context_managers.enter(tx, manager)
    tx.push(exit_fn)
    tx.push(entered)


@handler("SETUP_FINALLY", "CLEANUP_THROW")
def exceptions(tx, inst):
    unsupported("exception", f"exception handling ({inst.opname})")


@handler("RETURN_GENERATOR")
def return_generator(tx, inst):
    if not tx.is_generator:
        unsupported("generator", "creating a generator")
    tx.push(Const(None))  # the value the following POP_TOP discards


@handler("YIELD_VALUE")
def yield_value(tx, inst):
    # The generator's frame stops here (Translator.run returns) until its consumer asks for the next value.
    if not tx.is_generator:
        unsupported("generator", "yield outside an inlined generator")
    tx.yielded = tx.pop()
    tx.push(Const(None))  # what next() sends in when the frame resumes


@handler("GET_YIELD_FROM_ITER")
def get_yield_from_iter(tx, inst):
    tx.push(get_iter(tx, tx.pop()))  # a generator stays itself; anything else becomes its iterator


@handler("SEND")
def send(tx, inst):
    # `yield from it`: [it, sent] -> [it, next item] (then YIELD_VALUE), or, when `it` is exhausted, its return
    # value at the target: 3.11 replaces `it` with it; 3.12 leaves `it` below it for END_SEND to pop.
    sent = tx.pop()
    if not (isinstance(sent, Const) and sent.value is None):
        unsupported("generator", "sending a value into a generator")
    item = next_item(tx, tx.stack[-1])
    if item is not None:
        tx.push(item)
        return
    result = return_value_of(tx.stack[-1])
    if tx.insts[inst.target].opname != "END_SEND":
        tx.pop()
    tx.push(result)
    tx.jump(inst.target)


@handler("END_SEND", min_version=(3, 12))
def end_send(tx, inst):
    value = tx.pop()
    tx.pop()
    tx.push(value)


@handler("GET_AWAITABLE", "GET_AITER", "GET_ANEXT", "END_ASYNC_FOR", "BEFORE_ASYNC_WITH")
def generators(tx, inst):
    unsupported("generator", f"generator or coroutine instruction {inst.opname}")


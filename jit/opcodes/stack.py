"""Stack shuffling."""
from jit.opcodes.registry import handler
from jit.variables import NULL


@handler("NOP", "EXTENDED_ARG")
def nop(tx, inst):
    pass


@handler("POP_TOP")
def pop_top(tx, inst):
    tx.pop()


@handler("END_FOR", min_version=(3, 12))
def end_for(tx, inst):
    tx.popn(2)


@handler("PUSH_NULL")
def push_null(tx, inst):
    tx.push(NULL)


@handler("COPY")
def copy(tx, inst):
    tx.push(tx.stack[-inst.arg])


@handler("SWAP")
def swap(tx, inst):
    tx.stack[-1], tx.stack[-inst.arg] = tx.stack[-inst.arg], tx.stack[-1]

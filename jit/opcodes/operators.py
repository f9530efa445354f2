"""Operators. Families share one handler through tables: BINARY_OP's argument picks the Python operator."""
import operator

from jit.opcodes.registry import handler
from jit.semantics import operators as ops
from jit.variables import Const

# bytecode's BinaryOp enum names -> operator functions (in-place forms map to the in-place operators).
BINARY = {
    "ADD": operator.add, "SUBTRACT": operator.sub, "MULTIPLY": operator.mul, "TRUE_DIVIDE": operator.truediv,
    "FLOOR_DIVIDE": operator.floordiv, "REMAINDER": operator.mod, "POWER": operator.pow,
    "MATRIX_MULTIPLY": operator.matmul, "LSHIFT": operator.lshift, "RSHIFT": operator.rshift,
    "AND": operator.and_, "OR": operator.or_, "XOR": operator.xor,
    "INPLACE_ADD": operator.iadd, "INPLACE_SUBTRACT": operator.isub, "INPLACE_MULTIPLY": operator.imul,
    "INPLACE_TRUE_DIVIDE": operator.itruediv, "INPLACE_FLOOR_DIVIDE": operator.ifloordiv,
    "INPLACE_REMAINDER": operator.imod, "INPLACE_POWER": operator.ipow, "INPLACE_MATRIX_MULTIPLY": operator.imatmul,
    "INPLACE_LSHIFT": operator.ilshift, "INPLACE_RSHIFT": operator.irshift, "INPLACE_AND": operator.iand,
    "INPLACE_OR": operator.ior, "INPLACE_XOR": operator.ixor,
}
COMPARE = {"LT": operator.lt, "LE": operator.le, "EQ": operator.eq, "NE": operator.ne, "GT": operator.gt,
           "GE": operator.ge}
UNARY = {"UNARY_NEGATIVE": operator.neg, "UNARY_POSITIVE": operator.pos, "UNARY_INVERT": operator.invert}


@handler("BINARY_OP")
def binary_op(tx, inst):
    b, a = tx.pop(), tx.pop()
    tx.push(ops.binary(tx, BINARY[inst.arg.name], a, b))


@handler("COMPARE_OP")
def compare_op(tx, inst):
    b, a = tx.pop(), tx.pop()
    name = inst.arg.name if hasattr(inst.arg, "name") else str(inst.arg)
    tx.push(ops.binary(tx, COMPARE[name.split("_")[0]], a, b))


@handler(*UNARY)
def unary(tx, inst):
    tx.push(ops.unary(tx, UNARY[inst.opname], tx.pop()))


@handler("UNARY_NOT")
def unary_not(tx, inst):
    tx.push(Const(not ops.truth(tx, tx.pop())))


@handler("IS_OP")
def is_op(tx, inst):
    b, a = tx.pop(), tx.pop()
    same = ops.identical(tx, a, b)
    tx.push(Const(same != bool(inst.arg)))


@handler("CONTAINS_OP")
def contains_op(tx, inst):
    container, item = tx.pop(), tx.pop()
    tx.push(Const(ops.contains(tx, container, item) != bool(inst.arg)))


@handler("CALL_INTRINSIC_1", min_version=(3, 12))
def call_intrinsic_1(tx, inst):
    from jit.variables import TupleVar
    name = getattr(inst.arg, "name", str(inst.arg))
    value = tx.pop()
    if name == "INTRINSIC_UNARY_POSITIVE":
        tx.push(ops.unary(tx, operator.pos, value))
    elif name == "INTRINSIC_LIST_TO_TUPLE":
        tx.push(TupleVar(value.items))
    elif name == "INTRINSIC_STOPITERATION_ERROR":  # 3.12: the handler around a generator's body
        from jit.semantics.exceptions import leaving_a_generator
        tx.push(leaving_a_generator(value))
    else:
        from jit.break_reasons import unsupported
        unsupported("unsupported_opcode", f"CALL_INTRINSIC_1 {name}")

"""Building and unpacking tuples, lists, dicts, slices and strings."""
from jit.break_reasons import PythonError, unsupported
from jit.opcodes.registry import handler
from jit.semantics import exceptions, subscript
from jit.semantics.iteration import items_of, unpack
from jit.variables import Const, DictVar, ExceptionVar, ListVar, SetVar, TupleVar
from jit.variables.outside import lazy


@handler("BUILD_TUPLE")
def build_tuple(tx, inst):
    tx.push(TupleVar(tx.popn(inst.arg)))


@handler("BUILD_LIST")
def build_list(tx, inst):
    tx.push(ListVar(tx.popn(inst.arg)))


def _key(var):
    if not var.is_const():
        unsupported("unsupported_value", f"a dict key that is not a compile-time constant ({var.describe()})")
    key = var.const()
    try:
        hash(key)
    except TypeError as e:  # `{[1, 2]: x}`: eager's TypeError, raised where eager raises it
        raise PythonError.of(TypeError, *e.args) from None
    return key


@handler("BUILD_MAP")
def build_map(tx, inst):
    flat = tx.popn(2 * inst.arg)
    tx.push(DictVar({_key(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}))


@handler("BUILD_CONST_KEY_MAP")
def build_const_key_map(tx, inst):
    keys = tx.pop().const()
    values = tx.popn(inst.arg)
    tx.push(DictVar(dict(zip(keys, values))))


@handler("BUILD_SET")
def build_set(tx, inst):
    tx.push(SetVar(tx.popn(inst.arg)))


@handler("BUILD_SLICE")
def build_slice(tx, inst):
    tx.push(subscript.make_slice(tx.popn(inst.arg)))


@handler("BUILD_STRING")
def build_string(tx, inst):
    parts = tx.popn(inst.arg)
    tx.push(Const("".join(p.const() for p in parts)))


@handler("FORMAT_VALUE")
def format_value(tx, inst):
    flags = inst.arg if isinstance(inst.arg, int) else int(inst.arg[0]) if isinstance(inst.arg, tuple) else 0
    spec = tx.pop().const() if flags & 0x04 else ""
    value = tx.pop()
    conv = {1: str, 2: repr, 3: ascii}.get(flags & 0x03, lambda x: x)
    if isinstance(value, ExceptionVar):  # f"{e}": the text of the real exception made from its arguments
        tx.push(exceptions.as_text(value, lambda e: format(conv(e), spec)))
        return
    if not value.is_const():
        unsupported("unsupported_value", f"formatting {value.describe()} into a string")
    tx.push(Const(format(conv(value.const()), spec)))


def _building(tx, inst):
    """The container under construction that a LIST_APPEND-like instruction adds to. It is only ever on the stack,
    so nobody else holds it: one passed into a resume function (it has a parameter as source) is rebuilt from its
    items from now on instead of being read back from that parameter."""
    target = tx.stack[-inst.arg]
    if lazy(target):  # read lazily from that parameter (jit/variables/outside.py): read whole first, through it
        target.read_whole()
    target.source = None
    return target


@handler("LIST_APPEND")
def list_append(tx, inst):
    value = tx.pop()
    _building(tx, inst).items.append(value)


@handler("LIST_EXTEND")
def list_extend(tx, inst):
    items = items_of(tx, tx.pop())
    _building(tx, inst).items.extend(items)


@handler("SET_ADD")
def set_add(tx, inst):
    value = tx.pop()
    tx.stack[-inst.arg].add(value)


@handler("SET_UPDATE")
def set_update(tx, inst):
    items = items_of(tx, tx.pop())
    target = tx.stack[-inst.arg]
    for item in items:
        target.add(item)


@handler("MAP_ADD")
def map_add(tx, inst):
    value, key = tx.pop(), tx.pop()
    _building(tx, inst).items[_key(key)] = value


@handler("DICT_UPDATE", "DICT_MERGE")
def dict_update(tx, inst):
    other = tx.pop()
    if not isinstance(other, DictVar):
        unsupported("unsupported_value", f"** of {other.describe()}")
    target = _building(tx, inst)
    if inst.opname == "DICT_MERGE":
        dup = set(target.items) & set(other.items)
        if dup:
            unsupported("exception", f"got multiple values for keyword argument {sorted(dup)[0]!r}")
    target.items.update(other.items)


@handler("LIST_TO_TUPLE", max_version=(3, 11))
def list_to_tuple(tx, inst):
    tx.push(TupleVar(tx.pop().items))


@handler("UNPACK_SEQUENCE")
def unpack_sequence(tx, inst):
    items = unpack(tx, tx.pop(), inst.arg)
    for item in reversed(items):
        tx.push(item)


@handler("UNPACK_EX")
def unpack_ex(tx, inst):
    before, after = inst.arg if isinstance(inst.arg, tuple) else (inst.arg & 0xFF, inst.arg >> 8)
    items = unpack(tx, tx.pop(), None)
    if len(items) < before + after:
        unsupported("exception", f"not enough values to unpack (expected at least {before + after}, got {len(items)})")
    middle = ListVar(items[before:len(items) - after])
    result = items[:before] + [middle] + items[len(items) - after:]
    for item in reversed(result):
        tx.push(item)

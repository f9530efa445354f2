"""Locals, cells, globals, constants, attributes, subscripts and imports."""
import importlib.util
import sys

from framejit.guards.sources import BuiltinSource, ConstSource, GlobalSource
from jit.break_reasons import unsupported
from jit.opcodes.registry import handler
from jit.semantics import attributes, subscript
from jit.variables import NULL, CellVar, Const
from jit.variables.functions import ExternalCell
from jit.variables.base import LazyArg


@handler("LOAD_CONST")
def load_const(tx, inst):
    if isinstance(inst.arg, type):  # only generated code holds classes as constants (a resume function's `with`)
        tx.push(tx.builder.wrap(inst.arg, ConstSource(inst.arg, inst.arg.__qualname__)))
        return
    tx.push(Const(inst.arg))


@handler("LOAD_FAST")
def load_fast(tx, inst):
    name = inst.arg
    if name in tx.cells:  # an argument that is also a cell (3.11+: MAKE_CELL turned the slot into a cell)
        tx.push(_cell_contents(tx, name))
        return
    if name not in tx.locals:
        unsupported("exception", f"local variable '{name}' is read before it is assigned (UnboundLocalError)")
    value = tx.locals[name]
    if isinstance(value, LazyArg):
        value = tx.locals[name] = tx.builder.wrap(value.value, value.source)
    tx.push(value)


@handler("LOAD_FAST_AND_CLEAR", min_version=(3, 12))
def load_fast_and_clear(tx, inst):
    # 3.12 inlined comprehensions save the outer binding of the loop variable (NULL if unbound) and restore it.
    tx.push(tx.locals.pop(inst.arg, NULL))


@handler("STORE_FAST")
def store_fast(tx, inst):
    value = tx.pop()
    if inst.arg in tx.cells:
        _store_cell(tx, inst.arg, value)
    elif value is NULL:
        tx.locals.pop(inst.arg, None)
    else:
        tx.locals[inst.arg] = value


@handler("DELETE_FAST")
def delete_fast(tx, inst):
    tx.locals.pop(inst.arg, None)


def _name_of(arg):
    return getattr(arg, "name", arg)  # bytecode's CellVar / FreeVar carry .name


def _cell_contents(tx, name):
    cell = tx.cells[name]
    if isinstance(cell, CellVar):
        if cell.contents is None:
            unsupported("exception", f"free variable '{name}' is read before it is assigned")
        if isinstance(cell.contents, LazyArg):
            cell.contents = tx.builder.wrap(cell.contents.value, cell.contents.source)
        return cell.contents
    # A cell of a function that exists outside the traced code: what this capture wrote to it, else its contents.
    if cell.written is ExternalCell.DELETED:
        unsupported("exception", f"free variable '{name}' is read after it was deleted")
    if cell.written is not ExternalCell.UNWRITTEN:
        return cell.written
    try:
        value = cell.cell.cell_contents
    except ValueError:  # an empty cell: CPython raises NameError here
        unsupported("exception", f"free variable '{name}' is read before it is assigned")
    return tx.builder.wrap(value, cell.source)


def _store_cell(tx, name, value):
    cell = tx.cells[name]
    if isinstance(cell, CellVar):
        cell.contents = value
    else:
        cell.written = value  # stored into the real cell by the replacement code (jit/codegen.py)


@handler("LOAD_DEREF")
def load_deref(tx, inst):
    name = _name_of(inst.arg)
    if name not in tx.cells:
        tx.cell(name)
    tx.push(_cell_contents(tx, name))


@handler("STORE_DEREF")
def store_deref(tx, inst):
    name = _name_of(inst.arg)
    if name not in tx.cells:
        tx.cell(name)
    _store_cell(tx, name, tx.pop())


@handler("DELETE_DEREF")
def delete_deref(tx, inst):
    name = _name_of(inst.arg)
    cell = tx.cell(name)
    _cell_contents(tx, name)  # deleting an unbound variable is a NameError, as reading it is
    if isinstance(cell, CellVar):
        cell.contents = None
    else:
        cell.written = ExternalCell.DELETED


@handler("LOAD_CLOSURE")
def load_closure(tx, inst):
    # The cell itself, for MAKE_FUNCTION: one made during tracing, or a real one the new function shares.
    name = _name_of(inst.arg)
    tx.push(tx.cell(name))


@handler("LOAD_GLOBAL")
def load_global(tx, inst):
    push_null, name = inst.arg
    ns = tx.globals_namespace
    if name in tx.f_globals:
        value = tx.globals_builder.wrap(tx.f_globals[name], GlobalSource(name, ns))
    elif name in tx.f_builtins:
        value = tx.globals_builder.wrap(tx.f_builtins[name], BuiltinSource(name, ns))
    else:
        unsupported("exception", f"name '{name}' is not defined (NameError)")
    if push_null:
        tx.push(NULL)
    tx.push(value)


@handler("LOAD_ATTR")
def load_attr(tx, inst):
    obj = tx.pop()
    tx.last_attr = (tx.ip - 1, obj, inst.arg)  # for an `except AttributeError:` around it (Translator)
    tx.push(attributes.get_attr(tx, obj, inst.arg))


@handler("LOAD_METHOD")
def load_method(tx, inst):
    # [obj] -> [NULL, attr]: our attribute lookup already binds methods, so the unbound-method form is not needed.
    value = attributes.get_attr(tx, tx.pop(), inst.arg)
    tx.push(NULL)
    tx.push(value)


@handler("STORE_ATTR")
def store_attr(tx, inst):
    obj = tx.pop()
    value = tx.pop()
    attributes.set_attr(tx, obj, inst.arg, value)


@handler("BINARY_SUBSCR")
def binary_subscr(tx, inst):
    key = tx.pop()
    obj = tx.pop()
    tx.push(subscript.get_item(tx, obj, key))


@handler("BINARY_SLICE", min_version=(3, 12))
def binary_slice(tx, inst):
    stop, start = tx.pop(), tx.pop()
    obj = tx.pop()
    tx.push(subscript.get_item(tx, obj, subscript.make_slice([start, stop])))


@handler("STORE_SUBSCR")
def store_subscr(tx, inst):
    key, obj, value = tx.pop(), tx.pop(), tx.pop()
    subscript.set_item(tx, obj, key, value)


@handler("STORE_SLICE", min_version=(3, 12))
def store_slice(tx, inst):
    stop, start, obj, value = tx.pop(), tx.pop(), tx.pop(), tx.pop()
    subscript.set_item(tx, obj, subscript.make_slice([start, stop]), value)


@handler("DELETE_SUBSCR")
def delete_subscr(tx, inst):
    key, obj = tx.pop(), tx.pop()
    subscript.delete_item(tx, obj, key)



@handler("LOAD_SUPER_ATTR", min_version=(3, 12))
def load_super_attr(tx, inst):
    # [super, cls, self] -> attr, or NULL + attr for a method load (3.12 compiles super().x to this).
    is_method, _two_arg, name = inst.arg
    self_var, cls = tx.pop(), tx.pop()
    tx.pop()  # the global `super`
    from jit.variables import SuperVar
    value = attributes.get_attr(tx, SuperVar(cls.const(), self_var), name)
    if is_method:
        tx.push(NULL)
    tx.push(value)


@handler("IMPORT_NAME")
def import_name(tx, inst):
    """`import a.b` / `from a import b` inside a function: a module already imported is looked up, as
    __import__ does, with nothing run; a first import (which runs the module's code) breaks."""
    fromlist, level = tx.pop().const(), tx.pop().const()
    name = inst.arg
    if level:
        package = tx.f_globals.get("__package__") or tx.f_globals.get("__name__", "").rpartition(".")[0]
        try:
            name = importlib.util.resolve_name("." * level + name, package)
        except (ImportError, ValueError) as e:
            unsupported("exception", f"ImportError: {e}")
    module = sys.modules.get(name)
    if module is None:
        unsupported("side_effect", f"import of {name}, not imported yet (runs the module's code)")
    for item in fromlist or ():
        if item != "*" and not hasattr(module, item) and f"{name}.{item}" not in sys.modules:
            unsupported("side_effect", f"from {name} import {item}: a submodule not imported yet")
    result = module if fromlist else sys.modules[name.partition(".")[0]]
    tx.push(tx.builder.wrap(result, ConstSource(result, result.__name__)))


@handler("IMPORT_FROM")
def import_from(tx, inst):
    module = tx.stack[-1]  # stays on the stack for the next IMPORT_FROM
    real = getattr(module, "mod", None)
    if real is not None and not hasattr(real, inst.arg) and f"{real.__name__}.{inst.arg}" in sys.modules:
        sub = sys.modules[f"{real.__name__}.{inst.arg}"]
        tx.push(tx.builder.wrap(sub, ConstSource(sub, sub.__name__)))
        return
    tx.push(attributes.get_attr(tx, module, inst.arg))


@handler("DELETE_ATTR")
def delete_attr(tx, inst):
    from jit.variables import ModuleVar, NewObjectVar, ObjectVar
    obj = tx.pop()
    if isinstance(obj, NewObjectVar) and type(obj.cls).__setattr__ is type.__setattr__ and \
            attributes.class_lookup(obj.cls, "__delattr__") is object.__delattr__:
        if inst.arg not in obj.attrs:
            unsupported("exception", f"AttributeError: {inst.arg}")
        del obj.attrs[inst.arg]
    elif isinstance(obj, (ObjectVar, ModuleVar)) and \
            attributes.class_lookup(type(getattr(obj, "obj", getattr(obj, "module", None))), "__delattr__") in (
                object.__delattr__, __import__("torch").nn.Module.__delattr__):
        attributes.outside_setattr(tx, obj, inst.arg, None, delete=True)
    else:
        unsupported("side_effect", f"deleting attribute {inst.arg!r} of {obj.describe()}")

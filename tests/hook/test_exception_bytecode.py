"""try/except/finally as CPython 3.11 and 3.12 compile them (tests/other_pythons.sh runs this under 3.12; the
executor models no later version): every instruction, in its canonical spelling (jit/pyversion.py), has a handler
in jit/opcodes registered for this version that does more than refuse, and a raise in a try body reaches the handler shape
jit/opcodes/exceptions.py runs (PUSH_EXC_INFO, the match, `as e` stored then deleted). The registry is read from
the opcode modules' source, so this runs without torch."""
import ast
import contextlib
import pathlib
import sys

import pytest

import jit
from jit.instructions import decode, handlers

_OPCODES = pathlib.Path(jit.__file__).parent / "opcodes"


def _refuses(fn: ast.FunctionDef) -> bool:
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Call) and \
        getattr(body[0].value.func, "id", None) == "unsupported"


def _names(call: ast.Call) -> list[str]:
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    if not kw.get("min_version", (3, 11)) <= sys.version_info[:2] <= kw.get("max_version", (3, 99)):
        return []
    return [ast.literal_eval(a) for a in call.args if not isinstance(a, ast.Starred)]  # (*UNARY: a table)


def modelled_opnames() -> set:
    """Canonical opnames with a handler for this Python that models them (not one that only breaks)."""
    names, refused = set(), set()
    for path in _OPCODES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for dec in node.decorator_list:
                    if isinstance(dec, ast.Call) and getattr(dec.func, "id", None) == "handler":
                        (refused if _refuses(node) else names).update(_names(dec))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Call) and \
                    getattr(node.func.func, "id", None) == "handler":  # handler("X")(_shared(...))
                names.update(_names(node.func))
    return names - refused


def lookup_as(d):
    try:
        v = d["missing"]
    except KeyError as e:
        v = len(str(e))
    return v


def lookup_tuple(d):
    try:
        v = d["missing"]
    except (KeyError, IndexError):
        v = 2
    return v


def raise_and_read(n):
    try:
        raise ValueError("bad")
    except ValueError as e:
        msg = e.args[0]
    return n * len(msg)


def nested_finally(d, log):
    try:
        try:
            v = d["missing"]
        except IndexError:
            v = 100
        finally:
            log.append(1)
    except KeyError as e:
        v = repr(e)
    else:
        v = 0
    return v


def reraise_and_from(d):
    try:
        try:
            d["missing"]
        except KeyError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError:
        try:
            raise
        except RuntimeError as inner:
            return inner
    return None


def comprehension_in_try(d, keys):
    try:
        return [d[k] for k in keys]  # 3.12 inlines it, with a handler of its own that restores k
    except KeyError as e:
        return e.args


def with_in_try(d):
    try:
        with contextlib.nullcontext():
            v = d["m"]
    except KeyError:
        v = 1
    return v


def assert_caught(n):
    try:
        assert n > 3, f"n={n}"
    except AssertionError as e:
        return str(e)
    return ""


def retry(d):
    for key in ("a", "b"):
        try:
            return d[key]
        except KeyError:
            continue
    return None


SHAPES = [lookup_as, lookup_tuple, raise_and_read, nested_finally, reraise_and_from, comprehension_in_try,
          with_in_try, assert_caught, retry]


@pytest.mark.skipif(sys.version_info[:2] > (3, 12), reason="the executor models 3.11 and 3.12 (jit/pyversion.py)")
def test_every_instruction_of_try_shapes_is_modelled():
    known = modelled_opnames()
    assert {"PUSH_EXC_INFO", "CHECK_EXC_MATCH", "POP_EXCEPT", "RERAISE", "RAISE_VARARGS"} <= known
    for fn in SHAPES:
        missing = {i.opname for i in decode(fn.__code__)} - known
        assert not missing, (fn.__name__, missing)


def test_a_raise_in_the_try_body_reaches_the_clause_shape_the_executor_runs():
    insts = decode(lookup_as.__code__)
    at = next(i for i, inst in enumerate(insts) if inst.opname == "BINARY_SUBSCR")
    target, depth, push_lasti = handlers(lookup_as.__code__)[at]
    assert (depth, push_lasti) == (0, False)
    ops = [(i.opname, i.arg) for i in insts[target:target + 5]]
    assert [o for o, _ in ops] == ["PUSH_EXC_INFO", "LOAD_GLOBAL", "CHECK_EXC_MATCH", "POP_JUMP_IF_FALSE",
                                   "STORE_FAST"]
    assert ops[1][1][1] == "KeyError" and ops[4][1] == "e"
    # the clause's end forgets the name (`e = None; del e`), on the normal path and the exceptional one
    deletes = [i for i, inst in enumerate(insts) if inst.opname == "DELETE_FAST" and inst.arg == "e"]
    assert len(deletes) == 2 and all(insts[i - 1].opname == "STORE_FAST" for i in deletes)

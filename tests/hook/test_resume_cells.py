"""Resume functions of frames with cell variables, assembled and run without torch, so that the bytecode they
rely on (cells arriving as free variables, MAKE_CELL and DELETE_DEREF in the copied code) is checked under
every CPython version tests/other_pythons.sh runs."""
import types

from jit.instructions import decode
from jit.resume import closure_names, resume_code


def shares_a_cell(x):
    s = x + 1
    get = lambda: s  # noqa: E731
    print("break here")
    s = s * 10
    del x
    return get(), s


def _after_print(code) -> int:
    insts = decode(code)
    call = next(i for i, inst in enumerate(insts) if inst.opname == "LOAD_GLOBAL" and inst.arg[1] == "print")
    return next(i for i in range(call, len(insts)) if insts[i].opname == "POP_TOP") + 1


def _nested_code(code):
    return next(c for c in code.co_consts if isinstance(c, types.CodeType))


def test_resume_function_runs_on_the_frames_own_cells():
    code = shares_a_cell.__code__
    assert closure_names(code) == ("s",)
    target = _after_print(code)
    resumed = resume_code(code, target, (), ("x", "get"), 5)
    assert resumed.co_freevars == ("s",) and resumed.co_cellvars == ()
    cell = types.CellType(3)                              # what the frame's break code makes
    get = types.FunctionType(_nested_code(code), globals(), "<lambda>", None, (cell,))
    fn = types.FunctionType(resumed, globals(), resumed.co_name, None, (cell,))
    assert fn(2, get) == (30, 30)     # the write after the break is seen by the closure made before it
    assert cell.cell_contents == 30   # and by the frame's cell itself
    assert fn.__name__ == "shares_a_cell" and resumed.co_qualname == "shares_a_cell.<resume at line 5>"


def cell_argument(n):
    def bump():
        nonlocal n
        n += 1
    bump()
    print("break here")
    bump()
    return n


def test_argument_cell_resumes_as_a_free_variable():
    code = cell_argument.__code__
    assert closure_names(code) == ("n",)
    resumed = resume_code(code, _after_print(code), (), ("bump",), 4)
    cell = types.CellType(1)
    bump = types.FunctionType(_nested_code(code), globals(), "bump", None, (cell,))
    assert types.FunctionType(resumed, globals(), "r", None, (cell,))(bump) == 2 and cell.cell_contents == 2

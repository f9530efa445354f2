/* Every CPython-version difference the frame hook depends on, in one place.
 *
 * The hook sees `_PyInterpreterFrame`s, whose layout and clean-up rules changed in each release:
 *   3.11: frame->f_func / f_code / prev_instr; the caller (_PyEval_Vector) clears and pops a frame after the
 *         eval function returns, so a hook that runs other code instead must NOT clear it.
 *   3.12: frame->f_funcobj / f_code / prev_instr; _PyEval_Vector returns whatever the eval function returns and
 *         the default evaluator clears the frame itself, so a hook that skips it must clear and pop it. The
 *         CPython helpers for that are not exported, so we mirror them (for a frame that never ran).
 *   3.13: frame->f_funcobj / f_executable / instr_ptr; _PyEval_FrameClearAndPop is exported.
 * A frame that has not started has prev_instr one before the first code unit (3.11, 3.12), instr_ptr at the
 * first code unit (3.13). */
#ifndef JIT_COMPAT_H
#define JIT_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#  error "framejit's frame hook supports CPython 3.11 to 3.13"
#endif

#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#if PY_VERSION_HEX >= 0x030D0000
#  include <internal/pycore_ceval.h>
#endif
#undef Py_BUILD_CORE

#if PY_VERSION_HEX >= 0x030D0000
#  define JIT_FRAME_CODE(f) ((PyCodeObject *)(f)->f_executable)
#  define JIT_FRAME_FUNC(f) ((PyFunctionObject *)(f)->f_funcobj)
#  define JIT_FRAME_NOT_STARTED(f) ((f)->instr_ptr == _PyCode_CODE(JIT_FRAME_CODE(f)))
#elif PY_VERSION_HEX >= 0x030C0000
#  define JIT_FRAME_CODE(f) ((f)->f_code)
#  define JIT_FRAME_FUNC(f) ((PyFunctionObject *)(f)->f_funcobj)
#  define JIT_FRAME_NOT_STARTED(f) (_PyInterpreterFrame_LASTI(f) < 0)
#else
#  define JIT_FRAME_CODE(f) ((f)->f_code)
#  define JIT_FRAME_FUNC(f) ((f)->f_func)
#  define JIT_FRAME_NOT_STARTED(f) (_PyInterpreterFrame_LASTI(f) < 0)
#endif

#if PY_VERSION_HEX >= 0x030C0000
/* Mirror of CPython 3.12's _PyThreadState_PopFrame: a frame at the base of a data-stack chunk frees the chunk. */
static inline void
jit_pop_frame_312(PyThreadState *tstate, _PyInterpreterFrame *frame)
{
    PyObject **base = (PyObject **)frame;
    if (base == &tstate->datastack_chunk->data[0]) {
        _PyStackChunk *chunk = tstate->datastack_chunk;
        _PyStackChunk *previous = chunk->previous;
        PyObjectArenaAllocator arena;
        tstate->datastack_top = &previous->data[previous->top];
        tstate->datastack_chunk = previous;
        PyObject_GetArenaAllocator(&arena);
        arena.free(arena.ctx, chunk, chunk->size);
        tstate->datastack_limit = (PyObject **)(((char *)previous) + previous->size);
    }
    else {
        tstate->datastack_top = base;
    }
}
#endif

/* Code-object extra slots: renamed PyUnstable_* in 3.12, the old names deprecated. */
#if PY_VERSION_HEX >= 0x030C0000
#  define JIT_REQUEST_CODE_EXTRA_INDEX PyUnstable_Eval_RequestCodeExtraIndex
#  define JIT_CODE_GET_EXTRA PyUnstable_Code_GetExtra
#  define JIT_CODE_SET_EXTRA PyUnstable_Code_SetExtra
#else
#  define JIT_REQUEST_CODE_EXTRA_INDEX _PyEval_RequestCodeExtraIndex
#  define JIT_CODE_GET_EXTRA _PyCode_GetExtra
#  define JIT_CODE_SET_EXTRA _PyCode_SetExtra
#endif

/* Release a frame the hook did not run (it has no frame object: the caller checks). */
static inline void
jit_discard_unrun_frame(PyThreadState *tstate, _PyInterpreterFrame *frame)
{
#if PY_VERSION_HEX >= 0x030D0000
    _PyEval_FrameClearAndPop(tstate, frame);
#elif PY_VERSION_HEX >= 0x030C0000
    /* What clear_thread_frame() + _PyFrame_ClearExceptCode() do for a frame that never ran. */
    for (int i = 0; i < frame->stacktop; i++) {
        Py_XDECREF(frame->localsplus[i]);
    }
    Py_XDECREF(frame->f_locals);
    Py_DECREF(frame->f_funcobj);
    Py_DECREF(frame->f_code);
    jit_pop_frame_312(tstate, frame);
#else
    (void)tstate;
    (void)frame; /* 3.11: _PyEval_Vector clears and pops it after we return */
#endif
}

#endif /* JIT_COMPAT_H */

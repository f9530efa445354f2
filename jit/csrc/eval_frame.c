/* The PEP 523 frame hook.
 *
 * Installed interpreter-wide only while at least one thread has a callback, so with the hook off Python calls
 * keep CPython's inlined fast path. Per thread: the callback (or none) and a re-entrancy depth; frames created
 * while a callback or a guard runs are never intercepted.
 *
 * Per code object (co_extra): a mode and the cache entries. A frame is looked at only if it has not started,
 * is owned by the thread (not a generator resuming), was not entered to throw, and its code is a plain function
 * (no generator/coroutine flags, CO_OPTIMIZED). The Python callback runs only on a cache miss. */
#include "jit_c.h"
#include <structmember.h>

typedef struct {
    PyObject *callback; /* strong reference; NULL when this thread's hook is off */
    int depth;          /* > 0 while a callback or guard runs in this thread */
} ThreadHook;

static _Thread_local ThreadHook tls;

static Py_ssize_t extra_index = -1;
static CodeExtra registry = {JIT_MODE_ASK, NULL, &registry, &registry}; /* sentinel of a circular list */
static Py_ssize_t threads_with_callback = 0;
static _PyFrameEvalFunction previous_eval = NULL; /* what ran before we were installed; we chain to it */

unsigned long long jit_stat_hits = 0, jit_stat_misses = 0, jit_stat_callbacks = 0;

static PyObject *jit_eval_frame(PyThreadState *tstate, _PyInterpreterFrame *frame, int throwflag);

/* ---- per-code state ---------------------------------------------------------------------------------------- */

static void
free_extra(void *ptr)
{
    CodeExtra *extra = (CodeExtra *)ptr;
    if (extra == NULL) return;
    extra->prev->next = extra->next;
    extra->next->prev = extra->prev;
    Py_XDECREF(extra->entries);
    PyMem_Free(extra);
}

CodeExtra *
jit_get_extra(PyCodeObject *code)
{
    void *extra = NULL;
    if (JIT_CODE_GET_EXTRA((PyObject *)code, extra_index, &extra) < 0) {
        PyErr_Clear();
        return NULL;
    }
    return (CodeExtra *)extra;
}

CodeExtra *
jit_ensure_extra(PyCodeObject *code)
{
    CodeExtra *extra = jit_get_extra(code);
    if (extra != NULL) return extra;
    extra = PyMem_Malloc(sizeof(CodeExtra));
    if (extra == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    extra->mode = JIT_MODE_ASK;
    extra->entries = NULL;
    if (JIT_CODE_SET_EXTRA((PyObject *)code, extra_index, extra) < 0) {
        PyMem_Free(extra);
        return NULL;
    }
    extra->next = registry.next;
    extra->prev = &registry;
    registry.next->prev = extra;
    registry.next = extra;
    return extra;
}

/* Drop every entry and every mode. Entries are released after the walk: releasing one can free code objects,
 * whose co_extra clean-up unlinks registry nodes. */
void
jit_reset_all(void)
{
    PyObject *dropped = PyList_New(0);
    for (CodeExtra *e = registry.next; e != &registry; e = e->next) {
        e->mode = JIT_MODE_ASK;
        if (e->entries != NULL) {
            if (dropped == NULL || PyList_Append(dropped, e->entries) < 0) {
                PyErr_Clear(); /* out of memory: release in place, still correct, only less careful */
            }
            PyObject *entries = e->entries;
            e->entries = NULL;
            Py_DECREF(entries);
        }
    }
    Py_XDECREF(dropped);
}

/* Remove the entries a given callback created, everywhere (jit.explain's throw-away compiles). */
int
jit_drop_entries_of(PyObject *owner)
{
    PyObject *dropped = PyList_New(0);
    if (dropped == NULL) return -1;
    for (CodeExtra *e = registry.next; e != &registry; e = e->next) {
        if (e->entries == NULL) continue;
        for (Py_ssize_t i = PyList_GET_SIZE(e->entries) - 1; i >= 0; i--) {
            PyObject *item = PyList_GET_ITEM(e->entries, i);
            if (((CacheEntry *)item)->owner == owner) {
                if (PyList_Append(dropped, item) < 0 || PyList_SetSlice(e->entries, i, i + 1, NULL) < 0) {
                    Py_DECREF(dropped);
                    return -1;
                }
            }
        }
    }
    Py_DECREF(dropped); /* released after the walk: freeing entries can free code objects */
    return 0;
}

/* ---- installation and per-thread callback ------------------------------------------------------------------- */

PyObject *
jit_get_callback(void)
{
    return tls.callback;
}

PyObject *
jit_set_callback(PyObject *callback)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    PyObject *old = tls.callback;
    PyObject *new = (callback == Py_None) ? NULL : Py_XNewRef(callback);
    if (old == NULL && new != NULL) {
        if (threads_with_callback++ == 0) {
            previous_eval = _PyInterpreterState_GetEvalFrameFunc(interp);
            _PyInterpreterState_SetEvalFrameFunc(interp, jit_eval_frame);
        }
    }
    else if (old != NULL && new == NULL) {
        if (--threads_with_callback == 0) {
            /* Leave someone else's hook alone if it replaced ours meanwhile. */
            if (_PyInterpreterState_GetEvalFrameFunc(interp) == jit_eval_frame) {
                _PyInterpreterState_SetEvalFrameFunc(interp, previous_eval);
            }
        }
    }
    tls.callback = new;
    return old ? old : Py_NewRef(Py_None); /* the thread-local reference moves to the caller */
}

/* ---- the hook ---------------------------------------------------------------------------------------------- */

#define JIT_UNSUPPORTED_FLAGS (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE)

static inline PyObject *
run_original(PyThreadState *tstate, _PyInterpreterFrame *frame, int throwflag)
{
    return previous_eval(tstate, frame, throwflag);
}

/* Run `entry` in place of `frame`, then release the frame that never ran. */
static PyObject *
run_entry(PyThreadState *tstate, _PyInterpreterFrame *frame, CacheEntry *entry, Py_ssize_t nargs)
{
    PyObject *result = NULL;
    PyObject *fn = jit_entry_function(entry, frame->f_globals, JIT_FRAME_FUNC(frame));
    if (fn != NULL) {
        entry->hits++;
        result = PyObject_Vectorcall(fn, frame->localsplus, (size_t)nargs, NULL);
        Py_DECREF(fn);
    }
    jit_discard_unrun_frame(tstate, frame);
    return result;
}

/* Run the frame as written with this thread's hook suspended for its duration: the frames it calls run as
 * written too. Costs nothing to other frames: only codes in mode SUSPEND come here. */
static PyObject *
run_suspended_frame(PyThreadState *tstate, _PyInterpreterFrame *frame, int throwflag)
{
    tls.depth++;
    PyObject *result = run_original(tstate, frame, throwflag);
    tls.depth--;
    return result;
}

static PyObject *
fail_frame(PyThreadState *tstate, _PyInterpreterFrame *frame)
{
    jit_discard_unrun_frame(tstate, frame);
    return NULL;
}

/* guard(*argument_vector, function): the function comes last because closure cells and globals belong to the
 * function object, and functions sharing one code object share its cache entries. */
static PyObject *
call_guard(PyObject *guard, PyObject *const *args, Py_ssize_t nargs, PyObject *func)
{
    PyObject *small[16];
    PyObject **vector = nargs < 16 ? small : PyMem_Malloc((size_t)(nargs + 1) * sizeof(PyObject *));
    if (vector == NULL) return PyErr_NoMemory();
    memcpy(vector, args, (size_t)nargs * sizeof(PyObject *));
    vector[nargs] = func ? func : Py_None;
    PyObject *ok = PyObject_Vectorcall(guard, vector, (size_t)nargs + 1, NULL);
    if (vector != small) PyMem_Free(vector);
    return ok;
}

/* First matching entry of this callback, moved to the front; NULL with no error if none; -1 via *error. */
static CacheEntry *
lookup(CodeExtra *extra, PyObject *callback, PyObject *const *args, Py_ssize_t nargs, PyObject *func, int *error)
{
    PyObject *entries = extra->entries;
    if (entries == NULL) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(entries);
    for (Py_ssize_t i = 0; i < n; i++) {
        CacheEntry *entry = (CacheEntry *)PyList_GET_ITEM(entries, i);
        if (entry->owner != callback) continue;
        Py_INCREF(entry);
        tls.depth++;
        PyObject *ok = call_guard(entry->guard, args, nargs, func);
        tls.depth--;
        int passed = ok == Py_True ? 1 : ok == Py_False ? 0 : ok == NULL ? -1 : PyObject_IsTrue(ok);
        Py_XDECREF(ok);
        if (passed < 0) {
            Py_DECREF(entry);
            *error = 1;
            return NULL;
        }
        /* A guard may have run arbitrary code: re-check the list before reordering it. */
        if (passed && extra->entries == entries && i < PyList_GET_SIZE(entries) &&
            PyList_GET_ITEM(entries, i) == (PyObject *)entry) {
            if (i > 0) {
                PyObject **items = ((PyListObject *)entries)->ob_item;
                memmove(items + 1, items, (size_t)i * sizeof(PyObject *));
                items[0] = (PyObject *)entry;
            }
            return entry; /* new reference */
        }
        Py_DECREF(entry);
        if (passed) return NULL; /* the cache changed under us: treat as a miss */
        if (extra->entries != entries) return NULL;
        n = PyList_GET_SIZE(entries);
    }
    return NULL;
}

/* A callback result: add the entry in front of the code's list, owned by `callback`, and mark its replacement
 * code SKIP (compiled code runs as is; the frames it calls are intercepted normally). */
static int
install_entry(PyCodeObject *code, CodeExtra *extra, CacheEntry *entry, PyObject *callback)
{
    if (jit_entry_check_signature(entry, code) < 0) return -1;
    if (extra->entries == NULL) {
        extra->entries = PyList_New(0);
        if (extra->entries == NULL) return -1;
    }
    if (PyList_Insert(extra->entries, 0, (PyObject *)entry) < 0) return -1;
    Py_XSETREF(entry->owner, Py_NewRef(callback));
    CodeExtra *replacement = jit_ensure_extra((PyCodeObject *)entry->code);
    if (replacement == NULL) return -1;
    replacement->mode = JIT_MODE_SKIP;
    return 0;
}

static PyObject *
jit_eval_frame(PyThreadState *tstate, _PyInterpreterFrame *frame, int throwflag)
{
    PyObject *callback = tls.callback;
    /* tstate->tracing > 0: a sys.settrace / setprofile / sys.monitoring callback is running (CPython counts it
     * in 3.11 to 3.13); a tracer's or profiler's own frames are never compiled. */
    if (callback == NULL || tls.depth > 0 || throwflag || tstate->tracing > 0 ||
        frame->owner != FRAME_OWNED_BY_THREAD || !JIT_FRAME_NOT_STARTED(frame) || frame->frame_obj != NULL) {
        return run_original(tstate, frame, throwflag);
    }
    PyCodeObject *code = JIT_FRAME_CODE(frame);
    CodeExtra *extra = jit_get_extra(code);
    if (extra == NULL) {
        if ((code->co_flags & JIT_UNSUPPORTED_FLAGS) || !(code->co_flags & CO_OPTIMIZED)) {
            extra = jit_ensure_extra(code);
            if (extra == NULL) return fail_frame(tstate, frame);
            extra->mode = JIT_MODE_SKIP;
            return run_original(tstate, frame, throwflag);
        }
        extra = jit_ensure_extra(code);
        if (extra == NULL) return fail_frame(tstate, frame);
    }
    if (extra->mode == JIT_MODE_SKIP) {
        return run_original(tstate, frame, throwflag);
    }
    if (extra->mode == JIT_MODE_SUSPEND) {
        return run_suspended_frame(tstate, frame, throwflag);
    }

    Py_ssize_t nargs = jit_code_arg_count(code);
    Py_INCREF(callback); /* the callback may replace itself while we use it */
    int error = 0;
    CacheEntry *entry = lookup(extra, callback, frame->localsplus, nargs, (PyObject *)JIT_FRAME_FUNC(frame), &error);
    if (entry != NULL) {
        jit_stat_hits++;
        Py_DECREF(callback);
        PyObject *result = run_entry(tstate, frame, entry, nargs);
        Py_DECREF(entry);
        return result;
    }
    if (error) {
        Py_DECREF(callback);
        return fail_frame(tstate, frame);
    }
    if (extra->entries != NULL) jit_stat_misses++; /* a first sight is not a miss */
    if (extra->mode == JIT_MODE_RUN_ONLY) {
        Py_DECREF(callback);
        return run_original(tstate, frame, throwflag);
    }

    /* Miss: ask Python. callback(code, function, argument tuple). */
    PyObject *args = PyTuple_New(nargs);
    if (args == NULL) {
        Py_DECREF(callback);
        return fail_frame(tstate, frame);
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyTuple_SET_ITEM(args, i, Py_XNewRef(frame->localsplus[i]));
    }
    PyObject *func = (PyObject *)JIT_FRAME_FUNC(frame);
    jit_stat_callbacks++;
    tls.depth++;
    PyObject *decision = PyObject_CallFunctionObjArgs(callback, (PyObject *)code, func ? func : Py_None, args, NULL);
    tls.depth--;
    Py_DECREF(args);
    if (decision == NULL) {
        Py_DECREF(callback);
        return fail_frame(tstate, frame);
    }
    PyObject *result;
    extra = jit_get_extra(code); /* the callback may have reset the cache */
    if (extra == NULL && (extra = jit_ensure_extra(code)) == NULL) {
        result = fail_frame(tstate, frame);
    }
    else if (decision == Py_None) {
        result = run_original(tstate, frame, throwflag);
    }
    else if (decision == jit_SKIP || decision == jit_RUN_ONLY) {
        extra->mode = decision == jit_SKIP ? JIT_MODE_SKIP : JIT_MODE_RUN_ONLY;
        result = run_original(tstate, frame, throwflag);
    }
    else if (decision == jit_SUSPEND) {
        extra->mode = JIT_MODE_SUSPEND;
        result = run_suspended_frame(tstate, frame, throwflag);
    }
    else if (Py_IS_TYPE(decision, &CacheEntry_Type)) {
        if (install_entry(code, extra, (CacheEntry *)decision, callback) < 0) {
            result = fail_frame(tstate, frame);
        }
        else {
            result = run_entry(tstate, frame, (CacheEntry *)decision, nargs);
        }
    }
    else {
        PyErr_Format(PyExc_TypeError, "frame callback must return None, SKIP, RUN_ONLY or a CacheEntry, not %.100s",
                     Py_TYPE(decision)->tp_name);
        result = fail_frame(tstate, frame);
    }
    Py_DECREF(decision);
    Py_DECREF(callback);
    return result;
}

/* ---- compiled code runs with the hook suspended -------------------------------------------------------------- */

/* Calls a backend's compiled callable so that no frame inside it is intercepted (compiled code is final; FX's
 * generated forward or a NumPy module must not be captured again). One thread-local increment per call. */
typedef struct {
    PyObject_HEAD
    PyObject *fn;
    vectorcallfunc vectorcall;
} Suspended;

static PyObject *
Suspended_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    tls.depth++;
    PyObject *result = PyObject_Vectorcall(((Suspended *)self)->fn, args, nargsf, kwnames);
    tls.depth--;
    return result;
}

static PyObject *
Suspended_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *fn;
    if (!PyArg_ParseTuple(args, "O:run_suspended", &fn)) return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "run_suspended expects a callable");
        return NULL;
    }
    Suspended *self = (Suspended *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->fn = Py_NewRef(fn);
    self->vectorcall = Suspended_vectorcall;
    return (PyObject *)self;
}

static int
Suspended_traverse(Suspended *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fn);
    return 0;
}

static int
Suspended_clear(Suspended *self)
{
    Py_CLEAR(self->fn);
    return 0;
}

static void
Suspended_dealloc(Suspended *self)
{
    PyObject_GC_UnTrack(self);
    Suspended_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Suspended_repr(Suspended *self)
{
    return PyUnicode_FromFormat("<run_suspended %R>", self->fn);
}

static PyMemberDef Suspended_members[] = {
    {"fn", T_OBJECT, offsetof(Suspended, fn), READONLY, "the wrapped callable"},
    {NULL},
};

PyTypeObject Suspended_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "jit._C.run_suspended",
    .tp_basicsize = sizeof(Suspended),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "run_suspended(fn): a callable that calls fn with the frame hook suspended in this thread.",
    .tp_new = Suspended_new,
    .tp_vectorcall_offset = offsetof(Suspended, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)Suspended_traverse,
    .tp_clear = (inquiry)Suspended_clear,
    .tp_dealloc = (destructor)Suspended_dealloc,
    .tp_repr = (reprfunc)Suspended_repr,
    .tp_members = Suspended_members,
};

int
jit_eval_frame_init(void)
{
    extra_index = JIT_REQUEST_CODE_EXTRA_INDEX(free_extra);
    if (extra_index < 0) {
        PyErr_SetString(PyExc_RuntimeError, "jit._C: no code-extra slot left");
        return -1;
    }
    return 0;
}

/* jit._C: the Python face of the frame hook. */
#include "jit_c.h"

/* ---- SKIP / RUN_ONLY / SUSPEND: the decisions a callback can return besides None and a CacheEntry ---------- */

typedef struct {
    PyObject_HEAD
    const char *name;
} Decision;

static PyObject *
Decision_repr(Decision *self)
{
    return PyUnicode_FromFormat("jit._C.%s", self->name);
}

static PyTypeObject Decision_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "jit._C.Decision",
    .tp_basicsize = sizeof(Decision),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_repr = (reprfunc)Decision_repr,
    .tp_doc = "A callback decision: SKIP (never look at this code again), RUN_ONLY (on a miss, run the "
              "original without asking) or SUSPEND (never look again, and run its frames with the hook "
              "suspended in their thread, so nothing they call is intercepted).",
};

PyObject *jit_SKIP = NULL;
PyObject *jit_RUN_ONLY = NULL;
PyObject *jit_SUSPEND = NULL;

static PyObject *
make_decision(const char *name)
{
    Decision *d = PyObject_New(Decision, &Decision_Type);
    if (d) d->name = name;
    return (PyObject *)d;
}

/* ---- module functions -------------------------------------------------------------------------------------- */

static PyCodeObject *
code_arg(PyObject *obj)
{
    if (!PyCode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "expected a code object, got %.100s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return (PyCodeObject *)obj;
}

static PyObject *
set_callback(PyObject *module, PyObject *callback)
{
    if (callback != Py_None && !PyCallable_Check(callback)) {
        PyErr_SetString(PyExc_TypeError, "set_callback expects a callable or None");
        return NULL;
    }
    return jit_set_callback(callback);
}

static PyObject *
get_callback(PyObject *module, PyObject *unused)
{
    PyObject *cb = jit_get_callback();
    return Py_NewRef(cb ? cb : Py_None);
}

static PyObject *
get_entries(PyObject *module, PyObject *obj)
{
    PyCodeObject *code = code_arg(obj);
    if (code == NULL) return NULL;
    CodeExtra *extra = jit_get_extra(code);
    if (extra == NULL || extra->entries == NULL) return PyList_New(0);
    return PyList_GetSlice(extra->entries, 0, PyList_GET_SIZE(extra->entries));
}

static const char *mode_names[JIT_MODE_COUNT] = {"ask", "skip", "run_only", "suspend"};

static PyObject *
get_mode(PyObject *module, PyObject *obj)
{
    PyCodeObject *code = code_arg(obj);
    if (code == NULL) return NULL;
    CodeExtra *extra = jit_get_extra(code);
    return PyUnicode_FromString(mode_names[extra ? extra->mode : JIT_MODE_ASK]);
}

static PyObject *
set_mode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const char *name;
    if (nargs != 2 || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "set_mode(code, mode) with mode 'ask', 'skip', 'run_only' or 'suspend'");
        return NULL;
    }
    PyCodeObject *code = code_arg(args[0]);
    if (code == NULL || (name = PyUnicode_AsUTF8(args[1])) == NULL) return NULL;
    for (int m = 0; m < JIT_MODE_COUNT; m++) {
        if (strcmp(name, mode_names[m]) == 0) {
            CodeExtra *extra = jit_ensure_extra(code);
            if (extra == NULL) return NULL;
            extra->mode = (JitMode)m;
            Py_RETURN_NONE;
        }
    }
    PyErr_Format(PyExc_ValueError, "unknown mode %R: expected 'ask', 'skip', 'run_only' or 'suspend'", args[1]);
    return NULL;
}

static PyObject *
clear_code(PyObject *module, PyObject *obj)
{
    PyCodeObject *code = code_arg(obj);
    if (code == NULL) return NULL;
    CodeExtra *extra = jit_get_extra(code);
    if (extra != NULL) {
        extra->mode = JIT_MODE_ASK;
        Py_CLEAR(extra->entries);
    }
    Py_RETURN_NONE;
}

static PyObject *
reset(PyObject *module, PyObject *unused)
{
    jit_reset_all();
    Py_RETURN_NONE;
}

static PyObject *
drop_entries_of(PyObject *module, PyObject *owner)
{
    if (jit_drop_entries_of(owner) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *
stats(PyObject *module, PyObject *unused)
{
    return Py_BuildValue("{sKsKsK}", "cache_hits", jit_stat_hits, "cache_misses", jit_stat_misses,
                         "callbacks", jit_stat_callbacks);
}

static PyObject *
reset_stats(PyObject *module, PyObject *unused)
{
    jit_stat_hits = jit_stat_misses = jit_stat_callbacks = 0;
    Py_RETURN_NONE;
}

static PyObject *
arg_count(PyObject *module, PyObject *obj)
{
    PyCodeObject *code = code_arg(obj);
    return code ? PyLong_FromSsize_t(jit_code_arg_count(code)) : NULL;
}

static PyMethodDef methods[] = {
    {"set_callback", set_callback, METH_O,
     "set_callback(callback or None) -> previous. Per thread. callback(code, function, args) runs on a cache miss "
     "and returns None (run the original once), SKIP, RUN_ONLY, SUSPEND, or a CacheEntry to add and run."},
    {"get_callback", get_callback, METH_NOARGS, "This thread's callback, or None."},
    {"get_entries", get_entries, METH_O, "A copy of a code object's cache entries, most recently used first."},
    {"get_mode", get_mode, METH_O, "'ask', 'skip', 'run_only' or 'suspend'."},
    {"set_mode", (PyCFunction)(void (*)(void))set_mode, METH_FASTCALL,
     "set_mode(code, 'ask'|'skip'|'run_only'|'suspend')"},
    {"clear_code", clear_code, METH_O, "Drop one code object's entries and mode."},
    {"reset", reset, METH_NOARGS, "Drop every entry and mode of every code object."},
    {"drop_entries_of", drop_entries_of, METH_O, "Drop the entries a given callback created."},
    {"stats", stats, METH_NOARGS, "Counters kept by the hook: cache_hits, cache_misses, callbacks."},
    {"reset_stats", reset_stats, METH_NOARGS, "Zero the hook's counters."},
    {"arg_count", arg_count, METH_O, "Length of a code object's argument vector."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "jit._C", "framejit's PEP 523 frame hook and per-code cache.", -1, methods,
};

PyMODINIT_FUNC
PyInit__C(void)
{
    if (PyType_Ready(&CacheEntry_Type) < 0 || PyType_Ready(&Decision_Type) < 0 || PyType_Ready(&Suspended_Type) < 0) {
        return NULL;
    }
    if (jit_eval_frame_init() < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) return NULL;
    jit_SKIP = make_decision("SKIP");
    jit_RUN_ONLY = make_decision("RUN_ONLY");
    jit_SUSPEND = make_decision("SUSPEND");
    if (jit_SKIP == NULL || jit_RUN_ONLY == NULL || jit_SUSPEND == NULL ||
        PyModule_AddObjectRef(m, "SKIP", jit_SKIP) < 0 ||
        PyModule_AddObjectRef(m, "RUN_ONLY", jit_RUN_ONLY) < 0 ||
        PyModule_AddObjectRef(m, "SUSPEND", jit_SUSPEND) < 0 ||
        PyModule_AddObjectRef(m, "CacheEntry", (PyObject *)&CacheEntry_Type) < 0 ||
        PyModule_AddObjectRef(m, "run_suspended", (PyObject *)&Suspended_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* CacheEntry: one compiled variant of a code object (guard + replacement code), and the calling convention
 * that connects a frame to it.
 *
 * Calling convention ("argument vector"): a frame's first n localsplus slots hold its arguments in co_varnames
 * order -- positional, keyword-only, then the *args tuple and the **kwargs dict -- before the frame starts.
 * Guards and replacement code take exactly those n values as plain positional parameters, so the hook passes
 * the slots straight through with vectorcall: no tuple, no dict, no copy. */
#include "jit_c.h"
#include <structmember.h>

Py_ssize_t
jit_code_arg_count(PyCodeObject *code)
{
    Py_ssize_t n = code->co_argcount + code->co_kwonlyargcount;
    if (code->co_flags & CO_VARARGS) n++;
    if (code->co_flags & CO_VARKEYWORDS) n++;
    return n;
}

/* The replacement must take the original's argument vector and see the same closure cells. */
int
jit_entry_check_signature(CacheEntry *entry, PyCodeObject *original)
{
    if (!PyCode_Check(entry->code)) {
        PyErr_Format(PyExc_TypeError, "cache entry code must be a code object, not %.100s",
                     Py_TYPE(entry->code)->tp_name);
        return -1;
    }
    PyCodeObject *code = (PyCodeObject *)entry->code;
    Py_ssize_t want = jit_code_arg_count(original);
    if (code->co_argcount != want || code->co_kwonlyargcount != 0 ||
        (code->co_flags & (CO_VARARGS | CO_VARKEYWORDS))) {
        PyErr_Format(PyExc_TypeError,
                     "replacement code %U must take the %zd arguments of %U as plain positional parameters "
                     "(got co_argcount=%d, co_kwonlyargcount=%d, flags=0x%x)",
                     code->co_qualname, want, original->co_qualname, code->co_argcount,
                     code->co_kwonlyargcount, code->co_flags);
        return -1;
    }
    if (code->co_flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE)) {
        PyErr_Format(PyExc_TypeError, "replacement code %U must be a plain function, not a generator or coroutine",
                     code->co_qualname);
        return -1;
    }
    if (code->co_nfreevars != original->co_nfreevars) {
        PyErr_Format(PyExc_TypeError, "replacement code %U has %d free variables, %U has %d",
                     code->co_qualname, code->co_nfreevars, original->co_qualname, original->co_nfreevars);
        return -1;
    }
    if (code->co_nfreevars) {
        PyObject *a = PyCode_GetFreevars(code), *b = PyCode_GetFreevars(original);
        int same = (a && b) ? PyObject_RichCompareBool(a, b, Py_EQ) : -1;
        Py_XDECREF(a);
        Py_XDECREF(b);
        if (same < 0) return -1;
        if (!same) {
            PyErr_Format(PyExc_TypeError, "replacement code %U must have the free variables of %U, in order",
                         code->co_qualname, original->co_qualname);
            return -1;
        }
    }
    return 0;
}

/* A function object to run the entry's code for a frame with these globals and this function's closure.
 * Codes without free variables reuse one cached function per globals dict; closures differ per call site,
 * so codes with free variables get a fresh function carrying the frame's closure. */
PyObject *
jit_entry_function(CacheEntry *entry, PyObject *globals, PyFunctionObject *frame_func)
{
    PyCodeObject *code = (PyCodeObject *)entry->code;
    if (code->co_nfreevars == 0) {
        if (entry->fn != NULL && ((PyFunctionObject *)entry->fn)->func_globals == globals) {
            return Py_NewRef(entry->fn);
        }
        PyObject *fn = PyFunction_New(entry->code, globals);
        if (fn == NULL) return NULL;
        Py_XSETREF(entry->fn, Py_NewRef(fn));
        return fn;
    }
    PyObject *fn = PyFunction_New(entry->code, globals);
    if (fn == NULL) return NULL;
    PyObject *closure = frame_func ? frame_func->func_closure : NULL;
    if (closure == NULL || PyFunction_SetClosure(fn, closure) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_SystemError, "frame of %U has no closure for its free variables", code->co_qualname);
        }
        Py_DECREF(fn);
        return NULL;
    }
    return fn;
}

static PyObject *
CacheEntry_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"guard", "code", "data", NULL};
    PyObject *guard, *code, *data = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!|O:CacheEntry", kwlist, &guard, &PyCode_Type, &code, &data)) {
        return NULL;
    }
    if (!PyCallable_Check(guard)) {
        PyErr_SetString(PyExc_TypeError, "CacheEntry guard must be callable");
        return NULL;
    }
    CacheEntry *self = (CacheEntry *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->guard = Py_NewRef(guard);
    self->code = Py_NewRef(code);
    self->data = Py_NewRef(data);
    self->owner = Py_NewRef(Py_None);
    self->fn = NULL;
    self->hits = 0;
    return (PyObject *)self;
}

static int
CacheEntry_traverse(CacheEntry *self, visitproc visit, void *arg)
{
    Py_VISIT(self->guard);
    Py_VISIT(self->code);
    Py_VISIT(self->data);
    Py_VISIT(self->owner);
    Py_VISIT(self->fn);
    return 0;
}

static int
CacheEntry_clear(CacheEntry *self)
{
    Py_CLEAR(self->guard);
    Py_CLEAR(self->code);
    Py_CLEAR(self->data);
    Py_CLEAR(self->owner);
    Py_CLEAR(self->fn);
    return 0;
}

static void
CacheEntry_dealloc(CacheEntry *self)
{
    PyObject_GC_UnTrack(self);
    CacheEntry_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
CacheEntry_repr(CacheEntry *self)
{
    return PyUnicode_FromFormat("<CacheEntry %U hits=%zd>", ((PyCodeObject *)self->code)->co_qualname, self->hits);
}

static PyMemberDef CacheEntry_members[] = {
    {"guard", T_OBJECT, offsetof(CacheEntry, guard), READONLY, "callable(*argument_vector, function) -> bool"},
    {"code", T_OBJECT, offsetof(CacheEntry, code), READONLY, "the replacement code object"},
    {"data", T_OBJECT, offsetof(CacheEntry, data), READONLY, "Python-side metadata"},
    {"owner", T_OBJECT, offsetof(CacheEntry, owner), READONLY, "the callback that added this entry"},
    {"hits", T_PYSSIZET, offsetof(CacheEntry, hits), READONLY, "how many calls ran this entry"},
    {NULL},
};

PyTypeObject CacheEntry_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "jit._C.CacheEntry",
    .tp_basicsize = sizeof(CacheEntry),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "CacheEntry(guard, code, data=None): run `code` for frames whose arguments pass `guard`.",
    .tp_new = CacheEntry_new,
    .tp_traverse = (traverseproc)CacheEntry_traverse,
    .tp_clear = (inquiry)CacheEntry_clear,
    .tp_dealloc = (destructor)CacheEntry_dealloc,
    .tp_repr = (reprfunc)CacheEntry_repr,
    .tp_members = CacheEntry_members,
};

/* Shared declarations of the jit._C extension: per-code cache state and cache entries. */
#ifndef JIT_C_H
#define JIT_C_H

#include "compat.h"

/* What the hook does with a code object on a cache miss. */
typedef enum {
    JIT_MODE_ASK = 0,      /* call the Python callback (first sight, or entries exist and none matched) */
    JIT_MODE_SKIP = 1,     /* never look again: run the original */
    JIT_MODE_RUN_ONLY = 2, /* use existing entries; on a miss run the original without asking */
    JIT_MODE_SUSPEND = 3,  /* never look again, and run the frame with this thread's hook suspended: nothing it
                              calls is intercepted either (an import in progress: jit/skip_rules.py) */
} JitMode;
#define JIT_MODE_COUNT 4

/* One compiled variant of a code object: run `code` when `guard(*args)` is true. */
typedef struct {
    PyObject_HEAD
    PyObject *guard;   /* callable taking the frame's argument vector */
    PyObject *code;    /* replacement code object (argument-vector calling convention) */
    PyObject *data;    /* whatever the Python side keeps with the entry (guard text, failure reasons, ...) */
    PyObject *owner;   /* the callback that was active when the entry was added: entries of other callbacks
                          (other backends or settings) are never run */
    PyObject *fn;      /* cached function for `code` (codes without free variables), or NULL */
    Py_ssize_t hits;
} CacheEntry;

extern PyTypeObject CacheEntry_Type;
extern PyTypeObject Suspended_Type;

/* State stored in a code object's co_extra slot. All instances are linked so that reset() can find them. */
typedef struct CodeExtra {
    JitMode mode;
    PyObject *entries; /* list of CacheEntry, most recently used first; NULL when empty */
    struct CodeExtra *prev, *next;
} CodeExtra;

/* The sentinels a callback returns besides None and a CacheEntry. */
extern PyObject *jit_SKIP;
extern PyObject *jit_RUN_ONLY;
extern PyObject *jit_SUSPEND;

/* eval_frame.c */
int jit_eval_frame_init(void);
CodeExtra *jit_get_extra(PyCodeObject *code);          /* NULL if none (no error set) */
CodeExtra *jit_ensure_extra(PyCodeObject *code);       /* NULL with an error set */
PyObject *jit_set_callback(PyObject *callback);        /* returns the previous one (new reference or None) */
PyObject *jit_get_callback(void);                      /* borrowed, NULL when off */
void jit_reset_all(void);
int jit_drop_entries_of(PyObject *owner);
extern unsigned long long jit_stat_hits, jit_stat_misses, jit_stat_callbacks;

/* cache_entry.c */
PyObject *jit_entry_function(CacheEntry *entry, PyObject *globals, PyFunctionObject *frame_func);
int jit_entry_check_signature(CacheEntry *entry, PyCodeObject *original);
Py_ssize_t jit_code_arg_count(PyCodeObject *code);

#endif /* JIT_C_H */

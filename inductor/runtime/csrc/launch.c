/* inductor._launch: one launcher for every compiled Triton kernel.
 *
 * Triton builds a C launcher per kernel signature (a gcc run, ~0.3 s each on a fresh cache) because its
 * launcher unpacks arguments with a format string generated for that signature. Here the signature is data: a
 * string with one code per argument the caller passes, read in a loop. Built with the rest of the package, so a
 * new kernel signature costs nothing at run time.
 *
 * The CUDA driver is reached through dlopen/dlsym (torch has already loaded libcuda.so.1): no CUDA headers at
 * build time, so the extension builds on machines without CUDA (CI), where a launch raises RuntimeError.
 *
 * Kernel parameters follow Triton's ABI (triton/backends/nvidia/driver.py make_launcher, 3.6 and 3.9): every
 * argument not specialized to a constexpr, in order, pointers as 64-bit device addresses, integers at their
 * width, floats as their bit patterns; then two trailing pointers (global and profile scratch), null here:
 * inductor/native_launch.py only hands over kernels that need neither, and no clusters, cooperative grids or
 * programmatic dependent launch. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAX_PARAMS 256

typedef int CUresult;
typedef void *CUfunction;
typedef void *CUstream;
typedef CUresult (*cuLaunchKernel_t)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                     unsigned, CUstream, void **, void **);
typedef CUresult (*cuGetErrorString_t)(CUresult, const char **);
typedef void *CUcontext;
typedef int CUdevice;
typedef CUresult (*cuDeviceGet_t)(CUdevice *, int);
typedef CUresult (*cuDevicePrimaryCtxRetain_t)(CUcontext *, CUdevice);
typedef CUresult (*cuCtxSetCurrent_t)(CUcontext);

#define CUDA_ERROR_INVALID_CONTEXT 201

static cuLaunchKernel_t cu_launch = NULL;
static cuGetErrorString_t cu_error_string = NULL;
static cuDeviceGet_t cu_device_get = NULL;
static cuDevicePrimaryCtxRetain_t cu_primary_ctx_retain = NULL;
static cuCtxSetCurrent_t cu_ctx_set_current = NULL;
static PyObject *data_ptr_name = NULL;

static int
load_driver(void)
{
    if (cu_launch != NULL)
        return 0;
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        PyErr_Format(PyExc_RuntimeError, "framejit launcher: cannot load the CUDA driver (libcuda.so.1): %s",
                     dlerror());
        return -1;
    }
    cu_error_string = (cuGetErrorString_t)dlsym(lib, "cuGetErrorString");
    cu_device_get = (cuDeviceGet_t)dlsym(lib, "cuDeviceGet");
    cu_primary_ctx_retain = (cuDevicePrimaryCtxRetain_t)dlsym(lib, "cuDevicePrimaryCtxRetain");
    cu_ctx_set_current = (cuCtxSetCurrent_t)dlsym(lib, "cuCtxSetCurrent");
    cu_launch = (cuLaunchKernel_t)dlsym(lib, "cuLaunchKernel");
    if (cu_launch == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "framejit launcher: libcuda.so.1 has no cuLaunchKernel");
        return -1;
    }
    return 0;
}

/* Make the primary context of `device` (a Python int) current in this thread: 0 on success. */
static int
set_primary_context(PyObject *device)
{
    if (cu_device_get == NULL || cu_primary_ctx_retain == NULL || cu_ctx_set_current == NULL)
        return -1;
    long index = device != NULL && PyLong_Check(device) ? PyLong_AsLong(device) : 0;
    if (index < 0) {
        PyErr_Clear();
        index = 0;
    }
    CUdevice dev;
    CUcontext ctx;
    if (cu_device_get(&dev, (int)index) != 0 || cu_primary_ctx_retain(&ctx, dev) != 0)
        return -1;
    return cu_ctx_set_current(ctx) == 0 ? 0 : -1;
}

typedef struct Kernel {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    CUfunction function;
    unsigned block, shared;
    int bound;                 /* grid fixed at bind(): the call passes kernel arguments only */
    unsigned grid[3];
    PyObject *name;            /* the kernel's name, for error messages */
    PyObject *device;          /* int: the argument of stream_fn */
    PyObject *stream_fn;       /* device -> the current raw stream (torch's), or None for the null stream */
    PyObject *fallback;        /* bound kernels: called with the same arguments when a pointer is misaligned */
    Py_ssize_t n_codes;
    char codes[MAX_PARAMS];
    unsigned long long hits;   /* launches made, its bound copies' included */
    struct Kernel *counter;    /* whose `hits` a launch counts in: itself, or (bound) the kernel it was bound from */
} Kernel;

static PyTypeObject Kernel_Type;

/* One argument into its parameter slot: 1 stored, 0 skipped (constexpr), -1 error, -2 misaligned pointer. */
static int
pack(char code, PyObject *arg, uint64_t *slot, Py_ssize_t index)
{
    switch (code) {
    case '-':
        return 0;
    case 'p':
    case 'P': {
        uint64_t ptr;
        if (arg == Py_None) {
            ptr = 0;
        } else if (PyLong_Check(arg)) {
            ptr = PyLong_AsUnsignedLongLong(arg);
        } else {
            PyObject *got = PyObject_CallMethodNoArgs(arg, data_ptr_name);
            if (got == NULL) {
                if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
                    PyErr_Clear();
                    PyErr_Format(PyExc_TypeError, "framejit launcher: argument %zd is a pointer: a tensor, an int "
                                 "or None, not %.100s", index, Py_TYPE(arg)->tp_name);
                }
                return -1;
            }
            ptr = PyLong_AsUnsignedLongLong(got);
            Py_DECREF(got);
        }
        if (ptr == (uint64_t)-1 && PyErr_Occurred())
            return -1;
        if (code == 'P' && (ptr & 15))
            return -2;
        *slot = ptr;
        return 1;
    }
    case 'f':
    case 'd':
    case 'e':
    case 'r': {
        double v = PyFloat_AsDouble(arg);
        if (v == -1.0 && PyErr_Occurred())
            return -1;
        if (code == 'd') {
            memcpy(slot, &v, 8);
        } else {
            float f = (float)v;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            if (code == 'f') {
                *slot = bits;
            } else if (code == 'r') {
                *slot = bits >> 16;  /* bf16: truncated, as Triton's pack_bf16 */
            } else {
                unsigned char half[2];
                if (PyFloat_Pack2(v, (char *)half, 1) < 0)
                    return -1;
                uint16_t h;
                memcpy(&h, half, 2);
                *slot = h;
            }
        }
        return 1;
    }
    default: {
        /* integers: b h i l (signed 8/16/32/64), B H I L (unsigned); stored little-endian in the slot's low bytes,
         * which is where the driver reads a parameter of that width */
        int is_signed = code == 'b' || code == 'h' || code == 'i' || code == 'l';
        int bits = (code == 'b' || code == 'B') ? 8 : (code == 'h' || code == 'H') ? 16
                 : (code == 'i' || code == 'I') ? 32 : 64;
        uint64_t raw;
        if (is_signed) {
            long long v = PyLong_AsLongLong(arg);
            if (v == -1 && PyErr_Occurred())
                return -1;
            if (bits < 64 && (v < -(1LL << (bits - 1)) || v >= (1LL << (bits - 1)))) {
                PyErr_Format(PyExc_OverflowError, "framejit launcher: argument %zd (%lld) does not fit %d bits",
                             index, v, bits);
                return -1;
            }
            raw = (uint64_t)v;
        } else {
            unsigned long long v = PyLong_AsUnsignedLongLong(arg);
            if (v == (unsigned long long)-1 && PyErr_Occurred())
                return -1;
            if (bits < 64 && v >> bits) {
                PyErr_Format(PyExc_OverflowError, "framejit launcher: argument %zd (%llu) does not fit %d bits",
                             index, v, bits);
                return -1;
            }
            raw = v;
        }
        *slot = bits == 64 ? raw : raw & ((1ULL << bits) - 1);
        return 1;
    }
    }
}

static int
grid_dim(PyObject *obj, unsigned *out)
{
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > 0x7fffffffL) {
        PyErr_Format(PyExc_ValueError, "framejit launcher: grid dimension %ld out of range", v);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static PyObject *
Kernel_vectorcall(Kernel *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (self->name == NULL) {  /* made by __new__ without __init__ */
        PyErr_SetString(PyExc_RuntimeError, "framejit launcher: Kernel not initialized");
        return NULL;
    }
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames)) {
        PyErr_SetString(PyExc_TypeError, "framejit launcher: no keyword arguments");
        return NULL;
    }
    unsigned grid[3];
    PyObject *const *kargs = args;
    if (self->bound) {
        memcpy(grid, self->grid, sizeof grid);
    } else {
        if (nargs < 3) {
            PyErr_SetString(PyExc_TypeError, "framejit launcher: expected grid x, y, z, then the arguments");
            return NULL;
        }
        for (int d = 0; d < 3; d++)
            if (grid_dim(args[d], &grid[d]) < 0)
                return NULL;
        kargs += 3;
        nargs -= 3;
    }
    if (nargs > self->n_codes) {
        PyErr_Format(PyExc_TypeError, "framejit launcher: kernel %U takes %zd arguments, got %zd", self->name,
                     self->n_codes, nargs);
        return NULL;
    }
    for (Py_ssize_t i = nargs; i < self->n_codes; i++) {
        if (self->codes[i] != '-') {
            PyErr_Format(PyExc_TypeError, "framejit launcher: kernel %U: argument %zd missing", self->name, i);
            return NULL;
        }
    }
    uint64_t slots[MAX_PARAMS + 2];
    void *params[MAX_PARAMS + 2];
    int n = 0;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        int r = pack(self->codes[i], kargs[i], &slots[n], i);
        if (r == 1) {
            params[n] = &slots[n];
            n++;
        } else if (r == -2) {
            if (self->fallback != NULL && self->fallback != Py_None)
                return PyObject_Vectorcall(self->fallback, args, PyVectorcall_NARGS(nargsf), NULL);
            PyErr_Format(PyExc_ValueError, "framejit launcher: kernel %U was compiled for 16-byte aligned "
                         "pointers; argument %zd is not aligned", self->name, i);
            return NULL;
        } else if (r < 0) {
            return NULL;
        }
    }
    slots[n] = 0;  /* global scratch */
    params[n] = &slots[n];
    n++;
    slots[n] = 0;  /* profile scratch */
    params[n] = &slots[n];
    n++;
    CUstream stream = NULL;
    if (self->stream_fn != Py_None) {
        PyObject *s = PyObject_CallOneArg(self->stream_fn, self->device);
        if (s == NULL)
            return NULL;
        stream = PyLong_AsVoidPtr(s);
        Py_DECREF(s);
        if (stream == NULL && PyErr_Occurred())
            return NULL;
    }
    if ((uint64_t)grid[0] * grid[1] * grid[2] == 0)
        Py_RETURN_NONE;  /* nothing to run: Triton skips such launches too */
    if (load_driver() < 0)
        return NULL;
    CUresult err;
    Py_BEGIN_ALLOW_THREADS
    err = cu_launch(self->function, grid[0], grid[1], grid[2], self->block, 1, 1, self->shared, stream, params,
                    NULL);
    Py_END_ALLOW_THREADS
    if (err == CUDA_ERROR_INVALID_CONTEXT && set_primary_context(self->device) == 0) {
        /* a thread with no current context (autograd's device threads run a compiled backward: torch sets the
           device there without making its context current): the device's primary context, as Triton's own
           launcher does, then the launch again */
        Py_BEGIN_ALLOW_THREADS
        err = cu_launch(self->function, grid[0], grid[1], grid[2], self->block, 1, 1, self->shared, stream, params,
                        NULL);
        Py_END_ALLOW_THREADS
    }
    if (err != 0) {
        const char *what = NULL;
        if (cu_error_string == NULL || cu_error_string(err, &what) != 0 || what == NULL)
            what = "unknown error";
        PyErr_Format(PyExc_RuntimeError, "framejit launcher: CUDA error %d (%s) launching kernel %U", err, what,
                     self->name);
        return NULL;
    }
    self->counter->hits++;
    Py_RETURN_NONE;
}

static int
Kernel_init(Kernel *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"function", "codes", "num_warps", "shared", "device", "stream_fn", "name", NULL};
    unsigned long long function;
    const char *codes;
    Py_ssize_t n_codes;
    int num_warps, shared;
    PyObject *device, *stream_fn, *name;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Ks#iiOOU", kwlist, &function, &codes, &n_codes, &num_warps,
                                     &shared, &device, &stream_fn, &name))
        return -1;
    if (n_codes > MAX_PARAMS) {
        PyErr_Format(PyExc_ValueError, "framejit launcher: at most %d arguments", MAX_PARAMS);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n_codes; i++) {
        if (strchr("-pPfderbhilBHIL", codes[i]) == NULL || codes[i] == '\0') {
            PyErr_Format(PyExc_ValueError, "framejit launcher: unknown argument code %c", codes[i]);
            return -1;
        }
    }
    if (num_warps <= 0 || num_warps > 32 || shared < 0) {
        PyErr_SetString(PyExc_ValueError, "framejit launcher: num_warps must be 1..32 and shared >= 0");
        return -1;
    }
    if (stream_fn != Py_None && !PyCallable_Check(stream_fn)) {
        PyErr_SetString(PyExc_TypeError, "framejit launcher: stream_fn must be callable or None");
        return -1;
    }
    self->function = (CUfunction)(uintptr_t)function;
    memcpy(self->codes, codes, n_codes);
    self->n_codes = n_codes;
    self->block = 32 * (unsigned)num_warps;
    self->shared = (unsigned)shared;
    Py_XSETREF(self->device, Py_NewRef(device));
    Py_XSETREF(self->stream_fn, Py_NewRef(stream_fn));
    Py_XSETREF(self->name, Py_NewRef(name));
    self->bound = 0;
    if (self->counter != NULL && self->counter != self)
        Py_DECREF(self->counter);  /* __init__ again on a bound copy: it counts in itself from now on */
    self->counter = self;  /* not a reference: itself */
    self->vectorcall = (vectorcallfunc)Kernel_vectorcall;
    return 0;
}

static PyObject *
Kernel_bind(Kernel *self, PyObject *args)
{
    PyObject *grid, *fallback;
    if (self->name == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "framejit launcher: Kernel not initialized");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OO", &grid, &fallback))
        return NULL;
    PyObject *seq = PySequence_Fast(grid, "framejit launcher: grid must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    unsigned dims[3] = {1, 1, 1};
    if (n < 1 || n > 3) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "framejit launcher: a grid has 1 to 3 dimensions");
        return NULL;
    }
    for (Py_ssize_t d = 0; d < n; d++) {
        if (grid_dim(PySequence_Fast_GET_ITEM(seq, d), &dims[d]) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    Kernel *k = PyObject_New(Kernel, &Kernel_Type);
    if (k == NULL)
        return NULL;
    k->vectorcall = (vectorcallfunc)Kernel_vectorcall;
    k->function = self->function;
    k->block = self->block;
    k->shared = self->shared;
    k->bound = 1;
    memcpy(k->grid, dims, sizeof dims);
    k->name = Py_NewRef(self->name);
    k->device = Py_NewRef(self->device);
    k->stream_fn = Py_NewRef(self->stream_fn);
    k->fallback = Py_NewRef(fallback);
    k->n_codes = self->n_codes;
    memcpy(k->codes, self->codes, self->n_codes);
    k->hits = 0;
    k->counter = self->counter;
    Py_INCREF(k->counter);  /* a bound copy keeps the kernel it counts in alive */
    return (PyObject *)k;
}

static PyObject *
Kernel_get_hits(Kernel *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->counter != NULL ? self->counter->hits : 0);
}

static PyObject *
Kernel_get_codes(Kernel *self, void *closure)
{
    return PyUnicode_FromStringAndSize(self->codes, self->n_codes);
}

static PyObject *
Kernel_repr(Kernel *self)
{
    if (self->name == NULL)
        return PyUnicode_FromString("<framejit launcher (not initialized)>");
    return PyUnicode_FromFormat("<framejit launcher for %U%s>", self->name, self->bound ? " (grid bound)" : "");
}

static PyObject *
Kernel_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Kernel *self = (Kernel *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->vectorcall = (vectorcallfunc)Kernel_vectorcall;
    return (PyObject *)self;
}

static void
Kernel_dealloc(Kernel *self)
{
    Py_XDECREF(self->name);
    Py_XDECREF(self->device);
    Py_XDECREF(self->stream_fn);
    Py_XDECREF(self->fallback);
    if (self->counter != NULL && self->counter != self)
        Py_DECREF(self->counter);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Kernel_methods[] = {
    {"bind", (PyCFunction)Kernel_bind, METH_VARARGS,
     "bind(grid, fallback): the same kernel with its grid fixed; a call with a pointer off 16-byte alignment "
     "where the kernel assumed one goes to fallback(*args) instead."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Kernel_getset[] = {
    {"hits", (getter)Kernel_get_hits, NULL, "launches made (a bound copy's count in the kernel it was bound from)",
     NULL},
    {"codes", (getter)Kernel_get_codes, NULL, "one code per argument", NULL},
    {NULL},
};

static PyTypeObject Kernel_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "inductor._launch.Kernel",
    .tp_basicsize = sizeof(Kernel),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Kernel, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = Kernel_new,
    .tp_init = (initproc)Kernel_init,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_repr = (reprfunc)Kernel_repr,
    .tp_methods = Kernel_methods,
    .tp_getset = Kernel_getset,
    .tp_doc = "Kernel(function, codes, num_warps, shared, device, stream_fn, name): launches a loaded Triton "
              "kernel. Call with grid x, y, z and the arguments, or bind() a grid first. Codes, one per argument: "
              "p pointer, P pointer that must be 16-byte aligned, - constexpr (skipped), b h i l signed and "
              "B H I L unsigned 8/16/32/64-bit integers, e fp16, r bf16, f fp32, d fp64.",
};

static struct PyModuleDef launch_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "inductor._launch",
    .m_doc = "Launches compiled Triton kernels without a per-signature C build (inductor/native_launch.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__launch(void)
{
    data_ptr_name = PyUnicode_InternFromString("data_ptr");
    if (data_ptr_name == NULL || PyType_Ready(&Kernel_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&launch_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Kernel", (PyObject *)&Kernel_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/*
 * alphaforge_cache._reads: the native backend's read path in C (optional; the same logic is
 * written in Python in _shared.py, which is used when this module is absent, and always on PyPy).
 *
 * A Reader serves a cache's gets from its mirror (a dict: key -> value, and a dict of entries with
 * deadlines: key -> (value, deadline)) without a lock and without crossing into the engine: it
 * looks the key up, checks the deadline against the cache's clock, appends the key to the read
 * buffer (a list the cache replays into the engine in batches), and returns the value. Anything
 * else (a key the mirror does not hold, an expired or pickled entry, another key type) is handed
 * back to Python. The GIL is held throughout, so one get is one atomic step for the other
 * threads. Built against the stable ABI of CPython 3.8 (one binary for every version).
 */
#define Py_LIMITED_API 0x03080000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <time.h>

/* Read buffer length at which the buffer is flushed (FLUSH_AT in _shared.py). */
#define FLUSH_AT 256

typedef struct {
    PyObject_HEAD
    PyObject *mirror; /* dict: key -> stored value */
    PyObject *reads;  /* list: keys of gets not yet replayed */
    PyObject *other;  /* callable(key, default): the Python path for everything else */
    PyObject *flush;  /* callable(): replays the read buffer */
    PyObject *absent; /* the default that tells getitem `other` found nothing */
    PyObject *timed;  /* dict: key -> (stored value, deadline) */
    PyObject *timer;  /* None (monotonic time) or the ManualClock (its `_nanos`) */
    PyObject *clock;  /* time.monotonic_ns, where CLOCK_MONOTONIC is not the same clock */
    long long origin; /* monotonic nanoseconds at the cache's time 0 */
} Reader;

/* The latest time a clock reports (MAX_CLOCK_NANOS in _common.py). */
#define MAX_CLOCK_NANOS (UINT64_MAX - 1)

static int Reader_traverse(Reader *self, visitproc visit, void *arg) {
    Py_VISIT(self->mirror);
    Py_VISIT(self->reads);
    Py_VISIT(self->other);
    Py_VISIT(self->flush);
    Py_VISIT(self->absent);
    Py_VISIT(self->timed);
    Py_VISIT(self->timer);
    Py_VISIT(self->clock);
    return 0;
}

static int Reader_clear(Reader *self) {
    Py_CLEAR(self->mirror);
    Py_CLEAR(self->reads);
    Py_CLEAR(self->other);
    Py_CLEAR(self->flush);
    Py_CLEAR(self->absent);
    Py_CLEAR(self->timed);
    Py_CLEAR(self->timer);
    Py_CLEAR(self->clock);
    return 0;
}

static void Reader_dealloc(Reader *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Reader_clear(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static int Reader_init(Reader *self, PyObject *args, PyObject *kwargs) {
    PyObject *mirror, *reads, *other, *flush, *absent, *timed, *timer, *clock;
    long long origin;
    if (kwargs != NULL && PyDict_Size(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "Reader() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "O!O!OOOO!OOL:Reader", &PyDict_Type, &mirror, &PyList_Type,
                          &reads, &other, &flush, &absent, &PyDict_Type, &timed, &timer, &clock,
                          &origin))
        return -1;
    if (!PyCallable_Check(other) || !PyCallable_Check(flush) || !PyCallable_Check(clock)) {
        PyErr_SetString(PyExc_TypeError, "Reader: other, flush and clock must be callable");
        return -1;
    }
    PyObject *fields[] = {mirror, reads, other, flush, absent, timed, timer, clock};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) Py_INCREF(fields[i]);
    Reader_clear(self);
    self->mirror = mirror;
    self->reads = reads;
    self->other = other;
    self->flush = flush;
    self->absent = absent;
    self->timed = timed;
    self->timer = timer;
    self->clock = clock;
    self->origin = origin;
    return 0;
}

/* The cache's time in nanoseconds (CacheBase._now). 0, or -1 with an exception set. */
static int Reader_now(Reader *self, unsigned long long *now) {
    if (self->timer != Py_None) {
        PyObject *nanos = PyObject_GetAttrString(self->timer, "_nanos");
        if (nanos == NULL) return -1;
        *now = PyLong_AsUnsignedLongLong(nanos);
        Py_DECREF(nanos);
        if (*now == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        if (*now > MAX_CLOCK_NANOS) *now = MAX_CLOCK_NANOS;
        return 0;
    }
    long long mono;
#if defined(__linux__)
    /* time.monotonic_ns() is CLOCK_MONOTONIC on Linux: the same clock, without a call. */
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    mono = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
#else
    PyObject *nanos = PyObject_CallObject(self->clock, NULL);
    if (nanos == NULL) return -1;
    mono = PyLong_AsLongLong(nanos);
    Py_DECREF(nanos);
    if (mono == -1 && PyErr_Occurred()) return -1;
#endif
    *now = mono > self->origin ? (unsigned long long)(mono - self->origin) : 0;
    return 0;
}

/* After a key was appended: flushes a full buffer. 0, or -1 with an exception set. */
static int Reader_maybe_flush(Reader *self) {
    if (PyList_Size(self->reads) <= FLUSH_AT) return 0;
    PyObject *done = PyObject_CallObject(self->flush, NULL);
    if (done == NULL) return -1;
    Py_DECREF(done);
    return 0;
}

/* Appends a served read; the value (a new reference) or NULL with an exception. */
static PyObject *Reader_serve(Reader *self, PyObject *key, PyObject *value) {
    Py_INCREF(value);
    if (PyList_Append(self->reads, key) < 0 || Reader_maybe_flush(self) < 0) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
}

/* The stored value of `key` (a new reference), with its read buffered; NULL with no exception
   when Python must decide (absent, expired, not a (value, deadline) pair, unhashable); NULL
   with an exception on an error. */
static PyObject *Reader_lookup(Reader *self, PyObject *key) {
    PyObject *value = PyDict_GetItemWithError(self->mirror, key); /* borrowed */
    if (value != NULL) return Reader_serve(self, key, value);
    if (PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) PyErr_Clear();
        return NULL;
    }
    if (PyDict_Size(self->timed) == 0) return NULL;
    PyObject *entry = PyDict_GetItemWithError(self->timed, key);
    if (entry == NULL || !PyTuple_Check(entry) || PyTuple_Size(entry) != 2) return NULL;
    Py_INCREF(entry); /* reading the clock may run Python code */
    PyObject *served = NULL;
    unsigned long long deadline = PyLong_AsUnsignedLongLong(PyTuple_GetItem(entry, 1));
    unsigned long long now = 0;
    if (!(deadline == (unsigned long long)-1 && PyErr_Occurred()) && Reader_now(self, &now) == 0
        && now < deadline) /* else expired: the engine decides */
        served = Reader_serve(self, key, PyTuple_GetItem(entry, 0));
    Py_DECREF(entry);
    return served;
}

PyDoc_STRVAR(Reader_get_doc,
             "get(key, default=None)\n--\n\n"
             "The value of ``key`` (which becomes the most recently used), or ``default``.");

static PyObject *Reader_get(Reader *self, PyObject *args) {
    PyObject *key, *dflt = Py_None;
    if (!PyArg_UnpackTuple(args, "get", 1, 2, &key, &dflt)) return NULL;
    PyObject *value = Reader_lookup(self, key);
    if (value != NULL || PyErr_Occurred()) return value;
    return PyObject_CallFunctionObjArgs(self->other, key, dflt, NULL);
}

PyDoc_STRVAR(Reader_getitem_doc,
             "getitem(key)\n--\n\n"
             "The value of ``key`` (which becomes the most recently used); KeyError if absent.");

static PyObject *Reader_getitem(Reader *self, PyObject *key) {
    PyObject *value = Reader_lookup(self, key);
    if (value != NULL || PyErr_Occurred()) return value;
    value = PyObject_CallFunctionObjArgs(self->other, key, self->absent, NULL);
    if (value == self->absent) {
        Py_DECREF(value);
        PyObject *error = PyObject_CallFunctionObjArgs(PyExc_KeyError, key, NULL);
        if (error != NULL) {
            PyErr_SetObject(PyExc_KeyError, error);
            Py_DECREF(error);
        }
        return NULL;
    }
    return value;
}

PyDoc_STRVAR(Reader_get_many_doc,
             "get_many(keys: list, default, key_len, misses: list) -> list | None\n--\n\n"
             "The values of ``keys`` (``default`` for a key the mirror does not hold), their "
             "reads buffered; None (nothing buffered) when a key is not ``bytes``. ``key_len`` "
             "is the length every stored key has (-2: several, -1: none stored yet); a key of "
             "another length is a certain miss, counted by appending None to ``misses`` "
             "instead of buffering the key (the rule of CacheBase._read_miss).");

static PyObject *Reader_get_many(Reader *self, PyObject *args) {
    PyObject *keys, *dflt, *misses;
    Py_ssize_t key_len;
    if (!PyArg_ParseTuple(args, "O!OnO!:get_many", &PyList_Type, &keys, &dflt, &key_len,
                          &PyList_Type, &misses))
        return NULL;
    Py_ssize_t n = PyList_Size(keys);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_CheckExact(PyList_GetItem(keys, i))) Py_RETURN_NONE;
    }
    PyObject *values = PyList_New(n);
    if (values == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GetItem(keys, i); /* borrowed; the list is ours for the call */
        PyObject *value = PyDict_GetItemWithError(self->mirror, key);
        if (value == NULL) {
            if (PyErr_Occurred()) goto fail;
            value = dflt;
        }
        Py_INCREF(value);
        PyList_SetItem(values, i, value); /* steals */
        int buffered = key_len == -2 || PyBytes_Size(key) == key_len;
        if (PyList_Append(buffered ? self->reads : misses, buffered ? key : Py_None) < 0)
            goto fail;
    }
    if (Reader_maybe_flush(self) < 0) goto fail;
    return values;
fail:
    Py_DECREF(values);
    return NULL;
}

static PyMethodDef Reader_methods[] = {
    {"get", (PyCFunction)Reader_get, METH_VARARGS, Reader_get_doc},
    {"getitem", (PyCFunction)Reader_getitem, METH_O, Reader_getitem_doc},
    {"get_many", (PyCFunction)Reader_get_many, METH_VARARGS, Reader_get_many_doc},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Reader_slots[] = {
    {Py_tp_doc, "Serves a cache's gets from its mirror, buffering the reads (see _shared.py)."},
    {Py_tp_init, Reader_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, Reader_dealloc},
    {Py_tp_traverse, Reader_traverse},
    {Py_tp_clear, Reader_clear},
    {Py_tp_methods, Reader_methods},
    {0, NULL},
};

static PyType_Spec Reader_spec = {
    "alphaforge_cache._reads.Reader",
    sizeof(Reader),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    Reader_slots,
};

static struct PyModuleDef reads_module = {
    PyModuleDef_HEAD_INIT, "_reads", "The native backend's read path in C.", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__reads(void) {
    PyObject *module = PyModule_Create(&reads_module);
    if (module == NULL) return NULL;
    PyObject *type = PyType_FromSpec(&Reader_spec);
    if (type == NULL || PyModule_AddObject(module, "Reader", type) < 0) {
        Py_XDECREF(type);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

/*
 * alphaforge_cache._reads: the native backend's read path in C (optional; the same logic is
 * written in Python in _shared.py, which is used when this module is absent, and always on PyPy).
 *
 * A Reader serves a cache's gets from its mirror (a dict: key -> value) without a lock and
 * without crossing into the engine: it looks the key up, appends the key to the read buffer (a
 * list the cache replays into the engine in batches), and returns the value. Anything else (a
 * key the mirror does not hold, an entry with a deadline, another key type, a full buffer) is
 * handed back to Python. The GIL is held throughout, so one get is one atomic step for the other
 * threads. Built against the stable ABI of CPython 3.8 (one binary for every version).
 */
#define Py_LIMITED_API 0x03080000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Read buffer length at which the buffer is flushed (FLUSH_AT in _shared.py). */
#define FLUSH_AT 256

typedef struct {
    PyObject_HEAD
    PyObject *mirror; /* dict: key -> stored value */
    PyObject *reads;  /* list: keys of gets not yet replayed */
    PyObject *other;  /* callable(key, default): the Python path for everything else */
    PyObject *flush;  /* callable(): replays the read buffer */
    PyObject *absent; /* the default that tells getitem `other` found nothing */
} Reader;

static int Reader_traverse(Reader *self, visitproc visit, void *arg) {
    Py_VISIT(self->mirror);
    Py_VISIT(self->reads);
    Py_VISIT(self->other);
    Py_VISIT(self->flush);
    Py_VISIT(self->absent);
    return 0;
}

static int Reader_clear(Reader *self) {
    Py_CLEAR(self->mirror);
    Py_CLEAR(self->reads);
    Py_CLEAR(self->other);
    Py_CLEAR(self->flush);
    Py_CLEAR(self->absent);
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
    PyObject *mirror, *reads, *other, *flush, *absent;
    if (kwargs != NULL && PyDict_Size(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "Reader() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_UnpackTuple(args, "Reader", 5, 5, &mirror, &reads, &other, &flush, &absent))
        return -1;
    if (!PyDict_Check(mirror) || !PyList_Check(reads)) {
        PyErr_SetString(PyExc_TypeError,
                        "Reader(mirror: dict, reads: list, other, flush, absent)");
        return -1;
    }
    if (!PyCallable_Check(other) || !PyCallable_Check(flush)) {
        PyErr_SetString(PyExc_TypeError, "Reader: other and flush must be callable");
        return -1;
    }
    Py_INCREF(mirror);
    Py_INCREF(reads);
    Py_INCREF(other);
    Py_INCREF(flush);
    Py_INCREF(absent);
    Reader_clear(self);
    self->mirror = mirror;
    self->reads = reads;
    self->other = other;
    self->flush = flush;
    self->absent = absent;
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

/* The stored value of `key` (a new reference), with its read buffered; NULL with no exception
   when the mirror does not hold it (or cannot hash it); NULL with an exception on an error. */
static PyObject *Reader_lookup(Reader *self, PyObject *key) {
    PyObject *value = PyDict_GetItemWithError(self->mirror, key); /* borrowed */
    if (value == NULL) {
        if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_TypeError)) PyErr_Clear();
        return NULL;
    }
    Py_INCREF(value);
    if (PyList_Append(self->reads, key) < 0 || Reader_maybe_flush(self) < 0) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
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

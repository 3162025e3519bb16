/* A heap type added to the _reads module and kept for its C code (_reads.c, _mirror.c,
   _cache_lock.c). */
#ifndef ALPHAFORGE_CACHE_MODULE_TYPE_H
#define ALPHAFORGE_CACHE_MODULE_TYPE_H

#include <Python.h>

/* Creates the type of `spec`, adds it to `module` as `name` and sets `*kept` to it (a reference
   of the C code's own, for the process's life). 0, or -1 with an exception set. */
static inline int add_kept_type(PyObject *module, PyType_Spec *spec, const char *name,
                                PyObject **kept) {
    PyObject *type = PyType_FromSpec(spec);
    if (type == NULL) return -1;
    Py_INCREF(type); /* one reference for the C code, one given to the module */
    if (PyModule_AddObject(module, name, type) < 0) {
        Py_DECREF(type);
        Py_DECREF(type);
        return -1;
    }
    *kept = type;
    return 0;
}

#endif

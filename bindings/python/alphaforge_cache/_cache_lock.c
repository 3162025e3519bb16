/* alphaforge_cache._reads.CacheLock: see _cache_lock.h. Built against the stable ABI of CPython
   3.8. */
#define Py_LIMITED_API 0x03080000
#include "_cache_lock.h"
#include "_module_type.h"

static PyObject *CacheLockType;

#ifdef _WIN32
static void mutex_init(CacheMutex *m) { InitializeSRWLock(m); }
static void mutex_destroy(CacheMutex *m) { (void)m; }
static int mutex_try(CacheMutex *m) { return TryAcquireSRWLockExclusive(m) != 0; }
static void mutex_lock(CacheMutex *m) { AcquireSRWLockExclusive(m); }
static void mutex_unlock(CacheMutex *m) { ReleaseSRWLockExclusive(m); }
#else
static void mutex_init(CacheMutex *m) { pthread_mutex_init(m, NULL); }
static void mutex_destroy(CacheMutex *m) { pthread_mutex_destroy(m); }
static int mutex_try(CacheMutex *m) { return pthread_mutex_trylock(m) == 0; }
static void mutex_lock(CacheMutex *m) { pthread_mutex_lock(m); }
static void mutex_unlock(CacheMutex *m) { pthread_mutex_unlock(m); }
#endif

int CacheLock_check(PyObject *obj) {
    return CacheLockType != NULL && Py_TYPE(obj) == (PyTypeObject *)CacheLockType;
}

int CacheLock_try(CacheLock *self) {
    if (!mutex_try(&self->mutex)) return 0;
    self->owner = PyThread_get_thread_ident();
    return 1;
}

void CacheLock_wait(CacheLock *self) {
    if (CacheLock_try(self)) return;
    /* The holder may need the GIL to finish: let it go while waiting. */
    PyThreadState *state = PyEval_SaveThread();
    mutex_lock(&self->mutex);
    PyEval_RestoreThread(state);
    self->owner = PyThread_get_thread_ident();
}

void CacheLock_cut_short(CacheLock *self) { self->dirty = 1; }

/* After a Python-level acquire: mends the tables if an operation was cut short. 0, or -1 with
   the mender's exception set and the lock released (still dirty: the next holder tries again). */
static int CacheLock_mend_if_dirty(CacheLock *self) {
    if (!self->dirty) return 0;
    if (self->mend != NULL) {
        PyObject *method = PyObject_CallObject(self->mend, NULL);
        if (method == NULL) goto failed;
        if (method != Py_None) {
            PyObject *done = PyObject_CallObject(method, NULL);
            Py_DECREF(method);
            if (done == NULL) goto failed;
            Py_DECREF(done);
        } else {
            Py_DECREF(method);
        }
    }
    self->dirty = 0;
    return 0;
failed:
    (void)CacheLock_release(self); /* held by this thread: cannot fail */
    return -1;
}

int CacheLock_release(CacheLock *self) {
    if (self->owner != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "release of a CacheLock this thread does not hold");
        return -1;
    }
    self->owner = 0;
    mutex_unlock(&self->mutex);
    return 0;
}

static PyObject *CacheLock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    if (PyTuple_Size(args) != 0 || (kwargs != NULL && PyDict_Size(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "CacheLock() takes no arguments");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    CacheLock *self = (CacheLock *)alloc(type, 0);
    if (self == NULL) return NULL;
    mutex_init(&self->mutex);
    self->owner = 0;
    self->dirty = 0;
    self->mend = NULL;
    return (PyObject *)self;
}

static void CacheLock_dealloc(CacheLock *self) {
    PyTypeObject *type = Py_TYPE(self);
    mutex_destroy(&self->mutex);
    Py_CLEAR(self->mend);
    freefunc free_self = (freefunc)PyType_GetSlot(type, Py_tp_free);
    free_self(self);
    Py_DECREF(type);
}

PyDoc_STRVAR(CacheLock_acquire_doc,
             "acquire(blocking=True) -> bool\n--\n\n"
             "Takes the lock: waits for it (the GIL released) unless ``blocking`` is false. "
             "True when taken.");

static PyObject *CacheLock_acquire(CacheLock *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"blocking", NULL};
    int blocking = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:acquire", names, &blocking)) return NULL;
    if (!blocking) {
        if (!CacheLock_try(self)) Py_RETURN_FALSE;
    } else {
        CacheLock_wait(self);
    }
    if (CacheLock_mend_if_dirty(self) < 0) return NULL;
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(CacheLock_release_doc,
             "release() -> None\n--\n\n"
             "Releases the lock. RuntimeError when this thread does not hold it.");

/* release() and __exit__(*exc_info): the arguments (none, or the exception's) are ignored. */
static PyObject *CacheLock_release_method(CacheLock *self, PyObject *ignored) {
    (void)ignored;
    if (CacheLock_release(self) < 0) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(CacheLock_locked_doc,
             "locked() -> bool\n--\n\n"
             "Whether some thread holds the lock (a snapshot: it may change at once).");

static PyObject *CacheLock_locked(CacheLock *self, PyObject *unused) {
    (void)unused;
    if (!mutex_try(&self->mutex)) Py_RETURN_TRUE;
    mutex_unlock(&self->mutex);
    Py_RETURN_FALSE;
}

static PyObject *CacheLock_enter(CacheLock *self, PyObject *unused) {
    (void)unused;
    CacheLock_wait(self);
    if (CacheLock_mend_if_dirty(self) < 0) return NULL;
    Py_RETURN_TRUE;
}

/* __exit__(exc_type, exc, traceback): an exception leaving the block cut its operation short
   (CPython always runs this exit, even for a RecursionError raised at the limit). */
static PyObject *CacheLock_exit(CacheLock *self, PyObject *args) {
    if (PyTuple_Check(args) && PyTuple_Size(args) >= 1 && PyTuple_GetItem(args, 0) != Py_None)
        self->dirty = 1;
    if (CacheLock_release(self) < 0) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(CacheLock_set_mend_doc,
             "set_mend(weak_method) -> None\n--\n\n"
             "The cache's mender, as a weakref.WeakMethod: called (lock held) by the next "
             "acquire after an operation was cut short under the lock.");

static PyObject *CacheLock_set_mend(CacheLock *self, PyObject *mend) {
    if (!PyCallable_Check(mend)) {
        PyErr_SetString(PyExc_TypeError, "set_mend: a weakref.WeakMethod is expected");
        return NULL;
    }
    PyObject *old = self->mend;
    Py_INCREF(mend);
    self->mend = mend;
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyObject *CacheLock_get_dirty(CacheLock *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->dirty);
}

static PyMethodDef CacheLock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))CacheLock_acquire, METH_VARARGS | METH_KEYWORDS,
     CacheLock_acquire_doc},
    {"release", (PyCFunction)CacheLock_release_method, METH_NOARGS, CacheLock_release_doc},
    {"locked", (PyCFunction)CacheLock_locked, METH_NOARGS, CacheLock_locked_doc},
    {"__enter__", (PyCFunction)CacheLock_enter, METH_NOARGS,
     "Takes the lock, waiting for it (the GIL released)."},
    {"__exit__", (PyCFunction)CacheLock_exit, METH_VARARGS,
     "Releases the lock; an exception leaving the block marks the tables to be mended."},
    {"set_mend", (PyCFunction)CacheLock_set_mend, METH_O, CacheLock_set_mend_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef CacheLock_getset[] = {
    {"dirty", (getter)CacheLock_get_dirty, NULL,
     "Whether an operation was cut short under the lock and the tables await mending.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot CacheLock_slots[] = {
    {Py_tp_getset, CacheLock_getset},
    {Py_tp_doc, "The lock of a native cache's engine calls and mirror changes, taken from C "
                "and from Python (see _cache_lock.h)."},
    {Py_tp_new, CacheLock_new},
    {Py_tp_dealloc, CacheLock_dealloc},
    {Py_tp_methods, CacheLock_methods},
    {0, NULL},
};

static PyType_Spec CacheLock_spec = {
    "alphaforge_cache._reads.CacheLock",
    sizeof(CacheLock),
    0,
    Py_TPFLAGS_DEFAULT,
    CacheLock_slots,
};

int CacheLock_add_type(PyObject *module) {
    return add_kept_type(module, &CacheLock_spec, "CacheLock", &CacheLockType);
}

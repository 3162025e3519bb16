/*
 * alphaforge_cache.compat._speedups: the read paths of the compat caches in C (optional: the
 * same logic is written in Python in _core.py and _functools.py, which are used when this module
 * is absent, on PyPy, and with ALPHAFORGE_CACHE_BACKEND=python).
 *
 * Core is the base type of compat.LRUCache and compat.TTLCache. It holds the cache's values
 * (`_od`, an OrderedDict in least-recently-used-first order) and, for a TTL cache, its timer
 * (`_timer`), the expiry times (`_exp`) and a time before which nothing expires (`_floor`, see
 * _ttl.py). Its get, __getitem__ and __contains__ do what the Python versions do, in one C call:
 * one dict lookup, the timer read through the timer's current reader and a comparison with the
 * floor (the item's own expiry time only once the floor has passed), and
 * OrderedDict.move_to_end. Everything else about the caches is Python (_base.py, _lru.py,
 * _ttl.py).
 *
 * LRUWrapper is the wrapper of compat.lru_cache: its call builds the key as CPython's C
 * lru_cache does, serves a hit (lookup, move_to_end, count), and hands a miss to Python.
 *
 * The GIL is held throughout. Built against the stable ABI of CPython 3.8 (one binary for every
 * version), as alphaforge_cache._reads.
 */
#define Py_LIMITED_API 0x03080000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <time.h>

/* METH_FASTCALL (no argument tuple per call) joined the stable ABI in 3.10, but CPython has
   implemented it with this value and this signature since 3.7 (as in _reads.c). */
#ifndef METH_FASTCALL
#define METH_FASTCALL 0x0080
#endif
#ifndef METH_KEYWORDS
#define METH_KEYWORDS 0x0002
#endif

/* Whether a cache is a TTL cache (an LRU cache's _timer is None, or not set). */
#define HAS_TIMER(self) ((self)->timer != NULL && (self)->timer != Py_None)

static PyObject *str_move_to_end;  /* "move_to_end" */
static PyObject *str_missing;      /* "__missing__" */
static PyObject *str_read;         /* "_Timer__read": the timer's current reader */
static PyObject *monotonic;        /* time.monotonic */

/* ----- Core ---------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *od;    /* OrderedDict: key -> value */
    PyObject *timer; /* NULL or None: an LRU cache; else the TTL cache's Timer */
    PyObject *exp;   /* a TTL cache's OrderedDict: key -> expiry time */
    PyObject *floor; /* a TTL cache's time before which no item expires, or None */
} Core;

static int Core_traverse(Core *self, visitproc visit, void *arg) {
    Py_VISIT(self->od);
    Py_VISIT(self->timer);
    Py_VISIT(self->exp);
    Py_VISIT(self->floor);
    return 0;
}

static int Core_clear(Core *self) {
    Py_CLEAR(self->od);
    Py_CLEAR(self->timer);
    Py_CLEAR(self->exp);
    Py_CLEAR(self->floor);
    return 0;
}

static void Core_dealloc(Core *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Core_clear(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

/* od.move_to_end(key). 0, or -1 with an exception set. */
static int move_to_end(PyObject *od, PyObject *key) {
    PyObject *done = PyObject_CallMethodObjArgs(od, str_move_to_end, key, NULL);
    if (done == NULL) return -1;
    Py_DECREF(done);
    return 0;
}

/* The same, a KeyError ignored (the key was removed meanwhile: a read still counts as a hit). */
static int move_to_end_if_there(PyObject *od, PyObject *key) {
    if (move_to_end(od, key) == 0) return 0;
    if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
    PyErr_Clear();
    return 0;
}

/* A time read: an object, or the seconds of CLOCK_MONOTONIC when the cache's timer is Python's
   time.monotonic itself (on Linux, where that is the clock time.monotonic reads, with the same
   rounding): the read then costs no call and no float object. */
typedef struct {
    PyObject *obj; /* a new reference, or NULL: the time is `seconds` */
    double seconds;
} Now;

/* Reads the time through the timer's current reader (the user's timer, or the frozen time).
   0, or -1 with an exception. */
static int read_now(PyObject *timer, Now *now) {
    now->obj = NULL;
    PyObject *reader = PyObject_GetAttr(timer, str_read);
    if (reader == NULL) return -1;
#ifdef __linux__
    struct timespec ts;
    if (reader == monotonic && clock_gettime(CLOCK_MONOTONIC, &ts) == 0) {
        Py_DECREF(reader);
        now->seconds = (double)((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec) / 1e9;
        return 0;
    }
#endif
    now->obj = PyObject_CallObject(reader, NULL);
    Py_DECREF(reader);
    return now->obj == NULL ? -1 : 0;
}

/* `now < than`: 1, 0, or -1 with an exception. */
static int less(Now *now, PyObject *than) {
    if (now->obj == NULL) {
        if (PyFloat_CheckExact(than)) return now->seconds < PyFloat_AsDouble(than);
        now->obj = PyFloat_FromDouble(now->seconds);
        if (now->obj == NULL) return -1;
    }
    Py_INCREF(than); /* a comparison may run Python code that replaces it */
    int lt = PyObject_RichCompareBool(now->obj, than, Py_LT);
    Py_DECREF(than);
    return lt;
}

/* Whether the stored `key` of a TTL cache is alive at `now`: 1, 0, or -1 with an exception. */
static int alive(Core *self, PyObject *key, Now *now) {
    PyObject *floor = self->floor;
    if (floor != NULL && floor != Py_None) {
        int lt = less(now, floor);
        if (lt != 0) return lt; /* before the floor: alive (or an error) */
    }
    if (self->exp == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the TTL cache was not initialized (no _exp)");
        return -1;
    }
    PyObject *expires = PyDict_GetItemWithError(self->exp, key); /* borrowed */
    if (expires == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, key);
        return -1;
    }
    return less(now, expires);
}

static int Core_check(Core *self) {
    if (self->od == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the cache was not initialized (no _od)");
        return -1;
    }
    return 0;
}

/* get(key, default=None) with METH_FASTCALL | METH_KEYWORDS. */
static int parse_get(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **key,
                     PyObject **dflt) {
    *key = nargs >= 1 ? args[0] : NULL;
    *dflt = nargs >= 2 ? args[1] : Py_None;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "get() takes at most 2 arguments (%zd given)", nargs);
        return -1;
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_Size(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GetItem(kwnames, i);
        int is_key = PyUnicode_CompareWithASCIIString(name, "key") == 0;
        int is_default = PyUnicode_CompareWithASCIIString(name, "default") == 0;
        if ((!is_key && !is_default) || (is_key && *key != NULL) || (is_default && nargs == 2)) {
            PyErr_Format(PyExc_TypeError, "get() got an unexpected or repeated argument %R",
                         name);
            return -1;
        }
        if (is_key) *key = args[nargs + i];
        else *dflt = args[nargs + i];
    }
    if (*key == NULL) {
        PyErr_SetString(PyExc_TypeError, "get() missing required argument 'key'");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(Core_get_doc,
             "get(key, default=None)\n--\n\n"
             "The value of ``key`` if it is there (and, for a TTL cache, not expired); it becomes "
             "the most recently used. Else ``default``; ``__missing__`` is not called.");

static PyObject *Core_get(Core *self, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames) {
    PyObject *key, *dflt;
    if (parse_get(args, nargs, kwnames, &key, &dflt) < 0 || Core_check(self) < 0) return NULL;
    PyObject *od = self->od;
    if (!HAS_TIMER(self)) {
        PyObject *value = PyDict_GetItemWithError(od, key); /* borrowed */
        if (value == NULL) {
            if (PyErr_Occurred()) return NULL;
            Py_INCREF(dflt);
            return dflt;
        }
        Py_INCREF(value);
        if (move_to_end_if_there(od, key) < 0) {
            Py_DECREF(value);
            return NULL;
        }
        return value;
    }
    /* A TTL cache reads the timer first, hit or miss (as cachetools' get does). */
    Now now;
    if (read_now(self->timer, &now) < 0) return NULL;
    PyObject *value = PyDict_GetItemWithError(od, key); /* borrowed */
    if (value == NULL) {
        Py_XDECREF(now.obj);
        if (PyErr_Occurred()) return NULL;
        Py_INCREF(dflt);
        return dflt;
    }
    Py_INCREF(value);
    int live = alive(self, key, &now);
    Py_XDECREF(now.obj);
    if (live > 0 && move_to_end_if_there(od, key) == 0) return value;
    Py_DECREF(value);
    if (live != 0) return NULL;
    Py_INCREF(dflt);
    return dflt;
}

/* self.__missing__(key) */
static PyObject *call_missing(PyObject *self, PyObject *key) {
    return PyObject_CallMethodObjArgs(self, str_missing, key, NULL);
}

static PyObject *Core_getitem(Core *self, PyObject *key) {
    if (Core_check(self) < 0) return NULL;
    PyObject *od = self->od;
    PyObject *value = PyDict_GetItemWithError(od, key); /* borrowed */
    if (value == NULL) {
        if (PyErr_Occurred()) return NULL;
        value = call_missing((PyObject *)self, key);
        if (value == NULL || HAS_TIMER(self)) return value;
        /* An LRU cache: __missing__ may have stored the key, which becomes the most recent. */
        int there = PyDict_Contains(od, key);
        if (there < 0 || (there == 1 && move_to_end(od, key) < 0)) {
            Py_DECREF(value);
            return NULL;
        }
        return value;
    }
    Py_INCREF(value);
    if (move_to_end(od, key) < 0) {
        Py_DECREF(value);
        return NULL;
    }
    if (!HAS_TIMER(self)) return value;
    Now now;
    int live = read_now(self->timer, &now) < 0 ? -1 : alive(self, key, &now);
    Py_XDECREF(now.obj);
    if (live > 0) return value;
    Py_DECREF(value);
    return live == 0 ? call_missing((PyObject *)self, key) : NULL;
}

static int Core_contains(Core *self, PyObject *key) {
    if (Core_check(self) < 0) return -1;
    int there = PyDict_Contains(self->od, key);
    if (there <= 0 || !HAS_TIMER(self)) return there;
    Now now;
    if (read_now(self->timer, &now) < 0) return -1;
    int live = alive(self, key, &now);
    Py_XDECREF(now.obj);
    return live;
}

static PyMethodDef Core_methods[] = {
    {"get", (PyCFunction)(void (*)(void))Core_get, METH_FASTCALL | METH_KEYWORDS, Core_get_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Core_members[] = {
    {"_od", T_OBJECT_EX, offsetof(Core, od), 0, "The items, least recently used first."},
    {"_timer", T_OBJECT_EX, offsetof(Core, timer), 0, "A TTL cache's timer."},
    {"_exp", T_OBJECT_EX, offsetof(Core, exp), 0, "A TTL cache's expiry times."},
    {"_floor", T_OBJECT_EX, offsetof(Core, floor), 0, "A TTL cache's time before which nothing expires."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Core_slots[] = {
    {Py_tp_doc, "The read paths of compat.LRUCache and compat.TTLCache (see _core.py)."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, Core_dealloc},
    {Py_tp_traverse, Core_traverse},
    {Py_tp_clear, Core_clear},
    {Py_tp_methods, Core_methods},
    {Py_tp_members, Core_members},
    {Py_mp_subscript, Core_getitem},
    {Py_sq_contains, Core_contains},
    {0, NULL},
};

static PyType_Spec Core_spec = {
    "alphaforge_cache.compat._speedups.Core",
    sizeof(Core),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    Core_slots,
};

/* ----- LRUWrapper ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *func;      /* the user's function */
    PyObject *cache;     /* dict (no bound), OrderedDict (a bound), or an empty dict (maxsize 0) */
    PyObject *make_key;  /* make_key(args, kwds, typed): keys of calls with keywords, or typed */
    PyObject *finish;    /* finish(args): the key, hashing once if an item's hash may be Python */
    PyObject *info_type; /* CacheInfo */
    PyObject *reported;  /* the maxsize cache_info() reports (None or an int) */
    Py_ssize_t maxsize;  /* -1: no bound; 0: no caching; else the bound */
    int typed;
    Py_ssize_t hits, misses;
} LRUWrapper;

static PyObject *object_hash; /* object.__hash__ */
static PyObject *method_type; /* types.MethodType (PyMethod_New is not in the stable ABI) */
static PyObject *str_hash;    /* "__hash__" */
static PyObject *str_setdefault, *str_popitem, *str_clear;

static int LRUWrapper_traverse(LRUWrapper *self, visitproc visit, void *arg) {
    Py_VISIT(self->func);
    Py_VISIT(self->cache);
    Py_VISIT(self->make_key);
    Py_VISIT(self->finish);
    Py_VISIT(self->info_type);
    Py_VISIT(self->reported);
    return 0;
}

static int LRUWrapper_clear(LRUWrapper *self) {
    Py_CLEAR(self->func);
    Py_CLEAR(self->cache);
    Py_CLEAR(self->make_key);
    Py_CLEAR(self->finish);
    Py_CLEAR(self->info_type);
    Py_CLEAR(self->reported);
    return 0;
}

static void LRUWrapper_dealloc(LRUWrapper *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    LRUWrapper_clear(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static int LRUWrapper_init(LRUWrapper *self, PyObject *args, PyObject *kwargs) {
    PyObject *func, *maxsize, *typed, *cache, *make_key, *finish, *info_type;
    if (kwargs != NULL && PyDict_Size(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "LRUWrapper() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_UnpackTuple(args, "LRUWrapper", 7, 7, &func, &maxsize, &typed, &cache, &make_key,
                           &finish, &info_type))
        return -1;
    Py_ssize_t bound = -1;
    if (maxsize != Py_None) {
        bound = PyNumber_AsSsize_t(maxsize, PyExc_OverflowError);
        if (bound == -1 && PyErr_Occurred()) return -1;
        if (bound < 0) bound = 0;
    }
    int is_typed = PyObject_IsTrue(typed);
    if (is_typed < 0) return -1;
    if (!PyDict_Check(cache)) {
        PyErr_SetString(PyExc_TypeError, "LRUWrapper: cache must be a dict or an OrderedDict");
        return -1;
    }
    PyObject *reported = maxsize == Py_None ? Py_None : PyLong_FromSsize_t(bound);
    if (reported == NULL) return -1;
    if (maxsize == Py_None) Py_INCREF(reported);
    LRUWrapper_clear(self);
    Py_INCREF(func);
    Py_INCREF(cache);
    Py_INCREF(make_key);
    Py_INCREF(finish);
    Py_INCREF(info_type);
    self->func = func;
    self->cache = cache;
    self->make_key = make_key;
    self->finish = finish;
    self->info_type = info_type;
    self->reported = reported;
    self->maxsize = bound;
    self->typed = is_typed;
    self->hits = self->misses = 0;
    return 0;
}

/* Whether hashing `item` cannot run Python code (so hashing a key twice is not observable):
   1, 0, or -1 with an exception. */
static int hash_is_builtin(PyObject *item) {
    PyTypeObject *type = Py_TYPE(item);
    if (type == &PyLong_Type || type == &PyUnicode_Type || type == &PyBytes_Type ||
        type == &PyFloat_Type || type == &PyBool_Type || item == Py_None ||
        type == &PyComplex_Type || type == &PyFrozenSet_Type || type == &PyType_Type)
        return 1;
    PyObject *hash = PyObject_GetAttr((PyObject *)type, str_hash);
    if (hash == NULL) return -1;
    int same = hash == object_hash;
    Py_DECREF(hash);
    return same;
}

/* The key of a call (a new reference), as CPython's C lru_cache makes it; NULL on error. */
static PyObject *make_key(LRUWrapper *self, PyObject *args, PyObject *kwds) {
    if (self->typed || (kwds != NULL && PyDict_Size(kwds) != 0)) {
        return PyObject_CallFunctionObjArgs(self->make_key, args, kwds == NULL ? Py_None : kwds,
                                            self->typed ? Py_True : Py_False, NULL);
    }
    Py_ssize_t n = PyTuple_Size(args);
    if (n == 1) {
        PyObject *arg = PyTuple_GetItem(args, 0);
        PyTypeObject *type = Py_TYPE(arg);
        if (type == &PyUnicode_Type || type == &PyLong_Type) {
            Py_INCREF(arg); /* one str or int argument is its own key */
            return arg;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int builtin = hash_is_builtin(PyTuple_GetItem(args, i));
        if (builtin < 0) return NULL;
        if (!builtin) return PyObject_CallFunctionObjArgs(self->finish, args, NULL);
    }
    Py_INCREF(args);
    return args;
}

static PyObject *LRUWrapper_call(LRUWrapper *self, PyObject *args, PyObject *kwds) {
    if (self->func == NULL) {
        PyErr_SetString(PyExc_TypeError, "LRUWrapper was not initialized");
        return NULL;
    }
    if (self->maxsize == 0) {
        self->misses++;
        return PyObject_Call(self->func, args, kwds);
    }
    PyObject *key = make_key(self, args, kwds);
    if (key == NULL) return NULL;
    PyObject *cache = self->cache;
    PyObject *result = PyDict_GetItemWithError(cache, key); /* borrowed */
    if (result != NULL) {
        self->hits++;
        Py_INCREF(result);
        if (self->maxsize > 0 && move_to_end_if_there(cache, key) < 0) {
            Py_DECREF(result);
            result = NULL;
        }
        Py_DECREF(key);
        return result;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    self->misses++;
    result = PyObject_Call(self->func, args, kwds);
    if (result == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    if (self->maxsize < 0) {
        if (PyDict_SetItem(cache, key, result) < 0) Py_CLEAR(result);
        Py_DECREF(key);
        return result;
    }
    /* Stored unless it was stored while the function ran (a recursive call, another thread):
       that entry stays, and this call's result is returned. Then the least recently used
       entries go until the bound holds. */
    PyObject *kept = PyObject_CallMethodObjArgs(cache, str_setdefault, key, result, NULL);
    Py_DECREF(key);
    if (kept == NULL) {
        Py_DECREF(result);
        return NULL;
    }
    Py_DECREF(kept);
    for (;;) {
        Py_ssize_t size = PyObject_Length(cache);
        if (size < 0) {
            Py_DECREF(result);
            return NULL;
        }
        if (size <= self->maxsize) break;
        PyObject *old = PyObject_CallMethodObjArgs(cache, str_popitem, Py_False, NULL);
        if (old == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                Py_DECREF(result);
                return NULL;
            }
            PyErr_Clear(); /* emptied by another thread meanwhile */
            break;
        }
        Py_DECREF(old);
    }
    return result;
}

static PyObject *LRUWrapper_cache_info(LRUWrapper *self, PyObject *unused) {
    (void)unused;
    if (self->cache == NULL) {
        PyErr_SetString(PyExc_TypeError, "LRUWrapper was not initialized");
        return NULL;
    }
    Py_ssize_t size = PyObject_Length(self->cache);
    if (size < 0) return NULL;
    return PyObject_CallFunction(self->info_type, "nnOn", self->hits, self->misses,
                                 self->reported, size);
}

static PyObject *LRUWrapper_cache_clear(LRUWrapper *self, PyObject *unused) {
    (void)unused;
    if (self->cache == NULL) {
        PyErr_SetString(PyExc_TypeError, "LRUWrapper was not initialized");
        return NULL;
    }
    PyObject *done = PyObject_CallMethodObjArgs(self->cache, str_clear, NULL);
    if (done == NULL) return NULL;
    Py_DECREF(done);
    self->hits = self->misses = 0;
    Py_RETURN_NONE;
}

/* Binds as a method, as functions (and the C lru_cache wrapper) do. */
static PyObject *LRUWrapper_get(PyObject *self, PyObject *obj, PyObject *type) {
    (void)type;
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyObject_CallFunctionObjArgs(method_type, self, obj, NULL); /* types.MethodType */
}

static PyMethodDef LRUWrapper_methods[] = {
    {"cache_info", (PyCFunction)LRUWrapper_cache_info, METH_NOARGS,
     "Report cache statistics: CacheInfo(hits, misses, maxsize, currsize)."},
    {"cache_clear", (PyCFunction)LRUWrapper_cache_clear, METH_NOARGS,
     "Clear the cache and cache statistics."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot LRUWrapper_slots[] = {
    {Py_tp_doc, "The call of a compat.lru_cache wrapper (see _functools.py)."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, LRUWrapper_init},
    {Py_tp_dealloc, LRUWrapper_dealloc},
    {Py_tp_traverse, LRUWrapper_traverse},
    {Py_tp_clear, LRUWrapper_clear},
    {Py_tp_call, LRUWrapper_call},
    {Py_tp_descr_get, LRUWrapper_get},
    {Py_tp_methods, LRUWrapper_methods},
    {0, NULL},
};

static PyType_Spec LRUWrapper_spec = {
    "alphaforge_cache.compat._speedups.LRUWrapper",
    sizeof(LRUWrapper),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    LRUWrapper_slots,
};

/* ----- the module ---------------------------------------------------------------------------- */

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "_speedups", "The read paths of alphaforge_cache.compat in C.", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    str_move_to_end = PyUnicode_InternFromString("move_to_end");
    str_missing = PyUnicode_InternFromString("__missing__");
    str_read = PyUnicode_InternFromString("_Timer__read");
    str_hash = PyUnicode_InternFromString("__hash__");
    str_setdefault = PyUnicode_InternFromString("setdefault");
    str_popitem = PyUnicode_InternFromString("popitem");
    str_clear = PyUnicode_InternFromString("clear");
    if (str_move_to_end == NULL || str_missing == NULL || str_read == NULL || str_hash == NULL ||
        str_setdefault == NULL || str_popitem == NULL || str_clear == NULL)
        return NULL;
    object_hash = PyObject_GetAttr((PyObject *)&PyBaseObject_Type, str_hash);
    if (object_hash == NULL) return NULL;
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL) return NULL;
    monotonic = PyObject_GetAttrString(time_module, "monotonic");
    Py_DECREF(time_module);
    if (monotonic == NULL) return NULL;
    PyObject *types = PyImport_ImportModule("types");
    if (types == NULL) return NULL;
    method_type = PyObject_GetAttrString(types, "MethodType");
    Py_DECREF(types);
    if (method_type == NULL) return NULL;
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) return NULL;
    PyObject *core = PyType_FromSpec(&Core_spec);
    if (core == NULL || PyModule_AddObject(module, "Core", core) < 0) {
        Py_XDECREF(core);
        Py_DECREF(module);
        return NULL;
    }
    PyObject *wrapper = PyType_FromSpec(&LRUWrapper_spec);
    if (wrapper == NULL || PyModule_AddObject(module, "LRUWrapper", wrapper) < 0) {
        Py_XDECREF(wrapper);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

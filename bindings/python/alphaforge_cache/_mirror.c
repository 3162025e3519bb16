/* alphaforge_cache._reads.Mirror: see _mirror.h. Built against the stable ABI of CPython 3.8. */
#define Py_LIMITED_API 0x03080000
#include "_mirror.h"
#include "_module_type.h"

#include <string.h>

/* The smallest table. */
#define MIN_SLOTS 8
/* 2**64 / the golden ratio: a hash times this, shifted right, spreads over the slots even when
   the hashes differ only in their high bits (or, as small ints' do, only in their low ones). */
#define GOLDEN 0x9E3779B97F4A7C15ULL
/* Keys looked up per round of passes in Mirror_lookup_many (enough to keep the CPU's misses in
   flight; the per-key state lives on the stack). */
#define LOOKUP_BATCH 128

PyObject *MirrorType;

/* `n` zeroed slots, or NULL (PyMem_Calloc is not in the stable ABI of 3.8). */
static MirrorSlot *new_slots(size_t n) {
    if (n > PY_SSIZE_T_MAX / sizeof(MirrorSlot)) return NULL;
    MirrorSlot *slots = (MirrorSlot *)PyMem_Malloc(n * sizeof(MirrorSlot));
    if (slots != NULL) memset(slots, 0, n * sizeof(MirrorSlot));
    return slots;
}

static size_t home_slot(const Mirror *self, Py_hash_t hash) {
    return (size_t)(((uint64_t)hash * GOLDEN) >> self->shift);
}

/* Points the mirror at `slots` (`n` of them, a power of two, zeroed or filled). */
static void set_slots(Mirror *self, MirrorSlot *slots, size_t n) {
    int log2 = 0;
    while (((size_t)1 << log2) < n) log2++;
    self->slots = slots;
    self->mask = n - 1;
    self->shift = 64 - log2;
}

static int bytes_equal(PyObject *stored, PyObject *key) {
    Py_ssize_t size = PyBytes_Size(stored);
    return size == PyBytes_Size(key) &&
           memcmp(PyBytes_AsString(stored), PyBytes_AsString(key), (size_t)size) == 0;
}

/* The slot of an exact-`bytes` key, or -1 when absent. Runs no Python code. */
static Py_ssize_t find_bytes(const Mirror *self, PyObject *key, Py_hash_t hash) {
    for (size_t i = home_slot(self, hash);; i = (i + 1) & self->mask) {
        const MirrorSlot *slot = &self->slots[i];
        if (slot->key == NULL) return -1;
        if (slot->key == key || (slot->hash == hash && bytes_equal(slot->key, key)))
            return (Py_ssize_t)i;
    }
}

/* The slot of any key: -1 when absent, -2 on an error (exception set). A key of another type
   than `bytes` compares with `==`, which may run Python code that changes the table: the
   lookup then starts again. */
static Py_ssize_t find_slot(Mirror *self, PyObject *key, Py_hash_t hash) {
    if (PyBytes_CheckExact(key)) return find_bytes(self, key, hash);
restart:
    for (size_t i = home_slot(self, hash);; i = (i + 1) & self->mask) {
        MirrorSlot *slot = &self->slots[i];
        if (slot->key == NULL) return -1;
        if (slot->key == key) return (Py_ssize_t)i;
        if (slot->hash != hash) continue;
        uint64_t version = self->version;
        PyObject *stored = slot->key;
        Py_INCREF(stored);
        int equal = PyObject_RichCompareBool(stored, key, Py_EQ);
        Py_DECREF(stored);
        if (equal < 0) return -2;
        if (self->version != version) goto restart;
        if (equal) return (Py_ssize_t)i;
    }
}

PyObject *Mirror_lookup(Mirror *self, PyObject *key) {
    Py_hash_t hash = PyObject_Hash(key);
    if (hash == -1) return NULL;
    Py_ssize_t at = find_slot(self, key, hash);
    return at >= 0 ? self->slots[at].value : NULL;
}

int Mirror_lookup_many(Mirror *self, PyObject *const *keys, Py_ssize_t n, PyObject **values) {
    Py_hash_t hashes[LOOKUP_BATCH];
    Py_ssize_t found[LOOKUP_BATCH]; /* a key's slot, -1 absent, -2 not known yet */
    for (Py_ssize_t first = 0; first < n; first += LOOKUP_BATCH) {
        Py_ssize_t count = n - first < LOOKUP_BATCH ? n - first : LOOKUP_BATCH;
        PyObject *const *batch = keys + first;
        for (Py_ssize_t i = 0; i < count; i++) PREFETCH_BYTES(batch[i]);
        /* Each pass makes one kind of memory access for every key of the batch. */
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_hash_t hash = PyObject_Hash(batch[i]); /* cached in the bytes object */
            if (hash == -1) return -1;
            hashes[i] = hash;
            PREFETCH(&self->slots[home_slot(self, hash)]);
        }
        /* The home slots: a key stored there as this very object is found; otherwise, when
           the slot holds another object with the key's hash (the usual case for a caller that
           builds its keys), the stored key it will be compared with starts coming. */
        for (Py_ssize_t i = 0; i < count; i++) {
            size_t home = home_slot(self, hashes[i]);
            const MirrorSlot *slot = &self->slots[home];
            found[i] = -2;
            if (slot->key == batch[i]) {
                found[i] = (Py_ssize_t)home;
            } else if (slot->key == NULL) {
                found[i] = -1;
            } else if (slot->hash == hashes[i]) {
                PREFETCH_BYTES(slot->key);
            }
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_ssize_t at = found[i] != -2 ? found[i] : find_bytes(self, batch[i], hashes[i]);
            PyObject *value = at >= 0 ? self->slots[at].value : NULL;
            if (value != NULL) PREFETCH_FOR_WRITE(value); /* its reference count comes next */
            values[first + i] = value;
        }
    }
    return 0;
}

int Mirror_prefetch_home(Mirror *self, PyObject *key) {
    Py_hash_t hash = PyObject_Hash(key);
    if (hash == -1) return -1;
    PREFETCH_FOR_WRITE(&self->slots[home_slot(self, hash)]);
    return 0;
}

int Mirror_warm_many(Mirror *self, PyObject *const *keys, Py_ssize_t n) {
    Py_hash_t hashes[LOOKUP_BATCH];
    for (Py_ssize_t first = 0; first < n; first += LOOKUP_BATCH) {
        Py_ssize_t count = n - first < LOOKUP_BATCH ? n - first : LOOKUP_BATCH;
        PyObject *const *batch = keys + first;
        for (Py_ssize_t i = 0; i < count; i++) {
            Py_hash_t hash = PyObject_Hash(batch[i]);
            if (hash == -1) return -1;
            hashes[i] = hash;
            PREFETCH_FOR_WRITE(&self->slots[home_slot(self, hash)]);
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            for (size_t j = home_slot(self, hashes[i]);; j = (j + 1) & self->mask) {
                const MirrorSlot *slot = &self->slots[j];
                if (slot->key == NULL) break;
                if (slot->hash == hashes[i]) {
                    PREFETCH_BYTES(slot->key); /* compared, and released when discarded */
                    PREFETCH_FOR_WRITE(slot->value);
                    break;
                }
            }
        }
    }
    return 0;
}

/* Makes room for `more` more keys (at most half the slots in use), in one rehash however many
   doublings that takes. 0, or -1 with MemoryError. */
static int reserve(Mirror *self, size_t more) {
    size_t n = self->mask + 1;
    size_t wanted = n;
    if (more > (size_t)PY_SSIZE_T_MAX / 2 - (size_t)self->used) {
        PyErr_NoMemory();
        return -1;
    }
    while (((size_t)self->used + more) * 2 > wanted) wanted *= 2;
    if (wanted == n) return 0;
    MirrorSlot *old = self->slots;
    MirrorSlot *slots = new_slots(wanted);
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    set_slots(self, slots, wanted);
    for (size_t j = 0; j < n; j++) {
        if (old[j].key == NULL) continue;
        size_t i = home_slot(self, old[j].hash);
        while (slots[i].key != NULL) i = (i + 1) & self->mask;
        slots[i] = old[j];
    }
    PyMem_Free(old);
    self->version++;
    return 0;
}

/* Makes room for one more key. 0, or -1 with MemoryError. */
static int reserve_one(Mirror *self) { return reserve(self, 1); }

int Mirror_store(Mirror *self, PyObject *key, PyObject *value) {
    if (!PyBytes_CheckExact(key)) {
        PyErr_SetString(PyExc_TypeError, "Mirror keys must be exact bytes");
        return -1;
    }
    Py_hash_t hash = PyObject_Hash(key);
    if (hash == -1) return -1;
    Py_ssize_t at = find_bytes(self, key, hash);
    Py_INCREF(value);
    if (at >= 0) { /* the old value goes last: its release may run Python code */
        PyObject *old = self->slots[at].value;
        self->slots[at].value = value;
        Py_DECREF(old);
        return 0;
    }
    if (reserve_one(self) < 0) {
        Py_DECREF(value);
        return -1;
    }
    size_t i = home_slot(self, hash);
    while (self->slots[i].key != NULL) i = (i + 1) & self->mask;
    Py_INCREF(key);
    self->slots[i].hash = hash;
    self->slots[i].key = key;
    self->slots[i].value = value;
    self->used++;
    return 0;
}

/* Empties slot `i`, moving later keys of its probe run back (no tombstones). */
static void remove_at(Mirror *self, size_t i) {
    for (size_t j = (i + 1) & self->mask;; j = (j + 1) & self->mask) {
        MirrorSlot *slot = &self->slots[j];
        if (slot->key == NULL) break;
        size_t home = home_slot(self, slot->hash);
        /* It may fill the hole unless its home lies cyclically in (i, j]. */
        int stays = j > i ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            self->slots[i] = *slot;
            i = j;
        }
    }
    self->slots[i].key = NULL;
    self->slots[i].value = NULL;
    self->slots[i].hash = 0;
    self->used--;
    self->version++;
}

/* Takes `key` out: 1 with its value (a new reference) in `*value`, 0 when absent, -1 on an
   error. */
static int take(Mirror *self, PyObject *key, PyObject **value) {
    Py_hash_t hash = PyObject_Hash(key);
    if (hash == -1) return -1;
    Py_ssize_t at = find_slot(self, key, hash);
    if (at < 0) return at == -1 ? 0 : -1;
    PyObject *stored_key = self->slots[at].key;
    *value = self->slots[at].value;
    remove_at(self, (size_t)at);
    Py_DECREF(stored_key);
    return 1;
}

int Mirror_discard(Mirror *self, PyObject *key) {
    PyObject *value = NULL;
    int taken = take(self, key, &value);
    if (taken == 1) Py_DECREF(value);
    return taken;
}

int Mirror_take(Mirror *self, PyObject *key, PyObject **value) {
    return take(self, key, value);
}

Py_ssize_t Mirror_size(Mirror *self) {
    return self->used;
}

int Mirror_check(PyObject *obj) {
    return MirrorType != NULL && Py_TYPE(obj) == (PyTypeObject *)MirrorType;
}

/* Lets go of the keys and values of `n` slots, then of the slots. */
static void release_slots(MirrorSlot *slots, size_t n) {
    for (size_t i = 0; i < n; i++) {
        Py_XDECREF(slots[i].key);
        Py_XDECREF(slots[i].value);
    }
    PyMem_Free(slots);
}

/* Empties the table; the keys and values are released once it is consistent. 0 or -1. */
static int clear_table(Mirror *self) {
    MirrorSlot *old = self->slots;
    size_t n = old == NULL ? 0 : self->mask + 1;
    MirrorSlot *slots = new_slots(MIN_SLOTS);
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    set_slots(self, slots, MIN_SLOTS);
    self->used = 0;
    self->version++;
    release_slots(old, n);
    return 0;
}

/* ----- the Python type ------------------------------------------------------------------------ */

static PyObject *Mirror_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    if (PyTuple_Size(args) != 0 || (kwargs != NULL && PyDict_Size(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Mirror() takes no arguments");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    Mirror *self = (Mirror *)alloc(type, 0);
    if (self == NULL) return NULL;
    MirrorSlot *slots = new_slots(MIN_SLOTS);
    if (slots == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    set_slots(self, slots, MIN_SLOTS);
    self->used = 0;
    self->version = 0;
    return (PyObject *)self;
}

static int Mirror_traverse(Mirror *self, visitproc visit, void *arg) {
    if (self->slots == NULL) return 0;
    for (size_t i = 0; i <= self->mask; i++) {
        Py_VISIT(self->slots[i].key);
        Py_VISIT(self->slots[i].value);
    }
    return 0;
}

static int Mirror_tp_clear(Mirror *self) {
    if (self->slots != NULL && self->used != 0 && clear_table(self) < 0) PyErr_Clear();
    return 0;
}

static void Mirror_dealloc(Mirror *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->slots != NULL) {
        MirrorSlot *slots = self->slots;
        self->slots = NULL;
        release_slots(slots, self->mask + 1);
    }
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static Py_ssize_t Mirror_length(Mirror *self) {
    return self->used;
}

static void raise_key_error(PyObject *key) {
    PyObject *args = PyTuple_Pack(1, key);
    if (args == NULL) return;
    PyErr_SetObject(PyExc_KeyError, args);
    Py_DECREF(args);
}

static PyObject *Mirror_getitem(Mirror *self, PyObject *key) {
    PyObject *value = Mirror_lookup(self, key);
    if (value != NULL) {
        Py_INCREF(value);
        return value;
    }
    if (!PyErr_Occurred()) raise_key_error(key);
    return NULL;
}

static int Mirror_setitem(Mirror *self, PyObject *key, PyObject *value) {
    if (value != NULL) return Mirror_store(self, key, value);
    int taken = Mirror_discard(self, key);
    if (taken == 0) raise_key_error(key);
    return taken == 1 ? 0 : -1;
}

static int Mirror_contains(Mirror *self, PyObject *key) {
    return Mirror_lookup(self, key) != NULL ? 1 : (PyErr_Occurred() ? -1 : 0);
}

/* The keys, in slot order. */
static PyObject *Mirror_key_list(Mirror *self) {
    PyObject *keys = PyList_New(0);
    if (keys == NULL) return NULL;
    for (size_t i = 0; i <= self->mask; i++) {
        if (self->slots[i].key != NULL && PyList_Append(keys, self->slots[i].key) < 0) {
            Py_DECREF(keys);
            return NULL;
        }
    }
    return keys;
}

/* The values or the (key, value) pairs, in slot order. */
static PyObject *Mirror_value_list(Mirror *self, int pairs) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    for (size_t i = 0; i <= self->mask; i++) {
        MirrorSlot *slot = &self->slots[i];
        if (slot->key == NULL) continue;
        PyObject *item = pairs ? PyTuple_Pack(2, slot->key, slot->value) : slot->value;
        int failed = item == NULL || PyList_Append(out, item) < 0;
        if (pairs) Py_XDECREF(item);
        if (failed) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyObject *Mirror_keys(Mirror *self, PyObject *unused) {
    (void)unused;
    return Mirror_key_list(self);
}

static PyObject *Mirror_values(Mirror *self, PyObject *unused) {
    (void)unused;
    return Mirror_value_list(self, 0);
}

static PyObject *Mirror_items(Mirror *self, PyObject *unused) {
    (void)unused;
    return Mirror_value_list(self, 1);
}

static PyObject *Mirror_iter(Mirror *self) {
    PyObject *keys = Mirror_key_list(self);
    if (keys == NULL) return NULL;
    PyObject *iterator = PyObject_GetIter(keys);
    Py_DECREF(keys);
    return iterator;
}

static PyObject *Mirror_get(Mirror *self, PyObject *args) {
    PyObject *key, *dflt = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:get", &key, &dflt)) return NULL;
    PyObject *value = Mirror_lookup(self, key);
    if (value == NULL) {
        if (PyErr_Occurred()) return NULL;
        value = dflt;
    }
    Py_INCREF(value);
    return value;
}

static PyObject *Mirror_pop(Mirror *self, PyObject *args) {
    PyObject *key, *dflt = NULL, *value = NULL;
    if (!PyArg_ParseTuple(args, "O|O:pop", &key, &dflt)) return NULL;
    int taken = take(self, key, &value);
    if (taken == 1) return value;
    if (taken < 0) return NULL;
    if (dflt == NULL) {
        raise_key_error(key);
        return NULL;
    }
    Py_INCREF(dflt);
    return dflt;
}

static PyObject *Mirror_clear_method(Mirror *self, PyObject *unused) {
    (void)unused;
    if (clear_table(self) < 0) return NULL;
    Py_RETURN_NONE;
}

/* How many pairs ahead of the one stored update() fetches a home slot (and twice as far ahead,
   a key). */
#define UPDATE_AHEAD 8

/* The pair at `i` of `list`, if it is a 2-tuple: its key (borrowed), else NULL. No error set. */
static PyObject *pair_key(PyObject *list, Py_ssize_t i) {
    PyObject *pair = PyList_GetItem(list, i);
    if (pair == NULL) {
        PyErr_Clear();
        return NULL;
    }
    return PyTuple_Check(pair) && PyTuple_Size(pair) == 2 ? PyTuple_GetItem(pair, 0) : NULL;
}

/* Starts fetching the key of the pair at `i` of `list`. */
static void prefetch_key_of_pair(PyObject *list, Py_ssize_t i) {
    PyObject *key = pair_key(list, i);
    if (key != NULL) PREFETCH_BYTES(key);
}

/* Starts fetching the home slot of the key of the pair at `i` of `list` (exact `bytes` only:
   hashing one runs no Python code). */
static void prefetch_home_of_pair(Mirror *self, PyObject *list, Py_ssize_t i) {
    PyObject *key = pair_key(list, i);
    if (key == NULL || !PyBytes_CheckExact(key)) return;
    Py_hash_t hash = PyObject_Hash(key);
    if (hash == -1) {
        PyErr_Clear();
        return;
    }
    PREFETCH_FOR_WRITE(&self->slots[home_slot(self, hash)]);
}

/* update(pairs): stores each (key, value) pair in turn; a dict's items too. */
static PyObject *Mirror_update(Mirror *self, PyObject *pairs) {
    PyObject *items = PyDict_Check(pairs) ? PyDict_Items(pairs) : NULL;
    if (PyDict_Check(pairs) && items == NULL) return NULL;
    PyObject *source = items != NULL ? items : pairs;
    /* Room for them all at once when they are known to be many (a list of pairs: a load's):
       one rehash instead of one per doubling. Only when they outnumber the keys stored: then
       at least (given - used) of them are new, so the table ends at most one doubling larger
       than storing them one by one would leave it. */
    Py_ssize_t given = PySequence_Check(source) ? PySequence_Size(source) : -1;
    if (given < 0) {
        PyErr_Clear();
    } else if (given > self->used && reserve(self, (size_t)given) < 0) {
        Py_XDECREF(items);
        return NULL;
    }
    PyObject *iterator = PyObject_GetIter(source);
    if (iterator == NULL) {
        Py_XDECREF(items);
        return NULL;
    }
    /* A list's pairs ahead are known: their keys and home slots are fetched early (hints only,
       from borrowed references used at once, while no Python code runs), so that the trips to
       main memory of many stores overlap instead of coming one after another. */
    PyObject *list = PyList_Check(source) ? source : NULL;
    Py_ssize_t next = 0;
    PyObject *pair;
    while ((pair = PyIter_Next(iterator)) != NULL) {
        if (list != NULL) {
            Py_ssize_t size = PyList_Size(list);
            if (next + 2 * UPDATE_AHEAD < size) prefetch_key_of_pair(list, next + 2 * UPDATE_AHEAD);
            if (next + UPDATE_AHEAD < size) prefetch_home_of_pair(self, list, next + UPDATE_AHEAD);
            next++;
        }
        PyObject *key = NULL, *value = NULL;
        if (PySequence_Check(pair) && PySequence_Size(pair) == 2) {
            key = PySequence_GetItem(pair, 0);
            value = key == NULL ? NULL : PySequence_GetItem(pair, 1);
        } else if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "Mirror.update takes (key, value) pairs");
        }
        int failed = value == NULL || Mirror_store(self, key, value) < 0;
        Py_XDECREF(key);
        Py_XDECREF(value);
        Py_DECREF(pair);
        if (failed) {
            Py_DECREF(iterator);
            Py_XDECREF(items);
            return NULL;
        }
    }
    Py_DECREF(iterator);
    Py_XDECREF(items);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Mirror_repr(Mirror *self) {
    return PyUnicode_FromFormat("<alphaforge_cache._reads.Mirror of %zd entries>", self->used);
}

static PyMethodDef Mirror_methods[] = {
    {"get", (PyCFunction)Mirror_get, METH_VARARGS,
     "get(key, default=None)\n--\n\nThe value of ``key``, or ``default``."},
    {"pop", (PyCFunction)Mirror_pop, METH_VARARGS,
     "pop(key[, default])\n--\n\nRemoves ``key`` and returns its value (``default``, or "
     "KeyError, when absent)."},
    {"clear", (PyCFunction)Mirror_clear_method, METH_NOARGS,
     "clear()\n--\n\nRemoves every key."},
    {"keys", (PyCFunction)Mirror_keys, METH_NOARGS, "keys()\n--\n\nThe keys (a list)."},
    {"values", (PyCFunction)Mirror_values, METH_NOARGS,
     "values()\n--\n\nThe values (a list, in the order of keys())."},
    {"items", (PyCFunction)Mirror_items, METH_NOARGS,
     "items()\n--\n\nThe (key, value) pairs (a list, in the order of keys())."},
    {"update", (PyCFunction)Mirror_update, METH_O,
     "update(pairs)\n--\n\nStores each (key, value) pair (or a dict's items) in turn."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Mirror_slots[] = {
    {Py_tp_doc, "The native backend's mirror of the engine's entries: bytes key -> value "
                "(see _mirror.h)."},
    {Py_tp_new, Mirror_new},
    {Py_tp_dealloc, Mirror_dealloc},
    {Py_tp_traverse, Mirror_traverse},
    {Py_tp_clear, Mirror_tp_clear},
    {Py_tp_iter, Mirror_iter},
    {Py_tp_repr, Mirror_repr},
    {Py_tp_methods, Mirror_methods},
    {Py_mp_length, Mirror_length},
    {Py_mp_subscript, Mirror_getitem},
    {Py_mp_ass_subscript, Mirror_setitem},
    {Py_sq_contains, Mirror_contains},
    {0, NULL},
};

static PyType_Spec Mirror_spec = {
    "alphaforge_cache._reads.Mirror",
    sizeof(Mirror),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    Mirror_slots,
};

int Mirror_add_type(PyObject *module) {
    return add_kept_type(module, &Mirror_spec, "Mirror", &MirrorType);
}

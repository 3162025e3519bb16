/* See _snapshot_rows.h. Built into _reads against the stable ABI of CPython 3.8. */
#define Py_LIMITED_API 0x03080000
#define PY_SSIZE_T_CLEAN
#include "_snapshot_rows.h"

#include <stdint.h>
#include <string.h>

/* An entry's fixed part: flags (1 byte), key length, value length (u32 each, little-endian);
   then the remaining TTL (u64) if flags has HAS_TTL, the weight (u32) if HAS_WEIGHT, the key and
   the value (docs/snapshot-format.md). */
#define ENTRY_FIXED_LEN 9
#define HAS_TTL 0x01
#define HAS_WEIGHT 0x02

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p) {
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The row (key, value, ttl_ns or None, weight) of `data[0..size]`, its key the first key_len
   bytes; NULL with an exception set. `ttl` is stolen (a new reference or a new None). */
static PyObject *make_row(const char *data, uint64_t key_len, uint64_t size, PyObject *ttl,
                          uint64_t weight) {
    PyObject *row = PyTuple_New(4);
    PyObject *key = PyBytes_FromStringAndSize(data, (Py_ssize_t)key_len);
    PyObject *value = PyBytes_FromStringAndSize(data + key_len, (Py_ssize_t)(size - key_len));
    PyObject *w = PyLong_FromUnsignedLongLong(weight);
    if (row == NULL || key == NULL || value == NULL || ttl == NULL || w == NULL) {
        Py_XDECREF(row);
        Py_XDECREF(key);
        Py_XDECREF(value);
        Py_XDECREF(ttl);
        Py_XDECREF(w);
        return NULL;
    }
    PyTuple_SetItem(row, 0, key); /* each steals its item */
    PyTuple_SetItem(row, 1, value);
    PyTuple_SetItem(row, 2, ttl);
    PyTuple_SetItem(row, 3, w);
    return row;
}

PyDoc_STRVAR(parse_rows_doc,
             "parse_rows(buf, pos, end, most, limit, out) -> int\n--\n\n"
             "Appends to the list ``out`` the rows ``(key, value, ttl_ns or None, weight)`` of "
             "at most ``most`` entries of ``buf[pos:end]`` (``bytes``), each of which lies wholly "
             "before ``end`` and passes every check of Reader._parse's fast path (``limit``: the "
             "largest key, key and value, or weight). Stops before the first entry that does "
             "not, and returns where it stopped.");

static PyObject *parse_rows(PyObject *module, PyObject *args) {
    PyObject *buf, *out;
    Py_ssize_t pos, end, most;
    unsigned long long limit;
    (void)module;
    if (!PyArg_ParseTuple(args, "O!nnnKO!:parse_rows", &PyBytes_Type, &buf, &pos, &end, &most,
                          &limit, &PyList_Type, &out))
        return NULL;
    Py_ssize_t len = PyBytes_Size(buf);
    if (pos < 0 || end < pos || end > len) {
        PyErr_Format(PyExc_ValueError, "parse_rows: %zd..%zd is not within the %zd bytes given",
                     pos, end, len);
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AsString(buf);
    if (p == NULL) return NULL;
    /* Every sum below is of numbers under 2^34 or of positions within `buf`: no overflow. */
    const uint64_t stop = (uint64_t)end;
    uint64_t at = (uint64_t)pos;
    for (Py_ssize_t taken = 0; taken < most && at + ENTRY_FIXED_LEN <= stop; taken++) {
        unsigned flags = p[at];
        uint64_t key_len = le32(p + at + 1), size = key_len + le32(p + at + 5);
        uint64_t data = at + ENTRY_FIXED_LEN;
        PyObject *ttl;
        uint64_t weight = size;
        if (flags == 0) {
            if (data + size > stop || key_len > limit || size > limit) break;
            ttl = Py_None;
            Py_INCREF(ttl);
        } else if ((flags & ~(unsigned)(HAS_TTL | HAS_WEIGHT)) == 0) {
            uint64_t extra = (flags & HAS_TTL ? 8 : 0) + (flags & HAS_WEIGHT ? 4 : 0);
            if (data + extra + size > stop || key_len > limit || size > limit + 1) break;
            uint64_t ttl_ns = 0;
            if (flags & HAS_TTL) {
                ttl_ns = le64(p + data);
                data += 8;
                if (ttl_ns == 0) break; /* refused by the general path */
            }
            if (flags & HAS_WEIGHT) {
                weight = le32(p + data);
                data += 4;
            }
            if (weight > limit) break;
            if (flags & HAS_TTL) {
                ttl = PyLong_FromUnsignedLongLong(ttl_ns); /* NULL: make_row says so */
            } else {
                ttl = Py_None;
                Py_INCREF(ttl);
            }
        } else {
            break; /* unknown flags: refused by the general path */
        }
        PyObject *row = make_row((const char *)p + data, key_len, size, ttl, weight);
        if (row == NULL) return NULL;
        int appended = PyList_Append(out, row);
        Py_DECREF(row);
        if (appended < 0) return NULL;
        at = data + size;
    }
    return PyLong_FromUnsignedLongLong(at);
}

/* Appends `n` bytes at `from` to the bytes object `*out`, of `*cap` bytes, `*len` used,
   doubling it as needed (resized to `*len` by the caller). 0, or -1 with an exception set. */
static int append_bytes(PyObject **out, Py_ssize_t *len, Py_ssize_t *cap, const void *from,
                        Py_ssize_t n) {
    if (*len + n > *cap) {
        Py_ssize_t grown = *cap * 2 > *len + n ? *cap * 2 : *len + n;
        /* The limited API has no _PyBytes_Resize: a bigger object, the bytes copied over. */
        PyObject *bigger = PyBytes_FromStringAndSize(NULL, grown);
        if (bigger == NULL) return -1;
        memcpy(PyBytes_AsString(bigger), PyBytes_AsString(*out), (size_t)*len);
        Py_DECREF(*out);
        *out = bigger;
        *cap = grown;
    }
    memcpy(PyBytes_AsString(*out) + *len, from, (size_t)n);
    *len += n;
    return 0;
}

PyDoc_STRVAR(restore_columns_doc,
             "restore_columns(rows) -> (keys, key_lens, weights, ttls, timed, pairs, "
             "key_lengths)\n--\n\n"
             "The columns a native load hands the engine (afcpy_load), from the list of rows "
             "``(key, stored, ttl_ns or None, weight)`` it staged: every key joined, the keys' "
             "lengths (``size_t`` each), the weights and remaining TTLs (``uint64_t`` each, 0 "
             "for none) as ``bytes``; whether any row has a TTL; the ``(key, stored)`` pairs; "
             "the set of key lengths. TypeError (nothing made) for a row of another shape.");

static PyObject *restore_columns(PyObject *module, PyObject *rows) {
    (void)module;
    if (!PyList_Check(rows)) {
        PyErr_SetString(PyExc_TypeError, "restore_columns: rows must be a list");
        return NULL;
    }
    Py_ssize_t n = PyList_Size(rows);
    PyObject *keys = NULL, *key_lens = NULL, *weights = NULL, *ttls = NULL, *pairs = NULL;
    PyObject *lengths = NULL, *result = NULL;
    Py_ssize_t keys_len = 0, keys_cap = n * 16 > 64 ? n * 16 : 64;
    int timed = 0;
    keys = PyBytes_FromStringAndSize(NULL, keys_cap);
    key_lens = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(size_t));
    weights = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(uint64_t));
    ttls = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(uint64_t));
    pairs = PyList_New(n);
    lengths = PySet_New(NULL);
    if (keys == NULL || key_lens == NULL || weights == NULL || ttls == NULL || pairs == NULL ||
        lengths == NULL)
        goto done;
    size_t *key_len_at = (size_t *)PyBytes_AsString(key_lens);
    uint64_t *weight_at = (uint64_t *)PyBytes_AsString(weights);
    uint64_t *ttl_at = (uint64_t *)PyBytes_AsString(ttls);
    Py_ssize_t last_len = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GetItem(rows, i); /* borrowed: no Python code runs below */
        if (!PyTuple_Check(row) || PyTuple_Size(row) != 4 ||
            !PyBytes_CheckExact(PyTuple_GetItem(row, 0)) ||
            !PyLong_Check(PyTuple_GetItem(row, 3))) {
            PyErr_Format(PyExc_TypeError,
                         "restore_columns: row %zd is not (bytes, value, ttl, weight)", i);
            goto done;
        }
        PyObject *key = PyTuple_GetItem(row, 0), *ttl = PyTuple_GetItem(row, 2);
        Py_ssize_t key_len = PyBytes_Size(key);
        if (append_bytes(&keys, &keys_len, &keys_cap, PyBytes_AsString(key), key_len) < 0)
            goto done;
        key_len_at[i] = (size_t)key_len;
        weight_at[i] = PyLong_AsUnsignedLongLong(PyTuple_GetItem(row, 3));
        if (weight_at[i] == (uint64_t)-1 && PyErr_Occurred()) goto done;
        if (ttl == Py_None) {
            ttl_at[i] = 0;
        } else {
            ttl_at[i] = PyLong_AsUnsignedLongLong(ttl);
            if (ttl_at[i] == (uint64_t)-1 && PyErr_Occurred()) goto done;
            timed = 1;
        }
        if (key_len != last_len) {
            PyObject *length = PyLong_FromSsize_t(key_len);
            int added = length == NULL ? -1 : PySet_Add(lengths, length);
            Py_XDECREF(length);
            if (added < 0) goto done;
            last_len = key_len;
        }
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) goto done;
        PyObject *stored = PyTuple_GetItem(row, 1);
        Py_INCREF(key);
        Py_INCREF(stored);
        PyTuple_SetItem(pair, 0, key); /* each steals */
        PyTuple_SetItem(pair, 1, stored);
        PyList_SetItem(pairs, i, pair);
    }
    if (keys_len != keys_cap) {
        PyObject *exact = PyBytes_FromStringAndSize(PyBytes_AsString(keys), keys_len);
        if (exact == NULL) goto done;
        Py_DECREF(keys);
        keys = exact;
    }
    result = Py_BuildValue("(OOOOOOO)", keys, key_lens, weights, ttls,
                           timed ? Py_True : Py_False, pairs, lengths);
done:
    Py_XDECREF(keys);
    Py_XDECREF(key_lens);
    Py_XDECREF(weights);
    Py_XDECREF(ttls);
    Py_XDECREF(pairs);
    Py_XDECREF(lengths);
    return result;
}

static PyMethodDef snapshot_rows_functions[] = {
    {"parse_rows", parse_rows, METH_VARARGS, parse_rows_doc},
    {"restore_columns", restore_columns, METH_O, restore_columns_doc},
    {NULL, NULL, 0, NULL},
};

int SnapshotRows_add_function(PyObject *module) {
    return PyModule_AddFunctions(module, snapshot_rows_functions);
}

/* See _snapshot_rows.h. Built into _reads against the stable ABI of CPython 3.8. */
#define Py_LIMITED_API 0x03080000
#define PY_SSIZE_T_CLEAN
#include "_snapshot_rows.h"

#include "_mirror.h"

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
   bytes, `ttl_ns` 0 for none (a TTL of 0 is refused before); NULL with an exception set. */
static PyObject *make_row(const char *data, uint64_t key_len, uint64_t size, uint64_t ttl_ns,
                          uint64_t weight) {
    PyObject *row = PyTuple_New(4);
    PyObject *key = PyBytes_FromStringAndSize(data, (Py_ssize_t)key_len);
    PyObject *value = PyBytes_FromStringAndSize(data + key_len, (Py_ssize_t)(size - key_len));
    PyObject *ttl = Py_None;
    if (ttl_ns)
        ttl = PyLong_FromUnsignedLongLong(ttl_ns);
    else
        Py_INCREF(ttl);
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
        uint64_t ttl_ns = 0, weight = size;
        if (flags == 0) {
            if (data + size > stop || key_len > limit || size > limit) break;
        } else if ((flags & ~(unsigned)(HAS_TTL | HAS_WEIGHT)) == 0) {
            uint64_t extra = (flags & HAS_TTL ? 8 : 0) + (flags & HAS_WEIGHT ? 4 : 0);
            if (data + extra + size > stop || key_len > limit || size > limit + 1) break;
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
        } else {
            break; /* unknown flags: refused by the general path */
        }
        PyObject *row = make_row((const char *)p + data, key_len, size, ttl_ns, weight);
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

/* Keys whose values saved_rows looks up in one Mirror_lookup_many call. */
#define SAVED_LOOKUP_BATCH 256

PyDoc_STRVAR(saved_rows_doc,
             "saved_rows(records, count, mirror, no_ttl) -> list | None\n--\n\n"
             "The rows ``(key, stored, ttl_ns or None, weight)`` of a save, from the ``count`` "
             "records the engine gave (afcpy_snapshot_order: key length, value length, TTL and "
             "weight as native u64, then the key and the value, the handle) and the stored "
             "values the ``mirror`` (a Mirror) holds for their keys; a TTL of ``no_ttl`` is "
             "none. None (nothing made) when a key is not in the mirror (an entry Python finds "
             "elsewhere). ValueError when the records are not ``count`` such records.");

static PyObject *saved_rows(PyObject *module, PyObject *args) {
    PyObject *records, *mirror;
    Py_ssize_t count;
    unsigned long long no_ttl;
    (void)module;
    if (!PyArg_ParseTuple(args, "O!nOK:saved_rows", &PyBytes_Type, &records, &count, &mirror,
                          &no_ttl))
        return NULL;
    if (!Mirror_check(mirror)) {
        PyErr_SetString(PyExc_TypeError, "saved_rows: mirror must be a Mirror");
        return NULL;
    }
    const char *data = PyBytes_AsString(records);
    Py_ssize_t size = PyBytes_Size(records);
    if (data == NULL || count < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "saved_rows: count < 0");
        return NULL;
    }
    PyObject *rows = PyList_New(count);
    if (rows == NULL) return NULL;
    PyObject *keys[SAVED_LOOKUP_BATCH], *stored[SAVED_LOOKUP_BATCH];
    uint64_t ttls[SAVED_LOOKUP_BATCH], weights[SAVED_LOOKUP_BATCH];
    Py_ssize_t at = 0, made = 0;
    while (made < count) {
        Py_ssize_t n = 0;
        for (; n < SAVED_LOOKUP_BATCH && made + n < count; n++) {
            uint64_t head[4]; /* key length, value length, TTL, weight */
            if (size - at < (Py_ssize_t)sizeof head) break;
            memcpy(head, data + at, sizeof head);
            at += (Py_ssize_t)sizeof head;
            if (head[0] > (uint64_t)(size - at) || head[1] > (uint64_t)(size - at) - head[0])
                break;
            keys[n] = PyBytes_FromStringAndSize(data + at, (Py_ssize_t)head[0]);
            if (keys[n] == NULL) goto fail_batch;
            at += (Py_ssize_t)(head[0] + head[1]);
            ttls[n] = head[2];
            weights[n] = head[3];
        }
        if (made + n < count && n < SAVED_LOOKUP_BATCH) {
            PyErr_Format(PyExc_ValueError, "saved_rows: the records end before record %zd of %zd",
                         made + n + 1, count);
            goto fail_batch;
        }
        if (Mirror_lookup_many((Mirror *)mirror, keys, n, stored) < 0) goto fail_batch;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (stored[i] == NULL) { /* not in the mirror: Python finds it */
                for (Py_ssize_t j = i; j < n; j++) Py_DECREF(keys[j]);
                Py_DECREF(rows);
                Py_RETURN_NONE;
            }
            PyObject *row = PyTuple_New(4);
            PyObject *ttl = ttls[i] == no_ttl ? (Py_INCREF(Py_None), Py_None)
                                              : PyLong_FromUnsignedLongLong(ttls[i]);
            PyObject *weight = PyLong_FromUnsignedLongLong(weights[i]);
            if (row == NULL || ttl == NULL || weight == NULL) {
                Py_XDECREF(row);
                Py_XDECREF(ttl);
                Py_XDECREF(weight);
                for (Py_ssize_t j = i; j < n; j++) Py_DECREF(keys[j]);
                Py_DECREF(rows);
                return NULL;
            }
            Py_INCREF(stored[i]);
            PyTuple_SetItem(row, 0, keys[i]); /* each steals (the key's reference too) */
            PyTuple_SetItem(row, 1, stored[i]);
            PyTuple_SetItem(row, 2, ttl);
            PyTuple_SetItem(row, 3, weight);
            PyList_SetItem(rows, made + i, row);
        }
        made += n;
        continue;
    fail_batch:
        for (Py_ssize_t j = 0; j < n; j++) Py_DECREF(keys[j]);
        Py_DECREF(rows);
        return NULL;
    }
    if (at != size) {
        Py_DECREF(rows);
        PyErr_Format(PyExc_ValueError, "saved_rows: %zd bytes after the %zd records", size - at,
                     count);
        return NULL;
    }
    return rows;
}

/* A row a save writes as it is: its key and value (borrowed), its TTL (0 for none), its weight
   (-1 for none: the default one, left out) and the bytes the entry takes in the body. */
typedef struct {
    PyObject *key, *value;
    uint64_t ttl;
    long long weight;
    uint64_t bytes;
} PlainRow;

/* 1 with `*out` set when `row` is one a save writes as it is; 0 when it is not (Python writes
   it, or says what is wrong with it). */
static int plain_row(PyObject *row, unsigned long long limit, PlainRow *out) {
    if (!PyTuple_Check(row) || PyTuple_Size(row) != 4) return 0;
    out->key = PyTuple_GetItem(row, 0);
    out->value = PyTuple_GetItem(row, 1);
    PyObject *t = PyTuple_GetItem(row, 2), *w = PyTuple_GetItem(row, 3);
    if (!PyBytes_CheckExact(out->key) || !PyBytes_CheckExact(out->value)) return 0;
    uint64_t size = (uint64_t)PyBytes_Size(out->key) + (uint64_t)PyBytes_Size(out->value);
    if (size > limit) return 0;
    out->ttl = 0;
    if (t != Py_None) {
        if (!PyLong_CheckExact(t)) return 0;
        out->ttl = PyLong_AsUnsignedLongLong(t);
        if (out->ttl == (uint64_t)-1 && PyErr_Occurred()) { /* negative, or over 2^64-1 */
            PyErr_Clear();
            return 0;
        }
        if (out->ttl == 0) return 0;
    }
    out->weight = -1;
    if (w != Py_None) {
        if (!PyLong_CheckExact(w)) return 0;
        unsigned long long given = PyLong_AsUnsignedLongLong(w);
        if (given == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        if (given > limit) return 0;
        if (given != size) out->weight = (long long)given;
    }
    out->bytes = ENTRY_FIXED_LEN + size + (out->ttl ? 8 : 0) + (out->weight >= 0 ? 4 : 0);
    return 1;
}

/* Writes the fixed fields of `r` (flags, lengths, TTL, weight) at `p`, and its key and value
   unless `fixed_only`; returns the end. */
static unsigned char *pack_row(unsigned char *p, const PlainRow *r, int fixed_only) {
    uint32_t key_len = (uint32_t)PyBytes_Size(r->key), value_len = (uint32_t)PyBytes_Size(r->value);
    *p++ = (unsigned char)((r->ttl ? HAS_TTL : 0) | (r->weight >= 0 ? HAS_WEIGHT : 0));
    for (int b = 0; b < 4; b++) p[b] = (unsigned char)(key_len >> (8 * b));
    for (int b = 0; b < 4; b++) p[4 + b] = (unsigned char)(value_len >> (8 * b));
    p += 8;
    if (r->ttl) {
        for (int b = 0; b < 8; b++) p[b] = (unsigned char)(r->ttl >> (8 * b));
        p += 8;
    }
    if (r->weight >= 0) {
        for (int b = 0; b < 4; b++) p[b] = (unsigned char)((uint64_t)r->weight >> (8 * b));
        p += 4;
    }
    if (fixed_only) return p;
    memcpy(p, PyBytes_AsString(r->key), key_len);
    p += key_len;
    memcpy(p, PyBytes_AsString(r->value), value_len);
    p += value_len;
    return p;
}

PyDoc_STRVAR(measure_rows_doc,
             "measure_rows(rows, limit) -> int | None\n--\n\n"
             "The body length of a snapshot of ``rows`` (a list of ``(key, value, ttl_ns or "
             "None, weight or None)``) when every row is one write_to's fast path writes as it "
             "is (``bytes`` key and value, exact ints within the format's limits; ``limit``: "
             "the largest key and value or weight); None otherwise (Python writes them).");

static PyObject *measure_rows(PyObject *module, PyObject *args) {
    PyObject *rows;
    unsigned long long limit;
    PlainRow r;
    uint64_t body = 0;
    (void)module;
    if (!PyArg_ParseTuple(args, "O!K:measure_rows", &PyList_Type, &rows, &limit)) return NULL;
    Py_ssize_t n = PyList_Size(rows);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!plain_row(PyList_GetItem(rows, i), limit, &r)) Py_RETURN_NONE;
        body += r.bytes;
    }
    return PyLong_FromUnsignedLongLong(body);
}

PyDoc_STRVAR(pack_rows_doc,
             "pack_rows(rows, start, chunk, limit) -> (bytes, int, bool)\n--\n\n"
             "The body bytes of ``rows[start:]`` (rows measure_rows took), as many rows as make "
             "``chunk`` bytes or more, the index of the first row not packed, and whether the "
             "last row packed is one whose key and value are ``chunk`` bytes or more together: "
             "the bytes then end with its fixed fields only (flags, lengths, TTL, weight), and "
             "the caller writes its key and value objects as they are, never copied. "
             "ValueError when a row is no longer one measure_rows takes.");

static PyObject *pack_rows(PyObject *module, PyObject *args) {
    PyObject *rows;
    Py_ssize_t start, chunk;
    unsigned long long limit;
    PlainRow r;
    (void)module;
    if (!PyArg_ParseTuple(args, "O!nnK:pack_rows", &PyList_Type, &rows, &start, &chunk, &limit))
        return NULL;
    Py_ssize_t n = PyList_Size(rows);
    if (start < 0 || start > n || chunk < 0) {
        PyErr_SetString(PyExc_ValueError, "pack_rows: start or chunk out of range");
        return NULL;
    }
    /* The size first (no Python code runs in between: the rows cannot change). */
    Py_ssize_t end = start;
    uint64_t total = 0;
    int whole = 0; /* the last row's key and value are left to the caller */
    while (end < n && total < (uint64_t)chunk) {
        if (!plain_row(PyList_GetItem(rows, end), limit, &r)) {
            PyErr_Format(PyExc_ValueError, "pack_rows: row %zd is not one measure_rows takes",
                         end);
            return NULL;
        }
        end++;
        uint64_t data = (uint64_t)PyBytes_Size(r.key) + (uint64_t)PyBytes_Size(r.value);
        if (data >= (uint64_t)chunk) {
            total += r.bytes - data;
            whole = 1;
            break;
        }
        total += r.bytes;
    }
    if (total > (uint64_t)PY_SSIZE_T_MAX) return PyErr_NoMemory();
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (out == NULL) return NULL;
    unsigned char *p = (unsigned char *)PyBytes_AsString(out);
    for (Py_ssize_t i = start; i < end; i++) {
        plain_row(PyList_GetItem(rows, i), limit, &r);
        p = pack_row(p, &r, whole && i == end - 1);
    }
    PyObject *result = Py_BuildValue("(OnO)", out, end, whole ? Py_True : Py_False);
    Py_DECREF(out);
    return result;
}

static PyMethodDef snapshot_rows_functions[] = {
    {"parse_rows", parse_rows, METH_VARARGS, parse_rows_doc},
    {"restore_columns", restore_columns, METH_O, restore_columns_doc},
    {"saved_rows", saved_rows, METH_VARARGS, saved_rows_doc},
    {"measure_rows", measure_rows, METH_VARARGS, measure_rows_doc},
    {"pack_rows", pack_rows, METH_VARARGS, pack_rows_doc},
    {NULL, NULL, 0, NULL},
};

int SnapshotRows_add_function(PyObject *module) {
    return PyModule_AddFunctions(module, snapshot_rows_functions);
}

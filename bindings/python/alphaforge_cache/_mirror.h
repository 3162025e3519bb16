/*
 * alphaforge_cache._reads.Mirror: the native backend's mirror of the engine's entries (key ->
 * stored value), a hash table of `bytes` keys written for the read path.
 *
 * A dict would do (the pure-Python fallback uses one), but on a cache of 100k entries every
 * lookup is a few trips to main memory, and a dict makes one more than it must (its index and
 * its entries are two arrays) and gives no way to overlap the trips of many lookups. Here a slot
 * holds the key's hash, the key and the value (open addressing, linear probing, at most half
 * full), and Mirror_lookup_many looks up a batch in passes (key objects, then slots, then the
 * stored keys to compare with, then values), so that the CPU overlaps each pass's memory
 * accesses instead of making them one after another.
 *
 * Keys are exact `bytes` (what the cache stores); a lookup takes any key and finds what a dict
 * would (a key of another type compares with `==`). From Python it is a small mutable mapping:
 * len, in, [], []=, del, iter (over a snapshot of the keys), keys, values, items (lists), get,
 * pop, clear, update.
 */
#ifndef ALPHAFORGE_CACHE_MIRROR_H
#define ALPHAFORGE_CACHE_MIRROR_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    Py_hash_t hash;
    PyObject *key; /* NULL: an empty slot */
    PyObject *value;
} MirrorSlot;

typedef struct {
    PyObject_HEAD
    MirrorSlot *slots;
    size_t mask;      /* slots - 1 (a power of two minus one) */
    int shift;        /* 64 - log2(slots): a hash's home slot is (hash * golden) >> shift */
    Py_ssize_t used;  /* keys stored */
    uint64_t version; /* changes whenever a slot may have moved (lookups of non-bytes restart) */
} Mirror;

/* Hints that a memory access is coming, so that the CPU overlaps the trips to main memory of
   many lookups (here and in the read path, _reads.c). */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch((address))
#define PREFETCH_FOR_WRITE(address) __builtin_prefetch((address), 1)
#else
#define PREFETCH(address) ((void)0)
#define PREFETCH_FOR_WRITE(address) ((void)0)
#endif

/* Hints that a short `bytes` object (a key) is coming: its header, and its cached hash and first
   bytes. pymalloc places a 33-64 byte object at any 16-byte offset of a cache line, so such an
   object usually spans two lines (at offset 48: the reference count and type in one, the size,
   the hash and the bytes in the next); prefetching its start alone left the hash's line to be
   fetched when the lookup needs it, one trip to main memory per key that no other overlapped. */
#define PREFETCH_BYTES(object)                 \
    do {                                       \
        PREFETCH((object));                    \
        PREFETCH((const char *)(object) + 48); \
    } while (0)

/* The type, set by Mirror_add_type. */
extern PyObject *MirrorType;

/* Creates the type and adds it to `module` as "Mirror". 0, or -1 with an exception set. */
int Mirror_add_type(PyObject *module);

/* Whether `obj` is a Mirror. */
int Mirror_check(PyObject *obj);

/* The value of `key` (borrowed), or NULL: absent (no exception) or an error (exception set,
   e.g. TypeError for an unhashable key). */
PyObject *Mirror_lookup(Mirror *self, PyObject *key);

/* The values of `n` exact-`bytes` keys (borrowed, NULL for an absent key) into `values`. No
   Python code runs, and the lookups' memory accesses overlap. 0, or -1 with an exception set. */
int Mirror_lookup_many(Mirror *self, PyObject *const *keys, Py_ssize_t n, PyObject **values);

/* Starts fetching the home slot of `key` (exact `bytes`) and returns at once: a put calls it
   before its engine call, whose work then overlaps the trip. 0, or -1 with an exception set. */
int Mirror_prefetch_home(Mirror *self, PyObject *key);

/* Brings into the CPU's cache what storing or discarding each of `n` exact-`bytes` keys will
   touch (their slots, and the stored key and value where a slot holds their hash), in passes
   whose trips to main memory overlap; changes nothing. A batch of puts calls it before it
   stores its keys and drops the keys it evicted, each of which would otherwise wait for its
   own trips. 0, or -1 with an exception set. */
int Mirror_warm_many(Mirror *self, PyObject *const *keys, Py_ssize_t n);

/* mirror[key] = value; `key` must be exact `bytes`. 0, or -1 with an exception set. */
int Mirror_store(Mirror *self, PyObject *key, PyObject *value);

/* Removes `key`: 1 when it was there, 0 when not, -1 with an exception set. */
int Mirror_discard(Mirror *self, PyObject *key);

/* Removes `key` and hands its value over: 1 when it was there (*value: the reference the mirror
   held, now the caller's), 0 when not, -1 with an exception set. One lookup where a lookup and
   a discard would make two. */
int Mirror_take(Mirror *self, PyObject *key, PyObject **value);

/* The number of keys. */
Py_ssize_t Mirror_size(Mirror *self);

#endif

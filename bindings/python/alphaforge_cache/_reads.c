/*
 * alphaforge_cache._reads: the native backend's read path in C (optional; the same logic is
 * written in Python in _shared.py, which is used when this module is absent, and always on PyPy).
 *
 * A Reader serves a cache's gets from its mirror (a Mirror, _mirror.h: key -> value, and a dict of
 * entries with deadlines: key -> (value, deadline)) without a lock and without crossing into the
 * engine: it looks the key up, checks the deadline against the cache's clock, appends the key to
 * the read buffer (a list the cache replays into the engine in batches), and returns the value
 * (get_many looks its keys up in passes whose memory accesses overlap). An entry
 * with a deadline is in both tables; the mirror serves it without looking at the deadline while
 * the clock is before the Reader's horizon, a time no deadline in the mirror precedes (one clock
 * reading per get instead of a second lookup and an entry object per get). Anything
 * else (a key the mirror does not hold, an expired or pickled entry, another key type) is handed
 * back to Python. The GIL is held throughout, so one get is one atomic step for the other
 * threads. Built against the stable ABI of CPython 3.8 (one binary for every version).
 *
 * It also makes the two frequent engine calls, a put (with the replay of the buffered reads) and
 * a flush of the buffer, through the cffi module's own C functions (their addresses are given at
 * construction), without releasing the GIL: their engine work is ~100 ns, less than a GIL
 * hand-off, and a thread that released the GIL while holding the cache's lock would make the
 * others queue on that lock (see docs/design.md). Batches (get_many's hand-over of its reads,
 * put_many) keep it too unless they are large (RELEASE_GIL_FROM keys). It then updates the
 * mirror for the common results (stored, with at most one entry evicted or replaced); any other
 * result is returned to Python unhandled.
 */
#define Py_LIMITED_API 0x03080000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "_cache_lock.h"
#include "_mirror.h"
#include "_module_type.h"
#include "_snapshot_rows.h"

/* METH_FASTCALL (no argument tuple per call) joined the stable ABI in 3.10, but CPython has
   implemented it with this value and this signature since 3.7, so it is safe on every version
   this module supports. */
#ifndef METH_FASTCALL
#define METH_FASTCALL 0x0080
#endif
#ifndef METH_KEYWORDS
#define METH_KEYWORDS 0x0002
#endif

/* Read buffer length at which the buffer is flushed (FLUSH_AT in _shared.py). */
#define FLUSH_AT 256

/* A mirror entry with a deadline: the stored value and the deadline in one object (one memory
   access on the read path, where a (value, deadline) tuple takes three). Reads as the pair
   (stored, deadline) from Python: len 2, [0], [1], unpacking. */
typedef struct {
    PyObject_HEAD
    PyObject *stored;
    unsigned long long deadline;
} TimedEntry;

static PyObject *TimedEntryType; /* set at module init */

static PyObject *TimedEntry_make(PyObject *stored, unsigned long long deadline) {
    allocfunc alloc = (allocfunc)PyType_GetSlot((PyTypeObject *)TimedEntryType, Py_tp_alloc);
    TimedEntry *entry = (TimedEntry *)alloc((PyTypeObject *)TimedEntryType, 0);
    if (entry == NULL) return NULL;
    Py_INCREF(stored);
    entry->stored = stored;
    entry->deadline = deadline;
    return (PyObject *)entry;
}

static PyObject *TimedEntry_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    (void)type;
    PyObject *stored;
    unsigned long long deadline;
    if (kwargs != NULL && PyDict_Size(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "TimedEntry() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OK:TimedEntry", &stored, &deadline)) return NULL;
    return TimedEntry_make(stored, deadline);
}

static int TimedEntry_traverse(TimedEntry *self, visitproc visit, void *arg) {
    Py_VISIT(self->stored);
    return 0;
}

static int TimedEntry_clear(TimedEntry *self) {
    Py_CLEAR(self->stored);
    return 0;
}

static void TimedEntry_dealloc(TimedEntry *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    TimedEntry_clear(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static Py_ssize_t TimedEntry_length(PyObject *self) {
    (void)self;
    return 2;
}

static PyObject *TimedEntry_item(TimedEntry *self, Py_ssize_t i) {
    if (i == 0) {
        Py_INCREF(self->stored);
        return self->stored;
    }
    if (i == 1) return PyLong_FromUnsignedLongLong(self->deadline);
    PyErr_SetString(PyExc_IndexError, "TimedEntry index out of range");
    return NULL;
}

static PyType_Slot TimedEntry_slots[] = {
    {Py_tp_doc, "A mirror entry with a deadline: reads as the pair (stored, deadline)."},
    {Py_tp_new, TimedEntry_new},
    {Py_tp_dealloc, TimedEntry_dealloc},
    {Py_tp_traverse, TimedEntry_traverse},
    {Py_tp_clear, TimedEntry_clear},
    {Py_sq_length, TimedEntry_length},
    {Py_sq_item, TimedEntry_item},
    {0, NULL},
};

static PyType_Spec TimedEntry_spec = {
    "alphaforge_cache._reads.TimedEntry",
    sizeof(TimedEntry),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    TimedEntry_slots,
};

/* The cffi module's afcpy_put and afcpy_replay (see _ffi_build.py). */
typedef uint64_t (*afcpy_put_fn)(void *c, const char *reads, const size_t *read_lens,
                                 size_t read_len, size_t n_reads, uint64_t misses,
                                 const char *key, size_t key_len, uint64_t handle, uint64_t weight,
                                 uint64_t ttl_ns);
typedef uint64_t (*afcpy_replay_fn)(void *c, const char *reads, const size_t *read_lens,
                                    size_t read_len, size_t n_reads, uint64_t misses);

/* The cffi module's afcpy_put_many and afcpy_removals (see _ffi_build.py). */
typedef uint64_t (*afcpy_put_many_fn)(void *c, const char *keys, const size_t *key_lens,
                                      const uint64_t *handles, const uint64_t *weights, size_t n,
                                      uint64_t ttl_ns);
typedef struct {
    const uint64_t *items; /* handle << 3 | cause, in order */
    size_t n;
    const char *keys; /* their keys, concatenated */
    const size_t *key_lens;
} afcpy_removals_list;
typedef afcpy_removals_list (*afcpy_removals_fn)(void);

/* The codes of afcpy_* calls (_ffi_build.py). */
#define AFCPY_ERR ((uint64_t)1 << 63)
#define AFCPY_ONE ((uint64_t)1 << 62)
#define AFCPY_MANY ((uint64_t)1 << 61)

typedef struct {
    PyObject_HEAD
    PyObject *mirror; /* Mirror: key -> stored value */
    PyObject *reads;  /* list: keys of gets not yet replayed */
    PyObject *other;  /* callable(key, default): the Python path for everything else */
    PyObject *flush;  /* callable(): replays the read buffer */
    PyObject *absent; /* the default that tells getitem `other` found nothing */
    PyObject *timed;  /* dict: key -> (stored value, deadline) */
    PyObject *timer;  /* None (monotonic time) or the ManualClock (its `_nanos`) */
    PyObject *clock;  /* time.monotonic_ns, where CLOCK_MONOTONIC is not the same clock */
    long long origin; /* monotonic nanoseconds at the cache's time 0 */
    PyObject *misses; /* list: one None per buffered miss without its key */
    PyObject *engine; /* the cffi pointer object, kept alive while `cache` is used */
    void *cache;      /* the afcpy_cache */
    afcpy_put_fn put;
    afcpy_replay_fn replay;
    char *scratch;    /* the buffered keys, concatenated */
    size_t scratch_cap;
    Py_ssize_t key_len; /* CacheBase._key_len, kept in step by Python (set_key_len) */
    int closed;         /* set by Python when the cache closes (set_closed) */
    /* No deadline of an entry in `mirror` is earlier than this (NO_HORIZON: none has one).
       Entries with a deadline are in `mirror` as well as in `timed`; while the clock is before
       the horizon, a mirror entry is served without looking at its deadline. */
    unsigned long long horizon;
    /* The last exact reading of the clock (Reader_now_bound): the time-stamp counter just
       before it, and the cache's time it gave. */
    unsigned long long anchor_tsc;
    unsigned long long anchor_now;
    Py_ssize_t checked_reads; /* mirror hits checked against `timed` since the last lift */
    int lift_backoff;         /* lifts in a row that left the horizon behind the clock */
    /* The put fast path (enable_put): 0 off, PLAIN_OBJECTS or PLAIN_BYTES. */
    int plain_mode;
    unsigned long long default_ttl_ns; /* the cache's TTL in nanoseconds, 0: none */
    /* The next handle of a put made here. The C puts count from C_HANDLES apart from the
       Python puts' `_next_handle` (from 1): a handle only has to differ from those of the
       entries stored before it, and one counter each spares a put two attribute updates. */
    unsigned long long next_handle;
    PyObject *cache_lock; /* the cache's CacheLock (set_lock), NULL until set */
    PyObject *put_slow; /* callable(key, value, ttl=None): the Python put */
    PyObject *put_many_slow; /* callable(items, ttl=None): the Python put_many */
    PyObject *get_many_slow; /* callable(keys, default=None): the Python get_many */
    PyObject *stored;   /* callable(code, key, stored, handle, deadline) -> removed (lock held) */
    PyObject *finish;   /* callable(code, removed): notifications and errors (lock released) */
    afcpy_put_many_fn put_many;  /* set by enable_put_many (NULL: put_many goes to Python) */
    afcpy_removals_fn removals;  /* the entries the last engine call on this thread removed */
} Reader;

/* Reader.plain_mode: a put of an object of weight 1, or of exact `bytes` weighing their length
   plus the key's (no byte bound and no listener either way). */
#define PLAIN_OBJECTS 1
#define PLAIN_BYTES 2

/* Points `dst` at the new reference `src`, then lets go of its old one (which may be NULL). */
#define SET_REF(dst, src)                 \
    do {                                  \
        PyObject *old_ref_ = (PyObject *)(dst); \
        (dst) = (src);                    \
        Py_XDECREF(old_ref_);             \
    } while (0)

/* The first handle of the C puts (Reader.next_handle): 2**57 puts away from the Python puts'
   counter, and as far from 2**58, where a handle stops fitting the result code of a call that
   removed one entry (AFCPY_ONE | handle << 3 | cause, below the three flag bits). */
#define C_HANDLES (1ULL << 57)

/* MAX_ENTRY_SIZE in _common.py. */
#define MAX_ENTRY_SIZE 4294967294ULL

/* The horizon of a mirror without deadlines. */
#define NO_HORIZON UINT64_MAX

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
    Py_VISIT(self->misses);
    Py_VISIT(self->engine);
    Py_VISIT(self->cache_lock);
    Py_VISIT(self->put_slow);
    Py_VISIT(self->put_many_slow);
    Py_VISIT(self->get_many_slow);
    Py_VISIT(self->stored);
    Py_VISIT(self->finish);
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
    Py_CLEAR(self->misses);
    Py_CLEAR(self->engine);
    Py_CLEAR(self->cache_lock);
    Py_CLEAR(self->put_slow);
    Py_CLEAR(self->put_many_slow);
    Py_CLEAR(self->get_many_slow);
    Py_CLEAR(self->stored);
    Py_CLEAR(self->finish);
    self->plain_mode = 0;
    self->put_many = NULL;
    return 0;
}

static void Reader_dealloc(Reader *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Reader_clear(self);
    PyMem_Free(self->scratch);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type);
}

static int Reader_init(Reader *self, PyObject *args, PyObject *kwargs) {
    PyObject *mirror, *reads, *other, *flush, *absent, *timed, *timer, *clock, *misses;
    PyObject *engine;
    long long origin;
    unsigned long long cache, put, replay, removals;
    if (kwargs != NULL && PyDict_Size(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "Reader() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OO!OOOO!OOLO!OKKKK:Reader", &mirror,
                          &PyList_Type, &reads, &other, &flush, &absent, &PyDict_Type, &timed,
                          &timer, &clock, &origin, &PyList_Type, &misses, &engine, &cache, &put,
                          &replay, &removals))
        return -1;
    if (!Mirror_check(mirror)) {
        PyErr_SetString(PyExc_TypeError, "Reader: the mirror must be a Mirror");
        return -1;
    }
    if (cache == 0 || put == 0 || replay == 0 || removals == 0) {
        PyErr_SetString(PyExc_ValueError, "Reader: null engine pointer");
        return -1;
    }
    if (!PyCallable_Check(other) || !PyCallable_Check(flush) || !PyCallable_Check(clock)) {
        PyErr_SetString(PyExc_TypeError, "Reader: other, flush and clock must be callable");
        return -1;
    }
    PyObject *fields[] = {mirror, reads, other, flush, absent, timed, timer, clock, misses, engine};
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
    self->misses = misses;
    self->engine = engine;
    self->cache = (void *)(uintptr_t)cache;
    self->put = (afcpy_put_fn)(uintptr_t)put;
    self->replay = (afcpy_replay_fn)(uintptr_t)replay;
    self->removals = (afcpy_removals_fn)(uintptr_t)removals;
    self->key_len = -1;
    self->closed = 0;
    self->horizon = NO_HORIZON;
    self->anchor_tsc = 0;
    self->anchor_now = 0;
    self->checked_reads = 0;
    self->lift_backoff = 0;
    self->next_handle = C_HANDLES;
    return 0;
}

static int Reader_maybe_flush(Reader *self);

/* A get of a key the mirror does not hold (a bytes key, no entry with a deadline anywhere,
   the cache open): buffered as CacheBase._read_miss does. 1 when done, 0 when Python must
   decide, -1 on an error. */
static int Reader_miss(Reader *self, PyObject *key) {
    if (self->closed || !PyBytes_CheckExact(key) || PyDict_Size(self->timed) != 0) return 0;
    int keyed = self->key_len == -2 || PyBytes_Size(key) == self->key_len;
    if (PyList_Append(keyed ? self->reads : self->misses, keyed ? key : Py_None) < 0) return -1;
    return Reader_maybe_flush(self) < 0 ? -1 : 1;
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

/* An upper bound of the cache's time, for the get's comparison with the horizon, without a
   clock reading per get where the time-stamp counter allows it.

   Reading CLOCK_MONOTONIC (the vDSO's TSC read) waits for every load before it to complete
   (`rdtsc` behind an `lfence`, or `rdtscp`): a get whose key and mirror slot miss the CPU
   cache cannot overlap those misses with the next get's, which cost a TTL get hit ~150 ns
   over a get without one on 100k entries (27 ns on a hot key). A plain `rdtsc` waits for
   nothing. So the clock is read exactly only every TSC_ANCHOR_TICKS ticks of the counter; in
   between, the time is bounded from above by the last reading plus TSC_MAX_NS_PER_TICK per
   tick since (true for any counter of at least 500 MHz, whatever NTP does to the clock) plus
   TSC_SLACK_NS (an `rdtsc` may run a little ahead of the loads before it). A bound before the
   horizon proves that no entry in the mirror has expired; a bound past it sends the get to
   the exact clock. Used only when the kernel's clock source is the TSC (so the counter is
   invariant and the same on every CPU; tsc_usable), else every call reads the clock. */
#define TSC_MAX_NS_PER_TICK 2ULL
#define TSC_SLACK_NS 10000ULL
#define TSC_ANCHOR_TICKS 2000000ULL

#if defined(__linux__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_TSC_BOUND 1
static int tsc_usable; /* set at module init: the clock source is "tsc" */

static int clock_source_is_tsc(void) {
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f == NULL) return 0;
    char name[32] = {0};
    int is_tsc = fgets(name, sizeof name, f) != NULL && strcmp(name, "tsc\n") == 0;
    fclose(f);
    return is_tsc;
}
#endif

static int Reader_now_bound(Reader *self, unsigned long long *bound) {
#ifdef HAVE_TSC_BOUND
    if (tsc_usable && self->timer == Py_None) {
        unsigned long long tsc = __builtin_ia32_rdtsc();
        unsigned long long ticks = tsc - self->anchor_tsc; /* huge if it went backwards */
        if (ticks < TSC_ANCHOR_TICKS) {
            *bound = self->anchor_now + ticks * TSC_MAX_NS_PER_TICK + TSC_SLACK_NS;
            return 0;
        }
        if (Reader_now(self, bound) < 0) return -1; /* read after `tsc`: not earlier than it */
        self->anchor_tsc = tsc;
        self->anchor_now = *bound;
        return 0;
    }
#endif
    return Reader_now(self, bound);
}

/* After a key was appended: flushes a full buffer. 0, or -1 with an exception set. */
static int Reader_maybe_flush(Reader *self) {
    if (PyList_Size(self->reads) <= FLUSH_AT && PyList_Size(self->misses) <= FLUSH_AT) return 0;
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

/* Raises the horizon to the earliest deadline in `timed` (each entry with a deadline is there
   while it is in `mirror`). Runs after a number of checked reads proportional to the entries
   with deadlines (so its cost per read is bounded), doubling that number each time it leaves
   the horizon behind the clock (an expired entry not yet reclaimed: reads stay checked). */
static void Reader_lift(Reader *self, unsigned long long now) {
    unsigned long long earliest = NO_HORIZON;
    Py_ssize_t pos = 0;
    PyObject *k, *entry;
    while (PyDict_Next(self->timed, &pos, &k, &entry)) {
        if (Py_TYPE(entry) != (PyTypeObject *)TimedEntryType) return; /* not ours: keep it */
        unsigned long long deadline = ((TimedEntry *)entry)->deadline;
        if (deadline < earliest) earliest = deadline;
    }
    self->horizon = earliest;
    self->checked_reads = 0;
    if (earliest <= now) {
        if (self->lift_backoff < 20) self->lift_backoff++;
    } else {
        self->lift_backoff = 0;
    }
}

/* A mirror hit at or past the horizon: served if `timed` has no entry for the key or its
   deadline is ahead; NULL with no exception when expired (Python decides). */
static PyObject *Reader_check(Reader *self, PyObject *key, PyObject *value,
                              unsigned long long now) {
    Py_ssize_t dated = PyDict_Size(self->timed);
    Py_ssize_t every = (dated > FLUSH_AT ? dated : FLUSH_AT) << self->lift_backoff;
    if (++self->checked_reads >= every) {
        Reader_lift(self, now);
        if (now < self->horizon) return Reader_serve(self, key, value);
    }
    PyObject *entry = PyDict_GetItemWithError(self->timed, key); /* borrowed */
    if (entry == NULL) return PyErr_Occurred() ? NULL : Reader_serve(self, key, value);
    if (Py_TYPE(entry) != (PyTypeObject *)TimedEntryType) return NULL;
    if (now < ((TimedEntry *)entry)->deadline) return Reader_serve(self, key, value);
    return NULL; /* expired: the engine decides, and reclaims */
}

/* The stored value of `key` (a new reference), with its read buffered; NULL with no exception
   when Python must decide (absent, expired, not a (value, deadline) pair, unhashable); NULL
   with an exception on an error. */
static PyObject *Reader_lookup(Reader *self, PyObject *key) {
    /* Only an exact `bytes` key is served and buffered here: hashing and comparing it runs no
       Python code, now or when the buffer is replayed under the cache's lock. Python converts
       any other key first (a TypeError for one that is not a key). */
    if (!PyBytes_CheckExact(key)) return NULL;
    PyObject *value = Mirror_lookup((Mirror *)self->mirror, key); /* borrowed */
    if (value != NULL) {
        if (self->horizon == NO_HORIZON) return Reader_serve(self, key, value);
        Py_INCREF(value); /* reading the clock may run Python code */
        PyObject *served = NULL;
        unsigned long long now = 0;
        if (Reader_now_bound(self, &now) == 0) {
            if (now < self->horizon)
                served = Reader_serve(self, key, value);
            else if (Reader_now(self, &now) == 0)
                served = now < self->horizon ? Reader_serve(self, key, value)
                                             : Reader_check(self, key, value, now);
        }
        Py_DECREF(value);
        return served;
    }
    if (PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) PyErr_Clear();
        return NULL;
    }
    if (PyDict_Size(self->timed) == 0) return NULL;
    PyObject *entry = PyDict_GetItemWithError(self->timed, key);
    if (entry == NULL || Py_TYPE(entry) != (PyTypeObject *)TimedEntryType) return NULL;
    Py_INCREF(entry); /* reading the clock may run Python code */
    PyObject *served = NULL;
    unsigned long long now = 0;
    if (Reader_now(self, &now) == 0 && now < ((TimedEntry *)entry)->deadline)
        served = Reader_serve(self, key, ((TimedEntry *)entry)->stored);
    /* else expired: the engine decides (or the clock failed: its error propagates) */
    Py_DECREF(entry);
    return served;
}

PyDoc_STRVAR(Reader_get_doc,
             "get(key, default=None)\n--\n\n"
             "The value of ``key`` (which becomes the most recently used), or ``default``.");

static PyObject *Reader_get(Reader *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_Size(kwnames);
    PyObject *key = nargs >= 1 ? args[0] : NULL, *dflt = nargs == 2 ? args[1] : Py_None;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GetItem(kwnames, i);
        int is_key = PyUnicode_CompareWithASCIIString(name, "key") == 0;
        int is_default = PyUnicode_CompareWithASCIIString(name, "default") == 0;
        PyObject **slot = is_key ? &key : &dflt;
        if ((!is_key && !is_default) || (is_key && key != NULL) || (is_default && nargs == 2)) {
            PyErr_Format(PyExc_TypeError, "get() got an unexpected or repeated argument %R",
                         name);
            return NULL;
        }
        *slot = args[nargs + i];
    }
    if (key == NULL || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "get() takes a key and an optional default (%zd given)",
                     nargs + nkw);
        return NULL;
    }
    PyObject *value = Reader_lookup(self, key);
    if (value != NULL || PyErr_Occurred()) return value;
    int missed = Reader_miss(self, key);
    if (missed < 0) return NULL;
    if (missed) {
        Py_INCREF(dflt);
        return dflt;
    }
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

static int Reader_pack(Reader *self, Py_ssize_t n, Py_ssize_t key_len);
static int Reader_grow_scratch(Reader *self, size_t need);

/* The cache's lock (set_lock must have run: every caller checks cache_lock or plain_mode, which
   enable_put sets with it). Taking it if it is free: 1 when taken, 0 when another thread holds
   it. */
static int Reader_try_lock(Reader *self) {
    CacheLock *lock = (CacheLock *)self->cache_lock;
    if (!CacheLock_try(lock)) return 0;
    if (lock->dirty) { /* the tables await mending: the Python way mends them first */
        CacheLock_release(lock);
        return 0;
    }
    return 1;
}

/* Takes the cache's lock, waiting for it with the GIL released (as `with lock:` does). */
static void Reader_lock(Reader *self) {
    CacheLock_wait((CacheLock *)self->cache_lock);
}

/* Releases the cache's lock, which this thread holds (so it cannot fail: -1 would mean a bug,
   with RuntimeError set in place of any exception raised before). */
static int Reader_unlock(Reader *self) {
    return CacheLock_release((CacheLock *)self->cache_lock);
}

/* Engine calls on fewer keys than this keep the GIL. Releasing it lets another thread run Python
   code during the engine's work, but it costs a hand-off (a futex wake, and on a busy machine
   a context switch) each way, which on a 2-vCPU VM was more than the engine work of a batch of
   100 keys saves: the batched Zipf mix of python_peers.py (get_many of 100 keys, then put_many
   of the misses) ran 337-435 ns per key on two threads releasing it against 188-301 keeping it,
   one thread ~210-230 either way; at 1,000 keys per batch the two were alike. A call this large
   (or larger) releases it, so that no thread holds the GIL through a long native call. */
#define RELEASE_GIL_FROM 1024

/* Leaves the GIL for an engine call on `keys` keys, if that many are worth a hand-off; pass the
   result to retake_gil after the call. */
static PyThreadState *release_gil_for(size_t keys) {
    return keys >= RELEASE_GIL_FROM ? PyEval_SaveThread() : NULL;
}

static void retake_gil(PyThreadState *released) {
    if (released != NULL) PyEval_RestoreThread(released);
}

/* Replays the reads packed in the scratch buffer (`keyed` keys of `key_len` bytes, then `others`
   certain misses) in one engine call, with the GIL released if they are many (release_gil_for).
   The lock must be held (the scratch is used only under it). The engine's code. */
static uint64_t Reader_replay_scratch(Reader *self, size_t key_len, size_t keyed,
                                      uint64_t others) {
    void *cache = self->cache;
    afcpy_replay_fn replay = self->replay;
    const char *scratch = self->scratch;
    PyThreadState *released = release_gil_for(keyed + (size_t)others);
    uint64_t code = replay(cache, scratch, NULL, key_len, keyed, others);
    retake_gil(released);
    return code;
}

/* The deadline of an entry put now with the default TTL (a new reference): None without a
   default TTL or with an endless one (UINT64_MAX ns: it never expires); a deadline past the
   clock's range is its last instant, UINT64_MAX - 1 (as _native._deadline and the engine
   say); NULL on an error. */
static PyObject *Reader_default_deadline(Reader *self) {
    if (self->default_ttl_ns && self->default_ttl_ns != UINT64_MAX) {
        unsigned long long now = 0;
        if (Reader_now(self, &now) < 0) return NULL;
        unsigned long long when = now + self->default_ttl_ns;
        if (when < now || when > UINT64_MAX - 1) when = UINT64_MAX - 1;
        return PyLong_FromUnsignedLongLong(when);
    }
    Py_RETURN_NONE;
}

/* get_many's reads handed to the engine in one call if the cache's lock is free (a read never
   waits for a lock), with the GIL released for a large batch (Reader_replay_scratch). Reads
   buffered before these must be replayed first (the order of reads is the order of replay),
   so when the buffer is not empty once the lock is held, nothing is done. 1 when done, 0 when
   the reads must be buffered instead (lock busy, buffer not empty, cache closed, or the call
   failed: the flush will say why), -1 on an error. The scratch buffer is only used with the
   lock held. */
static int Reader_replay_batch(Reader *self, PyObject *const *keys, Py_ssize_t n,
                               Py_ssize_t key_len) {
    if (!Reader_try_lock(self)) return 0;
    int done = 0;
    if (!self->closed && PyList_Size(self->reads) == 0 && PyList_Size(self->misses) == 0) {
        if (Reader_grow_scratch(self, (size_t)n * (size_t)key_len) < 0) {
            done = -1;
        } else {
            size_t keyed = 0;
            uint64_t others = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                char *bytes;
                Py_ssize_t size;
                if (PyBytes_AsStringAndSize(keys[i], &bytes, &size) < 0) {
                    done = -1; /* not reached: the keys are exact bytes */
                    break;
                }
                if (size != key_len) {
                    others++; /* a certain miss: no stored key has its length */
                    continue;
                }
                memcpy(self->scratch + keyed * (size_t)key_len, bytes, (size_t)key_len);
                keyed++;
            }
            if (done == 0) {
                uint64_t code = Reader_replay_scratch(self, (size_t)key_len, keyed, others);
                done = (code & AFCPY_ERR) ? 0 : 1;
            }
        }
    }
    return Reader_unlock(self) < 0 ? -1 : done;
}

static PyObject *Reader_call_slow(PyObject *slow, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames);

/* Keys whose lookups get_many keeps on the stack (more take a heap buffer). */
#define GET_MANY_ON_STACK 128

/* Reader.get_many's work: `keys` a list, `misses` a list. */
static PyObject *Reader_get_many_in(Reader *self, PyObject *keys, PyObject *dflt,
                                    Py_ssize_t key_len, PyObject *misses) {
    Py_ssize_t n = PyList_Size(keys);
    /* The keys' and then their values' pointers in one buffer: the mirror looks the keys up
       in passes whose memory accesses overlap (Mirror_lookup_many). The keys are held (new
       references) until the end: a large batch's replay releases the GIL, and another thread
       may change the caller's list meanwhile. */
    PyObject *on_stack[2 * GET_MANY_ON_STACK];
    PyObject **found = n <= GET_MANY_ON_STACK
                           ? on_stack
                           : (PyObject **)PyMem_Malloc(sizeof(PyObject *) * (size_t)(2 * n));
    if (found == NULL) return PyErr_NoMemory();
    PyObject **key_at = found + n;
    for (Py_ssize_t i = 0; i < n; i++) {
        key_at[i] = PyList_GetItem(keys, i); /* borrowed until the check below */
        PREFETCH_BYTES(key_at[i]); /* the type check below waits for all of them at once */
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_CheckExact(key_at[i])) {
            if (found != on_stack) PyMem_Free(found);
            Py_RETURN_NONE;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) Py_INCREF(key_at[i]);
    PyObject *values = PyList_New(n);
    if (values == NULL) goto done;
    if (Mirror_lookup_many((Mirror *)self->mirror, key_at, n, found) < 0) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = found[i] != NULL ? found[i] : dflt;
        Py_INCREF(value);
        PyList_SetItem(values, i, value); /* steals */
    }
    if (self->cache_lock != NULL && key_len >= 0 && !self->closed &&
        PyList_Size(self->reads) == 0 && PyList_Size(self->misses) == 0 && n > 0) {
        int replayed = Reader_replay_batch(self, key_at, n, key_len);
        if (replayed < 0) goto fail;
        if (replayed) goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = key_at[i];
        int buffered = key_len == -2 || PyBytes_Size(key) == key_len;
        if (PyList_Append(buffered ? self->reads : misses, buffered ? key : Py_None) < 0)
            goto fail;
    }
    if (Reader_maybe_flush(self) < 0) goto fail;
    goto done;
fail:
    Py_CLEAR(values);
done:
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(key_at[i]);
    if (found != on_stack) PyMem_Free(found);
    return values;
}

static PyObject *Reader_get_many(Reader *self, PyObject *args) {
    PyObject *keys, *dflt, *misses;
    Py_ssize_t key_len;
    if (!PyArg_ParseTuple(args, "O!OnO!:get_many", &PyList_Type, &keys, &dflt, &key_len,
                          &PyList_Type, &misses))
        return NULL;
    return Reader_get_many_in(self, keys, dflt, key_len, misses);
}

PyDoc_STRVAR(Reader_get_many_entry_doc,
             "get_many_entry(keys, default=None)\n--\n\n"
             "Cache.get_many as one C call (enable_get_many): a list of keys, on an open cache "
             "with no entry that has a deadline, is served as get_many serves it (with the "
             "cache's key length and miss list); anything else, or a list with a key that is "
             "not ``bytes``, goes to the Python get_many as given.");

static PyObject *Reader_get_many_entry(Reader *self, PyObject *const *args, Py_ssize_t nargs,
                                       PyObject *kwnames) {
    if (self->get_many_slow == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "get_many_entry: enable_get_many was not called");
        return NULL;
    }
    if (kwnames == NULL && (nargs == 1 || nargs == 2) && PyList_CheckExact(args[0]) &&
        !self->closed && PyDict_Size(self->timed) == 0) {
        PyObject *values = Reader_get_many_in(self, args[0], nargs == 2 ? args[1] : Py_None,
                                              self->key_len, self->misses);
        if (values != Py_None) return values; /* the values, or NULL on an error */
        Py_DECREF(values);
    }
    return Reader_call_slow(self->get_many_slow, args, nargs, kwnames);
}

static PyObject *Reader_enable_get_many(Reader *self, PyObject *get_many_slow) {
    Py_INCREF(get_many_slow);
    SET_REF(self->get_many_slow, get_many_slow);
    Py_RETURN_NONE;
}

/* The buffered keys, all `key_len` bytes long, concatenated into the scratch buffer: 1 when
   done, 0 when a key is not `bytes` of that length (Python packs them), -1 on an error. */
static int Reader_grow_scratch(Reader *self, size_t need) {
    if (need > self->scratch_cap || self->scratch == NULL) {
        char *grown = (char *)PyMem_Realloc(self->scratch, need ? need : 1);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->scratch = grown;
        self->scratch_cap = need;
    }
    return 0;
}

static int Reader_pack(Reader *self, Py_ssize_t n, Py_ssize_t key_len) {
    if (Reader_grow_scratch(self, (size_t)n * (size_t)key_len) < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GetItem(self->reads, i);
        if (!PyBytes_CheckExact(key) || PyBytes_Size(key) != key_len) return 0;
        memcpy(self->scratch + (size_t)i * (size_t)key_len, PyBytes_AsString(key),
               (size_t)key_len);
    }
    return 1;
}

/* Drops the first n buffered reads and the first m buffered misses. */
static int Reader_consume(Reader *self, Py_ssize_t n, Py_ssize_t m) {
    if (n && PyList_SetSlice(self->reads, 0, n, NULL) < 0) return -1;
    if (m && PyList_SetSlice(self->misses, 0, m, NULL) < 0) return -1;
    return 0;
}

PyDoc_STRVAR(Reader_replay_doc,
             "replay(key_len) -> int | None\n--\n\n"
             "Replays the read buffer into the engine (the cache's lock held) without releasing "
             "the GIL; the call's code, or None (nothing done) when a buffered key is not "
             "``bytes`` of ``key_len`` bytes.");

static PyObject *Reader_replay(Reader *self, PyObject *arg) {
    Py_ssize_t key_len = PyLong_AsSsize_t(arg);
    if (key_len == -1 && PyErr_Occurred()) return NULL;
    if (key_len < 0) Py_RETURN_NONE;
    Py_ssize_t n = PyList_Size(self->reads), m = PyList_Size(self->misses);
    int packed = Reader_pack(self, n, key_len);
    if (packed <= 0) {
        if (packed < 0) return NULL;
        Py_RETURN_NONE;
    }
    uint64_t code = self->replay(self->cache, self->scratch, NULL, (size_t)key_len, (size_t)n,
                                 (uint64_t)m);
    if (Reader_consume(self, n, m) < 0) return NULL;
    return PyLong_FromUnsignedLongLong(code);
}

/* mirror[key] = stored (deadline None) or timed[key] = (stored, deadline), out of the other
   dict afterwards (CacheBase._mirror_store, for a key of the known length, not pickled). */
static int Reader_store(Reader *self, PyObject *key, PyObject *stored, PyObject *deadline) {
    if (deadline == Py_None) {
        if (Mirror_store((Mirror *)self->mirror, key, stored) < 0) return -1;
        if (PyDict_Size(self->timed) && PyDict_DelItem(self->timed, key) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
            PyErr_Clear();
        }
        return 0;
    }
    unsigned long long when = PyLong_AsUnsignedLongLong(deadline);
    if (when == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    PyObject *entry = TimedEntry_make(stored, when);
    if (entry == NULL) return -1;
    int failed = PyDict_SetItem(self->timed, key, entry);
    Py_DECREF(entry);
    if (failed < 0) return -1;
    /* In `timed` first, then the horizon, then the mirror (CacheBase._mirror_store). */
    if (when < self->horizon) self->horizon = when;
    return Mirror_store((Mirror *)self->mirror, key, stored);
}

/* Drops a removed entry's key from the mirror (CacheBase._mirror_drop): from both dicts, as an
   entry with a deadline is in both. */
static int Reader_drop(Reader *self, PyObject *key) {
    if (Mirror_discard((Mirror *)self->mirror, key) < 0) return -1;
    if (PyDict_Size(self->timed) == 0 || PyDict_DelItem(self->timed, key) == 0) return 0;
    if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
    PyErr_Clear();
    return 0;
}

/* Raises the error of a key the engine removed and the mirror does not hold (a bug: the mirror
   holds exactly the engine's keys); NULL. */
static PyObject *Reader_mirror_lacks(PyObject *key) {
    return PyErr_Format(PyExc_RuntimeError,
                        "alphaforge_cache: the engine removed %R, which the mirror lacks", key);
}

/* The stored value of a key the engine holds (CacheBase._mirror_stored): a borrowed reference,
   or NULL with an exception. */
static PyObject *Reader_stored_of(Reader *self, PyObject *key) {
    PyObject *stored = Mirror_lookup((Mirror *)self->mirror, key);
    if (stored != NULL || PyErr_Occurred()) return stored;
    PyObject *entry = PyDict_GetItemWithError(self->timed, key);
    if (entry != NULL) {
        if (Py_TYPE(entry) == (PyTypeObject *)TimedEntryType) return ((TimedEntry *)entry)->stored;
        if (PyTuple_Check(entry) && PyTuple_Size(entry) == 2) return PyTuple_GetItem(entry, 0);
    }
    return PyErr_Occurred() ? NULL : Reader_mirror_lacks(key);
}

/* The stored value of a key the engine removed (a new reference, or NULL with an exception),
   dropped from the mirror too unless `stays` (the put that removed it stores the key again).
   Without entries with deadlines, one mirror lookup does both. */
static PyObject *Reader_take_removed(Reader *self, PyObject *key, int stays) {
    if (!stays && PyDict_Size(self->timed) == 0) {
        PyObject *stored = NULL;
        int taken = Mirror_take((Mirror *)self->mirror, key, &stored);
        if (taken == 1) return stored;
        return taken == 0 ? Reader_mirror_lacks(key) : NULL;
    }
    PyObject *stored = Reader_stored_of(self, key); /* borrowed */
    if (stored == NULL) return NULL;
    Py_INCREF(stored);
    if (!stays && Reader_drop(self, key) < 0) {
        Py_DECREF(stored);
        return NULL;
    }
    return stored;
}

PyDoc_STRVAR(Reader_put_doc,
             "put(key, stored, weight, ttl_ns, deadline, handle, key_len) -> int | tuple | None"
             "\n--\n\n"
             "Replays the read buffer and stores ``key`` (``bytes`` of ``key_len`` bytes, the "
             "length every stored key has) under ``handle``, the cache's lock held, without "
             "releasing the GIL. Returns None (nothing done) when a buffered key is not ``bytes``"
             " of that length; the call's code when it failed or removed several entries (the "
             "mirror untouched: Python finishes); 0 when it stored the entry and removed none; "
             "(code, key, stored) of the one entry it evicted or replaced, the mirror updated.");

static PyObject *Reader_put_in(Reader *self, PyObject *key, PyObject *stored,
                               unsigned long long weight, unsigned long long ttl_ns,
                               PyObject *deadline, unsigned long long handle, Py_ssize_t key_len,
                               PyObject **kept);

static PyObject *Reader_put(Reader *self, PyObject *args) {
    PyObject *key, *stored, *deadline;
    unsigned long long weight, ttl_ns, handle;
    Py_ssize_t key_len;
    if (!PyArg_ParseTuple(args, "O!OKKOKn:put", &PyBytes_Type, &key, &stored, &weight, &ttl_ns,
                          &deadline, &handle, &key_len))
        return NULL;
    return Reader_put_in(self, key, stored, weight, ttl_ns, deadline, handle, key_len, NULL);
}

/* Reader.put's work, the lock held (see its documentation). With `kept`, the one entry evicted
   or replaced is not reported: 0 is returned and *kept receives its value (a new reference,
   for the caller to release once the lock is, so that no finalizer runs under it); *kept is
   set only then, and may be set when the call then fails. */
static PyObject *Reader_put_in(Reader *self, PyObject *key, PyObject *stored,
                               unsigned long long weight, unsigned long long ttl_ns,
                               PyObject *deadline, unsigned long long handle, Py_ssize_t key_len,
                               PyObject **kept) {
    if (key_len < 0 || PyBytes_Size(key) != key_len) Py_RETURN_NONE;
    Py_ssize_t n = PyList_Size(self->reads), m = PyList_Size(self->misses);
    int packed = Reader_pack(self, n, key_len);
    if (packed <= 0) {
        if (packed < 0) return NULL;
        Py_RETURN_NONE;
    }
    /* The slot the key will take in the mirror, fetched while the engine works. */
    if (Mirror_prefetch_home((Mirror *)self->mirror, key) < 0) return NULL;
    uint64_t code = self->put(self->cache, self->scratch, NULL, (size_t)key_len, (size_t)n,
                              (uint64_t)m, PyBytes_AsString(key), (size_t)key_len, handle,
                              weight, ttl_ns);
    if (Reader_consume(self, n, m) < 0) return NULL;
    if (code & (AFCPY_ERR | AFCPY_MANY)) return PyLong_FromUnsignedLongLong(code);
    PyObject *result = NULL;
    if (code & AFCPY_ONE) {
        afcpy_removals_list removed = self->removals();
        if (removed.n != 1 || ((code & (AFCPY_ONE - 1)) >> 3) == handle)
            return PyLong_FromUnsignedLongLong(code); /* not the usual case: Python finishes */
        PyObject *gone_key =
            PyBytes_FromStringAndSize(removed.keys, (Py_ssize_t)removed.key_lens[0]);
        if (gone_key == NULL) return NULL;
        /* Its slot, then its stored key's two lines and value at once, not one after another. */
        if (Mirror_warm_many((Mirror *)self->mirror, &gone_key, 1) < 0) {
            Py_DECREF(gone_key);
            return NULL;
        }
        int same = PyObject_RichCompareBool(gone_key, key, Py_EQ);
        PyObject *gone_value = same < 0 ? NULL : Reader_take_removed(self, gone_key, same);
        if (gone_value == NULL) {
            Py_DECREF(gone_key);
            return NULL;
        }
        if (kept != NULL) { /* no one to tell: the caller only keeps the value alive */
            *kept = gone_value;
            result = PyLong_FromLong(0);
        } else {
            PyObject *code_object = PyLong_FromUnsignedLongLong((unsigned long long)code);
            result = code_object == NULL ? NULL
                                         : PyTuple_Pack(3, code_object, gone_key, gone_value);
            Py_XDECREF(code_object);
            Py_DECREF(gone_value);
        }
        Py_DECREF(gone_key);
        if (result == NULL) return NULL; /* the mirror already follows the engine */
    } else {
        result = PyLong_FromLong(0);
        if (result == NULL) return NULL;
    }
    if (Reader_store(self, key, stored, deadline) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* `slow` (the Python put or put_many) called with a fast path's arguments as given. */
static PyObject *Reader_call_slow(PyObject *slow, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames) {
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_Size(kwnames);
    PyObject *tuple = PyTuple_New(nargs), *kwargs = NULL, *result = NULL;
    if (tuple == NULL) return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SetItem(tuple, i, args[i]); /* steals */
    }
    if (nkw) {
        kwargs = PyDict_New();
        for (Py_ssize_t i = 0; kwargs != NULL && i < nkw; i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GetItem(kwnames, i), args[nargs + i]) < 0)
                Py_CLEAR(kwargs);
        }
        if (kwargs == NULL) goto done;
    }
    result = PyObject_Call(slow, tuple, kwargs);
done:
    Py_DECREF(tuple);
    Py_XDECREF(kwargs);
    return result;
}

/* The Python put, called with the fast path's arguments as given. */
static PyObject *Reader_put_slow(Reader *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames) {
    return Reader_call_slow(self->put_slow, args, nargs, kwnames);
}

/* `n` handles for the puts of one call, taken (the lock held): the first. */
static unsigned long long Reader_take_handles(Reader *self, unsigned long long n) {
    unsigned long long first = self->next_handle;
    self->next_handle += n;
    return first;
}

/* The lock-held part of put_plain. The put's result (as Reader.put's, with `kept` as
   Reader_put_in's), or NULL. */
static PyObject *Reader_put_locked(Reader *self, PyObject *key, PyObject *value,
                                   unsigned long long weight, Py_ssize_t key_len,
                                   PyObject **kept) {
    unsigned long long handle = Reader_take_handles(self, 1);
    PyObject *deadline = Reader_default_deadline(self);
    if (deadline == NULL) return NULL;
    PyObject *result =
        Reader_put_in(self, key, value, weight, self->default_ttl_ns, deadline, handle, key_len,
                      kept);
    if (result != NULL && PyLong_Check(result)) {
        unsigned long long code = PyLong_AsUnsignedLongLong(result);
        if (code != 0) { /* failed, or removed several entries: Python finishes */
            PyObject *h = PyLong_FromUnsignedLongLong(handle);
            PyObject *removed =
                h == NULL ? NULL
                          : PyObject_CallFunctionObjArgs(self->stored, result, key, value, h,
                                                         deadline, NULL);
            Py_XDECREF(h);
            if (removed == NULL) {
                Py_CLEAR(result);
            } else {
                PyObject *pair = PyTuple_Pack(2, result, removed);
                Py_DECREF(removed);
                SET_REF(result, pair);
            }
        }
    }
    Py_DECREF(deadline);
    return result;
}

PyDoc_STRVAR(Reader_put_plain_doc,
             "put_plain(key, value, ttl=None)\n--\n\n"
             "The cache's put, in one C call when it is the common one: a ``bytes`` key of the "
             "stored length, no TTL of its own, the cache open and its lock free (this call "
             "holds the GIL throughout, so it takes the lock at once). Anything else goes to the "
             "Python put.");

static PyObject *Reader_put_plain(Reader *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames) {
    if (self->plain_mode == 0 || nargs != 2 || kwnames != NULL || self->closed ||
        !PyBytes_CheckExact(args[0]))
        return Reader_put_slow(self, args, nargs, kwnames);
    PyObject *key = args[0], *value = args[1];
    Py_ssize_t key_len = PyBytes_Size(key);
    unsigned long long weight = 1;
    if (self->plain_mode == PLAIN_BYTES) {
        if (!PyBytes_CheckExact(value)) return Reader_put_slow(self, args, nargs, kwnames);
        weight = (unsigned long long)key_len + (unsigned long long)PyBytes_Size(value);
    }
    if (key_len != self->key_len || weight > MAX_ENTRY_SIZE)
        return Reader_put_slow(self, args, nargs, kwnames);
    if (!Reader_try_lock(self)) /* another thread has it */
        return Reader_put_slow(self, args, nargs, kwnames);
    PyObject *kept = NULL; /* the value of the entry evicted or replaced, if any */
    PyObject *result = Reader_put_locked(self, key, value, weight, key_len, &kept);
    /* A failure half way (a call into Python under the lock): the next holder mends. */
    if (result == NULL) CacheLock_cut_short((CacheLock *)self->cache_lock);
    /* Release whatever happened; then the evicted value (its finalizer may use the cache). */
    if (Reader_unlock(self) < 0) {
        Py_XDECREF(result);
        Py_XDECREF(kept);
        return NULL;
    }
    Py_XDECREF(kept);
    if (result == NULL) return NULL;
    if (result == Py_None) { /* nothing done: a buffered key the C path cannot pack */
        Py_DECREF(result);
        return Reader_put_slow(self, args, nargs, kwnames);
    }
    if (PyTuple_Check(result) && PyTuple_Size(result) == 2) { /* (code, removed) */
        PyObject *done = PyObject_CallFunctionObjArgs(self->finish, PyTuple_GetItem(result, 0),
                                                      PyTuple_GetItem(result, 1), NULL);
        Py_DECREF(result);
        if (done == NULL) return NULL;
        Py_DECREF(done);
        Py_RETURN_NONE;
    }
    Py_DECREF(result); /* 0, or the one entry evicted or replaced: no listener to tell */
    Py_RETURN_NONE;
}

/* The lock-held part of put_many_plain: 1 when the entries were stored (or the call failed and
   *code says why), 0 when Python must do it (nothing changed), -1 on an error. */
static int Reader_put_many_locked(Reader *self, PyObject *items, Py_ssize_t n,
                                  const uint64_t *weights, uint64_t *code) {
    if (self->closed || n <= 0) return 0; /* (no batch here is empty: the bound is for gcc) */
    Py_ssize_t r = PyList_Size(self->reads), m = PyList_Size(self->misses);
    if (r || m) { /* the reads buffered before these puts, replayed first */
        int packed = Reader_pack(self, r, self->key_len);
        if (packed <= 0) return packed;
        uint64_t replayed =
            Reader_replay_scratch(self, (size_t)self->key_len, (size_t)r, (uint64_t)m);
        if (Reader_consume(self, r, m) < 0) return -1;
        if (replayed & (AFCPY_ERR | AFCPY_MANY | AFCPY_ONE)) {
            *code = replayed; /* a replay removes nothing: this is an error; Python raises it */
            return 1;
        }
    }
    size_t key_len = (size_t)self->key_len;
    if (Reader_grow_scratch(self, (size_t)n * key_len) < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyTuple_GetItem(PyList_GetItem(items, i), 0);
        memcpy(self->scratch + (size_t)i * key_len, PyBytes_AsString(key), key_len);
    }
    unsigned long long first = Reader_take_handles(self, (unsigned long long)n);
    /* The handles, the key lengths and flags of entries removed again, in one block.
       (PyMem_Calloc is not in the stable ABI of 3.8 and 3.9.) */
    size_t block = (size_t)n * (sizeof(uint64_t) + sizeof(size_t) + sizeof(char));
    uint64_t *handles = (uint64_t *)PyMem_Malloc(block);
    if (handles == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t *key_lens = (size_t *)(handles + n);
    char *gone = (char *)(key_lens + n);
    memset(gone, 0, (size_t)n);
    for (Py_ssize_t i = 0; i < n; i++) {
        handles[i] = first + (uint64_t)i;
        key_lens[i] = key_len;
    }
    PyObject **touched = NULL; /* the keys the mirror changes (below) */
    Py_ssize_t older = 0;      /* touched[0..older]: new references */
    PyObject *deadline = Reader_default_deadline(self);
    if (deadline == NULL) goto fail;
    /* The engine's work (most of a batch's), with the GIL released for a large batch
       (release_gil_for): another thread runs Python code meanwhile. The buffers are this
       call's, or the scratch, used only under the lock. */
    void *cache = self->cache;
    afcpy_put_many_fn put_many = self->put_many;
    const char *keys = self->scratch;
    uint64_t ttl_ns = self->default_ttl_ns;
    PyThreadState *released = release_gil_for((size_t)n);
    uint64_t result = put_many(cache, keys, key_lens, handles, weights, (size_t)n, ttl_ns);
    retake_gil(released);
    *code = result;
    /* The mirror follows the engine (_native.Cache._put_many; no listener to tell). Entries
       of older calls that this one removed leave the mirror first, then this batch's entries
       are stored in order (so a key given twice ends with its last entry), except those a
       later entry of the batch replaced or evicted. */
    /* The keys the mirror changes: those of older entries removed, then this batch's. */
    size_t removed_n = (result & (AFCPY_ONE | AFCPY_MANY)) ? self->removals().n : 0;
    touched = (PyObject **)PyMem_Malloc(sizeof(PyObject *) * (removed_n + (size_t)n + 1));
    if (touched == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if (removed_n) {
        afcpy_removals_list removed = self->removals();
        const char *at = removed.keys;
        for (size_t j = 0; j < removed.n; j++) {
            uint64_t h = removed.items[j] >> 3;
            size_t len = removed.key_lens[j];
            if (h >= first && h - first < (uint64_t)n) {
                gone[h - first] = 1;
            } else {
                PyObject *gone_key = PyBytes_FromStringAndSize(at, (Py_ssize_t)len);
                if (gone_key == NULL) goto fail;
                touched[older++] = gone_key;
            }
            at += len;
        }
    }
    Py_ssize_t total = older;
    if (!(result & AFCPY_ERR))
        for (Py_ssize_t i = 0; i < n; i++)
            touched[total++] = PyTuple_GetItem(PyList_GetItem(items, i), 0);
    if (Mirror_warm_many((Mirror *)self->mirror, touched, total) < 0) goto fail;
    for (Py_ssize_t j = 0; j < older; j++)
        if (Reader_drop(self, touched[j]) < 0) goto fail;
    if (!(result & AFCPY_ERR)) {
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyList_GetItem(items, i);
            PyObject *key = PyTuple_GetItem(item, 0);
            if ((gone[i] ? Reader_drop(self, key)
                         : Reader_store(self, key, PyTuple_GetItem(item, 1), deadline)) < 0)
                goto fail;
        }
    }
    for (Py_ssize_t j = 0; j < older; j++) Py_DECREF(touched[j]);
    PyMem_Free(touched);
    Py_DECREF(deadline);
    PyMem_Free(handles);
    return 1;
fail:
    if (touched != NULL) {
        for (Py_ssize_t j = 0; j < older; j++) Py_DECREF(touched[j]);
        PyMem_Free(touched);
    }
    Py_XDECREF(deadline);
    PyMem_Free(handles);
    return -1;
}

PyDoc_STRVAR(Reader_put_many_plain_doc,
             "put_many_plain(items: list) -> bool\n--\n\n"
             "Cache.put_many in one C call when it is the common one (enable_put_many): a list "
             "of (key, value) tuples, every key ``bytes`` of the stored length, every value "
             "storable as put_plain stores it, the cache open. The engine's work runs with the "
             "GIL released if the batch is large. False (nothing done) when Python must do "
             "it.");

static PyObject *Reader_put_many_plain(Reader *self, PyObject *items) {
    if (self->plain_mode == 0 || self->put_many == NULL || self->closed || self->key_len < 0 ||
        !PyList_CheckExact(items))
        Py_RETURN_FALSE;
    Py_ssize_t n = PyList_Size(items);
    if (n == 0) Py_RETURN_FALSE;
    uint64_t *weights = (uint64_t *)PyMem_Malloc((size_t)n * sizeof(uint64_t));
    if (weights == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GetItem(items, i);
        if (!PyTuple_CheckExact(item) || PyTuple_Size(item) != 2) goto python;
        PyObject *key = PyTuple_GetItem(item, 0), *value = PyTuple_GetItem(item, 1);
        if (!PyBytes_CheckExact(key) || PyBytes_Size(key) != self->key_len) goto python;
        weights[i] = 1;
        if (self->plain_mode == PLAIN_BYTES) {
            if (!PyBytes_CheckExact(value)) goto python;
            weights[i] = (uint64_t)self->key_len + (uint64_t)PyBytes_Size(value);
            if (weights[i] > MAX_ENTRY_SIZE) goto python;
        }
    }
    Reader_lock(self);
    if (((CacheLock *)self->cache_lock)->dirty) { /* the Python way mends the tables first */
        if (Reader_unlock(self) < 0) goto error;
        goto python;
    }
    uint64_t code = 0;
    int done = Reader_put_many_locked(self, items, n, weights, &code);
    if (done < 0) CacheLock_cut_short((CacheLock *)self->cache_lock);
    if (Reader_unlock(self) < 0 || done < 0) goto error;
    PyMem_Free(weights);
    if (done == 0) Py_RETURN_FALSE;
    if (code & AFCPY_ERR) { /* the entries were not stored: Python raises the call's error */
        PyObject *empty = PyList_New(0);
        PyObject *c = PyLong_FromUnsignedLongLong(code);
        PyObject *raised = empty == NULL || c == NULL
                               ? NULL
                               : PyObject_CallFunctionObjArgs(self->finish, c, empty, NULL);
        Py_XDECREF(empty);
        Py_XDECREF(c);
        if (raised == NULL) return NULL;
        Py_DECREF(raised);
    }
    Py_RETURN_TRUE;
python:
    PyMem_Free(weights);
    Py_RETURN_FALSE;
error:
    PyMem_Free(weights);
    return NULL;
}

PyDoc_STRVAR(Reader_enable_put_many_doc,
             "enable_put_many(put_many, put_many_slow)\n--\n\n"
             "Turns on put_many_plain and put_many (after enable_put): the address of the cffi "
             "module's afcpy_put_many, and the Python put_many, callable(items, ttl=None).");

static PyObject *Reader_enable_put_many(Reader *self, PyObject *args) {
    unsigned long long put_many;
    PyObject *put_many_slow;
    if (!PyArg_ParseTuple(args, "KO:enable_put_many", &put_many, &put_many_slow)) return NULL;
    if (self->plain_mode == 0 || put_many == 0) {
        PyErr_SetString(PyExc_ValueError,
                        "enable_put_many: needs enable_put first and a function address");
        return NULL;
    }
    Py_INCREF(put_many_slow);
    SET_REF(self->put_many_slow, put_many_slow);
    self->put_many = (afcpy_put_many_fn)(uintptr_t)put_many;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Reader_put_many_doc,
             "put_many(items, ttl=None)\n--\n\n"
             "Cache.put_many as one C call (enable_put_many): a list of (key, value) tuples is "
             "copied (another thread may change the caller's list while the engine works "
             "without the GIL, as it does on a large batch) and stored by put_many_plain; "
             "anything else, or a list put_many_plain leaves to Python, goes to the Python "
             "put_many as given.");

static PyObject *Reader_put_many(Reader *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames) {
    if (self->put_many_slow == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "put_many: enable_put_many was not called");
        return NULL;
    }
    if (nargs == 1 && kwnames == NULL && PyList_CheckExact(args[0]) && PyList_Size(args[0])) {
        PyObject *items = PyList_GetSlice(args[0], 0, PyList_Size(args[0]));
        if (items == NULL) return NULL;
        PyObject *done = Reader_put_many_plain(self, items);
        Py_DECREF(items);
        if (done == NULL) return NULL;
        Py_DECREF(done);
        if (done == Py_True) Py_RETURN_NONE;
    }
    return Reader_call_slow(self->put_many_slow, args, nargs, kwnames);
}

/* Keeps the cache's lock (for the calls that take it themselves): a CacheLock, which they take
   without calls (TypeError otherwise). */
static int Reader_take_lock(Reader *self, PyObject *lock) {
    if (!CacheLock_check(lock)) {
        PyErr_SetString(PyExc_TypeError, "the cache's lock must be a CacheLock");
        return -1;
    }
    Py_INCREF(lock);
    SET_REF(self->cache_lock, lock);
    return 0;
}

static PyObject *Reader_set_lock(Reader *self, PyObject *lock) {
    if (Reader_take_lock(self, lock) < 0) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Reader_enable_put_doc,
             "enable_put(lock, put_slow, stored, finish, plain_mode, default_ttl_ns)\n--\n"
             "\n"
             "Turns on put_plain for a cache without a listener or a byte bound: "
             "``plain_mode`` 1 stores any object with weight 1, 2 exact ``bytes`` weighing their "
             "length plus the key's.");

static PyObject *Reader_enable_put(Reader *self, PyObject *args) {
    PyObject *lock, *put_slow, *stored, *finish;
    int plain_mode;
    unsigned long long ttl_ns;
    if (!PyArg_ParseTuple(args, "OOOOiK:enable_put", &lock, &put_slow, &stored, &finish,
                          &plain_mode, &ttl_ns))
        return NULL;
    if (plain_mode != PLAIN_OBJECTS && plain_mode != PLAIN_BYTES) {
        PyErr_SetString(PyExc_ValueError, "enable_put: plain_mode must be 1 or 2");
        return NULL;
    }
    if (Reader_take_lock(self, lock) < 0) return NULL;
    Py_INCREF(put_slow);
    Py_INCREF(stored);
    Py_INCREF(finish);
    SET_REF(self->put_slow, put_slow);
    SET_REF(self->stored, stored);
    SET_REF(self->finish, finish);
    self->plain_mode = plain_mode;
    self->default_ttl_ns = ttl_ns;
    Py_RETURN_NONE;
}

static PyObject *Reader_set_key_len(Reader *self, PyObject *arg) {
    Py_ssize_t key_len = PyLong_AsSsize_t(arg);
    if (key_len == -1 && PyErr_Occurred()) return NULL;
    self->key_len = key_len;
    Py_RETURN_NONE;
}

static PyObject *Reader_lower_horizon(Reader *self, PyObject *arg) {
    unsigned long long deadline = PyLong_AsUnsignedLongLong(arg);
    if (deadline == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    if (deadline < self->horizon) self->horizon = deadline;
    Py_RETURN_NONE;
}

static PyObject *Reader_get_horizon(Reader *self, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->horizon);
}

static PyObject *Reader_set_closed(Reader *self, PyObject *unused) {
    (void)unused;
    self->closed = 1;
    Py_RETURN_NONE;
}

static PyMethodDef Reader_methods[] = {
    {"get", (PyCFunction)(void (*)(void))Reader_get, METH_FASTCALL | METH_KEYWORDS,
     Reader_get_doc},
    {"getitem", (PyCFunction)Reader_getitem, METH_O, Reader_getitem_doc},
    {"get_many", (PyCFunction)Reader_get_many, METH_VARARGS, Reader_get_many_doc},
    {"get_many_entry", (PyCFunction)(void (*)(void))Reader_get_many_entry,
     METH_FASTCALL | METH_KEYWORDS, Reader_get_many_entry_doc},
    {"enable_get_many", (PyCFunction)Reader_enable_get_many, METH_O,
     "enable_get_many(get_many_slow)\n--\n\nTurns on get_many_entry: the Python get_many, "
     "callable(keys, default=None), for what it does not serve."},
    {"put_many", (PyCFunction)(void (*)(void))Reader_put_many, METH_FASTCALL | METH_KEYWORDS,
     Reader_put_many_doc},
    {"put", (PyCFunction)Reader_put, METH_VARARGS, Reader_put_doc},
    {"put_plain", (PyCFunction)(void (*)(void))Reader_put_plain, METH_FASTCALL | METH_KEYWORDS,
     Reader_put_plain_doc},
    {"enable_put", (PyCFunction)Reader_enable_put, METH_VARARGS, Reader_enable_put_doc},
    {"put_many_plain", (PyCFunction)Reader_put_many_plain, METH_O, Reader_put_many_plain_doc},
    {"enable_put_many", (PyCFunction)Reader_enable_put_many, METH_VARARGS,
     Reader_enable_put_many_doc},
    {"set_lock", (PyCFunction)Reader_set_lock, METH_O,
     "set_lock(lock)\n--\n\nThe cache's lock: get_many replays its reads at once when it is "
     "free."},
    {"replay", (PyCFunction)Reader_replay, METH_O, Reader_replay_doc},
    {"set_key_len", (PyCFunction)Reader_set_key_len, METH_O,
     "set_key_len(n)\n--\n\nThe length every stored key has (CacheBase._key_len)."},
    {"lower_horizon", (PyCFunction)Reader_lower_horizon, METH_O,
     "lower_horizon(deadline)\n--\n\nAn entry with this deadline enters the mirror: the "
     "horizon moves back to it if it is later."},
    {"set_closed", (PyCFunction)Reader_set_closed, METH_NOARGS,
     "set_closed()\n--\n\nThe cache is closed: misses go to Python, which raises."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Reader_getset[] = {
    {"horizon", (getter)Reader_get_horizon, NULL,
     "No deadline in the mirror is earlier (2**64 - 1: none has one).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Reader_slots[] = {
    {Py_tp_getset, Reader_getset},
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
    if (Mirror_add_type(module) < 0 || CacheLock_add_type(module) < 0 ||
        SnapshotRows_add_function(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    if (add_kept_type(module, &TimedEntry_spec, "TimedEntry", &TimedEntryType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
#ifdef HAVE_TSC_BOUND
    tsc_usable = clock_source_is_tsc();
#endif
    return module;
}

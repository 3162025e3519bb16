"""Builds ``alphaforge_cache._alphaforge_cache_cffi``: a cffi API-mode extension linked with the
Rust engine's static library (``target/release/libalphaforge_cache.a``).

The cdef below is written by hand (cffi cannot parse the cbindgen header's includes and macros):
it declares only what the Python backend uses, and API mode compiles it against the real
``include/alphaforge_cache.h``, so the C compiler checks that every declaration matches.

Every Python operation crosses the boundary once: the ``afcpy_*`` helpers below take keys as
``const char *`` (so Python ``bytes`` pass without conversion), return small codes or structs by
value, and write variable-length results into a per-thread C buffer that Python reads directly.

Run as a script (``python _ffi_build.py``) to build in place; ``setup.py`` uses ``ffibuilder``
through ``cffi_modules``. ``AFC_STATIC_LIB`` overrides the static library's path.
"""

from __future__ import annotations

import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
INCLUDE_DIR = os.path.join(ROOT, "include")


def static_library() -> str:
    """The path of the engine's static library (``AFC_STATIC_LIB`` overrides it)."""
    explicit = os.environ.get("AFC_STATIC_LIB")
    if explicit:
        return explicit
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "release", "libalphaforge_cache.a")


CDEF = r"""
typedef struct afc_clock afc_clock;
typedef struct afcpy_cache afcpy_cache;

typedef struct {
    uint64_t hits; uint64_t misses; uint64_t inserts; uint64_t updates; uint64_t evictions;
    uint64_t expirations; uint64_t removals; uint64_t entries; uint64_t weight;
} afc_stats;

/* code: 0 on success; AFCPY_REL set when entries left the cache during the call (their
   notifications wait in Python's per-thread pending list); AFCPY_ERR | status on failure. */
typedef struct {
    uint64_t code;
    uint64_t value;
    const char *data;
    size_t size;
} afcpy_res;

#define AFCPY_ERR ...
#define AFCPY_REL ...
#define AFCPY_CLOSED ...
#define AFC_NOT_FOUND ...
#define AFC_INVALID_ARGUMENT ...
#define AFC_INVALID_CONFIG ...
#define AFC_ENTRY_TOO_HEAVY ...
#define AFC_ENTRY_TOO_LARGE ...
#define AFC_PANIC ...
#define AFC_ABI_VERSION ...

const char *afc_last_error(void);
const char *afc_status_name(int32_t status);
const char *afc_version(void);
uint32_t afc_abi_version(void);

int afc_clock_new(uint64_t start_ns, afc_clock **out);
void afc_clock_free(afc_clock *clock);
int afc_clock_set(const afc_clock *clock, uint64_t now_ns);
int afc_clock_advance(const afc_clock *clock, uint64_t by_ns);
int afc_clock_now(const afc_clock *clock, uint64_t *out_ns);

/* Told from the engine's callbacks (GIL taken by cffi): they only record. */
extern "Python" void afcpy_py_release(uint64_t tag, const char *key, size_t key_len,
                                      uint64_t handle, int cause);
extern "Python" void afcpy_py_listen(uint64_t tag, const char *key, size_t key_len,
                                     const char *value, size_t value_len, int cause);

int afcpy_open(uint64_t max_entries, uint64_t max_bytes, uint64_t ttl_ns, uint32_t shards,
               afc_clock *clock, int kind, uint64_t tag, afcpy_cache **out);
void afcpy_close(afcpy_cache *c);
void afcpy_destroy(afcpy_cache *c);

afcpy_res afcpy_get(afcpy_cache *c, const char *key, size_t key_len, int touch);
uint64_t afcpy_get_handle(afcpy_cache *c, const char *key, size_t key_len, int touch);
uint64_t afcpy_contains(afcpy_cache *c, const char *key, size_t key_len);
uint64_t afcpy_put(afcpy_cache *c, const char *key, size_t key_len, const char *value,
                   size_t value_len, uint64_t ttl_ns);
uint64_t afcpy_put_handle(afcpy_cache *c, const char *key, size_t key_len, uint64_t handle,
                          uint64_t weight, uint64_t ttl_ns);
afcpy_res afcpy_remove(afcpy_cache *c, const char *key, size_t key_len);
afcpy_res afcpy_remaining_ttl(afcpy_cache *c, const char *key, size_t key_len);
afcpy_res afcpy_get_many(afcpy_cache *c, const char *keys, const size_t *key_lens, size_t n);
afcpy_res afcpy_get_many_handles(afcpy_cache *c, const char *keys, const size_t *key_lens,
                                 size_t n);
uint64_t afcpy_put_many(afcpy_cache *c, const char *keys, const size_t *key_lens,
                        const char *values, const size_t *value_lens, size_t n, uint64_t ttl_ns);
uint64_t afcpy_put_many_handles(afcpy_cache *c, const char *keys, const size_t *key_lens,
                                const uint64_t *handles, const uint64_t *weights, size_t n,
                                uint64_t ttl_ns);
afcpy_res afcpy_snapshot(afcpy_cache *c);
afcpy_res afcpy_expire_keys(afcpy_cache *c);
uint64_t afcpy_clear(afcpy_cache *c);
afcpy_res afcpy_len(afcpy_cache *c);
afcpy_res afcpy_weight(afcpy_cache *c);
uint64_t afcpy_stats(afcpy_cache *c, afc_stats *out);
uint64_t afcpy_reset_stats(afcpy_cache *c);
uint64_t afcpy_resize(afcpy_cache *c, uint64_t max_entries);
uint64_t afcpy_set_max_bytes(afcpy_cache *c, uint64_t max_bytes);
"""

SOURCE = r"""
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "alphaforge_cache.h"

#define AFCPY_ERR ((uint64_t)1 << 63)
#define AFCPY_REL ((uint64_t)1 << 62)
#define AFCPY_CLOSED 200 /* a pseudo-status: the cache was closed */

/* The engine's cache plus what makes close() safe while other threads are inside a call
   (cffi releases the GIL during calls): close waits until no call is in flight. */
typedef struct afcpy_cache {
    afc_cache *cache;
    uint64_t tag;           /* tells Python which cache a recorded removal belongs to */
    atomic_long users;      /* calls in flight */
    atomic_int closed;
    atomic_int quiet;       /* freed by the garbage collector: tell Python nothing */
} afcpy_cache;

typedef struct {
    uint64_t code;
    uint64_t value;
    const char *data;
    size_t size;
} afcpy_res;

static void afcpy_py_release(uint64_t tag, const char *key, size_t key_len, uint64_t handle,
                             int cause);
static void afcpy_py_listen(uint64_t tag, const char *key, size_t key_len, const char *value,
                            size_t value_len, int cause);

/* Per thread: did entries leave during this call, and a growable output buffer. */
static _Thread_local int afcpy_released;
static _Thread_local char *afcpy_buf;
static _Thread_local size_t afcpy_cap;
static pthread_key_t afcpy_buf_key;
static pthread_once_t afcpy_buf_once = PTHREAD_ONCE_INIT;

static void afcpy_buf_key_init(void) { pthread_key_create(&afcpy_buf_key, free); }

static char *afcpy_reserve(size_t need) {
    if (need <= afcpy_cap && afcpy_buf != NULL) return afcpy_buf;
    size_t cap = afcpy_cap ? afcpy_cap : 4096;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    char *grown = (char *)realloc(afcpy_buf, cap);
    if (grown == NULL) return NULL;
    pthread_once(&afcpy_buf_once, afcpy_buf_key_init);
    pthread_setspecific(afcpy_buf_key, grown); /* freed when the thread exits */
    afcpy_buf = grown;
    afcpy_cap = cap;
    return grown;
}

static void afcpy_release_tramp(void *user_data, const uint8_t *key, size_t key_len,
                                uint64_t handle, afc_removal_cause cause) {
    afcpy_cache *c = (afcpy_cache *)user_data;
    if (atomic_load(&c->quiet)) return;
    afcpy_released = 1;
    afcpy_py_release(c->tag, (const char *)key, key_len, handle, (int)cause);
}

static void afcpy_listen_tramp(void *user_data, const uint8_t *key, size_t key_len,
                               const uint8_t *value, size_t value_len, afc_removal_cause cause) {
    afcpy_cache *c = (afcpy_cache *)user_data;
    if (atomic_load(&c->quiet)) return;
    afcpy_released = 1;
    afcpy_py_listen(c->tag, (const char *)key, key_len, (const char *)value, value_len,
                    (int)cause);
}

static inline afc_cache *afcpy_enter(afcpy_cache *c) {
    atomic_fetch_add(&c->users, 1);
    if (atomic_load(&c->closed)) {
        atomic_fetch_sub(&c->users, 1);
        return NULL;
    }
    afcpy_released = 0;
    return c->cache;
}

static inline uint64_t afcpy_leave(afcpy_cache *c, afc_status status) {
    atomic_fetch_sub(&c->users, 1);
    uint64_t flags = afcpy_released ? AFCPY_REL : 0;
    if (status == AFC_OK || status == AFC_NOT_FOUND) return flags | (uint64_t)status;
    return flags | AFCPY_ERR | (uint64_t)(uint32_t)status;
}

#define AFCPY_CLOSED_CODE (AFCPY_ERR | AFCPY_CLOSED)

static int afcpy_open(uint64_t max_entries, uint64_t max_bytes, uint64_t ttl_ns, uint32_t shards,
                      afc_clock *clock, int kind, uint64_t tag, afcpy_cache **out) {
    *out = NULL;
    afcpy_cache *c = (afcpy_cache *)calloc(1, sizeof(afcpy_cache));
    if (c == NULL) return AFC_PANIC;
    c->tag = tag;
    afc_config *config = NULL;
    afc_status s = afc_config_new(max_entries, &config);
    if (s == AFC_OK && max_bytes) s = afc_config_set_max_bytes(config, max_bytes);
    if (s == AFC_OK && ttl_ns) s = afc_config_set_default_ttl_ns(config, ttl_ns);
    if (s == AFC_OK && shards) s = afc_config_set_shards(config, shards);
    if (s == AFC_OK && clock != NULL) s = afc_config_use_clock(config, clock);
    if (s == AFC_OK && kind == 1) s = afc_config_set_listener(config, afcpy_listen_tramp, c);
    if (s == AFC_OK && kind == 2) s = afc_config_set_handle_release(config, afcpy_release_tramp, c);
    if (s == AFC_OK) s = afc_cache_new(config, &c->cache);
    afc_config_free(config);
    if (s != AFC_OK) {
        free(c);
        return s;
    }
    *out = c;
    return AFC_OK;
}

/* Frees the engine's cache once (the remaining entries are reported as cleared, or expired),
   after every call in flight on other threads has returned. */
static void afcpy_close(afcpy_cache *c) {
    int open = 0;
    if (!atomic_compare_exchange_strong(&c->closed, &open, 1)) return;
    while (atomic_load(&c->users) != 0) sched_yield();
    afcpy_released = 0;
    afc_cache_clear(c->cache); /* reports expired entries as expired, as the fallback does */
    afc_cache_free(c->cache);
    c->cache = NULL;
}

/* The garbage collector's end of a cache: closes it quietly (no Python callback), frees it. */
static void afcpy_destroy(afcpy_cache *c) {
    if (c == NULL) return;
    atomic_store(&c->quiet, 1);
    afcpy_close(c);
    free(c);
}

static afcpy_res afcpy_get(afcpy_cache *c, const char *key, size_t key_len, int touch) {
    afcpy_res r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) { r.code = AFCPY_CLOSED_CODE; return r; }
    char *buf = afcpy_reserve(1);
    if (buf == NULL) { r.code = afcpy_leave(c, AFC_PANIC); return r; }
    size_t len = 0;
    afc_status s = touch
        ? afc_cache_get(cache, (const uint8_t *)key, key_len, (uint8_t *)buf, afcpy_cap, &len)
        : afc_cache_peek(cache, (const uint8_t *)key, key_len, (uint8_t *)buf, afcpy_cap, &len);
    if (s == AFC_BUFFER_TOO_SMALL) {
        /* The get counted its hit: read again with peek, which counts nothing. */
        buf = afcpy_reserve(len);
        if (buf == NULL) { r.code = afcpy_leave(c, AFC_PANIC); return r; }
        s = afc_cache_peek(cache, (const uint8_t *)key, key_len, (uint8_t *)buf, afcpy_cap, &len);
        if (s == AFC_BUFFER_TOO_SMALL) s = AFC_NOT_FOUND; /* replaced meanwhile: give up */
    }
    r.code = afcpy_leave(c, s);
    r.data = buf;
    r.size = len;
    return r;
}

/* 0: a miss; below AFCPY_REL: the handle; with AFCPY_REL: entries left too (handle in the low
   bits); with AFCPY_ERR: an error (status in the low bits). Handles are below 2**62. */
static uint64_t afcpy_get_handle(afcpy_cache *c, const char *key, size_t key_len, int touch) {
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) return AFCPY_CLOSED_CODE;
    uint64_t handle = 0;
    afc_status s = touch ? afc_cache_get_handle(cache, (const uint8_t *)key, key_len, &handle)
                         : afc_cache_peek_handle(cache, (const uint8_t *)key, key_len, &handle);
    uint64_t code = afcpy_leave(c, s);
    if (code & AFCPY_ERR) return code;
    return (code & AFCPY_REL) | (s == AFC_OK ? handle : 0);
}

static uint64_t afcpy_contains(afcpy_cache *c, const char *key, size_t key_len) {
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) return AFCPY_CLOSED_CODE;
    bool found = false;
    afc_status s = afc_cache_contains(cache, (const uint8_t *)key, key_len, &found);
    uint64_t code = afcpy_leave(c, s);
    if (code & AFCPY_ERR) return code;
    return (code & AFCPY_REL) | (found ? 1 : 0);
}

static uint64_t afcpy_put(afcpy_cache *c, const char *key, size_t key_len, const char *value,
                          size_t value_len, uint64_t ttl_ns) {
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) return AFCPY_CLOSED_CODE;
    return afcpy_leave(c, afc_cache_put(cache, (const uint8_t *)key, key_len,
                                        (const uint8_t *)value, value_len, ttl_ns));
}

static uint64_t afcpy_put_handle(afcpy_cache *c, const char *key, size_t key_len,
                                 uint64_t handle, uint64_t weight, uint64_t ttl_ns) {
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) return AFCPY_CLOSED_CODE;
    return afcpy_leave(c, afc_cache_put_handle(cache, (const uint8_t *)key, key_len, handle,
                                               weight, ttl_ns));
}

/* A byte cache's value is read (peek) then removed; a handle cache's removed handle reaches
   Python through the release callback. */
static afcpy_res afcpy_remove(afcpy_cache *c, const char *key, size_t key_len) {
    afcpy_res r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) { r.code = AFCPY_CLOSED_CODE; return r; }
    size_t len = 0;
    char *buf = afcpy_reserve(1);
    if (buf == NULL) { r.code = afcpy_leave(c, AFC_PANIC); return r; }
    afc_status s = afc_cache_peek(cache, (const uint8_t *)key, key_len, (uint8_t *)buf,
                                  afcpy_cap, &len);
    if (s == AFC_BUFFER_TOO_SMALL) {
        buf = afcpy_reserve(len);
        if (buf == NULL) { r.code = afcpy_leave(c, AFC_PANIC); return r; }
        s = afc_cache_peek(cache, (const uint8_t *)key, key_len, (uint8_t *)buf, afcpy_cap, &len);
    }
    if (s == AFC_WRONG_VALUE_KIND) s = AFC_OK; /* a handle cache: no bytes to read */
    if (s == AFC_OK || s == AFC_BUFFER_TOO_SMALL)
        s = afc_cache_remove(cache, (const uint8_t *)key, key_len);
    r.code = afcpy_leave(c, s);
    r.data = buf;
    r.size = len;
    return r;
}

static afcpy_res afcpy_remaining_ttl(afcpy_cache *c, const char *key, size_t key_len) {
    afcpy_res r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) { r.code = AFCPY_CLOSED_CODE; return r; }
    r.code = afcpy_leave(
        c, afc_cache_remaining_ttl(cache, (const uint8_t *)key, key_len, &r.value));
    return r;
}

/* Output in the thread's buffer: value_offsets[n], value_lens[n], then the values. */
static afcpy_res afcpy_get_many(afcpy_cache *c, const char *keys, const size_t *key_lens,
                                size_t n) {
    afcpy_res r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) { r.code = AFCPY_CLOSED_CODE; return r; }
    size_t head = 2 * n * sizeof(size_t);
    char *buf = afcpy_reserve(head + 4096);
    if (buf == NULL) { r.code = afcpy_leave(c, AFC_PANIC); return r; }
    size_t *offsets = (size_t *)buf, *lens = offsets + n, needed = 0;
    afc_status s = afc_cache_get_many(cache, (const uint8_t *)keys, key_lens, n,
                                      (uint8_t *)buf + head, afcpy_cap - head, offsets, lens,
                                      &needed);
    if (s == AFC_BUFFER_TOO_SMALL) {
        /* Every get was counted: read the values that did not fit with peek. */
        size_t used = 0;
        for (size_t i = 0; i < n; i++)
            if (offsets[i] != AFC_MISSING && offsets[i] + lens[i] > used)
                used = offsets[i] + lens[i];
        size_t start = 0;
        for (size_t i = 0; i < n; i++) {
            if (offsets[i] == AFC_MISSING && lens[i] != AFC_MISSING) {
                size_t at = head + used;
                buf = afcpy_reserve(at + lens[i]);
                if (buf == NULL) { r.code = afcpy_leave(c, AFC_PANIC); return r; }
                offsets = (size_t *)buf;
                lens = offsets + n;
                size_t len = 0;
                afc_status p = afc_cache_peek(cache, (const uint8_t *)keys + start, key_lens[i],
                                              (uint8_t *)buf + at, lens[i], &len);
                if (p == AFC_OK) {
                    offsets[i] = used;
                    lens[i] = len;
                    used += len;
                } else {
                    lens[i] = AFC_MISSING; /* gone or replaced meanwhile */
                }
            }
            start += key_lens[i];
        }
        s = AFC_OK;
    }
    r.code = afcpy_leave(c, s);
    r.data = buf;
    r.size = n;
    return r;
}

/* Output in the thread's buffer: handles[n] then found[n]. */
static afcpy_res afcpy_get_many_handles(afcpy_cache *c, const char *keys, const size_t *key_lens,
                                        size_t n) {
    afcpy_res r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) { r.code = AFCPY_CLOSED_CODE; return r; }
    char *buf = afcpy_reserve(n * 9 + 8);
    if (buf == NULL) { r.code = afcpy_leave(c, AFC_PANIC); return r; }
    afc_status s = afc_cache_get_many_handles(cache, (const uint8_t *)keys, key_lens, n,
                                              (uint64_t *)buf, (uint8_t *)buf + n * 8);
    r.code = afcpy_leave(c, s);
    r.data = buf;
    r.size = n;
    return r;
}

static uint64_t afcpy_put_many(afcpy_cache *c, const char *keys, const size_t *key_lens,
                               const char *values, const size_t *value_lens, size_t n,
                               uint64_t ttl_ns) {
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) return AFCPY_CLOSED_CODE;
    return afcpy_leave(c, afc_cache_put_many(cache, (const uint8_t *)keys, key_lens,
                                             (const uint8_t *)values, value_lens, n, ttl_ns));
}

static uint64_t afcpy_put_many_handles(afcpy_cache *c, const char *keys, const size_t *key_lens,
                                       const uint64_t *handles, const uint64_t *weights, size_t n,
                                       uint64_t ttl_ns) {
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) return AFCPY_CLOSED_CODE;
    return afcpy_leave(c, afc_cache_put_many_handles(cache, (const uint8_t *)keys, key_lens,
                                                     handles, weights, n, ttl_ns));
}

/* Drains an iterator into the thread's buffer: per entry key_len, value_len, ttl_ns (three
   uint64), then the key and the value; r.value is the count. */
static afcpy_res afcpy_drain(afcpy_cache *c, afc_iter *it, afc_status s) {
    afcpy_res r = {0, 0, NULL, 0};
    size_t used = 0, count = 0;
    char *buf = afcpy_reserve(4096);
    if (buf == NULL && s == AFC_OK) s = AFC_PANIC;
    while (s == AFC_OK) {
        const uint8_t *k, *v;
        size_t kl, vl;
        uint64_t ttl;
        afc_status n = afc_iter_next(it, &k, &kl, &v, &vl, &ttl);
        if (n == AFC_NOT_FOUND) break;
        if (n != AFC_OK) { s = n; break; }
        buf = afcpy_reserve(used + 24 + kl + vl);
        if (buf == NULL) { s = AFC_PANIC; break; }
        uint64_t head[3] = {kl, vl, ttl};
        memcpy(buf + used, head, 24);
        memcpy(buf + used + 24, k, kl);
        memcpy(buf + used + 24 + kl, v, vl);
        used += 24 + kl + vl;
        count++;
    }
    afc_iter_free(it);
    r.code = afcpy_leave(c, s);
    r.value = count;
    r.data = buf;
    r.size = used;
    return r;
}

static afcpy_res afcpy_snapshot(afcpy_cache *c) {
    afcpy_res r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) { r.code = AFCPY_CLOSED_CODE; return r; }
    afc_iter *it = NULL;
    afc_status s = afc_iter_new(cache, &it);
    return afcpy_drain(c, it, s);
}

static afcpy_res afcpy_expire_keys(afcpy_cache *c) {
    afcpy_res r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) { r.code = AFCPY_CLOSED_CODE; return r; }
    afc_iter *it = NULL;
    afc_status s = afc_cache_expire_keys(cache, &it);
    return afcpy_drain(c, it, s);
}

#define AFCPY_SIMPLE(name, call)                                   \
    static uint64_t name {                                         \
        afc_cache *cache = afcpy_enter(c);                         \
        if (cache == NULL) return AFCPY_CLOSED_CODE;               \
        return afcpy_leave(c, call);                               \
    }

AFCPY_SIMPLE(afcpy_clear(afcpy_cache *c), afc_cache_clear(cache))
AFCPY_SIMPLE(afcpy_stats(afcpy_cache *c, afc_stats *out), afc_cache_stats(cache, out))
AFCPY_SIMPLE(afcpy_reset_stats(afcpy_cache *c), afc_cache_reset_stats(cache))
AFCPY_SIMPLE(afcpy_resize(afcpy_cache *c, uint64_t n), afc_cache_resize(cache, n))
AFCPY_SIMPLE(afcpy_set_max_bytes(afcpy_cache *c, uint64_t n), afc_cache_set_max_bytes(cache, n))

static afcpy_res afcpy_len(afcpy_cache *c) {
    afcpy_res r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) { r.code = AFCPY_CLOSED_CODE; return r; }
    size_t n = 0;
    r.code = afcpy_leave(c, afc_cache_len(cache, &n));
    r.value = n;
    return r;
}

static afcpy_res afcpy_weight(afcpy_cache *c) {
    afcpy_res r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c);
    if (cache == NULL) { r.code = AFCPY_CLOSED_CODE; return r; }
    r.code = afcpy_leave(c, afc_cache_weight(cache, &r.value));
    return r;
}
"""


def native_libraries() -> "list[str]":
    """The system libraries the Rust static library needs (``--print native-static-libs``)."""
    if sys.platform == "darwin":
        return ["pthread", "m", "dl"]
    return ["gcc_s", "util", "rt", "pthread", "m", "dl", "c"]


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "alphaforge_cache._alphaforge_cache_cffi",
    SOURCE,
    include_dirs=[INCLUDE_DIR],
    extra_objects=[static_library()],
    libraries=native_libraries(),
    extra_compile_args=["-O2", "-std=gnu11"],
    extra_link_args=(
        ["-Wl,--gc-sections", "-Wl,--strip-debug"] if sys.platform.startswith("linux") else []
    ),
    py_limited_api=True,
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=os.path.join(ROOT, "target", "cffi"), verbose=True)

"""Builds ``alphaforge_cache._alphaforge_cache_cffi``: a cffi API-mode extension linked with the
Rust engine's static library (``target/release/libalphaforge_cache.a``).

The cdef below is written by hand (cffi cannot parse the cbindgen header's includes and macros):
it declares only what the Python backend uses, and API mode compiles it against the real
``include/alphaforge_cache.h``, so the C compiler checks that every declaration matches.

The ``afcpy_*`` helpers below drive a handle cache (the values stay in Python; see
``_native.py``). They take keys as ``const char *`` (so Python ``bytes`` pass without
conversion), return one 64-bit code (which carries the one entry a put evicted, the common case,
so that no callback into Python is needed), and keep variable-length results in a per-thread C
buffer that Python reads directly. The entries a call removed are recorded there with their
keys (``afcpy_removals``): Python finds their values in its mirror by key.

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

/* What a drain of an iterator wrote into the thread's buffer. */
typedef struct {
    uint64_t code;
    uint64_t count;
    const char *data;
    size_t size;
} afcpy_drained;

/* The removals of the last call on this thread: handle << 3 | cause, in order, and their keys
   (concatenated, with their lengths). */
typedef struct {
    const uint64_t *items;
    size_t n;
    const char *keys;
    const size_t *key_lens;
} afcpy_removals_list;

#define AFCPY_ERR ...
#define AFCPY_ONE ...
#define AFCPY_MANY ...
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

int afcpy_open(uint64_t max_entries, uint64_t max_bytes, uint64_t ttl_ns, uint32_t shards,
               afc_clock *clock, afcpy_cache **out);
uint64_t afcpy_close(afcpy_cache *c);
void afcpy_destroy(afcpy_cache *c);
afcpy_removals_list afcpy_removals(void);

uint64_t afcpy_replay(afcpy_cache *c, const char *reads, const size_t *read_lens, size_t read_len,
                      size_t n_reads, uint64_t misses);
uint64_t afcpy_put(afcpy_cache *c, const char *reads, const size_t *read_lens, size_t read_len,
                   size_t n_reads, uint64_t misses, const char *key, size_t key_len,
                   uint64_t handle, uint64_t weight, uint64_t ttl_ns);
uint64_t afcpy_put_many(afcpy_cache *c, const char *keys, const size_t *key_lens,
                        const uint64_t *handles, const uint64_t *weights, size_t n,
                        uint64_t ttl_ns);
uint64_t afcpy_lookup(afcpy_cache *c, const char *key, size_t key_len, int touch,
                      uint64_t *handle);
uint64_t afcpy_remove(afcpy_cache *c, const char *key, size_t key_len);
uint64_t afcpy_remaining_ttl(afcpy_cache *c, const char *key, size_t key_len, uint64_t *out);
afcpy_drained afcpy_snapshot(afcpy_cache *c);
afcpy_drained afcpy_snapshot_order(afcpy_cache *c);
afcpy_drained afcpy_expire_keys(afcpy_cache *c);
uint64_t afcpy_load(afcpy_cache *c, const char *keys, const size_t *key_lens,
                    uint64_t first_handle, uint64_t *handles, const uint64_t *weights,
                    const uint64_t *ttls_ns, size_t n, uint8_t *kept);
uint64_t afcpy_clear(afcpy_cache *c);
uint64_t afcpy_len(afcpy_cache *c, size_t *out);
uint64_t afcpy_weight(afcpy_cache *c, uint64_t *out);
uint64_t afcpy_stats(afcpy_cache *c, afc_stats *out);
uint64_t afcpy_reset_stats(afcpy_cache *c);
uint64_t afcpy_resize(afcpy_cache *c, uint64_t max_entries);
uint64_t afcpy_set_max_bytes(afcpy_cache *c, uint64_t max_bytes);

/* The packed cache (alphaforge_cache.PackedCache): a byte cache, called without a lock. */
typedef struct afc_cache afc_cache;
#define AFC_BUFFER_TOO_SMALL ...
#define AFC_MISSING ...
int afcpk_open(uint64_t max_entries, uint64_t max_bytes, uint64_t ttl_ns, uint32_t shards,
               afc_clock *clock, afc_cache **out);
void afc_cache_free(afc_cache *cache);
int afcpk_get_many(const afc_cache *cache, const char *keys, const size_t *key_lens, size_t n,
                   size_t values_cap, size_t *block);
int afcpk_put_many(const afc_cache *cache, const char *keys, const size_t *key_lens,
                   const char *values, const size_t *value_lens, size_t n, uint64_t ttl_ns,
                   size_t *widest);
int afcpk_get(const afc_cache *cache, const char *key, size_t key_len, int touch, char *buf,
              size_t buf_len, size_t *out_len);
int afcpk_put(const afc_cache *cache, const char *key, size_t key_len, const char *value,
              size_t value_len, uint64_t ttl_ns);
int afcpk_remove(const afc_cache *cache, const char *key, size_t key_len);
int afc_cache_len(const afc_cache *cache, size_t *out);
int afc_cache_weight(const afc_cache *cache, uint64_t *out);
int afc_cache_stats(const afc_cache *cache, afc_stats *out);
int afc_cache_reset_stats(const afc_cache *cache);
int afc_cache_clear(const afc_cache *cache);
typedef struct {
    uint16_t format_major; uint16_t format_minor; uint32_t value_encoding; uint64_t entries;
    uint64_t entries_kept; uint64_t file_bytes;
} afc_snapshot_info;
#define AFC_IO_ERROR ...
#define AFC_SNAPSHOT_INVALID ...
#define AFC_SNAPSHOT_UNSUPPORTED ...
#define AFC_SNAPSHOT_MISMATCH ...
int afc_cache_save(const afc_cache *cache, const char *path, uint32_t value_encoding,
                   afc_snapshot_info *out_info);
int afc_cache_load(const afc_cache *cache, const char *path, uint32_t expect_encoding,
                   afc_snapshot_info *out_info);
"""

SOURCE = r"""
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "alphaforge_cache.h"

/* Every call returns a code: 0 when it succeeded and removed nothing; AFCPY_ERR | status when
   it failed; AFCPY_ONE | (handle << 3 | cause) when it removed exactly one entry (the common
   case: an eviction or a replacement); AFCPY_MANY when the removals wait in the thread's list
   (afcpy_removals). A failed call that removed entries sets AFCPY_MANY with AFCPY_ERR. */
#define AFCPY_ERR ((uint64_t)1 << 63)
#define AFCPY_ONE ((uint64_t)1 << 62)
#define AFCPY_MANY ((uint64_t)1 << 61)
#define AFCPY_CLOSED 200 /* a pseudo-status: the cache was closed */
#define AFCPY_CLOSED_CODE (AFCPY_ERR | AFCPY_CLOSED)

/* The engine's handle cache. Python makes every call under the cache's lock, so calls never
   overlap; `quiet` is set when the garbage collector frees it (tell Python nothing). */
typedef struct afcpy_cache {
    afc_cache *cache;
    int quiet;
} afcpy_cache;

typedef struct {
    uint64_t code;
    uint64_t count;
    const char *data;
    size_t size;
} afcpy_drained;

typedef struct {
    const uint64_t *items;
    size_t n;
    const char *keys;
    const size_t *key_lens;
} afcpy_removals_list;

/* Per thread: the removals of the current call (handles and causes, and their keys), scratch
   for key lengths, an output buffer. */
typedef struct {
    uint64_t *removed;
    size_t n_removed, cap_removed;
    char *removed_keys;
    size_t removed_keys_used, cap_removed_keys;
    size_t *removed_key_lens;
    size_t cap_removed_key_lens;
    int lost; /* a removal could not be recorded (out of memory) */
    size_t *lens;
    size_t cap_lens;
    char *buf;
    size_t cap_buf;
} afcpy_thread;

static _Thread_local afcpy_thread *afcpy_me;
static pthread_key_t afcpy_key;
static pthread_once_t afcpy_once = PTHREAD_ONCE_INIT;

static void afcpy_thread_free(void *p) {
    afcpy_thread *t = (afcpy_thread *)p;
    free(t->removed);
    free(t->removed_keys);
    free(t->removed_key_lens);
    free(t->lens);
    free(t->buf);
    free(t);
}

static void afcpy_key_init(void) { pthread_key_create(&afcpy_key, afcpy_thread_free); }

static afcpy_thread *afcpy_thread_state(void) {
    if (afcpy_me == NULL) {
        afcpy_thread *t = (afcpy_thread *)calloc(1, sizeof(afcpy_thread));
        if (t == NULL) return NULL;
        pthread_once(&afcpy_once, afcpy_key_init);
        pthread_setspecific(afcpy_key, t); /* freed when the thread exits */
        afcpy_me = t;
    }
    return afcpy_me;
}

/* Grows *p (items of `size` bytes) to hold `need` items. */
static int afcpy_grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap && *p != NULL) return 1;
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size) return 0;
        n *= 2;
    }
    void *grown = realloc(*p, n * size);
    if (grown == NULL) return 0;
    *p = grown;
    *cap = n;
    return 1;
}

static void afcpy_release_tramp(void *user_data, const uint8_t *key, size_t key_len,
                                uint64_t handle, afc_removal_cause cause) {
    afcpy_cache *c = (afcpy_cache *)user_data;
    afcpy_thread *t = afcpy_me;
    if (c->quiet || t == NULL) return;
    size_t n = t->n_removed;
    if (!afcpy_grow((void **)&t->removed, &t->cap_removed, n + 1, sizeof(uint64_t)) ||
        !afcpy_grow((void **)&t->removed_key_lens, &t->cap_removed_key_lens, n + 1,
                    sizeof(size_t)) ||
        key_len > SIZE_MAX - t->removed_keys_used ||
        !afcpy_grow((void **)&t->removed_keys, &t->cap_removed_keys,
                    t->removed_keys_used + key_len, 1)) {
        t->lost = 1;
        return;
    }
    if (key_len) memcpy(t->removed_keys + t->removed_keys_used, key, key_len);
    t->removed_keys_used += key_len;
    t->removed_key_lens[n] = key_len;
    t->removed[n] = handle << 3 | (uint64_t)cause;
    t->n_removed = n + 1;
}

/* Starts a call: the engine's cache, or NULL when the cache is closed or memory ran out. */
static afc_cache *afcpy_enter(afcpy_cache *c, uint64_t *fail) {
    afcpy_thread *t = afcpy_thread_state();
    if (t == NULL) { *fail = AFCPY_ERR | (uint64_t)AFC_PANIC; return NULL; }
    t->n_removed = 0;
    t->removed_keys_used = 0;
    t->lost = 0;
    if (c->cache == NULL) { *fail = AFCPY_CLOSED_CODE; return NULL; }
    return c->cache;
}

static uint64_t afcpy_leave(afc_status status) {
    afcpy_thread *t = afcpy_me;
    uint64_t code = 0;
    if (t->lost) status = AFC_PANIC;
    if (status != AFC_OK && status != AFC_NOT_FOUND) code = AFCPY_ERR | (uint64_t)(uint32_t)status;
    if (t->n_removed == 1 && !(code & AFCPY_ERR)) return AFCPY_ONE | t->removed[0];
    if (t->n_removed) code |= AFCPY_MANY;
    return code;
}

static afcpy_removals_list afcpy_removals(void) {
    afcpy_removals_list r = {NULL, 0, NULL, NULL};
    if (afcpy_me != NULL) {
        r.items = afcpy_me->removed;
        r.n = afcpy_me->n_removed;
        r.keys = afcpy_me->removed_keys;
        r.key_lens = afcpy_me->removed_key_lens;
    }
    return r;
}

/* The engine's cache of these settings (0: the default); the config is freed before it returns.
   `handle_release`, when not NULL, makes it a handle cache that tells it of every handle. */
static int afcpy_new_cache(uint64_t max_entries, uint64_t max_bytes, uint64_t ttl_ns,
                           uint32_t shards, afc_clock *clock, afc_handle_release_fn handle_release,
                           void *user_data, afc_cache **out) {
    *out = NULL;
    afc_config *config = NULL;
    afc_status s = afc_config_new(max_entries, &config);
    if (s == AFC_OK && max_bytes) s = afc_config_set_max_bytes(config, max_bytes);
    if (s == AFC_OK && ttl_ns) s = afc_config_set_default_ttl_ns(config, ttl_ns);
    if (s == AFC_OK && shards) s = afc_config_set_shards(config, shards);
    if (s == AFC_OK && clock != NULL) s = afc_config_use_clock(config, clock);
    if (s == AFC_OK && handle_release != NULL)
        s = afc_config_set_handle_release(config, handle_release, user_data);
    if (s == AFC_OK) s = afc_cache_new(config, out);
    afc_config_free(config);
    return s;
}

static int afcpy_open(uint64_t max_entries, uint64_t max_bytes, uint64_t ttl_ns, uint32_t shards,
                      afc_clock *clock, afcpy_cache **out) {
    *out = NULL;
    afcpy_cache *c = (afcpy_cache *)calloc(1, sizeof(afcpy_cache));
    if (c == NULL) return AFC_PANIC;
    afc_status s = afcpy_new_cache(max_entries, max_bytes, ttl_ns, shards, clock,
                                   afcpy_release_tramp, c, &c->cache);
    if (s != AFC_OK) {
        free(c);
        return s;
    }
    *out = c;
    return AFC_OK;
}

/* Frees the engine's cache once; its entries are reported (cleared, or expired). */
static uint64_t afcpy_close(afcpy_cache *c) {
    uint64_t fail = 0;
    afc_cache *cache = afcpy_enter(c, &fail);
    if (cache == NULL) return fail == AFCPY_CLOSED_CODE ? 0 : fail;
    afc_status s = afc_cache_clear(cache); /* reports expired entries as expired */
    afc_cache_free(cache);
    c->cache = NULL;
    return afcpy_leave(s);
}

/* The garbage collector's end of a cache: frees it quietly (Python has let go of it). */
static void afcpy_destroy(afcpy_cache *c) {
    if (c == NULL) return;
    c->quiet = 1;
    if (c->cache != NULL) afc_cache_free(c->cache);
    free(c);
}

/* Replays buffered gets: n keys concatenated in `reads`, of lengths `read_lens`, or all of
   length `read_len` when `read_lens` is NULL; then `misses` more misses. `later`: handed over
   to the engine's background thread (afc_cache_record_reads_later), which the next engine call
   on the cache waits for, so no result differs. */
static afc_status afcpy_replay_in(afc_cache *cache, const char *reads, const size_t *read_lens,
                                  size_t read_len, size_t n, uint64_t misses, int later) {
    if (n == 0 && misses == 0) return AFC_OK;
    if (read_lens == NULL && n > 0) {
        afcpy_thread *t = afcpy_me;
        if (!afcpy_grow((void **)&t->lens, &t->cap_lens, n, sizeof(size_t))) return AFC_PANIC;
        for (size_t i = 0; i < n; i++) t->lens[i] = read_len;
        read_lens = t->lens;
    }
    return later ? afc_cache_record_reads_later(cache, (const uint8_t *)reads, read_lens, n, misses)
                 : afc_cache_record_reads(cache, (const uint8_t *)reads, read_lens, n, misses);
}

static uint64_t afcpy_replay(afcpy_cache *c, const char *reads, const size_t *read_lens,
                             size_t read_len, size_t n_reads, uint64_t misses) {
    uint64_t fail = 0;
    afc_cache *cache = afcpy_enter(c, &fail);
    if (cache == NULL) return fail;
    return afcpy_leave(afcpy_replay_in(cache, reads, read_lens, read_len, n_reads, misses, 1));
}

/* Replays the buffered gets, then stores one entry: one crossing for both. */
static uint64_t afcpy_put(afcpy_cache *c, const char *reads, const size_t *read_lens,
                          size_t read_len, size_t n_reads, uint64_t misses, const char *key,
                          size_t key_len, uint64_t handle, uint64_t weight, uint64_t ttl_ns) {
    uint64_t fail = 0;
    afc_cache *cache = afcpy_enter(c, &fail);
    if (cache == NULL) return fail;
    afc_status s = afcpy_replay_in(cache, reads, read_lens, read_len, n_reads, misses, 0);
    if (s == AFC_OK)
        s = afc_cache_put_handle(cache, (const uint8_t *)key, key_len, handle, weight, ttl_ns);
    return afcpy_leave(s);
}

static uint64_t afcpy_put_many(afcpy_cache *c, const char *keys, const size_t *key_lens,
                               const uint64_t *handles, const uint64_t *weights, size_t n,
                               uint64_t ttl_ns) {
    uint64_t fail = 0;
    afc_cache *cache = afcpy_enter(c, &fail);
    if (cache == NULL) return fail;
    return afcpy_leave(afc_cache_put_many_handles(cache, (const uint8_t *)keys, key_lens, handles,
                                                  weights, n, ttl_ns));
}

/* *handle: the live entry's handle (a get when `touch`, else a peek), 0 when absent. */
static uint64_t afcpy_lookup(afcpy_cache *c, const char *key, size_t key_len, int touch,
                             uint64_t *handle) {
    uint64_t fail = 0;
    *handle = 0;
    afc_cache *cache = afcpy_enter(c, &fail);
    if (cache == NULL) return fail;
    afc_status s = touch ? afc_cache_get_handle(cache, (const uint8_t *)key, key_len, handle)
                         : afc_cache_peek_handle(cache, (const uint8_t *)key, key_len, handle);
    if (s != AFC_OK) *handle = 0;
    return afcpy_leave(s);
}

/* The removed entry's handle comes back as its removal (cause "removed"). */
static uint64_t afcpy_remove(afcpy_cache *c, const char *key, size_t key_len) {
    uint64_t fail = 0;
    afc_cache *cache = afcpy_enter(c, &fail);
    if (cache == NULL) return fail;
    return afcpy_leave(afc_cache_remove(cache, (const uint8_t *)key, key_len));
}

/* out[0]: the nanoseconds left (UINT64_MAX: no deadline); out[1]: 1 when the key is live. */
static uint64_t afcpy_remaining_ttl(afcpy_cache *c, const char *key, size_t key_len,
                                    uint64_t *out) {
    uint64_t fail = 0;
    out[0] = 0;
    out[1] = 0;
    afc_cache *cache = afcpy_enter(c, &fail);
    if (cache == NULL) return fail;
    uint64_t left = 0;
    afc_status s = afc_cache_remaining_ttl(cache, (const uint8_t *)key, key_len, &left);
    if (s == AFC_OK) {
        out[0] = left;
        out[1] = 1;
    }
    return afcpy_leave(s);
}

/* Drains an iterator into the thread's buffer: per entry key_len, value_len, ttl_ns (three
   uint64; a fourth, the weight, when `weights`), then the key and the value (a handle: 8 bytes). */
static afcpy_drained afcpy_drain_into(afc_iter *it, afc_status s, int weights) {
    afcpy_drained r = {0, 0, NULL, 0};
    afcpy_thread *t = afcpy_me;
    size_t used = 0, count = 0, head_len = weights ? 32 : 24;
    while (s == AFC_OK) {
        const uint8_t *k, *v;
        size_t kl, vl;
        uint64_t ttl, weight = 0;
        afc_status n = afc_iter_next(it, &k, &kl, &v, &vl, &ttl);
        if (n == AFC_NOT_FOUND) break;
        if (n == AFC_OK && weights) n = afc_iter_weight(it, &weight);
        if (n != AFC_OK) { s = n; break; }
        if (!afcpy_grow((void **)&t->buf, &t->cap_buf, used + head_len + kl + vl, 1)) {
            s = AFC_PANIC;
            break;
        }
        uint64_t head[4] = {kl, vl, ttl, weight};
        memcpy(t->buf + used, head, head_len);
        memcpy(t->buf + used + head_len, k, kl);
        memcpy(t->buf + used + head_len + kl, v, vl);
        used += head_len + kl + vl;
        count++;
    }
    afc_iter_free(it);
    r.code = afcpy_leave(s);
    r.count = count;
    r.data = t->buf;
    r.size = used;
    return r;
}

static afcpy_drained afcpy_drain(afc_iter *it, afc_status s) {
    return afcpy_drain_into(it, s, 0);
}

static afcpy_drained afcpy_snapshot(afcpy_cache *c) {
    afcpy_drained r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c, &r.code);
    if (cache == NULL) return r;
    afc_iter *it = NULL;
    afc_status s = afc_iter_new(cache, &it);
    return afcpy_drain(it, s);
}

/* The live entries in snapshot file order (least recently used first), with their weights. */
static afcpy_drained afcpy_snapshot_order(afcpy_cache *c) {
    afcpy_drained r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c, &r.code);
    if (cache == NULL) return r;
    afc_iter *it = NULL;
    afc_status s = afc_snapshot_iter_new(cache, &it);
    return afcpy_drain_into(it, s, 1);
}

/* Replaces every entry with the n given ones (a loaded snapshot's, behind the new handles
   first_handle, first_handle + 1, ..., written into `handles`, room for n): the old entries
   come back as removals (cleared, or expired); kept[i] says whether handle i was taken. */
static uint64_t afcpy_load(afcpy_cache *c, const char *keys, const size_t *key_lens,
                           uint64_t first_handle, uint64_t *handles, const uint64_t *weights,
                           const uint64_t *ttls_ns, size_t n, uint8_t *kept) {
    uint64_t fail = 0;
    afc_cache *cache = afcpy_enter(c, &fail);
    if (cache == NULL) return fail;
    for (size_t i = 0; i < n; i++) handles[i] = first_handle + i;
    return afcpy_leave(afc_cache_load_handles(cache, (const uint8_t *)keys, key_lens, handles,
                                              weights, ttls_ns, n, kept));
}

static afcpy_drained afcpy_expire_keys(afcpy_cache *c) {
    afcpy_drained r = {0, 0, NULL, 0};
    afc_cache *cache = afcpy_enter(c, &r.code);
    if (cache == NULL) return r;
    afc_iter *it = NULL;
    afc_status s = afc_cache_expire_keys(cache, &it);
    return afcpy_drain(it, s);
}

#define AFCPY_SIMPLE(name, call)                                   \
    static uint64_t name {                                         \
        uint64_t fail = 0;                                         \
        afc_cache *cache = afcpy_enter(c, &fail);                  \
        if (cache == NULL) return fail;                            \
        return afcpy_leave(call);                                  \
    }

AFCPY_SIMPLE(afcpy_clear(afcpy_cache *c), afc_cache_clear(cache))
AFCPY_SIMPLE(afcpy_len(afcpy_cache *c, size_t *out), afc_cache_len(cache, out))
AFCPY_SIMPLE(afcpy_weight(afcpy_cache *c, uint64_t *out), afc_cache_weight(cache, out))
AFCPY_SIMPLE(afcpy_stats(afcpy_cache *c, afc_stats *out), afc_cache_stats(cache, out))
AFCPY_SIMPLE(afcpy_reset_stats(afcpy_cache *c), afc_cache_reset_stats(cache))
AFCPY_SIMPLE(afcpy_resize(afcpy_cache *c, uint64_t n), afc_cache_resize(cache, n))
AFCPY_SIMPLE(afcpy_set_max_bytes(afcpy_cache *c, uint64_t n), afc_cache_set_max_bytes(cache, n))

/* ----- the packed cache (alphaforge_cache.PackedCache) ----------------------------------------
   A byte cache of the engine, called straight from Python without a lock (the engine is
   thread-safe, and cffi releases the GIL for each call): a batch is one call and no Python
   object per key. These wrappers take `char *` where the ABI takes `uint8_t *`, so that cffi
   passes `bytes` objects without a copy. */

static int afcpk_open(uint64_t max_entries, uint64_t max_bytes, uint64_t ttl_ns, uint32_t shards,
                      afc_clock *clock, afc_cache **out) {
    return afcpy_new_cache(max_entries, max_bytes, ttl_ns, shards, clock, NULL, NULL, out);
}

/* afc_cache_get_many into one block the caller allocated, of size_t words: offsets[n], lens[n],
   missing_lens[n], missing_at[n], counts[4], then `values_cap` bytes of values, then room for
   every key's bytes (the keys that missed are packed there). counts[0] = misses, counts[1] = their
   key bytes, counts[2] = the bytes all hits need, counts[3] = hits whose value did not fit. */
static int afcpk_get_many(const afc_cache *cache, const char *keys, const size_t *key_lens,
                          size_t n, size_t values_cap, size_t *block) {
    size_t *offsets = block, *lens = block + n, *missing_lens = block + 2 * n;
    size_t *missing_at = block + 3 * n, *counts = block + 4 * n;
    char *values = (char *)(counts + 4), *missing_keys = values + values_cap;
    size_t needed = 0;
    afc_status s = afc_cache_get_many(cache, (const uint8_t *)keys, key_lens, n,
                                      (uint8_t *)values, values_cap, offsets, lens, &needed);
    if (s != AFC_OK && s != AFC_BUFFER_TOO_SMALL) return s;
    size_t missed = 0, missed_bytes = 0, unfit = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t key_len = key_lens[i];
        if (offsets[i] == AFC_MISSING) {
            if (lens[i] == AFC_MISSING) {
                memcpy(missing_keys + missed_bytes, keys + at, key_len);
                missed_bytes += key_len;
                missing_lens[missed] = key_len;
                missing_at[missed++] = i;
            } else {
                unfit++;
            }
        }
        at += key_len;
    }
    counts[0] = missed;
    counts[1] = missed_bytes;
    counts[2] = needed;
    counts[3] = unfit;
    return AFC_OK;
}

/* afc_cache_put_many; *widest: the longest value of the batch (whether or not it was stored). */
static int afcpk_put_many(const afc_cache *cache, const char *keys, const size_t *key_lens,
                          const char *values, const size_t *value_lens, size_t n, uint64_t ttl_ns,
                          size_t *widest) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (value_lens[i] > w) w = value_lens[i];
    *widest = w;
    return afc_cache_put_many(cache, (const uint8_t *)keys, key_lens, (const uint8_t *)values,
                              value_lens, n, ttl_ns);
}

/* afc_cache_get (`touch`) or afc_cache_peek. */
static int afcpk_get(const afc_cache *cache, const char *key, size_t key_len, int touch, char *buf,
                     size_t buf_len, size_t *out_len) {
    if (touch)
        return afc_cache_get(cache, (const uint8_t *)key, key_len, (uint8_t *)buf, buf_len,
                             out_len);
    return afc_cache_peek(cache, (const uint8_t *)key, key_len, (uint8_t *)buf, buf_len, out_len);
}

static int afcpk_put(const afc_cache *cache, const char *key, size_t key_len, const char *value,
                     size_t value_len, uint64_t ttl_ns) {
    return afc_cache_put(cache, (const uint8_t *)key, key_len, (const uint8_t *)value, value_len,
                         ttl_ns);
}

static int afcpk_remove(const afc_cache *cache, const char *key, size_t key_len) {
    return afc_cache_remove(cache, (const uint8_t *)key, key_len);
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
    # The engine is linked in: a rebuilt engine makes the extension stale (setuptools does not
    # look at extra_objects when it decides what to rebuild).
    depends=[static_library()],
    libraries=native_libraries(),
    extra_compile_args=["-O2", "-std=gnu11"],
    extra_link_args=(
        ["-Wl,--gc-sections", "-Wl,--strip-debug"] if sys.platform.startswith("linux") else []
    ),
    py_limited_api=True,
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=os.path.join(ROOT, "target", "cffi"), verbose=True)

// The C helpers of the Go binding (see afcgo.h) and the trampolines between the C library's
// callbacks and the Go functions exported in callbacks.go. The callbacks' user_data points to
// memory holding a cgo.Handle (a uintptr), so no Go pointer is ever kept by C code.
#include <string.h>

#include "afcgo.h"
#include "_cgo_export.h"

// The cache behind a handle.
#define CACHE(handle) ((const afc_cache *)(handle))

static afcgo_result afcgo_status(afc_status status) {
    afcgo_result r = {status, 0, NULL, NULL};
    if (status != AFC_OK && status != AFC_NOT_FOUND && status != AFC_BUFFER_TOO_SMALL) {
        const char *message = afc_last_error();
        size_t len = strlen(message);
        r.msg = malloc(len + 1);
        if (r.msg) memcpy(r.msg, message, len + 1);
    }
    return r;
}

static afcgo_result with(afc_status status, uint64_t n, void *ptr) {
    afcgo_result r = afcgo_status(status);
    r.n = n;
    r.ptr = ptr;
    return r;
}

afcgo_result afcgo_config_new(uint64_t max_entries) {
    afc_config *config = NULL;
    afc_status status = afc_config_new(max_entries, &config);
    return with(status, 0, config);
}

afcgo_result afcgo_config_use_clock(afc_config *config, const afc_clock *clock) {
    return afcgo_status(afc_config_use_clock(config, clock));
}

afcgo_result afcgo_cache_new(const afc_config *config) {
    afc_cache *cache = NULL;
    afc_status status = afc_cache_new(config, &cache);
    return with(status, (uintptr_t)cache, NULL);
}

void afcgo_cache_free(afcgo_cache cache) { afc_cache_free((afc_cache *)cache); }

afcgo_result afcgo_get(afcgo_cache cache, const uint8_t *key, size_t key_len, uint8_t *buf,
                       size_t buf_len) {
    size_t len = 0;
    afc_status status = afc_cache_get(CACHE(cache), key, key_len, buf, buf_len, &len);
    if (status == AFC_OK || status == AFC_BUFFER_TOO_SMALL) {
        afcgo_result r = {status, len, NULL, NULL};
        return r;
    }
    return with(status, len, NULL);
}

afcgo_result afcgo_peek(afcgo_cache cache, const uint8_t *key, size_t key_len, uint8_t *buf,
                        size_t buf_len) {
    size_t len = 0;
    afc_status status = afc_cache_peek(CACHE(cache), key, key_len, buf, buf_len, &len);
    return with(status, len, NULL);
}

afcgo_result afcgo_contains(afcgo_cache cache, const uint8_t *key, size_t key_len) {
    bool found = false;
    afc_status status = afc_cache_contains(CACHE(cache), key, key_len, &found);
    return with(status, found ? 1 : 0, NULL);
}

afcgo_result afcgo_remaining_ttl(afcgo_cache cache, const uint8_t *key, size_t key_len) {
    uint64_t ns = 0;
    afc_status status = afc_cache_remaining_ttl(CACHE(cache), key, key_len, &ns);
    return with(status, ns, NULL);
}

afcgo_result afcgo_get_or_insert(afcgo_cache cache, const uint8_t *key, size_t key_len,
                                 void *user_data, uint8_t *buf, size_t buf_len) {
    size_t len = 0;
    afc_status status = afc_cache_get_or_insert(CACHE(cache), key, key_len, afcgo_compute,
                                                user_data, buf, buf_len, &len);
    return with(status, len, NULL);
}

afcgo_result afcgo_get_many(afcgo_cache cache, const uint8_t *keys, const size_t *key_lens,
                            size_t n, uint8_t *values, size_t values_cap, size_t *value_offsets,
                            size_t *value_lens) {
    size_t needed = 0;
    afc_status status = afc_cache_get_many(CACHE(cache), keys, key_lens, n, values, values_cap,
                                           value_offsets, value_lens, &needed);
    return with(status, needed, NULL);
}

afcgo_result afcgo_len(afcgo_cache cache) {
    size_t n = 0;
    afc_status status = afc_cache_len(CACHE(cache), &n);
    return with(status, n, NULL);
}

afcgo_result afcgo_weight(afcgo_cache cache) {
    uint64_t n = 0;
    afc_status status = afc_cache_weight(CACHE(cache), &n);
    return with(status, n, NULL);
}

afcgo_result afcgo_expire(afcgo_cache cache) {
    size_t n = 0;
    afc_status status = afc_cache_expire(CACHE(cache), &n);
    return with(status, n, NULL);
}

afcgo_result afcgo_clock_now(afcgo_cache cache) {
    uint64_t ns = 0;
    afc_status status = afc_cache_clock_now(CACHE(cache), &ns);
    return with(status, ns, NULL);
}

afcgo_stats_result afcgo_stats(afcgo_cache cache) {
    afcgo_stats_result r;
    memset(&r, 0, sizeof r);
    r.status = afc_cache_stats(CACHE(cache), &r.stats);
    return r;
}

afcgo_result afcgo_iter_new(afcgo_cache cache) {
    afc_iter *iter = NULL;
    afc_status status = afc_iter_new(CACHE(cache), &iter);
    return with(status, 0, iter);
}

afcgo_result afcgo_iter_next_key(afc_iter *iter) {
    const uint8_t *key = NULL, *value = NULL;
    size_t key_len = 0, value_len = 0;
    uint64_t ttl = 0;
    afc_status status = afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl);
    return with(status, key_len, (void *)key);
}

afcgo_result afcgo_clock_new(uint64_t start_ns) {
    afc_clock *clock = NULL;
    afc_status status = afc_clock_new(start_ns, &clock);
    return with(status, 0, clock);
}

afcgo_result afcgo_clock_now_of(const afc_clock *clock) {
    uint64_t ns = 0;
    afc_status status = afc_clock_now(clock, &ns);
    return with(status, ns, NULL);
}

afcgo_result afcgo_value_out_set(afc_value_out *out, const uint8_t *value, size_t value_len) {
    return afcgo_status(afc_value_out_set(out, value, value_len));
}

afcgo_result afcgo_put(afcgo_cache cache, const uint8_t *key, size_t key_len,
                       const uint8_t *value, size_t value_len, uint64_t ttl_ns) {
    return afcgo_status(afc_cache_put(CACHE(cache), key, key_len, value, value_len, ttl_ns));
}

afcgo_result afcgo_put_many(afcgo_cache cache, const uint8_t *keys, const size_t *key_lens,
                            const uint8_t *values, const size_t *value_lens, size_t n,
                            uint64_t ttl_ns) {
    return afcgo_status(
        afc_cache_put_many(CACHE(cache), keys, key_lens, values, value_lens, n, ttl_ns));
}

afcgo_result afcgo_remove(afcgo_cache cache, const uint8_t *key, size_t key_len) {
    return afcgo_status(afc_cache_remove(CACHE(cache), key, key_len));
}

afcgo_snapshot_result afcgo_save(afcgo_cache cache, const char *path) {
    afcgo_snapshot_result r;
    memset(&r, 0, sizeof r);
    r.result = afcgo_status(afc_cache_save(CACHE(cache), path, AFC_ENCODING_BYTES, &r.info));
    return r;
}

afcgo_snapshot_result afcgo_load(afcgo_cache cache, const char *path) {
    afcgo_snapshot_result r;
    memset(&r, 0, sizeof r);
    r.result = afcgo_status(afc_cache_load(CACHE(cache), path, AFC_ENCODING_BYTES, &r.info));
    return r;
}

afcgo_snapshot_result afcgo_snapshot_verify(const char *path) {
    afcgo_snapshot_result r;
    memset(&r, 0, sizeof r);
    r.result = afcgo_status(afc_snapshot_verify(path, &r.info));
    return r;
}

afcgo_result afcgo_clear(afcgo_cache cache) { return afcgo_status(afc_cache_clear(CACHE(cache))); }

afcgo_result afcgo_reset_stats(afcgo_cache cache) {
    return afcgo_status(afc_cache_reset_stats(CACHE(cache)));
}

afcgo_result afcgo_resize(afcgo_cache cache, uint64_t max_entries) {
    return afcgo_status(afc_cache_resize(CACHE(cache), max_entries));
}

afcgo_result afcgo_set_max_bytes(afcgo_cache cache, uint64_t max_bytes) {
    return afcgo_status(afc_cache_set_max_bytes(CACHE(cache), max_bytes));
}

afcgo_result afcgo_clock_set(afcgo_cache cache, uint64_t now_ns) {
    return afcgo_status(afc_cache_clock_set(CACHE(cache), now_ns));
}

afcgo_result afcgo_clock_advance(afcgo_cache cache, uint64_t by_ns) {
    return afcgo_status(afc_cache_clock_advance(CACHE(cache), by_ns));
}

void afcgo_listener(void *user_data, const uint8_t *key, size_t key_len, const uint8_t *value,
                    size_t value_len, afc_removal_cause cause) {
    afcGoListener(*(uintptr_t *)user_data, (uint8_t *)key, key_len, (uint8_t *)value, value_len,
                  (int)cause);
}

int32_t afcgo_compute(void *user_data, const uint8_t *key, size_t key_len, afc_value_out *out) {
    return afcGoCompute(*(uintptr_t *)user_data, (uint8_t *)key, key_len, out);
}

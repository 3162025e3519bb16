// Declarations of the C helpers of the Go binding (defined in shim.c).
//
// Every C call with an out-parameter goes through a helper that returns an afcgo_result by value:
// nothing of the Go stack is handed to C (so nothing escapes to the heap on the hot path), and the
// message of a failure is copied on the thread that failed (afc_last_error is per thread, and a
// goroutine may move to another thread between two cgo calls).
#ifndef AFCGO_H
#define AFCGO_H

#include <stdlib.h>

#include "alphaforge_cache.h"

typedef struct {
    afc_status status;
    uint64_t n;  // the call's scalar output (a length, a count, a time, a bool)
    void *ptr;   // the call's pointer output (a handle, a key)
    char *msg;   // on failure, a malloc'd copy of afc_last_error() (free it); else NULL
} afcgo_result;

typedef struct {
    afc_status status;
    afc_stats stats;
} afcgo_stats_result;

afcgo_result afcgo_config_new(uint64_t max_entries);
afcgo_result afcgo_config_use_clock(afc_config *config, const afc_clock *clock);
afcgo_result afcgo_cache_new(const afc_config *config);
afcgo_result afcgo_get(const afc_cache *cache, const uint8_t *key, size_t key_len, uint8_t *buf,
                       size_t buf_len);
afcgo_result afcgo_peek(const afc_cache *cache, const uint8_t *key, size_t key_len, uint8_t *buf,
                        size_t buf_len);
afcgo_result afcgo_contains(const afc_cache *cache, const uint8_t *key, size_t key_len);
afcgo_result afcgo_remaining_ttl(const afc_cache *cache, const uint8_t *key, size_t key_len);
afcgo_result afcgo_get_or_insert(const afc_cache *cache, const uint8_t *key, size_t key_len,
                                 void *user_data, uint8_t *buf, size_t buf_len);
afcgo_result afcgo_get_many(const afc_cache *cache, const uint8_t *keys, const size_t *key_lens,
                            size_t n, uint8_t *values, size_t values_cap, size_t *value_offsets,
                            size_t *value_lens);
afcgo_result afcgo_len(const afc_cache *cache);
afcgo_result afcgo_weight(const afc_cache *cache);
afcgo_result afcgo_expire(const afc_cache *cache);
afcgo_result afcgo_clock_now(const afc_cache *cache);
afcgo_stats_result afcgo_stats(const afc_cache *cache);
afcgo_result afcgo_iter_new(const afc_cache *cache);
afcgo_result afcgo_iter_next_key(afc_iter *iter);
afcgo_result afcgo_clock_new(uint64_t start_ns);
afcgo_result afcgo_clock_now_of(const afc_clock *clock);
afcgo_result afcgo_value_out_set(afc_value_out *out, const uint8_t *value, size_t value_len);
afcgo_result afcgo_put(const afc_cache *cache, const uint8_t *key, size_t key_len,
                       const uint8_t *value, size_t value_len, uint64_t ttl_ns);
afcgo_result afcgo_put_many(const afc_cache *cache, const uint8_t *keys, const size_t *key_lens,
                            const uint8_t *values, const size_t *value_lens, size_t n,
                            uint64_t ttl_ns);
afcgo_result afcgo_remove(const afc_cache *cache, const uint8_t *key, size_t key_len);
afcgo_result afcgo_clear(const afc_cache *cache);
afcgo_result afcgo_reset_stats(const afc_cache *cache);
afcgo_result afcgo_resize(const afc_cache *cache, uint64_t max_entries);
afcgo_result afcgo_set_max_bytes(const afc_cache *cache, uint64_t max_bytes);
afcgo_result afcgo_clock_set(const afc_cache *cache, uint64_t now_ns);
afcgo_result afcgo_clock_advance(const afc_cache *cache, uint64_t by_ns);

void afcgo_listener(void *user_data, const uint8_t *key, size_t key_len, const uint8_t *value,
                    size_t value_len, afc_removal_cause cause);
int32_t afcgo_compute(void *user_data, const uint8_t *key, size_t key_len, afc_value_out *out);

#endif

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

// A cache handle as an integer: Go keeps it in a uintptr-typed field, so passing it to C needs
// no cgo pointer check (which costs a few ns per call, and an allocation with Go 1.19).
typedef uintptr_t afcgo_cache;

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
afcgo_result afcgo_cache_new(const afc_config *config);  // the handle in n
void afcgo_cache_free(afcgo_cache cache);
afcgo_result afcgo_get(afcgo_cache cache, const uint8_t *key, size_t key_len, uint8_t *buf,
                       size_t buf_len);
afcgo_result afcgo_peek(afcgo_cache cache, const uint8_t *key, size_t key_len, uint8_t *buf,
                        size_t buf_len);
afcgo_result afcgo_contains(afcgo_cache cache, const uint8_t *key, size_t key_len);
afcgo_result afcgo_remaining_ttl(afcgo_cache cache, const uint8_t *key, size_t key_len);
afcgo_result afcgo_get_or_insert(afcgo_cache cache, const uint8_t *key, size_t key_len,
                                 void *user_data, uint8_t *buf, size_t buf_len);
afcgo_result afcgo_get_many(afcgo_cache cache, const uint8_t *keys, const size_t *key_lens,
                            size_t n, uint8_t *values, size_t values_cap, size_t *value_offsets,
                            size_t *value_lens);
afcgo_result afcgo_len(afcgo_cache cache);
afcgo_result afcgo_weight(afcgo_cache cache);
afcgo_result afcgo_expire(afcgo_cache cache);
afcgo_result afcgo_clock_now(afcgo_cache cache);
afcgo_stats_result afcgo_stats(afcgo_cache cache);
afcgo_result afcgo_iter_new(afcgo_cache cache);
afcgo_result afcgo_iter_next_key(afc_iter *iter);
afcgo_result afcgo_clock_new(uint64_t start_ns);
afcgo_result afcgo_clock_now_of(const afc_clock *clock);
afcgo_result afcgo_value_out_set(afc_value_out *out, const uint8_t *value, size_t value_len);
afcgo_result afcgo_put(afcgo_cache cache, const uint8_t *key, size_t key_len,
                       const uint8_t *value, size_t value_len, uint64_t ttl_ns);
afcgo_result afcgo_put_many(afcgo_cache cache, const uint8_t *keys, const size_t *key_lens,
                            const uint8_t *values, const size_t *value_lens, size_t n,
                            uint64_t ttl_ns);
afcgo_result afcgo_remove(afcgo_cache cache, const uint8_t *key, size_t key_len);

typedef struct {
    afcgo_result result;
    afc_snapshot_info info;
} afcgo_snapshot_result;

// Snapshots (path: a C string the caller frees).
afcgo_snapshot_result afcgo_save(afcgo_cache cache, const char *path);
afcgo_snapshot_result afcgo_load(afcgo_cache cache, const char *path);
afcgo_snapshot_result afcgo_snapshot_verify(const char *path);
afcgo_result afcgo_clear(afcgo_cache cache);
afcgo_result afcgo_reset_stats(afcgo_cache cache);
afcgo_result afcgo_resize(afcgo_cache cache, uint64_t max_entries);
afcgo_result afcgo_set_max_bytes(afcgo_cache cache, uint64_t max_bytes);
afcgo_result afcgo_clock_set(afcgo_cache cache, uint64_t now_ns);
afcgo_result afcgo_clock_advance(afcgo_cache cache, uint64_t by_ns);

void afcgo_listener(void *user_data, const uint8_t *key, size_t key_len, const uint8_t *value,
                    size_t value_len, afc_removal_cause cause);
int32_t afcgo_compute(void *user_data, const uint8_t *key, size_t key_len, afc_value_out *out);

#endif

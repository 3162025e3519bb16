/*
 * Error paths of every exported function: NULL pointers, impossible lengths, invalid
 * configurations, the wrong value kind, a monotonic clock where a manual one is needed, failing
 * compute callbacks; plus status names, versions and the per-thread last error.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */

#include "afc_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Lengths no buffer can have: above PTRDIFF_MAX. */
#define HUGE_LEN SIZE_MAX
#define JUST_TOO_BIG ((size_t)PTRDIFF_MAX + 1)

static void ignore_removal(void *user_data, const uint8_t *key, size_t key_len,
                           const uint8_t *value, size_t value_len, afc_removal_cause cause) {
    (void)user_data, (void)key, (void)key_len, (void)value, (void)value_len, (void)cause;
}

static void ignore_release(void *user_data, const uint8_t *key, size_t key_len, uint64_t handle,
                           afc_removal_cause cause) {
    (void)user_data, (void)key, (void)key_len, (void)handle, (void)cause;
}

static int32_t compute_fixed(void *user_data, const uint8_t *key, size_t key_len,
                             afc_value_out *out) {
    (void)user_data, (void)key, (void)key_len;
    return afc_value_out_set(out, (const uint8_t *)"computed", 8) == AFC_OK ? 0 : 1;
}

static afc_cache *handle_cache(void) {
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    CHECK_OK(afc_config_new(16, &config));
    CHECK_OK(afc_config_set_handle_release(config, ignore_release, NULL));
    CHECK_OK(afc_cache_new(config, &cache));
    afc_config_free(config);
    return cache;
}

/* ----- configuration ----------------------------------------------------------------------- */

static void test_config_null_pointers(void) {
    afc_config *config = NULL;
    CHECK_NULL_ARG(afc_config_new(10, NULL), "out"); /* and allocates nothing (asan, valgrind) */
    CHECK_NULL_ARG(afc_config_set_max_bytes(NULL, 100), "config");
    CHECK_NULL_ARG(afc_config_set_default_ttl_ns(NULL, 100), "config");
    CHECK_NULL_ARG(afc_config_set_shards(NULL, 1), "config");
    CHECK_NULL_ARG(afc_config_use_manual_clock(NULL, 0), "config");
    CHECK_NULL_ARG(afc_config_set_listener(NULL, ignore_removal, NULL), "config");
    CHECK_NULL_ARG(afc_config_set_handle_release(NULL, ignore_release, NULL), "config");

    CHECK_OK(afc_config_new(10, &config));
    CHECK(config != NULL);
    CHECK_NULL_ARG(afc_config_set_listener(config, NULL, NULL), "listener");
    /* The primed message is this one; make sure the call sets it anew. */
    CHECK_NULL_ARG(afc_cache_len(NULL, NULL), "cache");
    CHECK_ST(afc_config_set_handle_release(config, NULL, NULL), AFC_NULL_POINTER);
    CHECK_LAST_ERROR_IS("release must not be NULL");
    /* user_data may be NULL. */
    CHECK_OK(afc_config_set_listener(config, ignore_removal, NULL));
    CHECK_OK(afc_config_set_handle_release(config, ignore_release, NULL));
    afc_config_free(config);
    afc_config_free(NULL); /* ignored */
}

/* Builds a cache from `config`, expecting AFC_INVALID_CONFIG with `needle` in the message. */
static void expect_invalid_config(afc_config *config, const char *needle, int line) {
    afc_cache *cache = (afc_cache *)&cache; /* a non-NULL sentinel the call must overwrite */
    size_t len = 0;
    afc_test_prime_error();
    afc_check_status(afc_cache_new(config, &cache), AFC_INVALID_CONFIG, __FILE__, line,
                     "afc_cache_new(invalid config)");
    afc_check(cache == NULL, __FILE__, line, "*out == NULL after a failed afc_cache_new", NULL);
    afc_check_last_error(needle, false, __FILE__, line);
    /* The NULL handle is then refused by every function, never dereferenced. */
    CHECK_NULL_ARG(afc_cache_len(cache, &len), "cache");
    CHECK_NULL_ARG(afc_cache_put(cache, K("k"), K("v"), 0), "cache");
    CHECK_NULL_ARG(afc_cache_clear(cache), "cache");
    afc_cache_free(cache); /* NULL is ignored */
}

static void test_invalid_configs(void) {
    afc_config *config = NULL;
    afc_cache *cache = NULL;

    CHECK_OK(afc_config_new(0, &config));
    expect_invalid_config(config, "max_entries", __LINE__);
    afc_config_free(config);

    CHECK_OK(afc_config_new(UINT64_MAX, &config));
    expect_invalid_config(config, "max_entries", __LINE__);
    afc_config_free(config);

    CHECK_OK(afc_config_new((uint64_t)UINT32_MAX, &config)); /* the limit is 2^32 - 2 */
    expect_invalid_config(config, "max_entries", __LINE__);
    afc_config_free(config);

    CHECK_OK(afc_config_new(10, &config));
    CHECK_OK(afc_config_set_default_ttl_ns(config, 0));
    expect_invalid_config(config, "TTL", __LINE__);
    afc_config_free(config);

    CHECK_OK(afc_config_new(10, &config));
    CHECK_OK(afc_config_set_max_bytes(config, 0));
    expect_invalid_config(config, "max_bytes", __LINE__);
    afc_config_free(config);

    CHECK_OK(afc_config_new(4, &config));
    CHECK_OK(afc_config_set_shards(config, 5)); /* more shards than entries */
    expect_invalid_config(config, "shards", __LINE__);
    /* The same configuration, fixed, builds (a failed build leaves it usable). */
    CHECK_OK(afc_config_set_shards(config, 4));
    CHECK_OK(afc_cache_new(config, &cache));
    CHECK(cache != NULL);
    afc_cache_free(cache);
    afc_config_free(config);

    CHECK_OK(afc_config_new(10, &config));
    CHECK_OK(afc_config_set_shards(config, 0));
    expect_invalid_config(config, "shards", __LINE__);
    afc_config_free(config);

    CHECK_OK(afc_config_new(1000000, &config));
    CHECK_OK(afc_config_set_shards(config, 1025)); /* above the 1024 limit */
    expect_invalid_config(config, "shards", __LINE__);
    afc_config_free(config);

    /* A NULL configuration. */
    cache = (afc_cache *)&cache;
    CHECK_NULL_ARG(afc_cache_new(NULL, &cache), "config");
    CHECK(cache == NULL);
    CHECK_OK(afc_config_new(10, &config));
    CHECK_NULL_ARG(afc_cache_new(config, NULL), "out");
    afc_config_free(config);
}

static void test_config_is_independent_of_cache(void) {
    afc_config *config = NULL;
    afc_cache *a = NULL, *b = NULL;
    char buf[16];
    CHECK_OK(afc_config_new(8, &config));
    CHECK_OK(afc_config_set_max_bytes(config, 1000));
    CHECK_OK(afc_cache_new(config, &a));
    /* Changing the configuration afterwards does not change the cache built from it. */
    CHECK_OK(afc_config_set_max_bytes(config, 4));
    CHECK_OK(afc_cache_new(config, &b));
    afc_config_free(config);
    CHECK_OK(afc_cache_put(a, K("key"), K("a longer value"), 0));
    CHECK(afc_test_get_str(a, "key", buf, sizeof buf) != NULL);
    CHECK_FAILS(afc_cache_put(b, K("key"), K("a longer value"), 0), AFC_ENTRY_TOO_HEAVY,
                "max_bytes");
    afc_cache_free(a);
    afc_cache_free(b);
}

static void test_listener_then_release_makes_a_handle_cache(void) {
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    CHECK_OK(afc_config_new(8, &config));
    CHECK_OK(afc_config_set_listener(config, ignore_removal, NULL));
    CHECK_OK(afc_config_set_handle_release(config, ignore_release, NULL)); /* replaces it */
    CHECK_OK(afc_cache_new(config, &cache));
    CHECK_OK(afc_cache_put_handle(cache, K("h"), 1, 0, 0));
    CHECK_FAILS(afc_cache_put(cache, K("k"), K("v"), 0), AFC_WRONG_VALUE_KIND, "handle cache");
    afc_cache_free(cache);
    /* ... and the other way round gives a byte cache. */
    CHECK_OK(afc_config_set_listener(config, ignore_removal, NULL));
    CHECK_OK(afc_cache_new(config, &cache));
    CHECK_OK(afc_cache_put(cache, K("k"), K("v"), 0));
    CHECK_FAILS(afc_cache_put_handle(cache, K("h"), 1, 0, 0), AFC_WRONG_VALUE_KIND, "byte cache");
    afc_cache_free(cache);
    afc_config_free(config);
}

/* ----- byte-cache functions: NULL pointers --------------------------------------------------- */

static void test_cache_null_pointers(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, 0);
    uint8_t buf[32];
    size_t len = 0;
    uint64_t u64 = 0;
    bool flag = false;
    afc_stats stats;
    afc_iter *iter = NULL;

    CHECK_OK(afc_cache_put(cache, K("key"), K("value"), 0));

    CHECK_NULL_ARG(afc_cache_get(NULL, K("key"), buf, sizeof buf, &len), "cache");
    CHECK_NULL_ARG(afc_cache_get(cache, NULL, 3, buf, sizeof buf, &len), "key");
    CHECK_NULL_ARG(afc_cache_get(cache, K("key"), NULL, sizeof buf, &len), "buf");
    CHECK_NULL_ARG(afc_cache_get(cache, K("key"), buf, sizeof buf, NULL), "out_len");

    CHECK_NULL_ARG(afc_cache_peek(NULL, K("key"), buf, sizeof buf, &len), "cache");
    CHECK_NULL_ARG(afc_cache_peek(cache, NULL, 3, buf, sizeof buf, &len), "key");
    CHECK_NULL_ARG(afc_cache_peek(cache, K("key"), NULL, sizeof buf, &len), "buf");
    CHECK_NULL_ARG(afc_cache_peek(cache, K("key"), buf, sizeof buf, NULL), "out_len");

    CHECK_NULL_ARG(afc_cache_contains(NULL, K("key"), &flag), "cache");
    CHECK_NULL_ARG(afc_cache_contains(cache, NULL, 3, &flag), "key");
    CHECK_NULL_ARG(afc_cache_contains(cache, K("key"), NULL), "out");

    CHECK_NULL_ARG(afc_cache_put(NULL, K("key"), K("value"), 0), "cache");
    CHECK_NULL_ARG(afc_cache_put(cache, NULL, 3, K("value"), 0), "key");
    CHECK_NULL_ARG(afc_cache_put(cache, K("key"), NULL, 5, 0), "value");

    CHECK_NULL_ARG(afc_cache_put_weighted(NULL, K("key"), K("value"), 0, 1), "cache");
    CHECK_NULL_ARG(afc_cache_put_weighted(cache, NULL, 3, K("value"), 0, 1), "key");
    CHECK_NULL_ARG(afc_cache_put_weighted(cache, K("key"), NULL, 5, 0, 1), "value");

    CHECK_NULL_ARG(afc_cache_remove(NULL, K("key")), "cache");
    CHECK_NULL_ARG(afc_cache_remove(cache, NULL, 3), "key");

    CHECK_NULL_ARG(afc_cache_remaining_ttl(NULL, K("key"), &u64), "cache");
    CHECK_NULL_ARG(afc_cache_remaining_ttl(cache, NULL, 3, &u64), "key");
    CHECK_NULL_ARG(afc_cache_remaining_ttl(cache, K("key"), NULL), "out_ns");

    CHECK_NULL_ARG(afc_cache_clear(NULL), "cache");
    CHECK_NULL_ARG(afc_cache_len(NULL, &len), "cache");
    CHECK_NULL_ARG(afc_cache_len(cache, NULL), "out");
    CHECK_NULL_ARG(afc_cache_weight(NULL, &u64), "cache");
    CHECK_NULL_ARG(afc_cache_weight(cache, NULL), "out");
    CHECK_NULL_ARG(afc_cache_stats(NULL, &stats), "cache");
    CHECK_NULL_ARG(afc_cache_stats(cache, NULL), "out");
    CHECK_NULL_ARG(afc_cache_reset_stats(NULL), "cache");
    CHECK_NULL_ARG(afc_cache_expire(NULL, &len), "cache");
    CHECK_OK(afc_cache_expire(cache, NULL)); /* out_expired may be NULL */
    CHECK_NULL_ARG(afc_cache_resize(NULL, 10), "cache");
    CHECK_NULL_ARG(afc_cache_set_max_bytes(NULL, 10), "cache");
    CHECK_NULL_ARG(afc_cache_clock_set(NULL, 10), "cache");
    CHECK_NULL_ARG(afc_cache_clock_advance(NULL, 10), "cache");
    CHECK_NULL_ARG(afc_cache_clock_now(NULL, &u64), "cache");
    CHECK_NULL_ARG(afc_cache_clock_now(cache, NULL), "out_ns");

    CHECK_NULL_ARG(afc_value_out_set(NULL, K("value")), "out");
    CHECK_NULL_ARG(afc_cache_get_or_insert(NULL, K("k"), compute_fixed, NULL, buf, sizeof buf,
                                           &len),
                   "cache");
    CHECK_NULL_ARG(afc_cache_get_or_insert(cache, NULL, 1, compute_fixed, NULL, buf, sizeof buf,
                                           &len),
                   "key");
    CHECK_NULL_ARG(afc_cache_get_or_insert(cache, K("k"), NULL, NULL, buf, sizeof buf, &len),
                   "compute");
    CHECK_NULL_ARG(afc_cache_get_or_insert(cache, K("k"), compute_fixed, NULL, NULL, sizeof buf,
                                           &len),
                   "buf");
    CHECK_NULL_ARG(afc_cache_get_or_insert(cache, K("k"), compute_fixed, NULL, buf, sizeof buf,
                                           NULL),
                   "out_len");

    CHECK_NULL_ARG(afc_iter_new(NULL, &iter), "cache");
    CHECK_NULL_ARG(afc_iter_new(cache, NULL), "out");

    /* Nothing above changed the cache. */
    CHECK_EQ(afc_test_len(cache), 1);
    CHECK(!afc_cache_contains(cache, K("k"), &flag) && !flag);
    CHECK_OK(afc_cache_peek(cache, K("key"), buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "value");
    afc_cache_free(cache);
    afc_cache_free(NULL);
}

/* A NULL pointer with a zero length is an empty buffer, not an error. */
static void test_null_with_zero_length_is_empty(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, 0);
    uint8_t buf[8];
    size_t len = 99;
    bool flag = false;
    CHECK_OK(afc_cache_put(cache, NULL, 0, NULL, 0, 0)); /* empty key, empty value */
    CHECK_OK(afc_cache_contains(cache, NULL, 0, &flag));
    CHECK(flag);
    CHECK_OK(afc_cache_get(cache, NULL, 0, NULL, 0, &len));
    CHECK_EQ(len, 0);
    CHECK_OK(afc_cache_put(cache, NULL, 0, K("v"), 0));
    CHECK_ST(afc_cache_get(cache, NULL, 0, NULL, 0, &len), AFC_BUFFER_TOO_SMALL);
    CHECK_EQ(len, 1);
    CHECK_OK(afc_cache_get(cache, NULL, 0, buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "v");
    CHECK_OK(afc_cache_remove(cache, NULL, 0));
    CHECK_ST(afc_cache_get(cache, NULL, 0, NULL, 0, &len), AFC_NOT_FOUND);
    afc_cache_free(cache);
}

/* ----- batch functions ---------------------------------------------------------------------- */

static void test_batch_null_pointers(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, 0);
    const uint8_t keys[] = "abc";
    const size_t key_lens[] = {1, 2};
    const uint8_t values[] = "xyz";
    const size_t value_lens[] = {2, 1};
    uint8_t out[16];
    size_t offsets[2], lens[2], needed = 0;

    CHECK_NULL_ARG(afc_cache_get_many(NULL, keys, key_lens, 2, out, sizeof out, offsets, lens,
                                      &needed),
                   "cache");
    CHECK_NULL_ARG(afc_cache_get_many(cache, NULL, key_lens, 2, out, sizeof out, offsets, lens,
                                      &needed),
                   "keys");
    CHECK_NULL_ARG(afc_cache_get_many(cache, keys, NULL, 2, out, sizeof out, offsets, lens,
                                      &needed),
                   "key_lens");
    CHECK_NULL_ARG(afc_cache_get_many(cache, keys, key_lens, 2, NULL, sizeof out, offsets, lens,
                                      &needed),
                   "values");
    CHECK_NULL_ARG(afc_cache_get_many(cache, keys, key_lens, 2, out, sizeof out, NULL, lens,
                                      &needed),
                   "value_offsets");
    CHECK_NULL_ARG(afc_cache_get_many(cache, keys, key_lens, 2, out, sizeof out, offsets, NULL,
                                      &needed),
                   "value_lens");
    CHECK_NULL_ARG(afc_cache_get_many(cache, keys, key_lens, 2, out, sizeof out, offsets, lens,
                                      NULL),
                   "out_needed");
    /* n == 0: every array may be NULL (out_needed still receives 0), whatever values_cap says. */
    needed = 99;
    CHECK_OK(afc_cache_get_many(cache, NULL, NULL, 0, NULL, 0, NULL, NULL, &needed));
    CHECK_EQ(needed, 0);
    needed = 99;
    CHECK_OK(afc_cache_get_many(cache, NULL, NULL, 0, NULL, 64, NULL, NULL, &needed));
    CHECK_EQ(needed, 0);

    CHECK_NULL_ARG(afc_cache_put_many(NULL, keys, key_lens, values, value_lens, 2, 0), "cache");
    CHECK_NULL_ARG(afc_cache_put_many(cache, NULL, key_lens, values, value_lens, 2, 0), "keys");
    CHECK_NULL_ARG(afc_cache_put_many(cache, keys, NULL, values, value_lens, 2, 0), "key_lens");
    CHECK_NULL_ARG(afc_cache_put_many(cache, keys, key_lens, NULL, value_lens, 2, 0), "values");
    CHECK_NULL_ARG(afc_cache_put_many(cache, keys, key_lens, values, NULL, 2, 0), "value_lens");
    CHECK_OK(afc_cache_put_many(cache, NULL, NULL, NULL, NULL, 0, 0));

    CHECK_EQ(afc_test_len(cache), 0); /* nothing was stored by the refused calls */
    afc_cache_free(cache);
}

/* ----- handle functions --------------------------------------------------------------------- */

static void test_handle_null_pointers(void) {
    afc_cache *cache = handle_cache();
    const uint8_t keys[] = "abc";
    const size_t key_lens[] = {1, 2};
    const uint64_t handles[] = {1, 2};
    const uint64_t weights[] = {1, 1};
    uint64_t out_handles[2], handle = 0;
    uint8_t found[2];

    CHECK_NULL_ARG(afc_cache_put_handle(NULL, K("h"), 1, 0, 0), "cache");
    CHECK_NULL_ARG(afc_cache_put_handle(cache, NULL, 1, 1, 0, 0), "key");
    CHECK_NULL_ARG(afc_cache_get_handle(NULL, K("h"), &handle), "cache");
    CHECK_NULL_ARG(afc_cache_get_handle(cache, NULL, 1, &handle), "key");
    CHECK_NULL_ARG(afc_cache_get_handle(cache, K("h"), NULL), "out");
    CHECK_NULL_ARG(afc_cache_peek_handle(NULL, K("h"), &handle), "cache");
    CHECK_NULL_ARG(afc_cache_peek_handle(cache, NULL, 1, &handle), "key");
    CHECK_NULL_ARG(afc_cache_peek_handle(cache, K("h"), NULL), "out");

    CHECK_NULL_ARG(afc_cache_get_many_handles(NULL, keys, key_lens, 2, out_handles, found),
                   "cache");
    CHECK_NULL_ARG(afc_cache_get_many_handles(cache, NULL, key_lens, 2, out_handles, found),
                   "keys");
    CHECK_NULL_ARG(afc_cache_get_many_handles(cache, keys, NULL, 2, out_handles, found),
                   "key_lens");
    CHECK_NULL_ARG(afc_cache_get_many_handles(cache, keys, key_lens, 2, NULL, found),
                   "out_handles");
    CHECK_NULL_ARG(afc_cache_get_many_handles(cache, keys, key_lens, 2, out_handles, NULL),
                   "out_found");
    CHECK_OK(afc_cache_get_many_handles(cache, NULL, NULL, 0, NULL, NULL));

    CHECK_NULL_ARG(afc_cache_put_many_handles(NULL, keys, key_lens, handles, weights, 2, 0),
                   "cache");
    CHECK_NULL_ARG(afc_cache_put_many_handles(cache, NULL, key_lens, handles, weights, 2, 0),
                   "keys");
    CHECK_NULL_ARG(afc_cache_put_many_handles(cache, keys, NULL, handles, weights, 2, 0),
                   "key_lens");
    CHECK_NULL_ARG(afc_cache_put_many_handles(cache, keys, key_lens, NULL, weights, 2, 0),
                   "handles");
    CHECK_NULL_ARG(afc_cache_put_many_handles(cache, keys, key_lens, handles, NULL, 2, 0),
                   "weights");
    CHECK_OK(afc_cache_put_many_handles(cache, NULL, NULL, NULL, NULL, 0, 0));

    {
        const uint64_t ttls[] = {0, 0};
        uint8_t kept[2];
        CHECK_NULL_ARG(afc_cache_load_handles(NULL, keys, key_lens, handles, weights, ttls, 2,
                                              kept),
                       "cache");
        CHECK_NULL_ARG(afc_cache_load_handles(cache, NULL, key_lens, handles, weights, ttls, 2,
                                              kept),
                       "keys");
        CHECK_NULL_ARG(afc_cache_load_handles(cache, keys, NULL, handles, weights, ttls, 2, kept),
                       "key_lens");
        CHECK_NULL_ARG(afc_cache_load_handles(cache, keys, key_lens, NULL, weights, ttls, 2,
                                              kept),
                       "handles");
        CHECK_NULL_ARG(afc_cache_load_handles(cache, keys, key_lens, handles, NULL, ttls, 2,
                                              kept),
                       "weights");
        CHECK_NULL_ARG(afc_cache_load_handles(cache, keys, key_lens, handles, weights, NULL, 2,
                                              kept),
                       "ttls_ns");
    }

    CHECK_EQ(afc_test_len(cache), 0);
    afc_cache_free(cache);
}

/* ----- iterator ----------------------------------------------------------------------------- */

static void test_iter_null_pointers(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, 0);
    afc_iter *iter = NULL;
    const uint8_t *key = NULL, *value = NULL;
    size_t key_len = 0, value_len = 0, left = 0;
    uint64_t ttl = 0;

    CHECK_OK(afc_cache_put(cache, K("k"), K("v"), 0));
    CHECK_OK(afc_iter_new(cache, &iter));
    CHECK_NULL_ARG(afc_iter_next(NULL, &key, &key_len, &value, &value_len, &ttl), "iter");
    CHECK_NULL_ARG(afc_iter_next(iter, NULL, &key_len, &value, &value_len, &ttl), "out_key");
    CHECK_NULL_ARG(afc_iter_next(iter, &key, NULL, &value, &value_len, &ttl), "out_key_len");
    CHECK_NULL_ARG(afc_iter_next(iter, &key, &key_len, NULL, &value_len, &ttl), "out_value");
    CHECK_NULL_ARG(afc_iter_next(iter, &key, &key_len, &value, NULL, &ttl), "out_value_len");
    CHECK_NULL_ARG(afc_iter_next(iter, &key, &key_len, &value, &value_len, NULL), "out_ttl_ns");
    CHECK_NULL_ARG(afc_iter_remaining(NULL, &left), "iter");
    CHECK_NULL_ARG(afc_iter_remaining(iter, NULL), "out");
    /* The refused calls did not advance the iterator. */
    CHECK_OK(afc_iter_remaining(iter, &left));
    CHECK_EQ(left, 1);
    CHECK_OK(afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl));
    CHECK_BYTES(key, key_len, "k");
    CHECK_BYTES(value, value_len, "v");
    afc_iter_free(iter);
    afc_iter_free(NULL);
    afc_cache_free(cache);
}

/* ----- impossible lengths ------------------------------------------------------------------- */

static void test_impossible_lengths(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, 0);
    afc_cache *handles = handle_cache();
    uint8_t buf[32];
    const uint8_t keys[] = "abcdef";
    size_t len = 0, needed = 0, offsets[2], lens[2];
    const size_t overflowing[] = {SIZE_MAX, 2};
    const size_t huge_one[] = {HUGE_LEN};
    const size_t small[] = {1, 1};
    const uint64_t hs[] = {1, 2}, ws[] = {1, 1};
    uint64_t u64 = 0, out_handles[2];
    uint8_t found[2];
    bool flag = false;

    CHECK_OK(afc_cache_put(cache, K("key"), K("value"), 0));
    CHECK_INVALID(afc_cache_get(cache, buf, HUGE_LEN, buf, sizeof buf, &len));
    CHECK_INVALID(afc_cache_get(cache, buf, JUST_TOO_BIG, buf, sizeof buf, &len));
    CHECK_INVALID(afc_cache_get(cache, K("key"), buf, HUGE_LEN, &len));
    CHECK_INVALID(afc_cache_get(cache, NULL, HUGE_LEN, buf, sizeof buf, &len));
    CHECK_INVALID(afc_cache_peek(cache, buf, HUGE_LEN, buf, sizeof buf, &len));
    CHECK_INVALID(afc_cache_peek(cache, K("key"), buf, JUST_TOO_BIG, &len));
    CHECK_INVALID(afc_cache_contains(cache, buf, HUGE_LEN, &flag));
    CHECK_INVALID(afc_cache_put(cache, buf, HUGE_LEN, K("v"), 0));
    CHECK_INVALID(afc_cache_put(cache, K("k"), buf, HUGE_LEN, 0));
    CHECK_INVALID(afc_cache_put(cache, K("k"), buf, JUST_TOO_BIG, 0));
    CHECK_INVALID(afc_cache_put_weighted(cache, buf, HUGE_LEN, K("v"), 0, 1));
    CHECK_INVALID(afc_cache_put_weighted(cache, K("k"), buf, HUGE_LEN, 0, 1));
    CHECK_INVALID(afc_cache_remove(cache, buf, HUGE_LEN));
    CHECK_INVALID(afc_cache_remaining_ttl(cache, buf, HUGE_LEN, &u64));
    CHECK_INVALID(afc_cache_get_or_insert(cache, buf, HUGE_LEN, compute_fixed, NULL, buf,
                                          sizeof buf, &len));
    CHECK_INVALID(afc_cache_get_or_insert(cache, K("k"), compute_fixed, NULL, buf, HUGE_LEN,
                                          &len));

    /* Batches: a count or a sum of lengths no memory can hold. */
    CHECK_INVALID(afc_cache_get_many(cache, keys, small, HUGE_LEN, buf, sizeof buf, offsets, lens,
                                     &needed));
    CHECK_INVALID(afc_cache_get_many(cache, keys, small, SIZE_MAX / 4, buf, sizeof buf, offsets,
                                     lens, &needed));
    CHECK_INVALID(afc_cache_get_many(cache, keys, overflowing, 2, buf, sizeof buf, offsets, lens,
                                     &needed));
    CHECK_INVALID(afc_cache_get_many(cache, keys, huge_one, 1, buf, sizeof buf, offsets, lens,
                                     &needed));
    CHECK_INVALID(afc_cache_get_many(cache, keys, small, 2, buf, HUGE_LEN, offsets, lens,
                                     &needed));
    CHECK_INVALID(afc_cache_put_many(cache, keys, small, keys, small, HUGE_LEN, 0));
    CHECK_INVALID(afc_cache_put_many(cache, keys, overflowing, keys, small, 2, 0));
    CHECK_INVALID(afc_cache_put_many(cache, keys, small, keys, overflowing, 2, 0));
    CHECK_INVALID(afc_cache_put_many(cache, keys, huge_one, keys, huge_one, 1, 0));

    CHECK_INVALID(afc_cache_put_handle(handles, buf, HUGE_LEN, 1, 0, 0));
    CHECK_INVALID(afc_cache_get_handle(handles, buf, HUGE_LEN, &u64));
    CHECK_INVALID(afc_cache_peek_handle(handles, buf, HUGE_LEN, &u64));
    CHECK_INVALID(afc_cache_get_many_handles(handles, keys, small, HUGE_LEN, out_handles, found));
    CHECK_INVALID(afc_cache_get_many_handles(handles, keys, overflowing, 2, out_handles, found));
    CHECK_INVALID(afc_cache_put_many_handles(handles, keys, small, hs, ws, HUGE_LEN, 0));
    CHECK_INVALID(afc_cache_put_many_handles(handles, keys, overflowing, hs, ws, 2, 0));
    CHECK_INVALID(afc_cache_put_many_handles(handles, keys, small, hs, ws, SIZE_MAX / 8 + 1, 0));
    CHECK_INVALID(afc_cache_load_handles(handles, keys, small, hs, ws, ws, HUGE_LEN, NULL));
    CHECK_INVALID(afc_cache_load_handles(handles, keys, overflowing, hs, ws, ws, 2, NULL));

    /* Nothing was stored or changed. */
    CHECK_EQ(afc_test_len(cache), 1);
    CHECK_EQ(afc_test_len(handles), 0);
    afc_cache_free(cache);
    afc_cache_free(handles);
}

static int32_t compute_with_bad_lengths(void *user_data, const uint8_t *key, size_t key_len,
                                        afc_value_out *out) {
    int *ok = user_data;
    (void)key, (void)key_len;
    *ok = afc_value_out_set(out, (const uint8_t *)"x", HUGE_LEN) == AFC_INVALID_ARGUMENT &&
          afc_value_out_set(out, NULL, 3) == AFC_NULL_POINTER;
    return afc_value_out_set(out, (const uint8_t *)"good", 4) == AFC_OK ? 0 : 1;
}

static void test_value_out_set_errors(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, 0);
    uint8_t buf[16];
    size_t len = 0;
    int ok = 0;
    CHECK_OK(afc_cache_get_or_insert(cache, K("k"), compute_with_bad_lengths, &ok, buf, sizeof buf,
                                     &len));
    CHECK(ok);
    CHECK_BYTES(buf, len, "good");
    afc_cache_free(cache);
}

/* ----- entry limits ------------------------------------------------------------------------- */

static void test_entry_too_large_and_too_heavy(void) {
    afc_cache *unbounded = afc_test_cache(16, 0, 0, 1, 0);
    afc_cache *bounded = afc_test_cache(16, 100, 0, 1, 0);
    afc_cache *handles = handle_cache();
    uint8_t buf[16];
    size_t len = 0;

    /* A weight above 2^32 - 2 is too large for any cache; the message gives the real limits. */
    CHECK_FAILS(afc_cache_put_weighted(unbounded, K("k"), K("v"), 0, 0xFFFFFFFFull),
                AFC_ENTRY_TOO_LARGE,
                "exceeds the limit: keys and weights are at most 4294967294, a key and its value "
                "together at most 4294967295 bytes");
    CHECK_FAILS(afc_cache_put_weighted(unbounded, K("k"), K("v"), 0, UINT64_MAX),
                AFC_ENTRY_TOO_LARGE, NULL);
    CHECK_OK(afc_cache_put_weighted(unbounded, K("k"), K("v"), 0, 0xFFFFFFFEull));
    CHECK_FAILS(afc_cache_put_handle(handles, K("h"), 7, 0x100000000ull, 0), AFC_ENTRY_TOO_LARGE,
                NULL);

    /* Heavier than max_bytes: refused, and an older value stays. */
    CHECK_OK(afc_cache_put(bounded, K("k"), K("old"), 0));
    CHECK_FAILS(afc_cache_put_weighted(bounded, K("k"), K("new"), 0, 101), AFC_ENTRY_TOO_HEAVY,
                "max_bytes 100");
    CHECK_FAILS(afc_cache_put_weighted(bounded, K("k"), K("new"), 0, 0xFFFFFFFEull),
                AFC_ENTRY_TOO_HEAVY, NULL);
    CHECK_OK(afc_cache_get(bounded, K("k"), buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "old");
    CHECK_OK(afc_cache_put_weighted(bounded, K("k"), K("new"), 0, 100)); /* exactly the bound */
    CHECK_OK(afc_cache_get(bounded, K("k"), buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "new");

    afc_cache_free(unbounded);
    afc_cache_free(bounded);
    afc_cache_free(handles);
}

/* Keys and values above the engine's 4 GiB - 2 limit are refused before a byte of them is read:
 * the buffers here are 5 GiB of address space that may not be read (PROT_NONE). */
static void test_entry_too_large_is_refused_unread(void) {
    const size_t big = (size_t)5 << 30;
    uint8_t *unreadable;
    afc_cache *cache, *handles;
    size_t lens[2];
    const uint64_t hs[1] = {1}, ws[1] = {0};
    if (sizeof(size_t) < 8) return;
    unreadable = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (unreadable == MAP_FAILED) {
        printf("  (skipped: cannot reserve 5 GiB of address space)\n");
        return;
    }
    cache = afc_test_cache(16, 0, 0, 1, 0);
    handles = handle_cache();
    CHECK_FAILS(afc_cache_put(cache, unreadable, big, K("v"), 0), AFC_ENTRY_TOO_LARGE,
                "exceeds the limit");
    CHECK_FAILS(afc_cache_put(cache, K("k"), unreadable, big, 0), AFC_ENTRY_TOO_LARGE, NULL);
    CHECK_FAILS(afc_cache_put_weighted(cache, K("k"), unreadable, big, 0, 1), AFC_ENTRY_TOO_LARGE,
                NULL);
    lens[0] = 1;
    lens[1] = big;
    CHECK_FAILS(afc_cache_put_many(cache, (const uint8_t *)"kk", (const size_t[]){1, 1}, unreadable,
                                   lens, 2, 0),
                AFC_ENTRY_TOO_LARGE, NULL);
    CHECK_FAILS(afc_cache_put_handle(handles, unreadable, big, 1, 0, 0), AFC_ENTRY_TOO_LARGE, NULL);
    CHECK_FAILS(afc_cache_put_many_handles(handles, unreadable, &big, hs, ws, 1, 0),
                AFC_ENTRY_TOO_LARGE, NULL);
    CHECK_FAILS(afc_cache_load_handles(handles, unreadable, &big, hs, ws, ws, 1, NULL),
                AFC_ENTRY_TOO_LARGE, NULL);
    CHECK_EQ(afc_test_len(cache), 0);
    CHECK_EQ(afc_test_len(handles), 0);
    afc_cache_free(cache);
    afc_cache_free(handles);
    munmap(unreadable, big);
}

/* ----- bad arguments to the whole-cache functions ------------------------------------------- */

static void test_resize_and_max_bytes_arguments(void) {
    afc_cache *cache = afc_test_cache(64, 0, 0, 4, 0);
    afc_cache *bytes = afc_test_cache(64, 1000, 0, 4, 0);
    CHECK_FAILS(afc_cache_resize(cache, 0), AFC_INVALID_ARGUMENT, "max_entries");
    CHECK_FAILS(afc_cache_resize(cache, 3), AFC_INVALID_ARGUMENT, "shards"); /* < 4 shards */
    CHECK_FAILS(afc_cache_resize(cache, UINT64_MAX), AFC_INVALID_ARGUMENT, "max_entries");
    CHECK_OK(afc_cache_resize(cache, 4));
    /* No byte bound to change on a cache built without one. */
    CHECK_FAILS(afc_cache_set_max_bytes(cache, 100), AFC_INVALID_ARGUMENT, "max_bytes");
    CHECK_FAILS(afc_cache_set_max_bytes(bytes, 0), AFC_INVALID_ARGUMENT, "max_bytes");
    CHECK_OK(afc_cache_set_max_bytes(bytes, 10));
    afc_cache_free(cache);
    afc_cache_free(bytes);
}

/* ----- value kinds -------------------------------------------------------------------------- */

static void test_wrong_value_kind(void) {
    afc_cache *bytes = afc_test_cache(16, 0, 0, 1, 0);
    afc_cache *handles = handle_cache();
    uint8_t buf[16];
    const uint8_t keys[] = "ab";
    const size_t key_lens[] = {1, 1};
    const uint64_t hs[] = {1, 2}, ws[] = {0, 0};
    size_t len = 0, needed = 0, offsets[2], lens[2];
    uint64_t handle = 0, out_handles[2];
    uint8_t found[2];
    bool flag = false;
    afc_iter *iter = NULL;

    /* Handle calls on a byte cache. */
    CHECK_FAILS(afc_cache_put_handle(bytes, K("h"), 1, 0, 0), AFC_WRONG_VALUE_KIND, "byte cache");
    CHECK_FAILS(afc_cache_get_handle(bytes, K("h"), &handle), AFC_WRONG_VALUE_KIND, NULL);
    CHECK_FAILS(afc_cache_peek_handle(bytes, K("h"), &handle), AFC_WRONG_VALUE_KIND, NULL);
    CHECK_FAILS(afc_cache_get_many_handles(bytes, keys, key_lens, 2, out_handles, found),
                AFC_WRONG_VALUE_KIND, NULL);
    CHECK_FAILS(afc_cache_put_many_handles(bytes, keys, key_lens, hs, ws, 2, 0),
                AFC_WRONG_VALUE_KIND, NULL);

    /* Byte calls on a handle cache. */
    CHECK_OK(afc_cache_put_handle(handles, K("h"), 42, 0, 0));
    CHECK_FAILS(afc_cache_put(handles, K("k"), K("v"), 0), AFC_WRONG_VALUE_KIND, "handle cache");
    CHECK_FAILS(afc_cache_put_weighted(handles, K("k"), K("v"), 0, 1), AFC_WRONG_VALUE_KIND, NULL);
    CHECK_FAILS(afc_cache_get(handles, K("h"), buf, sizeof buf, &len), AFC_WRONG_VALUE_KIND, NULL);
    CHECK_FAILS(afc_cache_peek(handles, K("h"), buf, sizeof buf, &len), AFC_WRONG_VALUE_KIND,
                NULL);
    CHECK_FAILS(afc_cache_get_or_insert(handles, K("k"), compute_fixed, NULL, buf, sizeof buf,
                                        &len),
                AFC_WRONG_VALUE_KIND, NULL);
    CHECK_FAILS(afc_cache_get_many(handles, keys, key_lens, 2, buf, sizeof buf, offsets, lens,
                                   &needed),
                AFC_WRONG_VALUE_KIND, NULL);
    CHECK_FAILS(afc_cache_put_many(handles, keys, key_lens, keys, key_lens, 2, 0),
                AFC_WRONG_VALUE_KIND, NULL);

    /* These work on both kinds. */
    CHECK_OK(afc_cache_contains(handles, K("h"), &flag));
    CHECK(flag);
    CHECK_OK(afc_cache_remaining_ttl(handles, K("h"), &handle));
    CHECK_EQ(handle, UINT64_MAX);
    CHECK_OK(afc_iter_new(handles, &iter));
    afc_iter_free(iter);
    CHECK_OK(afc_cache_remove(handles, K("h")));
    CHECK_OK(afc_cache_clear(handles));

    CHECK_EQ(afc_test_len(bytes), 0);
    afc_cache_free(bytes);
    afc_cache_free(handles);
}

/* ----- clocks ------------------------------------------------------------------------------- */

static void test_not_manual_clock(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, NO_MANUAL_CLOCK);
    uint64_t a = 0, b = 0;
    CHECK_FAILS(afc_cache_clock_set(cache, 5), AFC_NOT_MANUAL_CLOCK, "afc_config_use_manual_clock");
    CHECK_FAILS(afc_cache_clock_advance(cache, 5), AFC_NOT_MANUAL_CLOCK, NULL);
    /* Reading the time works on either kind, and monotonic time moves forward. */
    CHECK_OK(afc_cache_clock_now(cache, &a));
    afc_test_sleep_ms(2);
    CHECK_OK(afc_cache_clock_now(cache, &b));
    CHECK(b >= a + 1000000);
    afc_cache_free(cache);
}

/* ----- compute callbacks -------------------------------------------------------------------- */

static int32_t compute_fails(void *user_data, const uint8_t *key, size_t key_len,
                             afc_value_out *out) {
    (void)key, (void)key_len;
    ++*(int *)user_data;
    afc_value_out_set(out, (const uint8_t *)"ignored", 7); /* a failure discards any value */
    return 7;
}

static int32_t compute_sets_nothing(void *user_data, const uint8_t *key, size_t key_len,
                                    afc_value_out *out) {
    (void)key, (void)key_len, (void)out;
    ++*(int *)user_data;
    return 0;
}

static void test_compute_failures(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, 0);
    uint8_t buf[16];
    size_t len = 12345;
    int calls = 0;
    bool flag = true;
    afc_stats stats;

    CHECK_FAILS(afc_cache_get_or_insert(cache, K("k"), compute_fails, &calls, buf, sizeof buf,
                                        &len),
                AFC_COMPUTE_FAILED, "code 7");
    CHECK_EQ(calls, 1);
    CHECK_EQ(len, 12345); /* outputs untouched on failure */
    CHECK_OK(afc_cache_contains(cache, K("k"), &flag));
    CHECK(!flag);

    CHECK_FAILS(afc_cache_get_or_insert(cache, K("k"), compute_sets_nothing, &calls, buf,
                                        sizeof buf, &len),
                AFC_COMPUTE_FAILED, "afc_value_out_set");
    CHECK_EQ(calls, 2);
    CHECK_OK(afc_cache_contains(cache, K("k"), &flag));
    CHECK(!flag);
    stats = afc_test_stats(cache);
    CHECK_EQ(stats.inserts, 0);
    CHECK_EQ(stats.misses, 2);
    CHECK_EQ(stats.entries, 0);
    afc_cache_free(cache);
}

/* ----- names, versions, last error ---------------------------------------------------------- */

static void test_status_names(void) {
    static const struct {
        afc_status status;
        const char *name;
    } all[] = {
        {AFC_OK, "AFC_OK"},
        {AFC_NOT_FOUND, "AFC_NOT_FOUND"},
        {AFC_BUFFER_TOO_SMALL, "AFC_BUFFER_TOO_SMALL"},
        {AFC_NULL_POINTER, "AFC_NULL_POINTER"},
        {AFC_INVALID_ARGUMENT, "AFC_INVALID_ARGUMENT"},
        {AFC_INVALID_CONFIG, "AFC_INVALID_CONFIG"},
        {AFC_ENTRY_TOO_HEAVY, "AFC_ENTRY_TOO_HEAVY"},
        {AFC_ENTRY_TOO_LARGE, "AFC_ENTRY_TOO_LARGE"},
        {AFC_WRONG_VALUE_KIND, "AFC_WRONG_VALUE_KIND"},
        {AFC_NOT_MANUAL_CLOCK, "AFC_NOT_MANUAL_CLOCK"},
        {AFC_COMPUTE_FAILED, "AFC_COMPUTE_FAILED"},
        {AFC_PANIC, "AFC_PANIC"},
    };
    size_t i;
    for (i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *name = afc_status_name(all[i].status);
        CHECK(name != NULL);
        if (name) CHECK_BYTES((const uint8_t *)name, strlen(name), all[i].name);
    }
    CHECK_BYTES((const uint8_t *)afc_status_name(42), strlen(afc_status_name(42)),
                "AFC_UNKNOWN_STATUS");
    CHECK_BYTES((const uint8_t *)afc_status_name(-1), strlen(afc_status_name(-1)),
                "AFC_UNKNOWN_STATUS");
    /* The documented numeric values (a stable ABI). */
    CHECK_EQ(AFC_OK, 0);
    CHECK_EQ(AFC_NOT_FOUND, 1);
    CHECK_EQ(AFC_BUFFER_TOO_SMALL, 2);
    CHECK_EQ(AFC_NULL_POINTER, 3);
    CHECK_EQ(AFC_INVALID_ARGUMENT, 4);
    CHECK_EQ(AFC_INVALID_CONFIG, 5);
    CHECK_EQ(AFC_ENTRY_TOO_HEAVY, 6);
    CHECK_EQ(AFC_ENTRY_TOO_LARGE, 7);
    CHECK_EQ(AFC_WRONG_VALUE_KIND, 8);
    CHECK_EQ(AFC_NOT_MANUAL_CLOCK, 9);
    CHECK_EQ(AFC_COMPUTE_FAILED, 10);
    CHECK_EQ(AFC_PANIC, 100);
    CHECK_EQ(AFC_CAUSE_EVICTED, 0);
    CHECK_EQ(AFC_CAUSE_EXPIRED, 1);
    CHECK_EQ(AFC_CAUSE_REMOVED, 2);
    CHECK_EQ(AFC_CAUSE_REPLACED, 3);
    CHECK_EQ(AFC_CAUSE_CLEARED, 4);
    CHECK_EQ(AFC_MISSING, SIZE_MAX);
    CHECK_EQ(sizeof(afc_stats), 9 * sizeof(uint64_t));
}

static void test_versions(void) {
    char expected[64];
    const char *version = afc_version();
    snprintf(expected, sizeof expected, "%d.%d.%d", AFC_VERSION_MAJOR, AFC_VERSION_MINOR,
             AFC_VERSION_PATCH);
    CHECK(version != NULL);
    if (version) CHECK_BYTES((const uint8_t *)version, strlen(version), expected);
    CHECK(afc_version() == version); /* a static string */
    CHECK_EQ(afc_abi_version(), AFC_ABI_VERSION);
}

static void *fresh_thread_last_error(void *arg) {
    const char *message = afc_last_error();
    *(int *)arg = message != NULL && message[0] == '\0';
    return NULL;
}

static void test_last_error_rules(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, 0);
    uint8_t buf[4];
    size_t len = 0;
    uint64_t ttl = 0;
    char saved[256];
    pthread_t thread;
    int empty = 0;

    /* A thread that never failed has an empty message. */
    CHECK(pthread_create(&thread, NULL, fresh_thread_last_error, &empty) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(empty);

    /* Expected outcomes (not found, buffer too small) and successes leave the message alone. */
    CHECK_FAILS(afc_cache_resize(cache, 0), AFC_INVALID_ARGUMENT, "max_entries");
    snprintf(saved, sizeof saved, "%s", afc_last_error());
    CHECK_ST(afc_cache_get(cache, K("missing"), buf, sizeof buf, &len), AFC_NOT_FOUND);
    CHECK_ST(afc_cache_remove(cache, K("missing")), AFC_NOT_FOUND);
    CHECK_ST(afc_cache_remaining_ttl(cache, K("missing"), &ttl), AFC_NOT_FOUND);
    CHECK_OK(afc_cache_put(cache, K("k"), K("long value"), 0));
    CHECK_ST(afc_cache_get(cache, K("k"), buf, sizeof buf, &len), AFC_BUFFER_TOO_SMALL);
    CHECK_EQ(len, 10);
    CHECK_LAST_ERROR_IS(saved);
    afc_cache_free(cache);
}

/* A thread's exit runs the destructors of its pthread keys after the library's per-thread
 * storage (its last error) is gone: a failing call there must still return its status, and
 * afc_last_error() a message (a static one), not abort the process. */
typedef struct {
    afc_status failed;       /* a failing call from the key's destructor */
    char message[128];       /* afc_last_error() right after it */
    afc_status succeeded;    /* a call that succeeds, from the same destructor */
    afc_cache *cache;
} thread_exit_state;

static pthread_key_t thread_exit_key;

static void at_thread_exit(void *arg) {
    thread_exit_state *st = arg;
    size_t len = 0;
    const char *message;
    st->failed = afc_cache_len(NULL, &len);
    message = afc_last_error();
    snprintf(st->message, sizeof st->message, "%s", message ? message : "(NULL)");
    st->succeeded = afc_cache_len(st->cache, &len);
}

static void *fail_then_exit(void *arg) {
    size_t len = 0;
    /* A failure first, so that the thread's last-error storage exists and is destroyed at exit. */
    afc_cache_len(NULL, &len);
    pthread_setspecific(thread_exit_key, arg);
    return NULL;
}

static void test_last_error_during_thread_exit(void) {
    thread_exit_state st = {AFC_OK, "", AFC_NULL_POINTER, NULL};
    pthread_t thread;
    st.cache = afc_test_cache(16, 0, 0, 1, 0);
    CHECK(pthread_key_create(&thread_exit_key, at_thread_exit) == 0);
    CHECK(pthread_create(&thread, NULL, fail_then_exit, &st) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK_ST(st.failed, AFC_NULL_POINTER);
    CHECK_BYTES((const uint8_t *)st.message, strlen(st.message),
                "(no message: the thread is exiting)");
    CHECK_OK(st.succeeded);
    CHECK(pthread_key_delete(thread_exit_key) == 0);
    afc_cache_free(st.cache);
}

const afc_test_case afc_error_tests[] = {
    {"errors/config_null_pointers", test_config_null_pointers},
    {"errors/invalid_configs", test_invalid_configs},
    {"errors/config_is_independent_of_cache", test_config_is_independent_of_cache},
    {"errors/listener_then_release_makes_a_handle_cache",
     test_listener_then_release_makes_a_handle_cache},
    {"errors/cache_null_pointers", test_cache_null_pointers},
    {"errors/null_with_zero_length_is_empty", test_null_with_zero_length_is_empty},
    {"errors/batch_null_pointers", test_batch_null_pointers},
    {"errors/handle_null_pointers", test_handle_null_pointers},
    {"errors/iter_null_pointers", test_iter_null_pointers},
    {"errors/impossible_lengths", test_impossible_lengths},
    {"errors/value_out_set_errors", test_value_out_set_errors},
    {"errors/entry_too_large_and_too_heavy", test_entry_too_large_and_too_heavy},
    {"errors/entry_too_large_is_refused_unread", test_entry_too_large_is_refused_unread},
    {"errors/resize_and_max_bytes_arguments", test_resize_and_max_bytes_arguments},
    {"errors/wrong_value_kind", test_wrong_value_kind},
    {"errors/not_manual_clock", test_not_manual_clock},
    {"errors/compute_failures", test_compute_failures},
    {"errors/status_names", test_status_names},
    {"errors/versions", test_versions},
    {"errors/last_error_rules", test_last_error_rules},
    {"errors/last_error_during_thread_exit", test_last_error_during_thread_exit},
};
const size_t afc_error_test_count = sizeof afc_error_tests / sizeof afc_error_tests[0];

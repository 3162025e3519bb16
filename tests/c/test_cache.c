/*
 * Behaviour of byte caches through the C ABI: gets and puts, LRU order, TTLs on the manual
 * clock, the byte bound, statistics, expiry, resizing, batches, the listener (every cause, and
 * calling back into the cache), get_or_insert and iterators.
 */
#define _POSIX_C_SOURCE 200809L

#include "afc_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks the cache's keys, most recently used first (a snapshot through afc_iter). */
#define CHECK_KEYS(cache, want)                                          \
    do {                                                                 \
        char keys_[256];                                                 \
        afc_test_keys((cache), keys_, sizeof keys_);                     \
        CHECK_BYTES((const uint8_t *)keys_, strlen(keys_), want);        \
    } while (0)

/* ----- gets and puts ------------------------------------------------------------------------ */

static void test_put_get_peek_contains_remove(void) {
    afc_cache *cache = afc_test_cache(100, 0, 0, 0, NO_MANUAL_CLOCK);
    uint8_t buf[64];
    size_t len = 0;
    bool flag = false;

    CHECK_OK(afc_cache_put(cache, K("a"), K("alpha"), 0));
    CHECK_OK(afc_cache_get(cache, K("a"), buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "alpha");
    CHECK_OK(afc_cache_peek(cache, K("a"), buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "alpha");
    CHECK_OK(afc_cache_get(cache, K("a"), buf, 5, &len)); /* an exact fit */
    CHECK_BYTES(buf, len, "alpha");
    CHECK_OK(afc_cache_contains(cache, K("a"), &flag));
    CHECK(flag);
    CHECK_OK(afc_cache_contains(cache, K("b"), &flag));
    CHECK(!flag);
    len = 777;
    CHECK_ST(afc_cache_get(cache, K("b"), buf, sizeof buf, &len), AFC_NOT_FOUND);
    CHECK_ST(afc_cache_peek(cache, K("b"), buf, sizeof buf, &len), AFC_NOT_FOUND);
    CHECK_EQ(len, 777); /* outputs are written only on success */

    CHECK_OK(afc_cache_put(cache, K("a"), K("ALPHA, the second"), 0));
    CHECK_OK(afc_cache_get(cache, K("a"), buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "ALPHA, the second");

    /* Keys and values are bytes, NULs included. */
    CHECK_OK(afc_cache_put(cache, (const uint8_t *)"n\0l", 3, (const uint8_t *)"\0\1\2", 3, 0));
    CHECK_OK(afc_cache_get(cache, (const uint8_t *)"n\0l", 3, buf, sizeof buf, &len));
    CHECK(len == 3 && buf[0] == 0 && buf[1] == 1 && buf[2] == 2);
    CHECK_ST(afc_cache_get(cache, (const uint8_t *)"n\0m", 3, buf, sizeof buf, &len),
             AFC_NOT_FOUND);

    CHECK_OK(afc_cache_remove(cache, K("a")));
    CHECK_ST(afc_cache_remove(cache, K("a")), AFC_NOT_FOUND);
    CHECK_EQ(afc_test_len(cache), 1);
    afc_cache_free(cache);
}

static void test_buffer_too_small(void) {
    afc_cache *cache = afc_test_cache(100, 0, 0, 1, 0);
    uint8_t buf[16];
    size_t len = 0;
    afc_stats stats;

    CHECK_OK(afc_cache_put(cache, K("k"), K("0123456789"), 0));
    memset(buf, '#', sizeof buf);
    CHECK_ST(afc_cache_get(cache, K("k"), buf, 4, &len), AFC_BUFFER_TOO_SMALL);
    CHECK_EQ(len, 10); /* the needed length */
    CHECK(buf[0] == '#'); /* nothing partial was copied */
    CHECK_ST(afc_cache_get(cache, K("k"), NULL, 0, &len), AFC_BUFFER_TOO_SMALL);
    CHECK_EQ(len, 10);
    stats = afc_test_stats(cache);
    CHECK_EQ(stats.hits, 2); /* documented: a too-small get still counts as a hit */
    len = 0;
    CHECK_ST(afc_cache_peek(cache, K("k"), buf, 9, &len), AFC_BUFFER_TOO_SMALL);
    CHECK_EQ(len, 10);
    stats = afc_test_stats(cache);
    CHECK_EQ(stats.hits, 2); /* peek counts nothing */
    CHECK_EQ(stats.misses, 0);
    CHECK_OK(afc_cache_peek(cache, K("k"), buf, len, &len));
    CHECK_BYTES(buf, len, "0123456789");
    afc_cache_free(cache);
}

/* ----- LRU order and iterators -------------------------------------------------------------- */

static void test_lru_order(void) {
    afc_cache *cache = afc_test_cache(3, 0, 0, 1, 0);
    char buf[16];
    bool flag = false;

    CHECK_OK(afc_cache_put(cache, K("a"), K("1"), 0));
    CHECK_OK(afc_cache_put(cache, K("b"), K("2"), 0));
    CHECK_OK(afc_cache_put(cache, K("c"), K("3"), 0));
    CHECK_KEYS(cache, "c,b,a");
    CHECK(afc_test_get_str(cache, "a", buf, sizeof buf) != NULL); /* a becomes most recent */
    CHECK_KEYS(cache, "a,c,b");
    {
        size_t len;
        CHECK_OK(afc_cache_peek(cache, K("b"), (uint8_t *)buf, sizeof buf, &len));
    }
    CHECK_OK(afc_cache_contains(cache, K("b"), &flag));
    CHECK_KEYS(cache, "a,c,b"); /* peek and contains leave recency alone */
    CHECK_OK(afc_cache_put(cache, K("d"), K("4"), 0)); /* evicts b, the least recent */
    CHECK_KEYS(cache, "d,a,c");
    CHECK_OK(afc_cache_put(cache, K("c"), K("33"), 0)); /* an update makes c most recent */
    CHECK_KEYS(cache, "c,d,a");
    CHECK_OK(afc_cache_put(cache, K("e"), K("5"), 0));
    CHECK_KEYS(cache, "e,c,d");
    CHECK_EQ(afc_test_stats(cache).evictions, 2);
    CHECK(afc_test_get_str(cache, "b", buf, sizeof buf) == NULL);
    CHECK(afc_test_get_str(cache, "a", buf, sizeof buf) == NULL);
    afc_cache_free(cache);
}

/* A shared afc_clock moves time for every cache built with it; expire_keys lists what it reclaimed. */
static void test_shared_clock_and_expire_keys(void) {
    afc_clock *clock = NULL;
    afc_config *config = NULL;
    afc_cache *a = NULL, *b = NULL;
    afc_iter *it = NULL;
    const uint8_t *key, *value;
    size_t key_len, value_len, left = 99;
    uint64_t now = 0, ttl = 0;
    bool present = true;

    CHECK_OK(afc_clock_new(1000, &clock));
    CHECK_OK(afc_clock_now(clock, &now));
    CHECK_EQ(now, 1000);
    CHECK_OK(afc_config_new(10, &config));
    CHECK_OK(afc_config_set_shards(config, 1));
    CHECK_OK(afc_config_use_clock(config, clock));
    CHECK_OK(afc_cache_new(config, &a));
    CHECK_OK(afc_cache_new(config, &b));
    afc_config_free(config);

    CHECK_OK(afc_cache_put(a, K("x"), K("1"), 50));
    CHECK_OK(afc_cache_put(a, K("y"), K("2"), 100));
    CHECK_OK(afc_cache_put(a, K("z"), K("3"), 0));
    CHECK_OK(afc_cache_put(b, K("w"), K("4"), 50));
    CHECK_OK(afc_clock_advance(clock, 100));
    CHECK_OK(afc_cache_clock_now(b, &now));
    CHECK_EQ(now, 1100);

    CHECK_OK(afc_cache_expire_keys(a, &it));
    CHECK_OK(afc_iter_remaining(it, &left));
    CHECK_EQ(left, 2);
    CHECK_OK(afc_iter_next(it, &key, &key_len, &value, &value_len, &ttl));
    CHECK_BYTES(key, key_len, "y"); /* most recently used first */
    CHECK_EQ(value_len, 0);
    CHECK_OK(afc_iter_next(it, &key, &key_len, &value, &value_len, &ttl));
    CHECK_BYTES(key, key_len, "x");
    CHECK_ST(afc_iter_next(it, &key, &key_len, &value, &value_len, &ttl), AFC_NOT_FOUND);
    afc_iter_free(it);
    CHECK_OK(afc_cache_contains(b, K("w"), &present));
    CHECK(!present);
    CHECK_EQ(afc_test_len(a), 1);

    /* The caller's reference may go first: the caches keep theirs. */
    afc_clock_free(clock);
    CHECK_OK(afc_cache_clock_set(a, 5));
    CHECK_OK(afc_cache_clock_now(b, &now));
    CHECK_EQ(now, 5);
    CHECK_NULL_ARG(afc_clock_new(0, NULL), "out");
    CHECK_NULL_ARG(afc_clock_set(NULL, 1), "clock");
    CHECK_NULL_ARG(afc_clock_advance(NULL, 1), "clock");
    CHECK_NULL_ARG(afc_clock_now(NULL, &now), "clock");
    CHECK_NULL_ARG(afc_config_use_clock(NULL, NULL), "clock");
    CHECK_NULL_ARG(afc_cache_expire_keys(a, NULL), "out");
    afc_clock_free(NULL);
    afc_cache_free(a);
    afc_cache_free(b);
}

typedef afc_status (*record_reads_fn)(const afc_cache *, const uint8_t *, const size_t *, size_t,
                                      uint64_t);

/* Reads served from a binding's mirror are replayed (at once, or handed over to the engine's
   thread): recency and counters as if they were gets. */
static void check_record_reads(record_reads_fn record_reads) {
    afc_cache *cache = afc_test_cache(3, 0, 0, 1, 0);
    const uint8_t keys[] = "agoneb";
    const size_t lens[] = {1, 4, 1};
    afc_stats s;
    bool present = true;
    CHECK_OK(afc_cache_put(cache, K("a"), K("1"), 0));
    CHECK_OK(afc_cache_put(cache, K("b"), K("2"), 0));
    CHECK_OK(afc_cache_put(cache, K("c"), K("3"), 0));
    CHECK_OK(record_reads(cache, keys, lens, 3, 2));
    CHECK_OK(afc_cache_stats(cache, &s));
    CHECK_EQ(s.hits, 2);   /* "gone" is not stored: */
    CHECK_EQ(s.misses, 3); /* it counts a miss */
    CHECK_OK(afc_cache_put(cache, K("d"), K("4"), 0));
    CHECK_OK(afc_cache_contains(cache, K("c"), &present));
    CHECK(!present); /* c became the least recently used */
    CHECK_OK(record_reads(cache, NULL, NULL, 0, 0));
    CHECK_NULL_ARG(record_reads(cache, keys, NULL, 3, 0), "key_lens");
    CHECK_NULL_ARG(record_reads(NULL, keys, lens, 3, 0), "cache");
    afc_cache_free(cache);
}

static afc_status record_at_once(const afc_cache *cache, const uint8_t *keys,
                                 const size_t *key_lens, size_t n, uint64_t misses) {
    return afc_cache_record_reads(cache, keys, key_lens, n, misses);
}

static afc_status record_later(const afc_cache *cache, const uint8_t *keys, const size_t *key_lens,
                               size_t n, uint64_t misses) {
    return afc_cache_record_reads_later(cache, keys, key_lens, n, misses);
}

static void test_record_reads(void) { check_record_reads(record_at_once); }

static void test_record_reads_later(void) { check_record_reads(record_later); }

static void test_iterator_snapshot(void) {
    afc_cache *cache = afc_test_cache(10, 0, 0, 1, 100);
    afc_iter *iter = NULL, *empty = NULL;
    const uint8_t *key = NULL, *value = NULL;
    size_t key_len = 0, value_len = 0, left = 0;
    uint64_t ttl = 0;

    CHECK_OK(afc_iter_new(cache, &empty));
    CHECK_OK(afc_iter_remaining(empty, &left));
    CHECK_EQ(left, 0);
    CHECK_ST(afc_iter_next(empty, &key, &key_len, &value, &value_len, &ttl), AFC_NOT_FOUND);
    afc_iter_free(empty);

    CHECK_OK(afc_cache_put(cache, K("one"), K("1"), 0));
    CHECK_OK(afc_cache_put(cache, K("two"), K("22"), 50));
    CHECK_OK(afc_cache_put(cache, K("three"), K(""), 0));
    CHECK_OK(afc_iter_new(cache, &iter));
    /* The snapshot holds copies: clearing and even freeing the cache does not affect it. */
    CHECK_OK(afc_cache_clear(cache));
    afc_cache_free(cache);

    CHECK_OK(afc_iter_remaining(iter, &left));
    CHECK_EQ(left, 3);
    CHECK_OK(afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl));
    CHECK_BYTES(key, key_len, "three");
    CHECK_EQ(value_len, 0);
    CHECK_EQ(ttl, UINT64_MAX);
    CHECK_OK(afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl));
    CHECK_BYTES(key, key_len, "two");
    CHECK_BYTES(value, value_len, "22");
    CHECK_EQ(ttl, 50);
    CHECK_OK(afc_iter_remaining(iter, &left));
    CHECK_EQ(left, 1);
    CHECK_OK(afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl));
    CHECK_BYTES(key, key_len, "one");
    CHECK_BYTES(value, value_len, "1");
    CHECK_ST(afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl), AFC_NOT_FOUND);
    CHECK_ST(afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl), AFC_NOT_FOUND);
    CHECK_OK(afc_iter_remaining(iter, &left));
    CHECK_EQ(left, 0);
    afc_iter_free(iter);
}

static void test_iterator_skips_expired(void) {
    afc_cache *cache = afc_test_cache(10, 0, 0, 1, 0);

    CHECK_OK(afc_cache_put(cache, K("short"), K("v"), 10));
    CHECK_OK(afc_cache_put(cache, K("long"), K("v"), 20));
    CHECK_OK(afc_cache_clock_advance(cache, 10));
    CHECK_KEYS(cache, "long");
    afc_cache_free(cache);
}

/* ----- TTLs on the manual clock ------------------------------------------------------------- */

static uint64_t ttl_of(const afc_cache *cache, const char *key, afc_status *status) {
    uint64_t ns = 0xDEAD;
    *status = afc_cache_remaining_ttl(cache, K(key), &ns);
    return ns;
}

static void test_ttl_manual_clock(void) {
    afc_cache *cache = afc_test_cache(10, 0, 100, 1, 1000);
    afc_status st;
    uint64_t now = 0;
    char buf[16];
    bool flag = true;

    CHECK_OK(afc_cache_clock_now(cache, &now));
    CHECK_EQ(now, 1000);
    CHECK_OK(afc_cache_put(cache, K("default"), K("d"), 0)); /* deadline 1100 */
    CHECK_OK(afc_cache_put(cache, K("own"), K("o"), 50));    /* deadline 1050 */
    CHECK_OK(afc_cache_put_weighted(cache, K("weighted"), K("w"), 0, 3));
    CHECK_EQ(ttl_of(cache, "default", &st), 100);
    CHECK_OK(st);
    CHECK_EQ(ttl_of(cache, "own", &st), 50);
    CHECK_EQ(ttl_of(cache, "weighted", &st), 100);

    CHECK_OK(afc_cache_clock_advance(cache, 49)); /* 1049: one nanosecond left */
    CHECK_EQ(ttl_of(cache, "own", &st), 1);
    CHECK(afc_test_get_str(cache, "own", buf, sizeof buf) != NULL);
    CHECK_OK(afc_cache_clock_advance(cache, 1)); /* 1050: now == deadline, so expired */
    CHECK(afc_test_get_str(cache, "own", buf, sizeof buf) == NULL);
    CHECK_OK(afc_cache_contains(cache, K("own"), &flag));
    CHECK(!flag);
    ttl_of(cache, "own", &st);
    CHECK_ST(st, AFC_NOT_FOUND);
    CHECK_EQ(ttl_of(cache, "default", &st), 50);

    CHECK_OK(afc_cache_clock_set(cache, 1099));
    CHECK_EQ(ttl_of(cache, "default", &st), 1);
    CHECK_OK(afc_cache_clock_set(cache, 1100));
    ttl_of(cache, "default", &st);
    CHECK_ST(st, AFC_NOT_FOUND);
    {
        size_t expired = 0;
        CHECK_OK(afc_cache_expire(cache, &expired));
        CHECK_EQ(expired, 1); /* weighted */
    }

    /* The clock may move backwards: entries then expire later. */
    CHECK_OK(afc_cache_clock_set(cache, 0));
    CHECK_OK(afc_cache_clock_now(cache, &now));
    CHECK_EQ(now, 0);
    CHECK_OK(afc_cache_put(cache, K("back"), K("b"), 0));
    CHECK_EQ(ttl_of(cache, "back", &st), 100);
    CHECK_OK(afc_cache_clock_set(cache, 60));
    CHECK_EQ(ttl_of(cache, "back", &st), 40);
    CHECK_OK(afc_cache_clock_set(cache, 30));
    CHECK_EQ(ttl_of(cache, "back", &st), 70);

    /* A per-entry TTL overrides the default, both ways. */
    CHECK_OK(afc_cache_put(cache, K("long"), K("l"), 1000000));
    CHECK_EQ(ttl_of(cache, "long", &st), 1000000);
    CHECK_EQ(afc_test_stats(cache).expirations, 3); /* own, default, weighted */
    afc_cache_free(cache);
}

static void test_no_ttl_and_saturation(void) {
    afc_cache *cache = afc_test_cache(10, 0, 0, 1, 0);
    afc_status st;
    uint64_t now = 0;
    const uint8_t *key, *value;
    size_t key_len, value_len;
    uint64_t ttl = 0;
    afc_iter *iter = NULL;

    CHECK_OK(afc_cache_put(cache, K("forever"), K("f"), 0)); /* no default TTL: never expires */
    CHECK_EQ(ttl_of(cache, "forever", &st), UINT64_MAX);
    CHECK_OK(st);
    CHECK_OK(afc_iter_new(cache, &iter));
    CHECK_OK(afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl));
    CHECK_EQ(ttl, UINT64_MAX);
    afc_iter_free(iter);
    CHECK_OK(afc_cache_put(cache, K("soon"), K("s"), 5));
    CHECK_OK(afc_cache_clock_advance(cache, UINT64_MAX)); /* saturates */
    CHECK_OK(afc_cache_clock_advance(cache, UINT64_MAX));
    CHECK_OK(afc_cache_clock_now(cache, &now));
    CHECK(now >= UINT64_MAX - 1);
    CHECK_EQ(ttl_of(cache, "forever", &st), UINT64_MAX);
    ttl_of(cache, "soon", &st);
    CHECK_ST(st, AFC_NOT_FOUND);
    afc_cache_free(cache);
}

/* A finite TTL whose deadline is past the clock's range (now + ttl >= 2^64) ends when the clock
 * does (at UINT64_MAX - 1), instead of becoming "never expires"; only the endless TTL,
 * UINT64_MAX ns, never expires. */
static void test_ttl_past_the_clock_range_still_expires(void) {
    afc_cache *cache = afc_test_cache(10, 0, 0, 1, UINT64_MAX - 10);
    afc_status st;
    const size_t one = 1;
    CHECK_OK(afc_cache_put(cache, K("short"), K("v"), 100));
    CHECK_EQ(ttl_of(cache, "short", &st), 9); /* until UINT64_MAX - 1 */
    CHECK_OK(st);
    CHECK_OK(afc_cache_put_many(cache, (const uint8_t *)"b", &one, (const uint8_t *)"v", &one, 1,
                                UINT64_MAX - 1));
    CHECK_EQ(ttl_of(cache, "b", &st), 9);
    CHECK_OK(afc_cache_put_many(cache, (const uint8_t *)"e", &one, (const uint8_t *)"v", &one, 1,
                                UINT64_MAX)); /* endless */
    CHECK_EQ(ttl_of(cache, "e", &st), UINT64_MAX);
    CHECK_OK(afc_cache_put(cache, K("endless"), K("v"), UINT64_MAX));
    CHECK_EQ(ttl_of(cache, "endless", &st), UINT64_MAX);
    CHECK_OK(afc_cache_put(cache, K("forever"), K("v"), 0)); /* no TTL at all */
    CHECK_OK(afc_cache_clock_advance(cache, UINT64_MAX));
    ttl_of(cache, "short", &st);
    CHECK_ST(st, AFC_NOT_FOUND);
    ttl_of(cache, "b", &st);
    CHECK_ST(st, AFC_NOT_FOUND);
    CHECK_EQ(ttl_of(cache, "forever", &st), UINT64_MAX);
    CHECK_OK(st);
    CHECK_EQ(ttl_of(cache, "e", &st), UINT64_MAX);
    CHECK_OK(st);
    CHECK_EQ(ttl_of(cache, "endless", &st), UINT64_MAX);
    CHECK_OK(st);
    afc_cache_free(cache);
}

static void test_expire_counts(void) {
    afc_cache *cache = afc_test_cache(100, 0, 0, 4, 0);
    size_t expired = 999;
    char key[24];
    int i;

    for (i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "t10-%d", i);
        CHECK_OK(afc_cache_put(cache, K(key), K("v"), 10));
    }
    CHECK_OK(afc_cache_put(cache, K("t20"), K("v"), 20));
    CHECK_OK(afc_cache_put(cache, K("none1"), K("v"), 0));
    CHECK_OK(afc_cache_put(cache, K("none2"), K("v"), 0));

    CHECK_OK(afc_cache_expire(cache, &expired));
    CHECK_EQ(expired, 0);
    CHECK_OK(afc_cache_clock_advance(cache, 9));
    CHECK_OK(afc_cache_expire(cache, &expired));
    CHECK_EQ(expired, 0);
    CHECK_OK(afc_cache_clock_advance(cache, 1));
    CHECK_OK(afc_cache_expire(cache, &expired));
    CHECK_EQ(expired, 6);
    CHECK_OK(afc_cache_expire(cache, &expired));
    CHECK_EQ(expired, 0);
    CHECK_EQ(afc_test_len(cache), 3);
    CHECK_OK(afc_cache_clock_advance(cache, 10));
    CHECK_OK(afc_cache_expire(cache, NULL));
    CHECK_EQ(afc_test_len(cache), 2);
    CHECK_EQ(afc_test_stats(cache).expirations, 7);
    afc_cache_free(cache);
}

/* ----- the byte bound ----------------------------------------------------------------------- */

static void test_byte_bound(void) {
    afc_cache *cache = afc_test_cache(100, 100, 0, 1, 0);
    char key[24], buf[128];
    const char *value18 = "abcdefghijklmnopqr"; /* a 2-byte key + 18 bytes = weight 20 */
    uint64_t weight = 0;
    afc_stats stats;
    int i;

    for (i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_OK(afc_cache_put(cache, K(key), K(value18), 0));
    }
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, 100);
    CHECK_EQ(afc_test_len(cache), 5);
    CHECK_OK(afc_cache_put(cache, K("k5"), K(value18), 0)); /* evicts k0 */
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, 100);
    CHECK(afc_test_get_str(cache, "k0", buf, sizeof buf) == NULL);
    CHECK_EQ(afc_test_stats(cache).evictions, 1);

    /* A caller-given weight counts instead of the sizes. */
    CHECK_OK(afc_cache_put_weighted(cache, K("big"), K("x"), 0, 90));
    CHECK_KEYS(cache, "big");
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, 90);

    /* Too heavy: refused, the old value stays, nothing is evicted or counted. */
    memset(buf, 'y', 99);
    CHECK_FAILS(afc_cache_put(cache, K("big"), (const uint8_t *)buf, 99, 0), AFC_ENTRY_TOO_HEAVY,
                "weight 102");
    CHECK(afc_test_get_str(cache, "big", buf, sizeof buf) != NULL);
    CHECK_BYTES((const uint8_t *)buf, strlen(buf), "x");
    stats = afc_test_stats(cache);
    CHECK_EQ(stats.entries, 1);
    CHECK_EQ(stats.weight, 90);
    CHECK_EQ(stats.updates, 0);

    /* Weight 0 entries are free. */
    CHECK_OK(afc_cache_put_weighted(cache, K("free"), K("lots of bytes, no weight"), 0, 0));
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, 90);
    CHECK_OK(afc_cache_put_weighted(cache, K("ten"), K("v"), 0, 10));
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, 100);
    CHECK_OK(afc_cache_put_weighted(cache, K("one"), K("v"), 0, 1)); /* evicts big (LRU) */
    CHECK_KEYS(cache, "one,ten,free");
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, 11);

    /* Lowering the bound evicts the least recent entries beyond it. */
    CHECK_OK(afc_cache_put_weighted(cache, K("w30"), K("v"), 0, 30));
    CHECK_OK(afc_cache_put_weighted(cache, K("w40"), K("v"), 0, 40));
    CHECK_OK(afc_cache_set_max_bytes(cache, 45));
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK(weight <= 45);
    CHECK_KEYS(cache, "w40");
    CHECK_FAILS(afc_cache_put_weighted(cache, K("w46"), K("v"), 0, 46), AFC_ENTRY_TOO_HEAVY, NULL);
    CHECK_OK(afc_cache_set_max_bytes(cache, 1000));
    CHECK_OK(afc_cache_put_weighted(cache, K("w46"), K("v"), 0, 46));
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, 86);
    afc_cache_free(cache);
}

static void test_byte_bound_across_shards(void) {
    /* The byte bound is global: with many shards the total must still hold after every put. */
    afc_cache *cache = afc_test_cache(10000, 1000, 0, 16, 0);
    char key[24];
    uint64_t weight = 0;
    int i;
    for (i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        CHECK_OK(afc_cache_put_weighted(cache, K(key), K("v"), 0, (uint64_t)(1 + i % 97)));
        CHECK_OK(afc_cache_weight(cache, &weight));
        if (weight > 1000) {
            CHECK(weight <= 1000);
            break;
        }
    }
    afc_cache_free(cache);
}

/* ----- statistics --------------------------------------------------------------------------- */

static void test_stats_counters(void) {
    afc_cache *cache = afc_test_cache(3, 0, 0, 1, 0);
    char buf[16];
    bool flag;
    afc_stats s;
    uint64_t weight = 0;

    s = afc_test_stats(cache);
    CHECK(s.hits == 0 && s.misses == 0 && s.inserts == 0 && s.updates == 0 && s.evictions == 0 &&
          s.expirations == 0 && s.removals == 0 && s.entries == 0 && s.weight == 0);
    CHECK_OK(afc_cache_put(cache, K("a"), K("v"), 0));
    CHECK_OK(afc_cache_put(cache, K("b"), K("v"), 0));
    CHECK_OK(afc_cache_put(cache, K("c"), K("v"), 0));
    CHECK(afc_test_get_str(cache, "a", buf, sizeof buf) != NULL); /* hit */
    CHECK(afc_test_get_str(cache, "x", buf, sizeof buf) == NULL); /* miss */
    CHECK(afc_test_get_str(cache, "b", buf, sizeof buf) != NULL); /* hit */
    CHECK_OK(afc_cache_peek(cache, K("c"), (uint8_t *)buf, sizeof buf, &(size_t){0}));
    CHECK_OK(afc_cache_contains(cache, K("zz"), &flag));
    CHECK_OK(afc_cache_put(cache, K("a"), K("VV"), 0)); /* update; order a,b,c */
    CHECK_OK(afc_cache_put(cache, K("d"), K("v"), 0));  /* evicts c */
    CHECK_OK(afc_cache_remove(cache, K("b")));
    CHECK_OK(afc_cache_put(cache, K("e"), K("v"), 5));
    CHECK_OK(afc_cache_clock_advance(cache, 5));
    CHECK(afc_test_get_str(cache, "e", buf, sizeof buf) == NULL); /* expired: a miss */

    s = afc_test_stats(cache);
    CHECK_EQ(s.hits, 2);
    CHECK_EQ(s.misses, 2);
    CHECK_EQ(s.inserts, 5);
    CHECK_EQ(s.updates, 1);
    CHECK_EQ(s.evictions, 1);
    CHECK_EQ(s.expirations, 1);
    CHECK_EQ(s.removals, 1);
    CHECK_EQ(s.entries, 2);
    CHECK_EQ(s.weight, 3 + 2); /* a -> VV, d -> v */
    CHECK_EQ(s.entries, s.inserts - s.evictions - s.expirations - s.removals);
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, s.weight);
    CHECK_EQ(afc_test_len(cache), s.entries);

    /* reset_stats zeroes the counters; entries and weight are not counters. */
    CHECK_OK(afc_cache_reset_stats(cache));
    s = afc_test_stats(cache);
    CHECK(s.hits == 0 && s.misses == 0 && s.inserts == 0 && s.updates == 0 && s.evictions == 0 &&
          s.expirations == 0 && s.removals == 0);
    CHECK_EQ(s.entries, 2);
    CHECK_EQ(s.weight, 5);

    /* clear counts removals. */
    CHECK_OK(afc_cache_clear(cache));
    s = afc_test_stats(cache);
    CHECK_EQ(s.removals, 2);
    CHECK_EQ(s.entries, 0);
    CHECK_EQ(s.weight, 0);
    CHECK_OK(afc_cache_clear(cache)); /* clearing an empty cache is fine */
    afc_cache_free(cache);
}

/* ----- resize ------------------------------------------------------------------------------- */

static void test_resize(void) {
    afc_cache *cache = afc_test_cache(10, 0, 0, 1, 0);
    char key[24], buf[8];
    int i;
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_OK(afc_cache_put(cache, K(key), K("v"), 0));
    }
    CHECK(afc_test_get_str(cache, "k0", buf, sizeof buf) != NULL);
    CHECK_OK(afc_cache_resize(cache, 4));
    CHECK_EQ(afc_test_len(cache), 4);
    CHECK_KEYS(cache, "k0,k9,k8,k7");
    CHECK_EQ(afc_test_stats(cache).evictions, 6);
    CHECK_OK(afc_cache_put(cache, K("new"), K("v"), 0)); /* the new bound holds */
    CHECK_EQ(afc_test_len(cache), 4);
    CHECK_OK(afc_cache_resize(cache, 20)); /* growing keeps everything */
    for (i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "g%d", i);
        CHECK_OK(afc_cache_put(cache, K(key), K("v"), 0));
    }
    CHECK_EQ(afc_test_len(cache), 20);
    CHECK_OK(afc_cache_resize(cache, 1));
    CHECK_KEYS(cache, "g29");
    afc_cache_free(cache);
}

/* ----- batches ------------------------------------------------------------------------------ */

static void test_put_many_get_many(void) {
    afc_cache *cache = afc_test_cache(100, 0, 0, 4, 0);
    /* Keys "a", "bb", "ccc", "dddd", "" and their values. */
    const uint8_t keys[] = "abbcccdddd";
    const size_t key_lens[] = {1, 2, 3, 4, 0};
    const uint8_t values[] = "12233344445";
    const size_t value_lens[] = {1, 2, 3, 4, 1};
    /* Lookups: a, zz (miss), ccc, "" , bb, nope (miss), dddd. */
    const uint8_t lookup[] = "azzcccbbnopedddd";
    const size_t lookup_lens[] = {1, 2, 3, 0, 2, 4, 4};
    const char *expect[] = {"1", NULL, "333", "5", "22", NULL, "4444"};
    uint8_t out[64];
    size_t offsets[7], lens[7], needed = 0, i, fitted = 0;
    afc_stats s;

    CHECK_OK(afc_cache_put_many(cache, keys, key_lens, values, value_lens, 5, 0));
    CHECK_EQ(afc_test_len(cache), 5);

    memset(out, 0, sizeof out);
    CHECK_OK(afc_cache_get_many(cache, lookup, lookup_lens, 7, out, sizeof out, offsets, lens,
                                &needed));
    CHECK_EQ(needed, 1 + 3 + 1 + 2 + 4);
    for (i = 0; i < 7; i++) {
        if (!expect[i]) {
            CHECK_EQ(offsets[i], AFC_MISSING);
            CHECK_EQ(lens[i], AFC_MISSING);
        } else {
            CHECK(offsets[i] != AFC_MISSING && offsets[i] + lens[i] <= needed);
            if (offsets[i] != AFC_MISSING && offsets[i] + lens[i] <= sizeof out)
                CHECK_BYTES(out + offsets[i], lens[i], expect[i]);
        }
    }
    s = afc_test_stats(cache);
    CHECK_EQ(s.hits, 5);
    CHECK_EQ(s.misses, 2);

    /* Too small a buffer: AFC_BUFFER_TOO_SMALL, the needed total, real lengths, and the values
     * that did fit at valid offsets. */
    memset(out, 0, sizeof out);
    CHECK_ST(afc_cache_get_many(cache, lookup, lookup_lens, 7, out, 5, offsets, lens, &needed),
             AFC_BUFFER_TOO_SMALL);
    CHECK_EQ(needed, 11);
    for (i = 0; i < 7; i++) {
        if (!expect[i]) {
            CHECK_EQ(offsets[i], AFC_MISSING);
            CHECK_EQ(lens[i], AFC_MISSING);
            continue;
        }
        CHECK_EQ(lens[i], strlen(expect[i]));
        if (offsets[i] != AFC_MISSING) {
            CHECK(offsets[i] + lens[i] <= 5);
            if (offsets[i] + lens[i] <= 5) CHECK_BYTES(out + offsets[i], lens[i], expect[i]);
            fitted += lens[i];
        }
    }
    CHECK(fitted > 0 && fitted <= 5); /* the first value packed always fits */
    /* No buffer at all: every hit reports its length, none an offset. */
    CHECK_ST(afc_cache_get_many(cache, lookup, lookup_lens, 7, NULL, 0, offsets, lens, &needed),
             AFC_BUFFER_TOO_SMALL);
    CHECK_EQ(needed, 11);
    for (i = 0; i < 7; i++) {
        CHECK_EQ(offsets[i], AFC_MISSING);
        CHECK_EQ(lens[i], expect[i] ? strlen(expect[i]) : AFC_MISSING);
    }
    /* Only misses: nothing needed, so no buffer is fine. */
    CHECK_OK(afc_cache_get_many(cache, (const uint8_t *)"zznope", (const size_t[]){2, 4}, 2, NULL,
                                0, offsets, lens, &needed));
    CHECK_EQ(needed, 0);

    /* A key repeated within a batch: the last value wins (one insert, one update). */
    CHECK_OK(afc_cache_reset_stats(cache));
    CHECK_OK(afc_cache_put_many(cache, (const uint8_t *)"dupdup", (const size_t[]){3, 3},
                                (const uint8_t *)"12", (const size_t[]){1, 1}, 2, 0));
    {
        char buf[8];
        CHECK(afc_test_get_str(cache, "dup", buf, sizeof buf) != NULL);
        CHECK_BYTES((const uint8_t *)buf, strlen(buf), "2");
    }
    s = afc_test_stats(cache);
    CHECK_EQ(s.inserts, 1);
    CHECK_EQ(s.updates, 1);
    afc_cache_free(cache);
}

static void test_put_many_all_or_none(void) {
    afc_cache *cache = afc_test_cache(100, 50, 0, 2, 0);
    uint8_t values[64];
    const size_t key_lens[] = {1, 1, 1};
    const size_t value_lens[] = {1, 1, 60}; /* the third is heavier than max_bytes */
    afc_stats before, after;
    afc_status st;
    memset(values, 'v', sizeof values);

    CHECK_OK(afc_cache_put(cache, K("x"), K("old"), 0));
    before = afc_test_stats(cache);
    afc_test_prime_error();
    CHECK_ST(afc_cache_put_many(cache, (const uint8_t *)"xyz", key_lens, values, value_lens, 3, 0),
             AFC_ENTRY_TOO_HEAVY);
    CHECK_LAST_ERROR("max_bytes");
    after = afc_test_stats(cache);
    CHECK_EQ(after.inserts, before.inserts);
    CHECK_EQ(after.updates, before.updates);
    CHECK_EQ(afc_test_len(cache), 1);
    {
        char buf[8];
        CHECK(afc_test_get_str(cache, "x", buf, sizeof buf) != NULL);
        CHECK_BYTES((const uint8_t *)buf, strlen(buf), "old");
        CHECK(afc_test_get_str(cache, "y", buf, sizeof buf) == NULL);
    }
    /* A too-large weight is also refused up front (no entry is stored). */
    st = afc_cache_put_many(cache, (const uint8_t *)"pq", (const size_t[]){1, 1}, values,
                            (const size_t[]){1, 51}, 2, 0);
    CHECK_ST(st, AFC_ENTRY_TOO_HEAVY);
    CHECK_EQ(afc_test_len(cache), 1);
    afc_cache_free(cache);
}

static void test_put_many_ttl(void) {
    afc_cache *cache = afc_test_cache(100, 0, 1000, 2, 0);
    afc_status st;
    CHECK_OK(afc_cache_put_many(cache, (const uint8_t *)"ab", (const size_t[]){1, 1},
                                (const uint8_t *)"12", (const size_t[]){1, 1}, 2, 10));
    CHECK_OK(afc_cache_put_many(cache, (const uint8_t *)"cd", (const size_t[]){1, 1},
                                (const uint8_t *)"34", (const size_t[]){1, 1}, 2, 0));
    CHECK_EQ(ttl_of(cache, "a", &st), 10);
    CHECK_EQ(ttl_of(cache, "b", &st), 10);
    CHECK_EQ(ttl_of(cache, "c", &st), 1000); /* 0: the default TTL */
    CHECK_OK(afc_cache_clock_advance(cache, 10));
    CHECK_EQ(afc_test_len(cache), 2);
    afc_cache_free(cache);
}

/* ----- listener ----------------------------------------------------------------------------- */

typedef struct {
    char key[32];
    char value[32];
    afc_removal_cause cause;
} event;

typedef struct {
    event events[256];
    size_t count;
} event_log;

static void record_event(void *user_data, const uint8_t *key, size_t key_len,
                         const uint8_t *value, size_t value_len, afc_removal_cause cause) {
    event_log *log = user_data;
    event *e;
    if (log->count >= sizeof log->events / sizeof log->events[0]) return;
    e = &log->events[log->count++];
    snprintf(e->key, sizeof e->key, "%.*s", (int)key_len, (const char *)key);
    snprintf(e->value, sizeof e->value, "%.*s", (int)value_len, (const char *)value);
    e->cause = cause;
}

static afc_cache *listened_cache(uint64_t max_entries, event_log *log) {
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    CHECK_OK(afc_config_new(max_entries, &config));
    CHECK_OK(afc_config_set_shards(config, 1));
    CHECK_OK(afc_config_use_manual_clock(config, 0));
    CHECK_OK(afc_config_set_listener(config, record_event, log));
    CHECK_OK(afc_cache_new(config, &cache));
    afc_config_free(config);
    return cache;
}

/* Checks that event `i` of the log is (key, value, cause). */
static void expect_event(const event_log *log, size_t i, const char *key, const char *value,
                         afc_removal_cause cause, int line) {
    char detail[160];
    bool ok = i < log->count && strcmp(log->events[i].key, key) == 0 &&
              strcmp(log->events[i].value, value) == 0 && log->events[i].cause == cause;
    snprintf(detail, sizeof detail, "event %zu is (%s, %s, %d), want (%s, %s, %d)", i,
             i < log->count ? log->events[i].key : "-", i < log->count ? log->events[i].value : "-",
             i < log->count ? (int)log->events[i].cause : -1, key, value, (int)cause);
    afc_check(ok, __FILE__, line, "listener event", ok ? NULL : detail);
}

static void test_listener_causes(void) {
    event_log log;
    afc_cache *cache;
    size_t n, expired = 0;
    char buf[16];
    memset(&log, 0, sizeof log);
    cache = listened_cache(2, &log);

    CHECK_OK(afc_cache_put(cache, K("a"), K("1"), 0));
    CHECK_OK(afc_cache_put(cache, K("b"), K("2"), 0));
    CHECK_EQ(log.count, 0);
    CHECK_OK(afc_cache_put(cache, K("c"), K("3"), 0));
    CHECK_EQ(log.count, 1); /* told synchronously, before the call returns */
    expect_event(&log, 0, "a", "1", AFC_CAUSE_EVICTED, __LINE__);

    CHECK_OK(afc_cache_put(cache, K("b"), K("22"), 0));
    expect_event(&log, 1, "b", "2", AFC_CAUSE_REPLACED, __LINE__); /* the old value */

    CHECK_OK(afc_cache_remove(cache, K("c")));
    expect_event(&log, 2, "c", "3", AFC_CAUSE_REMOVED, __LINE__);
    CHECK_ST(afc_cache_remove(cache, K("c")), AFC_NOT_FOUND);
    CHECK_EQ(log.count, 3);

    CHECK_OK(afc_cache_put(cache, K("t"), K("9"), 10));
    CHECK_OK(afc_cache_clock_advance(cache, 10));
    CHECK_OK(afc_cache_expire(cache, &expired));
    CHECK_EQ(expired, 1);
    expect_event(&log, 3, "t", "9", AFC_CAUSE_EXPIRED, __LINE__);

    /* An expired entry found by a get is reclaimed as expired. */
    CHECK_OK(afc_cache_put(cache, K("g"), K("7"), 1));
    CHECK_OK(afc_cache_clock_advance(cache, 1));
    CHECK(afc_test_get_str(cache, "g", buf, sizeof buf) == NULL);
    expect_event(&log, 4, "g", "7", AFC_CAUSE_EXPIRED, __LINE__);

    /* clear: live entries as cleared, expired ones as expired. */
    CHECK_OK(afc_cache_put(cache, K("e"), K("5"), 1)); /* cache: e, b */
    CHECK_OK(afc_cache_clock_advance(cache, 1));
    CHECK_OK(afc_cache_clear(cache));
    CHECK_EQ(log.count, 7);
    for (n = 5; n < 7 && n < log.count; n++) {
        if (strcmp(log.events[n].key, "e") == 0)
            expect_event(&log, n, "e", "5", AFC_CAUSE_EXPIRED, __LINE__);
        else
            expect_event(&log, n, "b", "22", AFC_CAUSE_CLEARED, __LINE__);
    }

    /* resize evicts. */
    CHECK_OK(afc_cache_put(cache, K("p"), K("1"), 0));
    CHECK_OK(afc_cache_put(cache, K("q"), K("2"), 0));
    CHECK_OK(afc_cache_resize(cache, 1));
    expect_event(&log, 7, "p", "1", AFC_CAUSE_EVICTED, __LINE__);

    /* afc_cache_free reports what is left as cleared. */
    afc_cache_free(cache);
    CHECK_EQ(log.count, 9);
    expect_event(&log, 8, "q", "2", AFC_CAUSE_CLEARED, __LINE__);
}

static void test_listener_with_byte_bound(void) {
    event_log log;
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    memset(&log, 0, sizeof log);
    CHECK_OK(afc_config_new(100, &config));
    CHECK_OK(afc_config_set_shards(config, 1));
    CHECK_OK(afc_config_set_max_bytes(config, 10));
    CHECK_OK(afc_config_set_listener(config, record_event, &log));
    CHECK_OK(afc_cache_new(config, &cache));
    afc_config_free(config);
    CHECK_OK(afc_cache_put(cache, K("k1"), K("abc"), 0)); /* 5 */
    CHECK_OK(afc_cache_put(cache, K("k2"), K("abc"), 0)); /* 10 */
    CHECK_OK(afc_cache_put(cache, K("k3"), K("a"), 0));   /* 13 > 10: evict k1 */
    expect_event(&log, 0, "k1", "abc", AFC_CAUSE_EVICTED, __LINE__);
    CHECK_OK(afc_cache_set_max_bytes(cache, 3));
    expect_event(&log, 1, "k2", "abc", AFC_CAUSE_EVICTED, __LINE__);
    CHECK_EQ(log.count, 2);
    /* A refused put tells nothing. */
    CHECK_ST(afc_cache_put(cache, K("k3"), K("toolong"), 0), AFC_ENTRY_TOO_HEAVY);
    CHECK_EQ(log.count, 2);
    afc_cache_free(cache);
    expect_event(&log, 2, "k3", "a", AFC_CAUSE_CLEARED, __LINE__);
}

/* A listener that calls back into the cache it listens to. */
typedef struct {
    afc_cache *cache;
    unsigned calls, echoes, failures, depth, max_depth;
} reentrant_state;

static void reentrant_listener(void *user_data, const uint8_t *key, size_t key_len,
                               const uint8_t *value, size_t value_len, afc_removal_cause cause) {
    reentrant_state *st = user_data;
    size_t len = 0, needed = 0, offsets[1], lens[1];
    uint8_t buf[64];
    bool present = true;
    afc_stats stats;
    (void)value, (void)value_len;
    st->calls++;
    st->depth++;
    if (st->depth > st->max_depth) st->max_depth = st->depth;
    /* Reads, counters and lookups of every kind. */
    if (afc_cache_len(st->cache, &len) != AFC_OK) st->failures++;
    if (afc_cache_stats(st->cache, &stats) != AFC_OK) st->failures++;
    if (afc_cache_contains(st->cache, key, key_len, &present) != AFC_OK) st->failures++;
    if (present != (cause == AFC_CAUSE_REPLACED)) st->failures++; /* it has left the cache */
    if (afc_cache_get_many(st->cache, key, &key_len, 1, buf, sizeof buf, offsets, lens,
                           &needed) != AFC_OK)
        st->failures++;
    /* Writes: re-store an evicted key under "echo:" (which may evict again, re-entering). */
    if (cause == AFC_CAUSE_EVICTED && key_len < 32 && (key_len < 5 || memcmp(key, "echo:", 5))) {
        char echo[40];
        snprintf(echo, sizeof echo, "echo:%.*s", (int)key_len, (const char *)key);
        if (afc_cache_put(st->cache, K(echo), K("e"), 0) != AFC_OK) st->failures++;
        st->echoes++;
    }
    st->depth--;
}

static void test_listener_reenters_cache(void) {
    reentrant_state st;
    afc_config *config = NULL;
    char key[24];
    int i;
    memset(&st, 0, sizeof st);
    CHECK_OK(afc_config_new(3, &config));
    CHECK_OK(afc_config_set_shards(config, 1));
    CHECK_OK(afc_config_set_listener(config, reentrant_listener, &st));
    CHECK_OK(afc_cache_new(config, &st.cache));
    afc_config_free(config);

    for (i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_OK(afc_cache_put(st.cache, K(key), K("v"), 0));
        CHECK_OK(afc_cache_put(st.cache, K(key), K("w"), 0)); /* replaced */
    }
    CHECK_OK(afc_cache_remove(st.cache, K("k19")));
    CHECK_OK(afc_cache_clear(st.cache));
    CHECK_EQ(st.failures, 0);
    CHECK(st.echoes > 0);
    CHECK(st.max_depth >= 2); /* a listener's put evicted, and the listener ran inside it */
    CHECK(st.calls >= 40);
    afc_cache_free(st.cache);
}

/* During afc_cache_free the listener hears each remaining entry as cleared and may call the
 * cache, but every call that would store an entry is refused (it would be dropped unheard). */
typedef struct {
    afc_cache *cache;
    bool freeing;
    int heard, stored, refused, computes;
    char message[160];
} free_listener_state;

static int32_t count_compute(void *user_data, const uint8_t *key, size_t key_len,
                             afc_value_out *out) {
    free_listener_state *st = user_data;
    (void)key, (void)key_len;
    st->computes++;
    return afc_value_out_set(out, K("computed")) == AFC_OK ? 0 : 1;
}

static void listener_stores_while_freed(void *user_data, const uint8_t *key, size_t key_len,
                                        const uint8_t *value, size_t value_len,
                                        afc_removal_cause cause) {
    free_listener_state *st = user_data;
    const size_t one = 1;
    afc_status got[5];
    uint8_t buf[16];
    size_t len = 0, i;
    int refused = 0;
    (void)value, (void)value_len;
    st->heard++;
    /* Only the test's own keys, cleared by the free, are stored again. */
    if (!st->freeing || cause != AFC_CAUSE_CLEARED || key_len != 1 || strchr("xyz", key[0]) == NULL)
        return;
    got[0] = afc_cache_put(st->cache, K("again"), K("v"), 0);
    snprintf(st->message, sizeof st->message, "%s", afc_last_error());
    got[1] = afc_cache_put_weighted(st->cache, K("again"), K("v"), 0, 1);
    got[2] = afc_cache_put_many(st->cache, (const uint8_t *)"ab", &one, (const uint8_t *)"v",
                                &one, 1, 0);
    got[3] = afc_cache_get_or_insert(st->cache, key, key_len, count_compute, st, buf, sizeof buf,
                                     &len);
    got[4] = afc_cache_load(st->cache, "/nonexistent/never-opened.afcs", AFC_ENCODING_ANY, NULL);
    for (i = 0; i < 5; i++) {
        if (got[i] == AFC_OK) st->stored++;
        if (got[i] == AFC_INVALID_ARGUMENT) refused++;
    }
    if (refused == 5) st->refused++;
}

static void test_free_refuses_stores_from_listener(void) {
    free_listener_state st;
    afc_config *config = NULL;
    memset(&st, 0, sizeof st);
    CHECK_OK(afc_config_new(16, &config));
    CHECK_OK(afc_config_set_listener(config, listener_stores_while_freed, &st));
    CHECK_OK(afc_cache_new(config, &st.cache));
    afc_config_free(config);
    CHECK_OK(afc_cache_put(st.cache, K("x"), K("1"), 0));
    CHECK_OK(afc_cache_put(st.cache, K("y"), K("2"), 0));
    CHECK_OK(afc_cache_put(st.cache, K("z"), K("3"), 0));
    st.stored = 3;
    st.freeing = true;
    afc_cache_free(st.cache);
    CHECK_EQ(st.heard, 3);
    CHECK_EQ(st.stored, st.heard); /* every entry stored was heard leaving */
    CHECK_EQ(st.refused, 3);
    CHECK_EQ(st.computes, 0); /* a get_or_insert miss does not even compute */
    CHECK_BYTES((const uint8_t *)st.message, strlen(st.message),
                "the cache is being freed (afc_cache_free): nothing can be stored in it");
}

/* ----- get_or_insert ------------------------------------------------------------------------ */

typedef struct {
    int calls;
    const char *value;
    afc_cache *cache; /* when set, the callback also uses the cache */
    int inner_ok;
} compute_state;

static int32_t compute_value(void *user_data, const uint8_t *key, size_t key_len,
                             afc_value_out *out) {
    compute_state *st = user_data;
    (void)key, (void)key_len;
    st->calls++;
    if (st->cache) {
        uint8_t buf[16];
        size_t len = 0;
        st->inner_ok = afc_cache_put(st->cache, K("side"), K("effect"), 0) == AFC_OK &&
                       afc_cache_get(st->cache, K("side"), buf, sizeof buf, &len) == AFC_OK &&
                       len == 6;
    }
    return afc_value_out_set(out, (const uint8_t *)st->value, strlen(st->value)) == AFC_OK ? 0 : 1;
}

/* A compute callback that asks for its own key again: the inner call is refused with
 * AFC_INVALID_ARGUMENT (it would wait for itself forever; no panic, nothing on stderr) and the
 * outer one then fails cleanly. */
typedef struct {
    afc_cache *cache;
    afc_status inner;
    char inner_message[200];
} reentrant_compute_state;

static int32_t compute_same_key(void *user_data, const uint8_t *key, size_t key_len,
                                afc_value_out *out) {
    reentrant_compute_state *st = user_data;
    uint8_t buf[16];
    size_t len = 0;
    (void)out;
    st->inner = afc_cache_get_or_insert(st->cache, key, key_len, compute_same_key, st, buf,
                                        sizeof buf, &len);
    snprintf(st->inner_message, sizeof st->inner_message, "%s", afc_last_error());
    return 1;
}

static void test_get_or_insert_reentrant_same_key(void) {
    afc_cache *cache = afc_test_cache(100, 0, 0, 1, 0);
    reentrant_compute_state st = {cache, AFC_OK, ""};
    uint8_t buf[16];
    size_t len = 0;
    CHECK_ST(afc_cache_get_or_insert(cache, K("k"), compute_same_key, &st, buf, sizeof buf, &len),
             AFC_COMPUTE_FAILED);
    CHECK_ST(st.inner, AFC_INVALID_ARGUMENT);
    CHECK(strstr(st.inner_message, "the compute callback asked for the key it is computing") !=
          NULL);
    afc_cache_get_or_insert(cache, K("k"), compute_same_key, &st, buf, sizeof buf, &len);
    CHECK_LAST_ERROR("compute callback failed");
    st.inner = AFC_OK;
    CHECK_ST(afc_cache_get_or_insert(cache, K("k"), compute_same_key, &st, buf, sizeof buf, &len),
             AFC_COMPUTE_FAILED);
    CHECK_ST(st.inner, AFC_INVALID_ARGUMENT);
    CHECK_EQ(afc_test_len(cache), 0);
    afc_cache_free(cache);
}

static void test_get_or_insert(void) {
    afc_cache *cache = afc_test_cache(100, 0, 500, 1, 0);
    compute_state st = {0, "computed value", NULL, 0};
    uint8_t buf[64];
    size_t len = 0;
    afc_status status;
    uint64_t ttl = 0;
    afc_stats s;

    CHECK_OK(afc_cache_get_or_insert(cache, K("k"), compute_value, &st, buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "computed value");
    CHECK_EQ(st.calls, 1);
    CHECK_OK(afc_cache_get_or_insert(cache, K("k"), compute_value, &st, buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "computed value");
    CHECK_EQ(st.calls, 1); /* a hit does not compute */
    CHECK_OK(afc_cache_remaining_ttl(cache, K("k"), &ttl));
    CHECK_EQ(ttl, 500); /* computed values get the default TTL */
    s = afc_test_stats(cache);
    CHECK_EQ(s.misses, 1);
    CHECK_EQ(s.hits, 1);
    CHECK_EQ(s.inserts, 1);

    /* Too small a buffer: the value is still stored, and its length reported. */
    st.value = "a value of 26 bytes, long.";
    status = afc_cache_get_or_insert(cache, K("small"), compute_value, &st, buf, 4, &len);
    CHECK_ST(status, AFC_BUFFER_TOO_SMALL);
    CHECK_EQ(len, 26);
    CHECK_EQ(st.calls, 2);
    CHECK_OK(afc_cache_peek(cache, K("small"), buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "a value of 26 bytes, long.");

    /* An empty value is a value. */
    st.value = "";
    CHECK_OK(afc_cache_get_or_insert(cache, K("empty"), compute_value, &st, NULL, 0, &len));
    CHECK_EQ(len, 0);
    CHECK_OK(afc_cache_get_or_insert(cache, K("empty"), compute_value, &st, NULL, 0, &len));
    CHECK_EQ(st.calls, 3);

    /* The callback runs with no lock held: it may use the cache. */
    st.value = "v";
    st.cache = cache;
    CHECK_OK(afc_cache_get_or_insert(cache, K("outer"), compute_value, &st, buf, sizeof buf, &len));
    CHECK(st.inner_ok);
    CHECK_BYTES(buf, len, "v");
    afc_cache_free(cache);
}

static void test_get_or_insert_too_heavy_is_returned_not_stored(void) {
    afc_cache *cache = afc_test_cache(100, 10, 0, 1, 0);
    compute_state st = {0, "twenty bytes, really", NULL, 0};
    uint8_t buf[64];
    size_t len = 0;
    bool flag = true;
    CHECK_OK(afc_cache_get_or_insert(cache, K("k"), compute_value, &st, buf, sizeof buf, &len));
    CHECK_BYTES(buf, len, "twenty bytes, really");
    CHECK_OK(afc_cache_contains(cache, K("k"), &flag));
    CHECK(!flag);
    afc_cache_free(cache);
}

const afc_test_case afc_cache_tests[] = {
    {"cache/put_get_peek_contains_remove", test_put_get_peek_contains_remove},
    {"cache/buffer_too_small", test_buffer_too_small},
    {"cache/lru_order", test_lru_order},
    {"cache/shared_clock_and_expire_keys", test_shared_clock_and_expire_keys},
    {"cache/record_reads", test_record_reads},
    {"cache/record_reads_later", test_record_reads_later},
    {"cache/iterator_snapshot", test_iterator_snapshot},
    {"cache/iterator_skips_expired", test_iterator_skips_expired},
    {"cache/ttl_manual_clock", test_ttl_manual_clock},
    {"cache/no_ttl_and_saturation", test_no_ttl_and_saturation},
    {"cache/ttl_past_the_clock_range_still_expires", test_ttl_past_the_clock_range_still_expires},
    {"cache/expire_counts", test_expire_counts},
    {"cache/byte_bound", test_byte_bound},
    {"cache/byte_bound_across_shards", test_byte_bound_across_shards},
    {"cache/stats_counters", test_stats_counters},
    {"cache/resize", test_resize},
    {"cache/put_many_get_many", test_put_many_get_many},
    {"cache/put_many_all_or_none", test_put_many_all_or_none},
    {"cache/put_many_ttl", test_put_many_ttl},
    {"cache/listener_causes", test_listener_causes},
    {"cache/listener_with_byte_bound", test_listener_with_byte_bound},
    {"cache/listener_reenters_cache", test_listener_reenters_cache},
    {"cache/free_refuses_stores_from_listener", test_free_refuses_stores_from_listener},
    {"cache/get_or_insert", test_get_or_insert},
    {"cache/get_or_insert_reentrant_same_key", test_get_or_insert_reentrant_same_key},
    {"cache/get_or_insert_too_heavy_is_returned_not_stored",
     test_get_or_insert_too_heavy_is_returned_not_stored},
};
const size_t afc_cache_test_count = sizeof afc_cache_tests / sizeof afc_cache_tests[0];

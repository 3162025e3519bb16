/*
 * Handle caches: every handle stored is released exactly once, whatever removes it (eviction,
 * expiry, removal, replacement, clear, resize, a lower byte bound, afc_cache_free), and a handle
 * whose put failed is never released. A tracker counts the releases of each handle.
 */
#define _POSIX_C_SOURCE 200809L

#include "afc_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HANDLES 64

typedef struct {
    int released[MAX_HANDLES];      /* how many times each handle was released */
    afc_removal_cause cause[MAX_HANDLES];
    char key[MAX_HANDLES][16];      /* the key each handle was stored under */
    bool stored[MAX_HANDLES];       /* whether a put of the handle succeeded */
    int releases;                   /* total releases */
    int bad;                        /* releases of unknown handles or under the wrong key */
    uint64_t last;                  /* the handle released last */
} tracker;

static void track_release(void *user_data, const uint8_t *key, size_t key_len, uint64_t handle,
                          afc_removal_cause cause) {
    tracker *t = user_data;
    t->releases++;
    if (handle >= MAX_HANDLES) {
        t->bad++;
        return;
    }
    t->released[handle]++;
    t->cause[handle] = cause;
    t->last = handle;
    if (key_len != strlen(t->key[handle]) || memcmp(key, t->key[handle], key_len) != 0) t->bad++;
}

static afc_cache *tracked_cache(tracker *t, uint64_t max_entries, uint64_t max_bytes,
                                uint64_t default_ttl) {
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    memset(t, 0, sizeof *t);
    CHECK_OK(afc_config_new(max_entries, &config));
    CHECK_OK(afc_config_set_shards(config, 1));
    CHECK_OK(afc_config_use_manual_clock(config, 0));
    if (max_bytes) CHECK_OK(afc_config_set_max_bytes(config, max_bytes));
    if (default_ttl) CHECK_OK(afc_config_set_default_ttl_ns(config, default_ttl));
    CHECK_OK(afc_config_set_handle_release(config, track_release, t));
    CHECK_OK(afc_cache_new(config, &cache));
    afc_config_free(config);
    return cache;
}

/* Puts handle `h` under `key`, expecting `want`; records it as stored on success. */
static void put_handle(afc_cache *cache, tracker *t, const char *key, uint64_t h, uint64_t weight,
                       uint64_t ttl, afc_status want, int line) {
    afc_status got;
    snprintf(t->key[h], sizeof t->key[h], "%s", key);
    got = afc_cache_put_handle(cache, K(key), h, weight, ttl);
    afc_check_status(got, want, __FILE__, line, "afc_cache_put_handle");
    if (got == AFC_OK) t->stored[h] = true;
}

/* Checks that handle `h` was released exactly once, with `cause`. */
static void expect_released(const tracker *t, uint64_t h, afc_removal_cause cause, int line) {
    char detail[128];
    bool ok = t->released[h] == 1 && t->cause[h] == cause;
    snprintf(detail, sizeof detail, "handle %llu released %d times, last cause %d; want once, %d",
             (unsigned long long)h, t->released[h], (int)t->cause[h], (int)cause);
    afc_check(ok, __FILE__, line, "handle release", ok ? NULL : detail);
}

/* Every stored handle released exactly once, every refused one never. */
static void expect_all_released_once(const tracker *t, int line) {
    int h;
    char detail[128];
    for (h = 0; h < MAX_HANDLES; h++) {
        int want = t->stored[h] ? 1 : 0;
        if (t->released[h] != want) {
            snprintf(detail, sizeof detail, "handle %d (stored: %d) released %d times", h,
                     (int)t->stored[h], t->released[h]);
            afc_check(false, __FILE__, line, "exactly-once release", detail);
        }
    }
    afc_check(t->bad == 0, __FILE__, line, "releases under the right key", NULL);
}

static void test_handle_lifecycle(void) {
    tracker t;
    afc_cache *cache = tracked_cache(&t, 4, 1000, 0);
    uint64_t handle = 0, ttl = 0;
    size_t expired = 0;
    bool flag = false;

    put_handle(cache, &t, "h0", 0, 10, 0, AFC_OK, __LINE__);
    put_handle(cache, &t, "h1", 1, 10, 0, AFC_OK, __LINE__);
    put_handle(cache, &t, "h2", 2, 10, 0, AFC_OK, __LINE__);
    put_handle(cache, &t, "h3", 3, 10, 0, AFC_OK, __LINE__);
    CHECK_EQ(t.releases, 0);
    put_handle(cache, &t, "h4", 4, 10, 0, AFC_OK, __LINE__); /* evicts h0 */
    expect_released(&t, 0, AFC_CAUSE_EVICTED, __LINE__);

    CHECK_OK(afc_cache_get_handle(cache, K("h1"), &handle));
    CHECK_EQ(handle, 1);
    CHECK_OK(afc_cache_peek_handle(cache, K("h2"), &handle));
    CHECK_EQ(handle, 2);
    handle = 99;
    CHECK_ST(afc_cache_get_handle(cache, K("h0"), &handle), AFC_NOT_FOUND);
    CHECK_ST(afc_cache_peek_handle(cache, K("h0"), &handle), AFC_NOT_FOUND);
    CHECK_EQ(handle, 99);
    CHECK_OK(afc_cache_contains(cache, K("h3"), &flag));
    CHECK(flag);
    CHECK_OK(afc_cache_remaining_ttl(cache, K("h3"), &ttl));
    CHECK_EQ(ttl, UINT64_MAX);

    /* Replacing releases the old handle (with the key it was stored under). */
    put_handle(cache, &t, "h1", 5, 10, 0, AFC_OK, __LINE__);
    expect_released(&t, 1, AFC_CAUSE_REPLACED, __LINE__);
    CHECK_OK(afc_cache_get_handle(cache, K("h1"), &handle));
    CHECK_EQ(handle, 5);

    CHECK_OK(afc_cache_remove(cache, K("h2")));
    expect_released(&t, 2, AFC_CAUSE_REMOVED, __LINE__);
    CHECK_ST(afc_cache_remove(cache, K("h2")), AFC_NOT_FOUND);
    CHECK_EQ(t.released[2], 1);

    /* Expiry, seen by a get and by afc_cache_expire. */
    put_handle(cache, &t, "t6", 6, 1, 10, AFC_OK, __LINE__);
    CHECK_OK(afc_cache_remaining_ttl(cache, K("t6"), &ttl));
    CHECK_EQ(ttl, 10);
    CHECK_OK(afc_cache_clock_advance(cache, 10));
    CHECK_ST(afc_cache_get_handle(cache, K("t6"), &handle), AFC_NOT_FOUND);
    expect_released(&t, 6, AFC_CAUSE_EXPIRED, __LINE__);
    put_handle(cache, &t, "t7", 7, 1, 5, AFC_OK, __LINE__);
    CHECK_OK(afc_cache_clock_advance(cache, 5));
    CHECK_OK(afc_cache_expire(cache, &expired));
    CHECK_EQ(expired, 1);
    expect_released(&t, 7, AFC_CAUSE_EXPIRED, __LINE__);

    /* Refused puts never take the handle, and leave the old one in place. */
    put_handle(cache, &t, "h3", 8, 1001, 0, AFC_ENTRY_TOO_HEAVY, __LINE__);
    put_handle(cache, &t, "h3", 9, 0x100000000ull, 0, AFC_ENTRY_TOO_LARGE, __LINE__);
    CHECK_OK(afc_cache_get_handle(cache, K("h3"), &handle));
    CHECK_EQ(handle, 3);
    CHECK_EQ(t.released[8] + t.released[9] + t.released[3], 0);

    /* Weight 0 is allowed. */
    put_handle(cache, &t, "z10", 10, 0, 0, AFC_OK, __LINE__);

    /* clear releases everything left as cleared. */
    CHECK_OK(afc_cache_clear(cache));
    expect_released(&t, 3, AFC_CAUSE_CLEARED, __LINE__);
    expect_released(&t, 10, AFC_CAUSE_CLEARED, __LINE__);
    CHECK_EQ(afc_test_len(cache), 0);

    /* And afc_cache_free releases what is left then. */
    put_handle(cache, &t, "f11", 11, 1, 0, AFC_OK, __LINE__);
    put_handle(cache, &t, "f12", 12, 1, 0, AFC_OK, __LINE__);
    afc_cache_free(cache);
    expect_released(&t, 11, AFC_CAUSE_CLEARED, __LINE__);
    expect_released(&t, 12, AFC_CAUSE_CLEARED, __LINE__);
    expect_all_released_once(&t, __LINE__);
}

static void test_handle_bounds_release(void) {
    tracker t;
    afc_cache *cache = tracked_cache(&t, 10, 100, 0);
    uint64_t weight = 0;
    int h;
    char key[24];

    for (h = 0; h < 10; h++) {
        snprintf(key, sizeof key, "k%d", h);
        put_handle(cache, &t, key, (uint64_t)h, 10, 0, AFC_OK, __LINE__);
    }
    CHECK_EQ(t.releases, 0);
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, 100);
    put_handle(cache, &t, "heavy", 10, 35, 0, AFC_OK, __LINE__); /* evicts k0..k3 (bytes) */
    CHECK_EQ(t.releases, 4);
    for (h = 0; h < 4; h++) expect_released(&t, (uint64_t)h, AFC_CAUSE_EVICTED, __LINE__);
    CHECK_OK(afc_cache_set_max_bytes(cache, 50)); /* 95 -> 45: evicts k4..k8 */
    CHECK_EQ(t.releases, 9);
    expect_released(&t, 8, AFC_CAUSE_EVICTED, __LINE__);
    CHECK_OK(afc_cache_resize(cache, 1)); /* keeps only "heavy" */
    CHECK_EQ(t.releases, 10);
    expect_released(&t, 9, AFC_CAUSE_EVICTED, __LINE__);
    CHECK_EQ(afc_test_len(cache), 1);
    afc_cache_free(cache);
    expect_released(&t, 10, AFC_CAUSE_CLEARED, __LINE__);
    expect_all_released_once(&t, __LINE__);
}

static void test_handle_default_ttl_and_clear_of_expired(void) {
    tracker t;
    afc_cache *cache = tracked_cache(&t, 10, 0, 100);
    uint64_t ttl = 0;
    put_handle(cache, &t, "a", 1, 0, 0, AFC_OK, __LINE__);
    put_handle(cache, &t, "b", 2, 0, 500, AFC_OK, __LINE__);
    CHECK_OK(afc_cache_remaining_ttl(cache, K("a"), &ttl));
    CHECK_EQ(ttl, 100);
    CHECK_OK(afc_cache_clock_advance(cache, 100));
    CHECK_OK(afc_cache_clear(cache)); /* a has expired: released as expired */
    expect_released(&t, 1, AFC_CAUSE_EXPIRED, __LINE__);
    expect_released(&t, 2, AFC_CAUSE_CLEARED, __LINE__);
    /* Expired entries left in the cache are released at afc_cache_free as expired. */
    put_handle(cache, &t, "c", 3, 0, 1, AFC_OK, __LINE__);
    CHECK_OK(afc_cache_clock_advance(cache, 1));
    afc_cache_free(cache);
    expect_released(&t, 3, AFC_CAUSE_EXPIRED, __LINE__);
    expect_all_released_once(&t, __LINE__);
}

static void test_handle_batches(void) {
    tracker t;
    afc_cache *cache = tracked_cache(&t, 16, 100, 0);
    /* Keys m1, m2, m1 (a duplicate within the batch). */
    const uint8_t keys[] = "m1m2m1";
    const size_t key_lens[] = {2, 2, 2};
    const uint64_t handles[] = {20, 21, 22};
    const uint64_t weights[] = {1, 2, 3};
    const uint8_t lookup[] = "m1nopem2";
    const size_t lookup_lens[] = {2, 4, 2};
    uint64_t out_handles[3] = {0, 0, 0};
    uint8_t found[3] = {9, 9, 9};
    uint64_t weight = 0;
    int i;

    for (i = 0; i < 3; i++) snprintf(t.key[handles[i]], sizeof t.key[0], "%.2s", keys + 2 * i);
    CHECK_OK(afc_cache_put_many_handles(cache, keys, key_lens, handles, weights, 3, 0));
    for (i = 0; i < 3; i++) t.stored[handles[i]] = true;
    expect_released(&t, 20, AFC_CAUSE_REPLACED, __LINE__); /* m1 -> 22 replaced 20 */
    CHECK_OK(afc_cache_weight(cache, &weight));
    CHECK_EQ(weight, 5);

    CHECK_OK(afc_cache_get_many_handles(cache, lookup, lookup_lens, 3, out_handles, found));
    CHECK_EQ(found[0], 1);
    CHECK_EQ(out_handles[0], 22);
    CHECK_EQ(found[1], 0);
    CHECK_EQ(found[2], 1);
    CHECK_EQ(out_handles[2], 21);
    CHECK_EQ(afc_test_stats(cache).hits, 2);
    CHECK_EQ(afc_test_stats(cache).misses, 1);

    /* All or none: one refused entry and no handle of the batch is taken. */
    {
        const uint64_t more[] = {23, 24};
        const uint64_t heavy[] = {1, 101};
        const uint64_t too_large[] = {1, 0x100000000ull};
        snprintf(t.key[23], sizeof t.key[0], "n1");
        snprintf(t.key[24], sizeof t.key[0], "m2");
        CHECK_FAILS(afc_cache_put_many_handles(cache, (const uint8_t *)"n1m2", key_lens, more,
                                               heavy, 2, 0),
                    AFC_ENTRY_TOO_HEAVY, "max_bytes");
        CHECK_FAILS(afc_cache_put_many_handles(cache, (const uint8_t *)"n1m2", key_lens, more,
                                               too_large, 2, 0),
                    AFC_ENTRY_TOO_LARGE, NULL);
        CHECK_EQ(t.released[21] + t.released[23] + t.released[24], 0);
        CHECK_ST(afc_cache_get_handle(cache, K("n1"), &weight), AFC_NOT_FOUND);
        CHECK_OK(afc_cache_get_handle(cache, K("m2"), &weight));
        CHECK_EQ(weight, 21);
    }

    /* A batch with a TTL. */
    {
        const uint64_t hs[] = {25, 26}, ws[] = {0, 0};
        uint64_t ttl = 0;
        snprintf(t.key[25], sizeof t.key[0], "x1");
        snprintf(t.key[26], sizeof t.key[0], "x2");
        CHECK_OK(afc_cache_put_many_handles(cache, (const uint8_t *)"x1x2", key_lens, hs, ws, 2,
                                            7));
        t.stored[25] = t.stored[26] = true;
        CHECK_OK(afc_cache_remaining_ttl(cache, K("x2"), &ttl));
        CHECK_EQ(ttl, 7);
        CHECK_OK(afc_cache_clock_advance(cache, 7));
        CHECK_OK(afc_cache_expire(cache, NULL));
        expect_released(&t, 25, AFC_CAUSE_EXPIRED, __LINE__);
        expect_released(&t, 26, AFC_CAUSE_EXPIRED, __LINE__);
    }
    afc_cache_free(cache);
    expect_all_released_once(&t, __LINE__);
}

static void test_handle_iterator(void) {
    tracker t;
    afc_cache *cache = tracked_cache(&t, 16, 0, 0);
    afc_iter *iter = NULL;
    const uint8_t *key, *value;
    size_t key_len, value_len;
    uint64_t ttl, seen = 0;
    int entries = 0;

    put_handle(cache, &t, "a", 1, 0, 0, AFC_OK, __LINE__);
    put_handle(cache, &t, "b", 0x0102030405060708ull % MAX_HANDLES, 0, 0, AFC_OK, __LINE__);
    CHECK_OK(afc_iter_new(cache, &iter));
    while (afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl) == AFC_OK) {
        uint64_t h = 0;
        int i;
        CHECK_EQ(value_len, 8);
        for (i = 7; i >= 0 && value_len == 8; i--) h = (h << 8) | value[i]; /* little-endian */
        CHECK_BYTES(key, key_len, t.key[h < MAX_HANDLES ? h : 0]);
        seen |= (uint64_t)1 << (h % 64);
        entries++;
    }
    afc_iter_free(iter);
    CHECK_EQ(entries, 2);
    CHECK_EQ(seen, ((uint64_t)1 << 1) | ((uint64_t)1 << (0x0102030405060708ull % MAX_HANDLES)));
    afc_cache_free(cache);
    expect_all_released_once(&t, __LINE__);
}

/* Handles outside a tracker's range still round-trip (the full 64 bits). */
static void record_handle(void *user_data, const uint8_t *key, size_t key_len, uint64_t handle,
                          afc_removal_cause cause) {
    (void)key, (void)key_len, (void)cause;
    *(uint64_t *)user_data = handle;
}

static void test_handle_full_width(void) {
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    uint64_t released = 0, handle = 0;
    CHECK_OK(afc_config_new(4, &config));
    CHECK_OK(afc_config_set_handle_release(config, record_handle, &released));
    CHECK_OK(afc_cache_new(config, &cache));
    afc_config_free(config);
    CHECK_OK(afc_cache_put_handle(cache, K("max"), UINT64_MAX, 0, 0));
    CHECK_OK(afc_cache_get_handle(cache, K("max"), &handle));
    CHECK_EQ(handle, UINT64_MAX);
    CHECK_OK(afc_cache_put_handle(cache, K("max"), 0, 0, 0));
    CHECK_EQ(released, UINT64_MAX);
    CHECK_OK(afc_cache_put_handle(cache, K("zero"), 0x8000000000000001ull, 0, 0));
    CHECK_OK(afc_cache_remove(cache, K("zero")));
    CHECK_EQ(released, 0x8000000000000001ull);
    afc_cache_free(cache);
    CHECK_EQ(released, 0);
}

/* A release callback that calls back into its cache, including a put that evicts again. */
typedef struct {
    afc_cache *cache;
    int calls, failures, reputs;
} reentrant_release_state;

static void reentrant_release(void *user_data, const uint8_t *key, size_t key_len,
                              uint64_t handle, afc_removal_cause cause) {
    reentrant_release_state *st = user_data;
    size_t len = 0;
    uint64_t out[1];
    uint8_t found[1];
    st->calls++;
    if (afc_cache_len(st->cache, &len) != AFC_OK) st->failures++;
    if (afc_cache_get_many_handles(st->cache, key, &key_len, 1, out, found) != AFC_OK)
        st->failures++;
    else if (found[0] != (cause == AFC_CAUSE_REPLACED)) st->failures++;
    /* Re-store each evicted handle once, under a new key (handles >= 1000 are such copies). */
    if (cause == AFC_CAUSE_EVICTED && handle < 1000) {
        char copy[32];
        snprintf(copy, sizeof copy, "copy-%llu", (unsigned long long)handle);
        if (afc_cache_put_handle(st->cache, K(copy), handle + 1000, 0, 0) != AFC_OK) st->failures++;
        st->reputs++;
    }
}

static void test_handle_release_reenters_cache(void) {
    reentrant_release_state st;
    afc_config *config = NULL;
    char key[24];
    int i;
    memset(&st, 0, sizeof st);
    CHECK_OK(afc_config_new(3, &config));
    CHECK_OK(afc_config_set_shards(config, 1));
    CHECK_OK(afc_config_set_handle_release(config, reentrant_release, &st));
    CHECK_OK(afc_cache_new(config, &st.cache));
    afc_config_free(config);
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_OK(afc_cache_put_handle(st.cache, K(key), (uint64_t)i, 0, 0));
        CHECK_OK(afc_cache_put_handle(st.cache, K(key), (uint64_t)(100 + i), 0, 0)); /* replaces */
    }
    CHECK_OK(afc_cache_clear(st.cache));
    CHECK_EQ(st.failures, 0);
    CHECK(st.reputs > 0);
    CHECK(st.calls >= 20);
    afc_cache_free(st.cache);
}

/* afc_cache_free reports each remaining handle as cleared, and the release may call the cache;
 * but nothing can be stored then (it would be dropped unreported: a leaked handle). Here the
 * release tries to re-file each cleared handle under another key, as the audit's reproducer did:
 * every such store is refused, so every handle stored is released exactly once. */
typedef struct {
    afc_cache *cache;
    bool freeing;
    int stored, released, refused, other;
    char message[160];
} free_release_state;

static void release_and_restore(void *user_data, const uint8_t *key, size_t key_len,
                                uint64_t handle, afc_removal_cause cause) {
    free_release_state *st = user_data;
    afc_status put, put_many, load;
    const size_t one = 1;
    const uint64_t copy = handle + 2000, weight = 0, ttl = 0;
    uint8_t kept = 9;
    size_t len = 99;
    (void)key, (void)key_len;
    st->released++;
    /* Only the handles put by the test are re-filed (copies are >= 1000, and not re-filed). */
    if (!st->freeing || handle >= 1000) return;
    if (cause != AFC_CAUSE_CLEARED) st->other++;
    put = afc_cache_put_handle(st->cache, K("refiled"), handle + 1000, 0, 0);
    snprintf(st->message, sizeof st->message, "%s", afc_last_error());
    put_many = afc_cache_put_many_handles(st->cache, (const uint8_t *)"r", &one, &copy, &weight,
                                          1, 0);
    load = afc_cache_load_handles(st->cache, (const uint8_t *)"r", &one, &copy, &weight, &ttl, 1,
                                  &kept);
    if (put == AFC_OK) st->stored++;
    if (put_many == AFC_OK) st->stored++;
    if (load == AFC_OK && kept == 1) st->stored++;
    if (put == AFC_INVALID_ARGUMENT && put_many == AFC_INVALID_ARGUMENT &&
        load == AFC_INVALID_ARGUMENT && kept == 9)
        st->refused++;
    /* Reads still work: the cache is empty by now. */
    if (afc_cache_len(st->cache, &len) != AFC_OK || len != 0) st->other++;
}

static void test_handle_free_refuses_stores_from_release(void) {
    free_release_state st;
    afc_config *config = NULL;
    char key[16];
    int i;
    memset(&st, 0, sizeof st);
    CHECK_OK(afc_config_new(64, &config));
    CHECK_OK(afc_config_set_shards(config, 1));
    CHECK_OK(afc_config_set_handle_release(config, release_and_restore, &st));
    CHECK_OK(afc_cache_new(config, &st.cache));
    afc_config_free(config);
    for (i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_OK(afc_cache_put_handle(st.cache, K(key), (uint64_t)i, 0, 0));
        st.stored++;
    }
    st.freeing = true;
    afc_cache_free(st.cache);
    CHECK_EQ(st.released, 5);
    CHECK_EQ(st.stored, st.released); /* no handle stored during the free went unreported */
    CHECK_EQ(st.refused, 5);
    CHECK_EQ(st.other, 0);
    CHECK(strstr(st.message, "the cache is being freed (afc_cache_free)") != NULL);
}

/* Reads the next entry of `iter` as (key, handle, ttl, weight); false at the end. */
static bool next_handle(afc_iter *iter, const uint8_t **key, size_t *key_len, uint64_t *handle,
                        uint64_t *ttl, uint64_t *weight) {
    const uint8_t *value;
    size_t value_len;
    int i;
    if (afc_iter_next(iter, key, key_len, &value, &value_len, ttl) != AFC_OK) return false;
    CHECK_EQ(value_len, 8);
    *handle = 0;
    for (i = 7; i >= 0 && value_len == 8; i--) *handle = (*handle << 8) | value[i];
    CHECK_OK(afc_iter_weight(iter, weight));
    return true;
}

/* afc_snapshot_iter_new: least recently used first, with TTLs and weights; afc_iter_weight on
   every kind of iterator. */
static void test_handle_snapshot_iterator(void) {
    tracker t;
    afc_cache *cache = tracked_cache(&t, 16, 0, 0);
    afc_iter *iter = NULL;
    const uint8_t *key;
    size_t key_len, n = 0;
    uint64_t handle, ttl, weight;

    put_handle(cache, &t, "a", 1, 7, 0, AFC_OK, __LINE__);
    put_handle(cache, &t, "b", 2, 0, 50, AFC_OK, __LINE__);
    put_handle(cache, &t, "c", 3, 9, 0, AFC_OK, __LINE__);
    CHECK_OK(afc_cache_get_handle(cache, K("a"), &handle)); /* order now b, c, a */
    CHECK_OK(afc_cache_clock_advance(cache, 20));

    CHECK_OK(afc_snapshot_iter_new(cache, &iter));
    CHECK_ST(afc_iter_weight(iter, &weight), AFC_NOT_FOUND); /* nothing read yet */
    CHECK_OK(afc_iter_remaining(iter, &n));
    CHECK_EQ(n, 3);
    CHECK(next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    CHECK_BYTES(key, key_len, "b");
    CHECK_EQ(handle, 2);
    CHECK_EQ(ttl, 30);
    CHECK_EQ(weight, 0);
    CHECK(next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    CHECK_BYTES(key, key_len, "c");
    CHECK_EQ(ttl, UINT64_MAX);
    CHECK_EQ(weight, 9);
    CHECK(next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    CHECK_BYTES(key, key_len, "a");
    CHECK_EQ(weight, 7);
    CHECK(!next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    CHECK_OK(afc_iter_weight(iter, &weight)); /* still the last entry read */
    CHECK_EQ(weight, 7);
    CHECK_NULL_ARG(afc_iter_weight(iter, NULL), "out");
    afc_iter_free(iter);
    CHECK_NULL_ARG(afc_iter_weight(NULL, &weight), "iter");
    CHECK_NULL_ARG(afc_snapshot_iter_new(cache, NULL), "out");
    CHECK_NULL_ARG(afc_snapshot_iter_new(NULL, &iter), "cache");

    /* afc_iter_new's order is the reverse; its iterators have weights too. */
    CHECK_OK(afc_iter_new(cache, &iter));
    CHECK(next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    CHECK_BYTES(key, key_len, "a");
    CHECK_EQ(weight, 7);
    afc_iter_free(iter);

    /* Expired entries are left out (and not reclaimed: that is for expire). */
    CHECK_OK(afc_cache_clock_advance(cache, 30));
    CHECK_OK(afc_snapshot_iter_new(cache, &iter));
    CHECK_OK(afc_iter_remaining(iter, &n));
    CHECK_EQ(n, 2);
    afc_iter_free(iter);
    CHECK_EQ(t.releases, 0);
    CHECK_OK(afc_cache_expire_keys(cache, &iter)); /* b's key, no value, weight 0 */
    {
        const uint8_t *value;
        size_t value_len;
        CHECK_OK(afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl));
        CHECK_BYTES(key, key_len, "b");
        CHECK_EQ(value_len, 0);
        weight = 99;
        CHECK_OK(afc_iter_weight(iter, &weight));
        CHECK_EQ(weight, 0);
    }
    afc_iter_free(iter);
    expect_released(&t, 2, AFC_CAUSE_EXPIRED, __LINE__);
    afc_cache_free(cache);
    expect_all_released_once(&t, __LINE__);
}

/* afc_cache_load_handles: the result of a clear and puts in order, without counting or
   releasing what did not fit, and out_kept telling which handles the cache took. */
static void test_handle_load(void) {
    tracker t;
    afc_cache *cache = tracked_cache(&t, 4, 100, 1000);
    afc_iter *iter = NULL;
    const uint8_t *key;
    size_t key_len;
    uint64_t handle, ttl, weight;
    afc_stats stats;
    /* Entries 10..16, least recently used first: k0 pushed out by the entry bound, "heavy"
       (weight 101) skipped, k2's first entry replaced by its later one (16), k1 kept with
       weight 30, the rest with TTLs (0: never expires, the default TTL does not apply). */
    const uint8_t keys[] = "k0heavyk1k2k3k4k2";
    const size_t key_lens[] = {2, 5, 2, 2, 2, 2, 2};
    const uint64_t handles[] = {10, 11, 12, 13, 14, 15, 16};
    const uint64_t weights[] = {1, 101, 30, 1, 1, 1, 5};
    const uint64_t ttls[] = {0, 0, 0, 40, 0, 60, 0};
    const uint8_t want_kept[] = {0, 0, 1, 0, 1, 1, 1};
    uint8_t kept[7];
    int i;

    put_handle(cache, &t, "old", 1, 1, 0, AFC_OK, __LINE__);
    put_handle(cache, &t, "k3", 2, 1, 5, AFC_OK, __LINE__);
    put_handle(cache, &t, "k1", 3, 1, 0, AFC_OK, __LINE__);
    CHECK_OK(afc_cache_get_handle(cache, K("k3"), &handle));
    CHECK_OK(afc_cache_clock_advance(cache, 5)); /* k3 (handle 2) has expired */
    for (i = 0; i < 7; i++) {
        size_t at = 0, j;
        for (j = 0; j < (size_t)i; j++) at += key_lens[j];
        snprintf(t.key[handles[i]], sizeof t.key[0], "%.*s", (int)key_lens[i], keys + at);
    }

    memset(kept, 9, sizeof kept);
    CHECK_OK(afc_cache_load_handles(cache, keys, key_lens, handles, weights, ttls, 7, kept));
    for (i = 0; i < 7; i++) {
        CHECK_EQ(kept[i], want_kept[i]);
        t.stored[handles[i]] = kept[i] == 1;
    }
    /* The old entries were released as a clear releases them; nothing else was. */
    CHECK_EQ(t.releases, 3);
    expect_released(&t, 1, AFC_CAUSE_CLEARED, __LINE__);
    expect_released(&t, 2, AFC_CAUSE_EXPIRED, __LINE__);
    expect_released(&t, 3, AFC_CAUSE_CLEARED, __LINE__);
    stats = afc_test_stats(cache);
    CHECK_EQ(stats.inserts, 3 + 4);
    CHECK_EQ(stats.removals, 2);
    CHECK_EQ(stats.expirations, 1);
    CHECK_EQ(stats.evictions, 0);
    CHECK_EQ(stats.hits, 1);
    CHECK_EQ(stats.entries, 4);
    CHECK_EQ(stats.weight, 30 + 1 + 1 + 5);

    /* The order, the TTLs (from the load's time) and the weights restored. */
    CHECK_OK(afc_cache_clock_advance(cache, 10));
    CHECK_OK(afc_snapshot_iter_new(cache, &iter));
    CHECK(next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    CHECK_BYTES(key, key_len, "k1");
    CHECK_EQ(handle, 12);
    CHECK_EQ(ttl, UINT64_MAX);
    CHECK_EQ(weight, 30);
    CHECK(next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    CHECK_BYTES(key, key_len, "k3");
    CHECK_EQ(ttl, UINT64_MAX);
    CHECK(next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    CHECK_BYTES(key, key_len, "k4");
    CHECK_EQ(ttl, 50);
    CHECK(next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    CHECK_BYTES(key, key_len, "k2");
    CHECK_EQ(handle, 16);
    CHECK_EQ(weight, 5);
    CHECK(!next_handle(iter, &key, &key_len, &handle, &ttl, &weight));
    afc_iter_free(iter);

    /* Refused before anything changes, no handle taken. */
    {
        const uint64_t big[] = {0x100000000ull};
        const uint64_t one[] = {0}, h[] = {20};
        const size_t two[] = {2};
        size_t len = 0;
        CHECK_FAILS(afc_cache_load_handles(cache, (const uint8_t *)"zz", two, h, big, one, 1, NULL),
                    AFC_ENTRY_TOO_LARGE, NULL);
        CHECK_NULL_ARG(afc_cache_load_handles(cache, (const uint8_t *)"zz", two, NULL, one, one, 1, NULL),
                       "handles");
        CHECK_NULL_ARG(afc_cache_load_handles(cache, (const uint8_t *)"zz", two, h, one, NULL, 1, NULL),
                       "ttls_ns");
        CHECK_NULL_ARG(afc_cache_load_handles(NULL, (const uint8_t *)"zz", two, h, one, one, 1, NULL), "cache");
        CHECK_EQ(t.releases, 3);
        CHECK_OK(afc_cache_len(cache, &len));
        CHECK_EQ(len, 4);
    }
    /* Without out_kept; an empty load clears. */
    {
        const size_t lens[] = {1};
        const uint64_t h[] = {21}, w[] = {1}, ttl0[] = {0};
        snprintf(t.key[21], sizeof t.key[0], "z");
        CHECK_OK(afc_cache_load_handles(cache, (const uint8_t *)"z", lens, h, w, ttl0, 1, NULL));
        t.stored[21] = true;
        CHECK_EQ(t.releases, 7);
        CHECK_OK(afc_cache_load_handles(cache, NULL, NULL, NULL, NULL, NULL, 0, NULL));
        expect_released(&t, 21, AFC_CAUSE_CLEARED, __LINE__);
        CHECK_EQ(afc_test_len(cache), 0);
    }
    afc_cache_free(cache);
    expect_all_released_once(&t, __LINE__);

    /* A byte cache has no handles. */
    {
        afc_cache *bytes = afc_test_cache(4, 0, 0, 1, NO_MANUAL_CLOCK);
        CHECK_FAILS(afc_cache_load_handles(bytes, NULL, NULL, NULL, NULL, NULL, 0, NULL),
                    AFC_WRONG_VALUE_KIND, NULL);
        afc_cache_free(bytes);
    }
}

const afc_test_case afc_handle_tests[] = {
    {"handles/lifecycle", test_handle_lifecycle},
    {"handles/bounds_release", test_handle_bounds_release},
    {"handles/default_ttl_and_clear_of_expired", test_handle_default_ttl_and_clear_of_expired},
    {"handles/batches", test_handle_batches},
    {"handles/iterator", test_handle_iterator},
    {"handles/full_width", test_handle_full_width},
    {"handles/release_reenters_cache", test_handle_release_reenters_cache},
    {"handles/free_refuses_stores_from_release", test_handle_free_refuses_stores_from_release},
    {"handles/snapshot_iterator", test_handle_snapshot_iterator},
    {"handles/load", test_handle_load},
};
const size_t afc_handle_test_count = sizeof afc_handle_tests / sizeof afc_handle_tests[0];

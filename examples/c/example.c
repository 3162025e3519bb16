/*
 * alphaforge-cache from C: a bounded cache of market data with a TTL on a manual clock, a
 * listener, single and batch gets, expiry and statistics.
 *
 * Build: make            (against the in-tree library, after `cargo build --release`)
 *        make PKGCONFIG=1 (against an installed one: pkg-config --cflags --libs alphaforge_cache)
 */
#include <alphaforge_cache.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECOND 1000000000ull /* nanoseconds */

/* Stops the program with the library's message when a call fails. */
static void check(afc_status status, const char *what) {
    if (status != AFC_OK) {
        fprintf(stderr, "%s: %s (%s)\n", what, afc_status_name(status), afc_last_error());
        exit(EXIT_FAILURE);
    }
}

/* Told of every entry that leaves the cache (after the cache's locks are released). */
static void on_removal(void *user_data, const uint8_t *key, size_t key_len, const uint8_t *value,
                       size_t value_len, afc_removal_cause cause) {
    static const char *const causes[] = {"evicted", "expired", "removed", "replaced", "cleared"};
    int *removals = user_data;
    ++*removals;
    printf("  listener: %.*s = %.*s left the cache (%s)\n", (int)key_len, (const char *)key,
           (int)value_len, (const char *)value, causes[cause]);
}

static void put(afc_cache *cache, const char *key, const char *value, uint64_t ttl_ns) {
    check(afc_cache_put(cache, (const uint8_t *)key, strlen(key), (const uint8_t *)value,
                        strlen(value), ttl_ns),
          key);
}

/* Prints the value of `key`, or that it is missing. */
static void show(afc_cache *cache, const char *key) {
    uint8_t buf[64];
    size_t len = 0;
    afc_status status = afc_cache_get(cache, (const uint8_t *)key, strlen(key), buf, sizeof buf,
                                      &len);
    if (status == AFC_NOT_FOUND) {
        printf("  get %-10s -> (missing)\n", key);
        return;
    }
    check(status, "afc_cache_get");
    printf("  get %-10s -> %.*s\n", key, (int)len, (const char *)buf);
}

int main(void) {
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    afc_stats stats;
    uint64_t left_ns = 0;
    size_t expired = 0;
    int removals = 0;

    printf("alphaforge-cache %s (ABI %u)\n", afc_version(), afc_abi_version());
    if (afc_abi_version() != AFC_ABI_VERSION) {
        fprintf(stderr, "built for ABI %d, but the library has ABI %u\n", AFC_ABI_VERSION,
                afc_abi_version());
        return EXIT_FAILURE;
    }

    /* At most 3 entries and 1 KiB, a 60 s default TTL, time that only moves when told to. */
    check(afc_config_new(3, &config), "afc_config_new");
    check(afc_config_set_max_bytes(config, 1024), "afc_config_set_max_bytes");
    check(afc_config_set_default_ttl_ns(config, 60 * SECOND), "afc_config_set_default_ttl_ns");
    check(afc_config_set_shards(config, 1), "afc_config_set_shards"); /* exact LRU order */
    check(afc_config_use_manual_clock(config, 0), "afc_config_use_manual_clock");
    check(afc_config_set_listener(config, on_removal, &removals), "afc_config_set_listener");
    check(afc_cache_new(config, &cache), "afc_cache_new");
    afc_config_free(config); /* the cache does not need it */

    printf("put and get:\n");
    put(cache, "AAPL", "189.70", 0);          /* the default TTL: 60 s */
    put(cache, "MSFT", "411.20", 0);
    put(cache, "quote:AAPL", "189.97/189.99", SECOND / 2); /* its own TTL: 0.5 s */
    show(cache, "AAPL");
    show(cache, "quote:AAPL");
    put(cache, "GOOG", "171.05", 0);          /* a 4th entry: the least recently used goes */
    put(cache, "AAPL", "189.75", 0);          /* an update: the listener hears the old value */

    printf("after one second:\n");
    check(afc_cache_clock_advance(cache, SECOND), "afc_cache_clock_advance");
    show(cache, "quote:AAPL");                 /* expired */
    check(afc_cache_remaining_ttl(cache, (const uint8_t *)"AAPL", 4, &left_ns),
          "afc_cache_remaining_ttl");
    printf("  AAPL expires in %.1f s\n", (double)left_ns / SECOND);

    printf("batch get:\n");
    {
        const char keys[] = "AAPLMSFTGOOGTSLA"; /* four keys, concatenated */
        const size_t key_lens[4] = {4, 4, 4, 4};
        uint8_t values[128];
        size_t offsets[4], lens[4], needed = 0, i;
        check(afc_cache_get_many(cache, (const uint8_t *)keys, key_lens, 4, values, sizeof values,
                                 offsets, lens, &needed),
              "afc_cache_get_many");
        for (i = 0; i < 4; i++) {
            if (offsets[i] == AFC_MISSING)
                printf("  %.4s -> (missing)\n", keys + 4 * i);
            else
                printf("  %.4s -> %.*s\n", keys + 4 * i, (int)lens[i],
                       (const char *)values + offsets[i]);
        }
    }

    printf("after two minutes:\n");
    check(afc_cache_clock_advance(cache, 120 * SECOND), "afc_cache_clock_advance");
    check(afc_cache_expire(cache, &expired), "afc_cache_expire");
    printf("  afc_cache_expire reclaimed %zu entries\n", expired);

    check(afc_cache_stats(cache, &stats), "afc_cache_stats");
    printf("stats: %llu hits, %llu misses, %llu inserts, %llu updates, %llu evictions, "
           "%llu expirations, %llu entries\n",
           (unsigned long long)stats.hits, (unsigned long long)stats.misses,
           (unsigned long long)stats.inserts, (unsigned long long)stats.updates,
           (unsigned long long)stats.evictions, (unsigned long long)stats.expirations,
           (unsigned long long)stats.entries);

    afc_cache_free(cache);
    printf("the listener heard %d removals\n", removals);
    return EXIT_SUCCESS;
}

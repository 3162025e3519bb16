/*
 * A benchmark of alphaforge-cache through its C ABI, on the workloads of the Rust criterion
 * benchmarks (benches/rust/benches/peers.rs) so the figures compare: a 100,000-entry cache with
 * the default shard count, 16-byte keys, 64-byte values, the same key sets (the same SplitMix64
 * generator, seeds and shuffles).
 *
 *   get_hit     afc_cache_get of resident keys, in a shuffled order (criterion: get_hit)
 *   get_miss    afc_cache_get of 100k keys never inserted (criterion: get_miss)
 *   put_evict   afc_cache_put of fresh keys into the full cache, each evicting (criterion:
 *               put_evict; 1M fresh keys, cycled)
 *   get_many16  afc_cache_get_many of 16 resident keys per call, reported per key
 *
 * Each workload runs ROUNDS timed rounds (after one warm-up round) and reports the median and the
 * best ns/op. Not a test: it checks nothing beyond the calls succeeding.
 * Usage: bench [ops_per_round]   (default 2,000,000)
 */
#define _POSIX_C_SOURCE 200809L

#include "alphaforge_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAPACITY 100000u
#define KEY_LEN 16
#define VALUE_LEN 64
#define ROUNDS 7
#define BATCH 16

typedef struct {
    uint8_t b[KEY_LEN];
} bench_key;

/* ----- the Rust benchmark's key sets (benches/rust/src/lib.rs) ------------------------------ */

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t splitmix_next(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ull;
    return mix(*state);
}

static void put_le64(uint8_t *out, uint64_t v) {
    int i;
    for (i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
}

/* The key of id i: 8 scrambled bytes, then the id (little-endian). */
static bench_key make_key(uint64_t i) {
    bench_key k;
    put_le64(k.b, mix(i ^ 0x5DEECE66D1CE4E5Bull));
    put_le64(k.b + 8, i);
    return k;
}

/* The keys of ids start..end, shuffled (Fisher-Yates) with `seed`. */
static bench_key *shuffled_keys(uint64_t start, uint64_t end, uint64_t seed, size_t *count) {
    size_t n = (size_t)(end - start), i;
    uint64_t *ids = malloc(n * sizeof *ids), rng = seed;
    bench_key *keys = malloc(n * sizeof *keys);
    if (!ids || !keys) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (i = 0; i < n; i++) ids[i] = start + i;
    for (i = n - 1; i >= 1; i--) {
        size_t j = (size_t)(splitmix_next(&rng) % (uint64_t)(i + 1));
        uint64_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    for (i = 0; i < n; i++) keys[i] = make_key(ids[i]);
    free(ids);
    *count = n;
    return keys;
}

/* ----- timing ------------------------------------------------------------------------------- */

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void check(afc_status status, const char *what) {
    if (status != AFC_OK) {
        fprintf(stderr, "%s: %s (%s)\n", what, afc_status_name(status), afc_last_error());
        exit(1);
    }
}

static const uint8_t VALUE[VALUE_LEN] = {
    0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5,
    0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5,
    0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5,
    0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5,
};

typedef enum { GET, PUT, GET_MANY } op_kind;

typedef struct {
    afc_cache *cache;
    const bench_key *keys;
    size_t count;  /* keys in the cycle */
    size_t cursor; /* where the next round resumes */
    size_t hits;   /* a checksum, so the work is not optimised away */
} workload;

/* Runs `ops` operations (keys, for GET_MANY) and returns the elapsed nanoseconds. */
static double run_round(workload *w, op_kind kind, size_t ops) {
    uint8_t buf[VALUE_LEN];
    size_t len = 0, i = w->cursor, done = 0;
    double start = now_ns(), end;
    if (kind == GET) {
        for (; done < ops; done++) {
            if (afc_cache_get(w->cache, w->keys[i].b, KEY_LEN, buf, sizeof buf, &len) == AFC_OK)
                w->hits += len;
            if (++i == w->count) i = 0;
        }
    } else if (kind == PUT) {
        for (; done < ops; done++) {
            if (afc_cache_put(w->cache, w->keys[i].b, KEY_LEN, VALUE, VALUE_LEN, 0) != AFC_OK)
                check(AFC_PANIC, "afc_cache_put");
            if (++i == w->count) i = 0;
        }
    } else {
        static const size_t key_lens[BATCH] = {KEY_LEN, KEY_LEN, KEY_LEN, KEY_LEN, KEY_LEN,
                                               KEY_LEN, KEY_LEN, KEY_LEN, KEY_LEN, KEY_LEN,
                                               KEY_LEN, KEY_LEN, KEY_LEN, KEY_LEN, KEY_LEN,
                                               KEY_LEN};
        uint8_t values[BATCH * VALUE_LEN];
        size_t offsets[BATCH], lens[BATCH], needed = 0;
        /* Batches of 16 consecutive keys of the sequence (count is a multiple of 16 here). */
        for (; done < ops; done += BATCH) {
            if (i + BATCH > w->count) i = 0;
            check(afc_cache_get_many(w->cache, w->keys[i].b, key_lens, BATCH, values,
                                     sizeof values, offsets, lens, &needed),
                  "afc_cache_get_many");
            w->hits += needed;
            i += BATCH;
        }
    }
    end = now_ns();
    w->cursor = i;
    return end - start;
}

static void bench(const char *name, workload *w, op_kind kind, size_t ops, const char *note) {
    double per_op[ROUNDS];
    int r;
    run_round(w, kind, ops / 4 > 0 ? ops / 4 : 1); /* warm-up */
    for (r = 0; r < ROUNDS; r++) per_op[r] = run_round(w, kind, ops) / (double)ops;
    qsort(per_op, ROUNDS, sizeof per_op[0], compare_doubles);
    printf("%-11s %7.1f ns/op  (median of %d rounds of %zu ops; best %.1f, worst %.1f)%s\n", name,
           per_op[ROUNDS / 2], ROUNDS, ops, per_op[0], per_op[ROUNDS - 1], note);
}

int main(int argc, char **argv) {
    size_t ops = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 2000000, n_fill, n_absent,
           n_fresh, n_resident = 0, i;
    bench_key *fill = shuffled_keys(0, CAPACITY, 1, &n_fill);
    bench_key *absent = shuffled_keys(1000000, 1100000, 2, &n_absent);
    bench_key *fresh = shuffled_keys(2000000, 3000000, 3, &n_fresh);
    bench_key *resident = malloc(n_fill * sizeof *resident);
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    workload w;
    size_t len = 0;

    if (ops < BATCH) ops = BATCH;
    ops -= ops % BATCH;
    if (!resident) return 1;
    check(afc_config_new(CAPACITY, &config), "afc_config_new");
    check(afc_cache_new(config, &cache), "afc_cache_new"); /* defaults: shards, no byte bound */
    afc_config_free(config);

    printf("alphaforge-cache %s through the C ABI: %u entries, %d-byte keys, %d-byte values\n",
           afc_version(), CAPACITY, KEY_LEN, VALUE_LEN);
    for (i = 0; i < n_fill; i++)
        check(afc_cache_put(cache, fill[i].b, KEY_LEN, VALUE, VALUE_LEN, 0), "fill");
    for (i = 0; i < n_fill; i++) {
        bool present = false;
        check(afc_cache_contains(cache, fill[i].b, KEY_LEN, &present), "afc_cache_contains");
        if (present) resident[n_resident++] = fill[i];
    }
    check(afc_cache_len(cache, &len), "afc_cache_len");
    printf("filled: %zu of %zu keys resident\n", n_resident, n_fill);

    memset(&w, 0, sizeof w);
    w.cache = cache;
    w.keys = resident;
    w.count = n_resident;
    bench("get_hit", &w, GET, ops, "");
    w.keys = absent;
    w.count = n_absent;
    w.cursor = 0;
    bench("get_miss", &w, GET, ops, "");
    w.keys = resident;
    w.count = n_resident - n_resident % BATCH;
    w.cursor = 0;
    bench("get_many16", &w, GET_MANY, ops, "  (per key)");
    w.keys = fresh;
    w.count = n_fresh;
    w.cursor = 0;
    bench("put_evict", &w, PUT, ops, "");
    check(afc_cache_len(cache, &len), "afc_cache_len");
    printf("(checksum %zu, %zu entries at the end)\n", w.hits, len);

    afc_cache_free(cache);
    free(fill);
    free(absent);
    free(fresh);
    free(resident);
    return 0;
}

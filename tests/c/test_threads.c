/*
 * Concurrency through the C ABI: several pthreads hammering one byte cache and one handle cache
 * with mixed operations (then checking bounds, statistics sums and listener counts), racing
 * get_or_insert callers (one computation), and the per-thread last error.
 */
#define _POSIX_C_SOURCE 200809L

#include "afc_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4

/* Operations per hammering thread (AFC_TEST_THREAD_OPS overrides; valgrind runs are slow). */
static unsigned thread_ops(void) {
    const char *env = getenv("AFC_TEST_THREAD_OPS");
    unsigned long n = env ? strtoul(env, NULL, 10) : 0;
    return n ? (unsigned)n : 20000;
}

/* xorshift64*: a small per-thread random generator. */
static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* ----- a byte cache under mixed load -------------------------------------------------------- */

#define BYTE_MAX_ENTRIES 512
#define BYTE_MAX_BYTES 16384
#define BYTE_KEYS 2048

typedef struct {
    afc_cache *cache;
    pthread_mutex_t lock;
    uint64_t causes[5];     /* listener events per cause */
    uint64_t bad_values;    /* values that did not match their key */
    uint64_t listener_calls;
} shared_state;

typedef struct {
    shared_state *shared;
    unsigned id;
    unsigned ops;
    uint64_t hits, misses, put_entries, removes, failures, bad_values;
} byte_worker;

/* The value of key `k`: 1..64 bytes, every byte k % 251 + 1. */
static size_t make_value(unsigned k, uint64_t r, uint8_t *buf) {
    size_t len = 1 + (size_t)(r % 64);
    memset(buf, (int)(k % 251 + 1), len);
    return len;
}

static bool value_matches(const uint8_t *key, size_t key_len, const uint8_t *value, size_t len) {
    unsigned k = 0;
    size_t i;
    if (key_len < 2 || key[0] != 'k' || len < 1 || len > 64) return false;
    for (i = 1; i < key_len; i++) k = k * 10 + (unsigned)(key[i] - '0');
    for (i = 0; i < len; i++)
        if (value[i] != (uint8_t)(k % 251 + 1)) return false;
    return true;
}

static size_t make_key(unsigned k, char *buf) {
    return (size_t)sprintf(buf, "k%u", k);
}

static void count_removal(void *user_data, const uint8_t *key, size_t key_len,
                          const uint8_t *value, size_t value_len, afc_removal_cause cause) {
    shared_state *s = user_data;
    bool ok = value_matches(key, key_len, value, value_len);
    uint64_t calls;
    pthread_mutex_lock(&s->lock);
    if ((unsigned)cause < 5) s->causes[cause]++;
    if (!ok) s->bad_values++;
    calls = ++s->listener_calls;
    pthread_mutex_unlock(&s->lock);
    if (calls % 64 == 0 && s->cache) {
        /* Call back into the cache from whichever thread we run on (counts nothing). */
        bool present = false;
        afc_cache_contains(s->cache, key, key_len, &present);
    }
}

static void *byte_hammer(void *arg) {
    byte_worker *w = arg;
    afc_cache *cache = w->shared->cache;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (w->id + 1);
    uint8_t buf[128], value[64];
    char key[24];
    unsigned i;

    for (i = 0; i < w->ops; i++) {
        uint64_t r = next_random(&rng);
        unsigned k = (unsigned)(r >> 20) % BYTE_KEYS;
        unsigned op = (unsigned)(r % 1000);
        size_t key_len = make_key(k, key), len = 0;
        afc_status st;

        if (op < 300) { /* get */
            st = afc_cache_get(cache, (const uint8_t *)key, key_len, buf, sizeof buf, &len);
            if (st == AFC_OK) {
                w->hits++;
                if (!value_matches((const uint8_t *)key, key_len, buf, len)) w->bad_values++;
            } else if (st == AFC_NOT_FOUND) {
                w->misses++;
            } else {
                w->failures++;
            }
        } else if (op < 350) { /* peek (counts nothing) */
            st = afc_cache_peek(cache, (const uint8_t *)key, key_len, buf, sizeof buf, &len);
            if (st == AFC_OK && !value_matches((const uint8_t *)key, key_len, buf, len))
                w->bad_values++;
            if (st != AFC_OK && st != AFC_NOT_FOUND) w->failures++;
        } else if (op < 380) { /* contains */
            bool present;
            if (afc_cache_contains(cache, (const uint8_t *)key, key_len, &present) != AFC_OK)
                w->failures++;
        } else if (op < 600) { /* put, some with a short TTL */
            uint64_t ttl = (r >> 8) % 5 == 0 ? 2000000 : 0;
            size_t vlen = make_value(k, r >> 32, value);
            if (afc_cache_put(cache, (const uint8_t *)key, key_len, value, vlen, ttl) == AFC_OK)
                w->put_entries++;
            else
                w->failures++;
        } else if (op < 650) { /* put_weighted */
            size_t vlen = make_value(k, r >> 32, value);
            if (afc_cache_put_weighted(cache, (const uint8_t *)key, key_len, value, vlen, 0,
                                       (r >> 40) % 300) == AFC_OK)
                w->put_entries++;
            else
                w->failures++;
        } else if (op < 730) { /* remove */
            st = afc_cache_remove(cache, (const uint8_t *)key, key_len);
            if (st == AFC_OK)
                w->removes++;
            else if (st != AFC_NOT_FOUND)
                w->failures++;
        } else if (op < 790) { /* get_many of 8 keys */
            char keys[8 * 8];
            size_t key_lens[8], offsets[8], lens[8], used = 0, needed = 0, j;
            uint8_t out[8 * 64];
            for (j = 0; j < 8; j++) {
                unsigned kj = (unsigned)(next_random(&rng) % BYTE_KEYS);
                key_lens[j] = (size_t)sprintf(keys + used, "k%u", kj);
                used += key_lens[j];
            }
            st = afc_cache_get_many(cache, (const uint8_t *)keys, key_lens, 8, out, sizeof out,
                                    offsets, lens, &needed);
            if (st != AFC_OK) {
                w->failures++;
                continue;
            }
            for (j = used = 0; j < 8; j++) {
                if (offsets[j] == AFC_MISSING) {
                    w->misses++;
                } else {
                    w->hits++;
                    if (!value_matches((const uint8_t *)keys + used, key_lens[j],
                                       out + offsets[j], lens[j]))
                        w->bad_values++;
                }
                used += key_lens[j];
            }
        } else if (op < 830) { /* put_many of 4 entries */
            char keys[4 * 8];
            uint8_t values[4 * 64];
            size_t key_lens[4], value_lens[4], kused = 0, vused = 0, j;
            for (j = 0; j < 4; j++) {
                uint64_t rj = next_random(&rng);
                unsigned kj = (unsigned)(rj % BYTE_KEYS);
                key_lens[j] = (size_t)sprintf(keys + kused, "k%u", kj);
                kused += key_lens[j];
                value_lens[j] = make_value(kj, rj >> 32, values + vused);
                vused += value_lens[j];
            }
            if (afc_cache_put_many(cache, (const uint8_t *)keys, key_lens, values, value_lens, 4,
                                   0) == AFC_OK)
                w->put_entries += 4;
            else
                w->failures++;
        } else if (op < 860) { /* get_or_insert is left out: a waiter's retries count twice */
            uint64_t ttl;
            st = afc_cache_remaining_ttl(cache, (const uint8_t *)key, key_len, &ttl);
            if (st != AFC_OK && st != AFC_NOT_FOUND) w->failures++;
        } else if (op < 900) { /* whole-cache reads */
            size_t n = 0;
            uint64_t weight = 0;
            afc_stats s;
            if (afc_cache_len(cache, &n) != AFC_OK || n > BYTE_MAX_ENTRIES) w->failures++;
            if (afc_cache_weight(cache, &weight) != AFC_OK) w->failures++;
            if (afc_cache_stats(cache, &s) != AFC_OK || s.entries > BYTE_MAX_ENTRIES)
                w->failures++;
        } else if (op < 990) { /* expire */
            size_t n;
            if (afc_cache_expire(cache, &n) != AFC_OK) w->failures++;
        } else if (op < 998) { /* iterate a snapshot */
            afc_iter *iter = NULL;
            const uint8_t *ik, *iv;
            size_t ikl, ivl, n = 0;
            uint64_t ttl;
            if (afc_iter_new(cache, &iter) != AFC_OK) {
                w->failures++;
                continue;
            }
            while (afc_iter_next(iter, &ik, &ikl, &iv, &ivl, &ttl) == AFC_OK) {
                if (!value_matches(ik, ikl, iv, ivl)) w->bad_values++;
                n++;
            }
            if (n > BYTE_MAX_ENTRIES) w->failures++;
            afc_iter_free(iter);
        } else { /* a rare clear */
            if (afc_cache_clear(cache) != AFC_OK) w->failures++;
        }
    }
    return NULL;
}

static void test_byte_cache_hammer(void) {
    shared_state shared;
    afc_config *config = NULL;
    byte_worker workers[THREADS];
    pthread_t threads[THREADS];
    uint64_t hits = 0, misses = 0, puts = 0, removes = 0, weight = 0;
    unsigned ops = thread_ops(), t;
    afc_stats s;
    size_t len;

    memset(&shared, 0, sizeof shared);
    pthread_mutex_init(&shared.lock, NULL);
    CHECK_OK(afc_config_new(BYTE_MAX_ENTRIES, &config));
    CHECK_OK(afc_config_set_max_bytes(config, BYTE_MAX_BYTES));
    CHECK_OK(afc_config_set_listener(config, count_removal, &shared));
    CHECK_OK(afc_cache_new(config, &shared.cache));
    afc_config_free(config);

    for (t = 0; t < THREADS; t++) {
        memset(&workers[t], 0, sizeof workers[t]);
        workers[t].shared = &shared;
        workers[t].id = t;
        workers[t].ops = ops;
        CHECK(pthread_create(&threads[t], NULL, byte_hammer, &workers[t]) == 0);
    }
    for (t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
        CHECK_EQ(workers[t].failures, 0);
        CHECK_EQ(workers[t].bad_values, 0);
        hits += workers[t].hits;
        misses += workers[t].misses;
        puts += workers[t].put_entries;
        removes += workers[t].removes;
    }

    /* Let the short TTLs run out, so that the figures below are stable. */
    afc_test_sleep_ms(5);
    CHECK_OK(afc_cache_expire(shared.cache, NULL));
    s = afc_test_stats(shared.cache);
    len = afc_test_len(shared.cache);
    CHECK_OK(afc_cache_weight(shared.cache, &weight));
    CHECK(len <= BYTE_MAX_ENTRIES);
    CHECK(weight <= BYTE_MAX_BYTES);
    CHECK_EQ(s.entries, len);
    CHECK_EQ(s.weight, weight);
    /* Every get was counted exactly once, as a hit or as a miss. */
    CHECK_EQ(s.hits, hits);
    CHECK_EQ(s.misses, misses);
    /* Every stored entry was an insert or an update. */
    CHECK_EQ(s.inserts + s.updates, puts);
    CHECK_EQ(s.entries, s.inserts - s.evictions - s.expirations - s.removals);
    /* The listener heard every removal. */
    pthread_mutex_lock(&shared.lock);
    CHECK_EQ(shared.causes[AFC_CAUSE_EVICTED], s.evictions);
    CHECK_EQ(shared.causes[AFC_CAUSE_EXPIRED], s.expirations);
    CHECK_EQ(shared.causes[AFC_CAUSE_REMOVED], removes);
    CHECK_EQ(shared.causes[AFC_CAUSE_REMOVED] + shared.causes[AFC_CAUSE_CLEARED], s.removals);
    CHECK_EQ(shared.causes[AFC_CAUSE_REPLACED], s.updates);
    CHECK_EQ(shared.bad_values, 0);
    pthread_mutex_unlock(&shared.lock);
    CHECK(s.hits > 0 && s.misses > 0 && s.evictions > 0 && s.expirations > 0);

    /* After the free, every entry ever inserted has left exactly once. */
    afc_cache_free(shared.cache);
    shared.cache = NULL;
    CHECK_EQ(shared.causes[AFC_CAUSE_EVICTED] + shared.causes[AFC_CAUSE_EXPIRED] +
                 shared.causes[AFC_CAUSE_REMOVED] + shared.causes[AFC_CAUSE_CLEARED],
             s.inserts);
    pthread_mutex_destroy(&shared.lock);
}

/* ----- a handle cache under mixed load ------------------------------------------------------ */

#define HANDLE_MAX_ENTRIES 256
#define HANDLE_MAX_BYTES 4096
#define HANDLE_KEYS 1024

typedef struct {
    pthread_mutex_t lock;
    unsigned char *released; /* per handle */
    unsigned char *stored;   /* per handle: 1 attempted, 2 stored */
    uint64_t capacity, bad, releases;
    afc_cache *cache;
} handle_book;

typedef struct {
    handle_book *book;
    unsigned id, ops;
    uint64_t next; /* the next unused handle of this thread */
    uint64_t failures, unknown;
} handle_worker;

static void release_handle(void *user_data, const uint8_t *key, size_t key_len, uint64_t handle,
                           afc_removal_cause cause) {
    handle_book *b = user_data;
    (void)key, (void)key_len, (void)cause;
    pthread_mutex_lock(&b->lock);
    b->releases++;
    if (handle >= b->capacity || b->stored[handle] == 0 || b->released[handle]++ != 0) b->bad++;
    pthread_mutex_unlock(&b->lock);
}

static void mark(handle_book *b, uint64_t h, unsigned char state) {
    pthread_mutex_lock(&b->lock);
    b->stored[h] = state;
    pthread_mutex_unlock(&b->lock);
}

static bool was_attempted(handle_book *b, uint64_t h) {
    bool ok;
    pthread_mutex_lock(&b->lock);
    ok = h < b->capacity && b->stored[h] != 0;
    pthread_mutex_unlock(&b->lock);
    return ok;
}

static void *handle_hammer(void *arg) {
    handle_worker *w = arg;
    handle_book *b = w->book;
    afc_cache *cache = b->cache;
    uint64_t rng = 0xD1B54A32D192ED03ull * (w->id + 7);
    char key[24];
    unsigned i;

    for (i = 0; i < w->ops; i++) {
        uint64_t r = next_random(&rng), h = 0;
        unsigned k = (unsigned)(r >> 20) % HANDLE_KEYS;
        unsigned op = (unsigned)(r % 1000);
        size_t key_len = (size_t)sprintf(key, "h%u", k);
        afc_status st;

        if (op < 400) { /* put a fresh handle, some with a short TTL */
            uint64_t ttl = (r >> 8) % 4 == 0 ? 1000000 : 0;
            h = w->next++;
            mark(b, h, 1);
            st = afc_cache_put_handle(cache, (const uint8_t *)key, key_len, h, (r >> 32) % 64, ttl);
            if (st == AFC_OK)
                mark(b, h, 2);
            else
                w->failures++;
        } else if (op < 600) {
            st = afc_cache_get_handle(cache, (const uint8_t *)key, key_len, &h);
            if (st == AFC_OK && !was_attempted(b, h)) w->unknown++;
            if (st != AFC_OK && st != AFC_NOT_FOUND) w->failures++;
        } else if (op < 650) {
            st = afc_cache_peek_handle(cache, (const uint8_t *)key, key_len, &h);
            if (st == AFC_OK && !was_attempted(b, h)) w->unknown++;
            if (st != AFC_OK && st != AFC_NOT_FOUND) w->failures++;
        } else if (op < 750) {
            st = afc_cache_remove(cache, (const uint8_t *)key, key_len);
            if (st != AFC_OK && st != AFC_NOT_FOUND) w->failures++;
        } else if (op < 800) { /* get_many_handles of 4 keys */
            char keys[4 * 8];
            size_t key_lens[4], used = 0, j;
            uint64_t handles[4];
            uint8_t found[4];
            for (j = 0; j < 4; j++) {
                key_lens[j] = (size_t)sprintf(keys + used, "h%u",
                                              (unsigned)(next_random(&rng) % HANDLE_KEYS));
                used += key_lens[j];
            }
            if (afc_cache_get_many_handles(cache, (const uint8_t *)keys, key_lens, 4, handles,
                                           found) != AFC_OK)
                w->failures++;
            for (j = 0; j < 4; j++)
                if (found[j] && !was_attempted(b, handles[j])) w->unknown++;
        } else if (op < 850) { /* put_many_handles of 3 fresh handles (keys may repeat) */
            char keys[3 * 8];
            size_t key_lens[3], used = 0, j;
            uint64_t handles[3], weights[3];
            for (j = 0; j < 3; j++) {
                uint64_t rj = next_random(&rng);
                key_lens[j] = (size_t)sprintf(keys + used, "h%u", (unsigned)(rj % HANDLE_KEYS));
                used += key_lens[j];
                handles[j] = w->next++;
                weights[j] = (rj >> 32) % 64;
                mark(b, handles[j], 1);
            }
            if (afc_cache_put_many_handles(cache, (const uint8_t *)keys, key_lens, handles,
                                           weights, 3, 0) == AFC_OK) {
                for (j = 0; j < 3; j++) mark(b, handles[j], 2);
            } else {
                w->failures++;
            }
        } else if (op < 900) {
            bool present;
            uint64_t ttl;
            if (afc_cache_contains(cache, (const uint8_t *)key, key_len, &present) != AFC_OK)
                w->failures++;
            st = afc_cache_remaining_ttl(cache, (const uint8_t *)key, key_len, &ttl);
            if (st != AFC_OK && st != AFC_NOT_FOUND) w->failures++;
        } else if (op < 990) {
            if (afc_cache_expire(cache, NULL) != AFC_OK) w->failures++;
        } else if (op < 998) {
            size_t n = 0;
            if (afc_cache_len(cache, &n) != AFC_OK || n > HANDLE_MAX_ENTRIES) w->failures++;
        } else {
            if (afc_cache_clear(cache) != AFC_OK) w->failures++;
        }
    }
    return NULL;
}

static void test_handle_cache_hammer(void) {
    handle_book book;
    afc_config *config = NULL;
    handle_worker workers[THREADS];
    pthread_t threads[THREADS];
    unsigned ops = thread_ops(), t;
    uint64_t h, stored = 0, released = 0, per_thread = (uint64_t)ops * 3;
    afc_stats s;
    uint64_t weight = 0;

    memset(&book, 0, sizeof book);
    pthread_mutex_init(&book.lock, NULL);
    book.capacity = per_thread * THREADS;
    book.released = calloc(book.capacity, 1);
    book.stored = calloc(book.capacity, 1);
    CHECK(book.released && book.stored);
    if (!book.released || !book.stored) return;
    CHECK_OK(afc_config_new(HANDLE_MAX_ENTRIES, &config));
    CHECK_OK(afc_config_set_max_bytes(config, HANDLE_MAX_BYTES));
    CHECK_OK(afc_config_set_handle_release(config, release_handle, &book));
    CHECK_OK(afc_cache_new(config, &book.cache));
    afc_config_free(config);

    for (t = 0; t < THREADS; t++) {
        memset(&workers[t], 0, sizeof workers[t]);
        workers[t].book = &book;
        workers[t].id = t;
        workers[t].ops = ops;
        workers[t].next = per_thread * t;
        CHECK(pthread_create(&threads[t], NULL, handle_hammer, &workers[t]) == 0);
    }
    for (t = 0; t < THREADS; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
        CHECK_EQ(workers[t].failures, 0);
        CHECK_EQ(workers[t].unknown, 0);
    }
    s = afc_test_stats(book.cache);
    CHECK(s.entries <= HANDLE_MAX_ENTRIES);
    CHECK_OK(afc_cache_weight(book.cache, &weight));
    CHECK(weight <= HANDLE_MAX_BYTES);
    afc_cache_free(book.cache);

    for (h = 0; h < book.capacity; h++) {
        if (book.stored[h] == 2) {
            stored++;
            if (book.released[h] != 1) {
                char detail[96];
                snprintf(detail, sizeof detail, "handle %llu released %d times",
                         (unsigned long long)h, book.released[h]);
                afc_check(false, __FILE__, __LINE__, "exactly-once release", detail);
                break;
            }
        } else if (book.released[h] != 0) {
            afc_check(false, __FILE__, __LINE__, "a handle never stored was released", NULL);
            break;
        }
        released += book.released[h];
    }
    CHECK_EQ(book.bad, 0);
    CHECK_EQ(released, stored);
    CHECK_EQ(book.releases, stored);
    CHECK(stored > (uint64_t)ops); /* the workload did store handles */
    free(book.released);
    free(book.stored);
    pthread_mutex_destroy(&book.lock);
}

/* ----- racing get_or_insert ----------------------------------------------------------------- */

#define RACERS 8

typedef struct {
    pthread_mutex_t lock;
    int calls;
    bool fail_first;
    afc_cache *cache;
    pthread_barrier_t start;
} race;

typedef struct {
    race *race;
    afc_status status;
    char value[32];
} racer;

static int32_t slow_compute(void *user_data, const uint8_t *key, size_t key_len,
                            afc_value_out *out) {
    race *r = user_data;
    int call;
    (void)key, (void)key_len;
    pthread_mutex_lock(&r->lock);
    call = ++r->calls;
    pthread_mutex_unlock(&r->lock);
    afc_test_sleep_ms(50); /* long enough for every racer to arrive and wait */
    if (r->fail_first && call == 1) return 1;
    return afc_value_out_set(out, (const uint8_t *)"computed once", 13) == AFC_OK ? 0 : 1;
}

static void *run_racer(void *arg) {
    racer *me = arg;
    uint8_t buf[32];
    size_t len = 0;
    pthread_barrier_wait(&me->race->start);
    me->status = afc_cache_get_or_insert(me->race->cache, K("contended"), slow_compute, me->race,
                                         buf, sizeof buf, &len);
    if (me->status == AFC_OK) snprintf(me->value, sizeof me->value, "%.*s", (int)len, buf);
    return NULL;
}

static void run_race(bool fail_first) {
    race r;
    racer racers[RACERS];
    pthread_t threads[RACERS];
    int i, ok = 0, failed = 0;

    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.lock, NULL);
    pthread_barrier_init(&r.start, NULL, RACERS);
    r.fail_first = fail_first;
    r.cache = afc_test_cache(100, 0, 0, 0, NO_MANUAL_CLOCK);
    for (i = 0; i < RACERS; i++) {
        memset(&racers[i], 0, sizeof racers[i]);
        racers[i].race = &r;
        CHECK(pthread_create(&threads[i], NULL, run_racer, &racers[i]) == 0);
    }
    for (i = 0; i < RACERS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        if (racers[i].status == AFC_OK) {
            ok++;
            CHECK_BYTES((const uint8_t *)racers[i].value, strlen(racers[i].value),
                        "computed once");
        } else {
            CHECK_ST(racers[i].status, AFC_COMPUTE_FAILED);
            failed++;
        }
    }
    /* One computation; with a failing first one, exactly one more (by a waiter). */
    CHECK_EQ(r.calls, fail_first ? 2 : 1);
    CHECK_EQ(failed, fail_first ? 1 : 0);
    CHECK_EQ(ok, RACERS - failed);
    CHECK_EQ(afc_test_stats(r.cache).inserts, 1);
    afc_cache_free(r.cache);
    pthread_barrier_destroy(&r.start);
    pthread_mutex_destroy(&r.lock);
}

static void test_get_or_insert_race_computes_once(void) {
    run_race(false);
}

static void test_get_or_insert_race_after_failure(void) {
    run_race(true);
}

/* ----- the last error is per thread --------------------------------------------------------- */

typedef struct {
    int own_message_ok;
} error_thread;

static void *fail_on_other_thread(void *arg) {
    error_thread *e = arg;
    size_t len;
    e->own_message_ok = afc_cache_len(NULL, &len) == AFC_NULL_POINTER &&
                        strcmp(afc_last_error(), "cache must not be NULL") == 0;
    return NULL;
}

static void test_last_error_is_per_thread(void) {
    afc_cache *cache = afc_test_cache(16, 0, 0, 1, 0);
    error_thread e = {0};
    pthread_t thread;
    char mine[256];
    CHECK_FAILS(afc_cache_set_max_bytes(cache, 10), AFC_INVALID_ARGUMENT, "max_bytes");
    snprintf(mine, sizeof mine, "%s", afc_last_error());
    CHECK(pthread_create(&thread, NULL, fail_on_other_thread, &e) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(e.own_message_ok);
    CHECK_LAST_ERROR_IS(mine); /* untouched by the other thread's failure */
    afc_cache_free(cache);
}

const afc_test_case afc_thread_tests[] = {
    {"threads/byte_cache_hammer", test_byte_cache_hammer},
    {"threads/handle_cache_hammer", test_handle_cache_hammer},
    {"threads/get_or_insert_race_computes_once", test_get_or_insert_race_computes_once},
    {"threads/get_or_insert_race_after_failure", test_get_or_insert_race_after_failure},
    {"threads/last_error_is_per_thread", test_last_error_is_per_thread},
};
const size_t afc_thread_test_count = sizeof afc_thread_tests / sizeof afc_thread_tests[0];

/*
 * Snapshots through the C ABI: afc_cache_save, afc_cache_load, afc_snapshot_verify. Round trips
 * (order, TTLs, weights, smaller bounds, the listener), the shared test vectors of tests/vectors
 * (the C writer's bytes equal the Rust and Python writers'; the future-*.afcs files of later
 * format versions loaded or refused as the format's Compatibility rules say), and every error
 * with the cache left unchanged, no permission included (checked as user nobody: as root, in a
 * forked child).
 *
 * With AFC_WRITE_VECTORS set in the environment, snapshot/vectors writes tests/vectors/c-*.afcs
 * instead of comparing against them (tests/vectors/generate does this).
 */
#define _GNU_SOURCE /* setgroups, setresuid, setresgid, getresuid, getresgid */

#include "afc_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* memcheck's client requests (no-ops outside valgrind), for a forked child's leak check (see
 * as_nobody); valgrind's headers come with Debian's valgrind package. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define AFC_TEST_MEMCHECK 1
#endif
#endif

#ifndef AFC_VECTORS_DIR
#error "AFC_VECTORS_DIR (the path of tests/vectors) must be defined"
#endif

/* The manual clock's time when a vector is saved (as in the Rust and Python writers). */
#define SAVED_AT 1000000000000ULL

/* ----- helpers ----------------------------------------------------------------------------- */

/* A fresh directory under /tmp, and paths in it. */
typedef struct {
    char dir[64];
    char path[256];
} scratch;

static void scratch_open(scratch *s) {
    strcpy(s->dir, "/tmp/afc-c-snapshot-XXXXXX");
    CHECK(mkdtemp(s->dir) != NULL);
}

static const char *scratch_path(scratch *s, const char *name) {
    snprintf(s->path, sizeof s->path, "%s/%s", s->dir, name);
    return s->path;
}

static void scratch_close(scratch *s, const char *const *names, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) unlink(scratch_path(s, names[i]));
    CHECK(rmdir(s->dir) == 0);
}

/* The whole file at `path` (malloc'ed; NULL if it cannot be read). */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t cap = 0, used = 0, got;
    if (!f) return NULL;
    do {
        if (used == cap) {
            uint8_t *grown;
            cap = cap ? cap * 2 : 4096;
            grown = (uint8_t *)realloc(data, cap);
            if (!grown) break;
            data = grown;
        }
        got = fread(data + used, 1, cap - used, f);
        used += got;
    } while (got > 0);
    fclose(f);
    *len = used;
    return data;
}

static void write_file(const char *path, const uint8_t *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, len, f) == len);
    CHECK(fclose(f) == 0);
}

/* Whether two files have the same bytes. */
static bool same_file(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    uint8_t *da = read_file(a, &la), *db = read_file(b, &lb);
    bool same = da && db && la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return same;
}

static afc_cache *byte_cache(uint64_t max_entries, uint64_t max_bytes, uint64_t now) {
    return afc_test_cache(max_entries, max_bytes, 0, 1, now);
}

/* Appends `len` bytes to the text in buf (cap bytes, used so far in *used), printable ASCII as
 * it is and any other byte as \xNN; the text is cut short (and stays NUL-terminated) when full. */
static void append_escaped(char *buf, size_t cap, size_t *used, const uint8_t *data, size_t len) {
    size_t i;
    for (i = 0; i < len && *used + 5 < cap; i++) {
        if (data[i] >= 0x20 && data[i] < 0x7F && data[i] != '\\') {
            buf[(*used)++] = (char)data[i];
        } else {
            *used += (size_t)snprintf(buf + *used, cap - *used, "\\x%02X", data[i]);
        }
    }
    buf[*used] = '\0';
}

/* The entries of the cache, most recently used first, as "key=value/ttl" joined by ',' (ttl the
 * remaining nanoseconds, or "-" for none) in buf (via afc_iter). */
static const char *entries_of(const afc_cache *cache, char *buf, size_t cap) {
    afc_iter *iter = NULL;
    const uint8_t *key, *value;
    size_t key_len, value_len, used = 0;
    uint64_t ttl;
    afc_status status;
    buf[0] = '\0';
    CHECK_OK(afc_iter_new(cache, &iter));
    while ((status = afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl)) == AFC_OK) {
        char ttl_text[24];
        if (used && used + 1 < cap) buf[used++] = ',';
        append_escaped(buf, cap, &used, key, key_len);
        append_escaped(buf, cap, &used, (const uint8_t *)"=", 1);
        append_escaped(buf, cap, &used, value, value_len);
        if (ttl == UINT64_MAX) {
            snprintf(ttl_text, sizeof ttl_text, "/-");
        } else {
            snprintf(ttl_text, sizeof ttl_text, "/%llu", (unsigned long long)ttl);
        }
        append_escaped(buf, cap, &used, (const uint8_t *)ttl_text, strlen(ttl_text));
    }
    CHECK_ST(status, AFC_NOT_FOUND);
    afc_iter_free(iter);
    return buf;
}

/* Everything a failed load or save must leave as it was: the entries in recency order with
 * their values and remaining TTLs, the weight, and the statistics. */
typedef struct {
    char entries[512];
    afc_stats stats;
    uint64_t weight;
} fingerprint;

static fingerprint take_fingerprint(const afc_cache *cache) {
    fingerprint f;
    memset(&f, 0, sizeof f);
    entries_of(cache, f.entries, sizeof f.entries);
    f.stats = afc_test_stats(cache);
    CHECK_OK(afc_cache_weight(cache, &f.weight));
    return f;
}

static void check_unchanged(const afc_cache *cache, const fingerprint *before, int line) {
    fingerprint now = take_fingerprint(cache);
    afc_check(strcmp(now.entries, before->entries) == 0, __FILE__, line, "entries unchanged",
              now.entries);
    afc_check(memcmp(&now.stats, &before->stats, sizeof now.stats) == 0, __FILE__, line,
              "statistics unchanged", NULL);
    afc_check(now.weight == before->weight, __FILE__, line, "weight unchanged", NULL);
}

/* ----- manifests of tests/vectors ----------------------------------------------------------- */

typedef struct {
    uint8_t *key, *value;
    size_t key_len, value_len;
    uint64_t ttl_ns;   /* 0: none */
    int64_t weight;    /* -1: default */
} manifest_entry;

typedef struct {
    manifest_entry *entries;
    size_t n;
} manifest;

static uint8_t *unhex(const char *text, size_t len, size_t *out_len) {
    uint8_t *out = (uint8_t *)malloc(len / 2 + 1);
    size_t i;
    for (i = 0; i + 1 < len; i += 2) {
        unsigned byte = 0;
        sscanf(text + i, "%2x", &byte);
        out[i / 2] = (uint8_t)byte;
    }
    *out_len = len / 2;
    return out;
}

/* The text after "name=" in `line`, and its length (up to a space or the end of the line). */
static const char *field(const char *line, const char *name, size_t *len) {
    size_t name_len = strlen(name);
    const char *at = line;
    while ((at = strstr(at, name)) != NULL) {
        if ((at == line || at[-1] == ' ') && at[name_len] == '=') {
            const char *value = at + name_len + 1;
            *len = strcspn(value, " \n");
            return value;
        }
        at += name_len;
    }
    *len = 0;
    return NULL;
}

static manifest read_manifest(const char *name) {
    manifest m = {NULL, 0};
    char path[512];
    size_t len = 0, cap = 0;
    char *text, *line, *next;
    snprintf(path, sizeof path, "%s/%s.entries", AFC_VECTORS_DIR, name);
    text = (char *)read_file(path, &len);
    CHECK(text != NULL);
    if (!text) return m;
    text = (char *)realloc(text, len + 1);
    text[len] = '\0';
    for (line = text; line && *line; line = next) {
        manifest_entry e;
        const char *v;
        size_t vlen;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (*line == '#' || *line == '\0') continue;
        memset(&e, 0, sizeof e);
        v = field(line, "key", &vlen);
        e.key = unhex(v, vlen, &e.key_len);
        v = field(line, "value", &vlen);
        e.value = unhex(v, vlen, &e.value_len);
        v = field(line, "ttl_ns", &vlen);
        e.ttl_ns = strncmp(v, "none", 4) == 0 ? 0 : strtoull(v, NULL, 10);
        v = field(line, "weight", &vlen);
        e.weight = strncmp(v, "default", 7) == 0 ? -1 : (int64_t)strtoll(v, NULL, 10);
        if (m.n == cap) {
            cap = cap ? cap * 2 : 16;
            m.entries = (manifest_entry *)realloc(m.entries, cap * sizeof *m.entries);
        }
        m.entries[m.n++] = e;
    }
    free(text);
    return m;
}

static void free_manifest(manifest *m) {
    size_t i;
    for (i = 0; i < m->n; i++) {
        free(m->entries[i].key);
        free(m->entries[i].value);
    }
    free(m->entries);
}

/* ----- tests ------------------------------------------------------------------------------- */

static void test_round_trip(void) {
    scratch s;
    afc_cache *source, *target;
    afc_snapshot_info saved, loaded, verified;
    char keys[128];
    uint64_t ttl = 0, weight = 0;
    scratch_open(&s);
    source = byte_cache(16, 0, 5000);
    CHECK_OK(afc_cache_put(source, K("a"), K("1"), 0));
    CHECK_OK(afc_cache_put(source, K("b"), K("22"), 1000));
    CHECK_OK(afc_cache_put_weighted(source, K("c"), K("333"), 0, 50));
    CHECK_OK(afc_cache_put(source, K("gone"), K("x"), 10));
    CHECK(afc_test_get_str(source, "a", keys, sizeof keys) != NULL); /* a becomes the newest */
    CHECK_OK(afc_cache_clock_advance(source, 10));                   /* gone expires */

    memset(&saved, 0xFF, sizeof saved);
    CHECK_OK(afc_cache_save(source, scratch_path(&s, "snap.afcs"), AFC_ENCODING_BYTES, &saved));
    CHECK_EQ(saved.format_major, 1);
    CHECK_EQ(saved.format_minor, 0);
    CHECK_EQ(saved.value_encoding, AFC_ENCODING_BYTES);
    CHECK_EQ(saved.entries, 3);
    CHECK_EQ(saved.entries_kept, 3);
    CHECK_EQ(saved.file_bytes, 64 + 3 * 9 + 8 + 4 + 3 + 6 + 4); /* header, entries, trailer */
    /* out_info may be NULL. */
    CHECK_OK(afc_cache_save(source, scratch_path(&s, "snap.afcs"), AFC_ENCODING_BYTES, NULL));

    target = byte_cache(16, 0, 1); /* another clock, another time */
    memset(&loaded, 0, sizeof loaded);
    CHECK_OK(afc_cache_load(target, scratch_path(&s, "snap.afcs"), AFC_ENCODING_ANY, &loaded));
    CHECK_EQ(loaded.entries, 3);
    CHECK_EQ(loaded.entries_kept, 3);
    CHECK_EQ(loaded.file_bytes, saved.file_bytes);
    CHECK(strcmp(afc_test_keys(target, keys, sizeof keys), "a,c,b") == 0);
    CHECK_OK(afc_cache_remaining_ttl(target, K("b"), &ttl));
    CHECK_EQ(ttl, 990);
    CHECK_OK(afc_cache_remaining_ttl(target, K("a"), &ttl));
    CHECK_EQ(ttl, UINT64_MAX);
    CHECK_OK(afc_cache_weight(target, &weight));
    CHECK_EQ(weight, 2 + 3 + 50);
    CHECK_EQ(afc_test_stats(target).inserts, 3);
    CHECK_OK(afc_cache_load(target, scratch_path(&s, "snap.afcs"), AFC_ENCODING_BYTES, NULL));

    memset(&verified, 0, sizeof verified);
    CHECK_OK(afc_snapshot_verify(scratch_path(&s, "snap.afcs"), &verified));
    CHECK(memcmp(&verified, &saved, sizeof saved) == 0);
    CHECK_OK(afc_snapshot_verify(scratch_path(&s, "snap.afcs"), NULL));

    afc_cache_free(source);
    afc_cache_free(target);
    {
        const char *names[] = {"snap.afcs"};
        scratch_close(&s, names, 1);
    }
}

/* The manifest's state, built through the C API at SAVED_AT. */
static afc_cache *build_manifest(const manifest *m) {
    afc_cache *cache = byte_cache(m->n ? m->n : 1, 0, SAVED_AT);
    size_t i;
    for (i = 0; i < m->n; i++) {
        const manifest_entry *e = &m->entries[i];
        if (e->weight < 0) {
            CHECK_OK(afc_cache_put(cache, e->key, e->key_len, e->value, e->value_len, e->ttl_ns));
        } else {
            CHECK_OK(afc_cache_put_weighted(cache, e->key, e->key_len, e->value, e->value_len,
                                            e->ttl_ns, (uint64_t)e->weight));
        }
    }
    return cache;
}

static void test_vectors(void) {
    static const char *const names[] = {"empty", "small", "random", "large"};
    static const char *const writers[] = {"rust", "c", "python"};
    bool write_mode = getenv("AFC_WRITE_VECTORS") != NULL;
    scratch s;
    size_t n, w;
    scratch_open(&s);
    for (n = 0; n < sizeof names / sizeof names[0]; n++) {
        manifest m = read_manifest(names[n]);
        afc_cache *cache = build_manifest(&m);
        char expected[512], mine[512];
        snprintf(mine, sizeof mine, "%s/c-%s.afcs", AFC_VECTORS_DIR, names[n]);
        if (write_mode) {
            CHECK_OK(afc_cache_save(cache, mine, AFC_ENCODING_BYTES, NULL));
            printf("  wrote %s\n", mine);
        }
        CHECK_OK(afc_cache_save(cache, scratch_path(&s, "mine.afcs"), AFC_ENCODING_BYTES, NULL));
        /* The C writer's bytes are every writer's bytes. */
        for (w = 0; w < sizeof writers / sizeof writers[0]; w++) {
            char detail[600];
            snprintf(expected, sizeof expected, "%s/%s-%s.afcs", AFC_VECTORS_DIR, writers[w],
                     names[n]);
            snprintf(detail, sizeof detail, "the C writer's %s differs from %s", names[n],
                     expected);
            afc_check(same_file(scratch_path(&s, "mine.afcs"), expected), __FILE__, __LINE__,
                      "same bytes", detail);
        }
        /* Every writer's file loads into the manifest's state: saved again, the same bytes. */
        for (w = 0; w < sizeof writers / sizeof writers[0]; w++) {
            afc_cache *loaded = byte_cache(m.n ? m.n : 1, 0, 42);
            afc_snapshot_info info;
            snprintf(expected, sizeof expected, "%s/%s-%s.afcs", AFC_VECTORS_DIR, writers[w],
                     names[n]);
            CHECK_OK(afc_cache_load(loaded, expected, AFC_ENCODING_BYTES, &info));
            CHECK_EQ(info.entries_kept, m.n);
            CHECK_EQ(afc_test_len(loaded), m.n);
            CHECK_OK(afc_cache_save(loaded, scratch_path(&s, "again.afcs"), 0, NULL));
            CHECK(same_file(scratch_path(&s, "again.afcs"), expected));
            afc_cache_free(loaded);
        }
        afc_cache_free(cache);
        free_manifest(&m);
    }
    {
        const char *files[] = {"mine.afcs", "again.afcs"};
        scratch_close(&s, files, 2);
    }
}

static void test_smaller_bounds_keep_the_newest(void) {
    scratch s;
    afc_cache *source = byte_cache(100, 0, 0), *by_count, *by_bytes;
    afc_snapshot_info info;
    char key[16], keys[128];
    int i;
    scratch_open(&s);
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_OK(afc_cache_put(source, K(key), K("12345678"), 0)); /* weight 10 each */
    }
    CHECK_OK(afc_cache_save(source, scratch_path(&s, "ten.afcs"), 0, NULL));
    by_count = byte_cache(3, 0, 0);
    CHECK_OK(afc_cache_load(by_count, scratch_path(&s, "ten.afcs"), AFC_ENCODING_ANY, &info));
    CHECK_EQ(info.entries, 10);
    CHECK_EQ(info.entries_kept, 3);
    CHECK(strcmp(afc_test_keys(by_count, keys, sizeof keys), "k9,k8,k7") == 0);
    CHECK_EQ(afc_test_stats(by_count).evictions, 0);
    by_bytes = byte_cache(100, 25, 0);
    CHECK_OK(afc_cache_load(by_bytes, scratch_path(&s, "ten.afcs"), AFC_ENCODING_ANY, &info));
    CHECK_EQ(info.entries_kept, 2);
    CHECK(strcmp(afc_test_keys(by_bytes, keys, sizeof keys), "k9,k8") == 0);
    afc_cache_free(source);
    afc_cache_free(by_count);
    afc_cache_free(by_bytes);
    {
        const char *files[] = {"ten.afcs"};
        scratch_close(&s, files, 1);
    }
}

static unsigned cleared_heard;

static void count_cleared(void *user_data, const uint8_t *key, size_t key_len,
                          const uint8_t *value, size_t value_len, afc_removal_cause cause) {
    (void)user_data, (void)key, (void)key_len, (void)value, (void)value_len;
    if (cause == AFC_CAUSE_CLEARED) cleared_heard++;
}

static void test_load_replaces_entries_as_clear_does(void) {
    scratch s;
    afc_config *config = NULL;
    afc_cache *source = byte_cache(8, 0, 0), *target = NULL;
    char keys[64];
    scratch_open(&s);
    CHECK_OK(afc_cache_put(source, K("new"), K("1"), 0));
    CHECK_OK(afc_cache_save(source, scratch_path(&s, "one.afcs"), 0, NULL));
    CHECK_OK(afc_config_new(8, &config));
    CHECK_OK(afc_config_set_listener(config, count_cleared, NULL));
    CHECK_OK(afc_cache_new(config, &target));
    afc_config_free(config);
    CHECK_OK(afc_cache_put(target, K("old1"), K("x"), 0));
    CHECK_OK(afc_cache_put(target, K("old2"), K("y"), 0));
    cleared_heard = 0;
    CHECK_OK(afc_cache_load(target, scratch_path(&s, "one.afcs"), AFC_ENCODING_ANY, NULL));
    CHECK_EQ(cleared_heard, 2);
    CHECK(strcmp(afc_test_keys(target, keys, sizeof keys), "new") == 0);
    afc_cache_free(source);
    afc_cache_free(target);
    {
        const char *files[] = {"one.afcs"};
        scratch_close(&s, files, 1);
    }
}

static void ignore_release(void *user_data, const uint8_t *key, size_t key_len, uint64_t handle,
                           afc_removal_cause cause) {
    (void)user_data, (void)key, (void)key_len, (void)handle, (void)cause;
}

/* A load of `path` that fails with `want` and a message containing `needle`, leaving the cache
 * as it was. */
static void expect_load_fails(afc_cache *cache, const char *path, uint32_t expect,
                              afc_status want, const char *needle, int line) {
    fingerprint before = take_fingerprint(cache);
    afc_snapshot_info info;
    memset(&info, 0xAB, sizeof info);
    afc_test_prime_error();
    afc_check_status(afc_cache_load(cache, path, expect, &info), want, __FILE__, line,
                     "afc_cache_load(bad snapshot)");
    afc_check_last_error(needle, false, __FILE__, line);
    afc_check(info.entries == 0xABABABABABABABABULL, __FILE__, line, "out_info untouched", NULL);
    check_unchanged(cache, &before, line);
}

/* Checks that `cache` holds exactly the manifest's entries in its order (read through afc_iter,
 * most recently used first), each with its value, remaining TTL and weight. */
static void check_holds_manifest(const afc_cache *cache, const manifest *m, int line) {
    afc_iter *iter = NULL;
    const uint8_t *key, *value;
    size_t key_len, value_len, seen = 0;
    uint64_t ttl, weight, total = 0;
    char detail[64];
    CHECK_OK(afc_iter_new(cache, &iter));
    while (afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl) == AFC_OK) {
        const manifest_entry *e;
        uint64_t want_weight;
        if (seen == m->n) {
            seen++;
            break;
        }
        e = &m->entries[m->n - 1 - seen];
        want_weight = e->weight < 0 ? e->key_len + e->value_len : (uint64_t)e->weight;
        snprintf(detail, sizeof detail, "entry %zu of %zu, most recent first", seen + 1, m->n);
        afc_check(key_len == e->key_len && memcmp(key, e->key, key_len) == 0, __FILE__, line,
                  "the manifest's key", detail);
        afc_check(value_len == e->value_len && memcmp(value, e->value, value_len) == 0, __FILE__,
                  line, "the manifest's value", detail);
        afc_check(ttl == (e->ttl_ns ? e->ttl_ns : UINT64_MAX), __FILE__, line,
                  "the manifest's TTL", detail);
        CHECK_OK(afc_iter_weight(iter, &weight));
        afc_check(weight == want_weight, __FILE__, line, "the manifest's weight", detail);
        total += weight;
        seen++;
    }
    afc_iter_free(iter);
    afc_check(seen == m->n, __FILE__, line, "as many entries as the manifest", NULL);
    CHECK_OK(afc_cache_weight(cache, &weight));
    afc_check(weight == total, __FILE__, line, "the cache's weight is its entries'", NULL);
}

/* The files of tests/vectors that later versions of the format could write (README there):
 * format 1.7 with two extension records that are not critical loads into the small state and
 * reports minor 7; a critical record, an unknown required flag and major version 2 are refused
 * as unsupported, for that reason (their checksums are right), the cache left as it was. */
static void test_future_vectors(void) {
    static const struct {
        const char *file, *reason;
    } refused[] = {
        {"future-critical.afcs", "needs header extension 0xffff"},
        {"future-flag.afcs", "header flags 0x80000000"},
        {"future-major.afcs", "format version 2.0 is not supported"},
    };
    manifest m = read_manifest("small");
    char minor[512], small[512], path[512];
    struct stat st;
    afc_snapshot_info info, verified;
    afc_cache *cache;
    scratch s;
    size_t i;
    scratch_open(&s);
    snprintf(minor, sizeof minor, "%s/future-minor.afcs", AFC_VECTORS_DIR);
    snprintf(small, sizeof small, "%s/python-small.afcs", AFC_VECTORS_DIR);
    CHECK(stat(minor, &st) == 0);

    cache = byte_cache(m.n, 0, 42); /* another time than SAVED_AT: the TTLs left are the same */
    CHECK_OK(afc_cache_put(cache, K("replaced"), K("by the load"), 0));
    memset(&info, 0, sizeof info);
    CHECK_OK(afc_cache_load(cache, minor, AFC_ENCODING_BYTES, &info));
    CHECK_EQ(info.format_major, 1);
    CHECK_EQ(info.format_minor, 7);
    CHECK_EQ(info.value_encoding, AFC_ENCODING_BYTES);
    CHECK_EQ(info.entries, m.n);
    CHECK_EQ(info.entries_kept, m.n);
    CHECK_EQ(info.file_bytes, (uint64_t)st.st_size);
    check_holds_manifest(cache, &m, __LINE__);
    /* Saved again: the small state's 1.0 file (the records the reader skipped are gone). */
    CHECK_OK(afc_cache_save(cache, scratch_path(&s, "again.afcs"), AFC_ENCODING_BYTES, NULL));
    CHECK(same_file(scratch_path(&s, "again.afcs"), small));
    memset(&verified, 0, sizeof verified);
    CHECK_OK(afc_snapshot_verify(minor, &verified));
    CHECK(memcmp(&verified, &info, sizeof info) == 0);
    afc_cache_free(cache);

    cache = byte_cache(8, 0, SAVED_AT);
    CHECK_OK(afc_cache_put(cache, K("keep"), K("me"), 50));
    CHECK_OK(afc_cache_put_weighted(cache, K("and"), K("this"), 0, 3));
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", AFC_VECTORS_DIR, refused[i].file);
        expect_load_fails(cache, path, AFC_ENCODING_ANY, AFC_SNAPSHOT_UNSUPPORTED,
                          refused[i].reason, __LINE__);
        CHECK_LAST_ERROR(refused[i].file);
        CHECK_FAILS(afc_snapshot_verify(path, &verified), AFC_SNAPSHOT_UNSUPPORTED,
                    refused[i].reason);
    }
    CHECK_EQ(afc_test_len(cache), 2);
    afc_cache_free(cache);
    free_manifest(&m);
    {
        const char *files[] = {"again.afcs"};
        scratch_close(&s, files, 1);
    }
}

static void test_errors_leave_the_cache_unchanged(void) {
    scratch s;
    afc_cache *cache = byte_cache(8, 0, 0), *source = byte_cache(8, 0, 0), *handles = NULL;
    afc_config *config = NULL;
    uint8_t *good;
    size_t len = 0;
    const char *good_path;
    scratch_open(&s);
    CHECK_OK(afc_cache_put(cache, K("keep"), K("me"), 0));
    CHECK_OK(afc_cache_put(source, K("key"), K("value"), 0));
    CHECK_OK(afc_cache_put(source, K("key2"), K("value2"), 5));
    good_path = "good.afcs";
    CHECK_OK(afc_cache_save(source, scratch_path(&s, good_path), 0, NULL));
    good = read_file(scratch_path(&s, good_path), &len);
    CHECK(good != NULL && len > 64);

    /* Arguments. */
    CHECK_NULL_ARG(afc_cache_save(NULL, "x", 0, NULL), "cache");
    CHECK_NULL_ARG(afc_cache_save(cache, NULL, 0, NULL), "path");
    CHECK_NULL_ARG(afc_cache_load(NULL, "x", AFC_ENCODING_ANY, NULL), "cache");
    CHECK_NULL_ARG(afc_cache_load(cache, NULL, AFC_ENCODING_ANY, NULL), "path");
    CHECK_NULL_ARG(afc_snapshot_verify(NULL, NULL), "path");
    CHECK_INVALID(afc_cache_save(cache, scratch_path(&s, "x.afcs"), 256, NULL));
    expect_load_fails(cache, scratch_path(&s, good_path), 300, AFC_INVALID_ARGUMENT,
                      "expect_encoding 300", __LINE__);

    /* A handle cache cannot be saved or loaded. */
    CHECK_OK(afc_config_new(8, &config));
    CHECK_OK(afc_config_set_handle_release(config, ignore_release, NULL));
    CHECK_OK(afc_cache_new(config, &handles));
    afc_config_free(config);
    CHECK_FAILS(afc_cache_save(handles, scratch_path(&s, "h.afcs"), 0, NULL),
                AFC_WRONG_VALUE_KIND, "a handle cache cannot be saved");
    CHECK_FAILS(afc_cache_load(handles, scratch_path(&s, good_path), AFC_ENCODING_ANY, NULL),
                AFC_WRONG_VALUE_KIND, "a handle cache cannot be loaded");
    afc_cache_free(handles);

    /* The file system. */
    expect_load_fails(cache, scratch_path(&s, "missing.afcs"), AFC_ENCODING_ANY, AFC_IO_ERROR,
                      "No such file or directory", __LINE__);
    CHECK_LAST_ERROR("missing.afcs");
    expect_load_fails(cache, s.dir, AFC_ENCODING_ANY, AFC_IO_ERROR, "directory", __LINE__);
    CHECK_FAILS(afc_snapshot_verify(scratch_path(&s, "missing.afcs"), NULL), AFC_IO_ERROR,
                "cannot open");
    CHECK_FAILS(afc_cache_save(cache, s.dir, 0, NULL), AFC_IO_ERROR, "directory");
    CHECK_FAILS(afc_cache_save(cache, "/nonexistent-dir-afc/x.afcs", 0, NULL), AFC_IO_ERROR,
                "cannot create the temporary file");

    /* Bad content. */
    write_file(scratch_path(&s, "bad.afcs"), good, 0);
    expect_load_fails(cache, s.path, AFC_ENCODING_ANY, AFC_SNAPSHOT_INVALID, "the file is empty",
                      __LINE__);
    write_file(scratch_path(&s, "bad.afcs"), (const uint8_t *)"GIF89a and some more bytes", 26);
    expect_load_fails(cache, s.path, AFC_ENCODING_ANY, AFC_SNAPSHOT_INVALID,
                      "not an alphaforge-cache snapshot", __LINE__);
    write_file(scratch_path(&s, "bad.afcs"), good, len - 1);
    expect_load_fails(cache, s.path, AFC_ENCODING_ANY, AFC_SNAPSHOT_INVALID, "truncated",
                      __LINE__);
    CHECK_FAILS(afc_snapshot_verify(s.path, NULL), AFC_SNAPSHOT_INVALID, "truncated");
    good[70] ^= 0x10; /* a bit of the first entry's key length */
    write_file(scratch_path(&s, "bad.afcs"), good, len);
    expect_load_fails(cache, s.path, AFC_ENCODING_ANY, AFC_SNAPSHOT_INVALID, "corrupt",
                      __LINE__);
    good[70] ^= 0x10;
    good[len - 10] ^= 0x01; /* a bit of the last value */
    write_file(scratch_path(&s, "bad.afcs"), good, len);
    expect_load_fails(cache, s.path, AFC_ENCODING_ANY, AFC_SNAPSHOT_INVALID, "checksum mismatch",
                      __LINE__);
    good[len - 10] ^= 0x01;
    good[8] = 2; /* major version 2: refused before any checksum is looked at */
    write_file(scratch_path(&s, "bad.afcs"), good, len);
    expect_load_fails(cache, s.path, AFC_ENCODING_ANY, AFC_SNAPSHOT_UNSUPPORTED,
                      "format version 2.0 is not supported", __LINE__);
    good[8] = 1;

    /* The value encoding. */
    CHECK_OK(afc_cache_save(source, scratch_path(&s, "pickled.afcs"), AFC_ENCODING_PICKLE, NULL));
    expect_load_fails(cache, s.path, AFC_ENCODING_BYTES, AFC_SNAPSHOT_MISMATCH,
                      "encoded as pickle, not bytes", __LINE__);
    CHECK_OK(afc_cache_load(cache, s.path, AFC_ENCODING_PICKLE, NULL));
    CHECK_EQ(afc_test_len(cache), 2);

    free(good);
    afc_cache_free(cache);
    afc_cache_free(source);
    {
        const char *files[] = {"good.afcs", "bad.afcs", "pickled.afcs"};
        scratch_close(&s, files, 3);
    }
}

/* A FIFO or a device is not a snapshot: load and verify refuse it at once. Before they did,
 * the open of a FIFO without a writer blocked for ever; so that such a regression fails this
 * test instead of hanging the suite, a helper thread opens the FIFO's writing end (which wakes
 * a blocked open) every 50 ms once 2 s have passed. */
typedef struct {
    const char *fifo;
    pthread_mutex_t lock;
    bool done;
} fifo_unblocker;

static void *unblock_fifo_readers(void *arg) {
    fifo_unblocker *u = arg;
    const struct timespec tick = {0, 50 * 1000 * 1000};
    unsigned ticks = 0;
    for (;;) {
        bool done;
        pthread_mutex_lock(&u->lock);
        done = u->done;
        pthread_mutex_unlock(&u->lock);
        if (done) return NULL;
        if (++ticks > 40) {
            int fd = open(u->fifo, O_WRONLY | O_NONBLOCK); /* ENXIO when nobody waits */
            if (fd >= 0) close(fd);
        }
        nanosleep(&tick, NULL);
    }
}

static void test_fifo_and_device_are_refused(void) {
    scratch s;
    afc_cache *cache = byte_cache(8, 0, 0);
    fifo_unblocker u;
    pthread_t helper;
    const char *fifo;
    scratch_open(&s);
    fifo = scratch_path(&s, "fifo.afcs");
    CHECK(mkfifo(fifo, 0600) == 0);
    u.fifo = fifo;
    u.done = false;
    CHECK(pthread_mutex_init(&u.lock, NULL) == 0);
    CHECK(pthread_create(&helper, NULL, unblock_fifo_readers, &u) == 0);
    CHECK_OK(afc_cache_put(cache, K("keep"), K("me"), 0));
    expect_load_fails(cache, fifo, AFC_ENCODING_ANY, AFC_IO_ERROR, "not a regular file",
                      __LINE__);
    CHECK_FAILS(afc_snapshot_verify(fifo, NULL), AFC_IO_ERROR, "not a regular file");
    expect_load_fails(cache, "/dev/null", AFC_ENCODING_ANY, AFC_IO_ERROR, "not a regular file",
                      __LINE__);
    CHECK_FAILS(afc_snapshot_verify("/dev/zero", NULL), AFC_IO_ERROR, "not a regular file");
    pthread_mutex_lock(&u.lock);
    u.done = true;
    pthread_mutex_unlock(&u.lock);
    CHECK(pthread_join(helper, NULL) == 0);
    pthread_mutex_destroy(&u.lock);
    afc_cache_free(cache);
    {
        const char *files[] = {"fifo.afcs"};
        scratch_close(&s, files, 1);
    }
}

/* ----- no permission ------------------------------------------------------------------------ */

/* User and group nobody. */
#define NOBODY 65534

/* Drops this process to user and group nobody with no supplementary groups, for good (real,
 * effective and saved ids); whether it did, each failed step checked and named. */
static bool drop_to_nobody(void) {
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    char detail[128];
    bool ok;
#define DROP_STEP(call)                                                              \
    do {                                                                             \
        ok = (call) == 0;                                                            \
        snprintf(detail, sizeof detail, "%s", ok ? "" : strerror(errno));            \
        afc_check(ok, __FILE__, __LINE__, #call, ok ? NULL : detail);                \
        if (!ok) return false;                                                       \
    } while (0)
    /* Groups first: without root, they could not be dropped any more. */
    DROP_STEP(setgroups(0, NULL));
    DROP_STEP(setresgid(NOBODY, NOBODY, NOBODY));
    DROP_STEP(setresuid(NOBODY, NOBODY, NOBODY));
#undef DROP_STEP
    ok = getresuid(&ruid, &euid, &suid) == 0 && ruid == NOBODY && euid == NOBODY &&
         suid == NOBODY && getresgid(&rgid, &egid, &sgid) == 0 && rgid == NOBODY &&
         egid == NOBODY && sgid == NOBODY && getgroups(0, NULL) == 0;
    CHECK(ok && "the ids are nobody's, with no groups");
    /* And root cannot be had back. */
    ok = ok && setresuid(0, 0, 0) != 0 && geteuid() == NOBODY;
    CHECK(ok && "root cannot be regained");
    return ok;
}

/* Under valgrind, the bytes memcheck finds definitely or indirectly lost now (0 elsewhere);
 * with `report`, the loss records that grew since the last search are printed. */
static unsigned long memcheck_lost_bytes(bool report) {
#ifdef AFC_TEST_MEMCHECK
    unsigned long lost = 0, dubious = 0, reachable = 0, suppressed = 0;
    if (!RUNNING_ON_VALGRIND) return 0;
    if (report) {
        VALGRIND_DO_ADDED_LEAK_CHECK;
    } else {
        VALGRIND_DO_QUICK_LEAK_CHECK;
    }
    VALGRIND_COUNT_LEAKS(lost, dubious, reachable, suppressed);
    (void)dubious, (void)reachable, (void)suppressed;
    return lost;
#else
    (void)report;
    return 0;
#endif
}

/* Runs checks(arg) as an unprivileged user: here when this process is not root; as root (who
 * reads and writes anything) in a forked child that drops to user nobody first. The child's
 * failed checks print as anywhere else; it exits with status 0 only if it dropped root and
 * none of them failed (a child that could not drop root fails, never passes), and that status
 * is checked here. The child ends with _exit (no exit handlers, no LeakSanitizer pass).
 *
 * Valgrind follows the child, and memcheck's errors there make its status non-zero too. But its
 * leak search at the child's exit would count as lost the blocks that only the parent's other
 * threads point to (the engine's background thread, which the child does not have). So the
 * child searches for leaks before and after its checks instead, fails if the lost bytes grew
 * (what it leaked itself), and turns the search at its exit off. */
static void as_nobody(void (*checks)(const void *), const void *arg) {
    pid_t pid, waited;
    int status = 0;
    char detail[128];
    if (geteuid() != 0) {
        checks(arg);
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    CHECK(pid >= 0);
    if (pid < 0) return;
    if (pid == 0) {
        unsigned long failed_before = afc_test_failed_checks();
        unsigned long lost_before = memcheck_lost_bytes(false);
        if (drop_to_nobody()) checks(arg);
        CHECK(memcheck_lost_bytes(true) == lost_before && "the child leaked nothing");
#ifdef AFC_TEST_MEMCHECK
        VALGRIND_CLO_CHANGE("--leak-check=no");
#endif
        fflush(stdout);
        fflush(stderr);
        _exit(afc_test_failed_checks() == failed_before ? 0 : 1);
    }
    do {
        waited = waitpid(pid, &status, 0);
    } while (waited < 0 && errno == EINTR);
    CHECK(waited == pid);
    if (WIFEXITED(status)) {
        snprintf(detail, sizeof detail, "exited with status %d (its failed checks are above)",
                 WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(detail, sizeof detail, "killed by signal %d", WTERMSIG(status));
    } else {
        snprintf(detail, sizeof detail, "wait status %d", status);
    }
    afc_check(waited == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, __FILE__,
              __LINE__, "the unprivileged child passed", detail);
}

/* The names in `dir` (but "." and ".."), joined by ',' in buf, in the directory's order. */
static const char *dir_names(const char *dir, char *buf, size_t cap) {
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t used = 0;
    buf[0] = '\0';
    CHECK(d != NULL);
    if (!d) return buf;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (used + len + 2 > cap) break;
        if (used) buf[used++] = ',';
        memcpy(buf + used, e->d_name, len + 1);
        used += len;
    }
    closedir(d);
    return buf;
}

/* What the unprivileged checks are given: a snapshot file of mode 000, and a directory of mode
 * 0555 holding the previous snapshot `previous` (whose bytes are `previous_bytes`). */
typedef struct {
    char locked[256], readonly[256], previous[256], fresh[256];
    uint8_t *previous_bytes;
    size_t previous_len;
} no_permission_setup;

static void no_permission_checks(const void *arg) {
    const no_permission_setup *p = (const no_permission_setup *)arg;
    afc_cache *cache = byte_cache(8, 0, 0);
    const char *const targets[] = {p->previous, p->fresh};
    fingerprint before;
    char names[256], value[16];
    size_t i;
    CHECK_OK(afc_cache_put(cache, K("a"), K("1"), 0));
    CHECK_OK(afc_cache_put(cache, K("b"), K("22"), 1000));
    CHECK_OK(afc_cache_put_weighted(cache, K("c"), K("333"), 0, 50));
    CHECK(afc_test_get_str(cache, "a", value, sizeof value) != NULL); /* recency: a, c, b */
    CHECK(afc_test_get_str(cache, "nothing", value, sizeof value) == NULL);
    before = take_fingerprint(cache);
    CHECK(strcmp(before.entries, "a=1/-,c=333/-,b=22/1000") == 0);

    /* A file nobody may read: refused, the cache unchanged. */
    expect_load_fails(cache, p->locked, AFC_ENCODING_ANY, AFC_IO_ERROR, "Permission denied",
                      __LINE__);
    CHECK_LAST_ERROR(p->locked);
    CHECK_FAILS(afc_snapshot_verify(p->locked, NULL), AFC_IO_ERROR, "Permission denied");

    /* A directory nobody may write in: over the previous snapshot, or under a new name. */
    for (i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        afc_snapshot_info info;
        size_t len = 0;
        uint8_t *now;
        memset(&info, 0xAB, sizeof info);
        afc_test_prime_error();
        CHECK_ST(afc_cache_save(cache, targets[i], AFC_ENCODING_BYTES, &info), AFC_IO_ERROR);
        CHECK_LAST_ERROR("Permission denied");
        CHECK_LAST_ERROR(targets[i]);
        CHECK(info.entries == 0xABABABABABABABABULL && "out_info untouched");
        check_unchanged(cache, &before, __LINE__);
        now = read_file(p->previous, &len);
        CHECK(now != NULL && len == p->previous_len &&
              memcmp(now, p->previous_bytes, len) == 0 && "the previous snapshot is intact");
        free(now);
        /* Nothing created: no new file, no temporary file left. */
        afc_check(strcmp(dir_names(p->readonly, names, sizeof names), "previous.afcs") == 0,
                  __FILE__, __LINE__, "only the previous snapshot in the directory", names);
    }
    CHECK(access(p->fresh, F_OK) != 0 && errno == ENOENT);
    afc_cache_free(cache);
}

static void test_no_permission_is_refused_with_the_cache_unchanged(void) {
    scratch s;
    no_permission_setup p;
    afc_cache *source = byte_cache(8, 0, 0);
    scratch_open(&s);
    /* Nobody may enter a directory of mkdtemp's mode 0700. */
    CHECK(chmod(s.dir, 0755) == 0);
    memset(&p, 0, sizeof p);
    snprintf(p.locked, sizeof p.locked, "%s/locked.afcs", s.dir);
    snprintf(p.readonly, sizeof p.readonly, "%s/readonly", s.dir);
    snprintf(p.previous, sizeof p.previous, "%s/readonly/previous.afcs", s.dir);
    snprintf(p.fresh, sizeof p.fresh, "%s/readonly/new.afcs", s.dir);
    CHECK_OK(afc_cache_put(source, K("saved"), K("before"), 0));
    CHECK_OK(afc_cache_save(source, p.locked, AFC_ENCODING_BYTES, NULL));
    CHECK(chmod(p.locked, 0000) == 0);
    CHECK(mkdir(p.readonly, 0755) == 0);
    CHECK_OK(afc_cache_save(source, p.previous, AFC_ENCODING_BYTES, NULL));
    p.previous_bytes = read_file(p.previous, &p.previous_len);
    CHECK(p.previous_bytes != NULL && p.previous_len > 64);
    CHECK(chmod(p.readonly, 0555) == 0);
    /* Freed before the fork: under valgrind, a block the parent still held then could count
     * as lost in the child's leak search (see as_nobody). */
    afc_cache_free(source);

    as_nobody(no_permission_checks, &p);

    CHECK(chmod(p.readonly, 0755) == 0);
    CHECK(unlink(p.previous) == 0);
    CHECK(unlink(p.fresh) != 0); /* never created */
    CHECK(rmdir(p.readonly) == 0);
    free(p.previous_bytes);
    {
        const char *files[] = {"locked.afcs"};
        scratch_close(&s, files, 1);
    }
}

static void test_status_names(void) {
    CHECK(strcmp(afc_status_name(AFC_IO_ERROR), "AFC_IO_ERROR") == 0);
    CHECK(strcmp(afc_status_name(AFC_SNAPSHOT_INVALID), "AFC_SNAPSHOT_INVALID") == 0);
    CHECK(strcmp(afc_status_name(AFC_SNAPSHOT_UNSUPPORTED), "AFC_SNAPSHOT_UNSUPPORTED") == 0);
    CHECK(strcmp(afc_status_name(AFC_SNAPSHOT_MISMATCH), "AFC_SNAPSHOT_MISMATCH") == 0);
    CHECK_EQ(AFC_IO_ERROR, 11);
    CHECK_EQ(AFC_SNAPSHOT_MISMATCH, 14);
    CHECK_EQ(AFC_ENCODING_ANY, UINT32_MAX);
}

const afc_test_case afc_snapshot_tests[] = {
    {"snapshot/round_trip", test_round_trip},
    {"snapshot/vectors", test_vectors},
    {"snapshot/future_vectors", test_future_vectors},
    {"snapshot/smaller_bounds_keep_the_newest", test_smaller_bounds_keep_the_newest},
    {"snapshot/load_replaces_entries_as_clear_does", test_load_replaces_entries_as_clear_does},
    {"snapshot/errors_leave_the_cache_unchanged", test_errors_leave_the_cache_unchanged},
    {"snapshot/fifo_and_device_are_refused", test_fifo_and_device_are_refused},
    {"snapshot/no_permission_is_refused_with_the_cache_unchanged",
     test_no_permission_is_refused_with_the_cache_unchanged},
    {"snapshot/status_names", test_status_names},
};
const size_t afc_snapshot_test_count = sizeof afc_snapshot_tests / sizeof afc_snapshot_tests[0];

/*
 * The shared cases (the JSON files of tests/cases/, format in tests/cases/README.md) replayed through the C
 * ABI. Usage: cases FILE.json...   Prints one line per failing check and ends with
 * "N passed, N failed" (one test per case); exits non-zero if any case failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "alphaforge_cache.h"
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ----- the recording listener --------------------------------------------------------------- */

typedef struct {
    char *key, *value;
    size_t key_len, value_len;
    afc_removal_cause cause;
} event;

typedef struct {
    event *items;
    size_t len, cap;
} recorder;

static char *copy_bytes(const uint8_t *p, size_t n) {
    char *out = malloc(n + 1);
    if (!out) abort();
    if (n) memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static void record(void *user_data, const uint8_t *key, size_t key_len, const uint8_t *value,
                   size_t value_len, afc_removal_cause cause) {
    recorder *r = user_data;
    event *e;
    if (r->len == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->items = realloc(r->items, r->cap * sizeof *r->items);
        if (!r->items) abort();
    }
    e = &r->items[r->len++];
    e->key = copy_bytes(key, key_len);
    e->key_len = key_len;
    e->value = copy_bytes(value, value_len);
    e->value_len = value_len;
    e->cause = cause;
}

static void recorder_reset(recorder *r) {
    size_t i;
    for (i = 0; i < r->len; i++) {
        free(r->items[i].key);
        free(r->items[i].value);
    }
    r->len = 0;
}

static const char *cause_name(afc_removal_cause cause) {
    switch (cause) {
        case AFC_CAUSE_EVICTED: return "evicted";
        case AFC_CAUSE_EXPIRED: return "expired";
        case AFC_CAUSE_REMOVED: return "removed";
        case AFC_CAUSE_REPLACED: return "replaced";
        case AFC_CAUSE_CLEARED: return "cleared";
    }
    return "?";
}

/* ----- checks ------------------------------------------------------------------------------- */

typedef struct {
    const char *file, *name;
    int step;
    int failures;
} context;

static void fail(context *cx, const char *fmt, ...) {
    va_list args;
    fprintf(stderr, "FAIL %s: %s: op %d: ", cx->file, cx->name, cx->step);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
    cx->failures++;
}

static const json_value *field(const json_value *op, const char *name) {
    const json_value *v = json_get(op, name);
    if (!v) {
        fprintf(stderr, "malformed case: no \"%s\"\n", name);
        exit(2);
    }
    return v;
}

static uint64_t integer(const json_value *v) {
    if (v->type != JSON_NUMBER || !v->is_integer) {
        fprintf(stderr, "malformed case: a non-negative integer expected\n");
        exit(2);
    }
    return v->integer;
}

static bool bytes_equal(const json_value *want, const uint8_t *got, size_t got_len) {
    return want->type == JSON_STRING && want->len == got_len &&
           (got_len == 0 || memcmp(want->str, got, got_len) == 0);
}

static afc_status error_status(const char *name) {
    if (strcmp(name, "invalid_config") == 0) return AFC_INVALID_CONFIG;
    if (strcmp(name, "invalid_argument") == 0) return AFC_INVALID_ARGUMENT;
    if (strcmp(name, "entry_too_heavy") == 0) return AFC_ENTRY_TOO_HEAVY;
    if (strcmp(name, "io_error") == 0) return AFC_IO_ERROR;
    if (strcmp(name, "snapshot_invalid") == 0) return AFC_SNAPSHOT_INVALID;
    fprintf(stderr, "malformed case: unknown error name %s\n", name);
    exit(2);
}

/* Checks `status` against the op's "error" (or AFC_OK without one). */
static void check_status(context *cx, const json_value *op, afc_status status) {
    const json_value *error = json_get(op, "error");
    afc_status want = error ? error_status(error->str) : AFC_OK;
    if (status != want)
        fail(cx, "status %s, expected %s (%s)", afc_status_name(status), afc_status_name(want),
             afc_last_error());
}

#define KEY(v) (const uint8_t *)(v)->str, (v)->len

/* ----- snapshot files: one temporary directory per case ------------------------------------- */

static char case_dir[64];

/* The path of the op's "file" in the case's directory (a static buffer). */
static const char *case_file(const json_value *op) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", case_dir, field(op, "file")->str);
    return path;
}

/* Removes every file the case's ops name, then the directory. */
static void remove_case_files(const json_value *ops) {
    size_t i;
    for (i = 0; ops && i < ops->len; i++)
        if (json_get(&ops->items[i], "file")) unlink(case_file(&ops->items[i]));
    rmdir(case_dir);
}

/* ----- one operation ------------------------------------------------------------------------ */

/* Concatenates the strings of `list` (or the element `index` of each pair of it, if >= 0). */
static uint8_t *concat(const json_value *list, int index, size_t *lens) {
    size_t total = 1, i, at = 0;
    uint8_t *out;
    for (i = 0; i < list->len; i++)
        total += (index < 0 ? &list->items[i] : &list->items[i].items[index])->len;
    out = malloc(total);
    if (!out) abort();
    for (i = 0; i < list->len; i++) {
        const json_value *s = index < 0 ? &list->items[i] : &list->items[i].items[index];
        memcpy(out + at, s->str, s->len);
        lens[i] = s->len;
        at += s->len;
    }
    return out;
}

static int compare_events(const void *a, const void *b) {
    const event *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

static int compare_expected(const void *a, const void *b) {
    const json_value *x = a, *y = b;
    int c = strcmp(x->items[0].str, y->items[0].str);
    return c ? c : strcmp(x->items[1].str, y->items[1].str);
}

static void check_events(context *cx, const json_value *op, recorder *rec) {
    const json_value *expect = field(op, "expect"), *unordered = json_get(op, "unordered");
    json_value *want = NULL;
    size_t i;
    if (expect->len != rec->len) {
        fail(cx, "%zu events, expected %zu", rec->len, expect->len);
        for (i = 0; i < rec->len; i++)
            fprintf(stderr, "  heard [%s, %s, %s]\n", rec->items[i].key, rec->items[i].value,
                    cause_name(rec->items[i].cause));
        recorder_reset(rec);
        return;
    }
    want = malloc((expect->len + 1) * sizeof *want);
    if (!want) abort();
    if (expect->len) memcpy(want, expect->items, expect->len * sizeof *want);
    if (unordered && unordered->boolean) {
        qsort(rec->items, rec->len, sizeof *rec->items, compare_events);
        qsort(want, expect->len, sizeof *want, compare_expected);
    }
    for (i = 0; i < rec->len; i++) {
        const event *e = &rec->items[i];
        if (!bytes_equal(&want[i].items[0], (const uint8_t *)e->key, e->key_len) ||
            !bytes_equal(&want[i].items[1], (const uint8_t *)e->value, e->value_len) ||
            strcmp(want[i].items[2].str, cause_name(e->cause)) != 0)
            fail(cx, "event %zu is [%s, %s, %s], expected [%s, %s, %s]", i, e->key, e->value,
                 cause_name(e->cause), want[i].items[0].str, want[i].items[1].str,
                 want[i].items[2].str);
    }
    free(want);
    recorder_reset(rec);
}

static void check_stats(context *cx, const json_value *expect, const afc_stats *s) {
    size_t i;
    for (i = 0; i < expect->len; i++) {
        const char *name = expect->keys[i];
        const json_value *want = &expect->items[i];
        uint64_t got;
        if (strcmp(name, "hit_ratio") == 0) {
            uint64_t lookups = s->hits + s->misses;
            double ratio = lookups ? (double)s->hits / (double)lookups : 0.0;
            if (fabs(ratio - want->number) > 1e-12)
                fail(cx, "hit_ratio %.17g, expected %.17g", ratio, want->number);
            continue;
        }
        if (strcmp(name, "hits") == 0) got = s->hits;
        else if (strcmp(name, "misses") == 0) got = s->misses;
        else if (strcmp(name, "inserts") == 0) got = s->inserts;
        else if (strcmp(name, "updates") == 0) got = s->updates;
        else if (strcmp(name, "evictions") == 0) got = s->evictions;
        else if (strcmp(name, "expirations") == 0) got = s->expirations;
        else if (strcmp(name, "removals") == 0) got = s->removals;
        else if (strcmp(name, "entries") == 0) got = s->entries;
        else if (strcmp(name, "weight") == 0) got = s->weight;
        else {
            fprintf(stderr, "malformed case: unknown statistic %s\n", name);
            exit(2);
        }
        if (got != integer(want))
            fail(cx, "%s = %llu, expected %llu", name, (unsigned long long)got,
                 (unsigned long long)integer(want));
    }
}

static void replay(context *cx, afc_cache **cache_slot, recorder *rec, const json_value *op) {
    const afc_cache *cache = *cache_slot;
    const char *name = field(op, "op")->str;
    const json_value *expect = json_get(op, "expect");
    uint8_t buf[4096];
    size_t len = 0;

    if (strcmp(name, "put") == 0) {
        const json_value *key = field(op, "key"), *value = field(op, "value"),
                         *ttl = json_get(op, "ttl_ns");
        check_status(cx, op, afc_cache_put(cache, KEY(key), KEY(value), ttl ? integer(ttl) : 0));
    } else if (strcmp(name, "get") == 0 || strcmp(name, "peek") == 0) {
        const json_value *key = field(op, "key");
        afc_status st = name[0] == 'g' ? afc_cache_get(cache, KEY(key), buf, sizeof buf, &len)
                                       : afc_cache_peek(cache, KEY(key), buf, sizeof buf, &len);
        if (expect->type == JSON_NULL) {
            if (st != AFC_NOT_FOUND) fail(cx, "%s: %s, expected a miss", name, afc_status_name(st));
        } else if (st != AFC_OK || !bytes_equal(expect, buf, len)) {
            fail(cx, "%s: %s (%zu bytes), expected \"%s\"", name, afc_status_name(st), len,
                 expect->str);
        }
    } else if (strcmp(name, "contains") == 0) {
        bool found = false;
        check_status(cx, op, afc_cache_contains(cache, KEY(field(op, "key")), &found));
        if (found != expect->boolean) fail(cx, "contains: %d", found);
    } else if (strcmp(name, "remove") == 0) {
        afc_status st = afc_cache_remove(cache, KEY(field(op, "key")));
        if (st != (expect->boolean ? AFC_OK : AFC_NOT_FOUND))
            fail(cx, "remove: %s", afc_status_name(st));
    } else if (strcmp(name, "len") == 0) {
        check_status(cx, op, afc_cache_len(cache, &len));
        if (len != integer(expect)) fail(cx, "len %zu", len);
    } else if (strcmp(name, "weight") == 0) {
        uint64_t weight = 0;
        check_status(cx, op, afc_cache_weight(cache, &weight));
        if (weight != integer(expect)) fail(cx, "weight %llu", (unsigned long long)weight);
    } else if (strcmp(name, "keys") == 0) {
        afc_iter *iter = NULL;
        const uint8_t *k, *v;
        size_t kl, vl, i = 0;
        uint64_t ttl;
        check_status(cx, op, afc_iter_new(cache, &iter));
        while (afc_iter_next(iter, &k, &kl, &v, &vl, &ttl) == AFC_OK) {
            if (i >= expect->len || !bytes_equal(&expect->items[i], k, kl))
                fail(cx, "keys: key %zu differs or is one too many", i);
            i++;
        }
        if (i != expect->len) fail(cx, "keys: %zu keys, expected %zu", i, expect->len);
        afc_iter_free(iter);
    } else if (strcmp(name, "ttl") == 0) {
        uint64_t left = 0;
        afc_status st = afc_cache_remaining_ttl(cache, KEY(field(op, "key")), &left);
        if (expect->type == JSON_NULL) {
            if (st != AFC_NOT_FOUND) fail(cx, "ttl: %s, expected no entry", afc_status_name(st));
        } else if (expect->type == JSON_STRING) { /* "never" */
            if (st != AFC_OK || left != UINT64_MAX) fail(cx, "ttl: %s, expected never", afc_status_name(st));
        } else if (st != AFC_OK || left != integer(expect)) {
            fail(cx, "ttl: %s %llu", afc_status_name(st), (unsigned long long)left);
        }
    } else if (strcmp(name, "advance") == 0) {
        check_status(cx, op, afc_cache_clock_advance(cache, integer(field(op, "ns"))));
    } else if (strcmp(name, "set_clock") == 0) {
        check_status(cx, op, afc_cache_clock_set(cache, integer(field(op, "ns"))));
    } else if (strcmp(name, "stats") == 0) {
        afc_stats s;
        check_status(cx, op, afc_cache_stats(cache, &s));
        check_stats(cx, expect, &s);
    } else if (strcmp(name, "reset_stats") == 0) {
        check_status(cx, op, afc_cache_reset_stats(cache));
    } else if (strcmp(name, "get_many") == 0) {
        const json_value *keys = field(op, "keys");
        size_t n = keys->len, i, needed = 0;
        size_t *lens = malloc((n + 1) * sizeof *lens), *offsets = malloc((n + 1) * sizeof *offsets),
               *value_lens = malloc((n + 1) * sizeof *value_lens);
        uint8_t *flat;
        if (!lens || !offsets || !value_lens) abort();
        flat = concat(keys, -1, lens);
        check_status(cx, op, afc_cache_get_many(cache, n ? flat : NULL, n ? lens : NULL, n, buf,
                                                sizeof buf, offsets, value_lens, &needed));
        for (i = 0; i < n; i++) {
            const json_value *want = &expect->items[i];
            if (want->type == JSON_NULL ? offsets[i] != AFC_MISSING
                                        : offsets[i] == AFC_MISSING ||
                                              !bytes_equal(want, buf + offsets[i], value_lens[i]))
                fail(cx, "get_many: key %zu", i);
        }
        free(flat);
        free(lens);
        free(offsets);
        free(value_lens);
    } else if (strcmp(name, "put_many") == 0) {
        const json_value *items = field(op, "items"), *ttl = json_get(op, "ttl_ns");
        size_t n = items->len;
        size_t *key_lens = malloc((n + 1) * sizeof *key_lens),
               *value_lens = malloc((n + 1) * sizeof *value_lens);
        uint8_t *keys, *values;
        if (!key_lens || !value_lens) abort();
        keys = concat(items, 0, key_lens);
        values = concat(items, 1, value_lens);
        check_status(cx, op, afc_cache_put_many(cache, keys, key_lens, values, value_lens, n,
                                                ttl ? integer(ttl) : 0));
        free(keys);
        free(values);
        free(key_lens);
        free(value_lens);
    } else if (strcmp(name, "expire") == 0) {
        check_status(cx, op, afc_cache_expire(cache, &len));
        if (len != integer(expect)) fail(cx, "expire: %zu", len);
    } else if (strcmp(name, "clear") == 0) {
        check_status(cx, op, afc_cache_clear(cache));
    } else if (strcmp(name, "resize") == 0) {
        check_status(cx, op, afc_cache_resize(cache, integer(field(op, "max_entries"))));
    } else if (strcmp(name, "events") == 0) {
        check_events(cx, op, rec);
    } else if (strcmp(name, "close") == 0) {
        afc_cache_free(*cache_slot);
        *cache_slot = NULL;
    } else if (strcmp(name, "save") == 0) {
        check_status(cx, op, afc_cache_save(cache, case_file(op), AFC_ENCODING_BYTES, NULL));
    } else if (strcmp(name, "load") == 0) {
        check_status(cx, op, afc_cache_load(cache, case_file(op), AFC_ENCODING_BYTES, NULL));
    } else if (strcmp(name, "write_file") == 0) {
        const json_value *content = field(op, "content");
        FILE *f = fopen(case_file(op), "wb");
        if (!f || fwrite(content->str, 1, content->len, f) != content->len || fclose(f) != 0)
            fail(cx, "write_file %s failed", case_file(op));
    } else if (strcmp(name, "truncate") == 0) {
        if (truncate(case_file(op), (off_t)integer(field(op, "bytes"))) != 0)
            fail(cx, "truncate %s failed", case_file(op));
    } else {
        fprintf(stderr, "malformed case: unknown operation %s\n", name);
        exit(2);
    }
}

/* ----- one case ----------------------------------------------------------------------------- */

static bool run_case(const char *file, const json_value *c) {
    context cx = {file, field(c, "name")->str, -1, 0};
    const json_value *config = field(c, "cache"), *v, *create_error = json_get(c, "create_error");
    recorder rec = {NULL, 0, 0};
    afc_config *cfg = NULL;
    afc_cache *cache = NULL;
    afc_status st;
    size_t i;

    if (afc_config_new(integer(field(config, "max_entries")), &cfg) != AFC_OK) abort();
    if ((v = json_get(config, "max_bytes")) && afc_config_set_max_bytes(cfg, integer(v)) != AFC_OK)
        abort();
    if ((v = json_get(config, "ttl_ns")) && afc_config_set_default_ttl_ns(cfg, integer(v)) != AFC_OK)
        abort();
    if ((v = json_get(config, "shards")) &&
        afc_config_set_shards(cfg, (uint32_t)integer(v)) != AFC_OK)
        abort();
    if (afc_config_use_manual_clock(cfg, 0) != AFC_OK ||
        afc_config_set_listener(cfg, record, &rec) != AFC_OK)
        abort();
    st = afc_cache_new(cfg, &cache);
    afc_config_free(cfg);
    if (create_error) {
        if (st != error_status(create_error->str) || cache != NULL)
            fail(&cx, "construction gave %s, expected %s", afc_status_name(st), create_error->str);
    } else if (st != AFC_OK) {
        fail(&cx, "construction failed: %s (%s)", afc_status_name(st), afc_last_error());
    } else {
        const json_value *ops = field(c, "ops");
        snprintf(case_dir, sizeof case_dir, "/tmp/afc-cases-XXXXXX");
        if (mkdtemp(case_dir) == NULL) abort();
        for (i = 0; i < ops->len; i++) {
            cx.step = (int)i;
            if (cache == NULL && strcmp(field(&ops->items[i], "op")->str, "events") != 0) {
                fail(&cx, "an operation after close");
                break;
            }
            replay(&cx, &cache, &rec, &ops->items[i]);
        }
        afc_cache_free(cache);
        remove_case_files(ops);
    }
    recorder_reset(&rec);
    free(rec.items);
    return cx.failures == 0;
}

int main(int argc, char **argv) {
    int file, passed = 0, failed = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.json...\n", argv[0]);
        return 2;
    }
    for (file = 1; file < argc; file++) {
        json_value *root = json_parse_file(argv[file]);
        const json_value *cases = json_get(root, "cases");
        const char *base = strrchr(argv[file], '/');
        size_t i;
        if (!cases || cases->type != JSON_ARRAY) {
            fprintf(stderr, "%s: no \"cases\" list\n", argv[file]);
            json_free(root);
            return 2;
        }
        for (i = 0; i < cases->len; i++) {
            if (run_case(base ? base + 1 : argv[file], &cases->items[i]))
                passed++;
            else
                failed++;
        }
        json_free(root);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}

/*
 * The C test suite's runner: the assertion harness, shared helpers, and main().
 *
 * Usage: afc_tests [SUBSTRING]   runs the tests whose name contains SUBSTRING (all by default).
 * Prints "ok"/"FAIL" per test, a diagnostic per failed assertion, and ends with exactly one line
 * "N passed, N failed"; exits non-zero if any test failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "afc_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t harness_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long checks_run;
static unsigned long checks_failed;

void afc_check(bool ok, const char *file, int line, const char *expr, const char *detail) {
    pthread_mutex_lock(&harness_lock);
    checks_run++;
    if (!ok) {
        checks_failed++;
        fprintf(stderr, "  %s:%d: check failed: %s%s%s\n", file, line, expr,
                detail ? ": " : "", detail ? detail : "");
    }
    pthread_mutex_unlock(&harness_lock);
}

unsigned long afc_test_failed_checks(void) {
    unsigned long failed;
    pthread_mutex_lock(&harness_lock);
    failed = checks_failed;
    pthread_mutex_unlock(&harness_lock);
    return failed;
}

void afc_check_status(afc_status got, afc_status want, const char *file, int line,
                      const char *expr) {
    char detail[512];
    if (got == want) {
        afc_check(true, file, line, expr, NULL);
        return;
    }
    snprintf(detail, sizeof detail, "got %s (%d), want %s (%d); last error: \"%s\"",
             afc_status_name(got), (int)got, afc_status_name(want), (int)want, afc_last_error());
    afc_check(false, file, line, expr, detail);
}

void afc_check_u64(uint64_t got, uint64_t want, const char *file, int line, const char *expr) {
    char detail[128];
    if (got == want) {
        afc_check(true, file, line, expr, NULL);
        return;
    }
    snprintf(detail, sizeof detail, "got %llu, want %llu", (unsigned long long)got,
             (unsigned long long)want);
    afc_check(false, file, line, expr, detail);
}

void afc_check_bytes(const uint8_t *got, size_t got_len, const char *want, const char *file,
                     int line, const char *expr) {
    char detail[512];
    size_t want_len = strlen(want);
    bool ok = got_len == want_len && (want_len == 0 || (got && memcmp(got, want, want_len) == 0));
    if (ok) {
        afc_check(true, file, line, expr, NULL);
        return;
    }
    snprintf(detail, sizeof detail, "got \"%.*s\" (%zu bytes), want \"%s\"",
             got ? (int)(got_len > 200 ? 200 : got_len) : 0, got ? (const char *)got : "",
             got_len, want);
    afc_check(false, file, line, expr, detail);
}

void afc_check_last_error(const char *needle, bool exact, const char *file, int line) {
    char detail[512];
    const char *message = afc_last_error();
    bool ok = message != NULL && message[0] != '\0';
    /* A message left by afc_test_prime_error() was not set by the call under test. */
    if (ok && !exact) ok = strcmp(message, AFC_TEST_PRIMED_ERROR) != 0;
    if (ok && needle) ok = exact ? strcmp(message, needle) == 0 : strstr(message, needle) != NULL;
    snprintf(detail, sizeof detail, "afc_last_error() is \"%s\", want it to %s \"%s\"",
             message ? message : "(NULL)", exact ? "be" : "contain", needle ? needle : "");
    afc_check(ok, file, line, "afc_last_error()", ok ? NULL : detail);
}

/* ----- helpers ----------------------------------------------------------------------------- */

void afc_test_prime_error(void) {
    afc_status status = afc_config_set_handle_release(NULL, NULL, NULL);
    if (status != AFC_NULL_POINTER || strcmp(afc_last_error(), AFC_TEST_PRIMED_ERROR) != 0) {
        afc_check(false, __FILE__, __LINE__, "afc_test_prime_error()",
                  "afc_config_set_handle_release(NULL, NULL, NULL) did not set its message");
    }
}

afc_cache *afc_test_cache(uint64_t max_entries, uint64_t max_bytes, uint64_t default_ttl_ns,
                          uint32_t shards, uint64_t manual_start) {
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    CHECK_OK(afc_config_new(max_entries, &config));
    if (max_bytes) CHECK_OK(afc_config_set_max_bytes(config, max_bytes));
    if (default_ttl_ns) CHECK_OK(afc_config_set_default_ttl_ns(config, default_ttl_ns));
    if (shards) CHECK_OK(afc_config_set_shards(config, shards));
    if (manual_start != NO_MANUAL_CLOCK) CHECK_OK(afc_config_use_manual_clock(config, manual_start));
    CHECK_OK(afc_cache_new(config, &cache));
    afc_config_free(config);
    CHECK(cache != NULL);
    return cache;
}

const char *afc_test_get_str(const afc_cache *cache, const char *key, char *buf, size_t cap) {
    size_t len = 0;
    afc_status status = afc_cache_get(cache, K(key), (uint8_t *)buf, cap - 1, &len);
    if (status == AFC_NOT_FOUND) return NULL;
    CHECK_OK(status);
    if (status != AFC_OK) return NULL;
    buf[len] = '\0';
    return buf;
}

const char *afc_test_keys(const afc_cache *cache, char *buf, size_t cap) {
    afc_iter *iter = NULL;
    const uint8_t *key, *value;
    size_t key_len, value_len, used = 0;
    uint64_t ttl;
    afc_status status;
    buf[0] = '\0';
    CHECK_OK(afc_iter_new(cache, &iter));
    while ((status = afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl)) == AFC_OK) {
        if (used + key_len + 2 > cap) break;
        if (used) buf[used++] = ',';
        memcpy(buf + used, key, key_len);
        used += key_len;
        buf[used] = '\0';
    }
    CHECK_ST(status, AFC_NOT_FOUND);
    afc_iter_free(iter);
    return buf;
}

size_t afc_test_len(const afc_cache *cache) {
    size_t len = (size_t)-1;
    CHECK_OK(afc_cache_len(cache, &len));
    return len;
}

afc_stats afc_test_stats(const afc_cache *cache) {
    afc_stats stats;
    memset(&stats, 0xFF, sizeof stats);
    CHECK_OK(afc_cache_stats(cache, &stats));
    return stats;
}

void afc_test_sleep_ms(unsigned ms) {
    struct timespec t;
    t.tv_sec = ms / 1000;
    t.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&t, &t) != 0) {
    }
}

/* ----- runner ------------------------------------------------------------------------------ */

static void on_timeout(int sig) {
    static const char message[] =
        "\nwatchdog: the suite took too long (a deadlock?); aborting\n";
    (void)sig;
    if (write(STDERR_FILENO, message, sizeof message - 1) < 0) {
        /* nothing more to do */
    }
    abort();
}

typedef struct {
    const afc_test_case *tests;
    const size_t *count;
} test_table;

int main(int argc, char **argv) {
    const test_table tables[] = {
        {afc_error_tests, &afc_error_test_count},
        {afc_cache_tests, &afc_cache_test_count},
        {afc_handle_tests, &afc_handle_test_count},
        {afc_thread_tests, &afc_thread_test_count},
        {afc_snapshot_tests, &afc_snapshot_test_count},
    };
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *timeout_env = getenv("AFC_TEST_TIMEOUT");
    unsigned timeout = timeout_env ? (unsigned)strtoul(timeout_env, NULL, 10) : 900;
    unsigned long passed = 0, failed = 0;
    size_t t, i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_timeout);
    alarm(timeout);
    printf("alphaforge-cache C ABI tests: library %s (ABI %u), header %d.%d.%d (ABI %d)\n",
           afc_version(), afc_abi_version(), AFC_VERSION_MAJOR, AFC_VERSION_MINOR,
           AFC_VERSION_PATCH, AFC_ABI_VERSION);
    for (t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (i = 0; i < *tables[t].count; i++) {
            const afc_test_case *test = &tables[t].tests[i];
            unsigned long before;
            if (filter && !strstr(test->name, filter)) continue;
            pthread_mutex_lock(&harness_lock);
            before = checks_failed;
            pthread_mutex_unlock(&harness_lock);
            fflush(stdout);
            test->run();
            fflush(stderr);
            pthread_mutex_lock(&harness_lock);
            if (checks_failed == before) {
                passed++;
                printf("ok   %s\n", test->name);
            } else {
                failed++;
                printf("FAIL %s (%lu failed checks)\n", test->name, checks_failed - before);
            }
            pthread_mutex_unlock(&harness_lock);
        }
    }
    alarm(0);
    printf("(%lu checks, %lu failed)\n", checks_run, checks_failed);
    printf("%lu passed, %lu failed\n", passed, failed);
    return failed == 0 && passed > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

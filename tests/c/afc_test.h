/*
 * The tiny assertion harness of the C test suite, and helpers shared by its files.
 *
 * A test is a `void f(void)` listed in one of the tables below. Each CHECK records one assertion;
 * a test passes when none of its assertions failed. main() (test_main.c) runs every table and
 * ends with the single summary line "N passed, N failed". Assertions may run on any thread.
 */
#ifndef AFC_TEST_H
#define AFC_TEST_H

#include "alphaforge_cache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    void (*run)(void);
} afc_test_case;

/* The test tables, one per file. */
extern const afc_test_case afc_error_tests[];
extern const size_t afc_error_test_count;
extern const afc_test_case afc_cache_tests[];
extern const size_t afc_cache_test_count;
extern const afc_test_case afc_handle_tests[];
extern const size_t afc_handle_test_count;
extern const afc_test_case afc_thread_tests[];
extern const size_t afc_thread_test_count;
extern const afc_test_case afc_snapshot_tests[];
extern const size_t afc_snapshot_test_count;

/* ----- assertions -------------------------------------------------------------------------- */

/* Records one assertion; prints `detail` (may be NULL) when it failed. Thread-safe. */
void afc_check(bool ok, const char *file, int line, const char *expr, const char *detail);

/* An assertion on a status code: `got` must be `want`. */
void afc_check_status(afc_status got, afc_status want, const char *file, int line,
                      const char *expr);

/* An assertion on two unsigned integers. */
void afc_check_u64(uint64_t got, uint64_t want, const char *file, int line, const char *expr);

/* An assertion that the bytes at `got` (got_len) equal the NUL-terminated string `want`. */
void afc_check_bytes(const uint8_t *got, size_t got_len, const char *want, const char *file,
                     int line, const char *expr);

/* An assertion that afc_last_error() is not empty and contains `needle` (unless NULL), or is
 * exactly `needle` when `exact`. */
void afc_check_last_error(const char *needle, bool exact, const char *file, int line);

/* The number of failed assertions so far in this process (in a forked child: the parent's
 * count at the fork plus the child's own; a child reports its failures through its exit
 * status, as the parent's count never sees them). */
unsigned long afc_test_failed_checks(void);

#define CHECK(cond) afc_check((cond) ? true : false, __FILE__, __LINE__, #cond, NULL)
#define CHECK_ST(expr, want) afc_check_status((expr), (want), __FILE__, __LINE__, #expr)
#define CHECK_OK(expr) CHECK_ST(expr, AFC_OK)
#define CHECK_EQ(got, want) \
    afc_check_u64((uint64_t)(got), (uint64_t)(want), __FILE__, __LINE__, #got " == " #want)
#define CHECK_BYTES(ptr, len, str) afc_check_bytes((ptr), (len), (str), __FILE__, __LINE__, #ptr)
#define CHECK_LAST_ERROR(needle) afc_check_last_error((needle), false, __FILE__, __LINE__)
#define CHECK_LAST_ERROR_IS(message) afc_check_last_error((message), true, __FILE__, __LINE__)
/* Sets the thread's last error to AFC_TEST_PRIMED_ERROR, so that a check can tell whether the
 * next call set a message of its own. */
void afc_test_prime_error(void);
#define AFC_TEST_PRIMED_ERROR "release must not be NULL"

/* A NULL-pointer failure whose message names the argument `arg`. */
#define CHECK_NULL_ARG(expr, arg)                     \
    do {                                              \
        afc_test_prime_error();                       \
        CHECK_ST(expr, AFC_NULL_POINTER);             \
        CHECK_LAST_ERROR_IS(arg " must not be NULL"); \
    } while (0)
/* A failure with status `want` that sets a message of its own (containing `needle` unless NULL). */
#define CHECK_FAILS(expr, want, needle) \
    do {                                \
        afc_test_prime_error();         \
        CHECK_ST(expr, want);           \
        CHECK_LAST_ERROR(needle);       \
    } while (0)
#define CHECK_INVALID(expr) CHECK_FAILS(expr, AFC_INVALID_ARGUMENT, NULL)

/* ----- helpers ----------------------------------------------------------------------------- */

/* A string literal or C string as a (pointer, length) key. */
#define K(s) (const uint8_t *)(s), strlen(s)

/* A cache from the given settings; 0 leaves max_bytes / default TTL unset, shards 0 keeps the
 * default count, manual_start UINT64_MAX keeps the monotonic clock. Checks that it was built. */
afc_cache *afc_test_cache(uint64_t max_entries, uint64_t max_bytes, uint64_t default_ttl_ns,
                          uint32_t shards, uint64_t manual_start);

#define NO_MANUAL_CLOCK UINT64_MAX

/* The value of `key` as a NUL-terminated string in `buf` (cap bytes), or NULL on a miss. */
const char *afc_test_get_str(const afc_cache *cache, const char *key, char *buf, size_t cap);

/* The keys of the cache, most recently used first, joined by ',' into buf (via afc_iter). */
const char *afc_test_keys(const afc_cache *cache, char *buf, size_t cap);

/* The live entry count (afc_cache_len), checked to succeed. */
size_t afc_test_len(const afc_cache *cache);

/* The statistics, checked to succeed. */
afc_stats afc_test_stats(const afc_cache *cache);

/* Sleeps for `ms` milliseconds. */
void afc_test_sleep_ms(unsigned ms);

#endif /* AFC_TEST_H */

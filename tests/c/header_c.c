/*
 * Header self-containment (C): this file includes nothing but alphaforge_cache.h, and is built
 * with -std=c99 -Wall -Wextra -Werror -pedantic. Everything it uses must come from the header.
 */
#include "alphaforge_cache.h"
#include "alphaforge_cache.h" /* a second inclusion is harmless (include guard) */

/* Every type the header names is complete or declared. */
static afc_stats stats_storage;
static afc_status status_storage = AFC_OK;
static afc_removal_cause cause_storage = AFC_CAUSE_CLEARED;
static afc_compute_fn compute_storage;
static afc_listener_fn listener_storage;
static afc_handle_release_fn release_storage;
static const size_t missing = AFC_MISSING;

int main(void) {
    afc_config *config = NULL;
    afc_cache *cache = NULL;
    const char *version = afc_version();
    int failures = 0;
    (void)stats_storage, (void)cause_storage, (void)compute_storage, (void)listener_storage;
    (void)release_storage;
    /* afc_version() is "MAJOR.MINOR.PATCH": compare its first character with the macro. */
    if (version == NULL || version[0] != (char)('0' + AFC_VERSION_MAJOR)) failures++;
    if (afc_abi_version() != AFC_ABI_VERSION) failures++;
    if (missing != SIZE_MAX) failures++;
    status_storage = afc_config_new(4, &config);
    if (status_storage != AFC_OK) failures++;
    if (afc_cache_new(config, &cache) != AFC_OK) failures++;
    afc_config_free(config);
    if (afc_cache_put(cache, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, 0) != AFC_OK)
        failures++;
    afc_cache_free(cache);
    return failures == 0 ? 0 : 1;
}

// Header self-containment (C++): alphaforge_cache.h comes first, and the file is built with
// g++ -std=c++17 -Wall -Wextra -Werror -pedantic. Linking proves the declarations have C linkage.
#include "alphaforge_cache.h"

#include <cstdio>
#include <cstring>
#include <string>

int main() {
    const std::string expected = std::to_string(AFC_VERSION_MAJOR) + "." +
                                 std::to_string(AFC_VERSION_MINOR) + "." +
                                 std::to_string(AFC_VERSION_PATCH);
    const char *version = afc_version();
    if (version == nullptr || expected != version) {
        std::fprintf(stderr, "afc_version() is %s, the header says %s\n",
                     version ? version : "(null)", expected.c_str());
        return 1;
    }
    if (afc_abi_version() != AFC_ABI_VERSION) {
        std::fprintf(stderr, "ABI %u, header %d\n", afc_abi_version(), AFC_ABI_VERSION);
        return 1;
    }
    afc_config *config = nullptr;
    afc_cache *cache = nullptr;
    if (afc_config_new(8, &config) != AFC_OK || afc_cache_new(config, &cache) != AFC_OK) return 1;
    afc_config_free(config);
    const std::string key = "key", value = "value";
    auto bytes = [](const std::string &s) { return reinterpret_cast<const uint8_t *>(s.data()); };
    if (afc_cache_put(cache, bytes(key), key.size(), bytes(value), value.size(), 0) != AFC_OK)
        return 1;
    uint8_t buf[16];
    size_t len = 0;
    afc_status status = afc_cache_get(cache, bytes(key), key.size(), buf, sizeof buf, &len);
    afc_cache_free(cache);
    if (status != AFC_OK || len != value.size() || std::memcmp(buf, value.data(), len) != 0) {
        std::fprintf(stderr, "get: %s\n", afc_status_name(status));
        return 1;
    }
    std::printf("C++ header test: afc_version() = %s (ABI %u)\n", version, afc_abi_version());
    return 0;
}

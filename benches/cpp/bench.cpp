// Per-call cost of a get hit through the C++ wrapper next to the C ABI, in one process on one
// cache, on the workload of benches/c/bench.c (100,000 entries, default shards, 16-byte keys,
// 64-byte values, the same SplitMix64 key sets): rounds of the C call and of the wrapper
// alternate, so both see the same machine state; each reports the median and best ns per get.
//
//   c          afc_cache_get(cache, key, 16, buf, 64, &len)           (the C figure)
//   cpp        cache.get(key, out) into a reused std::string           (the wrapper's hot path)
//   cpp_alloc  cache.get(key) -> std::optional<std::string>            (allocates a string)
//
// Usage: bench [gets_per_round [c|cpp]]   (default 1,000,000; c or cpp runs that series alone, for
// callgrind). Not a test: it checks only that the gets hit.
#include <alphaforge_cache.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr std::uint64_t kCapacity = 100000;
constexpr std::size_t kKeyLen = 16, kValueLen = 64;
constexpr int kRounds = 15;

using Key = std::array<std::uint8_t, kKeyLen>;

// The key sets of benches/rust/src/lib.rs and benches/c/bench.c.
std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

Key make_key(std::uint64_t i) {
    Key k{};
    const std::uint64_t scrambled = mix(i ^ 0x5DEECE66D1CE4E5Bull);
    for (std::size_t b = 0; b < 8; b++) {
        k[b] = static_cast<std::uint8_t>(scrambled >> (8 * b));
        k[8 + b] = static_cast<std::uint8_t>(i >> (8 * b));
    }
    return k;
}

std::vector<Key> shuffled_keys(std::uint64_t start, std::uint64_t end, std::uint64_t seed) {
    std::vector<std::uint64_t> ids;
    for (std::uint64_t i = start; i < end; i++) ids.push_back(i);
    std::uint64_t state = seed;
    for (std::size_t i = ids.size() - 1; i >= 1; i--) {
        state += 0x9E3779B97F4A7C15ull;
        const auto j = static_cast<std::size_t>(mix(state) % (i + 1));
        std::swap(ids[i], ids[j]);
    }
    std::vector<Key> keys;
    for (std::uint64_t id : ids) keys.push_back(make_key(id));
    return keys;
}

std::string_view view(const Key &k) { return {reinterpret_cast<const char *>(k.data()), k.size()}; }

double now_ns() {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

struct Series {
    const char *name;
    std::vector<double> per_get;
    double median() {
        std::sort(per_get.begin(), per_get.end());
        return per_get[per_get.size() / 2];
    }
};

/// What the rounds read: the cache, its resident keys, where the next round resumes.
struct Workload {
    const afc_cache *raw;
    afc::Cache *cache;
    const std::vector<Key> *keys;
    std::size_t cursor, checksum, gets;

    const Key &next() {
        const Key &k = (*keys)[cursor];
        if (++cursor == keys->size()) cursor = 0;
        return k;
    }
};

// Each round is a function of its own (not inlined) so that callgrind can count it alone.
__attribute__((noinline)) double c_round(Workload &w) {
    std::uint8_t buf[kValueLen];
    std::size_t len = 0;
    const double start = now_ns();
    for (std::size_t i = 0; i < w.gets; i++) {
        const Key &k = w.next();
        if (afc_cache_get(w.raw, k.data(), kKeyLen, buf, sizeof buf, &len) == AFC_OK) w.checksum += len;
    }
    return (now_ns() - start) / static_cast<double>(w.gets);
}

__attribute__((noinline)) double cpp_round(Workload &w) {
    static std::string out;
    const double start = now_ns();
    for (std::size_t i = 0; i < w.gets; i++)
        if (w.cache->get(view(w.next()), out)) w.checksum += out.size();
    return (now_ns() - start) / static_cast<double>(w.gets);
}

__attribute__((noinline)) double alloc_round(Workload &w) {
    const double start = now_ns();
    for (std::size_t i = 0; i < w.gets; i++)
        if (auto v = w.cache->get(view(w.next()))) w.checksum += v->size();
    return (now_ns() - start) / static_cast<double>(w.gets);
}

} // namespace

int main(int argc, char **argv) {
    const std::size_t gets = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
    afc::Cache cache = afc::Cache::builder(kCapacity).build();
    const std::string value(kValueLen, '\xA5');
    for (const Key &k : shuffled_keys(0, kCapacity, 1)) cache.put(view(k), value);
    std::vector<Key> resident;
    for (const Key &k : shuffled_keys(0, kCapacity, 1))
        if (cache.contains(view(k))) resident.push_back(k);
    std::printf("alphaforge-cache %s, C++ wrapper vs C ABI: %zu of %llu keys resident, %zu-byte keys, "
                "%zu-byte values, %zu gets per round\n",
                afc_version(), resident.size(), static_cast<unsigned long long>(kCapacity), kKeyLen,
                kValueLen, gets);

    const afc_cache *raw = cache.native_handle();
    Workload w{raw, &cache, &resident, 0, 0, gets};
    const std::string mode = argc > 2 ? argv[2] : "both";
    if (mode == "c" || mode == "cpp") {
        // One series alone, for an instruction count: valgrind --tool=callgrind
        // --toggle-collect='*c_round*' (or cpp_round) bench N c|cpp
        for (int r = 0; r < 3; r++) (mode == "c" ? c_round : cpp_round)(w);
        std::printf("(checksum %zu)\n", w.checksum);
        return 0;
    }
    Series c{"c", {}}, cpp{"cpp", {}}, alloc{"cpp_alloc", {}};
    std::vector<double> ratios;
    c_round(w); // warm-up
    cpp_round(w);
    for (int r = 0; r < kRounds; r++) {
        c.per_get.push_back(c_round(w));
        cpp.per_get.push_back(cpp_round(w));
        ratios.push_back(cpp.per_get.back() / c.per_get.back());
        alloc.per_get.push_back(alloc_round(w));
    }
    const double c_median = c.median();
    for (Series *s : {&c, &cpp, &alloc}) {
        const double median = s->median();
        std::printf("get_hit %-10s %6.1f ns/get  (median of %d rounds; best %.1f)  %+.1f%% vs c\n",
                    s->name, median, kRounds, s->per_get.front(),
                    100.0 * (median - c_median) / c_median);
    }
    std::sort(ratios.begin(), ratios.end());
    std::printf("cpp / c, round by round: median %.3f (min %.3f, max %.3f)\n",
                ratios[ratios.size() / 2], ratios.front(), ratios.back());
    std::printf("(checksum %zu)\n", w.checksum);
    const afc::Stats s = cache.stats();
    return s.misses == 0 ? 0 : 1;
}

// Several std::threads on one afc::Cache (built with ThreadSanitizer and with AddressSanitizer by
// CMakeLists.txt): bounds, exact counters after the threads stop, the listener's counts, values
// never torn, get_or_insert computing once per key, and listener exceptions reaching the thread
// whose call caused them. AFC_TEST_THREAD_OPS sets the operations per thread (20000 by default).
#include "alphaforge_cache.hpp"
#include "harness.hpp"

#include <array>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 4;

int ops_per_thread() {
    const char *env = std::getenv("AFC_TEST_THREAD_OPS");
    return env ? std::atoi(env) : 20000;
}

/// A small xorshift generator, one per thread.
struct Rng {
    std::uint64_t state;
    std::uint64_t next() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    }
};

std::string key_of(std::uint64_t n) { return "key:" + std::to_string(n); }

/// The value stored under key n: it names its key, so a torn or misplaced value is caught.
std::string value_of(std::uint64_t n, int thread, std::uint64_t i) {
    return "value-of-" + std::to_string(n) + "/" + std::to_string(thread) + "/" +
           std::to_string(i) + std::string(static_cast<std::size_t>(i % 40), '.');
}

bool value_matches(const std::string &value, std::uint64_t n) {
    const std::string prefix = "value-of-" + std::to_string(n) + "/";
    return value.compare(0, prefix.size(), prefix) == 0;
}

} // namespace

TEST("threads: hammering one cache keeps bounds, exact counters and listener counts") {
    std::array<std::atomic<std::uint64_t>, 5> heard{};
    std::atomic<std::uint64_t> reentrant{0};
    afc::Cache *self = nullptr;
    afc::Cache cache = afc::Cache::builder(512).max_bytes(24000).listener(
        [&](std::string_view key, std::string_view, afc::Cause cause) {
            heard[static_cast<std::size_t>(cause)]++;
            // Calls back (no deadlock); not while closing, when the cache is already gone.
            if (cause != afc::Cause::cleared && key.size() % 2 == 0 && !self->contains(key))
                reentrant++;
        }).build();
    self = &cache;
    const int ops = ops_per_thread();
    std::atomic<std::uint64_t> gets{0}, torn{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&, t] {
            Rng rng{UINT64_C(0x9E3779B97F4A7C15) * (static_cast<std::uint64_t>(t) + 1u)};
            std::string buf;
            std::uint64_t my_gets = 0;
            for (int i = 0; i < ops; i++) {
                const std::uint64_t r = rng.next(), n = (r >> 8) % 1500;
                const std::string key = key_of(n);
                switch (r % 20) {
                    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9:
                        my_gets++;
                        if (cache.get(key, buf) && !value_matches(buf, n)) torn++;
                        break;
                    case 10: case 11: case 12: case 13: case 14:
                        cache.put(key, value_of(n, t, static_cast<std::uint64_t>(i)));
                        break;
                    case 15: case 16:
                        cache.remove(key);
                        break;
                    case 17: {
                        const std::string k2 = key_of(n + 1), k3 = key_of(n + 2);
                        auto got = cache.get_many({key, k2, k3});
                        my_gets += 3;
                        if (got[0] && !value_matches(*got[0], n)) torn++;
                        if (got[2] && !value_matches(*got[2], n + 2)) torn++;
                        break;
                    }
                    case 18:
                        cache.put_many({{key, value_of(n, t, 1)}, {key_of(n + 1), value_of(n + 1, t, 2)}});
                        break;
                    default:
                        (void)cache.peek(key);
                        (void)cache.size();
                        break;
                }
            }
            gets += my_gets;
        });
    }
    for (auto &thread : threads) thread.join();

    const afc::Stats s = cache.stats();
    CHECK_EQ(torn.load(), 0u);
    CHECK(cache.size() <= 512u);
    CHECK(cache.weight() <= 24000u);
    CHECK_EQ(s.entries, cache.size());
    CHECK_EQ(s.hits + s.misses, gets.load());
    CHECK_EQ(s.inserts - s.evictions - s.expirations - s.removals, s.entries);
    CHECK_EQ(heard[static_cast<std::size_t>(afc::Cause::evicted)].load(), s.evictions);
    CHECK_EQ(heard[static_cast<std::size_t>(afc::Cause::removed)].load(), s.removals);
    CHECK_EQ(heard[static_cast<std::size_t>(afc::Cause::replaced)].load(), s.updates);
    CHECK(s.evictions > 0);
    CHECK(reentrant.load() > 0);
    CHECK(s.hits > 0);
    const std::uint64_t entries = s.entries;
    cache.close();
    CHECK_EQ(heard[static_cast<std::size_t>(afc::Cause::cleared)].load(), entries);
}

TEST("threads: get_or_insert computes each key once when threads race") {
    afc::Cache cache = afc::Cache::builder(4096).build();
    constexpr int kKeys = 200;
    std::array<std::atomic<int>, kKeys> computed{};
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&] {
            for (int k = 0; k < kKeys; k++) {
                const std::string key = key_of(static_cast<std::uint64_t>(k));
                const std::string value = cache.get_or_insert(key, [&](std::string_view) {
                    computed[static_cast<std::size_t>(k)]++;
                    std::this_thread::yield();
                    return "computed:" + key;
                });
                if (value != "computed:" + key) wrong++;
            }
        });
    }
    for (auto &thread : threads) thread.join();
    CHECK_EQ(wrong.load(), 0);
    int total = 0;
    for (auto &c : computed) {
        CHECK_EQ(c.load(), 1);
        total += c.load();
    }
    CHECK_EQ(total, kKeys);
}

TEST("threads: a listener's exception reaches the thread whose call caused it") {
    afc::Cache cache = afc::Cache::builder(4096).listener(
        [](std::string_view key, std::string_view value, afc::Cause cause) {
            if (cause == afc::Cause::removed)
                throw std::runtime_error(std::string(value) + " " + std::string(key));
        }).build();
    std::atomic<int> right{0}, wrong{0};
    const int rounds = ops_per_thread() / 20;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
        threads.emplace_back([&, t] {
            const std::string tag = "thread" + std::to_string(t);
            for (int i = 0; i < rounds; i++) {
                const std::string key = tag + ":" + std::to_string(i);
                cache.put(key, tag);
                try {
                    cache.remove(key);
                    wrong++;
                } catch (const std::runtime_error &e) {
                    if (std::string(e.what()) == tag + " " + key) right++; else wrong++;
                }
            }
        });
    }
    for (auto &thread : threads) thread.join();
    CHECK_EQ(wrong.load(), 0);
    CHECK_EQ(right.load(), kThreads * rounds);
}

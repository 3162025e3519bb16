// Tests of the C++ wrapper (include/alphaforge_cache.hpp) itself: ownership, errors, buffers,
// the listener's exceptions and re-entrancy, get_or_insert, batches, clocks. The behaviour shared
// with every binding is in test_cases.cpp (tests/cases/*.json).
#include "alphaforge_cache.hpp"
#include "harness.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;

namespace {

using Event = std::tuple<std::string, std::string, afc::Cause>;

/// A listener recording every event into `events` (which must outlive the cache).
afc::Listener recording(std::vector<Event> &events) {
    return [&events](std::string_view key, std::string_view value, afc::Cause cause) {
        events.emplace_back(std::string(key), std::string(value), cause);
    };
}

} // namespace

static_assert(!std::is_copy_constructible_v<afc::Cache>, "Cache is move-only");
static_assert(!std::is_copy_assignable_v<afc::Cache>, "Cache is move-only");
static_assert(std::is_nothrow_move_constructible_v<afc::Cache>, "Cache moves never throw");
static_assert(std::is_nothrow_move_assignable_v<afc::Cache>, "Cache moves never throw");
static_assert(!std::is_copy_constructible_v<afc::ManualClock>, "ManualClock is move-only");

TEST("version: the header and the library agree") {
    CHECK_EQ(afc_abi_version(), static_cast<unsigned>(AFC_ABI_VERSION));
}

TEST("basics: put, get (both forms), peek, contains, remove") {
    afc::Cache cache = afc::Cache::builder(16).build();
    CHECK(static_cast<bool>(cache));
    cache.put("a", "1");
    CHECK(cache.get("a") == std::optional<std::string>("1"));
    CHECK(!cache.get("b").has_value());
    std::string out = "leftover";
    CHECK(cache.get("a", out));
    CHECK_EQ(out, std::string("1"));
    CHECK(!cache.get("b", out));
    CHECK(out.empty());
    CHECK(cache.peek("a") == std::optional<std::string>("1"));
    CHECK(cache.contains("a"));
    CHECK(!cache.contains("b"));
    CHECK(cache.remove("a"));
    CHECK(!cache.remove("a"));
    CHECK_EQ(cache.size(), 0u);
    afc::Stats s = cache.stats();
    CHECK_EQ(s.hits, 2u);
    CHECK_EQ(s.misses, 2u);
    CHECK_EQ(s.hit_ratio(), 0.5);
}

TEST("bytes: keys and values may hold NUL bytes and be empty") {
    afc::Cache cache = afc::Cache::builder(16).build();
    const std::string key("k\0ey", 4), value("\0\1\2", 3);
    cache.put(key, value);
    cache.put("", "");
    CHECK(cache.get(key) == std::optional<std::string>(value));
    CHECK(!cache.contains(std::string_view("k", 1)));
    CHECK(cache.get("") == std::optional<std::string>(""));
    CHECK_EQ(cache.weight(), 7u);
}

TEST("buffers: get(key, out) reuses out and grows it for long values") {
    afc::Cache cache = afc::Cache::builder(16).build();
    const std::string big(100000, 'x');
    cache.put("big", big);
    cache.put("small", "s");
    std::string out;
    CHECK(cache.get("big", out));
    CHECK(out == big);
    const char *storage = out.data();
    CHECK(cache.get("small", out));
    CHECK_EQ(out, std::string("s"));
    CHECK(out.data() == storage); // no reallocation for a shorter value
    CHECK(cache.get("big", out));
    CHECK(out == big);
    CHECK(out.data() == storage);
    // A value that did not fit was read again without counting a second hit.
    CHECK_EQ(cache.stats().hits, 3u);
    std::string fresh;
    CHECK(cache.peek("big", fresh));
    CHECK(fresh == big);
    CHECK_EQ(cache.stats().hits, 3u);
}

TEST("errors: refused configurations and arguments throw afc::Error with the status") {
    CHECK_THROWS_STATUS(afc::Cache::builder(0).build(), AFC_INVALID_CONFIG);
    CHECK_THROWS_STATUS(afc::Cache::builder(4).shards(5).build(), AFC_INVALID_CONFIG);
    CHECK_THROWS_STATUS(afc::Cache::builder(4).default_ttl(0s), AFC_INVALID_ARGUMENT);
    afc::Cache cache = afc::Cache::builder(4).max_bytes(8).build();
    cache.put("a", "1");
    CHECK_THROWS_STATUS(cache.put("a", "123456789"), AFC_ENTRY_TOO_HEAVY);
    CHECK(cache.get("a") == std::optional<std::string>("1"));
    CHECK_THROWS_STATUS(cache.put("b", "1", 0s), AFC_INVALID_ARGUMENT);
    CHECK_THROWS_STATUS(cache.put("b", "1", -5ms), AFC_INVALID_ARGUMENT);
    CHECK_THROWS_STATUS(cache.resize(0), AFC_INVALID_ARGUMENT);
    CHECK_THROWS_STATUS(cache.advance(1s), AFC_NOT_MANUAL_CLOCK);
    try {
        cache.put("c", "123456789");
        CHECK(false);
    } catch (const afc::Error &e) {
        // The message names the status and says why.
        CHECK(std::string(e.what()).find("AFC_ENTRY_TOO_HEAVY") == 0);
        CHECK(std::string(e.what()).size() > std::string("AFC_ENTRY_TOO_HEAVY").size() + 2);
    }
}

TEST("ownership: moving transfers the cache; a moved-from or closed cache throws") {
    std::vector<Event> events;
    afc::Cache a = afc::Cache::builder(4).listener(recording(events)).build();
    a.put("k", "v");
    afc::Cache b = std::move(a);
    CHECK(!a); // NOLINT(bugprone-use-after-move): checking the moved-from state is the point
    CHECK(static_cast<bool>(b));
    CHECK(b.get("k") == std::optional<std::string>("v"));
    CHECK_THROWS_STATUS(a.get("k"), AFC_NULL_POINTER);
    CHECK_THROWS_STATUS(a.put("k", "v"), AFC_NULL_POINTER);
    CHECK_THROWS_STATUS(a.size(), AFC_NULL_POINTER);
    // The listener moved with the cache (its address, held by the C library, is unchanged).
    b.put("k", "w");
    CHECK_EQ(events.size(), 1u);
    // Move assignment closes the target first: its listener hears its entries as cleared.
    std::vector<Event> other_events;
    afc::Cache c = afc::Cache::builder(4).listener(recording(other_events)).build();
    c.put("x", "1");
    c = std::move(b);
    CHECK_EQ(other_events.size(), 1u);
    CHECK(other_events.at(0) == Event("x", "1", afc::Cause::cleared));
    CHECK(c.get("k") == std::optional<std::string>("w"));
    c.close();
    CHECK(!c);
    CHECK(events.back() == Event("k", "w", afc::Cause::cleared));
    c.close(); // twice is harmless
    CHECK_THROWS_STATUS(c.get("k"), AFC_NULL_POINTER);
}

TEST("ttl: manual clock, per-entry TTL, remaining_ttl, expire") {
    afc::Cache cache = afc::Cache::builder(8).default_ttl(10s).manual_clock(5s).build();
    CHECK(cache.now() == 5s);
    cache.put("a", "1");
    cache.put("b", "2", 30s);
    cache.put("c", "3");
    CHECK(cache.remaining_ttl("a") == std::optional<afc::Duration>(10s));
    CHECK(!cache.remaining_ttl("zz").has_value());
    cache.advance(10s);
    CHECK(!cache.get("a").has_value());
    CHECK(cache.remaining_ttl("b") == std::optional<afc::Duration>(20s));
    CHECK_EQ(cache.expire(), 1u); // c
    CHECK_EQ(cache.size(), 1u);
    cache.set_time(0s);
    CHECK(cache.now() == 0s);
    CHECK(cache.remaining_ttl("b") == std::optional<afc::Duration>(35s));
    afc::Cache forever = afc::Cache::builder(8).build();
    forever.put("k", "v");
    CHECK(forever.remaining_ttl("k") == std::optional<afc::Duration>(afc::Duration::max()));
}

TEST("clock: one ManualClock shared by two caches moves both") {
    afc::ManualClock clock(1s);
    afc::Cache a = afc::Cache::builder(4).clock(clock).default_ttl(1s).build();
    afc::Cache b = afc::Cache::builder(4).clock(clock).default_ttl(2s).build();
    a.put("k", "v");
    b.put("k", "v");
    clock.advance(1s);
    CHECK(clock.now() == 2s);
    CHECK(b.now() == 2s);
    CHECK(!a.contains("k"));
    CHECK(b.contains("k"));
    afc::ManualClock moved = std::move(clock);
    moved.set(10s);
    CHECK(!b.contains("k"));
    CHECK_THROWS_STATUS(clock.now(), AFC_NULL_POINTER); // NOLINT(bugprone-use-after-move)
}

TEST("listener: causes in order, with the values that left") {
    std::vector<Event> events;
    afc::Cache cache =
        afc::Cache::builder(2).shards(1).manual_clock().listener(recording(events)).build();
    cache.put("a", "1");
    cache.put("a", "2");
    cache.put("b", "3");
    cache.put("c", "4");
    cache.remove("b");
    cache.put("d", "5", 1ns);
    cache.advance(1ns);
    CHECK(!cache.get("d").has_value());
    cache.clear();
    const std::vector<Event> want = {
        {"a", "1", afc::Cause::replaced}, {"a", "2", afc::Cause::evicted},
        {"b", "3", afc::Cause::removed},  {"d", "5", afc::Cause::expired},
        {"c", "4", afc::Cause::cleared}};
    CHECK(events == want);
    CHECK_EQ(std::string(afc::to_string(afc::Cause::replaced)), std::string("replaced"));
}

TEST("listener: an exception reaches the caller after every notification was made") {
    std::vector<Event> events;
    afc::Cache cache = afc::Cache::builder(4).shards(1).listener(
        [&](std::string_view key, std::string_view value, afc::Cause cause) {
            events.emplace_back(std::string(key), std::string(value), cause);
            if (cause == afc::Cause::cleared)
                throw std::runtime_error("listener failed on " + std::string(key));
        }).build();
    cache.put("a", "1");
    cache.put("b", "2");
    try {
        cache.clear(); // two notifications, both throw
        CHECK(false);
    } catch (const std::runtime_error &e) {
        CHECK_EQ(events.size(), 2u); // both were told
        if (!events.empty())         // the first exception is the one rethrown
            CHECK_EQ(std::string(e.what()), "listener failed on " + std::get<0>(events[0]));
    }
    // The cache is consistent and the next call does not see a stale exception.
    CHECK_EQ(cache.size(), 0u);
    cache.put("c", "3");
    CHECK(cache.get("c") == std::optional<std::string>("3"));
    CHECK(cache.remove("c"));
    CHECK_EQ(events.size(), 3u);
    // The destructor drops an exception (it cannot throw); nothing is left for later calls.
    {
        afc::Cache doomed = afc::Cache::builder(4).listener([](std::string_view, std::string_view,
                                                               afc::Cause) {
            throw std::runtime_error("dropped");
        }).build();
        doomed.put("x", "1");
    }
    cache.put("d", "4");
    CHECK(cache.contains("d"));
}

TEST("listener: it may call the cache (re-entrancy, no lock held)") {
    afc::Cache *self = nullptr;
    std::vector<std::string> seen;
    afc::Cache cache = afc::Cache::builder(1).listener(
        [&](std::string_view key, std::string_view, afc::Cause) {
            // The entry has left, the new one is there; a get from here works.
            seen.push_back(std::string(key) + (self->contains(key) ? "+" : "-") +
                           std::to_string(self->size()) + self->get("b").value_or("?") +
                           self->peek("b").value_or("?"));
        }).build();
    self = &cache;
    cache.put("a", "1");
    cache.put("b", "2");
    CHECK(seen == std::vector<std::string>{"a-122"});
    // get(key) and peek(key) read through a buffer of the thread's: values of every size.
    const std::string big(3000, 'g');
    cache.put("big", big);
    CHECK(cache.get("big") == std::optional<std::string>(big));
    CHECK(cache.peek("big") == std::optional<std::string>(big));
    cache.put("s", "x");
    CHECK(cache.get("s") == std::optional<std::string>("x"));
    CHECK(!cache.get("big").has_value());
}

TEST("listener: close() from it is refused (the call that runs it still uses the cache)") {
    afc::Cache *self = nullptr;
    int refused = 0;
    afc::Cache cache = afc::Cache::builder(1).listener([&](std::string_view, std::string_view,
                                                          afc::Cause cause) {
        if (cause == afc::Cause::cleared) return;
        try {
            self->close();
        } catch (const afc::Error &e) {
            if (e.status() == AFC_INVALID_ARGUMENT) refused++;
        }
    }).build();
    self = &cache;
    cache.put("a", "1");
    cache.put("b", "2");
    CHECK_EQ(refused, 1);
    CHECK(cache.get("b") == std::optional<std::string>("2"));
    cache.close();
    CHECK(!cache);
}

TEST("get_or_insert: computes on a miss only; an exception stores nothing") {
    afc::Cache cache = afc::Cache::builder(8).build();
    int computed = 0;
    auto compute = [&](std::string_view key) {
        computed++;
        return std::string(key) + "!";
    };
    CHECK_EQ(cache.get_or_insert("k", compute), std::string("k!"));
    CHECK_EQ(cache.get_or_insert("k", compute), std::string("k!"));
    CHECK_EQ(computed, 1);
    const std::string big(5000, 'b');
    CHECK(cache.get_or_insert("big", [&](std::string_view) { return big; }) == big);
    CHECK(cache.get_or_insert("big", [&](std::string_view) { return std::string("no"); }) == big);
    try {
        cache.get_or_insert("bad", [](std::string_view) -> std::string {
            throw std::logic_error("cannot compute");
        });
        CHECK(false);
    } catch (const std::logic_error &e) {
        CHECK_EQ(std::string(e.what()), std::string("cannot compute"));
    }
    CHECK(!cache.contains("bad"));
}

TEST("batches: get_many (including values longer than its first buffer) and put_many") {
    afc::Cache cache = afc::Cache::builder(16).shards(1).manual_clock().build();
    const std::string big(10000, 'z');
    cache.put_many({{"a", "1"}, {"b", big}, {"c", ""}});
    auto got = cache.get_many({"a", "x", "b", "c"});
    CHECK_EQ(got.size(), 4u);
    CHECK(got[0] == std::optional<std::string>("1"));
    CHECK(!got[1].has_value());
    CHECK(got[2] == std::optional<std::string>(big));
    CHECK(got[3] == std::optional<std::string>(""));
    afc::Stats s = cache.stats();
    CHECK_EQ(s.hits, 3u); // the big value was read again without a second hit
    CHECK_EQ(s.misses, 1u);
    CHECK(cache.get_many({}).empty());
    cache.put_many({{"t", "1"}}, 5ns);
    CHECK(cache.remaining_ttl("t") == std::optional<afc::Duration>(5ns));
    CHECK_THROWS_STATUS(cache.put_many({{"u", "1"}}, 0ns), AFC_INVALID_ARGUMENT);
    CHECK(cache.keys() == std::vector<std::string>({"t", "c", "b", "a"}));
}

TEST("bounds: max_bytes, put_weighted, set_max_bytes") {
    afc::Cache cache = afc::Cache::builder(100).shards(1).max_bytes(100).build();
    cache.put_weighted("a", "1", 60);
    cache.put_weighted("b", "1", 40);
    CHECK_EQ(cache.weight(), 100u);
    cache.put_weighted("c", "1", 1);
    CHECK(!cache.contains("a"));
    cache.set_max_bytes(41);
    CHECK_EQ(cache.weight(), 41u);
    CHECK_THROWS_STATUS(cache.put_weighted("d", "1", 42), AFC_ENTRY_TOO_HEAVY);
    CHECK_EQ(cache.stats().evictions, 1u);
}

TEST("native_handle: the C API can be used on the same cache") {
    afc::Cache cache = afc::Cache::builder(4).build();
    cache.put("a", "1");
    std::size_t len = 0;
    CHECK_EQ(afc_cache_len(cache.native_handle(), &len), AFC_OK);
    CHECK_EQ(len, 1u);
}

namespace {

/// A temporary directory removed (with its files) at the end of the scope.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "afc-cpp-XXXXXX").string();
        if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string file(const char *name) const { return (path / name).string(); }
};

} // namespace

TEST("snapshots: a round trip restores entries, recency and remaining TTL") {
    TempDir dir;
    const std::string path = dir.file("snap.afcs");
    afc::Cache source = afc::Cache::builder(8).shards(1).manual_clock().build();
    source.put("a", "1", 1000ns);
    source.put("b", std::string("2\0x", 3));
    source.put("c", "3", 500ns);
    CHECK(source.get("a") == std::optional<std::string>("1"));
    source.advance(100ns);
    const afc::SnapshotInfo saved = source.save(path);
    CHECK_EQ(saved.entries, std::uint64_t{3});
    CHECK_EQ(saved.value_encoding, std::uint32_t{AFC_ENCODING_BYTES});

    const afc::SnapshotInfo verified = afc::verify_snapshot(path);
    CHECK_EQ(verified.entries, std::uint64_t{3});
    CHECK_EQ(verified.file_bytes, saved.file_bytes);

    std::vector<Event> events;
    afc::Cache target =
        afc::Cache::builder(8).shards(1).manual_clock(5000ns).listener(recording(events)).build();
    target.put("old", "x");
    const afc::SnapshotInfo loaded = target.load(path);
    CHECK_EQ(loaded.entries_kept, std::uint64_t{3});
    CHECK((events == std::vector<Event>{{"old", "x", afc::Cause::cleared}}));
    CHECK(target.keys() == (std::vector<std::string>{"a", "c", "b"}));
    CHECK(target.get("b") == std::optional<std::string>(std::string("2\0x", 3)));
    CHECK(target.remaining_ttl("a") == std::optional<afc::Duration>(900ns));
    CHECK(target.remaining_ttl("c") == std::optional<afc::Duration>(400ns));
    CHECK(target.remaining_ttl("b") == std::optional<afc::Duration>(afc::Duration::max()));
    target.advance(400ns);
    CHECK(!target.contains("c"));
    CHECK(target.contains("a"));
}

TEST("snapshots: a corrupt or missing file is refused and the cache is unchanged") {
    TempDir dir;
    const std::string path = dir.file("snap.afcs");
    afc::Cache cache = afc::Cache::builder(8).shards(1).manual_clock().build();
    cache.put("a", "1");
    cache.put("b", "2", 50ns);
    cache.save(path);
    // Flip one byte of the last entry: its checksum no longer matches.
    std::string bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    CHECK(bytes.size() > 40);
    bytes[bytes.size() - 6] = static_cast<char>(bytes[bytes.size() - 6] ^ 0x55);
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    cache.put("c", "3");
    CHECK_THROWS_STATUS(cache.load(path), AFC_SNAPSHOT_INVALID);
    CHECK_THROWS_STATUS(afc::verify_snapshot(path), AFC_SNAPSHOT_INVALID);
    CHECK_THROWS_STATUS(cache.load(dir.file("missing.afcs")), AFC_IO_ERROR);
    CHECK_THROWS_STATUS(cache.save(dir.file("no/such/dir.afcs")), AFC_IO_ERROR);
    CHECK(cache.keys() == (std::vector<std::string>{"c", "b", "a"}));
    CHECK(cache.remaining_ttl("b") == std::optional<afc::Duration>(50ns));

    // A file recording another value encoding is refused unless asked for.
    cache.save(path, AFC_ENCODING_PICKLE);
    CHECK_THROWS_STATUS(cache.load(path), AFC_SNAPSHOT_MISMATCH);
    CHECK_EQ(cache.load(path, AFC_ENCODING_ANY).entries, std::uint64_t{3});
}

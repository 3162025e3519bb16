// alphaforge-cache for C++17: a header-only wrapper of the C ABI (alphaforge_cache.h).
//
//   #include <alphaforge_cache.hpp>
//   using namespace std::chrono_literals;
//   afc::Cache cache = afc::Cache::builder(100000).max_bytes(64 << 20).default_ttl(60s).build();
//   cache.put("AAPL", "189.70");
//   std::optional<std::string> v = cache.get("AAPL");
//
// Link with the C library as a C program does (-lalphaforge_cache, or pkg-config alphaforge_cache).
//
// Design:
// - Ownership: `afc::Cache` and `afc::ManualClock` own one C handle each (RAII). They are move-only;
//   a moved-from object is empty (`operator bool` is false) and any call on it throws
//   `afc::Error` with status AFC_NULL_POINTER.
// - Errors are exceptions: every C status other than AFC_OK becomes an `afc::Error` carrying the
//   status and `afc_last_error()`'s message, except the two outcomes that are not errors, which
//   are return values: a miss (`std::nullopt`, `false`) and a buffer too small (handled inside:
//   the wrapper grows the buffer and reads again without counting a second hit). Exceptions were
//   chosen over an expected-style result because, once misses are values, what is left is either
//   a programming error (bad arguments, a closed cache) or a refused entry, which callers rarely
//   handle at the call site; and because C++17 has no std::expected.
// - Keys and values are byte strings passed as `std::string_view` (any bytes, NULs included) and
//   returned as `std::string`. `get(key, out)` copies into a caller's string, reusing its storage:
//   the hot path, with no allocation once `out` is large enough.
// - Thread safety: as the C API, every operation may be called from any number of threads at once
//   on one `Cache` (share it by reference). `close()`, moving and destroying it must not race
//   with other calls.
// - Listener: any callable `void(std::string_view key, std::string_view value, afc::Cause)`. It
//   runs after the cache released its locks (it may call the cache), on the thread whose call
//   made the entry leave. If it throws, the exception is caught at the C boundary, the remaining
//   notifications still happen, and the first exception is rethrown by the cache call that
//   caused it, once that call has finished.
// - Snapshots: `save(path)` writes every live entry to a file atomically, `load(path)` checks the
//   whole file then replaces the cache's entries (on any error the cache is unchanged), and
//   `afc::verify_snapshot(path)` checks a file without loading it; each returns the
//   `afc::SnapshotInfo` the C call filled and throws afc::Error (AFC_IO_ERROR,
//   AFC_SNAPSHOT_INVALID, AFC_SNAPSHOT_UNSUPPORTED, AFC_SNAPSHOT_MISMATCH) on failure.
#ifndef ALPHAFORGE_CACHE_HPP
#define ALPHAFORGE_CACHE_HPP

#include "alphaforge_cache.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// The hot read path is forced inline where the compiler allows it: out of line it costs a
// prologue and register spills that are a sizeable share of a ~25 ns call.
#if defined(__GNUC__) || defined(__clang__)
#define AFC_HOT_PATH __attribute__((always_inline)) inline
#else
#define AFC_HOT_PATH inline
#endif

namespace afc {

/// Durations and times of the cache's clock (nanoseconds).
using Duration = std::chrono::nanoseconds;

/// The exception every failing call throws: the C status and its message.
class Error : public std::runtime_error {
public:
    /// An error for `status` with a readable `message`.
    Error(afc_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}

    /// The C status (never AFC_OK, AFC_NOT_FOUND or AFC_BUFFER_TOO_SMALL).
    afc_status status() const noexcept { return status_; }

private:
    afc_status status_;
};

/// Why an entry left the cache, as the listener hears it.
enum class Cause {
    evicted = AFC_CAUSE_EVICTED,   ///< removed to respect a bound
    expired = AFC_CAUSE_EXPIRED,   ///< its deadline passed
    removed = AFC_CAUSE_REMOVED,   ///< removed by `Cache::remove`
    replaced = AFC_CAUSE_REPLACED, ///< replaced by a put of the same key (the old value is told)
    cleared = AFC_CAUSE_CLEARED,   ///< removed by `clear`, `close` or the destructor
};

/// The lower-case name of a cause ("evicted", "expired", "removed", "replaced", "cleared").
inline const char *to_string(Cause cause) noexcept {
    switch (cause) {
        case Cause::evicted: return "evicted";
        case Cause::expired: return "expired";
        case Cause::removed: return "removed";
        case Cause::replaced: return "replaced";
        case Cause::cleared: return "cleared";
    }
    return "unknown";
}

/// A cache's statistics at one moment (see docs/semantics.md for what each counts).
struct Stats {
    std::uint64_t hits = 0;        ///< gets that found a live entry
    std::uint64_t misses = 0;      ///< gets that found nothing
    std::uint64_t inserts = 0;     ///< puts that added a new key
    std::uint64_t updates = 0;     ///< puts that replaced a live key's value
    std::uint64_t evictions = 0;   ///< entries removed to respect a bound
    std::uint64_t expirations = 0; ///< expired entries reclaimed
    std::uint64_t removals = 0;    ///< entries removed by remove or clear
    std::uint64_t entries = 0;     ///< live entries
    std::uint64_t weight = 0;      ///< total weight of the live entries

    /// hits / (hits + misses), or 0 when both are 0.
    double hit_ratio() const noexcept {
        const std::uint64_t lookups = hits + misses;
        return lookups ? static_cast<double>(hits) / static_cast<double>(lookups) : 0.0;
    }
};

/// What a save, load or verify found: format version, value encoding, entries in the file,
/// entries kept by a load, file length (see afc_snapshot_info).
using SnapshotInfo = afc_snapshot_info;

/// The eviction listener: told of every entry that leaves a cache. The views are valid only
/// during the call.
using Listener = std::function<void(std::string_view key, std::string_view value, Cause cause)>;

namespace detail {

[[noreturn]] inline void throw_status(afc_status status) {
    std::string message = afc_status_name(static_cast<std::int32_t>(status));
    const char *detail = afc_last_error();
    if (detail != nullptr && *detail != '\0') {
        message += ": ";
        message += detail;
    }
    throw Error(status, message);
}

inline void check(afc_status status) {
    if (status != AFC_OK) throw_status(status);
}

inline const std::uint8_t *bytes(std::string_view s) noexcept {
    return reinterpret_cast<const std::uint8_t *>(s.data());
}

inline std::uint8_t *bytes(std::string &s) noexcept {
    return reinterpret_cast<std::uint8_t *>(s.data());
}

inline std::string_view view(const std::uint8_t *p, std::size_t n) noexcept {
    return n ? std::string_view(reinterpret_cast<const char *>(p), n) : std::string_view();
}

/// A duration as the C API's nanoseconds; a TTL must be positive (0 means "default" in C).
inline std::uint64_t ttl_ns(Duration ttl) {
    if (ttl.count() <= 0) throw Error(AFC_INVALID_ARGUMENT, "AFC_INVALID_ARGUMENT: a TTL must be positive");
    return static_cast<std::uint64_t>(ttl.count());
}

inline std::uint64_t time_ns(Duration t) {
    if (t.count() < 0) throw Error(AFC_INVALID_ARGUMENT, "AFC_INVALID_ARGUMENT: a time must not be negative");
    return static_cast<std::uint64_t>(t.count());
}

inline Duration from_ns(std::uint64_t ns) noexcept {
    const auto max = static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max());
    return ns >= max ? Duration::max() : Duration(static_cast<Duration::rep>(ns));
}

// Listener exceptions: caught in the trampoline (nothing may unwind through the C library), kept
// per thread, and rethrown by the outermost cache call of that thread once it has returned (a
// listener that calls the cache makes nested calls, which leave the exception to the outer one).
inline int &callback_depth() noexcept {
    thread_local int depth = 0;
    return depth;
}

inline std::exception_ptr &pending_exception() noexcept {
    thread_local std::exception_ptr pending;
    return pending;
}

inline void rethrow_pending() {
    std::exception_ptr &pending = pending_exception();
    if (pending && callback_depth() == 0) {
        std::exception_ptr error = std::move(pending);
        pending = nullptr;
        std::rethrow_exception(error);
    }
}

/// A cache's listener, and how many calls of it are running (close() refuses to free the cache
/// under one: the C call that runs it still uses the cache).
struct ListenerState {
    Listener fn;
    std::atomic<int> running{0};
};

inline void listener_trampoline(void *user_data, const std::uint8_t *key, std::size_t key_len,
                                const std::uint8_t *value, std::size_t value_len,
                                afc_removal_cause cause) noexcept {
    auto *state = static_cast<ListenerState *>(user_data);
    ++callback_depth();
    state->running.fetch_add(1, std::memory_order_relaxed);
    try {
        state->fn(view(key, key_len), view(value, value_len), static_cast<Cause>(cause));
    } catch (...) {
        if (!pending_exception()) pending_exception() = std::current_exception();
    }
    state->running.fetch_sub(1, std::memory_order_relaxed);
    --callback_depth();
}

} // namespace detail

/// A shared manual clock (tests, backtests on simulated time): give it to several caches with
/// `Cache::Builder::clock`; moving it moves time for all of them. Thread-safe; move-only.
class ManualClock {
public:
    /// A clock at `start` (0 by default).
    explicit ManualClock(Duration start = Duration::zero()) {
        detail::check(afc_clock_new(detail::time_ns(start), &ptr_));
    }
    ManualClock(ManualClock &&other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)) {}
    ManualClock &operator=(ManualClock &&other) noexcept {
        if (this != &other) {
            afc_clock_free(ptr_);
            ptr_ = std::exchange(other.ptr_, nullptr);
        }
        return *this;
    }
    ManualClock(const ManualClock &) = delete;
    ManualClock &operator=(const ManualClock &) = delete;
    /// Frees this reference; caches built with the clock keep their own.
    ~ManualClock() { afc_clock_free(ptr_); }

    /// Sets the time (it may move backwards).
    void set(Duration now) const { detail::check(afc_clock_set(ptr_, detail::time_ns(now))); }
    /// Moves the time forward (saturating).
    void advance(Duration by) const { detail::check(afc_clock_advance(ptr_, detail::time_ns(by))); }
    /// The current time.
    Duration now() const {
        std::uint64_t ns = 0;
        detail::check(afc_clock_now(ptr_, &ns));
        return detail::from_ns(ns);
    }
    /// The C handle (still owned by this object).
    const afc_clock *native_handle() const noexcept { return ptr_; }

private:
    afc_clock *ptr_ = nullptr;
};

/// A thread-safe LRU/TTL cache of byte strings. Build one with `Cache::builder(max_entries)`.
class Cache {
public:
    /// The settings of a cache; `build()` makes it (and may be called again for another).
    class Builder {
    public:
        /// At most `max_entries` entries (>= 1; checked by `build`).
        explicit Builder(std::uint64_t max_entries) : max_entries_(max_entries) {}
        /// Bounds the total weight (key + value bytes of each entry).
        Builder &max_bytes(std::uint64_t bytes) { max_bytes_ = bytes; return *this; }
        /// Entries put without a TTL of their own live this long (> 0).
        Builder &default_ttl(Duration ttl) { default_ttl_ = detail::ttl_ns(ttl); return *this; }
        /// The shard count (1: exact global LRU order; by default it depends on the machine).
        Builder &shards(std::uint32_t shards) { shards_ = shards; return *this; }
        /// A manual clock of the cache's own, starting at `start`, moved by `Cache::set_time` and
        /// `Cache::advance`.
        Builder &manual_clock(Duration start = Duration::zero()) {
            manual_start_ = detail::time_ns(start);
            shared_clock_ = nullptr;
            return *this;
        }
        /// The shared manual clock `clock` (the cache keeps a reference of its own).
        Builder &clock(const ManualClock &clock) {
            shared_clock_ = clock.native_handle();
            manual_start_.reset();
            return *this;
        }
        /// The eviction listener (see `Listener`).
        Builder &listener(Listener listener) {
            listener_ = std::move(listener);
            return *this;
        }
        /// A cache with these settings; throws `afc::Error` (AFC_INVALID_CONFIG) if they are
        /// refused.
        Cache build() const {
            afc_config *config = nullptr;
            detail::check(afc_config_new(max_entries_, &config));
            std::unique_ptr<afc_config, void (*)(afc_config *)> guard(config, afc_config_free);
            if (max_bytes_) detail::check(afc_config_set_max_bytes(config, *max_bytes_));
            if (default_ttl_) detail::check(afc_config_set_default_ttl_ns(config, *default_ttl_));
            if (shards_) detail::check(afc_config_set_shards(config, *shards_));
            if (manual_start_) detail::check(afc_config_use_manual_clock(config, *manual_start_));
            if (shared_clock_) detail::check(afc_config_use_clock(config, shared_clock_));
            std::unique_ptr<detail::ListenerState> listener;
            if (listener_) {
                listener = std::make_unique<detail::ListenerState>();
                listener->fn = listener_;
                detail::check(afc_config_set_listener(config, detail::listener_trampoline,
                                                      listener.get()));
            }
            afc_cache *ptr = nullptr;
            detail::check(afc_cache_new(config, &ptr));
            return Cache(ptr, std::move(listener));
        }

    private:
        std::uint64_t max_entries_;
        std::optional<std::uint64_t> max_bytes_, default_ttl_, manual_start_;
        std::optional<std::uint32_t> shards_;
        const afc_clock *shared_clock_ = nullptr;
        Listener listener_;
    };

    /// The settings of a cache of at most `max_entries` entries.
    static Builder builder(std::uint64_t max_entries) { return Builder(max_entries); }

    Cache(Cache &&other) noexcept
        : ptr_(std::exchange(other.ptr_, nullptr)), listener_(std::move(other.listener_)) {}
    /// Closes this cache (its listener hears its entries as cleared; an exception it throws is
    /// dropped) and takes `other`'s place.
    Cache &operator=(Cache &&other) noexcept {
        if (this != &other) {
            release_quietly();
            ptr_ = std::exchange(other.ptr_, nullptr);
            listener_ = std::move(other.listener_);
        }
        return *this;
    }
    Cache(const Cache &) = delete;
    Cache &operator=(const Cache &) = delete;
    /// Closes the cache; an exception of the listener is dropped here (call `close()` to get it).
    ~Cache() { release_quietly(); }

    /// Whether the cache is open (not closed, not moved from).
    explicit operator bool() const noexcept { return ptr_ != nullptr; }

    /// Frees the cache: the listener hears every remaining entry as cleared (its first exception
    /// is rethrown; the cache is already closed then, so a listener calling it gets an
    /// AFC_NULL_POINTER error). Called from the listener, it throws AFC_INVALID_ARGUMENT. Like
    /// moving and destroying, it must not race with other calls, nor run from a get_or_insert
    /// compute function. Later calls throw `afc::Error` (AFC_NULL_POINTER); closing twice is harmless.
    void close() {
        if (listener_ && listener_->running.load(std::memory_order_relaxed) > 0)
            throw Error(AFC_INVALID_ARGUMENT,
                        "AFC_INVALID_ARGUMENT: close() while the listener runs (from the listener, "
                        "the call that runs it still uses the cache)");
        release();
        detail::rethrow_pending();
    }

    // ----- single keys ---------------------------------------------------------------------

    /// Copies the value of `key` into `out` (reusing its storage) and returns true, or returns
    /// false on a miss (and leaves `out` empty). The entry becomes the most recently used.
    AFC_HOT_PATH bool get(std::string_view key, std::string &out) const {
        // The hot path, kept small enough to inline: one C call into the whole capacity of `out`
        // (a reused string needs no allocation), the rest in finish_read.
        const std::size_t cap = out.capacity();
        if (out.size() != cap) out.resize(cap);
        std::size_t len = 0;
        const afc_status status =
            afc_cache_get(ptr_, detail::bytes(key), key.size(), detail::bytes(out), cap, &len);
        if (status == AFC_OK && !listener_) {
            // resize is an out-of-line call of libstdc++: skip it when the length is the same.
            if (len != cap) out.resize(len);
            return true;
        }
        return finish_read(key, out, status, len);
    }

    /// The value of `key` (the entry becomes the most recently used), or nullopt. It reads into
    /// a buffer of the thread's, then copies the value out: one C call and one allocation of the
    /// value's size (none up to 15 bytes).
    std::optional<std::string> get(std::string_view key) const {
        return read_copy(key, false);
    }

    /// As `get(key, out)`, leaving recency and the hit/miss counters unchanged.
    bool peek(std::string_view key, std::string &out) const {
        const std::size_t cap = out.capacity();
        if (out.size() != cap) out.resize(cap);
        std::size_t len = 0;
        const afc_status status =
            afc_cache_peek(ptr_, detail::bytes(key), key.size(), detail::bytes(out), cap, &len);
        return finish_read(key, out, status, len);
    }

    /// As `get(key)`, leaving recency and the hit/miss counters unchanged.
    std::optional<std::string> peek(std::string_view key) const {
        return read_copy(key, true);
    }

    /// Whether `key` has a live entry (recency and counters unchanged).
    bool contains(std::string_view key) const {
        bool found = false;
        settle(afc_cache_contains(ptr_, detail::bytes(key), key.size(), &found));
        return found;
    }

    /// Stores `key -> value` as the most recently used entry, with the default TTL. Throws
    /// `afc::Error` (AFC_ENTRY_TOO_HEAVY) for an entry heavier than max_bytes: the cache is
    /// then unchanged.
    void put(std::string_view key, std::string_view value) { put_ns(key, value, 0); }

    /// Stores `key -> value` with its own time to live (> 0).
    void put(std::string_view key, std::string_view value, Duration ttl) {
        put_ns(key, value, detail::ttl_ns(ttl));
    }

    /// Stores `key -> value` with the given weight against max_bytes (instead of the byte count)
    /// and, if given, its own time to live.
    void put_weighted(std::string_view key, std::string_view value, std::uint64_t weight,
                      std::optional<Duration> ttl = std::nullopt) {
        settle(afc_cache_put_weighted(ptr_, detail::bytes(key), key.size(), detail::bytes(value),
                                      value.size(), ttl ? detail::ttl_ns(*ttl) : 0, weight));
    }

    /// Removes `key`; returns whether it had a live entry.
    bool remove(std::string_view key) {
        const afc_status status = afc_cache_remove(ptr_, detail::bytes(key), key.size());
        if (status == AFC_NOT_FOUND) {
            after_call();
            return false;
        }
        settle(status);
        return true;
    }

    /// The time `key` has left: nullopt if it has no live entry, `Duration::max()` if it never
    /// expires.
    std::optional<Duration> remaining_ttl(std::string_view key) const {
        std::uint64_t ns = 0;
        const afc_status status = afc_cache_remaining_ttl(ptr_, detail::bytes(key), key.size(), &ns);
        if (status == AFC_NOT_FOUND) {
            after_call();
            return std::nullopt;
        }
        settle(status);
        return ns == UINT64_MAX ? Duration::max() : detail::from_ns(ns);
    }

    /// The value of `key`; on a miss, `compute(key)` (called with no lock held) gives it and it
    /// is stored. When threads race on one key, one computes and the others wait for its value.
    /// `compute` returns anything convertible to `std::string_view` (a `std::string`, say); if it
    /// throws, nothing is stored and the exception propagates.
    template <class Compute>
    std::string get_or_insert(std::string_view key, Compute &&compute) {
        struct Context {
            std::remove_reference_t<Compute> *compute;
            std::exception_ptr error;
        } context{&compute, nullptr};
        const afc_compute_fn trampoline = [](void *user_data, const std::uint8_t *k, std::size_t kl,
                                             afc_value_out *out) noexcept -> std::int32_t {
            auto *c = static_cast<Context *>(user_data);
            try {
                const auto &value = (*c->compute)(detail::view(k, kl));
                const std::string_view v(value);
                return afc_value_out_set(out, detail::bytes(v), v.size()) == AFC_OK ? 0 : 1;
            } catch (...) {
                c->error = std::current_exception();
                return 1;
            }
        };
        std::string out(64, '\0');
        std::size_t len = 0;
        afc_status status = afc_cache_get_or_insert(ptr_, detail::bytes(key), key.size(), trampoline,
                                                    &context, detail::bytes(out), out.size(), &len);
        if (context.error) {
            after_call();
            std::rethrow_exception(context.error);
        }
        if (status == AFC_BUFFER_TOO_SMALL) {
            if (!read_again(key, out, len)) {
                // Removed between the two reads: compute again.
                after_call();
                return get_or_insert(key, std::forward<Compute>(compute));
            }
            status = AFC_OK;
        } else if (status == AFC_OK) {
            out.resize(len);
        }
        settle(status);
        return out;
    }

    // ----- many keys at once ---------------------------------------------------------------

    /// The values of `keys` in one call (one lock per shard), in order; nullopt for a miss.
    std::vector<std::optional<std::string>> get_many(const std::vector<std::string_view> &keys) const {
        std::string flat;
        std::vector<std::size_t> key_lens(keys.size());
        for (std::size_t i = 0; i < keys.size(); i++) {
            flat.append(keys[i]);
            key_lens[i] = keys[i].size();
        }
        std::string values(keys.size() * 64 + 64, '\0');
        std::vector<std::size_t> offsets(keys.size()), lens(keys.size());
        std::size_t needed = 0;
        const afc_status status = afc_cache_get_many(
            ptr_, detail::bytes(flat), key_lens.data(), keys.size(), detail::bytes(values),
            values.size(), offsets.data(), lens.data(), &needed);
        if (status != AFC_BUFFER_TOO_SMALL) settle(status);
        std::vector<std::optional<std::string>> result(keys.size());
        for (std::size_t i = 0; i < keys.size(); i++) {
            if (offsets[i] != AFC_MISSING) {
                result[i].emplace(values.data() + offsets[i], lens[i]);
            } else if (lens[i] != AFC_MISSING) {
                // A hit that did not fit: read it again without counting a second hit.
                std::string value;
                if (read_again(keys[i], value, lens[i])) result[i] = std::move(value);
            }
        }
        if (status == AFC_BUFFER_TOO_SMALL) after_call();
        return result;
    }

    /// Stores every `(key, value)` in one call, all or none (one refused entry refuses the
    /// batch), with the default TTL or `ttl`.
    void put_many(const std::vector<std::pair<std::string_view, std::string_view>> &items,
                  std::optional<Duration> ttl = std::nullopt) {
        std::string keys, values;
        std::vector<std::size_t> key_lens(items.size()), value_lens(items.size());
        for (std::size_t i = 0; i < items.size(); i++) {
            keys.append(items[i].first);
            values.append(items[i].second);
            key_lens[i] = items[i].first.size();
            value_lens[i] = items[i].second.size();
        }
        settle(afc_cache_put_many(ptr_, detail::bytes(keys), key_lens.data(),
                                  detail::bytes(values), value_lens.data(), items.size(),
                                  ttl ? detail::ttl_ns(*ttl) : 0));
    }

    /// The keys of a consistent snapshot, most recently used first (each shard's in turn when
    /// there are several); recency unchanged.
    std::vector<std::string> keys() const {
        afc_iter *iter = nullptr;
        check(afc_iter_new(ptr_, &iter));
        std::unique_ptr<afc_iter, void (*)(afc_iter *)> guard(iter, afc_iter_free);
        std::vector<std::string> out;
        const std::uint8_t *key = nullptr, *value = nullptr;
        std::size_t key_len = 0, value_len = 0;
        std::uint64_t ttl = 0;
        while (afc_iter_next(iter, &key, &key_len, &value, &value_len, &ttl) == AFC_OK)
            out.emplace_back(detail::view(key, key_len));
        return out;
    }

    // ----- the whole cache -----------------------------------------------------------------

    /// Removes every entry (the listener hears them as cleared, or expired).
    void clear() { settle(afc_cache_clear(ptr_)); }

    /// The number of live entries.
    std::size_t size() const {
        std::size_t n = 0;
        settle(afc_cache_len(ptr_, &n));
        return n;
    }

    /// The total weight of the live entries.
    std::uint64_t weight() const {
        std::uint64_t w = 0;
        settle(afc_cache_weight(ptr_, &w));
        return w;
    }

    /// The statistics (expired entries are reclaimed first).
    Stats stats() const {
        afc_stats s{};
        settle(afc_cache_stats(ptr_, &s));
        return Stats{s.hits,       s.misses,   s.inserts, s.updates, s.evictions,
                     s.expirations, s.removals, s.entries, s.weight};
    }

    /// Sets every counter back to zero (not entries and weight).
    void reset_stats() { check(afc_cache_reset_stats(ptr_)); }

    /// Reclaims every expired entry now; returns how many.
    std::size_t expire() {
        std::size_t n = 0;
        settle(afc_cache_expire(ptr_, &n));
        return n;
    }

    /// Changes the entry bound (at least the shard count), evicting beyond it.
    void resize(std::uint64_t max_entries) { settle(afc_cache_resize(ptr_, max_entries)); }

    /// Changes the byte bound of a cache built with one, evicting beyond it.
    void set_max_bytes(std::uint64_t max_bytes) { settle(afc_cache_set_max_bytes(ptr_, max_bytes)); }

    // ----- time ----------------------------------------------------------------------------

    /// Sets the cache's manual clock (AFC_NOT_MANUAL_CLOCK on a monotonic one).
    void set_time(Duration now) { check(afc_cache_clock_set(ptr_, detail::time_ns(now))); }
    /// Moves the cache's manual clock forward.
    void advance(Duration by) { check(afc_cache_clock_advance(ptr_, detail::time_ns(by))); }
    /// The time of the cache's clock (either kind).
    Duration now() const {
        std::uint64_t ns = 0;
        check(afc_cache_clock_now(ptr_, &ns));
        return detail::from_ns(ns);
    }

    // ----- snapshots -----------------------------------------------------------------------

    /// Saves every live entry to `path` atomically (a temporary file renamed over it), recording
    /// `value_encoding` (an afc_value_encoding) in the header. Throws afc::Error (AFC_IO_ERROR...).
    SnapshotInfo save(const std::string &path,
                      std::uint32_t value_encoding = AFC_ENCODING_BYTES) const {
        SnapshotInfo info{};
        settle(afc_cache_save(ptr_, path.c_str(), value_encoding, &info));
        return info;
    }

    /// Replaces the entries with those of the snapshot `path` (recency and remaining TTLs kept;
    /// the listener hears the old entries as cleared). The whole file is checked first: on
    /// error (AFC_IO_ERROR, AFC_SNAPSHOT_INVALID, AFC_SNAPSHOT_UNSUPPORTED, AFC_SNAPSHOT_MISMATCH
    /// unless the file records `expect_encoding`, or AFC_ENCODING_ANY) the cache is unchanged.
    SnapshotInfo load(const std::string &path,
                      std::uint32_t expect_encoding = AFC_ENCODING_BYTES) {
        SnapshotInfo info{};
        settle(afc_cache_load(ptr_, path.c_str(), expect_encoding, &info));
        return info;
    }

    /// The C handle, still owned by this object (null when closed).
    const afc_cache *native_handle() const noexcept { return ptr_; }

private:
    Cache(afc_cache *ptr, std::unique_ptr<detail::ListenerState> listener) noexcept
        : ptr_(ptr), listener_(std::move(listener)) {}

    /// Frees the C cache; the listener (kept alive until after the free) hears what was left.
    void release() noexcept {
        afc_cache_free(std::exchange(ptr_, nullptr));
        listener_.reset();
    }

    /// release(), dropping an exception the listener threw meanwhile (destructor, assignment).
    void release_quietly() noexcept {
        const bool had_listener = listener_ != nullptr;
        release();
        if (had_listener && detail::callback_depth() == 0) detail::pending_exception() = nullptr;
    }

    /// Rethrows a listener's exception of this thread's outermost call (only a cache with a
    /// listener can have one).
    void after_call() const {
        if (listener_) detail::rethrow_pending();
    }

    /// After a call that may have told the listener: a failed status first, then the listener.
    void settle(afc_status status) const {
        if (status != AFC_OK) {
            if (listener_ && detail::callback_depth() == 0) detail::pending_exception() = nullptr;
            detail::throw_status(status);
        }
        after_call();
    }

    static void check(afc_status status) { detail::check(status); }

    void put_ns(std::string_view key, std::string_view value, std::uint64_t ttl_ns) {
        settle(afc_cache_put(ptr_, detail::bytes(key), key.size(), detail::bytes(value),
                             value.size(), ttl_ns));
    }

    /// get(key) or peek(key): through the thread's scratch buffer, or a string of its own in a
    /// listener (which may run while an outer call on this thread still reads into the scratch).
    std::optional<std::string> read_copy(std::string_view key, bool is_peek) const {
        if (detail::callback_depth() > 0) {
            std::string out;
            if (!(is_peek ? peek(key, out) : get(key, out))) return std::nullopt;
            return out;
        }
        thread_local std::string scratch;
        if (!(is_peek ? peek(key, scratch) : get(key, scratch))) return std::nullopt;
        std::string out(scratch);
        if (scratch.capacity() > (std::size_t{1} << 16)) std::string().swap(scratch); // keep it small
        return out;
    }

    /// The end of a get or peek into `out` that returned `status` with `len`: the value's length
    /// set, or a value too long for `out` read again, or a miss (`out` emptied), or an error;
    /// then a listener's exception, if any.
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((noinline))
#endif
    bool finish_read(std::string_view key, std::string &out, afc_status status,
                     std::size_t len) const {
        bool found = false;
        if (status == AFC_OK) {
            out.resize(len);
            found = true;
        } else if (status == AFC_BUFFER_TOO_SMALL) {
            // The get counted its hit: read it again with peeks, without a second one.
            found = read_again(key, out, len);
            if (!found) out.clear();
        } else {
            out.clear();
            if (status != AFC_NOT_FOUND) settle(status); // throws
        }
        after_call();
        return found;
    }

    /// Reads a value known to be `len` bytes with a peek (no second hit counted), growing `out`
    /// while a concurrent put makes it longer; false if it was removed meanwhile.
    bool read_again(std::string_view key, std::string &out, std::size_t len) const {
        for (;;) {
            out.resize(len);
            const afc_status status = afc_cache_peek(ptr_, detail::bytes(key), key.size(),
                                                     detail::bytes(out), out.size(), &len);
            if (status == AFC_OK) {
                out.resize(len);
                return true;
            }
            if (status == AFC_NOT_FOUND) return false;
            if (status != AFC_BUFFER_TOO_SMALL) settle(status);
        }
    }

    afc_cache *ptr_ = nullptr;
    // Heap-allocated so that its address, given to the C library, survives moves of the Cache.
    std::unique_ptr<detail::ListenerState> listener_;
};

/// Checks the whole snapshot `path` without loading it; throws afc::Error as Cache::load does.
inline SnapshotInfo verify_snapshot(const std::string &path) {
    SnapshotInfo info{};
    detail::check(afc_snapshot_verify(path.c_str(), &info));
    return info;
}

} // namespace afc

#endif // ALPHAFORGE_CACHE_HPP

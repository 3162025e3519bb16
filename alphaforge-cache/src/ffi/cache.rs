//! `afc_cache`: building, freeing, and the single-key operations on byte values.

use super::args::{bytes, bytes_mut, object, require, ttl, write};
use super::config::{afc_config, afc_removal_cause, Listener};
use super::status::{afc_status, guard, Failure, FfiResult};
use crate::{Cache, Clock, ManualClock, PutOptions, Stats};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a cache's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Bytes,
    Handles,
}

/// A cache (opaque). Create with `afc_cache_new`, free with `afc_cache_free`. Every function on
/// it is thread-safe.
pub struct afc_cache {
    pub(crate) cache: Cache,
    pub(crate) manual: Option<ManualClock>,
    pub(crate) kind: ValueKind,
    has_listener: bool,
    /// Set by `afc_cache_free` before it reports the remaining entries: from then on nothing can
    /// be stored (`refuse_stores_while_freed`). Relaxed is enough: a free requires that no other
    /// thread uses the cache, so only the freeing thread's callbacks read it.
    closing: AtomicBool,
}

impl afc_cache {
    /// Fails unless the cache holds values of `kind`.
    pub(crate) fn expect_kind(&self, kind: ValueKind) -> FfiResult {
        if self.kind == kind {
            return Ok(());
        }
        let (this, other) = match self.kind {
            ValueKind::Bytes => ("a byte cache", "handle"),
            ValueKind::Handles => ("a handle cache", "byte-value"),
        };
        Err(Failure::new(
            afc_status::AFC_WRONG_VALUE_KIND,
            format!("{this} cannot take {other} calls"),
        ))
    }

    /// Fails while `afc_cache_free` reports the remaining entries: an entry a callback stored
    /// then would be dropped unreported (its handle leaked). Every call that stores checks it.
    pub(crate) fn refuse_stores_while_freed(&self) -> FfiResult {
        if self.closing.load(Ordering::Relaxed) {
            return Err(Failure::new(
                afc_status::AFC_INVALID_ARGUMENT,
                "the cache is being freed (afc_cache_free): nothing can be stored in it",
            ));
        }
        Ok(())
    }
}

/// The statistics of a cache (`afc_cache_stats`). Hit ratio = hits / (hits + misses).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct afc_stats {
    /// Gets that found a live entry.
    pub hits: u64,
    /// Gets that found nothing.
    pub misses: u64,
    /// Puts that added a new key.
    pub inserts: u64,
    /// Puts that replaced a live key's value.
    pub updates: u64,
    /// Entries removed to respect a bound.
    pub evictions: u64,
    /// Expired entries reclaimed.
    pub expirations: u64,
    /// Entries removed explicitly (remove, clear).
    pub removals: u64,
    /// Live entries.
    pub entries: u64,
    /// Total weight of the live entries.
    pub weight: u64,
}

impl From<Stats> for afc_stats {
    fn from(s: Stats) -> Self {
        afc_stats {
            hits: s.hits,
            misses: s.misses,
            inserts: s.inserts,
            updates: s.updates,
            evictions: s.evictions,
            expirations: s.expirations,
            removals: s.removals,
            entries: s.entries,
            weight: s.weight,
        }
    }
}

/// Builds a cache from `config` (which stays the caller's). On failure `*out` is set to NULL
/// (unless `out` is NULL) and the status is `AFC_INVALID_CONFIG` with the reason in
/// `afc_last_error()`, or `AFC_NULL_POINTER` if `config` or `out` is NULL.
///
/// # Safety
/// `config` must be NULL or a live configuration; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_new(
    config: *const afc_config,
    out: *mut *mut afc_cache,
) -> afc_status {
    guard(|| {
        require(out, "out")?;
        // SAFETY: out is non-NULL and writable per this function's contract.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: per this function's contract.
        let config = unsafe { object(config, "config") }?;
        let cache = build(config).map_err(|e| Failure::new(afc_status::AFC_INVALID_CONFIG, e))?;
        // SAFETY: as above.
        unsafe { write(out, Box::into_raw(Box::new(cache)), "out") }
    })
}

fn build(config: &afc_config) -> Result<afc_cache, String> {
    let max_entries = usize::try_from(config.max_entries)
        .map_err(|_| format!("max_entries {} is too large", config.max_entries))?;
    let mut builder = Cache::builder(max_entries);
    if let Some(max_bytes) = config.max_bytes {
        builder = builder.max_bytes(max_bytes);
    }
    if let Some(ttl) = config.default_ttl_ns {
        builder = builder.default_ttl(Duration::from_nanos(ttl));
    }
    if let Some(shards) = config.shards {
        builder = builder.shards(shards as usize);
    }
    let manual = config.manual_clock.clone();
    if let Some(clock) = &manual {
        builder = builder.clock(Clock::manual(clock));
    }
    let kind = match config.listener {
        Some(Listener::Handles(..)) => ValueKind::Handles,
        _ => ValueKind::Bytes,
    };
    match config.listener {
        Some(Listener::Bytes(listener, user_data)) => {
            builder = builder.eviction_listener(move |key, value, cause| {
                // SAFETY: the caller promised (afc_config_set_listener) that the listener may be
                // called from any thread with user_data; the pointers are valid for the call.
                unsafe {
                    listener(
                        user_data.ptr(),
                        key.as_ptr(),
                        key.len(),
                        value.as_ptr(),
                        value.len(),
                        afc_removal_cause::from(cause),
                    )
                }
            });
        }
        Some(Listener::Handles(release, user_data)) => {
            builder = builder.eviction_listener(move |key, value, cause| {
                let handle = super::handles::decode_handle(value);
                // SAFETY: as above (afc_config_set_handle_release).
                unsafe {
                    release(
                        user_data.ptr(),
                        key.as_ptr(),
                        key.len(),
                        handle,
                        afc_removal_cause::from(cause),
                    )
                }
            });
        }
        None => {}
    }
    let cache = builder.build().map_err(|e| e.to_string())?;
    Ok(afc_cache {
        cache,
        manual,
        kind,
        has_listener: config.listener.is_some(),
        closing: AtomicBool::new(false),
    })
}

/// Frees a cache (NULL is ignored). If it has a listener or handle release, every remaining entry
/// is first reported to it as `AFC_CAUSE_CLEARED`, so no handle leaks.
///
/// During those calls the callback may use the cache (get, remove, clear, save...) but cannot
/// store into it: `afc_cache_put`, `afc_cache_put_weighted`, `afc_cache_put_many`,
/// `afc_cache_put_handle`, `afc_cache_put_many_handles`, `afc_cache_load`,
/// `afc_cache_load_handles` and `afc_cache_get_or_insert` on a miss (a hit still returns its value)
/// fail with `AFC_INVALID_ARGUMENT` and store nothing; a handle not stored stays the caller's.
/// The callback must not call `afc_cache_free` on this cache.
///
/// # Safety
/// `cache` must be NULL or come from `afc_cache_new`, and no other thread may be using it. Once
/// this call has returned it must not be used (its callbacks may use it during the call, as
/// above).
#[no_mangle]
pub unsafe extern "C" fn afc_cache_free(cache: *mut afc_cache) {
    if cache.is_null() {
        return;
    }
    {
        // SAFETY: a non-NULL cache came from Box::into_raw in afc_cache_new and is live. Only
        // shared references to it are made until the callbacks below have returned: they reach
        // it through the caller's pointer as shared references too (`with_cache`).
        let shared = unsafe { &*cache };
        shared.closing.store(true, Ordering::Relaxed);
        if shared.has_listener {
            let _ = guard(|| {
                shared.cache.clear();
                Ok(())
            });
        }
    }
    // SAFETY: the pointer came from Box::into_raw in afc_cache_new and is freed once, by this
    // call; the callbacks have returned, so no reference to the cache is in use any more.
    drop(unsafe { Box::from_raw(cache) });
}

/// Runs `body` on a live cache of the given value kind.
///
/// # Safety
/// `cache` must be NULL or a live cache from `afc_cache_new`.
#[inline]
pub(crate) unsafe fn with_cache(
    cache: *const afc_cache,
    kind: Option<ValueKind>,
    body: impl FnOnce(&afc_cache) -> FfiResult,
) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        let cache = unsafe { object(cache, "cache") }?;
        if let Some(kind) = kind {
            cache.expect_kind(kind)?;
        }
        body(cache)
    })
}

/// Copies `value` into `buf` and its length into `out_len`; `AFC_BUFFER_TOO_SMALL` (with the
/// needed length written) when it does not fit.
pub(crate) fn copy_out(value: &[u8], buf: &mut [u8], out_len: &mut usize) -> FfiResult {
    *out_len = value.len();
    let dest = buf
        .get_mut(..value.len())
        .ok_or_else(|| Failure::quiet(afc_status::AFC_BUFFER_TOO_SMALL))?;
    dest.copy_from_slice(value);
    Ok(())
}

/// Shared body of get and peek.
///
/// # Safety
/// As for `afc_cache_get`.
unsafe fn read_into(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
    touch: bool,
) -> afc_status {
    // SAFETY: per the caller's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Bytes), |c| {
            let key = bytes(key, key_len, "key")?;
            let buf = bytes_mut(buf, buf_len, "buf")?;
            require(out_len, "out_len")?;
            let mut len = 0;
            let copy = |value: &[u8]| copy_out(value, buf, &mut len);
            let found = if touch {
                c.cache.read_value(key, copy)
            } else {
                c.cache.peek_value(key, copy)
            };
            let result = found.ok_or_else(|| Failure::quiet(afc_status::AFC_NOT_FOUND))?;
            write(out_len, len, "out_len")?;
            result
        })
    }
}

/// Copies the value of `key` into `buf` (`buf_len` bytes) and its length into `*out_len`; the
/// entry becomes the most recently used. `AFC_NOT_FOUND` on a miss; `AFC_BUFFER_TOO_SMALL` when
/// the value is longer than `buf_len`, with the needed length in `*out_len` (the get still counted
/// as a hit: retry with `afc_cache_peek` to leave the statistics alone).
///
/// # Safety
/// `cache` NULL or live; `key` NULL (if `key_len` is 0) or `key_len` readable bytes; `buf` NULL
/// (if `buf_len` is 0) or `buf_len` writable bytes; `out_len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_get(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe { read_into(cache, key, key_len, buf, buf_len, out_len, true) }
}

/// Like `afc_cache_get` but leaves recency and the hit/miss counters unchanged.
///
/// # Safety
/// As for `afc_cache_get`.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_peek(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe { read_into(cache, key, key_len, buf, buf_len, out_len, false) }
}

/// Writes whether `key` has a live entry to `*out` (recency and counters unchanged). Works on
/// byte and handle caches.
///
/// # Safety
/// `cache` NULL or live; `key` as in `afc_cache_get`; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_contains(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    out: *mut bool,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let key = bytes(key, key_len, "key")?;
            require(out, "out")?;
            write(out, c.cache.contains(key), "out")
        })
    }
}

/// Stores `key -> value` as the most recently used entry. `ttl_ns` is the time to live in
/// nanoseconds, 0 for the cache's default, `UINT64_MAX` for never (an endless TTL, as for the
/// default TTL of `afc_config_set_default_ttl_ns`); any other deadline past the clock's range is
/// its last instant, `UINT64_MAX - 1` (the entry still expires then). `AFC_ENTRY_TOO_HEAVY`
/// leaves the cache unchanged.
///
/// # Safety
/// `cache` NULL or live; `key`/`value` NULL (if their length is 0) or readable for their length.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_put(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    ttl_ns: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe { put(cache, key, key_len, value, value_len, ttl_ns, None) }
}

/// Like `afc_cache_put`, with the entry's weight against `max_bytes` given (instead of
/// `key_len + value_len`).
///
/// # Safety
/// As for `afc_cache_put`.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_put_weighted(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    ttl_ns: u64,
    weight: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe { put(cache, key, key_len, value, value_len, ttl_ns, Some(weight)) }
}

/// Checks a caller-given weight against the engine's 32-bit limit.
pub(crate) fn weight_arg(weight: Option<u64>) -> Result<Option<u32>, Failure> {
    match weight {
        None => Ok(None),
        Some(w) if w <= crate::MAX_ENTRY_SIZE => Ok(Some(w as u32)),
        Some(w) => Err(crate::Error::EntryTooLarge { size: w }.into()),
    }
}

/// # Safety
/// As for `afc_cache_put`.
unsafe fn put(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    ttl_ns: u64,
    weight: Option<u64>,
) -> afc_status {
    // SAFETY: per the caller's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Bytes), |c| {
            c.refuse_stores_while_freed()?;
            let key = bytes(key, key_len, "key")?;
            let value = bytes(value, value_len, "value")?;
            let options = PutOptions {
                ttl: ttl(ttl_ns),
                weight: weight_arg(weight)?,
            };
            c.cache.put_with(key, value, options)?;
            Ok(())
        })
    }
}

/// Removes `key`: `AFC_OK` if it had a live entry, `AFC_NOT_FOUND` if not. Works on byte and
/// handle caches (a removed handle is reported to the release callback).
///
/// # Safety
/// `cache` NULL or live; `key` as in `afc_cache_get`.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_remove(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let key = bytes(key, key_len, "key")?;
            match c.cache.remove(key) {
                Some(_) => Ok(()),
                None => Err(Failure::quiet(afc_status::AFC_NOT_FOUND)),
            }
        })
    }
}

/// Writes the time `key` has left, in nanoseconds, to `*out_ns` (`UINT64_MAX` if it never
/// expires). `AFC_NOT_FOUND` if it has no live entry.
///
/// # Safety
/// `cache` NULL or live; `key` as in `afc_cache_get`; `out_ns` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_remaining_ttl(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    out_ns: *mut u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let key = bytes(key, key_len, "key")?;
            require(out_ns, "out_ns")?;
            let left = c
                .cache
                .remaining_ttl(key)
                .ok_or_else(|| Failure::quiet(afc_status::AFC_NOT_FOUND))?;
            let ns = left.map_or(u64::MAX, crate::clock::saturating_nanos);
            write(out_ns, ns, "out_ns")
        })
    }
}

/// Removes every entry (the listener hears `AFC_CAUSE_CLEARED`, or `EXPIRED` for expired ones).
///
/// # Safety
/// `cache` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_clear(cache: *const afc_cache) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            c.cache.clear();
            Ok(())
        })
    }
}

/// Writes the number of live entries to `*out`.
///
/// # Safety
/// `cache` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_len(cache: *const afc_cache, out: *mut usize) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            require(out, "out")?;
            write(out, c.cache.len(), "out")
        })
    }
}

/// Writes the total weight of the live entries to `*out`.
///
/// # Safety
/// `cache` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_weight(cache: *const afc_cache, out: *mut u64) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            require(out, "out")?;
            write(out, c.cache.weight(), "out")
        })
    }
}

/// Writes the statistics to `*out`.
///
/// # Safety
/// `cache` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_stats(
    cache: *const afc_cache,
    out: *mut afc_stats,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            require(out, "out")?;
            write(out, afc_stats::from(c.cache.stats()), "out")
        })
    }
}

/// Sets every counter back to zero.
///
/// # Safety
/// `cache` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_reset_stats(cache: *const afc_cache) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            c.cache.reset_stats();
            Ok(())
        })
    }
}

/// Reclaims every expired entry now; writes how many to `*out_expired` unless it is NULL.
///
/// # Safety
/// `cache` NULL or live; `out_expired` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_expire(
    cache: *const afc_cache,
    out_expired: *mut usize,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let expired = c.cache.expire();
            if !out_expired.is_null() {
                write(out_expired, expired, "out_expired")?;
            }
            Ok(())
        })
    }
}

/// Changes the entry bound, evicting least recently used entries beyond it. It must be at least
/// the shard count (`AFC_INVALID_ARGUMENT` otherwise).
///
/// # Safety
/// `cache` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_resize(cache: *const afc_cache, max_entries: u64) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let max = usize::try_from(max_entries).unwrap_or(usize::MAX);
            c.cache.resize(max)?;
            Ok(())
        })
    }
}

/// Changes the byte bound of a cache built with one (`afc_config_set_max_bytes`), evicting beyond
/// it. `AFC_INVALID_ARGUMENT` for a cache built without a byte bound (one cannot be added
/// later), or for 0.
///
/// # Safety
/// `cache` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_set_max_bytes(
    cache: *const afc_cache,
    max_bytes: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            c.cache.set_max_bytes(max_bytes)?;
            Ok(())
        })
    }
}

/// Runs `body` with the cache's manual clock.
///
/// # Safety
/// `cache` NULL or live.
unsafe fn with_manual_clock(
    cache: *const afc_cache,
    body: impl FnOnce(&ManualClock) -> FfiResult,
) -> afc_status {
    // SAFETY: per the caller's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let clock = c.manual.as_ref().ok_or_else(|| {
                Failure::new(
                    afc_status::AFC_NOT_MANUAL_CLOCK,
                    "this cache uses the monotonic clock; build it with afc_config_use_manual_clock",
                )
            })?;
            body(clock)
        })
    }
}

/// Sets a manual clock to `now_ns` (it may move backwards).
///
/// # Safety
/// `cache` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_clock_set(cache: *const afc_cache, now_ns: u64) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_manual_clock(cache, |clock| {
            clock.set(Duration::from_nanos(now_ns));
            Ok(())
        })
    }
}

/// Moves a manual clock forward by `by_ns` (saturating).
///
/// # Safety
/// `cache` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_clock_advance(
    cache: *const afc_cache,
    by_ns: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_manual_clock(cache, |clock| {
            clock.advance(Duration::from_nanos(by_ns));
            Ok(())
        })
    }
}

/// Writes the cache clock's time in nanoseconds to `*out_ns` (either kind of clock).
///
/// # Safety
/// `cache` NULL or live; `out_ns` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_clock_now(
    cache: *const afc_cache,
    out_ns: *mut u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            require(out_ns, "out_ns")?;
            write(out_ns, c.cache.clock().now_nanos(), "out_ns")
        })
    }
}

/// Where a compute callback puts the value it computed (opaque).
pub struct afc_value_out {
    value: Option<Vec<u8>>,
}

/// Computes the value of `key` for `afc_cache_get_or_insert`: call `afc_value_out_set` once and
/// return 0, or return non-zero for failure (nothing is stored). Runs with no lock held, on the
/// calling thread. It must return normally: no C++ exception or `longjmp` may leave it through
/// the library (catch them inside and return non-zero), and it must not free the cache.
pub type afc_compute_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        key: *const u8,
        key_len: usize,
        out: *mut afc_value_out,
    ) -> i32,
>;

/// Hands the computed value to the cache (copied; `value` stays the caller's).
///
/// # Safety
/// `out` NULL or the pointer given to the compute callback, during that call; `value` NULL (if
/// `value_len` is 0) or readable.
#[no_mangle]
pub unsafe extern "C" fn afc_value_out_set(
    out: *mut afc_value_out,
    value: *const u8,
    value_len: usize,
) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        let out = unsafe { super::args::object_mut(out, "out") }?;
        // SAFETY: per this function's contract.
        let value = unsafe { bytes(value, value_len, "value") }?;
        out.value = Some(value.to_vec());
        Ok(())
    })
}

/// The value of `key`, computed by `compute` and stored on a miss. When threads race on one key,
/// one computes and the others wait for its value. Copies the value as `afc_cache_get` does.
/// `AFC_COMPUTE_FAILED` if `compute` returned non-zero or set no value.
///
/// `compute` may call the cache. An `afc_cache_get_or_insert` of `key` itself from `compute`
/// (directly, or from the compute of another key it asks for on this thread) would wait for
/// itself forever: it returns `AFC_INVALID_ARGUMENT` at once instead (`compute` then usually
/// fails, and the outer call with it). Two threads whose computes each ask for the key the
/// other is computing deadlock: that cycle is not detected.
///
/// # Safety
/// As for `afc_cache_get`; `compute` must be callable with `user_data` on this thread.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_get_or_insert(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    compute: afc_compute_fn,
    user_data: *mut c_void,
    buf: *mut u8,
    buf_len: usize,
    out_len: *mut usize,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Bytes), |c| {
            let key = bytes(key, key_len, "key")?;
            let buf = bytes_mut(buf, buf_len, "buf")?;
            require(out_len, "out_len")?;
            let compute = compute.ok_or_else(|| super::args::null("compute"))?;
            let asked_again = || {
                Failure::new(
                    afc_status::AFC_INVALID_ARGUMENT,
                    "afc_cache_get_or_insert: the compute callback asked for the key it is \
                     computing (the call would wait for itself forever)",
                )
            };
            let value = c.cache.get_or_insert_refusing_reentry(
                key,
                || {
                    c.refuse_stores_while_freed()?;
                    let mut out = afc_value_out { value: None };
                    // SAFETY: the caller promised compute is callable here with user_data; key and
                    // out are valid for the call.
                    let code = compute(user_data, key.as_ptr(), key.len(), &mut out);
                    match (code, out.value) {
                        (0, Some(value)) => Ok(value),
                        (0, None) => Err(Failure::new(
                            afc_status::AFC_COMPUTE_FAILED,
                            "the compute callback returned 0 without calling afc_value_out_set",
                        )),
                        (code, _) => Err(Failure::new(
                            afc_status::AFC_COMPUTE_FAILED,
                            format!("the compute callback failed with code {code}"),
                        )),
                    }
                },
                asked_again,
            )?;
            let mut len = 0;
            let result = copy_out(&value, buf, &mut len);
            write(out_len, len, "out_len")?;
            result
        })
    }
}

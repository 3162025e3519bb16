//! `afc_config`: the settings of a cache to be built by `afc_cache_new`.

use super::args::{object_mut, write};
use super::status::{afc_status, guard};
use crate::RemovalCause;
use std::ffi::c_void;

/// Why an entry left the cache, as the listener hears it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum afc_removal_cause {
    /// Removed to respect a bound.
    AFC_CAUSE_EVICTED = 0,
    /// Its deadline passed.
    AFC_CAUSE_EXPIRED = 1,
    /// Removed by `afc_cache_remove`.
    AFC_CAUSE_REMOVED = 2,
    /// Replaced by a put of the same key (the old value is reported).
    AFC_CAUSE_REPLACED = 3,
    /// Removed by `afc_cache_clear` or by `afc_cache_free`.
    AFC_CAUSE_CLEARED = 4,
}

impl From<RemovalCause> for afc_removal_cause {
    fn from(cause: RemovalCause) -> Self {
        match cause {
            RemovalCause::Evicted => afc_removal_cause::AFC_CAUSE_EVICTED,
            RemovalCause::Expired => afc_removal_cause::AFC_CAUSE_EXPIRED,
            RemovalCause::Removed => afc_removal_cause::AFC_CAUSE_REMOVED,
            RemovalCause::Replaced => afc_removal_cause::AFC_CAUSE_REPLACED,
            RemovalCause::Cleared => afc_removal_cause::AFC_CAUSE_CLEARED,
        }
    }
}

/// Told of every entry of a byte cache that leaves it, after the cache's locks are released (it
/// may call the cache). It may run on any thread that uses the cache. `key` and `value` are valid
/// only during the call. During `afc_cache_free` it hears each remaining entry as
/// `AFC_CAUSE_CLEARED` and may still call the cache, but nothing can be stored then (see
/// `afc_cache_free`). It must return normally: no C++ exception or `longjmp` may leave it
/// through the library (catch them inside), and it must not call `afc_cache_free` on its
/// cache.
pub type afc_listener_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
        cause: afc_removal_cause,
    ),
>;

/// Told of every handle that leaves a handle cache: the caller releases what the handle stands
/// for. Every handle stored is reported exactly once (evicted, expired, removed, replaced, cleared,
/// or cleared by `afc_cache_free`), so none can leak. It runs as a listener does (after the locks
/// are released, on any thread using the cache; it may call the cache). During `afc_cache_free`
/// nothing can be stored: a put of a handle then fails with `AFC_INVALID_ARGUMENT` and the handle
/// stays the caller's (see `afc_cache_free`). As a listener, it must return normally (no C++
/// exception or `longjmp` through the library) and must not call `afc_cache_free` on its cache.
pub type afc_handle_release_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        key: *const u8,
        key_len: usize,
        handle: u64,
        cause: afc_removal_cause,
    ),
>;

/// The caller's `user_data` pointer, passed back to its callbacks.
#[derive(Clone, Copy)]
pub(crate) struct UserData(*mut c_void);

impl UserData {
    /// The pointer (a method, so that closures capture the whole `Send + Sync` wrapper).
    pub(crate) fn ptr(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the pointer is never dereferenced in Rust, only handed back to the caller's callback;
// the header documents that callbacks may run on any thread using the cache, so the caller makes
// whatever it points to safe to use from those threads.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

/// The listener a configuration installs.
#[derive(Clone, Copy)]
pub(crate) enum Listener {
    Bytes(
        unsafe extern "C" fn(*mut c_void, *const u8, usize, *const u8, usize, afc_removal_cause),
        UserData,
    ),
    Handles(
        unsafe extern "C" fn(*mut c_void, *const u8, usize, u64, afc_removal_cause),
        UserData,
    ),
}

/// The settings of a cache (opaque). Create with `afc_config_new`, free with `afc_config_free`.
pub struct afc_config {
    pub(crate) max_entries: u64,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) default_ttl_ns: Option<u64>,
    pub(crate) shards: Option<u32>,
    pub(crate) manual_clock: Option<crate::ManualClock>,
    pub(crate) listener: Option<Listener>,
}

/// Creates a configuration for a cache of at most `max_entries` entries (checked by
/// `afc_cache_new`). Free it with `afc_config_free`; a cache built from it does not need it.
///
/// # Safety
/// `out` must be NULL or point to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn afc_config_new(max_entries: u64, out: *mut *mut afc_config) -> afc_status {
    guard(|| {
        super::args::require(out, "out")?;
        let config = Box::new(afc_config {
            max_entries,
            max_bytes: None,
            default_ttl_ns: None,
            shards: None,
            manual_clock: None,
            listener: None,
        });
        // SAFETY: out is NULL (refused) or valid for a write, per this function's contract.
        unsafe { write(out, Box::into_raw(config), "out") }
    })
}

/// Frees a configuration (NULL is ignored).
///
/// # Safety
/// `config` must be NULL or come from `afc_config_new`, and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn afc_config_free(config: *mut afc_config) {
    if !config.is_null() {
        // SAFETY: a non-NULL config came from Box::into_raw in afc_config_new and is freed once.
        drop(unsafe { Box::from_raw(config) });
    }
}

/// Runs a setter on a configuration.
///
/// # Safety
/// `config` must be NULL or a live configuration not used by another thread meanwhile.
unsafe fn set(config: *mut afc_config, apply: impl FnOnce(&mut afc_config)) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        let config = unsafe { object_mut(config, "config") }?;
        apply(config);
        Ok(())
    })
}

/// Bounds the total weight of the entries (by default `key_len + value_len` each).
///
/// # Safety
/// `config` must be NULL or a live configuration not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn afc_config_set_max_bytes(
    config: *mut afc_config,
    max_bytes: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe { set(config, |c| c.max_bytes = Some(max_bytes)) }
}

/// Gives entries put without a TTL of their own this time to live, in nanoseconds (0 is refused
/// by `afc_cache_new`; `UINT64_MAX` is endless: such entries never expire).
///
/// # Safety
/// `config` must be NULL or a live configuration not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn afc_config_set_default_ttl_ns(
    config: *mut afc_config,
    ttl_ns: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe { set(config, |c| c.default_ttl_ns = Some(ttl_ns)) }
}

/// Sets the shard count (1 gives exact global LRU order; the default depends on the machine).
/// It must be between 1 and min(1024, `max_entries`), so that every shard holds at least one
/// entry: `afc_cache_new` refuses another count with `AFC_INVALID_CONFIG`.
///
/// # Safety
/// `config` must be NULL or a live configuration not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn afc_config_set_shards(config: *mut afc_config, shards: u32) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe { set(config, |c| c.shards = Some(shards)) }
}

/// Gives the cache a manual clock starting at `start_ns`, moved only by `afc_cache_clock_set` and
/// `afc_cache_clock_advance` (tests, backtests on simulated time).
///
/// # Safety
/// `config` must be NULL or a live configuration not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn afc_config_use_manual_clock(
    config: *mut afc_config,
    start_ns: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        set(config, |c| {
            let clock = crate::ManualClock::new();
            clock.set(std::time::Duration::from_nanos(start_ns));
            c.manual_clock = Some(clock);
        })
    }
}

/// Gives the cache the shared manual clock `clock` (several caches may share one; the
/// configuration and every cache built from it keep their own reference, so `clock` may be freed
/// at any time).
///
/// # Safety
/// `config` must be NULL or a live configuration not used by another thread meanwhile; `clock`
/// NULL or live.
#[no_mangle]
pub unsafe extern "C" fn afc_config_use_clock(
    config: *mut afc_config,
    clock: *const super::clock::afc_clock,
) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        let clock = unsafe { super::args::object(clock, "clock") }?;
        // SAFETY: per this function's contract.
        let config = unsafe { object_mut(config, "config") }?;
        config.manual_clock = Some(clock.0.clone());
        Ok(())
    })
}

/// Installs a listener for a byte cache (replacing any listener or handle release set before).
/// What it may do during `afc_cache_free`: see `afc_cache_free`.
///
/// # Safety
/// `config` must be NULL or a live configuration not used by another thread meanwhile.
/// `listener` must be safe to call from any thread using the cache, with `user_data`, for as long
/// as the cache lives.
#[no_mangle]
pub unsafe extern "C" fn afc_config_set_listener(
    config: *mut afc_config,
    listener: afc_listener_fn,
    user_data: *mut c_void,
) -> afc_status {
    let Some(listener) = listener else {
        return guard(|| Err(super::args::null("listener")));
    };
    // SAFETY: per this function's contract.
    unsafe {
        set(config, |c| {
            c.listener = Some(Listener::Bytes(listener, UserData(user_data)))
        })
    }
}

/// Makes the cache a handle cache: its values are opaque 64-bit handles (`afc_cache_put_handle`),
/// each reported to `release` exactly once when it leaves the cache (those still stored by
/// `afc_cache_free`, during which `release` cannot store new ones: see `afc_cache_free`).
///
/// # Safety
/// As for `afc_config_set_listener`.
#[no_mangle]
pub unsafe extern "C" fn afc_config_set_handle_release(
    config: *mut afc_config,
    release: afc_handle_release_fn,
    user_data: *mut c_void,
) -> afc_status {
    let Some(release) = release else {
        return guard(|| Err(super::args::null("release")));
    };
    // SAFETY: per this function's contract.
    unsafe {
        set(config, |c| {
            c.listener = Some(Listener::Handles(release, UserData(user_data)))
        })
    }
}

//! Handle caches: values are opaque 64-bit handles with caller-given weights (the Python binding
//! keeps live objects this way, without copying them through C). Every stored handle is reported
//! to the release callback exactly once when it leaves: on eviction, expiry, removal, replacement,
//! clear, and `afc_cache_free`. A put that fails did not take the handle.

use super::args::{array, array_mut, bytes, require, ttl, write};
use super::batch::split_keys;
use super::cache::{afc_cache, weight_arg, with_cache, ValueKind};
use super::status::{afc_status, Failure};
use crate::PutOptions;

/// The handle stored in a value (values of a handle cache are its 8 little-endian bytes).
pub(crate) fn decode_handle(value: &[u8]) -> u64 {
    value.try_into().map_or(0, u64::from_le_bytes)
}

/// Stores `key -> handle` with `weight` against `max_bytes` (0 is allowed) and `ttl_ns` (0 for
/// the default). A handle replaced under the same key is released with `AFC_CAUSE_REPLACED`.
///
/// # Safety
/// `cache` NULL or live; `key` NULL (if `key_len` is 0) or readable for `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_put_handle(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    handle: u64,
    weight: u64,
    ttl_ns: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Handles), |c| {
            let key = bytes(key, key_len, "key")?;
            let options = PutOptions {
                ttl: ttl(ttl_ns),
                weight: weight_arg(Some(weight))?,
            };
            c.cache.put_with(key, handle.to_le_bytes(), options)?;
            Ok(())
        })
    }
}

/// Writes the handle under `key` to `*out` and makes it the most recently used entry;
/// `AFC_NOT_FOUND` on a miss. The handle stays owned by the cache.
///
/// # Safety
/// `cache` NULL or live; `key` as in `afc_cache_put_handle`; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_get_handle(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    out: *mut u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe { read_handle(cache, key, key_len, out, true) }
}

/// Like `afc_cache_get_handle`, without changing recency or counters.
///
/// # Safety
/// As for `afc_cache_get_handle`.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_peek_handle(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    out: *mut u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe { read_handle(cache, key, key_len, out, false) }
}

/// # Safety
/// As for `afc_cache_get_handle`.
unsafe fn read_handle(
    cache: *const afc_cache,
    key: *const u8,
    key_len: usize,
    out: *mut u64,
    touch: bool,
) -> afc_status {
    // SAFETY: per the caller's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Handles), |c| {
            let key = bytes(key, key_len, "key")?;
            require(out, "out")?;
            let found = if touch {
                c.cache.read_value(key, decode_handle)
            } else {
                c.cache.peek_value(key, decode_handle)
            };
            let handle = found.ok_or_else(|| Failure::quiet(afc_status::AFC_NOT_FOUND))?;
            write(out, handle, "out")
        })
    }
}

/// Gets `n` keys in one call. Keys are concatenated in `keys`, their lengths in `key_lens[n]`.
/// For each key `i`, `out_found[i]` is 1 on a hit (with the handle in `out_handles[i]`) or 0.
///
/// # Safety
/// `cache` NULL or live; `keys` readable for the sum of `key_lens`; `key_lens` readable and
/// `out_handles`, `out_found` writable for `n` items (NULL only if `n` is 0).
#[no_mangle]
pub unsafe extern "C" fn afc_cache_get_many_handles(
    cache: *const afc_cache,
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    out_handles: *mut u64,
    out_found: *mut u8,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Handles), |c| {
            let keys = split_keys(keys, key_lens, n)?;
            let handles = array_mut(out_handles, n, "out_handles")?;
            let found = array_mut(out_found, n, "out_found")?;
            found.fill(0);
            c.cache.read_many(&keys, |i, value| {
                handles[i] = decode_handle(value);
                found[i] = 1;
            });
            Ok(())
        })
    }
}

/// Stores `n` handles in one call: keys concatenated in `keys` with lengths `key_lens[n]`,
/// `handles[n]`, `weights[n]`, one `ttl_ns` (0 for the default). All or none: if any entry is
/// refused, no handle was taken.
///
/// # Safety
/// `cache` NULL or live; `keys` readable for the sum of `key_lens`; `key_lens`, `handles` and
/// `weights` readable for `n` items (NULL only if `n` is 0).
#[no_mangle]
pub unsafe extern "C" fn afc_cache_put_many_handles(
    cache: *const afc_cache,
    keys: *const u8,
    key_lens: *const usize,
    handles: *const u64,
    weights: *const u64,
    n: usize,
    ttl_ns: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Handles), |c| {
            let keys = split_keys(keys, key_lens, n)?;
            let handles = array(handles, n, "handles")?;
            let weights = array(weights, n, "weights")?;
            let values: Vec<[u8; 8]> = handles.iter().map(|h| h.to_le_bytes()).collect();
            let entries = keys
                .iter()
                .zip(&values)
                .zip(weights)
                .map(|((key, value), &weight)| {
                    let options = PutOptions {
                        ttl: ttl(ttl_ns),
                        weight: weight_arg(Some(weight))?,
                    };
                    Ok((*key, &value[..], options))
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            c.cache.put_entries(&entries)?;
            Ok(())
        })
    }
}

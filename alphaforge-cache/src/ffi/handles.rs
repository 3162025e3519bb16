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
            c.refuse_stores_while_freed()?;
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
            c.refuse_stores_while_freed()?;
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

/// Replaces the entries of a handle cache with `n` given ones, atomically, as `afc_cache_load`
/// replaces a byte cache's with a snapshot's (for a binding that reads the snapshot file itself
/// and keeps the values behind handles, as the Python package does). Keys are concatenated in
/// `keys` with lengths `key_lens[n]`; entry `i` has `handles[i]`, `weights[i]` (against
/// `max_bytes`) and `ttls_ns[i]` nanoseconds to live from now (0: it never expires; the
/// cache's default TTL does not apply); least recently used first.
///
/// The result is that of clearing the cache and putting the entries in order: the previous
/// entries are released as `afc_cache_clear` releases them (`AFC_CAUSE_CLEARED`, or
/// `AFC_CAUSE_EXPIRED`) and counted as removals; with less room than the entries need, the most
/// recently used ones that fit are kept (each shard's entry bound and the byte bound enforced
/// as puts enforce them); an entry heavier than `max_bytes` on its own is skipped; a key given
/// twice keeps its later entry. The entries kept count as inserts; those that did not fit are
/// neither counted nor released. `out_kept` (NULL, or writable for `n` bytes) receives 1 for
/// each entry whose handle the cache took (it is released once when it leaves, as any other),
/// 0 for each it did not take (the handle stays the caller's). Handles need not be distinct.
///
/// Every argument is checked first (`AFC_ENTRY_TOO_LARGE` for a key or weight beyond the
/// engine's limits, `AFC_NULL_POINTER`, `AFC_INVALID_ARGUMENT`): on an error nothing changed
/// and no handle was taken.
///
/// # Safety
/// `cache` NULL or live; `keys` readable for the sum of `key_lens`; `key_lens`, `handles`,
/// `weights` and `ttls_ns` readable for `n` items and `out_kept` NULL or writable for `n` bytes
/// (NULL only if `n` is 0, except `out_kept`).
#[no_mangle]
pub unsafe extern "C" fn afc_cache_load_handles(
    cache: *const afc_cache,
    keys: *const u8,
    key_lens: *const usize,
    handles: *const u64,
    weights: *const u64,
    ttls_ns: *const u64,
    n: usize,
    out_kept: *mut u8,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Handles), |c| {
            c.refuse_stores_while_freed()?;
            let keys = split_keys(keys, key_lens, n)?;
            let handles = array(handles, n, "handles")?;
            let weights = array(weights, n, "weights")?;
            let ttls = array(ttls_ns, n, "ttls_ns")?;
            let mut scratch = Vec::new();
            let kept = if out_kept.is_null() {
                scratch.resize(n, 0u8);
                &mut scratch[..]
            } else {
                array_mut(out_kept, n, "out_kept")?
            };
            for key in &keys {
                // As a put checks it: the key and the 8-byte handle within the entry limits.
                let size = key.len() as u64 + 8;
                if key.len() as u64 > crate::MAX_ENTRY_SIZE || size > crate::MAX_ENTRY_SIZE + 1 {
                    return Err(crate::Error::EntryTooLarge { size }.into());
                }
            }
            let weights = weights
                .iter()
                .map(|&w| weight_arg(Some(w)).map(|w| w.unwrap_or_default()))
                .collect::<Result<Vec<u32>, Failure>>()?;
            let ttls: Vec<Option<u64>> = ttls.iter().map(|&t| (t != 0).then_some(t)).collect();
            c.cache.load_handles(&keys, handles, &weights, &ttls, kept);
            Ok(())
        })
    }
}

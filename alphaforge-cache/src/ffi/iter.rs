//! `afc_iter`: a snapshot of a cache's live entries, most recently used first.

use super::args::{object, object_mut, require, write};
use super::cache::{afc_cache, with_cache};
use super::status::{afc_status, guard, Failure};
use crate::record::{Record, NO_DEADLINE};

/// A snapshot of entries (opaque): made by `afc_iter_new`, `afc_snapshot_iter_new` or
/// `afc_cache_expire_keys`, read with `afc_iter_next`, freed with `afc_iter_free`. It holds
/// copies, so the cache may change (or be freed) while it is read. Unlike a cache, an iterator
/// is not thread-safe: one thread at a time may use it.
pub struct afc_iter {
    entries: Vec<IterEntry>,
    next: usize,
}

/// One entry of an iterator, copied out of the cache.
struct IterEntry {
    key: Vec<u8>,
    value: Vec<u8>,
    /// Nanoseconds left at the time the iterator was made; `u64::MAX`: never expires.
    ttl_ns: u64,
    weight: u32,
}

impl IterEntry {
    fn of(record: &Record, now: u64) -> IterEntry {
        IterEntry {
            key: record.key().to_vec(),
            value: record.value().to_vec(),
            ttl_ns: match record.deadline {
                NO_DEADLINE => u64::MAX,
                deadline => deadline.saturating_sub(now),
            },
            weight: record.weight(),
        }
    }
}

/// Boxes an iterator over `entries` and writes it to `out`.
///
/// # Safety
/// `out` non-NULL and writable (checked by the caller with `require`).
unsafe fn give(out: *mut *mut afc_iter, entries: Vec<IterEntry>) -> Result<(), Failure> {
    let iter = Box::new(afc_iter { entries, next: 0 });
    // SAFETY: per this function's contract.
    unsafe { write(out, Box::into_raw(iter), "out") }
}

/// Takes a snapshot of `cache`'s live entries (see the Rust `Cache::iter` for the order).
///
/// # Safety
/// `cache` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_iter_new(
    cache: *const afc_cache,
    out: *mut *mut afc_iter,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            require(out, "out")?;
            give(out, c.cache.collect_live(IterEntry::of))
        })
    }
}

/// Takes a snapshot of `cache`'s live entries in the order a snapshot file lists them: least
/// recently used first, each shard's entries in its exact order, several shards merged as
/// `afc_cache_save` merges them (with one shard: exactly the reverse of `afc_iter_new`'s
/// order), the TTLs from one reading of the clock. For a binding that writes the snapshot file
/// itself, as the Python package does for its handle caches (`docs/snapshot-format.md`): read
/// the entries with `afc_iter_next` and their weights with `afc_iter_weight`.
///
/// # Safety
/// `cache` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_snapshot_iter_new(
    cache: *const afc_cache,
    out: *mut *mut afc_iter,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            require(out, "out")?;
            give(out, c.cache.collect_in_file_order(IterEntry::of))
        })
    }
}

/// Reclaims every expired entry now (as `afc_cache_expire` does) and returns their keys as an
/// iterator: each entry's key, an empty value and a TTL of 0. Most recently used first.
///
/// # Safety
/// `cache` NULL or live; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_expire_keys(
    cache: *const afc_cache,
    out: *mut *mut afc_iter,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            require(out, "out")?;
            let entries = c
                .cache
                .expire_keys()
                .into_iter()
                .map(|key| IterEntry {
                    key,
                    value: Vec::new(),
                    ttl_ns: 0,
                    weight: 0,
                })
                .collect();
            give(out, entries)
        })
    }
}

/// Writes the next entry: pointers to its key and value, their lengths, and its remaining TTL in
/// nanoseconds (`UINT64_MAX` if it never expires). The pointers are the iterator's copies and
/// stay valid until `afc_iter_free`, whatever is called meanwhile. `AFC_NOT_FOUND` when there
/// are no more entries. A handle cache's values are the handle's 8 little-endian bytes.
///
/// # Safety
/// `iter` NULL or live and not used by another thread meanwhile; every out-pointer writable.
#[no_mangle]
pub unsafe extern "C" fn afc_iter_next(
    iter: *mut afc_iter,
    out_key: *mut *const u8,
    out_key_len: *mut usize,
    out_value: *mut *const u8,
    out_value_len: *mut usize,
    out_ttl_ns: *mut u64,
) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        let iter = unsafe { object_mut(iter, "iter") }?;
        require(out_key, "out_key")?;
        require(out_key_len, "out_key_len")?;
        require(out_value, "out_value")?;
        require(out_value_len, "out_value_len")?;
        require(out_ttl_ns, "out_ttl_ns")?;
        let entry = iter
            .entries
            .get(iter.next)
            .ok_or_else(|| Failure::quiet(afc_status::AFC_NOT_FOUND))?;
        iter.next += 1;
        let ttl = entry.ttl_ns;
        // SAFETY: every pointer was checked non-NULL and is writable per this function's contract.
        unsafe {
            write(out_key, entry.key.as_ptr(), "out_key")?;
            write(out_key_len, entry.key.len(), "out_key_len")?;
            write(out_value, entry.value.as_ptr(), "out_value")?;
            write(out_value_len, entry.value.len(), "out_value_len")?;
            write(out_ttl_ns, ttl, "out_ttl_ns")
        }
    })
}

/// Writes the weight of the entry `afc_iter_next` returned last to `*out` (an iterator of
/// `afc_cache_expire_keys` gives 0). `AFC_NOT_FOUND` before the first `afc_iter_next`.
///
/// # Safety
/// `iter` NULL or live, and not used by `afc_iter_next` on another thread meanwhile (it moves
/// the iterator on); `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_iter_weight(iter: *const afc_iter, out: *mut u64) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        let iter = unsafe { object(iter, "iter") }?;
        require(out, "out")?;
        let entry = iter
            .next
            .checked_sub(1)
            .and_then(|last| iter.entries.get(last))
            .ok_or_else(|| Failure::quiet(afc_status::AFC_NOT_FOUND))?;
        // SAFETY: per this function's contract.
        unsafe { write(out, u64::from(entry.weight), "out") }
    })
}

/// Writes how many entries are left to `*out`.
///
/// # Safety
/// `iter` NULL or live, and not used by `afc_iter_next` on another thread meanwhile; `out` NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_iter_remaining(iter: *const afc_iter, out: *mut usize) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        let iter = unsafe { object(iter, "iter") }?;
        // SAFETY: per this function's contract.
        unsafe { write(out, iter.entries.len() - iter.next, "out") }
    })
}

/// Frees an iterator (NULL is ignored), and with it the keys and values its `afc_iter_next`
/// pointed to.
///
/// # Safety
/// `iter` NULL or from `afc_iter_new`, `afc_snapshot_iter_new` or `afc_cache_expire_keys`, not
/// used afterwards.
#[no_mangle]
pub unsafe extern "C" fn afc_iter_free(iter: *mut afc_iter) {
    if !iter.is_null() {
        // SAFETY: a non-NULL iter came from Box::into_raw in `give` (afc_iter_new,
        // afc_snapshot_iter_new, afc_cache_expire_keys) and is freed once.
        drop(unsafe { Box::from_raw(iter) });
    }
}

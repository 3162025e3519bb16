//! Batch calls on byte caches: many keys per boundary crossing. Keys travel concatenated in one
//! buffer with an array of lengths, so a caller marshals two buffers, not one pointer per key.

use super::args::{array, array_mut, bytes, bytes_mut, require, ttl, write};
use super::cache::{afc_cache, with_cache, ValueKind};
use super::status::{afc_status, Failure};
use crate::packed_keys;
use crate::PutOptions;

/// The length and offset reported for a key with no live entry.
pub const AFC_MISSING: usize = usize::MAX;

/// Splits concatenated keys by their lengths.
///
/// # Safety
/// `keys` readable for the sum of `key_lens`; `key_lens` readable for `n` items.
pub(crate) unsafe fn split_keys<'a>(
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
) -> Result<Vec<&'a [u8]>, Failure> {
    // SAFETY: per this function's contract.
    unsafe { split_buffers(keys, key_lens, n, ["keys", "key_lens"]) }
}

/// Splits concatenated byte strings by their lengths; `names` name the two arguments in errors.
///
/// # Safety
/// `data` readable for the sum of `lens`; `lens` readable for `n` items.
pub(crate) unsafe fn split_buffers<'a>(
    data: *const u8,
    lens: *const usize,
    n: usize,
    names: [&str; 2],
) -> Result<Vec<&'a [u8]>, Failure> {
    // SAFETY: per this function's contract.
    let (data, lens) = unsafe { packed_buffers(data, lens, n, names) }?;
    Ok(packed_keys::split(data, lens).collect())
}

/// Concatenated byte strings and their lengths, checked (the lengths add up to the buffer's
/// length); `names` name the two arguments in errors.
///
/// # Safety
/// `data` readable for the sum of `lens`; `lens` readable for `n` items.
unsafe fn packed_buffers<'a>(
    data: *const u8,
    lens: *const usize,
    n: usize,
    names: [&str; 2],
) -> Result<(&'a [u8], &'a [usize]), Failure> {
    // SAFETY: per this function's contract.
    let lens = unsafe { array(lens, n, names[1]) }?;
    let total = packed_keys::total_len(lens).ok_or_else(|| {
        Failure::new(
            afc_status::AFC_INVALID_ARGUMENT,
            format!(
                "the lengths in {} add up to more than any buffer can hold",
                names[1]
            ),
        )
    })?;
    // SAFETY: per this function's contract.
    let data = unsafe { bytes(data, total, names[0]) }?;
    Ok((data, lens))
}

/// Gets `n` keys in one call (keys concatenated in `keys`, lengths in `key_lens[n]`). Hit values
/// are packed into `values` (`values_cap` bytes) in no particular order: key `i`'s value is at
/// `value_offsets[i]`, `value_lens[i]` bytes long; a miss has both set to `AFC_MISSING`.
/// `*out_needed` receives the total bytes of all hits. If they do not fit, the call returns
/// `AFC_BUFFER_TOO_SMALL`, and values that did not fit have offset `AFC_MISSING` but their real
/// length (the gets still counted).
///
/// # Safety
/// `cache` NULL or live; `keys` readable for the sum of `key_lens`; `key_lens` readable and
/// `value_offsets`, `value_lens` writable for `n` items; `values` writable for `values_cap` bytes
/// (NULL only when the count or capacity is 0); `out_needed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_get_many(
    cache: *const afc_cache,
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    values: *mut u8,
    values_cap: usize,
    value_offsets: *mut usize,
    value_lens: *mut usize,
    out_needed: *mut usize,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Bytes), |c| {
            let keys = split_keys(keys, key_lens, n)?;
            // With no keys nothing is copied: `values` may then be NULL whatever its capacity.
            let values_cap = if n == 0 { 0 } else { values_cap };
            let values = bytes_mut(values, values_cap, "values")?;
            let offsets = array_mut(value_offsets, n, "value_offsets")?;
            let lens = array_mut(value_lens, n, "value_lens")?;
            require(out_needed, "out_needed")?;
            offsets.fill(AFC_MISSING);
            lens.fill(AFC_MISSING);
            let mut used = 0usize;
            let mut needed = 0usize;
            c.cache.read_many(&keys, |i, value| {
                lens[i] = value.len();
                needed += value.len();
                if let Some(dest) = values.get_mut(used..used + value.len()) {
                    dest.copy_from_slice(value);
                    offsets[i] = used;
                    used += value.len();
                }
            });
            write(out_needed, needed, "out_needed")?;
            if needed > values_cap {
                return Err(Failure::quiet(afc_status::AFC_BUFFER_TOO_SMALL));
            }
            Ok(())
        })
    }
}

/// Stores `n` entries in one call: keys concatenated in `keys` (lengths `key_lens[n]`), values
/// concatenated in `values` (lengths `value_lens[n]`), one `ttl_ns` (0 for the default). All or
/// none: if any entry is refused, nothing is stored.
///
/// # Safety
/// `cache` NULL or live; `keys`/`values` readable for the sums of their lengths; `key_lens` and
/// `value_lens` readable for `n` items (NULL only when the count is 0).
#[no_mangle]
pub unsafe extern "C" fn afc_cache_put_many(
    cache: *const afc_cache,
    keys: *const u8,
    key_lens: *const usize,
    values: *const u8,
    value_lens: *const usize,
    n: usize,
    ttl_ns: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, Some(ValueKind::Bytes), |c| {
            c.refuse_stores_while_freed()?;
            let keys = split_keys(keys, key_lens, n)?;
            let values = split_buffers(values, value_lens, n, ["values", "value_lens"])?;
            let options = PutOptions {
                ttl: ttl(ttl_ns),
                weight: None,
            };
            let entries: Vec<_> = keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| (k, v, options))
                .collect();
            c.cache.put_entries(&entries)?;
            Ok(())
        })
    }
}

/// Replays gets served from a binding's own mirror of the cache (a read buffer), in order: each
/// of the `n` keys (concatenated in `keys`, lengths in `key_lens`) still stored counts a hit and
/// becomes the most recently used entry; one not stored counts a miss; `misses` more misses are
/// counted. See `Cache::record_reads`. Works on byte and handle caches.
///
/// # Safety
/// `cache` NULL or live; `keys` readable for the sum of `key_lens`; `key_lens` readable for `n`
/// items (NULL only when `n` is 0).
#[no_mangle]
pub unsafe extern "C" fn afc_cache_record_reads(
    cache: *const afc_cache,
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    misses: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let keys = split_keys(keys, key_lens, n)?;
            c.cache.record_reads(&keys, misses);
            Ok(())
        })
    }
}

/// `afc_cache_record_reads` without waiting: the reads are handed over to a background thread
/// (one per process, started by the first call) and every other call on the cache replays them
/// first, so no result differs. See `Cache::record_reads_later`. The keys are copied before it
/// returns.
///
/// # Safety
/// `cache` NULL or live; `keys` readable for the sum of `key_lens`; `key_lens` readable for `n`
/// items (NULL only when `n` is 0).
#[no_mangle]
pub unsafe extern "C" fn afc_cache_record_reads_later(
    cache: *const afc_cache,
    keys: *const u8,
    key_lens: *const usize,
    n: usize,
    misses: u64,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let (keys, lens) = packed_buffers(keys, key_lens, n, ["keys", "key_lens"])?;
            c.cache.record_packed_reads_later(keys, lens, misses);
            Ok(())
        })
    }
}

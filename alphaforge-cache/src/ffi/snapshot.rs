//! Snapshots through the C ABI: `afc_cache_save`, `afc_cache_load`, `afc_snapshot_verify`.
//!
//! Only byte caches are saved and loaded here. A handle cache's values are opaque handles that
//! mean nothing outside the process, so its calls fail with `AFC_WRONG_VALUE_KIND`: a binding
//! that keeps objects behind handles encodes them itself, as the Python package does with its
//! codec. It reads the entries in file order with their TTLs and weights
//! (`afc_snapshot_iter_new`, `afc_iter_next`, `afc_iter_weight`) and writes the format of
//! `docs/snapshot-format.md`; to load, it reads and checks the file, then restores the entries
//! behind new handles in one atomic call (`afc_cache_load_handles`).

use super::args::{path, write};
use super::cache::{afc_cache, with_cache, ValueKind};
use super::status::{afc_status, guard, Failure, FfiResult};
use crate::snapshot::{self, LoadOptions, SaveOptions, SnapshotInfo, ValueEncoding};
use std::ffi::c_char;

/// The value encodings a snapshot's header records (the engine stores values as bytes whatever
/// it says; bindings use it to refuse a file whose values they would misread).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum afc_value_encoding {
    /// Plain bytes: every C and Rust cache.
    AFC_ENCODING_BYTES = 0,
    /// Python pickles (the Python package's "pickle" mode).
    AFC_ENCODING_PICKLE = 1,
    /// Encoded by a codec the application chose; only it can decode them.
    AFC_ENCODING_CODEC = 2,
}

/// `expect_encoding` of `afc_cache_load` that accepts a snapshot of any value encoding.
pub const AFC_ENCODING_ANY: u32 = u32::MAX;

/// What `afc_cache_save`, `afc_cache_load` or `afc_snapshot_verify` found.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct afc_snapshot_info {
    /// The file's major format version.
    pub format_major: u16,
    /// The file's minor format version.
    pub format_minor: u16,
    /// The value encoding its header records (an `afc_value_encoding`, or a code this library
    /// does not name).
    pub value_encoding: u32,
    /// The entries in the file.
    pub entries: u64,
    /// After a load, the entries the cache holds (fewer than `entries` when its bounds are
    /// smaller than the saving cache's); otherwise `entries`.
    pub entries_kept: u64,
    /// The file's length in bytes.
    pub file_bytes: u64,
}

impl From<SnapshotInfo> for afc_snapshot_info {
    fn from(info: SnapshotInfo) -> Self {
        afc_snapshot_info {
            format_major: info.format_major,
            format_minor: info.format_minor,
            value_encoding: u32::from(info.value_encoding.0),
            entries: info.entries,
            entries_kept: info.entries_kept,
            file_bytes: info.file_bytes,
        }
    }
}

fn encoding_arg(code: u32, what: &str) -> Result<ValueEncoding, Failure> {
    u8::try_from(code).map(ValueEncoding).map_err(|_| {
        Failure::new(
            afc_status::AFC_INVALID_ARGUMENT,
            format!("{what} {code} is not a value encoding (0..=255)"),
        )
    })
}

/// Writes `info` to `out` unless `out` is NULL.
///
/// # Safety
/// `out` NULL or writable.
unsafe fn report(out: *mut afc_snapshot_info, info: SnapshotInfo) -> FfiResult {
    if out.is_null() {
        return Ok(());
    }
    // SAFETY: out is non-NULL and writable per the caller's contract.
    unsafe { write(out, afc_snapshot_info::from(info), "out_info") }
}

fn byte_cache_only(cache: &afc_cache, what: &str) -> FfiResult {
    if cache.kind == ValueKind::Handles {
        return Err(Failure::new(
            afc_status::AFC_WRONG_VALUE_KIND,
            format!(
                "a handle cache cannot be {what} through the C ABI: its values are opaque \
                 handles; encode them into a snapshot yourself (afc_snapshot_iter_new, \
                 afc_cache_load_handles; docs/snapshot-format.md)"
            ),
        ));
    }
    Ok(())
}

/// Saves every live entry of a byte cache to the file `path` (NUL-terminated): written to a
/// temporary file in the same directory, flushed to disk, then renamed over `path`, so a crash
/// or a full disk leaves any previous file at `path` intact. `value_encoding` (an
/// `afc_value_encoding`, 0..=255) is recorded in the header. `*out_info` receives what was
/// written unless `out_info` is NULL. `AFC_IO_ERROR` when the file system refuses (the message
/// names the path and the reason); `AFC_WRONG_VALUE_KIND` for a handle cache.
///
/// # Safety
/// `cache` NULL or live; `path` NULL or a NUL-terminated string; `out_info` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_save(
    cache: *const afc_cache,
    path: *const c_char,
    value_encoding: u32,
    out_info: *mut afc_snapshot_info,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let path = path_arg(path)?;
            byte_cache_only(c, "saved")?;
            let options = SaveOptions {
                value_encoding: encoding_arg(value_encoding, "value_encoding")?,
            };
            let info = c.cache.save_with(path, options)?;
            report(out_info, info)
        })
    }
}

/// Replaces the entries of a byte cache with those of the snapshot `path` (NUL-terminated).
/// The whole file is checked first (checksums, lengths, version): on any error the cache is
/// unchanged. Entries present before are reported to the listener as cleared; with smaller
/// bounds than the saving cache's, the most recently used entries that fit are kept.
/// `expect_encoding` is an `afc_value_encoding` the file must record (`AFC_SNAPSHOT_MISMATCH`
/// otherwise), or `AFC_ENCODING_ANY`. Errors: `AFC_IO_ERROR` (missing path, no permission, not a
/// regular file: a directory, a device, a pipe or a socket, refused without waiting on a FIFO),
/// `AFC_SNAPSHOT_INVALID` (not a snapshot, truncated, corrupt),
/// `AFC_SNAPSHOT_UNSUPPORTED` (a newer format), `AFC_WRONG_VALUE_KIND` for a handle cache.
///
/// # Safety
/// `cache` NULL or live; `path` NULL or a NUL-terminated string; `out_info` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_cache_load(
    cache: *const afc_cache,
    path: *const c_char,
    expect_encoding: u32,
    out_info: *mut afc_snapshot_info,
) -> afc_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_cache(cache, None, |c| {
            let path = path_arg(path)?;
            byte_cache_only(c, "loaded")?;
            c.refuse_stores_while_freed()?;
            let expect_encoding = match expect_encoding {
                AFC_ENCODING_ANY => None,
                code => Some(encoding_arg(code, "expect_encoding")?),
            };
            let info = c.cache.load_with(path, LoadOptions { expect_encoding })?;
            report(out_info, info)
        })
    }
}

/// Checks the whole snapshot `path` (NUL-terminated) without loading it, and writes what its
/// header says to `*out_info` unless `out_info` is NULL. Errors as for `afc_cache_load`.
///
/// # Safety
/// `path` NULL or a NUL-terminated string; `out_info` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn afc_snapshot_verify(
    path: *const c_char,
    out_info: *mut afc_snapshot_info,
) -> afc_status {
    guard(|| {
        // SAFETY: per this function's contract.
        let path = unsafe { path_arg(path) }?;
        let info = snapshot::verify(path)?;
        // SAFETY: per this function's contract.
        unsafe { report(out_info, info) }
    })
}

/// # Safety
/// `ptr` NULL or a NUL-terminated string valid for `'a`.
unsafe fn path_arg<'a>(ptr: *const c_char) -> Result<&'a std::path::Path, Failure> {
    // SAFETY: per this function's contract.
    unsafe { path(ptr, "path") }
}

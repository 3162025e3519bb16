//! Checked conversions of C arguments: NULL pointers and impossible lengths become failures here,
//! so the exported functions only ever see valid references and slices.

use super::status::{afc_status, Failure};
use std::ffi::{c_char, CStr};
use std::path::Path;

/// Why a required pointer was NULL.
pub(crate) fn null(what: &str) -> Failure {
    Failure::new(
        afc_status::AFC_NULL_POINTER,
        format!("{what} must not be NULL"),
    )
}

fn check_len(len: usize, what: &str) -> Result<(), Failure> {
    if len > isize::MAX as usize {
        return Err(Failure::new(
            afc_status::AFC_INVALID_ARGUMENT,
            format!("{what} length {len} is larger than any buffer can be"),
        ));
    }
    Ok(())
}

/// The `(ptr, len)` byte buffer as a slice. `ptr` may be NULL only when `len` is 0.
///
/// # Safety
/// When non-NULL, `ptr` must point to `len` readable bytes that stay valid and unmodified for `'a`.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Failure> {
    check_len(len, what)?;
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: ptr is non-NULL and, by this function's contract, points to len readable bytes
    // valid for 'a; len <= isize::MAX was checked above.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A writable `(ptr, len)` buffer as a slice. `ptr` may be NULL only when `len` is 0.
///
/// # Safety
/// When non-NULL, `ptr` must point to `len` writable bytes, not aliased elsewhere during `'a`.
pub(crate) unsafe fn bytes_mut<'a>(
    ptr: *mut u8,
    len: usize,
    what: &str,
) -> Result<&'a mut [u8], Failure> {
    check_len(len, what)?;
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: ptr is non-NULL and, by this function's contract, points to len writable bytes
    // exclusively ours for 'a; len <= isize::MAX was checked above.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// An array of `n` items from C. `ptr` may be NULL only when `n` is 0.
///
/// # Safety
/// When non-NULL, `ptr` must point to `n` initialised, aligned `T`s valid for `'a`.
pub(crate) unsafe fn array<'a, T>(ptr: *const T, n: usize, what: &str) -> Result<&'a [T], Failure> {
    check_len(n.saturating_mul(std::mem::size_of::<T>()), what)?;
    if n == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: ptr is non-NULL and, by this function's contract, points to n valid T's for 'a;
    // the byte size fits isize (checked above).
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// A writable array of `n` items from C. `ptr` may be NULL only when `n` is 0.
///
/// # Safety
/// When non-NULL, `ptr` must point to `n` aligned, writable `T`s exclusively ours for `'a`.
pub(crate) unsafe fn array_mut<'a, T>(
    ptr: *mut T,
    n: usize,
    what: &str,
) -> Result<&'a mut [T], Failure> {
    check_len(n.saturating_mul(std::mem::size_of::<T>()), what)?;
    if n == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: ptr is non-NULL and, by this function's contract, points to n writable T's
    // exclusively ours for 'a; the byte size fits isize (checked above).
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, n) })
}

/// A reference from a handle pointer.
///
/// # Safety
/// When non-NULL, `ptr` must come from the matching `_new` function and not have been freed.
pub(crate) unsafe fn object<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: by this function's contract a non-NULL ptr is a live object from its _new function.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(what))
}

/// A mutable reference from a handle pointer.
///
/// # Safety
/// As for [`object`], and no other reference to the object may be in use during `'a`.
pub(crate) unsafe fn object_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: by this function's contract a non-NULL ptr is a live object, exclusively ours.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(what))
}

/// Writes an out-parameter.
///
/// # Safety
/// When non-NULL, `ptr` must point to a writable, aligned `T`.
pub(crate) unsafe fn write<T>(ptr: *mut T, value: T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: ptr is non-NULL and, by this function's contract, valid for a write of T.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Fails unless the out-parameter is non-NULL (checked before any work is done).
pub(crate) fn require<T>(ptr: *const T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        Err(null(what))
    } else {
        Ok(())
    }
}

/// A file path from a NUL-terminated C string (any bytes but NUL on Unix; UTF-8 elsewhere).
///
/// # Safety
/// When non-NULL, `ptr` must point to a NUL-terminated string valid and unmodified for `'a`.
pub(crate) unsafe fn path<'a>(ptr: *const c_char, what: &str) -> Result<&'a Path, Failure> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: ptr is non-NULL and, by this function's contract, NUL-terminated and valid for 'a.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes).map(Path::new).map_err(|_| {
            Failure::new(
                afc_status::AFC_INVALID_ARGUMENT,
                format!("{what} is not valid UTF-8"),
            )
        })
    }
}

/// A nanosecond TTL argument: 0 means "the cache's default TTL".
pub(crate) fn ttl(ttl_ns: u64) -> Option<std::time::Duration> {
    (ttl_ns != 0).then(|| std::time::Duration::from_nanos(ttl_ns))
}

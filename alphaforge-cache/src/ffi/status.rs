//! Status codes, the per-thread last error message, and the guard that keeps panics in Rust.

use crate::{Error, SnapshotError, SnapshotErrorKind};
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The result of every fallible `afc_*` function.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum afc_status {
    /// Success.
    AFC_OK = 0,
    /// The key has no live entry (or an iterator is exhausted). Not an error: no message is set.
    AFC_NOT_FOUND = 1,
    /// The caller's buffer is too small; the needed length was written to the length out-parameter.
    AFC_BUFFER_TOO_SMALL = 2,
    /// A required pointer was NULL.
    AFC_NULL_POINTER = 3,
    /// An argument is out of range (e.g. a length above `PTRDIFF_MAX`, a zero TTL, zero entries).
    AFC_INVALID_ARGUMENT = 4,
    /// `afc_cache_new` rejected the configuration.
    AFC_INVALID_CONFIG = 5,
    /// The entry is heavier than the cache's `max_bytes`; the cache is unchanged.
    AFC_ENTRY_TOO_HEAVY = 6,
    /// The entry does not fit the engine's 32-bit lengths: a key longer than 4294967294 bytes
    /// (4 GiB - 2), a key and value longer than 4294967295 bytes together (4 GiB - 1), or a
    /// weight above 4294967294 (with the default weight `key_len + value_len`, that makes key
    /// and value at most 4294967294 bytes together).
    AFC_ENTRY_TOO_LARGE = 7,
    /// A byte-value call on a handle cache, or a handle call on a byte cache.
    AFC_WRONG_VALUE_KIND = 8,
    /// A manual-clock call on a cache with a monotonic clock.
    AFC_NOT_MANUAL_CLOCK = 9,
    /// The compute callback of `afc_cache_get_or_insert` reported failure; nothing was stored.
    AFC_COMPUTE_FAILED = 10,
    /// The file system refused a snapshot's file: missing path, no permission, a directory, a
    /// full disk... (the message names the path and the operating system's reason).
    AFC_IO_ERROR = 11,
    /// The file is not a snapshot, or is truncated or corrupt (the message says where).
    AFC_SNAPSHOT_INVALID = 12,
    /// The snapshot has a format version, or uses a feature, this library cannot read.
    AFC_SNAPSHOT_UNSUPPORTED = 13,
    /// The snapshot's value encoding is not the one `afc_cache_load` was told to expect.
    AFC_SNAPSHOT_MISMATCH = 14,
    /// A Rust panic was caught at the boundary (a bug: please report it with the message). Rust's
    /// panic hook has then also printed the panic on the process's stderr.
    AFC_PANIC = 100,
}

/// A failed call: its status and, for real errors, a message for `afc_last_error`.
pub(crate) struct Failure {
    pub(crate) status: afc_status,
    pub(crate) message: Option<String>,
}

impl Failure {
    /// A failure with a message.
    pub(crate) fn new(status: afc_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: Some(message.into()),
        }
    }

    /// An expected outcome (not found, buffer too small) that sets no message.
    pub(crate) fn quiet(status: afc_status) -> Self {
        Failure {
            status,
            message: None,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let status = match error {
            Error::EntryTooHeavy { .. } => afc_status::AFC_ENTRY_TOO_HEAVY,
            Error::EntryTooLarge { .. } => afc_status::AFC_ENTRY_TOO_LARGE,
            Error::InvalidMaxEntries { .. }
            | Error::InvalidMaxBytes
            | Error::ZeroTtl
            | Error::InvalidShards { .. } => afc_status::AFC_INVALID_ARGUMENT,
        };
        Failure::new(status, error.to_string())
    }
}

impl From<SnapshotError> for Failure {
    fn from(error: SnapshotError) -> Self {
        let status = match error.kind() {
            SnapshotErrorKind::Io => afc_status::AFC_IO_ERROR,
            SnapshotErrorKind::Unsupported => afc_status::AFC_SNAPSHOT_UNSUPPORTED,
            SnapshotErrorKind::EncodingMismatch => afc_status::AFC_SNAPSHOT_MISMATCH,
            _ => afc_status::AFC_SNAPSHOT_INVALID,
        };
        Failure::new(status, error.to_string())
    }
}

pub(crate) type FfiResult = Result<(), Failure>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// What `afc_last_error` returns on a thread whose thread-locals are already destroyed (it is
/// exiting: a call from a `pthread_key_create` destructor, say).
const NO_MESSAGE_AT_THREAD_EXIT: &CStr = c"(no message: the thread is exiting)";

/// Records the calling thread's last error message. On a thread that is exiting, past the
/// destruction of its thread-locals, the message is dropped (the status still tells the caller).
fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // `try_with`, not `with`: `with` panics once the thread-local is destroyed, and this runs
    // outside `catch_unwind`, so the panic would abort the process.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = text);
}

/// Runs an exported function's body: maps its result to a status, records the message of a
/// failure, and turns a panic into `AFC_PANIC`.
#[inline]
pub(crate) fn guard(body: impl FnOnce() -> FfiResult) -> afc_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => afc_status::AFC_OK,
        Ok(Err(failure)) => {
            if let Some(message) = &failure.message {
                set_last_error(message);
            }
            failure.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            set_last_error(&format!("internal panic caught at the C boundary: {what}"));
            afc_status::AFC_PANIC
        }
    }
}

/// The message of the calling thread's last failure ("" if none). Every status but `AFC_OK`,
/// `AFC_NOT_FOUND` and `AFC_BUFFER_TOO_SMALL` sets it; those three leave it as it was, so after
/// them it is an older failure's message, unrelated to the call: read it only right after a
/// call returned another status. The pointer stays valid until the next failing call on this
/// thread, and at most until the thread exits; copy the message to keep it.
///
/// Called while the thread exits (from a `pthread_key_create` destructor, say), once the
/// library's per-thread storage is gone, it returns the static string "(no message: the thread
/// is exiting)", and failing calls there record no message.
#[no_mangle]
pub extern "C" fn afc_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(NO_MESSAGE_AT_THREAD_EXIT.as_ptr())
}

/// A static, readable name for a status code ("AFC_OK", "AFC_NOT_FOUND", ...;
/// "AFC_UNKNOWN_STATUS" for a code this library does not define).
#[no_mangle]
pub extern "C" fn afc_status_name(status: i32) -> *const c_char {
    const OK: i32 = afc_status::AFC_OK as i32;
    const NOT_FOUND: i32 = afc_status::AFC_NOT_FOUND as i32;
    const BUFFER_TOO_SMALL: i32 = afc_status::AFC_BUFFER_TOO_SMALL as i32;
    const NULL_POINTER: i32 = afc_status::AFC_NULL_POINTER as i32;
    const INVALID_ARGUMENT: i32 = afc_status::AFC_INVALID_ARGUMENT as i32;
    const INVALID_CONFIG: i32 = afc_status::AFC_INVALID_CONFIG as i32;
    const ENTRY_TOO_HEAVY: i32 = afc_status::AFC_ENTRY_TOO_HEAVY as i32;
    const ENTRY_TOO_LARGE: i32 = afc_status::AFC_ENTRY_TOO_LARGE as i32;
    const WRONG_VALUE_KIND: i32 = afc_status::AFC_WRONG_VALUE_KIND as i32;
    const NOT_MANUAL_CLOCK: i32 = afc_status::AFC_NOT_MANUAL_CLOCK as i32;
    const COMPUTE_FAILED: i32 = afc_status::AFC_COMPUTE_FAILED as i32;
    const IO_ERROR: i32 = afc_status::AFC_IO_ERROR as i32;
    const SNAPSHOT_INVALID: i32 = afc_status::AFC_SNAPSHOT_INVALID as i32;
    const SNAPSHOT_UNSUPPORTED: i32 = afc_status::AFC_SNAPSHOT_UNSUPPORTED as i32;
    const SNAPSHOT_MISMATCH: i32 = afc_status::AFC_SNAPSHOT_MISMATCH as i32;
    const PANIC: i32 = afc_status::AFC_PANIC as i32;
    let name: &'static [u8] = match status {
        OK => b"AFC_OK\0",
        NOT_FOUND => b"AFC_NOT_FOUND\0",
        BUFFER_TOO_SMALL => b"AFC_BUFFER_TOO_SMALL\0",
        NULL_POINTER => b"AFC_NULL_POINTER\0",
        INVALID_ARGUMENT => b"AFC_INVALID_ARGUMENT\0",
        INVALID_CONFIG => b"AFC_INVALID_CONFIG\0",
        ENTRY_TOO_HEAVY => b"AFC_ENTRY_TOO_HEAVY\0",
        ENTRY_TOO_LARGE => b"AFC_ENTRY_TOO_LARGE\0",
        WRONG_VALUE_KIND => b"AFC_WRONG_VALUE_KIND\0",
        NOT_MANUAL_CLOCK => b"AFC_NOT_MANUAL_CLOCK\0",
        COMPUTE_FAILED => b"AFC_COMPUTE_FAILED\0",
        IO_ERROR => b"AFC_IO_ERROR\0",
        SNAPSHOT_INVALID => b"AFC_SNAPSHOT_INVALID\0",
        SNAPSHOT_UNSUPPORTED => b"AFC_SNAPSHOT_UNSUPPORTED\0",
        SNAPSHOT_MISMATCH => b"AFC_SNAPSHOT_MISMATCH\0",
        PANIC => b"AFC_PANIC\0",
        _ => b"AFC_UNKNOWN_STATUS\0",
    };
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn panics_become_a_status_with_a_message() {
        let status = guard(|| panic!("boom"));
        assert_eq!(status, afc_status::AFC_PANIC);
        // SAFETY: afc_last_error returns a valid NUL-terminated string owned by this thread.
        let message = unsafe { CStr::from_ptr(afc_last_error()) };
        assert!(message.to_str().unwrap().contains("boom"));
    }

    #[test]
    fn quiet_failures_keep_the_previous_message() {
        guard(|| Err(Failure::new(afc_status::AFC_INVALID_ARGUMENT, "first")));
        let status = guard(|| Err(Failure::quiet(afc_status::AFC_NOT_FOUND)));
        assert_eq!(status, afc_status::AFC_NOT_FOUND);
        // SAFETY: as above.
        let message = unsafe { CStr::from_ptr(afc_last_error()) };
        assert_eq!(message.to_str().unwrap(), "first");
    }
}

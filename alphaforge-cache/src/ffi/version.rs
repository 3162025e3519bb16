//! Version information: compile-time macros in the header, and the same at run time.

use std::ffi::c_char;

/// The library's major version (the header's `AFC_VERSION_MAJOR`).
pub const AFC_VERSION_MAJOR: u32 = 0;
/// The library's minor version.
pub const AFC_VERSION_MINOR: u32 = 1;
/// The library's patch version.
pub const AFC_VERSION_PATCH: u32 = 0;
/// The ABI version: bumped on any incompatible change of the C interface.
pub const AFC_ABI_VERSION: u32 = 1;

/// The library's version as a static string, e.g. "0.1.0".
#[no_mangle]
pub extern "C" fn afc_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version of the library actually loaded (compare with the header's `AFC_ABI_VERSION`).
#[no_mangle]
pub extern "C" fn afc_abi_version() -> u32 {
    AFC_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_version_matches_the_crate() {
        let expected = format!("{AFC_VERSION_MAJOR}.{AFC_VERSION_MINOR}.{AFC_VERSION_PATCH}");
        assert_eq!(env!("CARGO_PKG_VERSION"), expected);
        // SAFETY: afc_version returns a static NUL-terminated string.
        let runtime = unsafe { std::ffi::CStr::from_ptr(afc_version()) };
        assert_eq!(runtime.to_str().unwrap(), expected);
    }
}

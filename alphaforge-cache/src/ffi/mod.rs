//! The C ABI: every `afc_*` function of `include/alphaforge_cache.h`.
//!
//! Conventions (after rustls-ffi): opaque handles with one `_new` and one `_free` each; every
//! fallible function returns an [`afc_status`]; outputs go through out-parameters and are written
//! only on success (a failed `_new` sets its out-pointer to NULL); byte buffers are `(ptr, len)`;
//! [`afc_last_error`] gives a readable message of the calling thread's last failure; no panic
//! crosses the boundary (each body runs inside `catch_unwind`, a panic becomes `AFC_PANIC`).
//!
//! This module is the only place in the crate with `unsafe` code: raw pointers from C are checked
//! for NULL and for lengths above `isize::MAX` in `args.rs`, and turned into references there.
#![allow(non_camel_case_types)]
#![allow(unsafe_code)]

mod args;
mod batch;
mod cache;
mod clock;
mod config;
mod handles;
mod iter;
mod snapshot;
mod status;
mod version;

pub use batch::*;
pub use cache::*;
pub use clock::*;
pub use config::*;
pub use handles::*;
pub use iter::*;
pub use snapshot::*;
pub use status::*;
pub use version::*;

//! # alphaforge-cache
//!
//! A fast, thread-safe, in-process LRU/TTL cache of byte strings: sharded exact LRU with bounds on
//! entries and on bytes (or caller-given weights), default and per-entry TTLs, an injectable clock,
//! statistics, and an eviction listener. It is the engine behind the project's C ABI and its Python
//! binding, and a complete Rust cache on its own.
//!
//! ```
//! use alphaforge_cache::{Cache, Clock, ManualClock};
//! use std::time::Duration;
//!
//! let time = ManualClock::new();
//! let cache = Cache::builder(1_000)
//!     .shards(1)
//!     .clock(Clock::manual(&time))
//!     .build()?;
//! cache.put_with_ttl(b"EURUSD", b"1.0842", Duration::from_secs(5))?;
//! assert!(cache.contains(b"EURUSD"));
//! time.advance(Duration::from_secs(5));
//! assert_eq!(cache.get(b"EURUSD"), None); // expired: now >= deadline
//! assert_eq!(cache.stats().expirations, 1);
//! # Ok::<(), alphaforge_cache::Error>(())
//! ```
//!
//! The behaviour every backend shares is written down in `docs/semantics.md`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod byte_budget;
mod cache;
pub(crate) mod clock;
mod deferred_reads;
mod entry_bytes;
mod error;
pub mod ffi;
mod linked_slab;
mod lock;
mod notification;
mod options;
mod packed_keys;
mod pending;
mod record;
mod shard;
pub mod snapshot;
mod staging;
mod stats;

pub use cache::{Cache, CacheEntry, Iter, PutOptions, MAX_ENTRY_SIZE};
pub use clock::{Clock, ManualClock, MAX_CLOCK_NANOS};
pub use error::Error;
pub use notification::{EvictionListener, RemovalCause};
pub use options::{
    default_shard_count, CacheBuilder, MAX_ENTRIES_LIMIT, MAX_SHARDS, MIN_ENTRIES_PER_DEFAULT_SHARD,
};
pub use snapshot::{
    LoadOptions, SaveOptions, SnapshotError, SnapshotErrorKind, SnapshotInfo, ValueEncoding,
};
pub use stats::Stats;

/// The README's Rust examples, compiled and run as doctests so that they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

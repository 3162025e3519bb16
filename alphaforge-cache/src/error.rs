//! The errors of building and using a cache.

use std::fmt;

/// Everything that can go wrong, from [`CacheBuilder::build`](crate::CacheBuilder::build) or from an
/// operation. An operation that returns an error has left the cache unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `max_entries` was zero, or above [`MAX_ENTRIES_LIMIT`](crate::MAX_ENTRIES_LIMIT).
    InvalidMaxEntries {
        /// The value given.
        given: usize,
    },
    /// `max_bytes` was zero.
    InvalidMaxBytes,
    /// A TTL of zero was given (a default TTL or a per-entry one).
    ZeroTtl,
    /// The shard count was zero, above [`MAX_SHARDS`](crate::MAX_SHARDS), or above `max_entries`
    /// (every shard must be able to hold at least one entry).
    InvalidShards {
        /// The shard count given.
        given: usize,
        /// The entry bound it was checked against.
        max_entries: usize,
    },
    /// An entry heavier than the cache's `max_bytes` on its own.
    EntryTooHeavy {
        /// The entry's weight.
        weight: u64,
        /// The cache's byte bound.
        max_bytes: u64,
    },
    /// An entry that does not fit the engine's 32-bit length fields: a key longer than
    /// [`MAX_ENTRY_SIZE`](crate::MAX_ENTRY_SIZE) bytes, a key and value longer than
    /// `MAX_ENTRY_SIZE + 1` bytes together, or a weight above `MAX_ENTRY_SIZE`.
    EntryTooLarge {
        /// The size or weight given.
        size: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidMaxEntries { given } => write!(
                f,
                "max_entries must be between 1 and {} (got {given})",
                crate::MAX_ENTRIES_LIMIT
            ),
            Error::InvalidMaxBytes => f.write_str("max_bytes must be at least 1"),
            Error::ZeroTtl => f.write_str("a TTL must be longer than zero"),
            Error::InvalidShards { given, max_entries } => write!(
                f,
                "shards must be between 1 and min({}, max_entries = {max_entries}) (got {given})",
                crate::MAX_SHARDS
            ),
            Error::EntryTooHeavy { weight, max_bytes } => write!(
                f,
                "entry weight {weight} exceeds max_bytes {max_bytes}; the cache is unchanged"
            ),
            Error::EntryTooLarge { size } => write!(
                f,
                "entry size or weight {size} exceeds the limit: keys and weights are at most {}, \
                 a key and its value together at most {} bytes",
                crate::MAX_ENTRY_SIZE,
                crate::MAX_ENTRY_SIZE + 1
            ),
        }
    }
}

impl std::error::Error for Error {}

//! The configuration of a cache, checked once by [`CacheBuilder::build`].

use crate::cache::Cache;
use crate::clock::{saturating_nanos, Clock};
use crate::error::Error;
use crate::notification::{EvictionListener, RemovalCause};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The largest `max_entries` a cache accepts (each shard indexes its entries with 32 bits).
pub const MAX_ENTRIES_LIMIT: usize = (u32::MAX - 1) as usize;

/// The largest shard count a cache accepts.
pub const MAX_SHARDS: usize = 1024;

/// The fewest entries the default shard count leaves in each shard.
pub const MIN_ENTRIES_PER_DEFAULT_SHARD: usize = 64;

/// The shard count used when none is given: 8 × the machine's available parallelism, rounded up to
/// a power of two and kept within 8..=128, then lowered so that every shard holds at least
/// [`MIN_ENTRIES_PER_DEFAULT_SHARD`] entries (a cache of fewer than 128 entries has one shard, and
/// so is an exact global LRU).
pub fn default_shard_count(max_entries: usize) -> usize {
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_cores = (parallelism * 8).next_power_of_two().clamp(8, 128);
    by_cores
        .min(max_entries / MIN_ENTRIES_PER_DEFAULT_SHARD)
        .max(1)
}

/// The configuration of a [`Cache`]; start with [`Cache::builder`].
///
/// ```
/// use alphaforge_cache::Cache;
/// use std::time::Duration;
///
/// let cache = Cache::builder(10_000)
///     .max_bytes(64 << 20)
///     .default_ttl(Duration::from_secs(30))
///     .build()?;
/// cache.put(b"AAPL", b"189.70")?;
/// assert_eq!(cache.get(b"AAPL").as_deref(), Some(&b"189.70"[..]));
/// # Ok::<(), alphaforge_cache::Error>(())
/// ```
#[derive(Clone)]
pub struct CacheBuilder {
    pub(crate) max_entries: usize,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) shards: Option<usize>,
    pub(crate) clock: Clock,
    pub(crate) listener: Option<EvictionListener>,
}

impl CacheBuilder {
    pub(crate) fn new(max_entries: usize) -> Self {
        CacheBuilder {
            max_entries,
            max_bytes: None,
            default_ttl: None,
            shards: None,
            clock: Clock::monotonic(),
            listener: None,
        }
    }

    /// Bounds the total weight of the entries (by default `len(key) + len(value)` each).
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Gives every entry put without a TTL of its own this time to live.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Sets the shard count (1 gives exact global LRU order). See [`default_shard_count`].
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Sets the time source (real monotonic time by default).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Calls `listener(key, value, cause)` for every entry that leaves the cache, after the
    /// operation that removed it has released its locks.
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&[u8], &[u8], RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Checks the configuration and builds the cache.
    pub fn build(self) -> Result<Cache, Error> {
        if self.max_entries == 0 || self.max_entries > MAX_ENTRIES_LIMIT {
            return Err(Error::InvalidMaxEntries {
                given: self.max_entries,
            });
        }
        if self.max_bytes == Some(0) {
            return Err(Error::InvalidMaxBytes);
        }
        if self.default_ttl == Some(Duration::ZERO) {
            return Err(Error::ZeroTtl);
        }
        let shards = self
            .shards
            .unwrap_or_else(|| default_shard_count(self.max_entries));
        if shards == 0 || shards > MAX_SHARDS || shards > self.max_entries {
            return Err(Error::InvalidShards {
                given: shards,
                max_entries: self.max_entries,
            });
        }
        Ok(Cache::from_config(Config {
            max_entries: self.max_entries,
            max_bytes: self.max_bytes,
            default_ttl: self.default_ttl.map(saturating_nanos),
            shards,
            clock: self.clock,
            listener: self.listener,
        }))
    }
}

impl fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("default_ttl", &self.default_ttl)
            .field("shards", &self.shards)
            .field("clock", &self.clock)
            .field("listener", &self.listener.is_some())
            .finish()
    }
}

/// A checked configuration.
pub(crate) struct Config {
    pub(crate) max_entries: usize,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) default_ttl: Option<u64>,
    pub(crate) shards: usize,
    pub(crate) clock: Clock,
    pub(crate) listener: Option<EvictionListener>,
}

/// Splits `total` over `parts` as evenly as possible (the first `total % parts` get one more).
pub(crate) fn split_evenly(total: usize, parts: usize, index: usize) -> usize {
    total / parts + usize::from(index < total % parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shards_leave_room_in_each_shard() {
        assert_eq!(default_shard_count(1), 1);
        assert_eq!(default_shard_count(127), 1);
        assert!(default_shard_count(100_000) >= 8);
        assert!(default_shard_count(100_000) <= 128);
        assert!(default_shard_count(1000) * MIN_ENTRIES_PER_DEFAULT_SHARD <= 1000);
    }

    #[test]
    fn split_covers_the_total() {
        for (total, parts) in [(10, 3), (7, 7), (100_000, 16), (5, 1)] {
            let sum: usize = (0..parts).map(|i| split_evenly(total, parts, i)).sum();
            assert_eq!(sum, total);
            assert!((0..parts).all(|i| split_evenly(total, parts, i) >= total / parts));
        }
    }
}

//! The cache-wide byte bound. Entries are bounded per shard (a fixed split of `max_entries`), but
//! weight is bounded globally, so that any entry no heavier than `max_bytes` fits whatever shard its
//! key falls in. Only caches with a byte bound pay for these two atomics.

use crate::lock::AtomicU64;
use std::sync::atomic::Ordering;

pub(crate) struct ByteBudget {
    max: AtomicU64,
    total: AtomicU64,
}

impl ByteBudget {
    pub(crate) fn new(max: u64) -> Self {
        ByteBudget {
            max: AtomicU64::new(max),
            total: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    pub(crate) fn set_max(&self, max: u64) {
        self.max.store(max, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add(&self, weight: u64) {
        self.total.fetch_add(weight, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn sub(&self, weight: u64) {
        self.total.fetch_sub(weight, Ordering::Relaxed);
    }

    /// Whether the total weight is above the bound.
    #[inline]
    pub(crate) fn exceeded(&self) -> bool {
        self.total.load(Ordering::Relaxed) > self.max()
    }
}

//! Shards filled without locks and swapped into a cache whole: how a snapshot is loaded without
//! touching the cache until the whole file has been read and checked.
//!
//! Putting the staged entries in order (least recently used first) gives what putting them into
//! an empty cache of the same bounds would: each shard keeps its most recently used entries that
//! fit its entry bound, and the byte bound is enforced across shards as `Cache::put_with` does.
//! Memory stays within the cache's bounds however large the snapshot is.

use crate::byte_budget::ByteBudget;
use crate::cache::shard_of;
use crate::notification::Removals;
use crate::options::split_evenly;
use crate::record::NO_DEADLINE;
use crate::shard::Shard;
use foldhash::fast::RandomState;
use std::hash::BuildHasher;

pub(crate) struct Staging {
    shards: Vec<Shard>,
    budget: Option<ByteBudget>,
    hasher: RandomState,
    /// The time deadlines are computed from.
    now: u64,
    /// Entries that were evicted or skipped drop here (no listener hears of them).
    dropped: Removals,
}

impl Staging {
    /// Empty shards for a cache of `max_entries` over `shards` shards hashing with `hasher`,
    /// with room made for `expected` entries in all.
    pub(crate) fn new(
        max_entries: usize,
        shards: usize,
        max_bytes: Option<u64>,
        hasher: RandomState,
        now: u64,
        expected: usize,
    ) -> Self {
        // Keys rarely spread perfectly: an eighth more than the even share, and at least a few.
        let per_shard = expected / shards + expected / shards / 8 + 16;
        let shards = (0..shards)
            .map(|i| {
                let max = split_evenly(max_entries, shards, i);
                Shard::with_capacity(max, hasher.clone(), per_shard.min(expected))
            })
            .collect();
        Staging {
            shards,
            budget: max_bytes.map(ByteBudget::new),
            hasher,
            now,
            dropped: Removals::new(false),
        }
    }

    /// Puts an entry as the most recently used one, expiring `ttl_ns` after now (`None`: never).
    /// The caller has checked the sizes against the engine's limits. Returns false when the entry
    /// is heavier than the byte bound on its own and so was skipped.
    pub(crate) fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        weight: u32,
        ttl_ns: Option<u64>,
    ) -> bool {
        if let Some(budget) = &self.budget {
            if u64::from(weight) > budget.max() {
                return false;
            }
        }
        let deadline = ttl_ns.map_or(NO_DEADLINE, |ttl| self.now.saturating_add(ttl));
        let hash = self.hasher.hash_one(key);
        let n = self.shards.len();
        let index = shard_of(hash, n);
        let budget = self.budget.as_ref();
        let (now, out) = (self.now, &mut self.dropped);
        self.shards[index].put(hash, key, value, weight, deadline, now, budget, out);
        if let Some(budget) = budget {
            // As `Cache::trim_other_shards`: the put's own shard has already evicted all it could.
            for step in 1..n {
                if !budget.exceeded() {
                    break;
                }
                let shard = &mut self.shards[(index + step) % n];
                while budget.exceeded() && shard.evict_lru(now, Some(budget), out) {}
            }
        }
        true
    }

    /// Calls `f` on the value of every staged entry, in no particular order, to change it in
    /// place (same length). A handle cache stages each entry's index as its value, then writes
    /// the handles of the entries that stayed (see `Cache::load_handles`).
    pub(crate) fn for_each_value_mut(&mut self, mut f: impl FnMut(&mut [u8])) {
        for shard in &mut self.shards {
            shard.for_each_value_mut(&mut f);
        }
    }

    /// The filled shards, in index order, and the time their deadlines were computed from.
    pub(crate) fn into_parts(self) -> (Vec<Shard>, u64) {
        (self.shards, self.now)
    }
}

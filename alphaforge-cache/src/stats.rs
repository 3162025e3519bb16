//! Statistics: plain counters kept per shard under the shard's lock (no atomics on the hot path).

use std::ops::AddAssign;

/// A cache's statistics at one moment. Counters are exact once all threads have stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Gets that found a live entry.
    pub hits: u64,
    /// Gets that found nothing (an expired entry counts as a miss and an expiration).
    pub misses: u64,
    /// Puts that added a new key.
    pub inserts: u64,
    /// Puts that replaced the value of a live key.
    pub updates: u64,
    /// Entries removed to respect a bound.
    pub evictions: u64,
    /// Expired entries reclaimed.
    pub expirations: u64,
    /// Entries removed explicitly (`remove`, `clear`).
    pub removals: u64,
    /// Live entries.
    pub entries: u64,
    /// Total weight of the live entries.
    pub weight: u64,
}

impl Stats {
    /// `hits / (hits + misses)`, or 0 when both are 0.
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

impl AddAssign for Stats {
    fn add_assign(&mut self, other: Stats) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.inserts += other.inserts;
        self.updates += other.updates;
        self.evictions += other.evictions;
        self.expirations += other.expirations;
        self.removals += other.removals;
        self.entries += other.entries;
        self.weight += other.weight;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_ratio_is_zero_without_lookups() {
        assert_eq!(Stats::default().hit_ratio(), 0.0);
        let s = Stats {
            hits: 3,
            misses: 1,
            ..Stats::default()
        };
        assert_eq!(s.hit_ratio(), 0.75);
    }

    #[test]
    fn stats_add_up() {
        let mut a = Stats {
            hits: 1,
            entries: 2,
            ..Stats::default()
        };
        a += Stats {
            hits: 2,
            misses: 5,
            weight: 7,
            ..Stats::default()
        };
        assert_eq!((a.hits, a.misses, a.entries, a.weight), (3, 5, 2, 7));
    }
}

//! Shared pieces of the peer benchmarks (`benches/peers.rs`) and the memory binary
//! (`src/bin/memory.rs`): deterministic key sets, a Zipf sampler, and one small trait that puts
//! alphaforge-cache and its peers (moka, quick_cache, lru behind a mutex) behind the same calls.
//!
//! Peers store `Box<[u8]>` keys and `Arc<[u8]>` values (a cheap-to-clone byte string): a peer's
//! get clones the `Arc` (one atomic increment and decrement), its put copies the key and the value
//! into fresh allocations, as a byte-string cache fed from borrowed bytes has to. The engine's get
//! is `get_into` with a buffer reused across calls (no allocation), its put is `put`.
#![warn(missing_docs)]

use alphaforge_cache::Cache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// Key length of every workload, in bytes.
pub const KEY_LEN: usize = 16;
/// Value length of every workload, in bytes.
pub const VALUE_LEN: usize = 64;
/// A fixed-size key.
pub type Key = [u8; KEY_LEN];
/// The value stored under every key.
pub const VALUE: [u8; VALUE_LEN] = [0xA5; VALUE_LEN];

/// SplitMix64: a tiny deterministic generator, good enough for shuffles and sampling.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..n` (n > 0; the slight modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of id `i`: 8 scrambled bytes then the id itself, so keys are distinct and look random.
pub fn key(i: u64) -> Key {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&mix(i ^ 0x5DEE_CE66_D1CE_4E5B).to_le_bytes());
    k[8..].copy_from_slice(&i.to_le_bytes());
    k
}

/// The ids `range`, shuffled (Fisher–Yates) with `seed`.
pub fn shuffled(range: std::ops::Range<u64>, seed: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = range.collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..ids.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        ids.swap(i, j);
    }
    ids
}

/// The keys of `ids`, in that order (so a benchmark reads its keys sequentially).
pub fn keys_of(ids: &[u64]) -> Vec<Key> {
    ids.iter().map(|&i| key(i)).collect()
}

/// `len` ids drawn from Zipf(`exponent`) over `0..universe` (id 0 the most popular), by inverting
/// the exact cumulative distribution.
pub fn zipf_ids(universe: u64, exponent: f64, len: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(universe as usize);
    let mut total = 0.0f64;
    for rank in 1..=universe {
        total += (rank as f64).powf(-exponent);
        cdf.push(total);
    }
    let mut rng = SplitMix64::new(seed);
    (0..len)
        .map(|_| {
            let u = rng.next_f64() * total;
            cdf.partition_point(|&c| c <= u).min(universe as usize - 1) as u64
        })
        .collect()
}

/// The operations every cache under test offers.
pub trait Subject: Sync {
    /// Looks `key` up (counting as a use); on a hit the value is made available to the caller
    /// (copied into `buf` by the engine, an `Arc` clone for the peers). Returns whether it hit.
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool;
    /// Stores `key -> value`.
    fn put(&self, key: &[u8], value: &[u8]);
    /// Whether `key` is present, without counting as a use where the cache allows.
    fn contains(&self, key: &[u8]) -> bool;
    /// Runs deferred maintenance (moka's pending tasks); a no-op for the others.
    fn settle(&self) {}
    /// The number of entries stored.
    fn len(&self) -> usize;
    /// Whether no entry is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// alphaforge-cache with its default shard count.
pub struct Engine(pub Cache);

impl Engine {
    /// A cache of `capacity` entries, default shard count.
    pub fn new(capacity: usize) -> Self {
        Engine(Cache::builder(capacity).build().expect("valid capacity"))
    }
}

impl Subject for Engine {
    #[inline]
    fn get(&self, key: &[u8], buf: &mut Vec<u8>) -> bool {
        self.0.get_into(key, buf)
    }
    #[inline]
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.put(key, value).expect("entry fits");
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.0.contains(key)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// `moka::sync::Cache` with its defaults (entry-count capacity, std `RandomState`).
pub struct Moka(pub moka::sync::Cache<Box<[u8]>, Arc<[u8]>>);

impl Moka {
    /// A cache of `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Moka(moka::sync::Cache::new(capacity as u64))
    }
}

impl Subject for Moka {
    #[inline]
    fn get(&self, key: &[u8], _buf: &mut Vec<u8>) -> bool {
        std::hint::black_box(self.0.get(key)).is_some()
    }
    #[inline]
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.insert(Box::from(key), Arc::from(value));
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.0.contains_key(key)
    }
    fn settle(&self) {
        self.0.run_pending_tasks();
    }
    fn len(&self) -> usize {
        self.0.entry_count() as usize
    }
}

/// `quick_cache::sync::Cache` with its defaults (`Cache::new(items)`: unit weights, default
/// shard count and hasher).
pub struct Quick(pub quick_cache::sync::Cache<Box<[u8]>, Arc<[u8]>>);

impl Quick {
    /// A cache of `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Quick(quick_cache::sync::Cache::new(capacity))
    }
}

impl Subject for Quick {
    #[inline]
    fn get(&self, key: &[u8], _buf: &mut Vec<u8>) -> bool {
        std::hint::black_box(self.0.get(key)).is_some()
    }
    #[inline]
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.insert(Box::from(key), Arc::from(value));
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.0.contains_key(key)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// `lru::LruCache` (default hasher) behind one `std::sync::Mutex`. Owned keys and values are
/// built before the lock is taken.
pub struct Lru(pub Mutex<LruMap>);

/// The map inside [`Lru`].
pub type LruMap = lru::LruCache<Box<[u8]>, Arc<[u8]>>;

impl Lru {
    /// A cache of `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).expect("capacity > 0");
        Lru(Mutex::new(lru::LruCache::new(capacity)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruMap> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Subject for Lru {
    #[inline]
    fn get(&self, key: &[u8], _buf: &mut Vec<u8>) -> bool {
        let value = self.lock().get(key).cloned();
        std::hint::black_box(value).is_some()
    }
    #[inline]
    fn put(&self, key: &[u8], value: &[u8]) {
        let (key, value): (Box<[u8]>, Arc<[u8]>) = (Box::from(key), Arc::from(value));
        let old = self.lock().push(key, value);
        drop(old); // outside the lock
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.lock().contains(key)
    }
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_sized() {
        let keys = keys_of(&(0..10_000).collect::<Vec<_>>());
        let set: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(set.len(), keys.len());
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut ids = shuffled(0..1000, 7);
        ids.sort_unstable();
        assert_eq!(ids, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let ids = zipf_ids(1000, 0.99, 10_000, 1);
        let zeros = ids.iter().filter(|&&i| i == 0).count();
        let tail = ids.iter().filter(|&&i| i == 999).count();
        assert!(zeros > 500 && tail < 20, "{zeros} {tail}");
        assert!(ids.iter().all(|&i| i < 1000));
    }

    #[test]
    fn subjects_store_and_find() {
        let subjects: Vec<Box<dyn Subject>> = vec![
            Box::new(Engine::new(1000)),
            Box::new(Moka::new(1000)),
            Box::new(Quick::new(1000)),
            Box::new(Lru::new(1000)),
        ];
        let mut buf = Vec::new();
        for s in &subjects {
            let k = key(1);
            assert!(!s.get(&k, &mut buf));
            s.put(&k, &VALUE);
            s.settle();
            assert!(s.get(&k, &mut buf));
            assert!(s.contains(&k));
        }
    }
}

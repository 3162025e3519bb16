//! The concurrent cache: shards behind locks. It hashes each key once, picks the shard, reads the
//! clock once, and tells the eviction listener after every lock is released. Eviction order lives in
//! `shard.rs`; this file knows nothing of it.

use crate::byte_budget::ByteBudget;
use crate::clock::{saturating_nanos, Clock};
use crate::deferred_reads::{
    self, BackgroundThread, DeferredReads, HandedBatch, ReplayJob, MAX_UNROUTED_READS,
};
use crate::error::Error;
use crate::lock::{lock, AtomicBool, Mutex, MutexGuard};
use crate::notification::{EvictionListener, RemovalCause, Removals};
use crate::options::{split_evenly, CacheBuilder, Config, MAX_ENTRIES_LIMIT};
use crate::packed_keys;
use crate::pending::PendingSlot;
use crate::record::{deadline_after, Record, NO_DEADLINE};
use crate::shard::{Hash, Shard};
use crate::staging::Staging;
use crate::stats::Stats;
use foldhash::fast::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The largest key, value or weight an entry may have, in bytes.
pub const MAX_ENTRY_SIZE: u64 = (u32::MAX - 1) as u64;

/// Options of one `put`: a TTL overriding the cache's default, and a weight overriding
/// `len(key) + len(value)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Time to live from now; `None` uses the cache's default TTL (if any). `Duration::MAX` (any
    /// TTL of `u64::MAX` ns or more) means the entry never expires. Any other TTL whose deadline
    /// lies past the clock's range ends at [`MAX_CLOCK_NANOS`](crate::MAX_CLOCK_NANOS), its last
    /// instant: the entry still expires then.
    pub ttl: Option<Duration>,
    /// The entry's weight against `max_bytes`; `None` means `len(key) + len(value)`.
    pub weight: Option<u32>,
}

/// One live entry, as [`Cache::iter`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Time left before it expires; `None` if it never does.
    pub ttl: Option<Duration>,
}

/// A snapshot of the live entries, most recently used first (see [`Cache::iter`]).
#[derive(Debug)]
pub struct Iter {
    entries: std::vec::IntoIter<CacheEntry>,
}

impl Iterator for Iter {
    type Item = CacheEntry;

    fn next(&mut self) -> Option<CacheEntry> {
        self.entries.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Iter {}

/// What each shard lock protects.
struct ShardState {
    shard: Shard,
    /// Keys whose value a `get_or_insert_with` is computing right now.
    pending: HashMap<Box<[u8]>, Arc<PendingSlot>, RandomState>,
}

impl ShardState {
    /// Removes `key`'s pending mark if it is still `slot` (another computation of the key may
    /// have started since, after the value was stored and then removed).
    fn clear_pending(&mut self, key: &[u8], slot: &Arc<PendingSlot>) {
        if self.pending.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            self.pending.remove(key);
        }
    }
}

/// Keeps each shard's lock on its own cache lines, so that two cores working on neighbouring
/// shards do not contend.
#[repr(align(128))]
struct CachePadded<T>(T);

/// A thread-safe LRU cache of byte strings with entry and byte bounds, TTLs and statistics.
///
/// Every method takes `&self`; share a cache between threads with `Arc<Cache>`. Each operation is
/// atomic. Keys fall into shards by hash; each shard is an exact LRU holding an even split of
/// `max_entries`, while `max_bytes` bounds the whole cache (see `docs/design.md`).
pub struct Cache {
    /// Shared with the thread that replays handed-over reads (`record_reads_later`).
    shards: Arc<[CachePadded<Mutex<ShardState>>]>,
    hasher: RandomState,
    clock: Clock,
    /// False until a TTL is configured or used (or the clock is manual): until then no entry can
    /// expire, and operations skip reading the clock.
    clock_in_use: AtomicBool,
    default_ttl: Option<u64>,
    budget: Option<ByteBudget>,
    listener: Option<EvictionListener>,
    /// The entry bound (written under every shard lock by `resize`).
    max_entries: Mutex<usize>,
    /// Reads handed over by `record_reads_later`: made by the first such call.
    handed_over: OnceLock<HandedOver>,
}

/// A cache's reads handed over to the background thread, and its job there.
struct HandedOver {
    reads: Arc<DeferredReads>,
    /// Replays the queued reads, shard by shard (the background thread holds it weakly).
    job: Arc<ReplayJob>,
}

impl Cache {
    /// A builder for a cache holding at most `max_entries` entries.
    pub fn builder(max_entries: usize) -> CacheBuilder {
        CacheBuilder::new(max_entries)
    }

    /// A cache with default settings holding at most `max_entries` entries.
    pub fn new(max_entries: usize) -> Result<Cache, Error> {
        CacheBuilder::new(max_entries).build()
    }

    pub(crate) fn from_config(config: Config) -> Cache {
        let hasher = RandomState::default();
        let shards: Arc<[_]> = (0..config.shards)
            .map(|i| {
                let max = split_evenly(config.max_entries, config.shards, i);
                CachePadded(Mutex::new(ShardState {
                    shard: Shard::new(max, hasher.clone()),
                    pending: HashMap::with_hasher(hasher.clone()),
                }))
            })
            .collect();
        Cache {
            shards,
            clock_in_use: AtomicBool::new(config.default_ttl.is_some() || config.clock.is_manual()),
            hasher,
            clock: config.clock,
            default_ttl: config.default_ttl,
            budget: config.max_bytes.map(ByteBudget::new),
            listener: config.listener,
            max_entries: Mutex::new(config.max_entries),
            handed_over: OnceLock::new(),
        }
    }

    // ----- plumbing -------------------------------------------------------------------------

    #[inline]
    fn hash(&self, key: &[u8]) -> Hash {
        self.hasher.hash_one(key)
    }

    /// The shard of a hash (see [`shard_of`]).
    #[inline]
    fn shard_index(&self, hash: Hash) -> usize {
        shard_of(hash, self.shards.len())
    }

    /// Locks a shard, then replays the reads handed over for it (`record_reads_later`), so that
    /// every operation sees them.
    #[inline]
    fn lock_shard(&self, index: usize) -> MutexGuard<'_, ShardState> {
        let handed_over = self.handed_over.get().map(|h| &*h.reads);
        lock_replaying(&self.shards[index].0, index, handed_over)
    }

    /// The queues of handed-over reads and the job replaying them, made on the first call.
    fn handed_over(&self) -> &HandedOver {
        self.handed_over.get_or_init(|| {
            let reads = Arc::new(DeferredReads::new(self.shards.len(), self.hasher.clone()));
            let (shards, queued) = (Arc::clone(&self.shards), Arc::clone(&reads));
            let job: Arc<ReplayJob> = Arc::new(move || {
                if !deferred_reads::replaying(|| queued.route_unrouted()) {
                    return; // a fork is under way: the next operation routes them
                }
                for index in 0..queued.shards() {
                    if queued.has_queued(index) {
                        let replayed = deferred_reads::replaying(|| {
                            drop(lock_replaying(&shards[index].0, index, Some(&queued)));
                        });
                        if !replayed {
                            return; // a fork is under way: the shard's next operation replays
                        }
                    }
                }
            });
            HandedOver { reads, job }
        })
    }

    /// The time for this operation (read once).
    #[inline]
    fn now(&self) -> u64 {
        if self.clock_in_use.load(Ordering::Relaxed) {
            self.clock.now_nanos()
        } else {
            0
        }
    }

    #[inline]
    fn removals(&self) -> Removals {
        Removals::new(self.listener.is_some())
    }

    /// Tells the listener of `removals`; called with no lock held.
    #[inline]
    fn notify(&self, removals: Removals) {
        if let Some(listener) = &self.listener {
            if !removals.is_empty() {
                removals.deliver(listener);
            }
        }
    }

    /// Runs `f` on the shard of `key` under its lock, then notifies.
    #[inline]
    fn with_shard<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(&mut Shard, Hash, u64, Option<&ByteBudget>, &mut Removals) -> R,
    ) -> R {
        let hash = self.hash(key);
        let now = self.now();
        let mut out = self.removals();
        let result = {
            let mut state = self.lock_shard(self.shard_index(hash));
            f(&mut state.shard, hash, now, self.budget.as_ref(), &mut out)
        };
        self.notify(out);
        result
    }

    /// Locks every shard (in index order, the one lock order of the crate) so that a
    /// whole-cache operation is atomic, runs `f(index, shard, ...)` on each, releases them all,
    /// then notifies.
    fn with_all_shards(
        &self,
        f: impl FnMut(usize, &mut Shard, u64, Option<&ByteBudget>, &mut Removals),
    ) {
        let mut out = self.removals();
        self.with_all_shards_into(&mut out, f);
        self.notify(out);
    }

    /// The locking part of [`with_all_shards`](Self::with_all_shards): removals go to `out`,
    /// which the caller notifies.
    fn with_all_shards_into(
        &self,
        out: &mut Removals,
        mut f: impl FnMut(usize, &mut Shard, u64, Option<&ByteBudget>, &mut Removals),
    ) {
        let now = self.now();
        let mut states: Vec<_> = (0..self.shards.len()).map(|i| self.lock_shard(i)).collect();
        for (index, state) in states.iter_mut().enumerate() {
            f(index, &mut state.shard, now, self.budget.as_ref(), out);
        }
    }

    /// Like [`with_all_shards`](Self::with_all_shards), reclaiming expired entries first.
    fn sweep(&self, mut f: impl FnMut(&mut Shard)) {
        self.with_all_shards(|_, shard, now, budget, out| {
            shard.expire(now, budget, out);
            f(shard);
        });
    }

    /// The weight and TTL of a prospective entry, or why it is refused. Call it before reading
    /// the operation's time: a per-entry TTL switches the clock on.
    fn admit(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Admitted, Error> {
        let size = key.len() as u64 + value.len() as u64;
        let weight = match options.weight {
            Some(w) => u64::from(w),
            None => size,
        };
        if key.len() as u64 > MAX_ENTRY_SIZE || size > MAX_ENTRY_SIZE + 1 {
            return Err(Error::EntryTooLarge { size });
        }
        if weight > MAX_ENTRY_SIZE {
            return Err(Error::EntryTooLarge { size: weight });
        }
        if let Some(budget) = &self.budget {
            if weight > budget.max() {
                return Err(Error::EntryTooHeavy {
                    weight,
                    max_bytes: budget.max(),
                });
            }
        }
        let ttl = match options.ttl {
            Some(Duration::ZERO) => return Err(Error::ZeroTtl),
            Some(ttl) => {
                self.clock_in_use.store(true, Ordering::Relaxed);
                Some(saturating_nanos(ttl))
            }
            None => self.default_ttl,
        };
        Ok(Admitted {
            weight: weight as u32,
            ttl,
        })
    }

    /// After a put into shard `from`, evicts from the other shards while the byte bound is
    /// exceeded (the put's own shard could not free enough without evicting the new entry). If the
    /// bound still does not hold, the new entry itself is too heavy for it: that happens only when
    /// `set_max_bytes` lowered the bound after the entry was admitted, and then it goes too.
    fn trim_other_shards(&self, from: usize, now: u64, out: &mut Removals) {
        let Some(budget) = &self.budget else { return };
        let n = self.shards.len();
        for step in 1..=n {
            if !budget.exceeded() {
                return;
            }
            let mut state = self.lock_shard((from + step) % n);
            while budget.exceeded() && state.shard.evict_lru(now, Some(budget), out) {}
        }
    }

    // ----- reads ----------------------------------------------------------------------------

    /// Calls `f` with the value of a live `key`, making it the most recently used entry. `f` runs
    /// under the shard's lock, so it is kept crate-private and only copies bytes.
    #[inline]
    pub(crate) fn read_value<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.with_shard(key, |shard, hash, now, budget, out| {
            shard
                .get(hash, key, now, budget, out)
                .map(|record| f(record.value()))
        })
    }

    /// The value of `key`, which becomes the most recently used entry; `None` on a miss.
    #[inline]
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.read_value(key.as_ref(), <[u8]>::to_vec)
    }

    /// Like [`get`](Self::get), but copies the value into `buf` (cleared first) and so allocates
    /// nothing once `buf` is large enough. Returns whether `key` was found.
    #[inline]
    pub fn get_into(&self, key: impl AsRef<[u8]>, buf: &mut Vec<u8>) -> bool {
        self.read_value(key.as_ref(), |value| {
            buf.clear();
            buf.extend_from_slice(value);
        })
        .is_some()
    }

    /// The value of `key` without changing recency or the hit/miss counters.
    pub fn peek(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.peek_value(key.as_ref(), <[u8]>::to_vec)
    }

    /// Calls `f` with the value of a live `key` without touching recency or counters (`f` runs
    /// under the shard's lock: crate-private, for copying bytes only).
    pub(crate) fn peek_value<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.with_shard(key, |shard, hash, now, budget, out| {
            shard
                .peek(hash, key, now, budget, out)
                .map(|record| f(record.value()))
        })
    }

    /// Whether `key` has a live entry (recency and counters unchanged).
    pub fn contains(&self, key: impl AsRef<[u8]>) -> bool {
        let key = key.as_ref();
        self.with_shard(key, |shard, hash, now, budget, out| {
            shard.peek(hash, key, now, budget, out).is_some()
        })
    }

    /// The time `key` has left: `None` if it has no live entry, `Some(None)` if it never expires.
    pub fn remaining_ttl(&self, key: impl AsRef<[u8]>) -> Option<Option<Duration>> {
        let key = key.as_ref();
        self.with_shard(key, |shard, hash, now, budget, out| {
            shard
                .peek(hash, key, now, budget, out)
                .map(|record| remaining(record.deadline, now))
        })
    }

    /// The values of many keys in one call, in the order given (`None` for a miss). Keys of one
    /// shard are looked up under one lock acquisition, in their given order.
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Vec<Option<Vec<u8>>> {
        let mut values = vec![None; keys.len()];
        self.read_many(keys, |i, value| values[i] = Some(value.to_vec()));
        values
    }

    /// Calls `found(i, value)` for each hit among `keys` (under the shard lock: crate-private).
    pub(crate) fn read_many<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        mut found: impl FnMut(usize, &[u8]),
    ) {
        let now = self.now();
        let mut out = self.removals();
        let routed = self.route(keys.iter().map(AsRef::as_ref));
        for run in routed.chunk_by(|a, b| a.shard == b.shard) {
            let mut state = self.lock_shard(run[0].shard);
            for item in run {
                let key = keys[item.index].as_ref();
                if let Some(record) =
                    state
                        .shard
                        .get(item.hash, key, now, self.budget.as_ref(), &mut out)
                {
                    found(item.index, record.value());
                }
            }
        }
        self.notify(out);
    }

    /// Replays gets that a binding served from its own mirror of the cache (a read buffer, as
    /// in Caffeine), in order: a key still stored counts a hit and becomes the most recently used
    /// entry; a key not stored counts a miss. `misses` more misses are counted. Nothing is
    /// reclaimed or evicted (an entry that expired since it was read still counts its hit, as
    /// the read saw it live). A binding calls it before any operation whose result depends on
    /// recency or the counters, so LRU order and statistics stay exact.
    pub fn record_reads<K: AsRef<[u8]>>(&self, keys: &[K], misses: u64) {
        if self.shards.len() == 1 {
            // One shard (a binding's usual setting): no routing, one lock for the whole batch.
            let mut state = self.lock_shard(0);
            state.shard.record_gets(keys.iter().map(|key| {
                let key = key.as_ref();
                (self.hash(key), key)
            }));
            state.shard.record_misses(misses);
            return;
        }
        let routed = self.route(keys.iter().map(AsRef::as_ref));
        for run in routed.chunk_by(|a, b| a.shard == b.shard) {
            let mut state = self.lock_shard(run[0].shard);
            state.shard.record_gets(
                run.iter()
                    .map(|item| (item.hash, keys[item.index].as_ref())),
            );
        }
        if misses > 0 {
            self.lock_shard(0).shard.record_misses(misses);
        }
    }

    /// [`record_reads`](Self::record_reads) without waiting: the reads are handed over to a
    /// background thread (one per process, for every cache, started by the first call) that
    /// replays them soon. Every other operation on a shard replays the reads handed over for it
    /// first, under the shard's lock, so no result differs from `record_reads`: order, counters
    /// and evictions are the same.
    /// The caller's thread spends only the copy of the keys (into a buffer reused from an
    /// earlier hand-over): the background thread hashes them, sorts them by shard and replays
    /// them. When reads pile up faster than the thread replays them (or it could not start), the
    /// caller replays them itself.
    ///
    /// Between hand-overs the thread spins up to 200 µs for the next one before it parks, so
    /// that while reads keep coming a hand-over only sets a flag; the environment variable
    /// `ALPHAFORGE_CACHE_SPIN_US` (0 to 10000, read when the thread starts) sets that time, and
    /// `0` parks it at once, for machines where a spinning thread takes a CPU others need.
    pub fn record_reads_later<K: AsRef<[u8]>>(&self, keys: &[K], misses: u64) {
        let Some(background) = deferred_reads::background_thread() else {
            return self.record_reads(keys, misses);
        };
        self.hand_over(background, misses, |batch| {
            for key in keys {
                batch.push(key.as_ref());
            }
        });
    }

    /// [`record_reads_later`](Self::record_reads_later) of keys given concatenated in `keys`,
    /// `lens` their lengths in read order (the C ABI's layout): the hand-over copies the buffer
    /// at once instead of key by key.
    ///
    /// # Panics
    /// When the lengths do not add up to `keys.len()`.
    pub(crate) fn record_packed_reads_later(&self, keys: &[u8], lens: &[usize], misses: u64) {
        let Some(background) = deferred_reads::background_thread() else {
            packed_keys::assert_lengths_match(keys, lens); // push_packed checks it otherwise
            let split: Vec<&[u8]> = packed_keys::split(keys, lens).collect();
            return self.record_reads(&split, misses);
        };
        self.hand_over(background, misses, |batch| batch.push_packed(keys, lens));
    }

    /// Queues a batch that `fill` fills (in a buffer kept from an earlier hand-over), and
    /// `misses` more misses, for the background thread; past [`MAX_UNROUTED_READS`] waiting,
    /// routes and replays everything on the caller's thread.
    fn hand_over(
        &self,
        background: &BackgroundThread,
        misses: u64,
        fill: impl FnOnce(&mut HandedBatch),
    ) {
        let handed_over = self.handed_over();
        let mut batch = handed_over.reads.spare_batch();
        fill(&mut batch);
        batch.add_misses(misses);
        if handed_over.reads.hand_over(batch) > MAX_UNROUTED_READS {
            // The thread is behind: route and replay everything here.
            for shard in 0..self.shards.len() {
                drop(self.lock_shard(shard));
            }
        }
        background.schedule(&handed_over.reads, &handed_over.job);
    }

    /// Hashes keys and orders them by shard, keeping the given order within a shard.
    fn route<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) -> Vec<Routed> {
        route(&self.hasher, self.shards.len(), keys)
    }

    // ----- writes ---------------------------------------------------------------------------

    /// Stores `key -> value` (with the default TTL, if any) as the most recently used entry.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        self.put_with(key, value, PutOptions::default())
    }

    /// Stores `key -> value`, expiring `ttl` from now.
    pub fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<(), Error> {
        self.put_with(
            key,
            value,
            PutOptions {
                ttl: Some(ttl),
                weight: None,
            },
        )
    }

    /// Stores `key -> value` with per-entry options. An entry heavier than `max_bytes` is refused
    /// with [`Error::EntryTooHeavy`] and the cache is unchanged (an older value stays).
    pub fn put_with(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        options: PutOptions,
    ) -> Result<(), Error> {
        let (key, value) = (key.as_ref(), value.as_ref());
        let admitted = self.admit(key, value, options)?;
        let hash = self.hash(key);
        let index = self.shard_index(hash);
        let now = self.now();
        let mut out = self.removals();
        {
            let mut state = self.lock_shard(index);
            let budget = self.budget.as_ref();
            let (weight, deadline) = (admitted.weight, admitted.deadline(now));
            state
                .shard
                .put(hash, key, value, weight, deadline, now, budget, &mut out);
        }
        self.trim_other_shards(index, now, &mut out);
        self.notify(out);
        Ok(())
    }

    /// Stores many entries in one call, in order. Every entry is checked first: if any is refused,
    /// none is stored.
    pub fn put_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, items: &[(K, V)]) -> Result<(), Error> {
        self.put_many_with(items, PutOptions::default())
    }

    /// Like [`put_many`](Self::put_many), with the same options for every entry.
    pub fn put_many_with<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        items: &[(K, V)],
        options: PutOptions,
    ) -> Result<(), Error> {
        let entries: Vec<(&[u8], &[u8], PutOptions)> = items
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref(), options))
            .collect();
        self.put_entries(&entries)
    }

    /// Stores `(key, value, options)` entries in order, all or none (crate-private: the C ABI
    /// gives each entry its own weight).
    pub(crate) fn put_entries(&self, entries: &[(&[u8], &[u8], PutOptions)]) -> Result<(), Error> {
        let admitted = entries
            .iter()
            .map(|&(key, value, options)| self.admit(key, value, options))
            .collect::<Result<Vec<_>, Error>>()?;
        let now = self.now();
        let mut out = self.removals();
        let routed = self.route(entries.iter().map(|&(key, _, _)| key));
        for run in routed.chunk_by(|a, b| a.shard == b.shard) {
            {
                let mut state = self.lock_shard(run[0].shard);
                for item in run {
                    let (key, value, _) = entries[item.index];
                    let (weight, deadline) = (
                        admitted[item.index].weight,
                        admitted[item.index].deadline(now),
                    );
                    let budget = self.budget.as_ref();
                    state.shard.put(
                        item.hash, key, value, weight, deadline, now, budget, &mut out,
                    );
                }
            }
            self.trim_other_shards(run[0].shard, now, &mut out);
        }
        self.notify(out);
        Ok(())
    }

    /// Removes `key` and returns its value, if it had a live entry.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let key = key.as_ref();
        self.with_shard(key, |shard, hash, now, budget, out| {
            let record = shard.remove(hash, key, now, budget, out)?;
            let value = record.value().to_vec();
            out.push(record, RemovalCause::Removed);
            Some(value)
        })
    }

    /// Removes every entry (the listener hears `Cleared`, or `Expired` for expired ones).
    pub fn clear(&self) {
        self.with_all_shards(|_, shard, now, budget, out| shard.clear(now, budget, out));
    }

    /// Reclaims every expired entry now and returns their keys, most recently used first
    /// (shard after shard).
    pub fn expire_keys(&self) -> Vec<Vec<u8>> {
        let mut out = Removals::new(true);
        self.with_all_shards_into(&mut out, |_, shard, now, budget, out| {
            shard.expire(now, budget, out);
        });
        let keys = out.keys();
        self.notify(out);
        keys
    }

    /// Reclaims every expired entry now and returns how many there were.
    pub fn expire(&self) -> usize {
        let mut expired = 0;
        self.with_all_shards(|_, shard, now, budget, out| {
            expired += shard.expire(now, budget, out)
        });
        expired
    }

    /// Changes `max_entries`, evicting least recently used entries beyond it. It must be at least
    /// the shard count (each shard keeps room for one entry).
    pub fn resize(&self, max_entries: usize) -> Result<(), Error> {
        let shards = self.shards.len();
        if max_entries == 0 || max_entries > MAX_ENTRIES_LIMIT {
            return Err(Error::InvalidMaxEntries { given: max_entries });
        }
        if max_entries < shards {
            return Err(Error::InvalidShards {
                given: shards,
                max_entries,
            });
        }
        self.with_all_shards(|index, shard, now, budget, out| {
            if index == 0 {
                // Set under every shard lock, so concurrent resizes apply in one order.
                *lock(&self.max_entries) = max_entries;
            }
            shard.resize(split_evenly(max_entries, shards, index), now, budget, out);
        });
        Ok(())
    }

    /// Changes `max_bytes`, evicting least recently used entries beyond it. Only a cache built
    /// with a byte bound has one to change ([`Error::InvalidMaxBytes`] otherwise, or for zero).
    pub fn set_max_bytes(&self, max_bytes: u64) -> Result<(), Error> {
        let budget = match &self.budget {
            Some(budget) if max_bytes > 0 => budget,
            _ => return Err(Error::InvalidMaxBytes),
        };
        self.with_all_shards(|index, shard, now, _, out| {
            if index == 0 {
                budget.set_max(max_bytes);
            }
            while budget.exceeded() && shard.evict_lru(now, Some(budget), out) {}
        });
        Ok(())
    }

    /// The value of `key`, computing and storing it with `compute` on a miss. When threads race on
    /// one key, one computes and the others wait for its value. `compute` runs with no lock held.
    /// A value too heavy for the cache is returned but not stored.
    ///
    /// `compute` may use the cache, but a computation that waits for itself never ends: asking
    /// for the key being computed from `compute` (on the same thread) panics, and two threads
    /// whose computations each ask for the other's key deadlock.
    ///
    /// # Panics
    ///
    /// If `compute` asks for `key` again (directly, or through another computation it starts).
    pub fn get_or_insert_with(
        &self,
        key: impl AsRef<[u8]>,
        compute: impl FnOnce() -> Vec<u8>,
    ) -> Vec<u8> {
        match self.try_get_or_insert_with(key, || Ok::<_, std::convert::Infallible>(compute())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) for a fallible computation: an error
    /// is returned and nothing is stored; a waiting thread then computes in its turn.
    ///
    /// # Panics
    ///
    /// If `compute` asks for `key` again, as for
    /// [`get_or_insert_with`](Self::get_or_insert_with).
    pub fn try_get_or_insert_with<E>(
        &self,
        key: impl AsRef<[u8]>,
        compute: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        self.get_or_insert_refusing_reentry(key, compute, || -> E {
            panic!(
                "get_or_insert_with: computing a key asked for the same key again \
                 (a reentrant computation would wait for itself forever)"
            )
        })
    }

    /// [`try_get_or_insert_with`](Self::try_get_or_insert_with) that, instead of panicking,
    /// returns `reentry_error()` when `compute` asks for `key` again on the same thread (the
    /// C ABI's version: no panic to catch, nothing printed).
    pub(crate) fn get_or_insert_refusing_reentry<E>(
        &self,
        key: impl AsRef<[u8]>,
        compute: impl FnOnce() -> Result<Vec<u8>, E>,
        reentry_error: impl FnOnce() -> E,
    ) -> Result<Vec<u8>, E> {
        let key = key.as_ref();
        let hash = self.hash(key);
        let index = self.shard_index(hash);
        let slot = loop {
            let now = self.now();
            let mut out = self.removals();
            let step = {
                let mut guard = self.lock_shard(index);
                let state = &mut *guard;
                let budget = self.budget.as_ref();
                if let Some(record) = state.shard.get(hash, key, now, budget, &mut out) {
                    Step::Hit(record.value().to_vec())
                } else if let Some(slot) = state.pending.get(key) {
                    Step::Wait(Arc::clone(slot))
                } else {
                    let slot = Arc::new(PendingSlot::new());
                    state.pending.insert(key.into(), Arc::clone(&slot));
                    Step::Compute(slot)
                }
            };
            self.notify(out);
            match step {
                Step::Hit(value) => return Ok(value),
                Step::Wait(slot) => {
                    // Waiting for our own computation would never end.
                    if slot.is_owned_by_current_thread() {
                        return Err(reentry_error());
                    }
                    slot.wait();
                }
                Step::Compute(slot) => break slot,
            }
        };
        // This thread computes. The guard clears the pending mark even if `compute` panics.
        let mut guard = PendingGuard {
            cache: self,
            key,
            index,
            slot,
            cleared: false,
        };
        let value = compute()?;
        if let Ok(admitted) = self.admit(key, &value, PutOptions::default()) {
            let now = self.now();
            let mut out = self.removals();
            {
                let mut state = self.lock_shard(index);
                let state = &mut *state;
                let budget = self.budget.as_ref();
                let (weight, deadline) = (admitted.weight, admitted.deadline(now));
                state
                    .shard
                    .put(hash, key, &value, weight, deadline, now, budget, &mut out);
                state.clear_pending(key, &guard.slot);
                guard.cleared = true;
            }
            self.trim_other_shards(index, now, &mut out);
            drop(guard);
            self.notify(out);
        }
        Ok(value)
    }

    // ----- whole-cache views ----------------------------------------------------------------

    /// The number of live entries.
    pub fn len(&self) -> usize {
        let mut len = 0;
        self.sweep(|shard| len += shard.stored_len());
        len
    }

    /// Whether the cache has no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The total weight of the live entries.
    pub fn weight(&self) -> u64 {
        let mut weight = 0;
        self.sweep(|shard| weight += shard.stats().weight);
        weight
    }

    /// The statistics, summed over the shards.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        self.sweep(|shard| stats += shard.stats());
        stats
    }

    /// Sets every counter back to zero (entries and weight are not counters and stay).
    pub fn reset_stats(&self) {
        self.with_all_shards(|_, shard, _, _, _| shard.reset_stats());
    }

    /// A consistent snapshot of the live entries: all shards are locked together while it is
    /// taken. With one shard the order is exact global recency, most recently used first; with
    /// several, each shard's entries come most recent first, shard after shard.
    pub fn iter(&self) -> Iter {
        let entries = self.collect_live(|record, now| CacheEntry {
            key: record.key().to_vec(),
            value: record.value().to_vec(),
            ttl: remaining(record.deadline, now),
        });
        Iter {
            entries: entries.into_iter(),
        }
    }

    /// `f(record, now)` of every live entry in [`iter`](Self::iter)'s order, every shard locked
    /// together and the time read once (crate-private: the C ABI's iterators also copy weights).
    pub(crate) fn collect_live<T>(&self, mut f: impl FnMut(&Record, u64) -> T) -> Vec<T> {
        let now = self.now();
        let states: Vec<_> = (0..self.shards.len()).map(|i| self.lock_shard(i)).collect();
        states
            .iter()
            .flat_map(|state| state.shard.live_records(now))
            .map(|record| f(record, now))
            .collect()
    }

    // ----- snapshots (the file format lives in `snapshot/`) -------------------------------------

    /// Runs `f` with every shard locked (in index order) and the time read once: a consistent
    /// view of the whole cache for a snapshot. Nothing is reclaimed or reported.
    pub(crate) fn with_locked_shards<R>(&self, f: impl FnOnce(&[&Shard], u64) -> R) -> R {
        let now = self.now();
        let states: Vec<_> = (0..self.shards.len()).map(|i| self.lock_shard(i)).collect();
        let shards: Vec<&Shard> = states.iter().map(|state| &state.shard).collect();
        f(&shards, now)
    }

    /// Empty shards shaped like this cache's (same bounds, same hasher), to be filled without
    /// any lock and then swapped in whole by [`adopt`](Self::adopt). `expected` entries are
    /// made room for at once. Deadlines are computed from `now`, read from the clock itself: a
    /// cache that never needed its clock before reads it here.
    pub(crate) fn staging(&self, expected: usize) -> Staging {
        let max_entries = self.max_entries();
        let now = self.clock.now_nanos();
        Staging::new(
            max_entries,
            self.shards.len(),
            self.max_bytes(),
            self.hasher.clone(),
            now,
            expected,
        )
    }

    /// Replaces every entry with the staged ones, atomically: the previous entries are reported
    /// as by [`clear`](Self::clear), the staged ones count as inserts. Bounds changed since
    /// `staging` was called are enforced (by evicting). Returns how many entries it holds now.
    pub(crate) fn adopt(&self, staged: Staging) -> usize {
        let (staged, now) = staged.into_parts();
        if staged.iter().any(Shard::has_deadlines) {
            self.clock_in_use.store(true, Ordering::Relaxed);
        }
        let mut staged = staged.into_iter();
        let mut held = 0;
        let mut out = self.removals();
        {
            let mut states: Vec<_> = (0..self.shards.len()).map(|i| self.lock_shard(i)).collect();
            let budget = self.budget.as_ref();
            for state in states.iter_mut() {
                if let Some(shard) = staged.next() {
                    state.shard.replace_with(shard, now, budget, &mut out);
                }
            }
            if let Some(budget) = budget {
                for state in states.iter_mut() {
                    while budget.exceeded() && state.shard.evict_lru(now, Some(budget), &mut out) {}
                }
            }
            for state in &states {
                held += state.shard.stored_len();
            }
        }
        self.notify(out);
        held
    }

    /// The entry bound.
    pub fn max_entries(&self) -> usize {
        *lock(&self.max_entries)
    }

    /// The byte bound, if any.
    pub fn max_bytes(&self) -> Option<u64> {
        self.budget.as_ref().map(ByteBudget::max)
    }

    /// The default TTL, if any.
    pub fn default_ttl(&self) -> Option<Duration> {
        self.default_ttl.map(Duration::from_nanos)
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The cache's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// Locks `shard` (the `index`-th), then replays the reads handed over for it, if any: what every
/// operation and the background thread do before anything else with a shard.
#[inline]
fn lock_replaying<'a>(
    shard: &'a Mutex<ShardState>,
    index: usize,
    handed_over: Option<&DeferredReads>,
) -> MutexGuard<'a, ShardState> {
    if let Some(reads) = handed_over {
        reads.route_unrouted();
    }
    let mut state = lock(shard);
    if let Some(reads) = handed_over {
        if reads.has_queued(index) {
            reads.replay_queued(index, &mut state.shard);
        }
    }
    state
}

/// The shard of a hash among `shards`. Uses bits 25..57: the shard's own table takes its bucket
/// from the low bits and its tag from the top 7, which must stay independent of the shard choice.
#[inline]
pub(crate) fn shard_of(hash: Hash, shards: usize) -> usize {
    let bits = (hash >> 25) & 0xFFFF_FFFF;
    ((bits * shards as u64) >> 32) as usize
}

/// What a `get_or_insert_with` round found.
enum Step {
    Hit(Vec<u8>),
    Wait(Arc<PendingSlot>),
    Compute(Arc<PendingSlot>),
}

/// A key's place in a batch: its position, hash and shard.
pub(crate) struct Routed {
    pub(crate) index: usize,
    pub(crate) hash: Hash,
    pub(crate) shard: usize,
}

/// Hashes keys with `hasher` and orders them by shard among `shards`, keeping the given order
/// within a shard (for a cache's batches, and for the reads handed over to its background
/// thread).
pub(crate) fn route<'k>(
    hasher: &RandomState,
    shards: usize,
    keys: impl Iterator<Item = &'k [u8]>,
) -> Vec<Routed> {
    let mut routed: Vec<Routed> = keys
        .enumerate()
        .map(|(index, key)| {
            let hash = hasher.hash_one(key);
            Routed {
                index,
                hash,
                shard: shard_of(hash, shards),
            }
        })
        .collect();
    routed.sort_by_key(|r| r.shard);
    routed
}

/// Clears a `get_or_insert_with` pending mark and wakes its waiters, also when the computation
/// panicked or failed.
struct PendingGuard<'a> {
    cache: &'a Cache,
    key: &'a [u8],
    index: usize,
    slot: Arc<PendingSlot>,
    /// Whether the mark was already cleared (with the value stored under the same lock).
    cleared: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if !self.cleared {
            self.cache
                .lock_shard(self.index)
                .clear_pending(self.key, &self.slot);
        }
        self.slot.finish();
    }
}

/// An entry that passed the checks of `Cache::admit`.
#[derive(Clone, Copy)]
struct Admitted {
    weight: u32,
    ttl: Option<u64>,
}

impl Admitted {
    /// The deadline of the entry if stored at `now`.
    fn deadline(self, now: u64) -> u64 {
        deadline_after(now, self.ttl)
    }
}

fn remaining(deadline: u64, now: u64) -> Option<Duration> {
    (deadline != NO_DEADLINE).then(|| Duration::from_nanos(deadline.saturating_sub(now)))
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("max_entries", &self.max_entries())
            .field("max_bytes", &self.max_bytes())
            .field("default_ttl", &self.default_ttl())
            .field("shards", &self.shards.len())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(feature = "shuttle")))]
mod tests {
    use super::*;

    #[test]
    fn packed_reads_handed_over_give_the_results_of_reads_handed_over_key_by_key() {
        // Keys of several lengths (the C ABI's layout allows any), some absent: after the same
        // puts and reads, the same counters and the same recency (one shard each: two caches
        // hash differently, so on more shards they would split the keys differently).
        let keys: Vec<Vec<u8>> = (0..60u32).map(|i| vec![b'k'; 1 + i as usize % 7]).collect();
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .enumerate()
            .map(|(i, mut key)| {
                key.extend_from_slice(&(i as u32).to_le_bytes());
                key
            })
            .collect();
        let by_key = Cache::builder(400).shards(1).build().unwrap(); // room for every key
        let packed = Cache::builder(400).shards(1).build().unwrap();
        for key in &keys[..40] {
            by_key.put(key, b"v").unwrap();
            packed.put(key, b"v").unwrap();
        }
        let reads: Vec<&[u8]> = (0..300).map(|i| &keys[(i * 7) % 60][..]).collect();
        by_key.record_reads_later(&reads, 2);
        let lens: Vec<usize> = reads.iter().map(|key| key.len()).collect();
        packed.record_packed_reads_later(&reads.concat(), &lens, 2);
        // Every key stored is read 5 times: 200 hits, 100 misses and the 2 given.
        let (a, b) = (by_key.stats(), packed.stats());
        assert_eq!((a.hits, a.misses), (b.hits, b.misses));
        assert_eq!((b.hits, b.misses), (200, 102));
        // Recency decides what a smaller cache keeps.
        by_key.resize(20).unwrap();
        packed.resize(20).unwrap();
        assert_eq!(by_key.stats().evictions, 20);
        let order = |cache: &Cache| cache.iter().map(|entry| entry.key).collect::<Vec<_>>();
        assert_eq!(order(&by_key), order(&packed));
    }

    #[test]
    fn packed_reads_whose_lengths_do_not_match_their_keys_are_refused_before_any_is_handed_over() {
        let cache = Cache::new(10).unwrap();
        cache.put(b"ab", b"v").unwrap();
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.record_packed_reads_later(b"abab", &[2, 3], 0)
        }));
        assert!(refused.is_err());
        assert_eq!(cache.stats().hits, 0);
    }

    #[test]
    fn a_hand_over_past_the_limit_is_routed_and_replayed_by_the_caller() {
        let cache = Cache::builder(4000).shards(4).build().unwrap(); // room for every key
        for i in 0..1000u32 {
            cache.put(i.to_le_bytes(), b"v").unwrap();
        }
        // One hand-over larger than the limit: the caller routes and replays it before it
        // returns, so nothing is left for the background thread.
        let reads: Vec<[u8; 4]> = (0..MAX_UNROUTED_READS as u32 + 100)
            .map(|i| (i % 1000).to_le_bytes())
            .collect();
        cache.record_reads_later(&reads, 3);
        let handed_over = cache.handed_over.get().expect("the reads were handed over");
        assert!(handed_over.reads.is_drained());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (reads.len() as u64, 3));
        // The last reads decide the order: keys read last are the most recent, in each shard.
        cache.resize(4).unwrap();
        for key in cache.iter().map(|entry| entry.key) {
            let i = u32::from_le_bytes(key[..].try_into().unwrap());
            let last_read = (MAX_UNROUTED_READS as u32 + 99) % 1000;
            assert!(
                (last_read + 1000 - i) % 1000 < 50,
                "key {i} is not among the last read"
            );
        }
    }

    #[test]
    fn a_computation_asking_for_its_own_key_gets_the_reentry_error_and_nothing_is_stored() {
        let cache = Cache::builder(16).shards(1).build().unwrap();
        let mut inner = None;
        let outer = cache.get_or_insert_refusing_reentry(
            b"k",
            || {
                // Directly, and through the computation of another key.
                inner = Some(cache.get_or_insert_refusing_reentry(
                    b"k",
                    || Ok(b"inner".to_vec()),
                    || "asked again",
                ));
                let nested = cache.get_or_insert_refusing_reentry(
                    b"other",
                    || cache.get_or_insert_refusing_reentry(b"k", || Ok(vec![]), || "nested"),
                    || "not this one",
                );
                assert_eq!(nested, Err("nested"));
                Err("outer gave up")
            },
            || "not this one either",
        );
        assert_eq!(inner, Some(Err("asked again")));
        assert_eq!(outer, Err("outer gave up"));
        assert!(cache.is_empty());
        // The pending marks are gone: the key computes normally now.
        let value = cache.get_or_insert_refusing_reentry(b"k", || Ok(b"v".to_vec()), || "no");
        assert_eq!(value.as_deref(), Ok(&b"v"[..]));
    }

    #[test]
    #[should_panic(expected = "computing a key asked for the same key again")]
    fn the_public_get_or_insert_panics_on_reentry_as_documented() {
        let cache = Cache::builder(16).shards(1).build().unwrap();
        cache.get_or_insert_with(b"k", || cache.get_or_insert_with(b"k", Vec::new));
    }

    #[test]
    fn a_finite_ttl_whose_deadline_is_past_the_clock_ends_with_the_clock_not_never() {
        use crate::{ManualClock, SaveOptions, MAX_CLOCK_NANOS};
        let manual = |at: u64| {
            let time = ManualClock::new();
            time.set(Duration::from_nanos(at));
            time
        };
        let ten_ns_left = Some(Some(Duration::from_nanos(10)));
        // A snapshot with a TTL of 1000 ns, to be loaded near the top of the clock.
        let early = Cache::builder(16)
            .clock(Clock::manual(&manual(0)))
            .build()
            .unwrap();
        early
            .put_with_ttl(b"loaded", b"v", Duration::from_nanos(1_000))
            .unwrap();
        let mut file = Vec::new();
        early.save_to(&mut file, SaveOptions::default()).unwrap();

        let time = manual(MAX_CLOCK_NANOS - 10);
        let cache = Cache::builder(16)
            .shards(1)
            .default_ttl(Duration::from_nanos(1_000))
            .clock(Clock::manual(&time))
            .build()
            .unwrap();
        cache.load_from(&file[..], Default::default()).unwrap();
        cache
            .put_with_ttl(b"put", b"v", Duration::from_nanos(100))
            .unwrap();
        cache.put(b"default", b"v").unwrap();
        cache.get_or_insert_with(b"computed", || b"v".to_vec());
        let options = |ttl: u64| PutOptions {
            ttl: Some(Duration::from_nanos(ttl)),
            weight: None,
        };
        let batch: [(&[u8], &[u8], PutOptions); 3] = [
            (b"batch", b"v", options(u64::MAX - 1)),
            // The endless TTL (u64::MAX ns, what Duration::MAX saturates to) never expires.
            (b"endless", b"v", options(u64::MAX)),
            (
                b"endless-too",
                b"v",
                PutOptions {
                    ttl: Some(Duration::MAX),
                    weight: None,
                },
            ),
        ];
        cache.put_entries(&batch).unwrap();
        let keys: [&[u8]; 5] = [b"loaded", b"put", b"default", b"computed", b"batch"];
        for key in keys {
            let key_name = String::from_utf8_lossy(key);
            assert_eq!(cache.remaining_ttl(key), ten_ns_left, "{key_name}");
        }
        time.set(Duration::from_nanos(MAX_CLOCK_NANOS));
        for key in keys {
            let key_name = String::from_utf8_lossy(key);
            assert_eq!(cache.remaining_ttl(key), None, "{key_name} did not expire");
        }
        for key in [&b"endless"[..], b"endless-too"] {
            assert_eq!(cache.remaining_ttl(key), Some(None));
        }
    }
}

//! Model-based test: random sequences of operations run against a one-shard cache on a manual clock
//! and against a small model of the engine's semantics written to be obviously correct. Every
//! result, every eviction notification and the statistics must agree after every step.
//!
//! The model keeps what the engine stores, expired entries included until something reclaims them
//! (the engine reclaims lazily), in a `Vec` ordered most recently used first:
//! - an entry is expired when `now >= deadline`;
//! - an operation that finds an expired entry under its key (get, peek, contains, remaining_ttl,
//!   remove, put) reclaims it as an expiration (a get also counts a miss); eviction that pops an
//!   expired least recently used entry counts an expiration, not an eviction; `expire()` reclaims
//!   all of them, and so do `len()`, `weight()` and `stats()` before they count;
//! - `clear()` reports live entries as cleared (removals) and expired ones as expired;
//! - a put over a live key is an update (the listener hears `Replaced` with the old value) and
//!   makes it most recent; a new key first evicts while `len >= max_entries`; after any put, the
//!   least recently used entries go while the weight exceeds `max_bytes`, but never the entry just
//!   stored; an entry heavier than `max_bytes` is refused and nothing changes;
//! - `peek`, `contains`, `remaining_ttl` and `iter` change neither recency nor hit/miss counts.

use alphaforge_cache::{
    Cache, CacheEntry, Clock, Error, ManualClock, PutOptions, RemovalCause, Stats,
};
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The key space: few enough keys that hits, updates, evictions and expiries all happen, of
/// different lengths (the empty key included) so that default weights differ.
const KEYS: [&str; 8] = ["", "a", "b", "cc", "dd", "eee", "f", "gggg"];

type Notification = (Vec<u8>, Vec<u8>, RemovalCause);

/// One call on the cache. Keys are indices into `KEYS`; times and TTLs are in nanoseconds.
#[derive(Debug, Clone)]
enum Op {
    Get(usize),
    GetInto(usize),
    Peek(usize),
    Contains(usize),
    RemainingTtl(usize),
    Put(usize, String),
    /// A TTL of 0 is refused with `ZeroTtl`.
    PutWithTtl(usize, String, u64),
    PutWith {
        key: usize,
        value: String,
        ttl: Option<u64>,
        weight: Option<u32>,
    },
    Remove(usize),
    Clear,
    Expire,
    /// 0 is refused.
    Resize(usize),
    /// 0, or a cache without a byte bound, is refused.
    SetMaxBytes(u64),
    Len,
    IsEmpty,
    Weight,
    Iter,
    GetMany(Vec<usize>),
    /// Replays reads served elsewhere (a binding's mirror), and counts misses.
    RecordReads(Vec<usize>, u64),
    /// The same, handed over to the background thread.
    RecordReadsLater(Vec<usize>, u64),
    PutMany(Vec<(usize, String)>),
    GetOrInsertWith(usize, String),
    Advance(u64),
    /// Sets the clock anywhere, backwards included.
    SetClock(u64),
    Stats,
    ResetStats,
}

/// How a cache is built, and how the test watches it.
#[derive(Debug, Clone)]
struct Setup {
    max_entries: usize,
    max_bytes: Option<u64>,
    default_ttl: Option<u64>,
    listener: bool,
    /// Read `stats()` after every step (it reclaims every expired entry, so lazy reclamation is
    /// then rarely seen); otherwise only after steps that leave no expired entry stored, where
    /// `stats()` changes nothing.
    stats_every_step: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    key: Vec<u8>,
    value: Vec<u8>,
    weight: u64,
    deadline: Option<u64>,
}

/// The model: the stored entries, most recently used first, and the counters.
struct Model {
    now: u64,
    max_entries: usize,
    max_bytes: Option<u64>,
    default_ttl: Option<u64>,
    entries: Vec<Entry>,
    /// Counters only; `entries` and `weight` are computed when asked.
    counters: Stats,
    /// Notifications the listener should have received since the last check.
    notes: Vec<Notification>,
}

impl Model {
    fn new(setup: &Setup) -> Model {
        Model {
            now: 0,
            max_entries: setup.max_entries,
            max_bytes: setup.max_bytes,
            default_ttl: setup.default_ttl,
            entries: Vec::new(),
            counters: Stats::default(),
            notes: Vec::new(),
        }
    }

    fn is_expired(&self, entry: &Entry) -> bool {
        entry.deadline.is_some_and(|deadline| self.now >= deadline)
    }

    fn has_expired(&self) -> bool {
        self.entries.iter().any(|e| self.is_expired(e))
    }

    fn total_weight(&self) -> u64 {
        self.entries.iter().map(|e| e.weight).sum()
    }

    /// Removes the stored entry at `i`, counting and reporting it under `cause`.
    fn remove_at(&mut self, i: usize, cause: RemovalCause) -> Entry {
        let entry = self.entries.remove(i);
        match cause {
            RemovalCause::Evicted => self.counters.evictions += 1,
            RemovalCause::Expired => self.counters.expirations += 1,
            RemovalCause::Removed | RemovalCause::Cleared => self.counters.removals += 1,
            RemovalCause::Replaced => {}
        }
        self.notes
            .push((entry.key.clone(), entry.value.clone(), cause));
        entry
    }

    /// The position of the live entry under `key`; an expired one found there is reclaimed.
    fn find_live(&mut self, key: &[u8]) -> Option<usize> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        if self.is_expired(&self.entries[i]) {
            self.remove_at(i, RemovalCause::Expired);
            return None;
        }
        Some(i)
    }

    fn evict_lru(&mut self) {
        let last = self.entries.len() - 1;
        let cause = if self.is_expired(&self.entries[last]) {
            RemovalCause::Expired
        } else {
            RemovalCause::Evicted
        };
        self.remove_at(last, cause);
    }

    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        match self.find_live(key) {
            Some(i) => {
                self.counters.hits += 1;
                let entry = self.entries.remove(i);
                self.entries.insert(0, entry);
                Some(self.entries[0].value.clone())
            }
            None => {
                self.counters.misses += 1;
                None
            }
        }
    }

    /// Reads served elsewhere: a key stored (expired or not: the reader saw it live) counts a
    /// hit and becomes the most recent; any other a miss. Nothing is reclaimed.
    fn record_reads(&mut self, keys: &[&[u8]], misses: u64) {
        for key in keys {
            match self.entries.iter().position(|e| e.key == *key) {
                Some(i) => {
                    self.counters.hits += 1;
                    let entry = self.entries.remove(i);
                    self.entries.insert(0, entry);
                }
                None => self.counters.misses += 1,
            }
        }
        self.counters.misses += misses;
    }

    fn peek(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let i = self.find_live(key)?;
        Some(self.entries[i].value.clone())
    }

    fn remaining_ttl(&mut self, key: &[u8]) -> Option<Option<Duration>> {
        let i = self.find_live(key)?;
        let now = self.now;
        Some(
            self.entries[i]
                .deadline
                .map(|deadline| Duration::from_nanos(deadline - now)),
        )
    }

    /// The weight and deadline of a prospective entry, or why it is refused.
    fn admit(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<u64>,
        weight: Option<u32>,
    ) -> Result<(u64, Option<u64>), Error> {
        let weight = weight.map_or((key.len() + value.len()) as u64, u64::from);
        if let Some(max_bytes) = self.max_bytes {
            if weight > max_bytes {
                return Err(Error::EntryTooHeavy { weight, max_bytes });
            }
        }
        let ttl = match ttl {
            Some(0) => return Err(Error::ZeroTtl),
            Some(ttl) => Some(ttl),
            None => self.default_ttl,
        };
        Ok((weight, ttl.map(|ttl| self.now + ttl)))
    }

    fn store(&mut self, key: &[u8], value: &[u8], weight: u64, deadline: Option<u64>) {
        let entry = Entry {
            key: key.to_vec(),
            value: value.to_vec(),
            weight,
            deadline,
        };
        match self.find_live(key) {
            Some(i) => {
                let old = self.entries.remove(i);
                self.notes
                    .push((old.key, old.value, RemovalCause::Replaced));
                self.counters.updates += 1;
            }
            None => {
                while self.entries.len() >= self.max_entries {
                    self.evict_lru();
                }
                self.counters.inserts += 1;
            }
        }
        self.entries.insert(0, entry);
        if let Some(max_bytes) = self.max_bytes {
            while self.total_weight() > max_bytes && self.entries.len() > 1 {
                self.evict_lru();
            }
        }
    }

    fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        ttl: Option<u64>,
        weight: Option<u32>,
    ) -> Result<(), Error> {
        let (weight, deadline) = self.admit(key, value, ttl, weight)?;
        self.store(key, value, weight, deadline);
        Ok(())
    }

    /// Every item is admitted before any is stored.
    fn put_many(&mut self, items: &[(Vec<u8>, Vec<u8>)]) -> Result<(), Error> {
        let admitted = items
            .iter()
            .map(|(k, v)| self.admit(k, v, None, None))
            .collect::<Result<Vec<_>, _>>()?;
        for ((key, value), (weight, deadline)) in items.iter().zip(admitted) {
            self.store(key, value, weight, deadline);
        }
        Ok(())
    }

    /// Returns the value and whether it was computed.
    fn get_or_insert_with(&mut self, key: &[u8], computed: &[u8]) -> (Vec<u8>, bool) {
        if let Some(value) = self.get(key) {
            return (value, false);
        }
        // A value too heavy to store is returned all the same.
        if let Ok((weight, deadline)) = self.admit(key, computed, None, None) {
            self.store(key, computed, weight, deadline);
        }
        (computed.to_vec(), true)
    }

    fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let i = self.find_live(key)?;
        Some(self.remove_at(i, RemovalCause::Removed).value)
    }

    fn clear(&mut self) {
        while !self.entries.is_empty() {
            let cause = if self.is_expired(&self.entries[0]) {
                RemovalCause::Expired
            } else {
                RemovalCause::Cleared
            };
            self.remove_at(0, cause);
        }
    }

    /// Reclaims the expired entries, most recent first, and returns how many.
    fn expire(&mut self) -> usize {
        let mut expired = 0;
        let mut i = 0;
        while i < self.entries.len() {
            if self.is_expired(&self.entries[i]) {
                self.remove_at(i, RemovalCause::Expired);
                expired += 1;
            } else {
                i += 1;
            }
        }
        expired
    }

    fn len(&mut self) -> usize {
        self.expire();
        self.entries.len()
    }

    fn weight(&mut self) -> u64 {
        self.expire();
        self.total_weight()
    }

    fn stats(&mut self) -> Stats {
        self.expire();
        Stats {
            entries: self.entries.len() as u64,
            weight: self.total_weight(),
            ..self.counters
        }
    }

    fn reset_stats(&mut self) {
        self.counters = Stats::default();
    }

    fn resize(&mut self, max_entries: usize) -> Result<(), Error> {
        if max_entries == 0 {
            return Err(Error::InvalidMaxEntries { given: 0 });
        }
        self.max_entries = max_entries;
        while self.entries.len() > max_entries {
            self.evict_lru();
        }
        Ok(())
    }

    fn set_max_bytes(&mut self, max_bytes: u64) -> Result<(), Error> {
        if self.max_bytes.is_none() || max_bytes == 0 {
            return Err(Error::InvalidMaxBytes);
        }
        self.max_bytes = Some(max_bytes);
        while self.total_weight() > max_bytes && !self.entries.is_empty() {
            self.evict_lru();
        }
        Ok(())
    }

    /// The live entries, most recent first, as `Cache::iter` reports them.
    fn live(&self) -> Vec<CacheEntry> {
        self.entries
            .iter()
            .filter(|e| !self.is_expired(e))
            .map(|e| CacheEntry {
                key: e.key.clone(),
                value: e.value.clone(),
                ttl: e.deadline.map(|d| Duration::from_nanos(d - self.now)),
            })
            .collect()
    }
}

type Log = Arc<Mutex<Vec<Notification>>>;

/// The cache under test, its clock and its listener's log, next to the model.
struct Harness {
    cache: Cache,
    clock: ManualClock,
    log: Option<Log>,
    model: Model,
    setup: Setup,
}

fn key(i: usize) -> &'static [u8] {
    KEYS[i].as_bytes()
}

fn nanos(n: u64) -> Duration {
    Duration::from_nanos(n)
}

impl Harness {
    fn new(setup: Setup) -> Harness {
        let clock = ManualClock::new();
        let mut builder = Cache::builder(setup.max_entries)
            .shards(1)
            .clock(Clock::manual(&clock));
        if let Some(max_bytes) = setup.max_bytes {
            builder = builder.max_bytes(max_bytes);
        }
        if let Some(ttl) = setup.default_ttl {
            builder = builder.default_ttl(nanos(ttl));
        }
        let log = setup.listener.then(Log::default);
        if let Some(log) = &log {
            let sink = Arc::clone(log);
            builder = builder.eviction_listener(move |k, v, cause| {
                sink.lock().unwrap().push((k.to_vec(), v.to_vec(), cause));
            });
        }
        Harness {
            cache: builder.build().expect("a valid configuration"),
            clock,
            log,
            model: Model::new(&setup),
            setup,
        }
    }

    /// Applies `op` to the cache and the model and compares what they return.
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let (cache, model) = (&self.cache, &mut self.model);
        match op {
            Op::Get(k) => prop_assert_eq!(cache.get(key(*k)), model.get(key(*k))),
            Op::GetInto(k) => {
                let mut buf = b"stale".to_vec();
                let found = cache.get_into(key(*k), &mut buf);
                match model.get(key(*k)) {
                    Some(value) => prop_assert!(found && buf == value, "get_into: {buf:?}"),
                    None => prop_assert!(!found && buf == b"stale", "get_into: {buf:?}"),
                }
            }
            Op::Peek(k) => prop_assert_eq!(cache.peek(key(*k)), model.peek(key(*k))),
            Op::Contains(k) => {
                prop_assert_eq!(cache.contains(key(*k)), model.peek(key(*k)).is_some())
            }
            Op::RemainingTtl(k) => {
                prop_assert_eq!(cache.remaining_ttl(key(*k)), model.remaining_ttl(key(*k)))
            }
            Op::Put(k, v) => prop_assert_eq!(
                cache.put(key(*k), v),
                model.put(key(*k), v.as_bytes(), None, None)
            ),
            Op::PutWithTtl(k, v, ttl) => prop_assert_eq!(
                cache.put_with_ttl(key(*k), v, nanos(*ttl)),
                model.put(key(*k), v.as_bytes(), Some(*ttl), None)
            ),
            Op::PutWith {
                key: k,
                value,
                ttl,
                weight,
            } => {
                let options = PutOptions {
                    ttl: ttl.map(nanos),
                    weight: *weight,
                };
                prop_assert_eq!(
                    cache.put_with(key(*k), value, options),
                    model.put(key(*k), value.as_bytes(), *ttl, *weight)
                );
            }
            Op::Remove(k) => prop_assert_eq!(cache.remove(key(*k)), model.remove(key(*k))),
            Op::Clear => {
                cache.clear();
                model.clear();
            }
            Op::Expire => prop_assert_eq!(cache.expire(), model.expire()),
            Op::Resize(n) => {
                prop_assert_eq!(cache.resize(*n), model.resize(*n));
            }
            Op::SetMaxBytes(n) => {
                prop_assert_eq!(cache.set_max_bytes(*n), model.set_max_bytes(*n));
            }
            Op::Len => prop_assert_eq!(cache.len(), model.len()),
            Op::IsEmpty => prop_assert_eq!(cache.is_empty(), model.len() == 0),
            Op::Weight => prop_assert_eq!(cache.weight(), model.weight()),
            Op::Iter => {
                let iter = cache.iter();
                prop_assert_eq!(iter.len(), model.live().len());
                prop_assert_eq!(iter.collect::<Vec<_>>(), model.live());
            }
            Op::GetMany(keys) => {
                let keys: Vec<&[u8]> = keys.iter().map(|&k| key(k)).collect();
                let expected: Vec<_> = keys.iter().map(|k| model.get(k)).collect();
                prop_assert_eq!(cache.get_many(&keys), expected);
            }
            Op::RecordReads(keys, misses) => {
                let keys: Vec<&[u8]> = keys.iter().map(|&k| key(k)).collect();
                cache.record_reads(&keys, *misses);
                model.record_reads(&keys, *misses);
            }
            Op::RecordReadsLater(keys, misses) => {
                let keys: Vec<&[u8]> = keys.iter().map(|&k| key(k)).collect();
                cache.record_reads_later(&keys, *misses);
                model.record_reads(&keys, *misses);
            }
            Op::PutMany(items) => {
                let items: Vec<(Vec<u8>, Vec<u8>)> = items
                    .iter()
                    .map(|(k, v)| (key(*k).to_vec(), v.as_bytes().to_vec()))
                    .collect();
                prop_assert_eq!(cache.put_many(&items), model.put_many(&items));
            }
            Op::GetOrInsertWith(k, v) => {
                let mut computed = false;
                let value = cache.get_or_insert_with(key(*k), || {
                    computed = true;
                    v.as_bytes().to_vec()
                });
                prop_assert_eq!(
                    (value, computed),
                    model.get_or_insert_with(key(*k), v.as_bytes())
                );
            }
            Op::Advance(by) => {
                self.clock.advance(nanos(*by));
                model.now += by;
            }
            Op::SetClock(to) => {
                self.clock.set(nanos(*to));
                model.now = *to;
            }
            Op::Stats => {
                let stats = cache.stats();
                let expected = model.stats();
                prop_assert_eq!(stats, expected);
                prop_assert_eq!(stats.hit_ratio(), expected.hit_ratio());
            }
            Op::ResetStats => {
                cache.reset_stats();
                model.reset_stats();
            }
        }
        Ok(())
    }

    /// Compares the notifications since the last check, then everything observable that reading
    /// does not change.
    fn check(&mut self) -> Result<(), TestCaseError> {
        self.check_notifications()?;
        prop_assert_eq!(self.cache.iter().collect::<Vec<_>>(), self.model.live());
        prop_assert_eq!(self.cache.max_entries(), self.model.max_entries);
        prop_assert_eq!(self.cache.max_bytes(), self.model.max_bytes);
        prop_assert_eq!(self.cache.default_ttl(), self.model.default_ttl.map(nanos));
        prop_assert_eq!(self.clock.now_nanos(), self.model.now);
        // The bounds hold over everything stored, expired entries included.
        prop_assert!(self.model.entries.len() <= self.model.max_entries);
        if let Some(max_bytes) = self.model.max_bytes {
            prop_assert!(self.model.total_weight() <= max_bytes);
        }
        if self.setup.stats_every_step || !self.model.has_expired() {
            prop_assert_eq!(self.cache.stats(), self.model.stats());
            self.check_notifications()?;
        }
        Ok(())
    }

    fn check_notifications(&mut self) -> Result<(), TestCaseError> {
        let expected = std::mem::take(&mut self.model.notes);
        if let Some(log) = &self.log {
            let heard = std::mem::take(&mut *log.lock().unwrap());
            prop_assert_eq!(heard, expected);
        }
        Ok(())
    }
}

fn run(setup: Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut harness = Harness::new(setup);
    for (step, op) in ops.iter().enumerate() {
        harness
            .apply(op)
            .and_then(|()| harness.check())
            .map_err(|err| TestCaseError::fail(format!("step {step}, {op:?}: {err}")))?;
    }
    // Whatever the sequence, the counters agree at the end.
    prop_assert_eq!(harness.cache.stats(), harness.model.stats());
    harness.check_notifications()
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1usize..=8,
        prop::option::of(1u64..=30),
        prop::option::of(1u64..=6),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(max_entries, max_bytes, default_ttl, listener, stats_every_step)| Setup {
                max_entries,
                max_bytes,
                default_ttl,
                listener,
                stats_every_step,
            },
        )
}

fn key_index() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn value() -> impl Strategy<Value = String> {
    "[xyz]{0,6}"
}

/// A TTL, sometimes zero (refused).
fn ttl() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 8 => 1u64..=6]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => key_index().prop_map(Op::Get),
        2 => key_index().prop_map(Op::GetInto),
        3 => key_index().prop_map(Op::Peek),
        3 => key_index().prop_map(Op::Contains),
        2 => key_index().prop_map(Op::RemainingTtl),
        8 => (key_index(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        4 => (key_index(), value(), ttl()).prop_map(|(k, v, t)| Op::PutWithTtl(k, v, t)),
        4 => (
            key_index(),
            value(),
            prop::option::of(ttl()),
            prop::option::of(0u32..=35),
        )
            .prop_map(|(key, value, ttl, weight)| Op::PutWith {
                key,
                value,
                ttl,
                weight,
            }),
        3 => key_index().prop_map(Op::Remove),
        1 => Just(Op::Clear),
        2 => Just(Op::Expire),
        1 => (0usize..=9).prop_map(Op::Resize),
        1 => (0u64..=35).prop_map(Op::SetMaxBytes),
        1 => Just(Op::Len),
        1 => Just(Op::IsEmpty),
        1 => Just(Op::Weight),
        1 => Just(Op::Iter),
        2 => prop::collection::vec(key_index(), 0..5).prop_map(Op::GetMany),
        2 => prop::collection::vec((key_index(), value()), 0..5).prop_map(Op::PutMany),
        2 => (prop::collection::vec(key_index(), 0..6), 0u64..=2)
            .prop_map(|(keys, misses)| Op::RecordReads(keys, misses)),
        4 => (prop::collection::vec(key_index(), 0..6), 0u64..=2)
            .prop_map(|(keys, misses)| Op::RecordReadsLater(keys, misses)),
        2 => (key_index(), value()).prop_map(|(k, v)| Op::GetOrInsertWith(k, v)),
        5 => prop_oneof![8 => 0u64..=3, 1 => Just(100u64)].prop_map(Op::Advance),
        1 => (0u64..=12).prop_map(Op::SetClock),
        2 => Just(Op::Stats),
        1 => Just(Op::ResetStats),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    fn cache_matches_the_model(setup in setup(), ops in prop::collection::vec(op(), 1..120)) {
        run(setup, &ops)?;
    }
}

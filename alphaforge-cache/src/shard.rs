//! One shard: an exact LRU with TTLs and weights. Single-threaded; it knows nothing of locks. The
//! concurrent cache (`cache.rs`) owns one per lock.

use crate::byte_budget::ByteBudget;
use crate::linked_slab::{LinkedSlab, NIL};
use crate::notification::{RemovalCause, Removals};
use crate::record::{Record, NO_DEADLINE};
use crate::stats::Stats;
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// A key's hash, computed once per operation by the cache and shared with its shard.
pub(crate) type Hash = u64;

/// What `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutOutcome {
    Inserted,
    Updated,
}

pub(crate) struct Shard {
    /// Maps a key's hash to its slot in `list`.
    table: HashTable<u32>,
    /// The entries in recency order.
    list: LinkedSlab<Record>,
    hasher: RandomState,
    max_entries: usize,
    /// Sum of the stored entries' weights.
    weight: u64,
    /// Stored entries that have a deadline.
    with_deadline: usize,
    /// No stored entry's deadline is earlier than this (a lower bound, made exact by `expire`).
    earliest_deadline: u64,
    counters: Stats,
}

impl Shard {
    pub(crate) fn new(max_entries: usize, hasher: RandomState) -> Self {
        Shard {
            table: HashTable::new(),
            list: LinkedSlab::new(max_entries),
            hasher,
            max_entries,
            weight: 0,
            with_deadline: 0,
            earliest_deadline: NO_DEADLINE,
            counters: Stats::default(),
        }
    }

    /// An empty shard with room for `capacity` entries made at once (at most `max_entries`), for
    /// a shard filled in one go (a snapshot being loaded).
    pub(crate) fn with_capacity(max_entries: usize, hasher: RandomState, capacity: usize) -> Self {
        let capacity = capacity.min(max_entries);
        let mut shard = Shard::new(max_entries, hasher);
        shard.table.reserve(capacity, |_| 0);
        shard.list.reserve(capacity);
        shard
    }

    /// An empty shard for a bulk load: room for `capacity` entries in its list made at once (at
    /// most `max_entries`), none in its table, which [`index_pushed`](Self::index_pushed) sizes
    /// exactly.
    pub(crate) fn for_bulk_load(max_entries: usize, hasher: RandomState, capacity: usize) -> Self {
        let mut shard = Shard::new(max_entries, hasher);
        shard.list.reserve(capacity.min(max_entries));
        shard
    }

    /// Stored entries, expired ones included (see `live_len`).
    pub(crate) fn stored_len(&self) -> usize {
        self.list.len()
    }

    /// Live entries at `now`: the stored ones less those expired but not reclaimed yet. O(1)
    /// when none can have expired (no deadline, or none reached yet), else one pass.
    pub(crate) fn live_len(&self, now: u64) -> usize {
        if self.none_can_have_expired(now) {
            return self.list.len();
        }
        self.live_records_lru_first(now).count()
    }

    /// Whether no stored entry can have expired at `now`: none has a deadline, or none has
    /// reached the shard's earliest (a lower bound, made exact by `expire`).
    fn none_can_have_expired(&self, now: u64) -> bool {
        self.with_deadline == 0 || now < self.earliest_deadline
    }

    /// Whether the shard holds as many entries as its bound.
    pub(crate) fn is_full(&self) -> bool {
        self.list.len() >= self.max_entries
    }

    /// Bulk loading: stores `record` as the most recently used entry without indexing it or
    /// looking for its key (which may already be stored). Only for a shard that has had nothing
    /// but `push_unindexed` since it was made, and is not full; [`index_pushed`](Self::index_pushed)
    /// must follow before any other use. The entry is the shard's `n`-th pushed, `n` from 0: its
    /// slot in the list.
    pub(crate) fn push_unindexed(&mut self, record: Record) {
        debug_assert!(!self.is_full() && self.table.is_empty());
        self.weight += u64::from(record.weight());
        self.note_deadline(record.deadline);
        self.list.push_front(record);
    }

    /// Bulk loading: indexes every entry stored by [`push_unindexed`](Self::push_unindexed),
    /// `hashes[n]` being the hash of the `n`-th. Of a key pushed more than once only the last
    /// push stays, so the shard ends as if each entry had been [`put`](Self::put) in turn (an
    /// update moves the entry to the front: the earlier push is simply dropped). The pushes
    /// never filled the shard, so such puts would have evicted nothing. Counters are untouched.
    pub(crate) fn index_pushed(&mut self, hashes: &[Hash]) {
        debug_assert!(self.table.is_empty() && self.list.len() == hashes.len());
        let list = &self.list;
        let hasher = &self.hasher;
        self.table
            .reserve(hashes.len(), |&i| hasher.hash_one(list.get(i).key()));
        let mut dropped = Vec::new();
        for idx in in_table_order(hashes) {
            let hash = hashes[idx as usize];
            // The full hashes first: two keys rarely share one, and the keys are far in memory.
            let same_key = |&other: &u32| {
                hashes[other as usize] == hash && list.get(other).key() == list.get(idx).key()
            };
            let rehash = |&i: &u32| hasher.hash_one(list.get(i).key());
            match self.table.entry(hash, same_key, rehash) {
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(idx);
                }
                hashbrown::hash_table::Entry::Occupied(mut slot) => {
                    // Slots were given in push order: the larger is the later push.
                    let earlier = (*slot.get()).min(idx);
                    *slot.get_mut() = (*slot.get()).max(idx);
                    dropped.push(earlier);
                }
            }
        }
        for idx in dropped {
            let record = self.list.remove(idx);
            self.weight -= u64::from(record.weight());
            if record.deadline != NO_DEADLINE {
                self.with_deadline -= 1;
            }
        }
    }

    fn find(&self, hash: Hash, key: &[u8]) -> Option<u32> {
        let list = &self.list;
        self.table
            .find(hash, |&idx| list.get(idx).key() == key)
            .copied()
    }

    /// A get: the live entry under `key`, made most recently used, or `None` (a miss).
    pub(crate) fn get(
        &mut self,
        hash: Hash,
        key: &[u8],
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) -> Option<&Record> {
        match self.find_live(hash, key, now, budget, out) {
            Some(idx) => {
                self.counters.hits += 1;
                self.list.move_to_front(idx);
                Some(self.list.get(idx))
            }
            None => {
                self.counters.misses += 1;
                None
            }
        }
    }

    /// Replays a get served elsewhere: if `key` is still stored it counts a hit and becomes the
    /// most recently used entry (without checking its deadline: the reader already did);
    /// otherwise it counts a miss.
    pub(crate) fn record_get(&mut self, hash: Hash, key: &[u8]) {
        if let Some(idx) = self.find(hash, key) {
            self.counters.hits += 1;
            self.list.move_to_front(idx);
        } else {
            self.counters.misses += 1;
        }
    }

    /// Replays a batch of gets served elsewhere, in order: `record_get` for each `(hash, key)`,
    /// with the same result, but faster on a large cache, where each read of the table, of a
    /// slot and of a key's bytes is a trip to main memory. One read's trips depend on each other,
    /// another read's do not; so the batch goes in passes that each make one kind of trip for
    /// every read, letting the CPU overlap them (memory-level parallelism): the slot whose hash
    /// tag matches (the table alone), then those slots (key pointer, neighbours), then the keys'
    /// bytes and the neighbours' slots; the last pass checks each key and moves it to the front
    /// with everything at hand. A candidate whose key differs (a 7-bit tag collision) falls back
    /// to `record_get`.
    pub(crate) fn record_gets<'k>(&mut self, reads: impl Iterator<Item = (Hash, &'k [u8])>) {
        let reads: Vec<(Hash, &[u8])> = reads.collect();
        let table = &self.table;
        let candidates: Vec<u32> = reads
            .iter()
            .map(|&(hash, _)| table.find(hash, |_| true).copied().unwrap_or(NIL))
            .collect();
        {
            let list = &self.list;
            let found: Vec<(&[u8], (u32, u32))> = candidates
                .iter()
                .filter(|&&idx| idx != NIL)
                .map(|&idx| (list.get(idx).key(), list.neighbours(idx)))
                .collect();
            let mut warmth = 0u32;
            for &(key, (prev, next)) in &found {
                warmth ^= u32::from(key.first().copied().unwrap_or(0))
                    ^ list.warm_slot(prev)
                    ^ list.warm_slot(next);
            }
            std::hint::black_box(warmth);
        }
        for (&(hash, key), &idx) in reads.iter().zip(&candidates) {
            if idx != NIL && self.list.get(idx).key() == key {
                self.counters.hits += 1;
                self.list.move_to_front(idx);
            } else {
                self.record_get(hash, key);
            }
        }
    }

    /// Counts misses decided elsewhere.
    pub(crate) fn record_misses(&mut self, misses: u64) {
        self.counters.misses += misses;
    }

    /// The live entry under `key`, without touching recency or hit/miss counters. An expired entry
    /// found on the way is reclaimed.
    pub(crate) fn peek(
        &mut self,
        hash: Hash,
        key: &[u8],
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) -> Option<&Record> {
        let idx = self.find_live(hash, key, now, budget, out)?;
        Some(self.list.get(idx))
    }

    fn find_live(
        &mut self,
        hash: Hash,
        key: &[u8],
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) -> Option<u32> {
        let idx = self.find(hash, key)?;
        if self.list.get(idx).is_expired(now) {
            self.remove_at(idx, hash, RemovalCause::Expired, budget, out);
            return None;
        }
        Some(idx)
    }

    /// Stores `key -> value` as the most recently used entry, then evicts least recently used
    /// entries until the bounds hold. The caller has checked the entry's sizes and weight.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn put(
        &mut self,
        hash: Hash,
        key: &[u8],
        value: &[u8],
        weight: u32,
        deadline: u64,
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) -> PutOutcome {
        let outcome = match self.find_live(hash, key, now, budget, out) {
            Some(idx) => {
                self.update(idx, value, weight, deadline, budget, out);
                PutOutcome::Updated
            }
            None => {
                // A full shard evicts first; the victim's allocation is reused for the new entry
                // when nobody is told of it and its size fits (no free + malloc under the lock).
                let mut victim = None;
                while self.list.len() >= self.max_entries {
                    victim = self.evict_lru_for_reuse(now, budget, out);
                }
                let record = match victim {
                    Some(mut old) if old.can_hold(key, value) => {
                        old.overwrite(key, value, weight, deadline);
                        old
                    }
                    _ => Record::new(key, value, weight, deadline),
                };
                self.insert(hash, record, budget);
                PutOutcome::Inserted
            }
        };
        self.trim_to_budget(now, budget, out);
        outcome
    }

    /// [`put`](Self::put) of an entry whose record is made already, its bytes an allocation the
    /// caller hands over (a large entry of a snapshot load): stored without a copy, unless its
    /// key is live already (then its value is copied into place, as a put does).
    pub(crate) fn put_record(
        &mut self,
        hash: Hash,
        record: Record,
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) -> PutOutcome {
        let outcome = match self.find_live(hash, record.key(), now, budget, out) {
            Some(idx) => {
                let (value, weight, deadline) = (record.value(), record.weight(), record.deadline);
                self.update(idx, value, weight, deadline, budget, out);
                PutOutcome::Updated
            }
            None => {
                while self.list.len() >= self.max_entries {
                    // A victim nobody is told of is simply dropped: the record has its bytes.
                    drop(self.evict_lru_for_reuse(now, budget, out));
                }
                self.insert(hash, record, budget);
                PutOutcome::Inserted
            }
        };
        self.trim_to_budget(now, budget, out);
        outcome
    }

    /// After a put: evicts least recently used entries while the byte bound is exceeded, never
    /// the entry just stored (it is at the front, so it stops at one).
    fn trim_to_budget(&mut self, now: u64, budget: Option<&ByteBudget>, out: &mut Removals) {
        if let Some(budget) = budget {
            while budget.exceeded() && self.list.len() > 1 {
                self.evict_lru(now, Some(budget), out);
            }
        }
    }

    fn update(
        &mut self,
        idx: u32,
        value: &[u8],
        weight: u32,
        deadline: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) {
        let record = self.list.get_mut(idx);
        let old_weight = u64::from(record.weight());
        let had_deadline = record.deadline != NO_DEADLINE;
        if let Some(old) = record.replace_value(value, weight, deadline, out.keeps()) {
            out.push(old, RemovalCause::Replaced);
        }
        self.counters.updates += 1;
        self.list.move_to_front(idx);
        self.adjust_weight(old_weight, u64::from(weight), budget);
        if had_deadline {
            self.with_deadline -= 1;
        }
        self.note_deadline(deadline);
    }

    fn insert(&mut self, hash: Hash, record: Record, budget: Option<&ByteBudget>) {
        let weight = u64::from(record.weight());
        let deadline = record.deadline;
        let idx = self.list.push_front(record);
        let (list, hasher) = (&self.list, &self.hasher);
        self.table
            .insert_unique(hash, idx, |&i| hasher.hash_one(list.get(i).key()));
        self.counters.inserts += 1;
        self.adjust_weight(0, weight, budget);
        self.note_deadline(deadline);
    }

    fn note_deadline(&mut self, deadline: u64) {
        if deadline != NO_DEADLINE {
            self.with_deadline += 1;
            self.earliest_deadline = self.earliest_deadline.min(deadline);
        }
    }

    fn adjust_weight(&mut self, old: u64, new: u64, budget: Option<&ByteBudget>) {
        self.weight = self.weight - old + new;
        if let Some(budget) = budget {
            budget.add(new);
            budget.sub(old);
        }
    }

    /// Removes the least recently used entry (as expired if it is). Returns false when empty.
    pub(crate) fn evict_lru(
        &mut self,
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) -> bool {
        match self.pop_lru(now, budget) {
            Some((record, cause)) => {
                out.push(record, cause);
                true
            }
            None => false,
        }
    }

    /// Like [`evict_lru`](Self::evict_lru), but hands the victim's record back instead of
    /// dropping it when no listener keeps it (`None` otherwise, or when empty).
    fn evict_lru_for_reuse(
        &mut self,
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) -> Option<Record> {
        let (record, cause) = self.pop_lru(now, budget)?;
        if out.keeps() {
            out.push(record, cause);
            None
        } else {
            Some(record)
        }
    }

    /// Takes the least recently used entry out and counts it (as expired if it is).
    fn pop_lru(&mut self, now: u64, budget: Option<&ByteBudget>) -> Option<(Record, RemovalCause)> {
        let idx = self.list.back()?;
        let record = self.list.get(idx);
        let cause = if record.is_expired(now) {
            RemovalCause::Expired
        } else {
            RemovalCause::Evicted
        };
        let hash = self.hasher.hash_one(record.key());
        let record = self.take_at(idx, hash, budget);
        self.count_removal(cause);
        Some((record, cause))
    }

    /// Removes the entry at `idx` and counts it under `cause`; the record goes to `out`.
    fn remove_at(
        &mut self,
        idx: u32,
        hash: Hash,
        cause: RemovalCause,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) {
        let record = self.take_at(idx, hash, budget);
        self.count_removal(cause);
        out.push(record, cause);
    }

    fn take_at(&mut self, idx: u32, hash: Hash, budget: Option<&ByteBudget>) -> Record {
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == idx) {
            entry.remove();
        }
        let record = self.list.remove(idx);
        self.adjust_weight(u64::from(record.weight()), 0, budget);
        if record.deadline != NO_DEADLINE {
            self.with_deadline -= 1;
        }
        record
    }

    fn count_removal(&mut self, cause: RemovalCause) {
        match cause {
            RemovalCause::Evicted => self.counters.evictions += 1,
            RemovalCause::Expired => self.counters.expirations += 1,
            RemovalCause::Removed | RemovalCause::Cleared => self.counters.removals += 1,
            RemovalCause::Replaced => {}
        }
    }

    /// Removes the live entry under `key` and returns it (the caller tells the listener).
    pub(crate) fn remove(
        &mut self,
        hash: Hash,
        key: &[u8],
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) -> Option<Record> {
        let idx = self.find_live(hash, key, now, budget, out)?;
        let record = self.take_at(idx, hash, budget);
        self.count_removal(RemovalCause::Removed);
        Some(record)
    }

    /// Removes every entry: live ones as cleared, expired ones as expired.
    pub(crate) fn clear(&mut self, now: u64, budget: Option<&ByteBudget>, out: &mut Removals) {
        for record in self.list.drain() {
            let cause = if record.is_expired(now) {
                RemovalCause::Expired
            } else {
                RemovalCause::Cleared
            };
            self.count_removal(cause);
            out.push(record, cause);
        }
        self.table = HashTable::new();
        self.adjust_weight(self.weight, 0, budget);
        self.with_deadline = 0;
        self.earliest_deadline = NO_DEADLINE;
    }

    /// Reclaims every expired entry and returns how many there were. O(1) when none can have
    /// expired yet, else one pass over the shard.
    pub(crate) fn expire(
        &mut self,
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) -> usize {
        if self.none_can_have_expired(now) {
            return 0;
        }
        let expired: Vec<u32> = self
            .list
            .indices_front_to_back()
            .filter(|&idx| self.list.get(idx).is_expired(now))
            .collect();
        for &idx in &expired {
            let hash = self.hasher.hash_one(self.list.get(idx).key());
            self.remove_at(idx, hash, RemovalCause::Expired, budget, out);
        }
        let list = &self.list;
        self.earliest_deadline = list
            .indices_front_to_back()
            .map(|idx| list.get(idx).deadline)
            .min()
            .unwrap_or(NO_DEADLINE);
        expired.len()
    }

    /// Changes the entry bound, evicting least recently used entries beyond it.
    pub(crate) fn resize(
        &mut self,
        max_entries: usize,
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) {
        self.max_entries = max_entries;
        while self.list.len() > max_entries {
            self.evict_lru(now, budget, out);
        }
        self.list.set_capacity_limit(max_entries);
    }

    /// Live entries, most recently used first, without reclaiming anything.
    pub(crate) fn live_records(&self, now: u64) -> impl Iterator<Item = &Record> + '_ {
        self.list
            .indices_front_to_back()
            .map(|idx| self.list.get(idx))
            .filter(move |record| !record.is_expired(now))
    }

    /// Live entries, least recently used first, without reclaiming anything.
    pub(crate) fn live_records_lru_first(&self, now: u64) -> impl Iterator<Item = &Record> + '_ {
        self.list
            .indices_back_to_front()
            .map(|idx| self.list.get(idx))
            .filter(move |record| !record.is_expired(now))
    }

    /// Takes `staged`'s entries in place of this shard's, as if this shard were cleared and they
    /// were put: the old entries go to `out` (as `clear` reports them), the new ones count as
    /// inserts, and entries beyond this shard's bound are evicted. `staged` must use this
    /// shard's hasher. The other counters stay.
    pub(crate) fn replace_with(
        &mut self,
        staged: Shard,
        now: u64,
        budget: Option<&ByteBudget>,
        out: &mut Removals,
    ) {
        self.clear(now, budget, out);
        self.counters.inserts += staged.list.len() as u64;
        self.table = staged.table;
        self.list = staged.list;
        self.list.set_capacity_limit(self.max_entries);
        self.adjust_weight(0, staged.weight, budget);
        self.with_deadline = staged.with_deadline;
        self.earliest_deadline = staged.earliest_deadline;
        while self.list.len() > self.max_entries {
            self.evict_lru(now, budget, out);
        }
    }

    /// Calls `f` on every stored entry's value, in no particular order, to change it in place
    /// (its length, and so its weight, stay).
    pub(crate) fn for_each_value_mut(&mut self, mut f: impl FnMut(&mut [u8])) {
        self.list.for_each_mut(|record| f(record.value_mut()));
    }

    /// Stored entries that have a deadline.
    pub(crate) fn has_deadlines(&self) -> bool {
        self.with_deadline > 0
    }

    /// Counters plus the stored entries and weight (call `expire` first for live figures).
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            entries: self.list.len() as u64,
            weight: self.weight,
            ..self.counters
        }
    }

    pub(crate) fn reset_stats(&mut self) {
        self.counters = Stats::default();
    }
}

/// Every index `i` of `hashes`, ordered so that the table (sized for `hashes.len()` entries)
/// is walked from its first buckets to its last rather than at random: inserting a million
/// keys at random places in a table of several MiB costs a cache and TLB miss each. The order
/// only matters for speed: the table's bucket count is guessed as hashbrown computes it
/// (a power of two, at least 8/7 of the entries), and entries are grouped by the top 8 bits
/// of that bucket number (one counting sort pass; a group spans a few KiB of the table).
/// Indices only, 4 bytes each: the hashes are read again where they are, in the CPU caches.
fn in_table_order(hashes: &[Hash]) -> Vec<u32> {
    const GROUP_BITS: u32 = 8;
    const MIN_SORTED: usize = 1 << 12;
    let n = hashes.len();
    let indices = 0..n as u32;
    if n < MIN_SORTED {
        // The table fits in the caches anyway.
        return indices.collect();
    }
    let bits = (n / 7 * 8 + 8).next_power_of_two().trailing_zeros();
    let shift = bits.saturating_sub(GROUP_BITS);
    let group = |hash: Hash| ((hash & ((1 << bits) - 1)) >> shift) as usize;
    let mut starts = [0usize; 1 << GROUP_BITS];
    for &hash in hashes {
        starts[group(hash)] += 1;
    }
    let mut at = 0;
    for start in starts.iter_mut() {
        let count = *start;
        *start = at;
        at += count;
    }
    let mut sorted = vec![0; n];
    for (&hash, idx) in hashes.iter().zip(indices) {
        let slot = &mut starts[group(hash)];
        sorted[*slot] = idx;
        *slot += 1;
    }
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(max: usize) -> Shard {
        Shard::new(max, RandomState::default())
    }

    fn put(s: &mut Shard, key: &[u8], deadline: u64, now: u64) -> PutOutcome {
        let h = s.hasher.hash_one(key);
        let mut out = Removals::new(false);
        s.put(
            h,
            key,
            b"v",
            key.len() as u32 + 1,
            deadline,
            now,
            None,
            &mut out,
        )
    }

    fn get(s: &mut Shard, key: &[u8], now: u64) -> bool {
        let h = s.hasher.hash_one(key);
        s.get(h, key, now, None, &mut Removals::new(false))
            .is_some()
    }

    fn keys(s: &Shard, now: u64) -> Vec<Vec<u8>> {
        s.live_records(now).map(|r| r.key().to_vec()).collect()
    }

    #[test]
    fn evicts_least_recently_used() {
        let mut s = shard(2);
        put(&mut s, b"a", NO_DEADLINE, 0);
        put(&mut s, b"b", NO_DEADLINE, 0);
        assert!(get(&mut s, b"a", 0));
        put(&mut s, b"c", NO_DEADLINE, 0);
        assert_eq!(keys(&s, 0), [b"c".to_vec(), b"a".to_vec()]);
        assert_eq!(s.stats().evictions, 1);
    }

    #[test]
    fn expire_reclaims_only_expired() {
        let mut s = shard(10);
        put(&mut s, b"a", 5, 0);
        put(&mut s, b"b", 10, 0);
        put(&mut s, b"c", NO_DEADLINE, 0);
        let mut out = Removals::new(true);
        assert_eq!(s.expire(4, None, &mut out), 0);
        assert_eq!(s.expire(5, None, &mut out), 1);
        assert_eq!(s.earliest_deadline, 10);
        assert_eq!(s.expire(100, None, &mut out), 1);
        assert_eq!(s.with_deadline, 0);
        assert_eq!(keys(&s, 100), [b"c".to_vec()]);
        assert_eq!(s.stats().expirations, 2);
    }

    #[test]
    fn live_len_counts_what_live_records_yield() {
        let mut s = shard(10);
        let live = |s: &Shard, now| (s.live_len(now), s.live_records_lru_first(now).count());
        put(&mut s, b"a", NO_DEADLINE, 0);
        put(&mut s, b"b", NO_DEADLINE, 0);
        assert_eq!(live(&s, 0), (2, 2));
        put(&mut s, b"c", 5, 0);
        put(&mut s, b"d", 10, 0);
        for now in [0, 4, 5, 9, 10, 11] {
            let (fast, walked) = live(&s, now);
            assert_eq!(fast, walked, "at {now}");
        }
        assert_eq!(live(&s, 4), (4, 4));
        assert_eq!(live(&s, 5), (3, 3));
        assert_eq!(live(&s, 10), (2, 2));
        // Reclaimed: the bound is exact again, and nothing is walked until it is reached.
        let mut out = Removals::new(false);
        assert_eq!(s.expire(5, None, &mut out), 1);
        assert_eq!(live(&s, 9), (3, 3));
    }

    #[test]
    fn update_keeps_one_entry_and_counts_update() {
        let mut s = shard(10);
        assert_eq!(put(&mut s, b"a", NO_DEADLINE, 0), PutOutcome::Inserted);
        assert_eq!(put(&mut s, b"a", 7, 0), PutOutcome::Updated);
        assert_eq!(s.stored_len(), 1);
        assert_eq!((s.stats().inserts, s.stats().updates), (1, 1));
        assert_eq!(s.with_deadline, 1);
        // An expired key is re-inserted, not updated.
        assert_eq!(put(&mut s, b"a", NO_DEADLINE, 7), PutOutcome::Inserted);
        assert_eq!(s.stats().expirations, 1);
        assert_eq!(s.with_deadline, 0);
    }

    fn put_with_hash(s: &mut Shard, hash: Hash, key: &[u8]) {
        let mut out = Removals::new(false);
        s.put(hash, key, b"v", 1, NO_DEADLINE, 0, None, &mut out);
    }

    #[test]
    fn record_gets_checks_the_key_of_a_slot_found_by_hash_alone() {
        // Two keys under one hash: the slot found by the hash alone may be the other key's, so
        // the batch falls back to a full lookup; a key not stored under a stored key's hash is a
        // miss that moves nothing.
        let mut s = shard(10);
        put_with_hash(&mut s, 7, b"a");
        put_with_hash(&mut s, 7, b"b");
        put_with_hash(&mut s, 9, b"c");
        s.record_gets([(7, &b"a"[..]), (9, b"c"), (7, b"b"), (7, b"zz")].into_iter());
        assert_eq!(keys(&s, 0), [b"b".to_vec(), b"c".to_vec(), b"a".to_vec()]);
        assert_eq!((s.stats().hits, s.stats().misses), (3, 1));
        s.record_gets([(7, &b"a"[..])].into_iter());
        assert_eq!(keys(&s, 0), [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    proptest::proptest! {
        /// A batch replayed by `record_gets` leaves the order and counters that replaying its
        /// reads one by one with `record_get` leaves.
        #[test]
        fn record_gets_is_record_get_in_order(
            stored in proptest::collection::vec(0u8..40, 0..60),
            reads in proptest::collection::vec(0u8..48, 0..300),
        ) {
            let mut batched = shard(32);
            let mut single = shard(32);
            for &k in &stored {
                put(&mut batched, &[k], NO_DEADLINE, 0);
                put(&mut single, &[k], NO_DEADLINE, 0);
            }
            let keys_read: Vec<[u8; 1]> = reads.iter().map(|&k| [k]).collect();
            let hasher = batched.hasher.clone();
            batched.record_gets(keys_read.iter().map(|k| (hasher.hash_one(k), &k[..])));
            for k in &keys_read {
                let h = single.hasher.hash_one(k);
                single.record_get(h, k);
            }
            proptest::prop_assert_eq!(keys(&batched, 0), keys(&single, 0));
            let (b, o) = (batched.stats(), single.stats());
            proptest::prop_assert_eq!((b.hits, b.misses), (o.hits, o.misses));
        }
    }
}

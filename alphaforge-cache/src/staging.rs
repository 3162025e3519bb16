//! Shards filled without locks and swapped into a cache whole: how a snapshot is loaded without
//! touching the cache until the whole file has been read and checked.
//!
//! Putting the staged entries in order (least recently used first) gives what putting them into
//! an empty cache of the same bounds would: each shard keeps its most recently used entries that
//! fit its entry bound, and the byte bound is enforced across shards as `Cache::put_with` does.
//! Memory stays within the cache's bounds however large the snapshot is.
//!
//! Without a byte bound each shard is filled on its own, and in bulk while it has room: entries
//! are pushed onto its recency list in order, unindexed, and its table is built once at the end
//! (or when the shard fills up), sized exactly and walked in bucket order, on several threads
//! when there are several shards. A shard that fills up is indexed then and takes the rest as
//! puts (which evict). The result is the same as putting every entry in turn.
//!
//! Entries staged by [`Staging::put_block`] (a snapshot's) share their block's bytes
//! (`entry_bytes`): one allocation per 64 KiB instead of one per entry.

use crate::byte_budget::ByteBudget;
use crate::cache::shard_of;
use crate::entry_bytes::{BlockEntry, LoadedBlock, SHARED_ENTRY_MAX};
use crate::notification::Removals;
use crate::options::split_evenly;
use crate::record::{deadline_after, Record, NO_DEADLINE};
use crate::shard::{Hash, Shard};
use foldhash::fast::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;

pub(crate) struct Staging {
    shards: Vec<Shard>,
    /// Per shard, while it is filled in bulk: the hashes of the entries pushed, unindexed
    /// (`None` once it is indexed and takes puts). Always `None` with a byte bound, which is
    /// enforced across shards entry by entry.
    pushed: Vec<Option<Vec<Hash>>>,
    budget: Option<ByteBudget>,
    hasher: RandomState,
    /// The time deadlines are computed from.
    now: u64,
    /// Entries that were evicted or skipped drop here (no listener hears of them).
    dropped: Removals,
}

/// An entry being staged: its key and value, and how its record is made when it is pushed in
/// bulk (a put copies the key and value instead).
trait StagedEntry {
    fn key_and_value(&self) -> (&[u8], &[u8]);
    fn into_record(self, weight: u32, deadline: u64) -> Record;
    /// Whether a put (not only a bulk push) should take the record itself rather than copy the
    /// key and value: for a record made already, whose bytes would otherwise be held twice.
    fn put_as_record(&self) -> bool {
        false
    }
}

/// An entry given as borrowed bytes: its record copies them.
struct Copied<'a>(&'a [u8], &'a [u8]);

impl StagedEntry for Copied<'_> {
    fn key_and_value(&self) -> (&[u8], &[u8]) {
        (self.0, self.1)
    }

    fn into_record(self, weight: u32, deadline: u64) -> Record {
        Record::new(self.0, self.1, weight, deadline)
    }
}

/// An entry in a loaded block: its record shares the block.
struct InBlock<'a>(&'a Arc<Vec<u8>>, &'a BlockEntry);

impl StagedEntry for InBlock<'_> {
    fn key_and_value(&self) -> (&[u8], &[u8]) {
        entry_of(self.0, self.1)
    }

    fn into_record(self, weight: u32, deadline: u64) -> Record {
        let (start, len) = (self.1.start as usize, self.1.len as usize);
        Record::in_block(
            self.0,
            start,
            len,
            self.1.key_len as usize,
            weight,
            deadline,
        )
    }
}

/// An entry whose record is made already (its deadline is set when it is staged).
struct Built(Record);

impl StagedEntry for Built {
    fn key_and_value(&self) -> (&[u8], &[u8]) {
        (self.0.key(), self.0.value())
    }

    fn into_record(mut self, _weight: u32, deadline: u64) -> Record {
        self.0.deadline = deadline;
        self.0
    }

    fn put_as_record(&self) -> bool {
        true
    }
}

/// The key and value of `entry` in its block's `bytes`.
fn entry_of<'a>(bytes: &'a [u8], entry: &BlockEntry) -> (&'a [u8], &'a [u8]) {
    let (start, len) = (entry.start as usize, entry.len as usize);
    bytes[start..start + len].split_at(entry.key_len as usize)
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
        let per_shard = (expected / shards + expected / shards / 8 + 16).min(expected);
        let bulk = max_bytes.is_none();
        let shards: Vec<Shard> = (0..shards)
            .map(|i| {
                let max = split_evenly(max_entries, shards, i);
                if bulk {
                    Shard::for_bulk_load(max, hasher.clone(), per_shard)
                } else {
                    Shard::with_capacity(max, hasher.clone(), per_shard)
                }
            })
            .collect();
        let pushed = shards
            .iter()
            .map(|_| bulk.then(|| Vec::with_capacity(per_shard)))
            .collect();
        Staging {
            shards,
            pushed,
            budget: max_bytes.map(ByteBudget::new),
            hasher,
            now,
            dropped: Removals::new(false),
        }
    }

    /// Stages the entries of `block` in order, as [`put`](Self::put) would, the records
    /// sharing the block's bytes (under a byte bound, which stages entry by entry, each gets an
    /// allocation of its own; so does an entry too large to share a block, whose block becomes
    /// its allocation without a copy).
    pub(crate) fn put_block(&mut self, block: LoadedBlock) {
        if let [entry] = block.entries[..] {
            let whole = entry.start == 0 && entry.len as usize == block.bytes.len();
            if whole && block.bytes.len() > SHARED_ENTRY_MAX {
                // A block of its own (a large entry): it becomes the record's allocation.
                let key_len = entry.key_len as usize;
                let data = block.bytes.into_boxed_slice();
                let record = Record::own(data, key_len, entry.weight, NO_DEADLINE);
                self.stage(entry.weight, entry.ttl_ns, Built(record));
                return;
            }
        }
        if self.budget.is_some() {
            for entry in &block.entries {
                let (key, value) = entry_of(&block.bytes, entry);
                self.put(key, value, entry.weight, entry.ttl_ns);
            }
            return;
        }
        let bytes = Arc::new(block.bytes);
        for entry in &block.entries {
            self.stage(entry.weight, entry.ttl_ns, InBlock(&bytes, entry));
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
        self.stage(weight, ttl_ns, Copied(key, value))
    }

    /// [`put`](Self::put) of `entry`, which says its key and value and makes its record.
    fn stage(&mut self, weight: u32, ttl_ns: Option<u64>, entry: impl StagedEntry) -> bool {
        if let Some(budget) = &self.budget {
            if u64::from(weight) > budget.max() {
                return false;
            }
        }
        let deadline = deadline_after(self.now, ttl_ns);
        let hash = self.hasher.hash_one(entry.key_and_value().0);
        let n = self.shards.len();
        let index = shard_of(hash, n);
        let shard = &mut self.shards[index];
        if let Some(hashes) = &mut self.pushed[index] {
            if !shard.is_full() {
                shard.push_unindexed(entry.into_record(weight, deadline));
                hashes.push(hash);
                return true;
            }
            // Full: from now on an entry may evict, as a put decides.
            shard.index_pushed(hashes);
            self.pushed[index] = None;
        }
        let budget = self.budget.as_ref();
        let (now, out) = (self.now, &mut self.dropped);
        if entry.put_as_record() {
            shard.put_record(hash, entry.into_record(weight, deadline), now, budget, out);
        } else {
            let (key, value) = entry.key_and_value();
            shard.put(hash, key, value, weight, deadline, now, budget, out);
        }
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
        // Entries pushed in bulk are not all held until indexed (a key may have come twice).
        self.index_pushed(available_threads());
        for shard in &mut self.shards {
            shard.for_each_value_mut(&mut f);
        }
    }

    /// The filled shards, in index order, and the time their deadlines were computed from.
    pub(crate) fn into_parts(mut self) -> (Vec<Shard>, u64) {
        self.index_pushed(available_threads());
        (self.shards, self.now)
    }

    /// Indexes every shard still filled in bulk, on up to `threads` threads (this one included)
    /// when there are enough entries for threads to pay off.
    fn index_pushed(&mut self, threads: usize) {
        let entries: usize = self.pushed.iter().flatten().map(Vec::len).sum();
        let threads = if entries < PARALLEL_MIN_ENTRIES {
            1
        } else {
            threads.min(self.shards.len()).max(1)
        };
        let work: Vec<(&mut Shard, Vec<Hash>)> = self
            .shards
            .iter_mut()
            .zip(self.pushed.iter_mut())
            .filter_map(|(shard, hashes)| Some((shard, hashes.take()?)))
            .collect();
        if threads <= 1 {
            for (shard, hashes) in work {
                shard.index_pushed(&hashes);
            }
            return;
        }
        // Each thread takes the next shard left until none is: shards of uneven sizes balance.
        let queue = std::sync::Mutex::new(work);
        let index_next = || loop {
            let next = queue.lock().map_or(None, |mut left| left.pop());
            let Some((shard, hashes)) = next else { break };
            shard.index_pushed(&hashes);
        };
        std::thread::scope(|scope| {
            for _ in 1..threads {
                // A thread that cannot be started leaves its share to the others.
                let _ = std::thread::Builder::new()
                    .name("afc-load".into())
                    .spawn_scoped(scope, index_next);
            }
            index_next();
        });
    }
}

/// How many threads may work at once on a load or a save (1 where the machine cannot say).
pub(crate) fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Below this many entries, a load's shards are indexed on the calling thread only.
const PARALLEL_MIN_ENTRIES: usize = 1 << 15;

#[cfg(test)]
mod tests {
    use super::*;

    /// `(key, value, weight, ttl_ns)`.
    type Row = (Vec<u8>, Vec<u8>, u32, Option<u64>);

    /// `n` entries over `distinct` keys (so keys come back), some with TTLs, weights of their
    /// own and values of several lengths.
    fn rows(n: u64, distinct: u64) -> Vec<Row> {
        (0..n)
            .map(|i| {
                let key = format!("key-{}", (i * 7_919) % distinct).into_bytes();
                let value = i.to_le_bytes().repeat((i % 3) as usize + 1);
                let weight = (key.len() + value.len()) as u32 + (i % 5) as u32;
                (key, value, weight, (i % 4 == 0).then_some(1_000 + i))
            })
            .collect()
    }

    /// Every shard's entries, most recently used first, each found again through its table,
    /// with the shard's entry count, weight, and how many entries have a deadline.
    fn state(shards: &mut [Shard], hasher: &RandomState, now: u64) -> Vec<(Vec<Row>, u64, u64)> {
        shards
            .iter_mut()
            .map(|shard| {
                let rows: Vec<Row> = shard
                    .live_records(now)
                    .map(|r| {
                        let ttl = (r.deadline != NO_DEADLINE).then(|| r.deadline - now);
                        (r.key().to_vec(), r.value().to_vec(), r.weight(), ttl)
                    })
                    .collect();
                let mut out = Removals::new(false);
                for (key, value, _, _) in &rows {
                    let found = shard.peek(hasher.hash_one(key), key, now, None, &mut out);
                    assert_eq!(found.map(|r| r.value()), Some(&value[..]));
                }
                let stats = shard.stats();
                assert_eq!(stats.entries, rows.len() as u64);
                let with_deadline = shard.expire(u64::MAX - 1, None, &mut out) as u64;
                (rows, stats.weight, with_deadline)
            })
            .collect()
    }

    #[test]
    fn bulk_and_parallel_staging_leave_what_puts_leave() {
        let now = 5_000;
        let rows = rows(40_000, 30_000);
        for shards in [1, 3, 8] {
            // Room for all (no eviction), then for fewer than the distinct keys (shards fill up
            // and switch to puts part way).
            for max_entries in [50_000, 20_000] {
                let hasher = RandomState::default();
                let mut reference: Vec<Shard> = (0..shards)
                    .map(|i| Shard::new(split_evenly(max_entries, shards, i), hasher.clone()))
                    .collect();
                let mut out = Removals::new(false);
                for (key, value, weight, ttl) in &rows {
                    let hash = hasher.hash_one(key);
                    let deadline = deadline_after(now, *ttl);
                    let shard = &mut reference[shard_of(hash, shards)];
                    shard.put(hash, key, value, *weight, deadline, now, None, &mut out);
                }
                let expected = state(&mut reference, &hasher, now);
                for threads in [1, 4] {
                    let mut staging =
                        Staging::new(max_entries, shards, None, hasher.clone(), now, rows.len());
                    for (key, value, weight, ttl) in &rows {
                        assert!(staging.put(key, value, *weight, *ttl));
                    }
                    staging.index_pushed(threads);
                    let (mut staged, staged_now) = staging.into_parts();
                    assert_eq!(staged_now, now);
                    let found = state(&mut staged, &hasher, now);
                    let what = format!("{shards} shards, {max_entries} entries, {threads} threads");
                    assert_eq!(found, expected, "{what}");
                }
            }
        }
    }
    #[test]
    fn large_entries_staged_from_their_own_blocks_leave_what_puts_leave() {
        // Entries larger than a shared block's limit become blocks of their own, whose bytes the
        // record takes (bulk pushes, and puts once a shard is full or under a byte bound); keys
        // come back, so some of them update a live entry.
        use crate::entry_bytes::{BlockFiller, BLOCK_BYTES};
        let now = 5_000;
        let rows: Vec<Row> = (0..300u64)
            .map(|i| {
                let key = format!("key-{}", (i * 37) % 120).into_bytes();
                let len = if i % 3 == 0 {
                    SHARED_ENTRY_MAX + 1 + (i as usize) * 50
                } else {
                    20
                };
                let value = vec![i as u8; len];
                let weight = (key.len() + value.len()) as u32;
                (key, value, weight, (i % 4 == 0).then_some(1_000 + i))
            })
            .collect();
        for shards in [1, 3] {
            for max_entries in [500, 40] {
                for max_bytes in [None, Some(200_000), Some(30_000)] {
                    let hasher = RandomState::default();
                    let new_staging =
                        || Staging::new(max_entries, shards, max_bytes, hasher.clone(), now, 300);
                    let mut by_puts = new_staging();
                    for (key, value, weight, ttl) in &rows {
                        by_puts.put(key, value, *weight, *ttl);
                    }
                    let mut by_blocks = new_staging();
                    let mut filler = BlockFiller::new(BLOCK_BYTES);
                    for (key, value, weight, ttl) in &rows {
                        let bytes = [&key[..], &value[..]].concat();
                        if bytes.len() > SHARED_ENTRY_MAX {
                            let (before, own) = filler.add_own(bytes, key.len(), *weight, *ttl);
                            before.into_iter().for_each(|b| by_blocks.put_block(b));
                            by_blocks.put_block(own);
                        } else if let Some(b) = filler.add(&bytes, key.len(), *weight, *ttl) {
                            by_blocks.put_block(b);
                        }
                    }
                    filler
                        .finish()
                        .into_iter()
                        .for_each(|b| by_blocks.put_block(b));
                    let (mut expected, _) = by_puts.into_parts();
                    let (mut found, _) = by_blocks.into_parts();
                    let what = format!("{shards} shards, {max_entries} entries, {max_bytes:?}");
                    let expected = state(&mut expected, &hasher, now);
                    assert!(
                        expected.iter().any(|(rows, _, _)| !rows.is_empty()),
                        "{what}"
                    );
                    assert_eq!(state(&mut found, &hasher, now), expected, "{what}");
                }
            }
        }
    }
}

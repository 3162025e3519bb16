//! Reads replayed later: batches of gets that a binding served from its own mirror of the cache,
//! handed over without waiting and replayed by the process's background thread (one for all
//! caches), or by whichever operation locks their shard first (as Caffeine drains its read
//! buffers). The caller's thread then does not spend the replay's trips to main memory itself,
//! and no result changes: every operation on a shard replays the reads handed over for it before
//! anything else, under the shard's lock.
//!
//! A hand-over is queued as the caller made it (its keys copied, in read order): the background
//! thread hashes the keys and sorts them by shard (routes the batch), then replays each shard's
//! part. Whoever needs a shard first routes whatever is still unrouted, so an operation never
//! misses a read handed over before it.

use crate::cache::{route, Routed};
use crate::packed_keys;
use crate::shard::{Hash, Shard};
use foldhash::fast::RandomState;
use parking_lot::Mutex;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Reads handed over and not yet routed beyond which the caller routes and replays everything
/// itself rather than queue more (the background thread is behind, or gone, as in a forked child
/// process).
pub(crate) const MAX_UNROUTED_READS: usize = 8192;

/// Spare batches kept for reuse, and the largest key buffer kept.
const SPARE_BATCHES: usize = 8;
const SPARE_KEY_BYTES: usize = 64 << 10;

/// How long the background thread waits for more work, spinning, before it parks, unless
/// [`SPIN_ENV`] says otherwise. Waking a parked thread is a system call and, under a hypervisor,
/// an interrupt to another virtual CPU (several microseconds); a binding hands reads over every
/// few microseconds while it is busy (`get_many` of 100 keys, or 256 single gets), so that while
/// work keeps coming the thread is never parked and a hand-over only sets a flag. An idle
/// process pays this spin once per burst; a busy one keeps a CPU busy with it.
const SPIN_BEFORE_PARKING: Duration = Duration::from_micros(200);

/// The environment variable that sets the spin, in microseconds (0 to [`MAX_SPIN_MICROS`]; 0:
/// park as soon as there is no work). Like OpenMP's `OMP_WAIT_POLICY`: where CPUs are shared
/// (many processes, containers with a CPU quota), a thread spinning through a burst of reads
/// costs more than the wake-ups it saves. Read once, when the thread starts.
const SPIN_ENV: &str = "ALPHAFORGE_CACHE_SPIN_US";

/// The longest spin [`SPIN_ENV`] may ask for: 10 ms.
const MAX_SPIN_MICROS: u64 = 10_000;

/// The spin that [`SPIN_ENV`]'s value (`None`: unset; empty counts as unset) asks for, or why
/// the value is refused.
fn spin_from_env(value: Option<&str>) -> Result<Duration, String> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(SPIN_BEFORE_PARKING);
    };
    match value.trim().parse::<u64>() {
        Ok(micros) if micros <= MAX_SPIN_MICROS => Ok(Duration::from_micros(micros)),
        _ => Err(format!(
            "{SPIN_ENV}={value:?} is not a whole number of microseconds from 0 to \
             {MAX_SPIN_MICROS}; using the default, {} us",
            SPIN_BEFORE_PARKING.as_micros()
        )),
    }
}

/// The spin this process uses: [`SPIN_ENV`]'s, or the default with a warning on stderr (once)
/// when its value is refused or is not Unicode.
fn spin_of_process() -> Duration {
    let value = std::env::var_os(SPIN_ENV);
    let text = value
        .as_ref()
        .map(|v| v.to_str().unwrap_or("(not Unicode)"));
    spin_from_env(text).unwrap_or_else(|why| {
        eprintln!("alphaforge-cache: {why}");
        SPIN_BEFORE_PARKING
    })
}

/// One hand-over of reads as the caller made it: the keys in read order, and misses decided
/// elsewhere. Its buffers are reused (`DeferredReads::spare_batch`): the thread that hands a
/// batch over need not allocate, and the thread that replays it need not free memory another
/// thread allocated (which, with the system allocator, takes that thread's arena lock).
#[derive(Default)]
pub(crate) struct HandedBatch {
    keys: Vec<u8>,
    /// Where each key ends in `keys`.
    ends: Vec<usize>,
    misses: u64,
}

impl HandedBatch {
    /// Adds a read of `key`.
    pub(crate) fn push(&mut self, key: &[u8]) {
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len());
    }

    /// Adds reads of keys given concatenated in `keys`, `lens` their lengths in order: one copy
    /// of the buffer instead of one per key.
    ///
    /// # Panics
    /// When the lengths do not add up to `keys.len()` (before anything is added).
    pub(crate) fn push_packed(&mut self, keys: &[u8], lens: &[usize]) {
        packed_keys::assert_lengths_match(keys, lens);
        let mut end = self.keys.len();
        self.keys.extend_from_slice(keys);
        self.ends.extend(lens.iter().map(|&len| {
            end += len;
            end
        }));
    }

    /// Counts `misses` more misses decided elsewhere.
    pub(crate) fn add_misses(&mut self, misses: u64) {
        self.misses += misses;
    }

    /// The reads added so far.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Read `index`'s key.
    fn key(&self, index: usize) -> &[u8] {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.keys[start..self.ends[index]]
    }

    /// Empties it for reuse, keeping its buffers.
    fn clear(&mut self) {
        self.keys.clear();
        self.ends.clear();
        self.misses = 0;
    }
}

/// A hand-over routed: its reads ordered by shard (in read order within a shard), shared by the
/// parts queued for each shard.
pub(crate) struct ReadBatch {
    handed: HandedBatch,
    routed: Vec<Routed>,
}

impl ReadBatch {
    /// The read at `position` in shard order: its hash and key.
    fn read(&self, position: usize) -> (Hash, &[u8]) {
        let read = &self.routed[position];
        (read.hash, self.handed.key(read.index))
    }
}

/// One shard's part of a hand-over: reads `reads` (positions in shard order) of `batch`, and
/// misses decided elsewhere.
pub(crate) struct QueuedReads {
    batch: Arc<ReadBatch>,
    reads: Range<usize>,
    misses: u64,
}

impl QueuedReads {
    fn reads(&self) -> impl Iterator<Item = (Hash, &[u8])> {
        self.reads.clone().map(|position| self.batch.read(position))
    }
}

/// Hand-overs not yet routed, in the order they were made.
#[derive(Default)]
struct Unrouted {
    batches: Vec<HandedBatch>,
    reads: usize,
}

/// The handed-over reads of one cache: those not yet routed, and a queue per shard.
pub(crate) struct DeferredReads {
    hasher: RandomState,
    unrouted: Mutex<Unrouted>,
    /// Hand-overs not yet routed, counting those being routed: read without a lock, so that an
    /// operation skips routing at no cost when nothing waits.
    unrouted_batches: AtomicUsize,
    /// Held while routing: hand-overs are routed one router at a time, in order, and an operation
    /// that finds hand-overs being routed waits for them to reach their shards' queues.
    routing: Mutex<()>,
    queues: Box<[Mutex<Vec<QueuedReads>>]>,
    /// Parts in each queue: read without its lock, to skip an empty queue at no cost.
    queued: Box<[AtomicUsize]>,
    spare: Mutex<Vec<HandedBatch>>,
    /// Set while the cache is on the background thread's list (so it is listed once).
    scheduled: AtomicBool,
}

impl DeferredReads {
    /// Empty queues for `shards` shards of a cache hashing its keys with `hasher`.
    pub(crate) fn new(shards: usize, hasher: RandomState) -> Self {
        DeferredReads {
            hasher,
            unrouted: Mutex::new(Unrouted::default()),
            unrouted_batches: AtomicUsize::new(0),
            routing: Mutex::new(()),
            queues: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
            queued: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            spare: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
        }
    }

    /// The number of shards.
    pub(crate) fn shards(&self) -> usize {
        self.queues.len()
    }

    /// An empty batch to fill and hand over (a spare one when there is one).
    pub(crate) fn spare_batch(&self) -> HandedBatch {
        self.spare.lock().pop().unwrap_or_default()
    }

    /// Keeps `batch`'s buffers for a later hand-over (unless enough are kept, or they are large).
    fn recycle(&self, mut batch: HandedBatch) {
        if batch.keys.capacity() <= SPARE_KEY_BYTES {
            let mut spare = self.spare.lock();
            if spare.len() < SPARE_BATCHES {
                batch.clear();
                spare.push(batch);
            }
        }
    }

    /// Queues `batch` to be routed; the reads now waiting to be routed.
    pub(crate) fn hand_over(&self, batch: HandedBatch) -> usize {
        let mut unrouted = self.unrouted.lock();
        unrouted.reads += batch.len();
        unrouted.batches.push(batch);
        // Under the lock, so that a router never takes a batch before it is counted.
        self.unrouted_batches.fetch_add(1, Ordering::Release);
        unrouted.reads
    }

    /// Routes every hand-over not yet routed into its shards' queues, in order. Returns once
    /// every hand-over made before the call (by this thread, or one it synchronized with) is in
    /// its shards' queues, also when another thread was routing it.
    pub(crate) fn route_unrouted(&self) {
        if self.unrouted_batches.load(Ordering::Acquire) == 0 {
            return;
        }
        let _routing = self.routing.lock();
        let batches = std::mem::take(&mut *self.unrouted.lock()).batches;
        let taken = batches.len();
        for batch in batches {
            self.route(batch);
        }
        // After the parts are queued: whoever reads the lowered count sees them.
        self.unrouted_batches.fetch_sub(taken, Ordering::Release);
    }

    /// Hashes `batch`'s keys and queues each shard's part.
    fn route(&self, handed: HandedBatch) {
        let keys = (0..handed.len()).map(|index| handed.key(index));
        let routed = route(&self.hasher, self.queues.len(), keys);
        let misses = handed.misses;
        let batch = Arc::new(ReadBatch { handed, routed });
        if misses != 0 {
            self.push(0, Arc::clone(&batch), 0..0, misses);
        }
        let mut start = 0;
        for run in batch.routed.chunk_by(|a, b| a.shard == b.shard) {
            self.push(
                run[0].shard,
                Arc::clone(&batch),
                start..start + run.len(),
                0,
            );
            start += run.len();
        }
        if let Some(batch) = Arc::into_inner(batch) {
            self.recycle(batch.handed); // no reads and no misses: nothing was queued
        }
    }

    /// Queues a part for `shard`.
    fn push(&self, shard: usize, batch: Arc<ReadBatch>, reads: Range<usize>, misses: u64) {
        let mut queue = self.queues[shard].lock();
        queue.push(QueuedReads {
            batch,
            reads,
            misses,
        });
        self.queued[shard].store(queue.len(), Ordering::Relaxed);
    }

    /// Whether parts are queued for `shard`: call `route_unrouted` first (a hint: a part queued
    /// by another thread at this very moment may be missed; one routed before, by this thread or
    /// one it synchronized with, is seen).
    #[inline]
    pub(crate) fn has_queued(&self, shard: usize) -> bool {
        self.queued[shard].load(Ordering::Relaxed) != 0
    }

    /// Whether nothing waits: no hand-over unrouted, no part queued.
    #[cfg(all(test, not(feature = "shuttle")))]
    pub(crate) fn is_drained(&self) -> bool {
        self.unrouted_batches.load(Ordering::Acquire) == 0
            && (0..self.shards()).all(|shard| !self.has_queued(shard))
    }

    /// Replays every part queued for `shard`, in order. The caller holds the shard's lock, so
    /// replays of one shard never interleave.
    pub(crate) fn replay_queued(&self, shard_index: usize, shard: &mut Shard) {
        let parts = {
            let mut queue = self.queues[shard_index].lock();
            self.queued[shard_index].store(0, Ordering::Relaxed);
            std::mem::take(&mut *queue)
        };
        // All of them in one replay: its passes overlap more trips to memory, for less work.
        if parts.iter().any(|part| !part.reads.is_empty()) {
            shard.record_gets(parts.iter().flat_map(QueuedReads::reads));
        }
        shard.record_misses(parts.iter().map(|part| part.misses).sum());
        for part in parts {
            if let Some(batch) = Arc::into_inner(part.batch) {
                self.recycle(batch.handed); // its last part: the batch is done
            }
        }
    }
}

/// What the background thread runs for a cache: replays its queued reads, locking each shard
/// with queued batches in turn (inside `replaying`).
pub(crate) type ReplayJob = dyn Fn() + Send + Sync;

/// The one background thread of the process that replays handed-over reads, for every cache,
/// and the caches waiting for it. It lives as long as the process and holds only weak
/// references: a cache dropped meanwhile is skipped.
pub(crate) struct BackgroundThread {
    waiting: Mutex<Vec<(Weak<DeferredReads>, Weak<ReplayJob>)>>,
    /// Set when a cache joins `waiting`: what the thread watches while it spins.
    work: AtomicBool,
    thread: Thread,
    /// The process that started it: a child process forked since has no such thread.
    process: u32,
    /// How long it spins for more work before it parks ([`SPIN_ENV`]).
    spin: Duration,
}

static BACKGROUND: OnceLock<Option<BackgroundThread>> = OnceLock::new();

/// The background thread, started on the first call; `None` when reads cannot be handed over in
/// this process: the thread cannot start, the process is a child forked since, or the build is
/// the model checker's (its locks cannot be used from a thread it does not run).
pub(crate) fn background_thread() -> Option<&'static BackgroundThread> {
    if cfg!(feature = "shuttle") {
        return None;
    }
    BACKGROUND
        .get_or_init(|| {
            let thread = thread::Builder::new()
                .name("alphaforge-cache reads".into())
                .spawn(serve)
                .ok()?;
            Some(BackgroundThread {
                waiting: Mutex::new(Vec::new()),
                work: AtomicBool::new(false),
                thread: thread.thread().clone(),
                process: std::process::id(),
                spin: spin_of_process(),
            })
        })
        .as_ref()
        .filter(|background| background.process == std::process::id())
}

impl BackgroundThread {
    /// Puts a cache whose queues `reads` hold batches on the list (once), and wakes the thread;
    /// `job` replays them.
    pub(crate) fn schedule(&self, reads: &Arc<DeferredReads>, job: &Arc<ReplayJob>) {
        if !reads.scheduled.swap(true, Ordering::AcqRel) {
            self.waiting
                .lock()
                .push((Arc::downgrade(reads), Arc::downgrade(job)));
            self.work.store(true, Ordering::Release);
            self.thread.unpark(); // only a flag while the thread spins
        }
    }

    /// Spins until work arrives (true) or `self.spin` has passed (false), yielding
    /// its CPU between rounds: on a machine with more busy threads than CPUs (or a thread that
    /// shares this one's CPU, such as the thread handing the reads over) the spin must not keep
    /// them waiting; on an idle CPU a yield returns at once.
    fn spin_for_work(&self) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if self.work.load(Ordering::Acquire) {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= self.spin {
                return false;
            }
            thread::yield_now();
        }
    }
}

/// The background thread's loop: parks until caches are waiting, then replays theirs.
fn serve() {
    fork_guard::register();
    loop {
        let Some(background) = BACKGROUND.get().and_then(Option::as_ref) else {
            // Started before `BACKGROUND` was set: wait for it.
            thread::park();
            continue;
        };
        background.work.store(false, Ordering::Release);
        let waiting = std::mem::take(&mut *background.waiting.lock());
        if waiting.is_empty() {
            if !background.spin_for_work() {
                thread::park();
            }
            continue;
        }
        for (reads, job) in waiting {
            if let (Some(reads), Some(job)) = (reads.upgrade(), job.upgrade()) {
                // Unlisted first: batches queued from now on list the cache again.
                reads.scheduled.store(false, Ordering::Release);
                job();
            }
        }
    }
}

/// Runs `replay` (which locks a shard) unless a fork is under way; false when it did not run.
pub(crate) fn replaying(replay: impl FnOnce()) -> bool {
    if !fork_guard::enter() {
        return false;
    }
    replay();
    fork_guard::leave();
    true
}

/// Keeps the background thread from holding a lock while the process forks: a child process has
/// only the forking thread, so a lock held by another thread at that moment would stay held in
/// the child for ever. Before a fork (`pthread_atfork`), the forking thread waits until the
/// background thread is not replaying and keeps new replays from starting until the fork is
/// done. (A child does not use the parent's background thread, which does not exist there: its
/// caches replay their reads at once.)
mod fork_guard {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Set from just before a fork until just after it, in parent and child.
    static FORKING: AtomicBool = AtomicBool::new(false);
    /// Replays running right now (on the background thread).
    static REPLAYING: AtomicUsize = AtomicUsize::new(0);

    /// Starts a replay; false (nothing started) while a fork is under way.
    pub(super) fn enter() -> bool {
        REPLAYING.fetch_add(1, Ordering::SeqCst);
        if FORKING.load(Ordering::SeqCst) {
            REPLAYING.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Ends a replay started by `enter`.
    pub(super) fn leave() {
        REPLAYING.fetch_sub(1, Ordering::SeqCst);
    }

    #[cfg(unix)]
    extern "C" fn before_fork() {
        FORKING.store(true, Ordering::SeqCst);
        while REPLAYING.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }

    #[cfg(unix)]
    extern "C" fn after_fork() {
        FORKING.store(false, Ordering::SeqCst);
    }

    /// Installs the fork handlers, once per process.
    // The engine's one call into libc outside `src/ffi`: an FFI edge of its own.
    #[allow(unsafe_code)]
    pub(super) fn register() {
        #[cfg(unix)]
        {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                // SAFETY: the handlers are `extern "C"` functions that live as long as the
                // process, touch only atomics, and never unwind.
                unsafe {
                    libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork));
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::shard_of;
    use std::hash::BuildHasher;

    fn handed(reads: &DeferredReads, keys: &[&[u8]], misses: u64) -> usize {
        let mut batch = reads.spare_batch();
        for key in keys {
            batch.push(key);
        }
        batch.add_misses(misses);
        reads.hand_over(batch)
    }

    /// Each shard's queued reads, as (key, hash) in queue order, and the misses queued for it.
    fn queued(reads: &DeferredReads, shard: usize) -> (Vec<(Vec<u8>, Hash)>, u64) {
        let queue = reads.queues[shard].lock();
        let keys = queue
            .iter()
            .flat_map(QueuedReads::reads)
            .map(|(hash, key)| (key.to_vec(), hash))
            .collect();
        (keys, queue.iter().map(|part| part.misses).sum())
    }

    #[test]
    fn the_spin_comes_from_the_environment_variable_when_it_is_valid() {
        assert_eq!(spin_from_env(None), Ok(SPIN_BEFORE_PARKING));
        assert_eq!(spin_from_env(Some("")), Ok(SPIN_BEFORE_PARKING));
        assert_eq!(spin_from_env(Some("  ")), Ok(SPIN_BEFORE_PARKING));
        assert_eq!(spin_from_env(Some("0")), Ok(Duration::ZERO));
        assert_eq!(spin_from_env(Some(" 50 ")), Ok(Duration::from_micros(50)));
        assert_eq!(
            spin_from_env(Some("10000")),
            Ok(Duration::from_micros(MAX_SPIN_MICROS))
        );
        for refused in ["-1", "1.5", "abc", "10001", "99999999999999999999999"] {
            let why = spin_from_env(Some(refused)).unwrap_err();
            assert!(
                why.contains(SPIN_ENV) && why.contains("200 us"),
                "{refused:?}: {why}"
            );
        }
    }

    #[test]
    fn routing_puts_each_read_in_its_shard_in_read_order() {
        let reads = DeferredReads::new(4, RandomState::default());
        let keys: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let (first, second): (Vec<&[u8]>, Vec<&[u8]>) = (
            keys[..120].iter().map(Vec::as_slice).collect(),
            keys[120..].iter().map(Vec::as_slice).collect(),
        );
        assert_eq!(handed(&reads, &first, 3), 120);
        assert_eq!(handed(&reads, &second, 0), 200);
        assert!(
            (0..4).all(|shard| !reads.has_queued(shard)),
            "not routed yet"
        );
        reads.route_unrouted();
        assert_eq!(reads.unrouted_batches.load(Ordering::Relaxed), 0);
        let mut seen = 0;
        for shard in 0..4 {
            let (queue, misses) = queued(&reads, shard);
            assert_eq!(misses, if shard == 0 { 3 } else { 0 });
            assert_eq!(reads.has_queued(shard), !queue.is_empty() || misses != 0);
            let positions: Vec<usize> = queue
                .iter()
                .map(|(key, hash)| {
                    assert_eq!(*hash, reads.hasher.hash_one(key.as_slice()));
                    assert_eq!(shard_of(*hash, 4), shard, "a read queued in its own shard");
                    keys.iter().position(|k| k == key).unwrap()
                })
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "read order kept");
            seen += positions.len();
        }
        assert_eq!(seen, 200);
        // A new hand-over counts from zero again.
        assert_eq!(handed(&reads, &first[..5], 0), 5);
    }

    #[test]
    fn a_batch_is_reused_once_its_last_part_is_replayed() {
        let reads = DeferredReads::new(2, RandomState::default());
        let keys: Vec<Vec<u8>> = (0..64u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        handed(&reads, &keys, 1);
        reads.route_unrouted();
        assert!(
            reads.spare.lock().is_empty(),
            "the parts still hold the batch"
        );
        let mut shard = Shard::new(8, RandomState::default());
        reads.replay_queued(0, &mut shard);
        assert!(
            reads.spare.lock().is_empty(),
            "shard 1's part still holds it"
        );
        reads.replay_queued(1, &mut shard);
        let spare = reads.spare_batch();
        assert_eq!(spare.len(), 0);
        assert_eq!(spare.misses, 0);
        assert!(
            spare.keys.capacity() >= 64 * 4,
            "the buffers are kept for reuse"
        );
        assert_eq!(
            shard.stats().misses,
            65,
            "64 keys absent from the shard, and one miss"
        );
    }
}

//! Reads replayed later: batches of gets that a binding served from its own mirror of the cache,
//! handed over without waiting and replayed by the process's background thread (one for all
//! caches), or by whichever operation locks their shard first (as Caffeine drains its read
//! buffers). The caller's thread then does not spend the replay's trips to main memory itself,
//! and no result changes: every operation on a shard replays the reads queued for it before
//! anything else, under the shard's lock.

use crate::shard::{Hash, Shard};
use parking_lot::Mutex;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Parts of hand-overs queued for one shard beyond which the caller replays them itself rather
/// than queue more (the background thread is behind, or gone, as in a forked child process).
pub(crate) const MAX_QUEUED_BATCHES: usize = 8;

/// How long the background thread waits for more work, spinning, before it parks. Waking a
/// parked thread is a system call and, under a hypervisor, an interrupt to another virtual CPU
/// (several microseconds); a binding hands reads over every few microseconds while it is busy
/// (`get_many` of 100 keys, or 256 single gets), so that while work keeps coming the thread is
/// never parked and a hand-over only sets a flag. An idle process pays this spin once per burst.
const SPIN_BEFORE_PARKING: Duration = Duration::from_micros(200);

/// One hand-over of reads: every key with its hash, grouped by shard (in read order within a
/// shard). One allocation of each kind per hand-over, shared by the parts queued for each shard.
pub(crate) struct ReadBatch {
    hashes: Vec<Hash>,
    keys: Vec<u8>,
    /// Where each key ends in `keys`.
    ends: Vec<usize>,
}

impl ReadBatch {
    /// An empty batch with room for `reads` keys of `key_bytes` bytes in all.
    pub(crate) fn with_capacity(reads: usize, key_bytes: usize) -> Self {
        ReadBatch {
            hashes: Vec::with_capacity(reads),
            keys: Vec::with_capacity(key_bytes),
            ends: Vec::with_capacity(reads),
        }
    }

    /// Adds a read of `key` (hashed by the cache's hasher).
    pub(crate) fn push(&mut self, hash: Hash, key: &[u8]) {
        self.hashes.push(hash);
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len());
    }

    /// The reads added so far.
    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Read `index`: its hash and key.
    fn read(&self, index: usize) -> (Hash, &[u8]) {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        (self.hashes[index], &self.keys[start..self.ends[index]])
    }
}

/// One shard's part of a hand-over: reads `reads` of `batch`, and misses decided elsewhere.
pub(crate) struct QueuedReads {
    batch: Arc<ReadBatch>,
    reads: Range<usize>,
    misses: u64,
}

impl QueuedReads {
    /// Reads `reads` of `batch` and `misses` misses, for one shard.
    pub(crate) fn new(batch: &Arc<ReadBatch>, reads: Range<usize>, misses: u64) -> Self {
        QueuedReads {
            batch: Arc::clone(batch),
            reads,
            misses,
        }
    }

    fn reads(&self) -> impl Iterator<Item = (Hash, &[u8])> {
        self.reads.clone().map(|index| self.batch.read(index))
    }
}

/// The queues of handed-over reads of one cache, one per shard.
pub(crate) struct DeferredReads {
    queues: Box<[Mutex<Vec<QueuedReads>>]>,
    /// Parts in each queue: read without its lock, to skip an empty queue at no cost.
    queued: Box<[AtomicUsize]>,
    /// Set while the cache is on the background thread's list (so it is listed once).
    scheduled: AtomicBool,
}

impl DeferredReads {
    /// Empty queues for `shards` shards.
    pub(crate) fn new(shards: usize) -> Self {
        DeferredReads {
            queues: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
            queued: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            scheduled: AtomicBool::new(false),
        }
    }

    /// The number of shards.
    pub(crate) fn shards(&self) -> usize {
        self.queues.len()
    }

    /// Queues `part` for `shard`; the number of parts now queued there.
    pub(crate) fn push(&self, shard: usize, part: QueuedReads) -> usize {
        let mut queue = self.queues[shard].lock();
        queue.push(part);
        self.queued[shard].store(queue.len(), Ordering::Relaxed);
        queue.len()
    }

    /// Whether batches are queued for `shard` (a hint: a batch queued by another thread at this
    /// very moment may be missed; one queued before, by this thread or one it synchronized with,
    /// is seen).
    #[inline]
    pub(crate) fn has_queued(&self, shard: usize) -> bool {
        self.queued[shard].load(Ordering::Relaxed) != 0
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

    /// Spins until work arrives (true) or `SPIN_BEFORE_PARKING` has passed (false).
    fn spin_for_work(&self) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if self.work.load(Ordering::Acquire) {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= SPIN_BEFORE_PARKING {
                return false;
            }
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

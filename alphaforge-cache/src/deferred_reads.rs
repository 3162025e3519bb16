//! Reads replayed later: batches of gets that a binding served from its own mirror of the cache,
//! handed over without waiting and replayed by a background thread, or by whichever operation
//! locks their shard first (as Caffeine drains its read buffers). The caller's thread then does
//! not spend the replay's trips to main memory itself, and no result changes: every operation
//! on a shard replays the reads queued for it before anything else, under the shard's lock.

use crate::shard::{Hash, Shard};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, Thread};

/// Batches queued for one shard beyond which the caller replays them itself rather than queue
/// more (the background thread is behind, or gone, as in a forked child process).
pub(crate) const MAX_QUEUED_BATCHES: usize = 8;

/// One shard's part of a handed-over batch: keys with their hashes, in read order, and misses
/// decided elsewhere.
#[derive(Default)]
pub(crate) struct ReadBatch {
    hashes: Vec<Hash>,
    keys: Vec<u8>,
    ends: Vec<usize>,
    misses: u64,
}

impl ReadBatch {
    /// Adds a read of `key` (hashed by the cache's hasher).
    pub(crate) fn push(&mut self, hash: Hash, key: &[u8]) {
        self.hashes.push(hash);
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len());
    }

    /// Adds `misses` misses decided elsewhere.
    pub(crate) fn add_misses(&mut self, misses: u64) {
        self.misses += misses;
    }

    /// Whether the batch holds nothing to replay.
    pub(crate) fn is_empty(&self) -> bool {
        self.hashes.is_empty() && self.misses == 0
    }

    /// Replays the batch into its shard, as `Cache::record_reads` would have.
    fn replay_into(&self, shard: &mut Shard) {
        let mut start = 0;
        shard.record_gets(self.hashes.iter().zip(&self.ends).map(|(&hash, &end)| {
            let key = &self.keys[start..end];
            start = end;
            (hash, key)
        }));
        shard.record_misses(self.misses);
    }
}

/// The queues of handed-over reads, one per shard, and the flags of the background thread.
pub(crate) struct DeferredReads {
    queues: Box<[Mutex<Vec<ReadBatch>>]>,
    /// Batches in each queue: read without its lock, to skip an empty queue at no cost.
    queued: Box<[AtomicUsize]>,
    /// Set when there is work for the background thread (which is then unparked).
    work: AtomicBool,
    stop: AtomicBool,
}

impl DeferredReads {
    /// Empty queues for `shards` shards.
    pub(crate) fn new(shards: usize) -> Self {
        DeferredReads {
            queues: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
            queued: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            work: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        }
    }

    /// Queues `batch` for `shard`; the number of batches now queued there.
    pub(crate) fn push(&self, shard: usize, batch: ReadBatch) -> usize {
        let mut queue = self.queues[shard].lock();
        queue.push(batch);
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

    /// Replays every batch queued for `shard`, in order. The caller holds the shard's lock, so
    /// replays of one shard never interleave.
    pub(crate) fn replay_queued(&self, shard_index: usize, shard: &mut Shard) {
        let batches = {
            let mut queue = self.queues[shard_index].lock();
            self.queued[shard_index].store(0, Ordering::Relaxed);
            std::mem::take(&mut *queue)
        };
        for batch in &batches {
            batch.replay_into(shard);
        }
    }

    /// Wakes the background thread `thread` to replay what is queued.
    pub(crate) fn notify(&self, thread: &Thread) {
        self.work.store(true, Ordering::Release);
        thread.unpark();
    }

    /// The background thread's loop: parks until there is work, then has `drain` lock (and so
    /// replay) each shard with queued batches, until `stop`. While a process forks, it holds no
    /// lock (see `fork_guard`).
    pub(crate) fn serve(&self, drain: impl Fn(usize)) {
        fork_guard::register();
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if !self.work.swap(false, Ordering::AcqRel) {
                thread::park();
                continue;
            }
            for shard in 0..self.queues.len() {
                if !self.has_queued(shard) {
                    continue;
                }
                if !fork_guard::enter() {
                    // A fork is under way: try again after it.
                    self.work.store(true, Ordering::Release);
                    thread::yield_now();
                    break;
                }
                drain(shard);
                fork_guard::leave();
            }
        }
    }

    /// Asks the background thread `thread` to return (it finishes the shard it is replaying).
    pub(crate) fn stop(&self, thread: &Thread) {
        self.stop.store(true, Ordering::Release);
        thread.unpark();
    }
}

/// Keeps the background threads from holding a lock while the process forks: a child process
/// has only the forking thread, so a lock held by another thread at that moment would stay held
/// in the child for ever. Before a fork (`pthread_atfork`), the forking thread waits until no
/// background thread is replaying and keeps new replays from starting until the fork is done.
/// (A child does not use the parent's background thread, which does not exist there: the cache
/// replays its reads at once; see `Cache::record_reads_later`.)
mod fork_guard {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Set from just before a fork until just after it, in parent and child.
    static FORKING: AtomicBool = AtomicBool::new(false);
    /// Background threads replaying right now.
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

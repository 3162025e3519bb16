//! In-flight computations of `get_or_insert_with`: the first thread to miss a key computes its
//! value; the others wait on its slot instead of computing it again.

use crate::lock::{current_thread_id, lock, wait_until_done, Condvar, Mutex, ThreadId};

pub(crate) struct PendingSlot {
    done: Mutex<bool>,
    finished: Condvar,
    /// The thread computing the value.
    owner: ThreadId,
}

impl PendingSlot {
    /// A slot owned by the calling thread.
    pub(crate) fn new() -> Self {
        PendingSlot {
            done: Mutex::new(false),
            finished: Condvar::new(),
            owner: current_thread_id(),
        }
    }

    /// Whether the calling thread is the one computing (a reentrant call).
    pub(crate) fn is_owned_by_current_thread(&self) -> bool {
        self.owner == current_thread_id()
    }

    /// Blocks until the computing thread has stored its value (or given up).
    pub(crate) fn wait(&self) {
        wait_until_done(&self.done, &self.finished);
    }

    /// Wakes every waiter.
    pub(crate) fn finish(&self) {
        *lock(&self.done) = true;
        self.finished.notify_all();
    }
}

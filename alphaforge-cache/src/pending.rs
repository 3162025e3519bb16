//! In-flight computations of `get_or_insert_with`: the first thread to miss a key computes its
//! value; the others wait on its slot instead of computing it again.

use crate::lock::{lock, wait_until_done, Condvar, Mutex};

#[derive(Default)]
pub(crate) struct PendingSlot {
    done: Mutex<bool>,
    finished: Condvar,
}

impl PendingSlot {
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

//! The lock primitives the concurrent layer uses.
//!
//! Normal builds use `parking_lot` (small, fast, no poisoning). With the `shuttle` feature the same
//! names come from the shuttle model checker, so `tests/shuttle_model.rs` can explore thread
//! interleavings of the real locking code.

#[cfg(not(feature = "shuttle"))]
mod imp {
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};
    pub(crate) use std::thread::ThreadId;

    /// The calling thread's id.
    pub(crate) fn current_thread_id() -> ThreadId {
        std::thread::current().id()
    }

    /// Locks `mutex`.
    #[inline]
    pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock()
    }

    /// Blocks until `*done` is true, waiting on `condvar` with `done`'s lock released.
    pub(crate) fn wait_until_done(done: &Mutex<bool>, condvar: &Condvar) {
        let mut finished = done.lock();
        while !*finished {
            condvar.wait(&mut finished);
        }
    }
}

#[cfg(feature = "shuttle")]
mod imp {
    pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64};
    pub(crate) use shuttle::sync::{Condvar, Mutex, MutexGuard};
    pub(crate) use shuttle::thread::ThreadId;

    /// The calling (shuttle) thread's id: shuttle runs its threads on one OS thread.
    pub(crate) fn current_thread_id() -> ThreadId {
        shuttle::thread::current().id()
    }

    /// Locks `mutex`. No code of ours panics while holding one, so poisoning cannot happen.
    #[inline]
    pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Blocks until `*done` is true, waiting on `condvar` with `done`'s lock released.
    pub(crate) fn wait_until_done(done: &Mutex<bool>, condvar: &Condvar) {
        let mut finished = lock(done);
        while !*finished {
            finished = condvar
                .wait(finished)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

pub(crate) use imp::*;

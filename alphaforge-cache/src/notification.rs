//! Eviction notifications: why an entry left the cache, and the buffer that carries removed entries
//! out of a shard's lock so the listener runs with no lock held.

use crate::record::Record;
use std::sync::Arc;

/// Why an entry left the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RemovalCause {
    /// Removed to respect `max_entries` or `max_bytes`.
    Evicted = 0,
    /// Its deadline passed.
    Expired = 1,
    /// Removed by `remove`.
    Removed = 2,
    /// Its value was replaced by a `put` of the same key.
    Replaced = 3,
    /// Removed by `clear`.
    Cleared = 4,
}

impl RemovalCause {
    /// The lower-case name (`"evicted"`, `"expired"`, ...), as the other bindings spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalCause::Evicted => "evicted",
            RemovalCause::Expired => "expired",
            RemovalCause::Removed => "removed",
            RemovalCause::Replaced => "replaced",
            RemovalCause::Cleared => "cleared",
        }
    }
}

/// A callback told of every entry that leaves the cache: `(key, value, cause)`. It runs after the
/// operation has released its locks, so it may call the cache.
pub type EvictionListener = Arc<dyn Fn(&[u8], &[u8], RemovalCause) + Send + Sync>;

/// Entries removed during one operation. Kept only when a listener will be told of them; otherwise
/// each is dropped at once.
pub(crate) struct Removals {
    keep: bool,
    items: Vec<(Record, RemovalCause)>,
}

impl Removals {
    pub(crate) fn new(keep: bool) -> Self {
        Removals {
            keep,
            items: Vec::new(),
        }
    }

    /// Whether removed entries are kept for a listener.
    #[inline]
    pub(crate) fn keeps(&self) -> bool {
        self.keep
    }

    #[inline]
    pub(crate) fn push(&mut self, record: Record, cause: RemovalCause) {
        if self.keep {
            self.items.push((record, cause));
        }
    }

    /// The keys of the kept removals, in order.
    pub(crate) fn keys(&self) -> Vec<Vec<u8>> {
        self.items.iter().map(|(r, _)| r.key().to_vec()).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Delivers every kept removal to `listener`, in order. A panicking listener does not stop the
    /// others: the first panic is re-raised after all have been told.
    pub(crate) fn deliver(self, listener: &EvictionListener) {
        let mut first_panic = None;
        for (record, cause) in self.items {
            let call =
                std::panic::AssertUnwindSafe(|| listener(record.key(), record.value(), cause));
            if let Err(panic) = std::panic::catch_unwind(call) {
                first_panic.get_or_insert(panic);
            }
        }
        if let Some(panic) = first_panic {
            std::panic::resume_unwind(panic);
        }
    }
}

//! One stored entry: key and value bytes in one slice (see `entry_bytes`), plus weight and
//! deadline.

use crate::entry_bytes::EntryBytes;
use crate::linked_slab::Vacant;
use crate::MAX_CLOCK_NANOS;
use std::sync::Arc;

/// The deadline of an entry that never expires.
pub(crate) const NO_DEADLINE: u64 = u64::MAX;

/// The TTL that means "never expires": `u64::MAX` ns, what a TTL too long to count in
/// nanoseconds saturates to (`Duration::MAX`; Python's `math.inf`).
pub(crate) const ENDLESS_TTL: u64 = u64::MAX;

/// The deadline of an entry stored at `now` with `ttl_ns` nanoseconds to live (`None` or
/// [`ENDLESS_TTL`]: it never expires). Any other TTL whose deadline lies past the clock's range
/// ends at [`MAX_CLOCK_NANOS`], the latest time a clock reports, so that it still expires when
/// the clock gets there.
pub(crate) fn deadline_after(now: u64, ttl_ns: Option<u64>) -> u64 {
    match ttl_ns {
        None | Some(ENDLESS_TTL) => NO_DEADLINE,
        Some(ttl) => now.saturating_add(ttl).min(MAX_CLOCK_NANOS),
    }
}

/// Key and value share one slice (`key ++ value`): an allocation of their own, or a slice of a
/// block shared by the entries of a snapshot load; with the key's length and the weight, 24
/// bytes (`EntryBytes`). An entry costs 32 bytes of bookkeeping here (plus 8 bytes of list links
/// in the slab).
pub(crate) struct Record {
    bytes: EntryBytes,
    /// Nanoseconds on the cache's clock; `NO_DEADLINE` when the entry does not expire.
    pub(crate) deadline: u64,
}

impl Record {
    /// Builds a record; the caller has checked that `key.len()` and `weight` fit in `u32`.
    pub(crate) fn new(key: &[u8], value: &[u8], weight: u32, deadline: u64) -> Self {
        let mut data = Vec::with_capacity(key.len() + value.len());
        data.extend_from_slice(key);
        data.extend_from_slice(value);
        Record::own(data.into_boxed_slice(), key.len(), weight, deadline)
    }

    /// A record whose bytes are `data` (its key the first `key_len`).
    pub(crate) fn own(data: Box<[u8]>, key_len: usize, weight: u32, deadline: u64) -> Self {
        debug_assert!(key_len <= data.len() && key_len <= u32::MAX as usize);
        Record {
            bytes: EntryBytes::Own {
                data,
                key_len: key_len as u32,
                weight,
            },
            deadline,
        }
    }

    /// A record whose bytes are `block[start..start + len]`, the key the first `key_len` of them:
    /// sharing the block when the entry fits in one (see `EntryBytes::shared`), else copied.
    pub(crate) fn in_block(
        block: &Arc<Vec<u8>>,
        start: usize,
        len: usize,
        key_len: usize,
        weight: u32,
        deadline: u64,
    ) -> Self {
        match EntryBytes::shared(block, start, len, key_len, weight) {
            Some(bytes) => Record { bytes, deadline },
            None => {
                let (key, value) = block[start..start + len].split_at(key_len);
                Record::new(key, value, weight, deadline)
            }
        }
    }

    /// Whether this record has an allocation of its own with exactly the room for
    /// `key ++ value`.
    pub(crate) fn can_hold(&self, key: &[u8], value: &[u8]) -> bool {
        self.bytes.own_len() == Some(key.len() + value.len())
    }

    /// Reuses this record's allocation for another entry (`can_hold` must be true).
    pub(crate) fn overwrite(&mut self, key: &[u8], value: &[u8], weight: u32, deadline: u64) {
        if let EntryBytes::Own {
            data,
            key_len,
            weight: old_weight,
        } = self.bytes.make_own()
        {
            let (key_part, value_part) = data.split_at_mut(key.len());
            key_part.copy_from_slice(key);
            value_part.copy_from_slice(value);
            *key_len = key.len() as u32;
            *old_weight = weight;
        }
        self.deadline = deadline;
    }

    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        let (bytes, key_len) = self.bytes.bytes_and_key_len();
        &bytes[..key_len]
    }

    #[inline]
    pub(crate) fn value(&self) -> &[u8] {
        let (bytes, key_len) = self.bytes.bytes_and_key_len();
        &bytes[key_len..]
    }

    /// The value's bytes, to be changed in place (same length, same weight): copied out of a
    /// shared block first.
    #[inline]
    pub(crate) fn value_mut(&mut self) -> &mut [u8] {
        let key_len = self.key().len();
        &mut self.bytes.own_bytes_mut()[key_len..]
    }

    /// The key's bytes followed by the value's (one slice).
    #[inline]
    pub(crate) fn key_and_value(&self) -> &[u8] {
        self.bytes.bytes_and_key_len().0
    }

    #[inline]
    pub(crate) fn weight(&self) -> u32 {
        self.bytes.weight()
    }

    #[inline]
    pub(crate) fn is_expired(&self, now: u64) -> bool {
        now >= self.deadline
    }

    /// Replaces the value, reusing the allocation when it is the record's own and the length is
    /// unchanged. Returns the old record's bytes when `keep_old` is set (for an eviction
    /// listener), else drops them.
    pub(crate) fn replace_value(
        &mut self,
        value: &[u8],
        weight: u32,
        deadline: u64,
        keep_old: bool,
    ) -> Option<Record> {
        let key_len = self.key().len();
        let reuse = self.bytes.own_len() == Some(key_len + value.len());
        let old = if !keep_old && reuse {
            self.bytes.own_bytes_mut()[key_len..].copy_from_slice(value);
            None
        } else {
            let fresh = Record::new(self.key(), value, weight, deadline);
            Some(std::mem::replace(self, fresh))
        };
        self.bytes.set_weight(weight);
        self.deadline = deadline;
        old.filter(|_| keep_old)
    }
}

impl Vacant for Record {
    /// An empty record that owns no allocation.
    fn vacant() -> Self {
        Record::own(Box::default(), 0, 0, NO_DEADLINE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_share_one_buffer() {
        let mut r = Record::new(b"key", b"value", 8, NO_DEADLINE);
        assert_eq!(r.key(), b"key");
        assert_eq!(r.value(), b"value");
        assert!(!r.is_expired(u64::MAX - 1));
        assert!(!r.is_expired(crate::MAX_CLOCK_NANOS));
        assert!(r.replace_value(b"VALUE", 8, 10, false).is_none());
        assert_eq!(r.value(), b"VALUE");
        assert!(r.is_expired(10));
        let old = r.replace_value(b"longer value", 15, 20, true).unwrap();
        assert_eq!((old.key(), old.value()), (&b"key"[..], &b"VALUE"[..]));
        assert_eq!(
            (r.key(), r.value(), r.weight()),
            (&b"key"[..], &b"longer value"[..], 15)
        );
    }

    #[test]
    fn overwrite_reuses_the_allocation() {
        let mut r = Record::new(b"ab", b"cdef", 6, NO_DEADLINE);
        assert!(r.can_hold(b"xyz", b"123"));
        assert!(!r.can_hold(b"xyz", b"1234"));
        let before = r.key_and_value().as_ptr();
        r.overwrite(b"xyz", b"123", 9, 5);
        assert_eq!(
            (r.key(), r.value(), r.weight(), r.deadline),
            (&b"xyz"[..], &b"123"[..], 9, 5)
        );
        assert_eq!(r.key_and_value().as_ptr(), before);
    }

    #[test]
    fn record_is_compact() {
        assert_eq!(std::mem::size_of::<Record>(), 32);
    }

    #[test]
    fn a_record_in_a_block_takes_a_new_value_in_its_own_allocation() {
        let block = Arc::new(b"k1v1k2v2".to_vec());
        let mut r = Record::in_block(&block, 4, 4, 2, 4, NO_DEADLINE);
        assert_eq!(
            (r.key(), r.value(), r.key_and_value()),
            (&b"k2"[..], &b"v2"[..], &b"k2v2"[..])
        );
        assert!(!r.can_hold(b"k3", b"v3"));
        assert!(r.replace_value(b"V2", 4, 7, false).is_none());
        assert_eq!(
            (r.key(), r.value(), r.deadline),
            (&b"k2"[..], &b"V2"[..], 7)
        );
        assert!(r.can_hold(b"k3", b"v3"));
        r.value_mut().copy_from_slice(b"v!");
        assert_eq!((&block[..], r.value()), (&b"k1v1k2v2"[..], &b"v!"[..]));
        assert_eq!(Arc::strong_count(&block), 1);
        // An entry too heavy to share its block is copied out of it at once.
        let heavy = Record::in_block(&block, 0, 4, 2, 1 << 20, NO_DEADLINE);
        assert_eq!((heavy.key(), heavy.weight()), (&b"k1"[..], 1 << 20));
        assert!(heavy.can_hold(b"k1", b"v1") && Arc::strong_count(&block) == 1);
    }
}

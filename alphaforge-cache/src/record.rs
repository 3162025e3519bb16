//! One stored entry: key and value bytes in a single allocation, plus weight and deadline.

/// The deadline of an entry that never expires.
pub(crate) const NO_DEADLINE: u64 = u64::MAX;

/// Key and value share one boxed slice (`key ++ value`), so an entry costs one allocation and
/// 32 bytes of bookkeeping here (plus 8 bytes of list links in the slab).
pub(crate) struct Record {
    data: Box<[u8]>,
    key_len: u32,
    weight: u32,
    /// Nanoseconds on the cache's clock; `NO_DEADLINE` when the entry does not expire.
    pub(crate) deadline: u64,
}

impl Record {
    /// Builds a record; the caller has checked that `key.len()` and `weight` fit in `u32`.
    pub(crate) fn new(key: &[u8], value: &[u8], weight: u32, deadline: u64) -> Self {
        let mut data = Vec::with_capacity(key.len() + value.len());
        data.extend_from_slice(key);
        data.extend_from_slice(value);
        Record {
            data: data.into_boxed_slice(),
            key_len: key.len() as u32,
            weight,
            deadline,
        }
    }

    /// Whether this record's allocation has exactly the room for `key ++ value`.
    pub(crate) fn can_hold(&self, key: &[u8], value: &[u8]) -> bool {
        self.data.len() == key.len() + value.len()
    }

    /// Reuses this record's allocation for another entry (`can_hold` must be true).
    pub(crate) fn overwrite(&mut self, key: &[u8], value: &[u8], weight: u32, deadline: u64) {
        let (key_part, value_part) = self.data.split_at_mut(key.len());
        key_part.copy_from_slice(key);
        value_part.copy_from_slice(value);
        self.key_len = key.len() as u32;
        self.weight = weight;
        self.deadline = deadline;
    }

    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        &self.data[..self.key_len as usize]
    }

    #[inline]
    pub(crate) fn value(&self) -> &[u8] {
        &self.data[self.key_len as usize..]
    }

    /// The value's bytes, to be changed in place (same length, same weight).
    #[inline]
    pub(crate) fn value_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.key_len as usize..]
    }

    /// The key's bytes followed by the value's (one slice).
    #[inline]
    pub(crate) fn key_and_value(&self) -> &[u8] {
        &self.data
    }

    #[inline]
    pub(crate) fn weight(&self) -> u32 {
        self.weight
    }

    #[inline]
    pub(crate) fn is_expired(&self, now: u64) -> bool {
        now >= self.deadline
    }

    /// Replaces the value, reusing the allocation when the length is unchanged. Returns the old
    /// record's bytes when `keep_old` is set (for an eviction listener), else drops them.
    pub(crate) fn replace_value(
        &mut self,
        value: &[u8],
        weight: u32,
        deadline: u64,
        keep_old: bool,
    ) -> Option<Record> {
        let old = if !keep_old && self.value().len() == value.len() {
            let key_len = self.key_len as usize;
            self.data[key_len..].copy_from_slice(value);
            None
        } else {
            let fresh = Record::new(self.key(), value, weight, deadline);
            Some(std::mem::replace(self, fresh))
        };
        self.weight = weight;
        self.deadline = deadline;
        old.filter(|_| keep_old)
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
        let before = r.data.as_ptr();
        r.overwrite(b"xyz", b"123", 9, 5);
        assert_eq!(
            (r.key(), r.value(), r.weight(), r.deadline),
            (&b"xyz"[..], &b"123"[..], 9, 5)
        );
        assert_eq!(r.data.as_ptr(), before);
    }

    #[test]
    fn record_is_compact() {
        assert_eq!(std::mem::size_of::<Option<Record>>(), 32);
    }
}

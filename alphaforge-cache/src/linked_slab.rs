//! An index-based doubly linked list stored in a slab: O(1) push, remove and move-to-front with
//! no raw pointers and no `unsafe` (indices are `u32`, so a node costs 8 bytes of links).

/// The "no node" index.
pub(crate) const NIL: u32 = u32::MAX;

/// The `prev` link of a free slot (no occupied slot's link has this value: a shard holds fewer
/// than 2^32 - 2 entries).
const FREE: u32 = u32::MAX - 1;

/// A value that owns nothing, which a free slot holds in place of an item (so that a slot is
/// no larger than its item and its links, where an `Option` of the item could be larger).
pub(crate) trait Vacant {
    /// The placeholder.
    fn vacant() -> Self;
}

struct Slot<T> {
    /// The item, or a `T::vacant()` placeholder when the slot is free (`prev == FREE`).
    item: T,
    prev: u32,
    next: u32,
}

/// A recency list: the front is the most recently used item, the back the least.
pub(crate) struct LinkedSlab<T> {
    slots: Vec<Slot<T>>,
    head: u32,
    tail: u32,
    free: u32,
    len: usize,
    /// The slab never holds more slots than this, so its memory stays within the shard's bound.
    capacity_limit: usize,
}

impl<T: Vacant> LinkedSlab<T> {
    /// An empty list whose slot vector will not grow beyond `capacity_limit` slots unless more items
    /// are pushed than that.
    pub(crate) fn new(capacity_limit: usize) -> Self {
        LinkedSlab {
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            len: 0,
            capacity_limit,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Changes the growth limit (after a resize).
    pub(crate) fn set_capacity_limit(&mut self, limit: usize) {
        self.capacity_limit = limit;
        if self.len <= limit && self.free == NIL && self.slots.len() <= limit {
            self.slots.shrink_to(limit.max(self.slots.len()));
        }
    }

    /// Inserts `item` at the front and returns its index.
    pub(crate) fn push_front(&mut self, item: T) -> u32 {
        let idx = if self.free != NIL {
            let idx = self.free;
            let slot = &mut self.slots[idx as usize];
            self.free = slot.next;
            slot.item = item;
            idx
        } else {
            if self.slots.len() == self.slots.capacity() {
                // Double, but never past the limit: a full shard holds no slack.
                let cap = self.slots.capacity();
                let wanted = cap
                    .max(4)
                    .min(self.capacity_limit.saturating_sub(cap))
                    .max(1);
                self.slots.reserve_exact(wanted);
            }
            let idx = u32::try_from(self.slots.len())
                .ok()
                .filter(|&idx| idx < FREE)
                .expect("a shard holds fewer than 2^32 - 2 entries");
            self.slots.push(Slot {
                item,
                prev: NIL,
                next: NIL,
            });
            idx
        };
        self.link_front(idx);
        self.len += 1;
        idx
    }

    /// Removes the item at `idx` (which must be occupied) and returns it.
    pub(crate) fn remove(&mut self, idx: u32) -> T {
        self.unlink(idx);
        let slot = &mut self.slots[idx as usize];
        debug_assert!(slot.prev != FREE, "removing an occupied slot");
        let item = std::mem::replace(&mut slot.item, T::vacant());
        slot.next = self.free;
        slot.prev = FREE;
        self.free = idx;
        self.len -= 1;
        item
    }

    /// Makes `idx` the most recently used item.
    #[inline]
    pub(crate) fn move_to_front(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.link_front(idx);
        }
    }

    /// The neighbours of the item at `idx` (`NIL` at an end): reading them brings its slot into
    /// the CPU cache, and `warm_slot` on each brings theirs, ahead of a `move_to_front`.
    #[inline]
    pub(crate) fn neighbours(&self, idx: u32) -> (u32, u32) {
        let slot = &self.slots[idx as usize];
        (slot.prev, slot.next)
    }

    /// Reads the links of the slot at `idx` (nothing at `NIL`), so that a later `move_to_front`
    /// next to it finds it in the CPU cache. The value is meaningless; pass it to `black_box`.
    #[inline]
    pub(crate) fn warm_slot(&self, idx: u32) -> u32 {
        self.slots
            .get(idx as usize)
            .map_or(0, |slot| slot.prev ^ slot.next)
    }

    /// The least recently used item's index.
    pub(crate) fn back(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// The item at `idx`, an occupied slot's index (a free slot's is its placeholder).
    #[inline]
    pub(crate) fn get(&self, idx: u32) -> &T {
        let slot = &self.slots[idx as usize];
        debug_assert!(slot.prev != FREE, "index of an occupied slot");
        &slot.item
    }

    /// The item at `idx`, an occupied slot's index, to be changed.
    #[inline]
    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut T {
        let slot = &mut self.slots[idx as usize];
        debug_assert!(slot.prev != FREE, "index of an occupied slot");
        &mut slot.item
    }

    /// Indices from most to least recently used.
    pub(crate) fn indices_front_to_back(&self) -> FrontToBack<'_, T> {
        FrontToBack {
            slab: self,
            next: self.head,
        }
    }

    /// Indices from least to most recently used.
    pub(crate) fn indices_back_to_front(&self) -> BackToFront<'_, T> {
        BackToFront {
            slab: self,
            next: self.tail,
        }
    }

    /// Makes room for `additional` more items at once (never past the capacity limit), so that a
    /// list filled in one go does not grow step by step.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let room = self.capacity_limit.saturating_sub(self.slots.len());
        self.slots.reserve_exact(additional.min(room));
    }

    /// Calls `f` on every item, in no particular order (the list is unchanged).
    pub(crate) fn for_each_mut(&mut self, mut f: impl FnMut(&mut T)) {
        for slot in &mut self.slots {
            if slot.prev != FREE {
                f(&mut slot.item);
            }
        }
    }

    /// Removes every item, most recently used first.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        let mut items = Vec::with_capacity(self.len);
        let mut idx = self.head;
        while idx != NIL {
            let slot = &mut self.slots[idx as usize];
            idx = slot.next;
            items.push(std::mem::replace(&mut slot.item, T::vacant()));
        }
        self.slots = Vec::new();
        self.head = NIL;
        self.tail = NIL;
        self.free = NIL;
        self.len = 0;
        items
    }

    fn link_front(&mut self, idx: u32) {
        let old_head = self.head;
        {
            let slot = &mut self.slots[idx as usize];
            slot.prev = NIL;
            slot.next = old_head;
        }
        if old_head != NIL {
            self.slots[old_head as usize].prev = idx;
        } else {
            self.tail = idx;
        }
        self.head = idx;
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let slot = &self.slots[idx as usize];
            (slot.prev, slot.next)
        };
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
    }
}

/// Iterator over indices, most recently used first.
pub(crate) struct FrontToBack<'a, T> {
    slab: &'a LinkedSlab<T>,
    next: u32,
}

impl<T> Iterator for FrontToBack<'_, T> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.next == NIL {
            return None;
        }
        let idx = self.next;
        self.next = self.slab.slots[idx as usize].next;
        Some(idx)
    }
}

/// Iterator over indices, least recently used first.
pub(crate) struct BackToFront<'a, T> {
    slab: &'a LinkedSlab<T>,
    next: u32,
}

impl<T> Iterator for BackToFront<'_, T> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.next == NIL {
            return None;
        }
        let idx = self.next;
        self.next = self.slab.slots[idx as usize].prev;
        Some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Vacant for &'static str {
        fn vacant() -> Self {
            ""
        }
    }

    impl Vacant for i32 {
        fn vacant() -> Self {
            0
        }
    }

    fn order(slab: &LinkedSlab<&'static str>) -> Vec<&'static str> {
        slab.indices_front_to_back().map(|i| *slab.get(i)).collect()
    }

    #[test]
    fn push_move_remove_keep_order() {
        let mut s = LinkedSlab::new(10);
        let a = s.push_front("a");
        let b = s.push_front("b");
        let c = s.push_front("c");
        assert_eq!(order(&s), ["c", "b", "a"]);
        s.move_to_front(a);
        assert_eq!(order(&s), ["a", "c", "b"]);
        assert_eq!(s.back(), Some(b));
        assert_eq!(s.remove(c), "c");
        assert_eq!(order(&s), ["a", "b"]);
        // The freed slot is reused.
        let d = s.push_front("d");
        assert_eq!(d, c);
        assert_eq!(order(&s), ["d", "a", "b"]);
        let back: Vec<_> = s.indices_back_to_front().map(|i| *s.get(i)).collect();
        assert_eq!(back, ["b", "a", "d"]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.drain(), ["d", "a", "b"]);
        assert_eq!(s.len(), 0);
        assert_eq!(s.back(), None);
    }

    #[test]
    fn a_free_slot_holds_a_placeholder_that_no_walk_sees() {
        let mut s = LinkedSlab::new(10);
        let _ = s.push_front("a");
        let b = s.push_front("b");
        let _ = s.push_front("c");
        assert_eq!(s.remove(b), "b");
        let mut seen = Vec::new();
        s.for_each_mut(|item| seen.push(*item));
        assert_eq!(seen, ["a", "c"]);
        assert_eq!(s.drain(), ["c", "a"]);
        // Slots are no larger than item and links.
        assert_eq!(std::mem::size_of::<Slot<&'static str>>(), 24);
    }

    #[test]
    fn growth_stops_at_the_limit() {
        let mut s = LinkedSlab::new(5);
        for i in 0..5 {
            s.push_front(i);
        }
        assert_eq!(s.slots.capacity(), 5);
    }
}

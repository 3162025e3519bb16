//! Where an entry's key and value bytes live, with their key length and weight: an allocation
//! of their own (every put), or a slice of a block that many entries of one snapshot load share.
//!
//! A load copies its entries' bytes into blocks of [`BLOCK_BYTES`], one allocation per block
//! instead of one per entry: a million small entries cost a few thousand allocations, and
//! their frees when the cache is dropped as few. A block is freed when the last entry in it
//! is: until then, entries replaced or evicted since the load leave their bytes in it. So the
//! memory a loaded cache holds is at most what the load allocated, and it shrinks block by
//! block as the loaded entries go. An entry changed in place (a value of the same length, or
//! a handle written by `Cache::load_handles`) is first copied out of its block.
//!
//! Both kinds take 24 bytes: a shared entry's offset, length, key length and weight are 16-bit
//! numbers (a block is 64 KiB, an entry in it at most [`SHARED_ENTRY_MAX`] bytes), which fit
//! beside the block's pointer in the room an own allocation's pointer leaves free (the compiler
//! tells the two apart by that pointer, never null). An entry that does not fit (larger, or
//! heavier than 65,535) gets an allocation of its own.

use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// The size of a shared block: the entries of a load fill one after another.
pub(crate) const BLOCK_BYTES: usize = 64 * 1024;

/// The largest entry (key and value bytes) put in a shared block: larger ones get a block of
/// their own (which becomes their own allocation), as they would leave blocks half empty.
pub(crate) const SHARED_ENTRY_MAX: usize = BLOCK_BYTES / 16;

/// The bytes `key ++ value` of one entry, its key's length and its weight.
pub(crate) enum EntryBytes {
    /// An allocation of their own, exactly as long as the bytes.
    Own {
        /// The bytes.
        data: Box<[u8]>,
        /// The key's length: the first `key_len` bytes are the key.
        key_len: u32,
        /// The entry's weight.
        weight: u32,
    },
    /// `block[start..start + len]`, a block that other entries share.
    Shared {
        /// The block, freed with its last entry.
        block: Arc<Vec<u8>>,
        /// Where the entry's bytes start in the block.
        start: u16,
        /// How many bytes the entry has.
        len: u16,
        /// The key's length.
        key_len: u16,
        /// The entry's weight.
        weight: u16,
    },
}

impl EntryBytes {
    /// `block[start..start + len]` as an entry's bytes, when every number fits in 16 bits
    /// (`None`: the entry needs an allocation of its own).
    pub(crate) fn shared(
        block: &Arc<Vec<u8>>,
        start: usize,
        len: usize,
        key_len: usize,
        weight: u32,
    ) -> Option<Self> {
        debug_assert!(key_len <= len && start + len <= block.len());
        let (start, len) = (u16::try_from(start).ok()?, u16::try_from(len).ok()?);
        let (key_len, weight) = (u16::try_from(key_len).ok()?, u16::try_from(weight).ok()?);
        // The block is counted once more only for an entry that shares it.
        Some(EntryBytes::Shared {
            block: block.clone(),
            start,
            len,
            key_len,
            weight,
        })
    }

    /// The bytes and the key's length.
    #[inline]
    pub(crate) fn bytes_and_key_len(&self) -> (&[u8], usize) {
        match self {
            EntryBytes::Own { data, key_len, .. } => (data, *key_len as usize),
            EntryBytes::Shared {
                block,
                start,
                len,
                key_len,
                ..
            } => {
                let start = *start as usize;
                (&block[start..start + *len as usize], *key_len as usize)
            }
        }
    }

    /// The entry's weight.
    #[inline]
    pub(crate) fn weight(&self) -> u32 {
        match self {
            EntryBytes::Own { weight, .. } => *weight,
            EntryBytes::Shared { weight, .. } => u32::from(*weight),
        }
    }

    /// Changes the entry's weight (copying the bytes out of a shared block if it does not fit
    /// there).
    pub(crate) fn set_weight(&mut self, new: u32) {
        if let EntryBytes::Shared { weight, .. } = self {
            if let Ok(new) = u16::try_from(new) {
                *weight = new;
                return;
            }
        }
        if let EntryBytes::Own { weight, .. } = self.make_own() {
            *weight = new;
        }
    }

    /// The entry as an allocation of its own, to be changed in place: copied out of a shared
    /// block first. Always `Own`.
    pub(crate) fn make_own(&mut self) -> &mut EntryBytes {
        if let EntryBytes::Shared { .. } = self {
            let (bytes, key_len) = self.bytes_and_key_len();
            *self = EntryBytes::Own {
                data: bytes.into(),
                key_len: key_len as u32,
                weight: self.weight(),
            };
        }
        self
    }

    /// The bytes of an allocation of their own, to be changed in place: copied out of a shared
    /// block first.
    pub(crate) fn own_bytes_mut(&mut self) -> &mut [u8] {
        match self.make_own() {
            EntryBytes::Own { data, .. } => data,
            EntryBytes::Shared { .. } => unreachable!("make_own returns an own allocation"),
        }
    }

    /// The length of an allocation of their own, which a replacement of the same length may
    /// reuse; `None` for bytes in a shared block.
    #[inline]
    pub(crate) fn own_len(&self) -> Option<usize> {
        match self {
            EntryBytes::Own { data, .. } => Some(data.len()),
            EntryBytes::Shared { .. } => None,
        }
    }
}

/// A block of entries read from a snapshot: their bytes one after another, and where each is.
pub(crate) struct LoadedBlock {
    /// The entries' bytes.
    pub(crate) bytes: Vec<u8>,
    /// The entries, in the order they were read.
    pub(crate) entries: Vec<BlockEntry>,
}

/// One entry of a [`LoadedBlock`]: `bytes[start..start + len]`, its key the first `key_len`.
#[derive(Clone, Copy)]
pub(crate) struct BlockEntry {
    pub(crate) start: u32,
    pub(crate) len: u32,
    pub(crate) key_len: u32,
    pub(crate) weight: u32,
    /// Nanoseconds left to live; `None`: never expires.
    pub(crate) ttl_ns: Option<u64>,
}

/// Fills blocks with entries, in order; an entry larger than [`SHARED_ENTRY_MAX`] gets a block
/// of its own, exactly its size.
pub(crate) struct BlockFiller {
    block: Vec<u8>,
    entries: Vec<BlockEntry>,
    /// The size of a new block.
    block_bytes: usize,
    /// Empty blocks whose memory another thread has touched already (see [`blank_block`]),
    /// taken when there is one instead of a fresh allocation.
    blanks: Option<Receiver<Vec<u8>>>,
}

/// An empty block of `bytes` whose every page has been written once, so that filling it takes
/// no page fault: a thread with time to spare makes them for one that has none.
pub(crate) fn blank_block(bytes: usize) -> Vec<u8> {
    let mut block = Vec::with_capacity(bytes);
    // Not zeros: an allocation followed by zeros may be turned into a `calloc`, which need not
    // touch the memory.
    block.resize(bytes, 0xA5);
    block.clear();
    block
}

impl BlockFiller {
    /// Blocks of `block_bytes`, at most [`BLOCK_BYTES`] (less when the snapshot is small).
    pub(crate) fn new(block_bytes: usize) -> Self {
        BlockFiller {
            block: Vec::new(),
            entries: Vec::new(),
            block_bytes: block_bytes.min(BLOCK_BYTES),
            blanks: None,
        }
    }

    /// Takes new blocks from `blanks` (each made by [`blank_block`] of [`block_bytes`](Self::block_bytes))
    /// whenever one is ready.
    pub(crate) fn with_blanks(mut self, blanks: Receiver<Vec<u8>>) -> Self {
        self.blanks = Some(blanks);
        self
    }

    /// The size of the blocks this filler starts.
    pub(crate) fn block_bytes(&self) -> usize {
        self.block_bytes
    }

    /// Adds an entry (`key_and_value`, its key the first `key_len` bytes). Returns the block
    /// filled so far when the entry did not fit in it, and so starts the next one.
    pub(crate) fn add(
        &mut self,
        key_and_value: &[u8],
        key_len: usize,
        weight: u32,
        ttl_ns: Option<u64>,
    ) -> Option<LoadedBlock> {
        debug_assert!(key_len <= key_and_value.len() && key_and_value.len() <= u32::MAX as usize);
        let len = key_and_value.len();
        let room_left = self.block.capacity() - self.block.len();
        let full = if len > room_left || len > SHARED_ENTRY_MAX {
            let room = if len > SHARED_ENTRY_MAX {
                len
            } else {
                self.block_bytes.max(len)
            };
            let blank = match &self.blanks {
                Some(blanks) if room == self.block_bytes => blanks.try_recv().ok(),
                _ => None,
            };
            let next = blank
                .filter(|blank| blank.is_empty() && blank.capacity() >= room)
                .unwrap_or_else(|| Vec::with_capacity(room));
            let entries = Vec::with_capacity(self.entries.len());
            let full = LoadedBlock {
                bytes: std::mem::replace(&mut self.block, next),
                entries: std::mem::replace(&mut self.entries, entries),
            };
            (!full.entries.is_empty()).then_some(full)
        } else {
            None
        };
        self.entries.push(BlockEntry {
            start: self.block.len() as u32,
            len: len as u32,
            key_len: key_len as u32,
            weight,
            ttl_ns,
        });
        self.block.extend_from_slice(key_and_value);
        full
    }

    /// Adds an entry whose bytes (`key ++ value`, its key the first `key_len`) are a vector of
    /// their own already: it becomes the entry's block, without a copy. Returns the block filled
    /// so far, if it holds any entry (it comes first), and the entry's block; the next entry
    /// starts a new block.
    pub(crate) fn add_own(
        &mut self,
        mut key_and_value: Vec<u8>,
        key_len: usize,
        weight: u32,
        ttl_ns: Option<u64>,
    ) -> (Option<LoadedBlock>, LoadedBlock) {
        let len = key_and_value.len();
        debug_assert!(key_len <= len && len <= u32::MAX as usize);
        // A vector grown as its bytes arrived may have room to spare: an own allocation is
        // exactly as long as its bytes (shrinking a large allocation moves no bytes).
        key_and_value.shrink_to_fit();
        let before = (!self.entries.is_empty()).then(|| LoadedBlock {
            bytes: std::mem::take(&mut self.block),
            entries: std::mem::take(&mut self.entries),
        });
        let own = LoadedBlock {
            bytes: key_and_value,
            entries: vec![BlockEntry {
                start: 0,
                len: len as u32,
                key_len: key_len as u32,
                weight,
                ttl_ns,
            }],
        };
        (before, own)
    }

    /// The block filled so far, if it holds any entry.
    pub(crate) fn finish(self) -> Option<LoadedBlock> {
        (!self.entries.is_empty()).then_some(LoadedBlock {
            bytes: self.block,
            entries: self.entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_entry_is_copied_out_before_it_changes() {
        let block = Arc::new(b"key1value1k2v2".to_vec());
        let mut a = EntryBytes::shared(&block, 0, 10, 4, 10).unwrap();
        let b = EntryBytes::shared(&block, 10, 4, 2, 7).unwrap();
        assert_eq!(a.bytes_and_key_len(), (&b"key1value1"[..], 4));
        assert_eq!((b.bytes_and_key_len(), b.weight()), ((&b"k2v2"[..], 2), 7));
        assert_eq!(a.own_len(), None);
        a.set_weight(11); // fits beside the block: no copy
        assert_eq!((a.own_len(), a.weight()), (None, 11));
        a.own_bytes_mut()[4..].copy_from_slice(b"VALUE1");
        assert_eq!(
            (a.bytes_and_key_len(), a.own_len()),
            ((&b"key1VALUE1"[..], 4), Some(10))
        );
        assert_eq!(a.weight(), 11);
        // The block and the other entry in it are unchanged; the block is now held once less.
        assert_eq!(&block[..], b"key1value1k2v2");
        assert_eq!(Arc::strong_count(&block), 2);
        // A weight too heavy for 16 bits copies the entry out too.
        let mut c = EntryBytes::shared(&block, 10, 4, 2, 7).unwrap();
        c.set_weight(70_000);
        assert_eq!(
            (c.own_len(), c.weight(), c.bytes_and_key_len()),
            (Some(4), 70_000, (&b"k2v2"[..], 2))
        );
    }

    #[test]
    fn an_entry_whose_numbers_do_not_fit_in_16_bits_is_not_shared() {
        let block = Arc::new(vec![0u8; BLOCK_BYTES + 8]);
        assert!(EntryBytes::shared(&block, BLOCK_BYTES - 1, 5, 1, 5).is_some());
        assert!(EntryBytes::shared(&block, BLOCK_BYTES, 5, 1, 5).is_none());
        assert!(EntryBytes::shared(&block, 0, 1 << 16, 1, 5).is_none());
        assert!(EntryBytes::shared(&block, 0, 5, 1, 1 << 16).is_none());
        assert_eq!(std::mem::size_of::<EntryBytes>(), 24);
    }

    /// `(bytes, [(start, len, key_len, weight, ttl)])` of each block.
    type Blocks = Vec<(Vec<u8>, Vec<(u32, u32, u32, u32, Option<u64>)>)>;

    fn blocks_of(entries: &[Vec<u8>]) -> Blocks {
        let mut filler = BlockFiller::new(BLOCK_BYTES);
        let mut blocks = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            blocks.extend(filler.add(entry, 1, i as u32, Some(i as u64)));
        }
        blocks.extend(filler.finish());
        let rows = |b: LoadedBlock| {
            let entries = b.entries.iter();
            let entries = entries.map(|e| (e.start, e.len, e.key_len, e.weight, e.ttl_ns));
            (b.bytes, entries.collect())
        };
        blocks.into_iter().map(rows).collect()
    }

    #[test]
    fn a_filler_starts_its_blocks_in_blanks_when_there_are_some() {
        let (blanks_out, blanks_in) = std::sync::mpsc::sync_channel(2);
        let blank = blank_block(100);
        assert!(blank.is_empty() && blank.capacity() >= 100);
        let blank_at = blank.as_ptr();
        blanks_out.send(blank).unwrap();
        let mut filler = BlockFiller::new(100).with_blanks(blanks_in);
        assert!(filler.add(&[1; 60], 1, 0, None).is_none());
        // The second block finds no blank: a fresh allocation.
        let first = filler.add(&[2; 60], 1, 0, None).unwrap();
        assert_eq!(
            (first.bytes.as_ptr(), &first.bytes[..]),
            (blank_at, &[1; 60][..])
        );
        // A large entry never takes a blank (it has a block of its own, its size).
        let blank = blank_block(100);
        let blank_at = blank.as_ptr();
        blanks_out.send(blank).unwrap();
        let second = filler.add(&[3; SHARED_ENTRY_MAX + 1], 1, 0, None).unwrap();
        assert_eq!(&second.bytes[..], &[2; 60][..]);
        let large = filler.add(&[4; 10], 1, 0, None).unwrap();
        assert_eq!(large.bytes.capacity(), SHARED_ENTRY_MAX + 1);
        // The blank sent above starts the block after it.
        let last = filler.finish().unwrap();
        assert_eq!(
            (&last.bytes[..], last.bytes.as_ptr()),
            (&[4; 10][..], blank_at)
        );
    }

    #[test]
    fn entries_fill_blocks_in_order_and_a_large_one_gets_its_own() {
        let small = vec![7u8; SHARED_ENTRY_MAX];
        let per_block = BLOCK_BYTES / SHARED_ENTRY_MAX;
        let mut entries = vec![small.clone(); per_block + 1];
        entries.push(vec![9u8; SHARED_ENTRY_MAX + 1]);
        entries.push(b"ab".to_vec());
        let blocks = blocks_of(&entries);
        assert_eq!(blocks.len(), 4);
        let (bytes, first) = &blocks[0];
        assert_eq!((bytes.len(), first.len()), (BLOCK_BYTES, per_block));
        let step = SHARED_ENTRY_MAX as u32;
        for (i, &(start, len, key_len, weight, ttl)) in first.iter().enumerate() {
            assert_eq!((start, len, key_len), (i as u32 * step, step, 1));
            assert_eq!((weight, ttl), (i as u32, Some(i as u64)));
        }
        assert_eq!(
            blocks[1].1,
            [(0, step, 1, per_block as u32, Some(per_block as u64))]
        );
        let large = &blocks[2];
        assert_eq!(
            (&large.0, large.0.capacity()),
            (&entries[per_block + 1], step as usize + 1)
        );
        assert_eq!(large.1.len(), 1);
        assert_eq!((&blocks[3].0[..], blocks[3].1[0].1), (&b"ab"[..], 2));
        assert!(blocks_of(&[]).is_empty());
    }
}

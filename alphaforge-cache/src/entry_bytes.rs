//! Where an entry's key and value bytes live: an allocation of their own (every put), or a
//! slice of a block that many entries of one snapshot load share.
//!
//! A load copies its entries' bytes into blocks of [`BLOCK_BYTES`], one allocation per block
//! instead of one per entry: a million small entries cost a few thousand allocations, and
//! their frees when the cache is dropped as few. A block is freed when the last entry in it
//! is: until then, entries replaced or evicted since the load leave their bytes in it. So the
//! memory a loaded cache holds is at most what the load allocated, and it shrinks block by
//! block as the loaded entries go. An entry changed in place (a value of the same length, or
//! a handle written by `Cache::load_handles`) is first copied out of its block.

use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// The size of a shared block: the entries of a load fill one after another. An entry larger
/// than [`SHARED_ENTRY_MAX`] gets an allocation of its own instead.
pub(crate) const BLOCK_BYTES: usize = 64 * 1024;

/// The largest entry (key and value bytes) put in a shared block: larger ones would leave
/// blocks half empty, and hold a block's worth of memory each by themselves.
pub(crate) const SHARED_ENTRY_MAX: usize = BLOCK_BYTES / 16;

/// The bytes `key ++ value` of one entry.
pub(crate) enum EntryBytes {
    /// An allocation of their own, exactly as long as the bytes.
    Own(Box<[u8]>),
    /// `block[start..start + len]`, a block that other entries share.
    Shared {
        /// The block, freed with its last entry.
        block: Arc<Vec<u8>>,
        /// Where the entry's bytes start in the block.
        start: u32,
        /// How many bytes the entry has.
        len: u32,
    },
}

impl EntryBytes {
    /// The bytes.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            EntryBytes::Own(bytes) => bytes,
            EntryBytes::Shared { block, start, len } => {
                &block[*start as usize..*start as usize + *len as usize]
            }
        }
    }

    /// The bytes, to be changed in place: copied out of a shared block first.
    pub(crate) fn make_own(&mut self) -> &mut [u8] {
        if let EntryBytes::Shared { .. } = self {
            *self = EntryBytes::Own(self.as_slice().into());
        }
        match self {
            EntryBytes::Own(bytes) => bytes,
            EntryBytes::Shared { .. } => unreachable!("copied out of its block just above"),
        }
    }

    /// The length of an allocation of their own, which a replacement of the same length may
    /// reuse; `None` for bytes in a shared block.
    #[inline]
    pub(crate) fn own_len(&self) -> Option<usize> {
        match self {
            EntryBytes::Own(bytes) => Some(bytes.len()),
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
        let mut a = EntryBytes::Shared {
            block: block.clone(),
            start: 0,
            len: 10,
        };
        let b = EntryBytes::Shared {
            block: block.clone(),
            start: 10,
            len: 4,
        };
        assert_eq!(
            (a.as_slice(), b.as_slice()),
            (&b"key1value1"[..], &b"k2v2"[..])
        );
        assert_eq!(a.own_len(), None);
        a.make_own()[4..].copy_from_slice(b"VALUE1");
        assert_eq!((a.as_slice(), a.own_len()), (&b"key1VALUE1"[..], Some(10)));
        // The block and the other entry in it are unchanged; the block is now held once less.
        assert_eq!(&block[..], b"key1value1k2v2");
        assert_eq!((b.as_slice(), Arc::strong_count(&block)), (&b"k2v2"[..], 2));
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

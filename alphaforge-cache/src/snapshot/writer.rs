//! Writing a snapshot: the entries of locked shards streamed through one buffer that also feeds
//! the checksum, so each byte is copied once and checksummed in large blocks.

use super::format::{EntryHead, Header, HEADER_LEN};
use crate::record::{Record, NO_DEADLINE};
use crate::shard::Shard;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes gathered before each write (and each checksum update).
pub(crate) const BUFFER: usize = 1 << 20;

/// Where the writer's full blocks go.
pub(crate) trait BlockSink {
    /// Takes a full block and returns an empty buffer for the next one.
    fn block(&mut self, block: Vec<u8>) -> io::Result<Vec<u8>>;
}

/// Blocks written to a writer on the calling thread.
pub(crate) struct Direct<W: Write>(pub(crate) W);

impl<W: Write> BlockSink for Direct<W> {
    fn block(&mut self, mut block: Vec<u8>) -> io::Result<Vec<u8>> {
        self.0.write_all(&block)?;
        block.clear();
        Ok(block)
    }
}

/// Blocks handed to a writer thread (two buffers take turns): the file system copies one block
/// while the next is filled. Dropping it tells the thread that no more blocks come.
pub(crate) struct Offload {
    full: SyncSender<Vec<u8>>,
    empty: Receiver<Vec<u8>>,
}

impl BlockSink for Offload {
    fn block(&mut self, block: Vec<u8>) -> io::Result<Vec<u8>> {
        let stopped = || io::Error::other("the snapshot's writer thread stopped");
        self.full.send(block).map_err(|_| stopped())?;
        self.empty.recv().map_err(|_| stopped())
    }
}

/// Runs `fill` with an [`Offload`] sink whose blocks a scoped thread writes to `out`. Returns
/// `fill`'s result, or the thread's error if writing failed.
pub(crate) fn with_writer_thread<W: Write + Send, R>(
    out: W,
    fill: impl FnOnce(Offload) -> io::Result<R>,
) -> io::Result<R> {
    std::thread::scope(|scope| {
        let (full, blocks) = sync_channel::<Vec<u8>>(1);
        let (spare, empty) = sync_channel::<Vec<u8>>(1);
        let _ = spare.send(Vec::with_capacity(BUFFER));
        let writer = scope.spawn(move || -> io::Result<()> {
            let mut out = out;
            for mut block in blocks {
                out.write_all(&block)?;
                block.clear();
                let _ = spare.send(block);
            }
            out.flush()
        });
        let filled = fill(Offload { full, empty });
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the snapshot's writer thread panicked")));
        // A write error is why a sink stopped: it is the one to report.
        written.and(filled)
    })
}

/// A buffered writer that computes the CRC-32 of everything it writes.
pub(crate) struct ChecksumWriter<S: BlockSink> {
    sink: S,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<S: BlockSink> ChecksumWriter<S> {
    pub(crate) fn new(sink: S) -> Self {
        ChecksumWriter {
            sink,
            buf: Vec::with_capacity(BUFFER),
            crc: crc32fast::Hasher::new(),
            written: 0,
        }
    }

    /// Appends `bytes`.
    #[inline]
    pub(crate) fn put(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while self.buf.len() + bytes.len() > BUFFER {
            let (now, later) = bytes.split_at(BUFFER - self.buf.len());
            self.buf.extend_from_slice(now);
            self.flush_buf()?;
            bytes = later;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.crc.update(&self.buf);
        self.written += self.buf.len() as u64;
        let full = std::mem::take(&mut self.buf);
        self.buf = self.sink.block(full)?;
        Ok(())
    }

    /// Writes what is buffered and the trailer (the CRC-32 of every byte before it), and
    /// returns the sink and the file's length.
    pub(crate) fn finish(mut self) -> io::Result<(S, u64)> {
        self.crc.update(&self.buf);
        self.written += self.buf.len() as u64;
        let crc = self.crc.clone().finalize();
        self.buf.extend_from_slice(&crc.to_le_bytes());
        let last = std::mem::take(&mut self.buf);
        self.sink.block(last)?;
        Ok((self.sink, self.written + 4))
    }
}

/// How an entry is described in the file, if it is live at `now`.
#[inline]
pub(super) fn head_of(record: &Record, now: u64) -> EntryHead {
    let key_len = record.key().len() as u32;
    let value_len = record.value().len() as u32;
    let default_weight = u64::from(key_len) + u64::from(value_len);
    let weight = record.weight();
    EntryHead {
        key_len,
        value_len,
        ttl_ns: (record.deadline != NO_DEADLINE).then(|| record.deadline - now),
        weight: (u64::from(weight) != default_weight).then_some(weight),
    }
}

/// Entries taken from one shard at a time when shards are merged.
const RUN: u64 = 64;

/// The place in the file of a shard's next run of entries: its first entry's rank `start / len`
/// (entry 0 is the shard's least recently used).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Rank {
    start: u64,
    len: u64,
    shard: usize,
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The smallest fraction first, then the lowest shard index (a min-heap via `Reverse`).
        let a = u128::from(self.start) * u128::from(other.len);
        let b = u128::from(other.start) * u128::from(self.len);
        a.cmp(&b).then(self.shard.cmp(&other.shard))
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The live entries of locked shards in file order. Each shard's entries come least recently
/// used first; shards keep no common order, so their sequences are merged by relative rank,
/// [`RUN`] entries at a time (the run starting at entry `j` of a shard of `n` stands at `j/n`):
/// an estimate of the global order, so that a load into smaller bounds keeps the most recent
/// part of every shard alike. (Runs rather than single entries: a large save walks memory
/// about 2.5x faster.) With one shard, the file is exactly that shard's order.
struct RankMerge<'a, I: Iterator<Item = &'a Record>> {
    sources: Vec<I>,
    heap: BinaryHeap<Reverse<Rank>>,
    current: usize,
    left: u64,
}

impl<'a, I: Iterator<Item = &'a Record>> Iterator for RankMerge<'a, I> {
    type Item = &'a Record;

    fn next(&mut self) -> Option<&'a Record> {
        loop {
            if self.left > 0 {
                self.left -= 1;
                if let Some(record) = self.sources[self.current].next() {
                    return Some(record);
                }
                self.left = 0;
            }
            let Reverse(rank) = self.heap.pop()?;
            self.current = rank.shard;
            self.left = RUN.min(rank.len - rank.start);
            if rank.start + RUN < rank.len {
                self.heap.push(Reverse(Rank {
                    start: rank.start + RUN,
                    ..rank
                }));
            }
        }
    }
}

/// See [`RankMerge`]; `lens` are the shards' live entry counts.
fn entries<'a>(
    shards: &'a [&'a Shard],
    lens: &[u64],
    now: u64,
) -> impl Iterator<Item = &'a Record> + 'a {
    let heap = lens
        .iter()
        .enumerate()
        .filter(|&(_, &len)| len > 0)
        .map(|(shard, &len)| {
            Reverse(Rank {
                start: 0,
                len,
                shard,
            })
        })
        .collect();
    RankMerge {
        sources: shards
            .iter()
            .map(|shard| shard.live_records_lru_first(now))
            .collect(),
        heap,
        current: 0,
        left: 0,
    }
}

/// The live entries of `shards` (all locked by the caller) in file order, as
/// [`write_entries`] writes them.
pub(crate) fn in_file_order<'a>(
    shards: &'a [&'a Shard],
    now: u64,
) -> impl Iterator<Item = &'a Record> + 'a {
    let lens: Vec<u64> = shards
        .iter()
        .map(|shard| shard.live_records_lru_first(now).count() as u64)
        .collect();
    entries(shards, &lens, now)
}

/// Writes the header and the entries of `shards` (all locked by the caller) at time `now`.
/// Returns how many entries were written. The caller finishes the writer (after releasing the
/// locks: what is left is only the buffered tail and the trailer).
pub(crate) fn write_entries<S: BlockSink>(
    out: &mut ChecksumWriter<S>,
    shards: &[&Shard],
    now: u64,
    value_encoding: u8,
) -> io::Result<u64> {
    let mut lens = vec![0u64; shards.len()];
    let mut body_len = 0u64;
    for (shard, len) in shards.iter().zip(lens.iter_mut()) {
        for record in shard.live_records_lru_first(now) {
            *len += 1;
            body_len += head_of(record, now).encoded_len();
        }
    }
    let count = lens.iter().sum();
    let header = Header::new(value_encoding, count, body_len);
    out.put(&header.encode()[..HEADER_LEN])?;
    let mut head = [0u8; 21];
    for record in entries(shards, &lens, now) {
        let len = head_of(record, now).encode(&mut head);
        out.put(&head[..len])?;
        out.put(record.key_and_value())?;
    }
    Ok(count)
}

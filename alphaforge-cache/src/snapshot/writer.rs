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

/// Where the blocks of [`with_writer_thread`] go: to its writer thread, or, when no thread could
/// be started, straight to the output on the calling thread.
pub(crate) enum WriterSink<'a> {
    /// Handed to the writer thread.
    Thread(Offload),
    /// Written by the calling thread (no thread could be started).
    Direct(Direct<&'a mut dyn Write>),
}

impl BlockSink for WriterSink<'_> {
    fn block(&mut self, block: Vec<u8>) -> io::Result<Vec<u8>> {
        match self {
            WriterSink::Thread(offload) => offload.block(block),
            WriterSink::Direct(direct) => direct.block(block),
        }
    }
}

/// Runs `fill` with a sink whose blocks a scoped thread ("afc-save") writes to `out`, then
/// flushes `out`. Returns `fill`'s result, or the write error that stopped it. When the thread
/// cannot be started (a thread limit, no address space for its stack), `fill` writes through
/// `out` on the calling thread instead: slower, never a failure of its own.
pub(crate) fn with_writer_thread<W: Write + Send, R>(
    out: W,
    fill: impl FnOnce(WriterSink<'_>) -> io::Result<R>,
) -> io::Result<R> {
    let builder = std::thread::Builder::new().name("afc-save".into());
    with_writer_thread_from(builder, out, fill)
}

/// [`with_writer_thread`], its thread started by `builder` (tests pass one that fails).
fn with_writer_thread_from<W: Write + Send, R>(
    builder: std::thread::Builder,
    out: W,
    fill: impl FnOnce(WriterSink<'_>) -> io::Result<R>,
) -> io::Result<R> {
    std::thread::scope(|scope| {
        let (full, blocks) = sync_channel::<Vec<u8>>(1);
        let (spare, empty) = sync_channel::<Vec<u8>>(1);
        // `out` reaches the thread through a channel once it runs: if it cannot be started,
        // `out` is still here to be written on this thread.
        let (hand_over, handed) = sync_channel::<W>(1);
        let writer = builder.spawn_scoped(scope, move || -> io::Result<()> {
            let Ok(mut out) = handed.recv() else {
                return Ok(());
            };
            let _ = spare.send(Vec::with_capacity(BUFFER));
            for mut block in blocks {
                out.write_all(&block)?;
                block.clear();
                let _ = spare.send(block);
            }
            out.flush()
        });
        let Ok(writer) = writer else {
            let mut out = out;
            let filled = fill(WriterSink::Direct(Direct(&mut out as &mut dyn Write)))?;
            out.flush()?;
            return Ok(filled);
        };
        // The thread waits for `out`: the send cannot fail while it runs (if it panicked, the
        // join below reports it).
        let _ = hand_over.send(out);
        let filled = fill(WriterSink::Thread(Offload { full, empty }));
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
        .map(|shard| shard.live_len(now) as u64)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of 0, 1, 2... bytes (over three blocks in all) written to `sink`, then the trailer;
    /// returns the file's length.
    fn fill_some_blocks(sink: impl BlockSink) -> io::Result<u64> {
        let mut out = ChecksumWriter::new(sink);
        for len in 0..3 * BUFFER / 1000 {
            out.put(&vec![len as u8; len])?;
        }
        let (_, written) = out.finish()?;
        Ok(written)
    }

    fn written_with(builder: std::thread::Builder) -> (io::Result<u64>, Vec<u8>) {
        let mut file = Vec::new();
        let written = with_writer_thread_from(builder, &mut file, |sink| fill_some_blocks(sink));
        (written, file)
    }

    #[test]
    fn a_writer_thread_that_cannot_start_leaves_the_write_to_the_calling_thread() {
        // A stack larger than any address space: the thread cannot be started.
        let unstartable = || std::thread::Builder::new().stack_size(usize::MAX / 2);
        assert!(
            unstartable().spawn(|| ()).is_err(),
            "this test needs a thread that cannot be started"
        );
        let (on_thread, by_thread) = written_with(std::thread::Builder::new());
        let (on_caller, by_caller) = written_with(unstartable());
        assert!(by_thread.len() > 2 * BUFFER);
        assert_eq!(on_thread.unwrap(), by_thread.len() as u64);
        assert_eq!(on_caller.unwrap(), by_caller.len() as u64);
        assert!(by_caller == by_thread);
    }
}

//! Writing a snapshot: the entries of locked shards streamed through one buffer that also feeds
//! the checksum, so each byte is copied once and checksummed in large blocks.

use super::format::{EntryHead, Header, HEADER_LEN};
use crate::record::{Record, NO_DEADLINE};
use crate::shard::Shard;
use std::io::{self, Write};

/// Bytes gathered before each write (and each checksum update).
const BUFFER: usize = 1 << 20;

/// A buffered writer that computes the CRC-32 of everything it writes.
pub(crate) struct ChecksumWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> ChecksumWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        ChecksumWriter {
            inner,
            buf: Vec::with_capacity(BUFFER),
            crc: crc32fast::Hasher::new(),
            written: 0,
        }
    }

    /// Appends `bytes` (large ones go straight through once the buffer is flushed).
    #[inline]
    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buf.len() + bytes.len() > BUFFER {
            self.flush_buf()?;
            if bytes.len() > BUFFER {
                self.crc.update(bytes);
                self.written += bytes.len() as u64;
                return self.inner.write_all(bytes);
            }
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.crc.update(&self.buf);
        self.written += self.buf.len() as u64;
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes what is buffered and the trailer (the CRC-32 of every byte before it), flushes,
    /// and returns the inner writer and the file's length.
    pub(crate) fn finish(mut self) -> io::Result<(W, u64)> {
        self.flush_buf()?;
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.flush()?;
        Ok((self.inner, self.written + 4))
    }
}

/// How an entry is described in the file, if it is live at `now`.
#[inline]
fn head_of(record: &Record, now: u64) -> EntryHead {
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

/// The live entries of `shards` in file order: least recently used first, the shards' blocks in
/// reverse index order (so that the file read backwards is `Cache::iter`'s order).
fn entries<'a>(shards: &'a [&'a Shard], now: u64) -> impl Iterator<Item = &'a Record> + 'a {
    shards
        .iter()
        .rev()
        .flat_map(move |shard| shard.live_records_lru_first(now))
}

/// Writes the header and the entries of `shards` (all locked by the caller) at time `now`.
/// Returns how many entries were written. The caller finishes the writer (after releasing the
/// locks: what is left is only the buffered tail and the trailer).
pub(crate) fn write_entries<W: Write>(
    out: &mut ChecksumWriter<W>,
    shards: &[&Shard],
    now: u64,
    value_encoding: u8,
) -> io::Result<u64> {
    let (mut count, mut body_len) = (0u64, 0u64);
    for record in entries(shards, now) {
        count += 1;
        body_len += head_of(record, now).encoded_len();
    }
    let header = Header::new(value_encoding, count, body_len);
    out.put(&header.encode()[..HEADER_LEN])?;
    let mut head = [0u8; 21];
    for record in entries(shards, now) {
        let len = head_of(record, now).encode(&mut head);
        out.put(&head[..len])?;
        out.put(record.key_and_value())?;
    }
    Ok(count)
}

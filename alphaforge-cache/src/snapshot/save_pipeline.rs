//! A large save on three threads: the entries, in file order, are cut into pieces of about
//! [`PIECE_BYTES`]; this thread serializes the even pieces and a helper the odd ones, each into
//! 1 MiB blocks of its own; a writer thread checksums and writes the blocks piece by piece, in
//! order. The file is byte for byte what [`write_entries`](super::writer::write_entries) writes.
//!
//! Serializing is bound by memory latency (each entry's bytes are somewhere in the heap), so two
//! threads copying at once take about half as long; the writer needs little of its CPU.
//!
//! The caller holds every shard's lock throughout, as for a save on one thread.

use super::format::{Header, HEADER_LEN};
use super::writer::{head_of, in_file_order, BUFFER};
use crate::record::Record;
use crate::shard::Shard;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Below this many live entries a save serializes on one thread: a helper would cost more to
/// start than it saves.
pub(crate) const PARALLEL_MIN_ENTRIES: usize = 1 << 15;

/// The bytes of entries in a piece, at least (a piece ends with the entry that reaches it).
const PIECE_BYTES: u64 = 1 << 20;

/// Blocks a serializer may be ahead of the writer by.
const BLOCKS_IN_FLIGHT: usize = 4;

/// A block of a piece's bytes; `last` marks the piece's last block.
struct Block {
    bytes: Vec<u8>,
    last: bool,
}

/// Writes the snapshot of `shards` (all locked by the caller) at time `now` to `out`: header,
/// entries, trailer. Returns the number of entries and of bytes written. Falls back to this
/// thread alone when a thread cannot be started.
pub(super) fn write_snapshot_parallel<W: Write + Send>(
    out: W,
    shards: &[&Shard],
    now: u64,
    value_encoding: u8,
) -> io::Result<(u64, u64)> {
    // The entries in file order, where each piece starts among them, and the body's length,
    // in one walk over the records.
    let mut order: Vec<&Record> = Vec::new();
    let mut starts = vec![0];
    let (mut body_len, mut piece_len) = (0u64, 0u64);
    for record in in_file_order(shards, now) {
        if piece_len >= PIECE_BYTES {
            starts.push(order.len());
            piece_len = 0;
        }
        let len = head_of(record, now).encoded_len();
        body_len += len;
        piece_len += len;
        order.push(record);
    }
    let pieces: Vec<&[&Record]> = starts
        .iter()
        .zip(starts.iter().skip(1).chain([&order.len()]))
        .map(|(&start, &end)| &order[start..end])
        .collect();
    let header = Header::new(value_encoding, order.len() as u64, body_len);
    let header = &header.encode()[..HEADER_LEN];

    let written = std::thread::scope(|scope| {
        let (even_out, even_in) = sync_channel::<Block>(BLOCKS_IN_FLIGHT);
        let (odd_out, odd_in) = sync_channel::<Block>(BLOCKS_IN_FLIGHT);
        let (even_spare_out, even_spare_in) = sync_channel::<Vec<u8>>(BLOCKS_IN_FLIGHT);
        let (odd_spare_out, odd_spare_in) = sync_channel::<Vec<u8>>(BLOCKS_IN_FLIGHT);
        let piece_count = pieces.len();
        let writer = std::thread::Builder::new()
            .name("afc-save".into())
            .spawn_scoped(scope, move || {
                let inputs = [(even_in, even_spare_out), (odd_in, odd_spare_out)];
                write_pieces(out, header, piece_count, &inputs)
            })?;
        // Every channel's senders belong to the threads that send: a thread that stops, by an
        // error or a panic, disconnects its channels, and the others stop too.
        let helper = std::thread::Builder::new()
            .name("afc-save".into())
            .spawn_scoped(scope, {
                let odd_pieces = pieces.iter().skip(1).step_by(2);
                let odd_out = odd_out.clone();
                move || serialize_pieces(odd_pieces, now, &odd_out, &odd_spare_in)
            });
        let serialized = match helper {
            Ok(helper) => {
                drop(odd_out);
                let even_pieces = pieces.iter().step_by(2);
                let serialized = serialize_pieces(even_pieces, now, &even_out, &even_spare_in);
                drop(even_out);
                let helped = helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                serialized.and(helped)
            }
            // No helper: this thread serializes every piece, each on its channel.
            Err(_) => {
                let (_, no_spares) = sync_channel(0);
                let mut result = Ok(());
                for (i, piece) in pieces.iter().enumerate() {
                    result = if i % 2 == 0 {
                        serialize_pieces([piece], now, &even_out, &even_spare_in)
                    } else {
                        serialize_pieces([piece], now, &odd_out, &no_spares)
                    };
                    if result.is_err() {
                        break;
                    }
                }
                drop((even_out, odd_out));
                result
            }
        };
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // A write error is why a serializer stopped: it is the one to report.
        written.and_then(|bytes| serialized.map(|()| bytes))
    })?;
    Ok((order.len() as u64, written))
}

/// A serializer: each piece's entries (head, key, value) into blocks of up to [`BUFFER`] bytes
/// sent to `blocks`, the piece's last block marked. Buffers come back on `spares`.
fn serialize_pieces<'a>(
    pieces: impl IntoIterator<Item = &'a &'a [&'a Record]>,
    now: u64,
    blocks: &SyncSender<Block>,
    spares: &Receiver<Vec<u8>>,
) -> io::Result<()> {
    let stopped = || io::Error::other("the snapshot's writer thread stopped");
    let fresh = || {
        spares
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUFFER))
    };
    let mut head = [0u8; 21];
    for piece in pieces {
        let mut buf = fresh();
        for record in piece.iter() {
            let len = head_of(record, now).encode(&mut head);
            for mut bytes in [&head[..len], record.key_and_value()] {
                while buf.len() + bytes.len() > BUFFER {
                    let (now, later) = bytes.split_at(BUFFER - buf.len());
                    buf.extend_from_slice(now);
                    let full = std::mem::replace(&mut buf, fresh());
                    let block = Block {
                        bytes: full,
                        last: false,
                    };
                    blocks.send(block).map_err(|_| stopped())?;
                    bytes = later;
                }
                buf.extend_from_slice(bytes);
            }
        }
        let block = Block {
            bytes: buf,
            last: true,
        };
        blocks.send(block).map_err(|_| stopped())?;
    }
    Ok(())
}

/// The writer: `header`, then the blocks of `pieces` pieces taken in turn from the two
/// serializers' channels, then the trailer (the CRC-32 of every byte before it). Each spent
/// buffer goes back to its serializer. Returns the bytes written.
fn write_pieces<W: Write>(
    mut out: W,
    header: &[u8],
    pieces: usize,
    inputs: &[(Receiver<Block>, SyncSender<Vec<u8>>); 2],
) -> io::Result<u64> {
    let stopped = || io::Error::other("a snapshot serializer thread stopped");
    let mut crc = crc32fast::Hasher::new();
    crc.update(header);
    out.write_all(header)?;
    let mut written = header.len() as u64;
    for piece in 0..pieces {
        let (blocks, spares) = &inputs[piece % 2];
        loop {
            let Block { mut bytes, last } = blocks.recv().map_err(|_| stopped())?;
            crc.update(&bytes);
            out.write_all(&bytes)?;
            written += bytes.len() as u64;
            bytes.clear();
            let _ = spares.try_send(bytes);
            if last {
                break;
            }
        }
    }
    out.write_all(&crc.finalize().to_le_bytes())?;
    out.flush()?;
    Ok(written + 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cache, SaveOptions};

    /// A cache of `n` entries of every kind, a few larger than a block.
    fn cache_of(n: u64) -> Cache {
        super::super::test_cache::of_every_kind(n, 10_000, BUFFER * 3 / 2)
    }

    /// `cache` saved on one thread and by [`write_snapshot_parallel`], which must write the
    /// same bytes and say so; returns the file and how many entries it holds.
    fn saved_both_ways(cache: &Cache) -> (Vec<u8>, u64) {
        let mut one_thread = Vec::new();
        let info = cache
            .save_to(&mut one_thread, SaveOptions::default())
            .unwrap();
        let mut parallel = Vec::new();
        let (entries, bytes) = cache
            .with_locked_shards(|shards, now| {
                write_snapshot_parallel(&mut parallel, shards, now, 0)
            })
            .unwrap();
        assert_eq!((entries, bytes), (info.entries, info.file_bytes));
        assert_eq!(bytes, parallel.len() as u64);
        // (Not `assert_eq!`: a difference would print megabytes.)
        assert!(parallel == one_thread, "the files differ");
        (one_thread, entries)
    }

    #[test]
    fn a_parallel_save_writes_the_bytes_of_a_save_on_one_thread() {
        let cache = cache_of(50_000);
        let (one_thread, _) = saved_both_ways(&cache);
        // `save` takes the parallel path for this many entries.
        let dir = std::env::temp_dir().join(format!("afc-save-pipeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("large.afcs");
        assert!(cache.len() >= PARALLEL_MIN_ENTRIES);
        cache.save(&path).unwrap();
        assert!(
            std::fs::read(&path).unwrap() == one_thread,
            "the saved file differs"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_parallel_save_leaves_out_entries_expired_but_not_reclaimed() {
        use crate::{Clock, ManualClock, PutOptions};
        use std::time::Duration;
        let time = ManualClock::new();
        let cache = Cache::builder(100_000)
            .shards(4)
            .clock(Clock::manual(&time))
            .build()
            .unwrap();
        let n = 40_000u64;
        for i in 0..n {
            let ttl = (i % 2 == 0).then(|| Duration::from_secs(1 + i % 10));
            let options = PutOptions { ttl, weight: None };
            cache
                .put_with(format!("key-{i}"), [i as u8; 24], options)
                .unwrap();
        }
        // Past the deadlines of TTLs of 1, 3 and 5 s: 3 entries in 10 expired, none reclaimed.
        time.advance(Duration::from_secs(5));
        assert_eq!(saved_both_ways(&cache).1, n / 10 * 7);
        // And once they are reclaimed.
        cache.expire();
        assert_eq!(saved_both_ways(&cache).1, n / 10 * 7);
    }

    /// Takes `room` bytes, then fails every write.
    struct FailsAfter {
        room: usize,
    }

    impl Write for FailsAfter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::other("no room left"));
            }
            let n = bytes.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_write_stops_every_thread_and_is_the_error_reported() {
        let cache = cache_of(40_000);
        for room in [0, 100, 3 << 20] {
            let failed = cache.with_locked_shards(|shards, now| {
                write_snapshot_parallel(FailsAfter { room }, shards, now, 0)
            });
            let err = failed.unwrap_err();
            assert_eq!(err.to_string(), "no room left", "room for {room} bytes");
        }
    }
}

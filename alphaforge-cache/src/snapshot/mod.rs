//! Snapshots: a cache's live entries saved to a file and loaded back, by this crate, the C ABI
//! and the Python package alike (one format, `docs/snapshot-format.md`).
//!
//! - [`Cache::save`] writes every live entry with its remaining TTL and its weight, least recently
//!   used first, into a temporary file beside the target, flushes it to disk and renames it over
//!   the target: a crash or a full disk during a save leaves the previous file intact. The save
//!   holds every shard's lock while it copies the entries out (a consistent snapshot, no second
//!   copy of the values in memory: 1 MiB blocks, which a helper thread writes to the file while
//!   the next is filled; from 32k entries on, two threads fill blocks, each its share of the
//!   file), and none while it flushes to disk.
//! - [`Cache::load`] reads and checks the whole file (checksums, lengths, limits) before it
//!   changes the cache. It then replaces the cache's entries with the file's, as if the cache
//!   were cleared and the entries put in file order: with smaller bounds, the most recently used
//!   entries that fit are kept. Deadlines are the load's time plus the saved remaining TTLs.
//!   The loaded entries share 64 KiB blocks of memory (one allocation per block, not per
//!   entry; a block is freed with its last entry), and from 32k entries on a helper thread
//!   builds the shards while the calling thread reads.
//!
//! ```
//! use alphaforge_cache::{Cache, Clock, ManualClock};
//! use std::time::Duration;
//!
//! let dir = std::env::temp_dir().join(format!("afc-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("quotes.afcs");
//! let cache = Cache::builder(100).shards(1).build()?;
//! cache.put(b"EURUSD", b"1.0842")?;
//! cache.put_with_ttl(b"GBPUSD", b"1.2650", Duration::from_secs(60))?;
//! cache.save(&path)?;
//!
//! let restarted = Cache::builder(100).shards(1).build()?;
//! let info = restarted.load(&path)?;
//! assert_eq!((info.entries, info.entries_kept), (2, 2));
//! assert_eq!(restarted.get(b"EURUSD").as_deref(), Some(&b"1.0842"[..]));
//! assert!(restarted.remaining_ttl(b"GBPUSD").unwrap().unwrap() <= Duration::from_secs(60));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atomic_file;
mod direct_output;
mod error;
mod format;
mod load_pipeline;
mod read_ahead;
mod reader;
mod save_pipeline;
#[cfg(test)]
mod test_cache;
mod writer;

pub use error::{SnapshotError, SnapshotErrorKind};
pub use format::{FORMAT_MAJOR, FORMAT_MINOR};

use crate::record::Record;
use crate::staging::available_threads;
use crate::Cache;
use atomic_file::AtomicFile;
use format::ENTRY_FIXED_LEN;
use read_ahead::ReadAhead;
use reader::SnapshotReader;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use writer::{in_file_order, with_writer_thread, write_entries, BlockSink, ChecksumWriter, Direct};

/// What a snapshot's values are, as recorded in its header (byte 20). The engine stores and
/// restores values as bytes whatever this says; bindings use it to refuse a file whose values
/// they would misread (a Python cache in `"bytes"` mode loading pickles, say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ValueEncoding(pub u8);

impl ValueEncoding {
    /// Values are plain bytes (every Rust and C cache).
    pub const BYTES: ValueEncoding = ValueEncoding(0);
    /// Values are Python pickles (the Python package's `"pickle"` mode, and `"object"` mode with
    /// its default codec).
    pub const PICKLE: ValueEncoding = ValueEncoding(1);
    /// Values were encoded by a codec the application chose (the Python `"object"` mode with a
    /// codec of its own): only that application can decode them.
    pub const CODEC: ValueEncoding = ValueEncoding(2);

    /// The encoding's name ("bytes", "pickle", "codec"), or `None` for a code this library does
    /// not define.
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("bytes"),
            1 => Some("pickle"),
            2 => Some("codec"),
            _ => None,
        }
    }
}

impl fmt::Display for ValueEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown encoding {}", self.0),
        }
    }
}

/// Options of [`Cache::save_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveOptions {
    /// The value encoding recorded in the header ([`ValueEncoding::BYTES`] by default).
    pub value_encoding: ValueEncoding,
}

/// Options of [`Cache::load_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Refuse a snapshot whose value encoding is not this one (`None`: accept any).
    pub expect_encoding: Option<ValueEncoding>,
}

/// What a save, load or [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The file's major format version.
    pub format_major: u16,
    /// The file's minor format version.
    pub format_minor: u16,
    /// The value encoding in the header.
    pub value_encoding: ValueEncoding,
    /// The entries in the file.
    pub entries: u64,
    /// After a load, the entries the cache holds (fewer than `entries` when its bounds are
    /// smaller than the saving cache's); after a save or a verify, `entries`.
    pub entries_kept: u64,
    /// The file's length in bytes.
    pub file_bytes: u64,
}

impl SnapshotInfo {
    /// What a save of `entries` entries in `file_bytes` bytes, in this library's format, found.
    fn written(value_encoding: ValueEncoding, entries: u64, file_bytes: u64) -> Self {
        SnapshotInfo {
            format_major: FORMAT_MAJOR,
            format_minor: FORMAT_MINOR,
            value_encoding,
            entries,
            entries_kept: entries,
            file_bytes,
        }
    }
}

impl Cache {
    /// Saves every live entry to `path` (see [the module](crate::snapshot)): written to a
    /// temporary file in the same directory, flushed to disk, renamed over `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<SnapshotInfo, SnapshotError> {
        self.save_with(path, SaveOptions::default())
    }

    /// Like [`save`](Self::save), with options.
    pub fn save_with(
        &self,
        path: impl AsRef<Path>,
        options: SaveOptions,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let path = path.as_ref();
        let mut file = AtomicFile::create(path)?;
        let parallel = self.len() >= save_pipeline::PARALLEL_MIN_ENTRIES;
        let info = if parallel && available_threads() > 1 {
            // Two threads serialize, a third writes.
            let encoding = options.value_encoding;
            let written = self.with_locked_shards(|shards, now| {
                save_pipeline::write_snapshot_parallel(file.writer(), shards, now, encoding.0)
            });
            let (entries, file_bytes) = written.map_err(|e| write_error(e).with_path(path))?;
            SnapshotInfo::written(encoding, entries, file_bytes)
        } else {
            // A helper thread writes each block to the file while the next is filled (or, if
            // no thread can be started, this thread writes them itself).
            let written =
                with_writer_thread(file.writer(), |sink| Ok(self.write_snapshot(sink, options)));
            written
                .map_err(write_error)
                .and_then(|result| result)
                .map_err(|e| e.with_path(path))?
        };
        file.commit()?;
        Ok(info)
    }

    /// Writes a snapshot to `writer` (no temporary file, no rename: the caller makes it
    /// durable). Every shard is locked while the entries are copied into the writer.
    pub fn save_to(
        &self,
        writer: impl Write,
        options: SaveOptions,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let mut writer = writer;
        let info = self.write_snapshot(Direct(&mut writer), options)?;
        writer.flush().map_err(write_error)?;
        Ok(info)
    }

    /// Writes the snapshot's blocks to `sink`: every shard locked while the entries are copied.
    fn write_snapshot(
        &self,
        sink: impl BlockSink,
        options: SaveOptions,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let mut out = ChecksumWriter::new(sink);
        let encoding = options.value_encoding;
        let entries = self
            .with_locked_shards(|shards, now| write_entries(&mut out, shards, now, encoding.0))
            .map_err(write_error)?;
        let (_, file_bytes) = out.finish().map_err(write_error)?;
        Ok(SnapshotInfo::written(encoding, entries, file_bytes))
    }

    /// Replaces the cache's entries with those saved in `path` (see
    /// [the module](crate::snapshot)). The whole file is checked first: on any error the cache
    /// is unchanged. `path` must name a regular file: a directory, a device, a pipe or a socket
    /// is refused ([`SnapshotErrorKind::Io`]); [`load_from`](Self::load_from) reads any stream.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<SnapshotInfo, SnapshotError> {
        self.load_with(path, LoadOptions::default())
    }

    /// Like [`load`](Self::load), with options.
    pub fn load_with(
        &self,
        path: impl AsRef<Path>,
        options: LoadOptions,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let path = path.as_ref();
        let (file, len) = open(path)?;
        let (file, read_ahead) = ReadAhead::of(file, len);
        self.load_stream(file, Some(len), options, read_ahead)
            .map_err(|e| e.with_path(path))
    }

    /// Like [`load`](Self::load), reading the snapshot from `reader`.
    pub fn load_from(
        &self,
        reader: impl Read,
        options: LoadOptions,
    ) -> Result<SnapshotInfo, SnapshotError> {
        self.load_stream(reader, None, options, None)
    }

    fn load_stream(
        &self,
        reader: impl Read,
        len: Option<u64>,
        options: LoadOptions,
        read_ahead: Option<ReadAhead>,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let reader = SnapshotReader::open(reader, len)?;
        let header = *reader.header();
        check_encoding(header.value_encoding, options)?;
        // Room is made at once only for as many entries as the file's length can hold.
        let expected = match len {
            Some(_) => header
                .entry_count
                .min(header.body_len / ENTRY_FIXED_LEN as u64),
            None => 0,
        };
        let expected = usize::try_from(expected)
            .unwrap_or(usize::MAX)
            .min(self.max_entries());
        let mut staging = self.staging(expected);
        load_pipeline::read_into(&mut staging, reader, expected, read_ahead)?;
        let kept = self.adopt(staging);
        Ok(SnapshotInfo {
            format_major: FORMAT_MAJOR,
            format_minor: header.minor,
            value_encoding: ValueEncoding(header.value_encoding),
            entries: header.entry_count,
            entries_kept: kept as u64,
            file_bytes: header.file_len().unwrap_or(0),
        })
    }
}

impl Cache {
    /// `f(record, now)` of every live entry in the order a snapshot file lists them (least
    /// recently used first, shards merged as [`save`](Self::save) merges them), every shard
    /// locked together and the time read once. Crate-private: the C ABI's snapshot iterator, for
    /// a binding that writes the file itself (a handle cache's values are its own).
    pub(crate) fn collect_in_file_order<T>(&self, mut f: impl FnMut(&Record, u64) -> T) -> Vec<T> {
        self.with_locked_shards(|shards, now| {
            in_file_order(shards, now)
                .map(|record| f(record, now))
                .collect()
        })
    }

    /// Replaces the entries of a handle cache with `keys[i] -> handles[i]` (weight `weights[i]`,
    /// `ttls_ns[i]` nanoseconds left, `None`: never expires), least recently used first, exactly
    /// as [`load`](Self::load) replaces them with a snapshot's entries (staged without a lock,
    /// then swapped in; the previous entries are reported as a clear reports them). The caller
    /// has checked every size against the engine's limits and given slices of one length (the
    /// entries are as many as the shortest of `keys`, `weights`, `ttls_ns`). `kept[i]` is set to 1 when entry
    /// `i` is held once staged, 0 when it did not fit (too heavy for the byte bound on its own,
    /// pushed out by later entries, or replaced by a later entry of the same key): nobody is
    /// told of those, so their handles stay the caller's. Returns how many entries the cache
    /// holds.
    pub(crate) fn load_handles(
        &self,
        keys: &[&[u8]],
        handles: &[u64],
        weights: &[u32],
        ttls_ns: &[Option<u64>],
        kept: &mut [u8],
    ) -> usize {
        let mut staging = self.staging(keys.len().min(self.max_entries()));
        // Each entry is staged with its index as its value: the values left once staging is
        // done name the entries that stayed, whatever the handles are (they need not be
        // distinct), and are then overwritten with their handles (same 8 bytes).
        let entries = keys.iter().zip(weights).zip(ttls_ns);
        for (i, ((key, &weight), &ttl_ns)) in entries.enumerate() {
            staging.put(key, &(i as u64).to_le_bytes(), weight, ttl_ns);
        }
        kept.fill(0);
        staging.for_each_value_mut(|value| {
            let Ok(bytes) = <[u8; 8]>::try_from(&*value) else {
                return;
            };
            let i = u64::from_le_bytes(bytes) as usize;
            if let (Some(flag), Some(handle)) = (kept.get_mut(i), handles.get(i)) {
                *flag = 1;
                value.copy_from_slice(&handle.to_le_bytes());
            }
        });
        self.adopt(staging)
    }
}

/// Checks the whole snapshot at `path` without loading it: its header, every entry and the
/// checksums. Returns what its header says. As for [`Cache::load`], `path` must name a regular
/// file.
pub fn verify(path: impl AsRef<Path>) -> Result<SnapshotInfo, SnapshotError> {
    let path = path.as_ref();
    let (file, len) = open(path)?;
    let check = || {
        let reader = SnapshotReader::open(file, Some(len))?;
        let header = *reader.header();
        reader.read_entries(|_, _| {})?;
        Ok(SnapshotInfo {
            format_major: FORMAT_MAJOR,
            format_minor: header.minor,
            value_encoding: ValueEncoding(header.value_encoding),
            entries: header.entry_count,
            entries_kept: header.entry_count,
            file_bytes: header.file_len().unwrap_or(0),
        })
    };
    check().map_err(|e: SnapshotError| e.with_path(path))
}

fn write_error(e: std::io::Error) -> SnapshotError {
    SnapshotError::io("cannot write the snapshot", e)
}

/// Opens a snapshot for reading, with its length. Only a regular file (or a link to one) is
/// read: a directory, a device, a pipe or a socket is refused. On Unix it is opened with
/// `O_NONBLOCK`, so that the open of a FIFO without a writer returns (to be refused) instead of
/// waiting for one forever; the flag changes nothing for a regular file.
fn open(path: &Path) -> Result<(File, u64), SnapshotError> {
    let fail = |action: &str, e| SnapshotError::io(action, e).with_path(path);
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| fail("cannot open", e))?;
    let meta = file.metadata().map_err(|e| fail("cannot open", e))?;
    if meta.is_dir() {
        let e = std::io::Error::other("the path is a directory");
        return Err(fail("cannot open", e));
    }
    if !meta.is_file() {
        let e = std::io::Error::other(
            "the path is not a regular file (a device, a pipe or a socket): only a file can be \
             read as a snapshot",
        );
        return Err(fail("cannot open", e));
    }
    Ok((file, meta.len()))
}

fn check_encoding(found: u8, options: LoadOptions) -> Result<(), SnapshotError> {
    match options.expect_encoding {
        Some(expected) if expected.0 != found => Err(SnapshotError::encoding_mismatch(format!(
            "its values are encoded as {}, not {expected} as asked",
            ValueEncoding(found)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, ManualClock, PutOptions};
    use std::time::Duration;

    /// `(key, value, ttl_ns, weight)` of an entry.
    type Row = (Vec<u8>, Vec<u8>, Option<u64>, u32);

    fn manual_cache(max: usize, shards: usize, max_bytes: Option<u64>) -> (Cache, ManualClock) {
        let time = ManualClock::new();
        time.set(Duration::from_secs(1000));
        let mut builder = Cache::builder(max)
            .shards(shards)
            .clock(Clock::manual(&time));
        if let Some(max_bytes) = max_bytes {
            builder = builder.max_bytes(max_bytes);
        }
        (builder.build().unwrap(), time)
    }

    /// A cache with `n` entries of every kind: values are 8-byte indices (as handles), some
    /// with TTLs, weights of their own, one heavier than `heavy`; recency changed by gets.
    fn source(n: u64, shards: usize, heavy: u32) -> (Cache, ManualClock) {
        let (cache, time) = manual_cache(10_000, shards, None);
        for i in 0..n {
            let options = PutOptions {
                ttl: (i % 3 == 0).then(|| Duration::from_nanos(1_000 + i * 7)),
                weight: match i % 4 {
                    0 => None,
                    _ if i == n / 2 => Some(heavy),
                    _ => Some((i % 17) as u32),
                },
            };
            let key = format!("key-{i}");
            cache.put_with(key, i.to_le_bytes(), options).unwrap();
            time.advance(Duration::from_nanos(3));
        }
        for i in (0..n).step_by(5) {
            cache.get(format!("key-{i}"));
        }
        (cache, time)
    }

    /// The entries of a snapshot, in file order.
    fn rows_of_file(bytes: &[u8]) -> Vec<Row> {
        let reader = SnapshotReader::open(bytes, Some(bytes.len() as u64)).unwrap();
        let mut rows = Vec::new();
        reader
            .read_entries(|head, data| {
                let (key, value) = data.split_at(head.key_len as usize);
                rows.push((key.to_vec(), value.to_vec(), head.ttl_ns, head.weight()));
            })
            .unwrap();
        rows
    }

    fn rows_of_cache(cache: &Cache) -> Vec<Row> {
        cache.collect_in_file_order(|record, now| {
            let ttl =
                (record.deadline != crate::record::NO_DEADLINE).then(|| record.deadline - now);
            (
                record.key().to_vec(),
                record.value().to_vec(),
                ttl,
                record.weight(),
            )
        })
    }

    fn file_of(cache: &Cache) -> Vec<u8> {
        let mut bytes = Vec::new();
        cache.save_to(&mut bytes, SaveOptions::default()).unwrap();
        bytes
    }

    #[test]
    fn file_order_is_the_order_the_writer_writes() {
        for shards in [1, 4] {
            let (cache, time) = source(500, shards, 9);
            time.advance(Duration::from_nanos(2_000)); // some TTLs have run out
            let rows = rows_of_cache(&cache);
            assert!(rows.len() < 500 && rows.len() > 300, "{}", rows.len());
            assert_eq!(rows, rows_of_file(&file_of(&cache)), "{shards} shards");
        }
    }

    #[test]
    fn load_handles_leaves_what_a_load_of_the_same_entries_leaves() {
        // The same target cache (one hasher: the same shards) loads the file, then the same
        // entries as handles: the same entries, order, deadlines and weights, the same counts.
        let (from, _) = source(300, 1, 1_000);
        let bytes = file_of(&from);
        let rows = rows_of_file(&bytes);
        for shards in [1, 4] {
            let (target, _) = manual_cache(64, shards, Some(500));
            let before = target.stats();
            let info = target
                .load_from(&bytes[..], LoadOptions::default())
                .unwrap();
            let loaded = rows_of_cache(&target);
            let after_load = target.stats();
            assert!(loaded.len() < 64 && info.entries_kept as usize == loaded.len());

            let keys: Vec<&[u8]> = rows.iter().map(|r| &r.0[..]).collect();
            let handles: Vec<u64> = (0..rows.len() as u64).map(|i| i + 1_000_000).collect();
            let weights: Vec<u32> = rows.iter().map(|r| r.3).collect();
            let ttls: Vec<Option<u64>> = rows.iter().map(|r| r.2).collect();
            let mut kept = vec![7u8; rows.len()];
            let held = target.load_handles(&keys, &handles, &weights, &ttls, &mut kept);
            let reloaded = rows_of_cache(&target);
            assert_eq!(held, loaded.len());
            // Each kept entry holds its handle; the rest are exactly the entries a load drops.
            let by_handle: Vec<Row> = reloaded
                .iter()
                .map(|(k, v, t, w)| {
                    let handle = u64::from_le_bytes(v[..].try_into().unwrap());
                    let i = (handle - 1_000_000) as usize;
                    assert_eq!(kept[i], 1);
                    (k.clone(), rows[i].1.clone(), *t, *w)
                })
                .collect();
            assert_eq!(by_handle, loaded, "{shards} shards");
            assert_eq!(kept.iter().filter(|&&k| k == 1).count(), held);
            assert!(kept.iter().all(|&k| k <= 1));
            let after = target.stats();
            assert_eq!(after.inserts - after_load.inserts, held as u64);
            assert_eq!(after.removals - after_load.removals, held as u64);
            assert_eq!(after_load.inserts - before.inserts, held as u64);
            assert_eq!(after.evictions, 0);
        }
    }

    /// A snapshot of `n` entries of every kind, some too large to share a block.
    fn large_file(n: u64) -> Vec<u8> {
        let large = crate::entry_bytes::SHARED_ENTRY_MAX + 100;
        file_of(&test_cache::of_every_kind(n, 1_000, large))
    }

    #[test]
    fn a_load_staged_on_a_helper_thread_leaves_what_a_load_on_one_thread_leaves() {
        let n = 50_000;
        let bytes = large_file(n);
        let len = Some(bytes.len() as u64);
        // Room for all, then for fewer (shards fill up part way), then a byte bound (staged
        // entry by entry).
        for (max, max_bytes) in [(60_000, None), (20_000, None), (60_000, Some(4_000_000))] {
            let (target, _) = manual_cache(max, 4, max_bytes);
            let mut loaded = Vec::new();
            // `expected` below the helper's threshold: one thread; above it: the helper.
            for expected in [0, n as usize] {
                let mut staging = target.staging(expected);
                let reader = SnapshotReader::open(&bytes[..], len).unwrap();
                load_pipeline::read_into(&mut staging, reader, expected, None).unwrap();
                let kept = target.adopt(staging);
                let rows = rows_of_cache(&target);
                assert_eq!(kept, rows.len());
                loaded.push(rows);
            }
            assert!(loaded[0].len() > 1_000, "{}", loaded[0].len());
            // (Not `assert_eq!`: a difference would print 50,000 rows.)
            assert!(loaded[0] == loaded[1], "{max} entries, {max_bytes:?} bytes");
            if max == 60_000 && max_bytes.is_none() {
                // Every entry of the file, as it was saved (each shard in its order).
                let (mut all, mut saved) = (loaded[0].clone(), rows_of_file(&bytes));
                all.sort();
                saved.sort();
                assert!(all == saved);
            }
        }
    }

    #[test]
    fn a_load_that_fails_part_way_leaves_the_cache_unchanged() {
        let bytes = large_file(40_000);
        let (target, _) = manual_cache(60_000, 4, None);
        target.put(b"kept", b"as it was").unwrap();
        let before = rows_of_cache(&target);
        for at in [bytes.len() / 3, bytes.len() - 10] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            let err = target.load_from(&bad[..], LoadOptions::default());
            assert!(err.is_err(), "a flipped bit at {at} was not noticed");
            assert_eq!(rows_of_cache(&target), before);
        }
    }

    #[test]
    fn load_handles_keeps_the_later_entry_of_a_key_given_twice() {
        let (target, _) = manual_cache(8, 1, None);
        let keys: [&[u8]; 3] = [b"a", b"b", b"a"];
        let mut kept = [9u8; 3];
        let held = target.load_handles(&keys, &[5, 5, 6], &[1, 1, 1], &[None; 3], &mut kept);
        assert_eq!((held, kept), (2, [0, 1, 1]));
        let rows = rows_of_cache(&target);
        let handles: Vec<(Vec<u8>, u64)> = rows
            .into_iter()
            .map(|(k, v, _, _)| (k, u64::from_le_bytes(v[..].try_into().unwrap())))
            .collect();
        assert_eq!(handles, [(b"b".to_vec(), 5), (b"a".to_vec(), 6)]);
    }

    /// `f()` on another thread, or `None` if it has not returned after 10 s (then `unblock` is
    /// called, so that the thread does not stay blocked).
    fn within_10_s<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
        unblock: impl FnOnce(),
    ) -> Option<T> {
        let (done, result) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let _ = done.send(f());
        });
        let returned = result.recv_timeout(Duration::from_secs(10)).ok();
        if returned.is_none() {
            unblock();
        }
        let _ = thread.join();
        returned
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_at_once_by_load_and_verify() {
        let dir = std::env::temp_dir().join(format!("afc-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("snapshot.afcs");
        let _ = std::fs::remove_file(&fifo); // left by an earlier run that failed
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|status| status.success()), "mkfifo failed");
        // A regression blocks in open(2) until a writer comes: the writer opened here then.
        let unblock = || {
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        };
        let path = fifo.clone();
        let loaded = within_10_s(
            move || {
                let cache = Cache::builder(16).build().unwrap();
                cache.put(b"kept", b"as it was").unwrap();
                (cache.load(&path).map(|_| ()), cache.len())
            },
            unblock,
        );
        let (result, len) = loaded.expect("the load of a FIFO without a writer did not return");
        let err = result.unwrap_err();
        assert_eq!(err.kind(), SnapshotErrorKind::Io, "{err}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert_eq!(len, 1, "the cache changed");
        let path = fifo.clone();
        let verified = within_10_s(move || verify(&path).map(|_| ()), unblock)
            .expect("the verify of a FIFO without a writer did not return");
        let err = verified.unwrap_err();
        assert_eq!(err.kind(), SnapshotErrorKind::Io, "{err}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_refused_as_a_fifo_is() {
        let cache = Cache::builder(16).build().unwrap();
        for device in ["/dev/null", "/dev/zero"] {
            if !Path::new(device).exists() {
                continue;
            }
            for err in [cache.load(device).unwrap_err(), verify(device).unwrap_err()] {
                assert_eq!(err.kind(), SnapshotErrorKind::Io, "{err}");
                assert!(err.to_string().contains("not a regular file"), "{err}");
            }
        }
    }
}

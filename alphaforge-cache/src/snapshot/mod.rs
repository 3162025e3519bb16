//! Snapshots: a cache's live entries saved to a file and loaded back, by this crate, the C ABI
//! and the Python package alike (one format, `docs/snapshot-format.md`).
//!
//! - [`Cache::save`] writes every live entry with its remaining TTL and its weight, least recently
//!   used first, into a temporary file beside the target, flushes it to disk and renames it over
//!   the target: a crash or a full disk during a save leaves the previous file intact. The save
//!   holds every shard's lock while it copies the entries out (a consistent snapshot, no second
//!   copy of the values in memory: 1 MiB blocks, which a helper thread writes to the file while
//!   the next is filled), and none while it flushes to disk.
//! - [`Cache::load`] reads and checks the whole file (checksums, lengths, limits) before it
//!   changes the cache. It then replaces the cache's entries with the file's, as if the cache
//!   were cleared and the entries put in file order: with smaller bounds, the most recently used
//!   entries that fit are kept. Deadlines are the load's time plus the saved remaining TTLs.
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
mod error;
mod format;
mod reader;
mod writer;

pub use error::{SnapshotError, SnapshotErrorKind};
pub use format::{FORMAT_MAJOR, FORMAT_MINOR};

use crate::Cache;
use atomic_file::AtomicFile;
use format::ENTRY_FIXED_LEN;
use reader::SnapshotReader;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use writer::{with_writer_thread, write_entries, BlockSink, ChecksumWriter, Direct};

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
        // A helper thread writes each block to the file while the next is filled.
        let written =
            with_writer_thread(file.file(), |sink| Ok(self.write_snapshot(sink, options)));
        let info = written
            .map_err(write_error)
            .and_then(|result| result)
            .map_err(|e| e.with_path(path))?;
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
        Ok(SnapshotInfo {
            format_major: FORMAT_MAJOR,
            format_minor: FORMAT_MINOR,
            value_encoding: encoding,
            entries,
            entries_kept: entries,
            file_bytes,
        })
    }

    /// Replaces the cache's entries with those saved in `path` (see
    /// [the module](crate::snapshot)). The whole file is checked first: on any error the cache
    /// is unchanged.
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
        self.load_stream(file, len, options)
            .map_err(|e| e.with_path(path))
    }

    /// Like [`load`](Self::load), reading the snapshot from `reader`.
    pub fn load_from(
        &self,
        reader: impl Read,
        options: LoadOptions,
    ) -> Result<SnapshotInfo, SnapshotError> {
        self.load_stream(reader, None, options)
    }

    fn load_stream(
        &self,
        reader: impl Read,
        len: Option<u64>,
        options: LoadOptions,
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
        reader.read_entries(|head, data| {
            let (key, value) = data.split_at(head.key_len as usize);
            staging.put(key, value, head.weight(), head.ttl_ns);
        })?;
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

/// Checks the whole snapshot at `path` without loading it: its header, every entry and the
/// checksums. Returns what its header says.
pub fn verify(path: impl AsRef<Path>) -> Result<SnapshotInfo, SnapshotError> {
    let path = path.as_ref();
    let (file, len) = open(path)?;
    let check = || {
        let reader = SnapshotReader::open(file, len)?;
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

/// Opens a snapshot for reading; its length when it is a regular file.
fn open(path: &Path) -> Result<(File, Option<u64>), SnapshotError> {
    let fail = |action: &str, e| SnapshotError::io(action, e).with_path(path);
    let file = File::open(path).map_err(|e| fail("cannot open", e))?;
    let meta = file.metadata().map_err(|e| fail("cannot open", e))?;
    if meta.is_dir() {
        let e = std::io::Error::other("the path is a directory");
        return Err(fail("cannot open", e));
    }
    Ok((file, meta.is_file().then_some(meta.len())))
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

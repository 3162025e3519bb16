//! Why a snapshot could not be saved or loaded.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What kind of failure a [`SnapshotError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SnapshotErrorKind {
    /// The operating system refused an operation: opening, creating, reading, writing, syncing
    /// or renaming a file (missing path, no permission, a directory, a full disk...).
    Io,
    /// The file does not start with the snapshot magic bytes: it is not a snapshot.
    NotASnapshot,
    /// A snapshot of a format version, or using a feature, that this library cannot read.
    Unsupported,
    /// The file ends before its header says it does.
    Truncated,
    /// The file is damaged: a checksum does not match, or a field is impossible.
    Corrupt,
    /// The snapshot's value encoding is not the one the caller asked for.
    EncodingMismatch,
}

/// A snapshot that could not be saved or loaded. The cache is unchanged, and a failed save
/// leaves any previous file at the target path as it was.
#[derive(Debug)]
pub struct SnapshotError {
    kind: SnapshotErrorKind,
    detail: String,
    offset: Option<u64>,
    path: Option<PathBuf>,
    source: Option<io::Error>,
}

impl SnapshotError {
    fn new(kind: SnapshotErrorKind, detail: impl Into<String>, offset: Option<u64>) -> Self {
        SnapshotError {
            kind,
            detail: detail.into(),
            offset,
            path: None,
            source: None,
        }
    }

    /// An operating-system failure while `action` ("cannot open the snapshot", ...).
    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Self {
        SnapshotError {
            source: Some(source),
            ..SnapshotError::new(SnapshotErrorKind::Io, action, None)
        }
    }

    pub(crate) fn not_a_snapshot() -> Self {
        SnapshotError::new(
            SnapshotErrorKind::NotASnapshot,
            "not an alphaforge-cache snapshot (the file does not start with the snapshot magic \
             bytes 89 41 46 43 0D 0A 1A 0A)",
            Some(0),
        )
    }

    pub(crate) fn unsupported(detail: impl Into<String>) -> Self {
        SnapshotError::new(SnapshotErrorKind::Unsupported, detail, None)
    }

    pub(crate) fn truncated(offset: u64, detail: impl Into<String>) -> Self {
        SnapshotError::new(SnapshotErrorKind::Truncated, detail, Some(offset))
    }

    pub(crate) fn corrupt(offset: u64, detail: impl Into<String>) -> Self {
        SnapshotError::new(SnapshotErrorKind::Corrupt, detail, Some(offset))
    }

    pub(crate) fn encoding_mismatch(detail: impl Into<String>) -> Self {
        SnapshotError::new(SnapshotErrorKind::EncodingMismatch, detail, None)
    }

    /// Names the file the error is about (shown in the message).
    pub(crate) fn with_path(mut self, path: &Path) -> Self {
        self.path = Some(path.to_path_buf());
        self
    }

    /// Makes an offset relative to a part of the file (an entry) absolute, and says which part.
    pub(crate) fn within(mut self, base: u64, what: impl fmt::Display) -> Self {
        self.offset = self.offset.map(|o| o + base);
        self.detail = format!("{what}: {}", self.detail);
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> SnapshotErrorKind {
        self.kind
    }

    /// The file the error is about, when known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The byte offset in the file where the problem was found, when it is about the file's
    /// content.
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// The operating system's error, for [`SnapshotErrorKind::Io`].
    pub fn io_error(&self) -> Option<&io::Error> {
        self.source.as_ref()
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "snapshot {}: ", path.display())?,
            None => f.write_str("snapshot: ")?,
        }
        match self.kind {
            SnapshotErrorKind::Truncated => write!(f, "truncated: {}", self.detail)?,
            SnapshotErrorKind::Corrupt => write!(f, "corrupt: {}", self.detail)?,
            _ => f.write_str(&self.detail)?,
        }
        if let Some(offset) = self.offset {
            if self.kind != SnapshotErrorKind::NotASnapshot {
                write!(f, " (at byte {offset})")?;
            }
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

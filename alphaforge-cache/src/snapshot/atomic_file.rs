//! Replacing a file atomically: write a temporary file in the target's directory, flush it to
//! disk, rename it over the target, then flush the directory. A crash or a failure at any point
//! leaves the target as it was (or, after the rename, as the complete new file).

use super::direct_output::{self, DirectOutput};
use super::error::SnapshotError;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of concurrent saves within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file that becomes `target` on [`commit`](Self::commit), and is removed if dropped
/// before that.
pub(crate) struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    out: Option<DirectOutput>,
}

impl AtomicFile {
    /// Creates the temporary file `.NAME.PID.N.tmp` beside `target` (never an existing file).
    pub(crate) fn create(target: &Path) -> Result<AtomicFile, SnapshotError> {
        let fail = |action: &str, e| SnapshotError::io(action, e).with_path(target);
        let name = target.file_name().ok_or_else(|| {
            fail(
                "cannot save",
                io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"),
            )
        })?;
        match fs::metadata(target) {
            Ok(meta) if meta.is_dir() => {
                return Err(fail(
                    "cannot save",
                    io::Error::other("the path is a directory"),
                ))
            }
            // A device, a pipe or a socket: the rename would replace it with a regular file
            // (as root, /dev/null with a snapshot).
            Ok(meta) if !meta.is_file() => {
                return Err(fail(
                    "cannot save",
                    io::Error::other(
                        "the path is not a regular file (a device, a pipe or a socket), which a \
                         save would replace",
                    ),
                ))
            }
            _ => {}
        }
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = target.with_file_name(temp_name);
        // Past the page cache where the file system allows it (see direct_output).
        let created = direct_output::create_new(&temp)
            .and_then(|(file, direct)| DirectOutput::new(file, direct));
        let out = created.map_err(|e| {
            SnapshotError::io(
                format!("cannot create the temporary file {}", temp.display()),
                e,
            )
            .with_path(target)
        })?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
            out: Some(out),
        })
    }

    /// The temporary file's writer.
    pub(crate) fn writer(&mut self) -> &mut DirectOutput {
        self.out.as_mut().expect("the file is open until commit")
    }

    /// Flushes the file to disk, renames it over the target and flushes the directory.
    pub(crate) fn commit(mut self) -> Result<(), SnapshotError> {
        let target = self.target.clone();
        let fail = |action: &str, e| SnapshotError::io(action, e).with_path(&target);
        let out = self.out.take().expect("committed once");
        let file = out
            .finish()
            .map_err(|e| fail("cannot write the snapshot", e))?;
        file.sync_all()
            .map_err(|e| fail("cannot flush the temporary file to disk", e))?;
        drop(file);
        fs::rename(&self.temp, &self.target)
            .map_err(|e| fail("cannot rename the temporary file over the target", e))?;
        // The rename is done: from here on the temporary file no longer exists.
        self.temp = PathBuf::new();
        let dir = match self.target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("saved, but cannot flush the directory to disk", e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            drop(self.out.take());
            let _ = fs::remove_file(&self.temp);
        }
    }
}

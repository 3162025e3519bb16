//! Replacing a file atomically: write a temporary file in the target's directory, flush it to
//! disk, rename it over the target, then flush the directory. A crash or a failure at any point
//! leaves the target as it was (or, after the rename, as the complete new file).

use super::direct_output::{self, DirectOutput};
use super::error::SnapshotError;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of concurrent saves within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The longest file name, in bytes, that common file systems accept (`NAME_MAX` on Linux, and
/// the limit of ext4, XFS, Btrfs, tmpfs, APFS...). A temporary name stays within it.
const NAME_MAX: usize = 255;

/// The temporary file's name for a target named `name`: `.NAME.PID.N.tmp`, with `NAME` cut
/// short when the whole would be longer than [`NAME_MAX`] (a target name of 220 bytes or more).
/// `PID.N` alone makes it unique; `NAME` only tells a person whose it is.
fn temp_name(name: &OsStr, pid: u32, n: u64) -> OsString {
    let suffix = format!(".{pid}.{n}.tmp");
    let mut temp = OsString::from(".");
    temp.push(prefix_of(name, NAME_MAX - 1 - suffix.len()));
    temp.push(suffix);
    temp
}

/// The longest start of `name` of at most `max_len` bytes, cut between characters when it is
/// valid Unicode.
fn prefix_of(name: &OsStr, max_len: usize) -> OsString {
    if name.len() <= max_len {
        return name.to_os_string();
    }
    if let Some(text) = name.to_str() {
        let mut end = max_len;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        return OsString::from(&text[..end]);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        OsStr::from_bytes(&name.as_bytes()[..max_len]).to_os_string()
    }
    #[cfg(not(unix))]
    {
        // Not valid Unicode (unpaired surrogates on Windows): its readable part.
        let text = name.to_string_lossy();
        let mut end = max_len.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        OsString::from(&text[..end])
    }
}

/// A temporary file that becomes `target` on [`commit`](Self::commit), and is removed if dropped
/// before that.
pub(crate) struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    out: Option<DirectOutput>,
}

impl AtomicFile {
    /// Creates the temporary file `.NAME.PID.N.tmp` beside `target` (never an existing file;
    /// `NAME` cut short if needed, see [`temp_name`]).
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
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = target.with_file_name(temp_name(name, std::process::id(), n));
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
        let previous = PreviousFile::hold(&self.target);
        fs::rename(&self.temp, &self.target)
            .map_err(|e| fail("cannot rename the temporary file over the target", e))?;
        // The rename is done: from here on the temporary file no longer exists.
        self.temp = PathBuf::new();
        let dir = match self.target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let flushed = File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("saved, but cannot flush the directory to disk", e));
        if let Some(previous) = previous {
            previous.release_in_background();
        }
        flushed
    }
}

/// The file a save replaces, held open across the rename so that the rename does not free its
/// blocks: the last close does, on a thread of its own, after the save has returned.
///
/// Freeing a large file's blocks can take as long as a good part of the save (on ext4 mounted
/// with `discard` and no journal, each freed extent is discarded before the call returns: 17-19
/// ms for a snapshot of 89 MB in `rename`), and none of it is the save's work: the new snapshot
/// is in place and on disk before. Held with `O_PATH` (Linux), which opens nothing (no read
/// permission needed, no side effect on a device or a pipe), and only when it is a regular file
/// of at least [`PREVIOUS_HOLD_MIN_BYTES`]; elsewhere the rename frees it, as before.
struct PreviousFile {
    /// Held only to be closed.
    _held: File,
}

/// The smallest previous snapshot whose freeing is left to a thread: smaller ones are freed
/// sooner than a thread starts.
const PREVIOUS_HOLD_MIN_BYTES: u64 = 4 << 20;

impl PreviousFile {
    /// The file at `target` if it is one worth holding (see [`PreviousFile`]).
    fn hold(target: &Path) -> Option<PreviousFile> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
                .open(target)
                .ok()?;
            let meta = file.metadata().ok()?;
            (meta.is_file() && meta.len() >= PREVIOUS_HOLD_MIN_BYTES)
                .then_some(PreviousFile { _held: file })
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = (target, PREVIOUS_HOLD_MIN_BYTES);
            None
        }
    }

    /// Closes the file on a thread of its own (on this one if no thread can be started).
    fn release_in_background(self) {
        // A thread that cannot be started drops its closure, and with it the file, here.
        let _ = std::thread::Builder::new()
            .name("afc-release".into())
            .spawn(move || drop(self));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cache;

    #[test]
    fn temporary_names_fit_in_name_max_and_start_with_the_target_name() {
        let names = [
            "quotes.afcs".to_string(),
            "q".repeat(219),
            "q".repeat(220),
            "q".repeat(255),
            // Multi-byte characters across the cut: cut between characters.
            "é".repeat(127),
            format!("{}€€€", "x".repeat(214)),
        ];
        for name in &names {
            for (pid, n) in [(1, 0), (u32::MAX, u64::MAX)] {
                let temp = temp_name(OsStr::new(name), pid, n);
                let temp = temp.to_str().expect("a cut between characters");
                let suffix = format!(".{pid}.{n}.tmp");
                assert!(temp.len() <= NAME_MAX, "{} bytes: {temp}", temp.len());
                assert!(temp.ends_with(&suffix), "{temp}");
                let kept = &temp[1..temp.len() - suffix.len()];
                assert!(name.starts_with(kept), "{temp}");
                // Cut only when needed, and then as little as possible.
                if 1 + name.len() + suffix.len() <= NAME_MAX {
                    assert_eq!(kept, name);
                } else {
                    assert!(temp.len() > NAME_MAX - 3, "cut more than needed: {temp}");
                }
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_name_that_is_not_unicode_is_cut_by_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let name = OsStr::from_bytes(&[0xff; 250]);
        let temp = temp_name(name, 123, 4);
        assert_eq!(temp.len(), NAME_MAX);
        assert!(temp.as_bytes().ends_with(b".123.4.tmp"));
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_large_previous_file_is_held_across_the_rename_and_freed_after() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("afc-previous-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("cache.afcs");
        let held = |path: &Path| PreviousFile::hold(path).map(|p| p._held);
        // Nothing to hold: no file, a small one, a directory, a symbolic link to a large file.
        assert!(held(&target).is_none());
        std::fs::write(&target, vec![1u8; 4096]).unwrap();
        assert!(held(&target).is_none());
        assert!(held(&dir).is_none());
        let large = vec![7u8; PREVIOUS_HOLD_MIN_BYTES as usize];
        let link_to = dir.join("large.bin");
        std::fs::write(&link_to, &large).unwrap();
        let link = dir.join("link.afcs");
        std::os::unix::fs::symlink(&link_to, &link).unwrap();
        assert!(
            held(&link).is_none(),
            "a link is replaced by the rename, not its target"
        );

        // A large previous snapshot: held, it is the file replaced, unlinked but still there.
        std::fs::write(&target, &large).unwrap();
        let before = std::fs::metadata(&target).unwrap();
        let file = held(&target).expect("a large regular file is held");
        let mut atomic = AtomicFile::create(&target).unwrap();
        std::io::Write::write_all(atomic.writer(), b"new").unwrap();
        atomic.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let replaced = file.metadata().unwrap();
        assert_eq!(
            (replaced.ino(), replaced.len(), replaced.nlink()),
            (before.ino(), before.len(), 0)
        );
        drop(file);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_save_to_the_longest_file_name_succeeds_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("afc-long-name-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cache = Cache::builder(16).build().unwrap();
        cache.put(b"k", b"v").unwrap();
        for len in [220, 250, NAME_MAX] {
            let path = dir.join("n".repeat(len));
            let info = cache.save(&path);
            assert!(info.is_ok(), "a name of {len} bytes: {}", info.unwrap_err());
            let copy = Cache::builder(16).build().unwrap();
            copy.load(&path).unwrap();
            assert_eq!(copy.get(b"k").as_deref(), Some(&b"v"[..]));
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

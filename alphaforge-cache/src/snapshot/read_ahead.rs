//! A snapshot file read ahead of the load that reads it: the load's helper thread asks the
//! kernel, in its idle moments, to start reading the next megabytes into the page cache
//! (`POSIX_FADV_WILLNEED`), a bounded distance ahead of what the load has read.
//!
//! A load from the disk reads at about the speed it checks and stages entries, so the two
//! should overlap. Left to itself the kernel's read-ahead runs one window ahead of the reader,
//! and it allocates the page cache's pages for it on the reading thread, the load's busiest:
//! the reading thread waited for the disk ~33 ms per load of an 89 MB snapshot. Asked from the
//! helper, the pages are allocated and their reads started there, and the disk keeps busy.
//! For a file already in the page cache the advice finds every page there and does nothing.
//! Where `posix_fadvise` does not exist (macOS, Windows) there is no read-ahead but the
//! kernel's own.

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How much one piece of advice asks for.
const CHUNK_BYTES: u64 = 2 << 20;

/// How far ahead of the reader the file may be asked for.
const AHEAD_BYTES: u64 = 32 << 20;

/// The read-ahead of one file: how much of it was asked for, and how much the load has read
/// (counted by its [`CountingReader`]).
pub(super) struct ReadAhead {
    /// The file, shared with the load's reader.
    file: Arc<File>,
    /// The file's length.
    len: u64,
    /// Bytes from the start asked for so far.
    asked: u64,
    /// Bytes the load has read so far.
    read: Arc<AtomicU64>,
}

/// The load's reader of a file with a [`ReadAhead`]: it counts the bytes read through it.
pub(super) struct CountingReader {
    file: Arc<File>,
    read: Arc<AtomicU64>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.file).read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl ReadAhead {
    /// `file` (of `len` bytes) to be read through the returned reader, and its read-ahead:
    /// `None` where there is none (no `posix_fadvise`). The two share the file's descriptor,
    /// closed when both are dropped.
    pub(super) fn of(file: File, len: u64) -> (CountingReader, Option<ReadAhead>) {
        let read = Arc::new(AtomicU64::new(0));
        let file = Arc::new(file);
        let ahead = ADVICE_AVAILABLE.then(|| ReadAhead {
            file: file.clone(),
            len,
            asked: 0,
            read: read.clone(),
        });
        (CountingReader { file, read }, ahead)
    }

    /// Asks for the next piece of the file if the load is near enough to it; returns whether
    /// it did (false: all asked for already, or far enough ahead for now).
    pub(super) fn step(&mut self) -> bool {
        let limit = self
            .read
            .load(Ordering::Relaxed)
            .saturating_add(AHEAD_BYTES);
        if self.asked >= self.len || self.asked >= limit {
            return false;
        }
        let len = CHUNK_BYTES.min(self.len - self.asked);
        will_need(&self.file, self.asked, len);
        self.asked += len;
        true
    }
}

/// Whether [`will_need`] asks the kernel for anything on this system.
const ADVICE_AVAILABLE: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd"
));

/// Asks the kernel to start reading `len` bytes of `file` from `offset` into the page cache.
/// Advice only: an error (none is expected for a regular file) changes nothing but the speed.
// The engine's second call into libc outside `src/ffi` (after `pthread_atfork`): an FFI edge
// of its own.
#[allow(unsafe_code)]
fn will_need(file: &File, offset: u64, len: u64) {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len))
        else {
            return;
        };
        // SAFETY: `posix_fadvise` takes a descriptor and three integers and touches no memory
        // of this process; the descriptor is open for the whole call, `file` being borrowed.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let _ = (file, offset, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_asked_for_in_pieces_a_bounded_distance_ahead_of_the_reader() {
        let path = std::env::temp_dir().join(format!("afc-read-ahead-{}", std::process::id()));
        let len = AHEAD_BYTES + 5 * CHUNK_BYTES + 1_000;
        // Sparse: only its last bytes are written.
        let file = File::create(&path).unwrap();
        file.set_len(len).unwrap();
        drop(file);
        let (mut reader, ahead) = ReadAhead::of(File::open(&path).unwrap(), len);
        if !ADVICE_AVAILABLE {
            assert!(ahead.is_none());
            return;
        }
        let mut ahead = ahead.expect("advice where posix_fadvise exists");
        let steps =
            |ahead: &mut ReadAhead| std::iter::from_fn(|| ahead.step().then_some(())).count();
        // Nothing read yet: as far as the distance allows, then nothing more.
        assert_eq!(steps(&mut ahead), (AHEAD_BYTES / CHUNK_BYTES) as usize);
        assert_eq!(ahead.asked, AHEAD_BYTES);
        assert_eq!(steps(&mut ahead), 0);
        // The reader reads two pieces and a bit: two more pieces (a third once it passes it).
        let mut buf = vec![0u8; (2 * CHUNK_BYTES + 10) as usize];
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(ahead.read.load(Ordering::Relaxed), 2 * CHUNK_BYTES + 10);
        assert_eq!(steps(&mut ahead), 3);
        // Read to the end: the rest, the last piece short, and never past the end.
        let rest = std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        assert_eq!(rest, len - (2 * CHUNK_BYTES + 10));
        assert_eq!(steps(&mut ahead), 3);
        assert_eq!(ahead.asked, len);
        assert_eq!(steps(&mut ahead), 0);
        std::fs::remove_file(&path).unwrap();
    }
}

//! A save's temporary file written past the page cache (`O_DIRECT`, Linux).
//!
//! Through the page cache, writing a snapshot's bytes costs whatever getting that many fresh
//! pages costs at the moment: on a VM whose memory comes cold from the host, 50-260 ms for the
//! 89 MB of 1M entries, where the same bytes written with `O_DIRECT` took 40-50 ms every time
//! (`docs/benchmarks.md`, "Snapshots"). A direct write must start at a block-aligned offset,
//! from a block-aligned address, for a whole number of blocks: [`DirectOutput`] gathers the
//! bytes in an aligned 1 MiB chunk and writes whole chunks, and [`DirectOutput::finish`] writes
//! the last chunk padded to a block, then cuts the file to its true length.
//!
//! Where the file system refuses `O_DIRECT` (tmpfs, some network file systems) the file is
//! written through the page cache as before.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The alignment of a direct write's offset, address and length (the largest logical block
/// size of common disks).
const ALIGN: usize = 4096;

/// The bytes gathered before a direct write.
const CHUNK: usize = 1 << 20;

/// Creates `path` (never an existing file) for writing, past the page cache where the file
/// system allows it. Returns the file and whether it is direct.
pub(crate) fn create_new(path: &Path) -> io::Result<(File, bool)> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(file) => return Ok((file, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // No O_DIRECT here. Some file systems create the file before they refuse the
                // flag: the name is this process's own (see AtomicFile), so remove it.
                let _ = std::fs::remove_file(path);
            }
            Err(e) => return Err(e),
        }
    }
    let file = OpenOptions::new().write(true).create_new(true).open(path)?;
    Ok((file, false))
}

/// A file being written, directly (bytes gathered into aligned chunks) or through the page
/// cache; [`finish`](Self::finish) must be called once the last byte is written.
pub(crate) struct DirectOutput {
    file: File,
    /// For a direct file: the chunk's storage, the aligned chunk's start in it, and the bytes
    /// gathered so far.
    chunk: Option<(Vec<u8>, usize, usize)>,
    /// The bytes written so far (the file's true length once finished).
    written: u64,
}

impl DirectOutput {
    /// Writes to `file`, opened by [`create_new`] (`direct` as it says).
    pub(crate) fn new(file: File, direct: bool) -> io::Result<DirectOutput> {
        let chunk = if direct {
            let storage = vec![0u8; CHUNK + ALIGN];
            let start = storage.as_ptr().align_offset(ALIGN);
            if start >= ALIGN {
                // align_offset may give up in principle (never for bytes on real targets).
                return Err(io::Error::other("cannot align a buffer for a direct write"));
            }
            Some((storage, start, 0))
        } else {
            None
        };
        Ok(DirectOutput {
            file,
            chunk,
            written: 0,
        })
    }

    /// Writes what is gathered, padded to a whole block, and cuts the file to the bytes
    /// written. Returns the file.
    pub(crate) fn finish(mut self) -> io::Result<File> {
        if let Some((storage, start, filled)) = self.chunk.as_mut() {
            if *filled > 0 {
                let padded = filled.div_ceil(ALIGN) * ALIGN;
                storage[*start + *filled..*start + padded].fill(0);
                self.file.write_all(&storage[*start..*start + padded])?;
                *filled = 0;
            }
            self.file.set_len(self.written)?;
        }
        Ok(self.file)
    }
}

impl Write for DirectOutput {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some((storage, start, filled)) = self.chunk.as_mut() else {
            let n = self.file.write(data)?;
            self.written += n as u64;
            return Ok(n);
        };
        let n = data.len().min(CHUNK - *filled);
        storage[*start + *filled..*start + *filled + n].copy_from_slice(&data[..n]);
        *filled += n;
        if *filled == CHUNK {
            self.file.write_all(&storage[*start..*start + CHUNK])?;
            *filled = 0;
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A direct file's last, partial chunk waits for finish (it must be padded).
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn round_trip(len: usize, direct_wanted: bool) {
        let dir = std::env::temp_dir().join(format!(
            "afc-direct-{}-{len}-{direct_wanted}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        let _ = std::fs::remove_file(&path);
        let (file, direct) = if direct_wanted {
            create_new(&path).unwrap()
        } else {
            (File::create(&path).unwrap(), false)
        };
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut out = DirectOutput::new(file, direct).unwrap();
        // Odd-sized writes, across chunk boundaries.
        for piece in data.chunks(CHUNK / 3 + 7) {
            out.write_all(piece).unwrap();
        }
        out.flush().unwrap();
        out.finish().unwrap().sync_all().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), len, "direct: {direct}");
        assert!(back == data, "direct: {direct}");
        assert!(create_new(&path).is_err(), "never an existing file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_length_reads_back_exactly() {
        for len in [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 12345,
        ] {
            round_trip(len, true);
            round_trip(len, false);
        }
    }
}

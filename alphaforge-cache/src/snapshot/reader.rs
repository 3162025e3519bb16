//! Reading a snapshot: a buffered reader that checksums what it consumes in large blocks, and
//! the checks of the whole file, header first, then every entry, then the trailer.
//!
//! Nothing is allocated from a length field alone: key and value bytes are read into a buffer
//! that grows only as bytes actually arrive, so a file claiming terabytes costs no more memory
//! than the bytes it really has.

use super::error::SnapshotError;
use super::format::{
    EntryHead, Header, ENTRY_FIXED_LEN, HEADER_FIXED_LEN, HEADER_LEN, HEADER_PREFIX_LEN,
    TRAILER_LEN,
};
use std::io::{self, Read};

/// The largest read buffer (the file's length, when smaller and known, is used instead).
const MAX_BUFFER: usize = 256 << 10;
/// The read buffer when the length is not known.
const DEFAULT_BUFFER: usize = 64 << 10;

/// A buffered reader that computes the CRC-32 of every byte consumed so far.
struct ChecksumReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Consumed bytes not yet checksummed are `buf[crc_from..start]`.
    crc_from: usize,
    crc: crc32fast::Hasher,
    /// The file offset of `buf[start]`.
    offset: u64,
    /// Where entries longer than the buffer are assembled (and handed over from: see
    /// [`EntryData::Large`]).
    large: Vec<u8>,
    /// Whether the file's length is known and checked against its header: then an entry's
    /// claimed length is backed by bytes the file has, and `large` is allocated for it at once.
    length_checked: bool,
}

/// An entry's key and value bytes, as the reader hands them to a sink.
pub(crate) enum EntryData<'a> {
    /// Bytes in the reader's buffer, valid during the call.
    Buffered(&'a [u8]),
    /// An entry longer than the buffer, assembled in a vector of its own, which the sink may
    /// take (`std::mem::take`) instead of copying: a large value is then held once.
    Large(&'a mut Vec<u8>),
}

impl std::ops::Deref for EntryData<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            EntryData::Buffered(bytes) => bytes,
            EntryData::Large(bytes) => bytes,
        }
    }
}

impl<R: Read> ChecksumReader<R> {
    fn new(inner: R, buffer: usize) -> Self {
        ChecksumReader {
            inner,
            buf: vec![0; buffer],
            start: 0,
            end: 0,
            crc_from: 0,
            crc: crc32fast::Hasher::new(),
            offset: 0,
            large: Vec::new(),
            length_checked: false,
        }
    }

    fn flush_crc(&mut self) {
        self.crc.update(&self.buf[self.crc_from..self.start]);
        self.crc_from = self.start;
    }

    /// The CRC-32 of every byte consumed so far.
    fn checksum(&mut self) -> u32 {
        self.flush_crc();
        self.crc.clone().finalize()
    }

    /// Makes at least `n` (at most the buffer's size) bytes available; false at end of file.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.flush_crc();
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        self.crc_from = 0;
        while self.end < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(read) => self.end += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The next `n` bytes, or `None` if the file ends first.
    #[inline]
    fn take(&mut self, n: usize) -> io::Result<Option<&[u8]>> {
        if n > self.buf.len() {
            return Ok(self.take_large(n)?.then_some(&self.large[..]));
        }
        if !self.fill(n)? {
            return Ok(None);
        }
        let at = self.start;
        self.start += n;
        self.offset += n as u64;
        Ok(Some(&self.buf[at..at + n]))
    }

    /// `take` for more bytes than the buffer holds, assembled in `large`; false if the file
    /// ends first. When the file's length is checked, `large` is allocated for the `n` bytes at
    /// once (the file has them); otherwise it grows only as the bytes arrive.
    fn take_large(&mut self, n: usize) -> io::Result<bool> {
        self.large.clear();
        if self.length_checked {
            self.large.reserve_exact(n);
        }
        self.large
            .extend_from_slice(&self.buf[self.start..self.end]);
        self.start = self.end;
        self.flush_crc();
        let mut have = self.large.len();
        while have < n {
            if have == self.large.len() {
                // Grow by what has arrived so far (at least a buffer's worth): never more than
                // twice the bytes the file really has. Only when full: a stream that gives a
                // few bytes per read must not cost a zeroed megabyte each.
                let step = (n - have).min(have.max(self.buf.len())).min(MAX_BUFFER);
                self.large.resize(have + step, 0);
            }
            let read = loop {
                match self.inner.read(&mut self.large[have..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other?,
                }
            };
            if read == 0 {
                self.large.truncate(have);
                self.offset += have as u64;
                return Ok(false);
            }
            self.crc.update(&self.large[have..have + read]);
            have += read;
        }
        self.offset += n as u64;
        Ok(true)
    }

    /// Consumes the first `n` buffered bytes.
    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// The fast path of a snapshot's entries: hands at most `max` entries to `sink` while each
    /// is wholly in the buffer and regular (within `body_end`, lengths within the engine's
    /// limits), and returns how many it handed. It stops before the first that is not: the
    /// careful path reads that one (refilling the buffer) and reports its errors.
    fn read_buffered_entries(
        &mut self,
        max: u64,
        body_end: u64,
        sink: &mut impl FnMut(&EntryHead, EntryData<'_>),
    ) -> u64 {
        let bytes = &self.buf[self.start..self.end];
        let room = body_end.saturating_sub(self.offset);
        let bytes = &bytes[..bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        let (mut used, mut handed) = (0, 0);
        while handed < max {
            let rest = &bytes[used..];
            let Some(fixed) = rest.get(..ENTRY_FIXED_LEN) else {
                break;
            };
            let Ok((flags, key_len, value_len, optional)) = EntryHead::decode_fixed(fixed) else {
                break;
            };
            let data_at = ENTRY_FIXED_LEN + optional;
            let data_len = u64::from(key_len) + u64::from(value_len);
            let Some(entry_len) = usize::try_from(data_len)
                .ok()
                .and_then(|len| len.checked_add(data_at))
                .filter(|&len| len <= rest.len())
            else {
                break;
            };
            let Ok(head) =
                EntryHead::decode(flags, key_len, value_len, &rest[ENTRY_FIXED_LEN..data_at])
            else {
                break;
            };
            sink(&head, EntryData::Buffered(&rest[data_at..entry_len]));
            used += entry_len;
            handed += 1;
        }
        self.consume(used);
        handed
    }
}

/// A snapshot being read: its header has been checked; [`read_entries`](Self::read_entries)
/// reads and checks the rest.
pub(crate) struct SnapshotReader<R: Read> {
    input: ChecksumReader<R>,
    header: Header,
}

/// A file that ends at `at`, in `what`, before the end of the body (`body_end`) and trailer.
fn truncated_in(at: u64, what: &str, body_end: u64) -> SnapshotError {
    SnapshotError::truncated(
        at,
        format!(
            "the file ends in {what} (its header says it has {} bytes)",
            body_end + TRAILER_LEN as u64
        ),
    )
}

fn read_error(e: io::Error) -> SnapshotError {
    SnapshotError::io("cannot read the snapshot", e)
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and checks the header. `file_len`, when known, is checked against the length the
    /// header gives (so a truncated file is recognised before its entries are read).
    pub(crate) fn open(inner: R, file_len: Option<u64>) -> Result<Self, SnapshotError> {
        let buffer = file_len.map_or(DEFAULT_BUFFER, |len| {
            (len as usize).clamp(HEADER_LEN, MAX_BUFFER)
        });
        let mut input = ChecksumReader::new(inner, buffer);
        let too_short = |have: u64| {
            SnapshotError::truncated(
                have,
                format!(
                    "the file has only {have} bytes; a snapshot has at least {} (its header and \
                     checksum)",
                    HEADER_LEN + TRAILER_LEN
                ),
            )
        };
        if file_len == Some(0) {
            return Err(SnapshotError::truncated(0, "the file is empty"));
        }
        let mut bytes = match input.take(HEADER_PREFIX_LEN).map_err(read_error)? {
            Some(prefix) => prefix.to_vec(),
            None => {
                // Even a few bytes tell a foreign file from a short snapshot.
                let have = input.end - input.start;
                let seen = &input.buf[input.start..input.end];
                if have == 0 {
                    return Err(SnapshotError::truncated(0, "the file is empty"));
                }
                if !super::format::MAGIC.starts_with(&seen[..have.min(8)]) {
                    return Err(SnapshotError::not_a_snapshot());
                }
                return Err(too_short(have as u64));
            }
        };
        let (_, header_len) = Header::check_prefix(&bytes)?;
        let header_len = header_len as usize;
        let checked_len = header_len - TRAILER_LEN;
        match input
            .take(checked_len - HEADER_PREFIX_LEN)
            .map_err(read_error)?
        {
            Some(rest) => bytes.extend_from_slice(rest),
            None => return Err(too_short(input.offset + (input.end - input.start) as u64)),
        }
        let computed = input.checksum();
        let stored = match input.take(4).map_err(read_error)? {
            Some(crc) => u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]),
            None => return Err(too_short(input.offset + (input.end - input.start) as u64)),
        };
        if stored != computed {
            return Err(SnapshotError::corrupt(
                checked_len as u64,
                format!(
                    "header checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})"
                ),
            ));
        }
        bytes.extend_from_slice(&stored.to_le_bytes());
        debug_assert!(bytes.len() >= HEADER_FIXED_LEN + 4);
        let header = Header::decode(&bytes)?;
        let expected = header.file_len().ok_or_else(|| {
            SnapshotError::corrupt(32, format!("body length {} is impossible", header.body_len))
        })?;
        if let Some(len) = file_len {
            if len < expected {
                return Err(SnapshotError::truncated(
                    len,
                    format!("the file has {len} bytes, its header says {expected}"),
                ));
            }
            if len > expected {
                return Err(SnapshotError::corrupt(
                    expected,
                    format!(
                        "{} unexpected bytes after the end the header gives",
                        len - expected
                    ),
                ));
            }
            input.length_checked = true;
        }
        Ok(SnapshotReader { input, header })
    }

    /// The checked header.
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// Reads every entry, handing each (with its key and value bytes, concatenated) to `sink`,
    /// then checks the trailer. Nothing read may be trusted until this returns `Ok`.
    pub(crate) fn read_entries(
        mut self,
        mut sink: impl FnMut(&EntryHead, EntryData<'_>),
    ) -> Result<(), SnapshotError> {
        let count = self.header.entry_count;
        let body_end = u64::from(self.header.header_len) + self.header.body_len;
        let mut read = 0;
        while read < count {
            // The entries already wholly in the buffer, then the next one, which may need the
            // buffer refilled (or be in error: only the careful path reports errors).
            read += self
                .input
                .read_buffered_entries(count - read, body_end, &mut sink);
            if read < count {
                read += 1;
                self.read_entry(read, body_end, &mut sink)?;
            }
        }
        let input = &mut self.input;
        if input.offset != body_end {
            return Err(SnapshotError::corrupt(
                input.offset,
                format!(
                    "the {count} entries end at byte {}, but the header says the body ends at \
                     byte {body_end}",
                    input.offset
                ),
            ));
        }
        let computed = input.checksum();
        let stored = match input.take(TRAILER_LEN).map_err(read_error)? {
            Some(crc) => u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]),
            None => return Err(truncated_in(body_end, "the checksum", body_end)),
        };
        if stored != computed {
            return Err(SnapshotError::corrupt(
                body_end,
                format!(
                    "checksum mismatch: the file is damaged (stored 0x{stored:08x}, computed \
                     0x{computed:08x})"
                ),
            ));
        }
        if input.fill(1).map_err(read_error)? {
            return Err(SnapshotError::corrupt(
                input.offset,
                "unexpected bytes after the checksum",
            ));
        }
        Ok(())
    }

    /// Reads and checks the `index`-th entry of the file (from 1), refilling the buffer as
    /// needed, and hands it to `sink`.
    fn read_entry(
        &mut self,
        index: u64,
        body_end: u64,
        sink: &mut impl FnMut(&EntryHead, EntryData<'_>),
    ) -> Result<(), SnapshotError> {
        let count = self.header.entry_count;
        let input = &mut self.input;
        let truncated = |at: u64, what: String| truncated_in(at, &what, body_end);
        let start = input.offset;
        let entry = || format!("entry {index} of {count}");
        if start + ENTRY_FIXED_LEN as u64 > body_end {
            return Err(SnapshotError::corrupt(
                start,
                format!(
                    "{} does not fit in the {} body bytes the header gives",
                    entry(),
                    self.header.body_len
                ),
            ));
        }
        let fixed = input.take(ENTRY_FIXED_LEN).map_err(read_error)?;
        let fixed = fixed.ok_or_else(|| truncated(start, entry()))?;
        let (flags, key_len, value_len, optional) =
            EntryHead::decode_fixed(fixed).map_err(|e| e.within(start, entry()))?;
        let optional_bytes = input.take(optional).map_err(read_error)?;
        let optional_bytes = optional_bytes.ok_or_else(|| truncated(start, entry()))?;
        let head = EntryHead::decode(flags, key_len, value_len, optional_bytes)
            .map_err(|e| e.within(start, entry()))?;
        let data_len = u64::from(key_len) + u64::from(value_len);
        let data_start = input.offset;
        if data_start + data_len > body_end {
            return Err(SnapshotError::corrupt(
                start,
                format!(
                    "{} claims {data_len} bytes of key and value, but only {} remain before \
                     the end of the body",
                    entry(),
                    body_end.saturating_sub(data_start)
                ),
            ));
        }
        let data_len = data_len as usize;
        if data_len > input.buf.len() {
            if !input.take_large(data_len).map_err(read_error)? {
                return Err(truncated(data_start, entry()));
            }
            sink(&head, EntryData::Large(&mut input.large));
        } else {
            let data = input.take(data_len).map_err(read_error)?;
            let data = data.ok_or_else(|| truncated(data_start, entry()))?;
            sink(&head, EntryData::Buffered(data));
        }
        Ok(())
    }
}

//! The snapshot file format, byte by byte (`docs/snapshot-format.md` is its specification): the
//! constants, the header, and one entry's fixed part. Encoding and decoding only, no I/O.
//!
//! ```text
//! file    = header (header_len bytes) · entries (body_len bytes) · CRC-32 of everything before it
//! header  = magic[8] major:u16 minor:u16 header_len:u32 flags:u32 value_encoding:u8 reserved[3]
//!           entry_count:u64 body_len:u64 reserved[20] · extension records · header CRC-32:u32
//! entry   = flags:u8 key_len:u32 value_len:u32 [ttl_ns:u64] [weight:u32] key value
//! ```
//! All integers are little-endian. Entries come least recently used first.

use super::error::SnapshotError;
use crate::MAX_ENTRY_SIZE;

/// The first 8 bytes of every snapshot. Like PNG's: a non-ASCII first byte, then line endings
/// and a DOS end-of-file that a text-mode transfer would mangle.
pub(crate) const MAGIC: [u8; 8] = *b"\x89AFC\r\n\x1a\n";

/// The major format version this library writes and reads. A file of another major version is
/// refused.
pub const FORMAT_MAJOR: u16 = 1;
/// The minor format version this library writes. Files of any minor version of
/// [`FORMAT_MAJOR`] are read: a minor version only adds what older readers may skip.
pub const FORMAT_MINOR: u16 = 0;

/// The header's length in format 1.0 (and the least any 1.x header may have).
pub(crate) const HEADER_LEN: usize = 64;
/// The longest header a reader accepts (its extension records included).
pub(crate) const MAX_HEADER_LEN: u32 = 1 << 16;
/// Bytes of the header before the extension records (and the header checksum).
pub(crate) const HEADER_FIXED_LEN: usize = 60;
/// The first bytes a reader needs to decide whether it can read a file at all.
pub(crate) const HEADER_PREFIX_LEN: usize = 16;
/// The file's last bytes: the CRC-32 of everything before them.
pub(crate) const TRAILER_LEN: usize = 4;
/// One entry's flags, key length and value length.
pub(crate) const ENTRY_FIXED_LEN: usize = 9;

/// Header flags this library understands (none in 1.0). A flag marks a feature a reader must
/// understand: a file with an unknown flag set is refused.
const KNOWN_HEADER_FLAGS: u32 = 0;
/// An extension record's tag with this bit set must be understood by the reader.
const CRITICAL_EXTENSION: u16 = 0x8000;

/// Entry flag: an 8-byte remaining TTL follows the lengths.
pub(crate) const ENTRY_HAS_TTL: u8 = 0x01;
/// Entry flag: a 4-byte weight follows (present only when the weight is not key + value bytes).
pub(crate) const ENTRY_HAS_WEIGHT: u8 = 0x02;
const KNOWN_ENTRY_FLAGS: u8 = ENTRY_HAS_TTL | ENTRY_HAS_WEIGHT;

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) minor: u16,
    pub(crate) header_len: u32,
    pub(crate) value_encoding: u8,
    pub(crate) entry_count: u64,
    pub(crate) body_len: u64,
}

impl Header {
    /// The header this library writes (format 1.0, no extension records).
    pub(crate) fn new(value_encoding: u8, entry_count: u64, body_len: u64) -> Self {
        Header {
            minor: FORMAT_MINOR,
            header_len: HEADER_LEN as u32,
            value_encoding,
            entry_count,
            body_len,
        }
    }

    /// The header's bytes, its checksum included.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
        out[10..12].copy_from_slice(&self.minor.to_le_bytes());
        out[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        // 16..20 flags: none; 21..24 reserved.
        out[20] = self.value_encoding;
        out[24..32].copy_from_slice(&self.entry_count.to_le_bytes());
        out[32..40].copy_from_slice(&self.body_len.to_le_bytes());
        // 40..60 reserved.
        let crc = crc32fast::hash(&out[..HEADER_FIXED_LEN]);
        out[HEADER_FIXED_LEN..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Checks the first [`HEADER_PREFIX_LEN`] bytes (magic, version, header length) and returns
    /// the minor version and the header length.
    pub(crate) fn check_prefix(prefix: &[u8]) -> Result<(u16, u32), SnapshotError> {
        if prefix[..8] != MAGIC {
            return Err(SnapshotError::not_a_snapshot());
        }
        let major = u16_at(prefix, 8);
        let minor = u16_at(prefix, 10);
        if major != FORMAT_MAJOR {
            return Err(SnapshotError::unsupported(format!(
                "format version {major}.{minor} is not supported (this library reads {FORMAT_MAJOR}.x)"
            )));
        }
        let header_len = u32_at(prefix, 12);
        if header_len < HEADER_LEN as u32 || header_len > MAX_HEADER_LEN {
            return Err(SnapshotError::corrupt(
                12,
                format!("header length {header_len} is outside {HEADER_LEN}..={MAX_HEADER_LEN}"),
            ));
        }
        Ok((minor, header_len))
    }

    /// Decodes a whole header (`bytes` is `header_len` long, its prefix already checked and its
    /// checksum verified): the fixed fields, then the extension records.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Header, SnapshotError> {
        let (minor, header_len) = Header::check_prefix(bytes)?;
        let flags = u32_at(bytes, 16);
        let unknown = flags & !KNOWN_HEADER_FLAGS;
        if unknown != 0 {
            return Err(SnapshotError::unsupported(format!(
                "the file uses features this library does not know (header flags 0x{unknown:08x}, \
                 format {FORMAT_MAJOR}.{minor})"
            )));
        }
        if let Some(at) = nonzero_at(bytes, 21..24).or_else(|| nonzero_at(bytes, 40..60)) {
            return Err(SnapshotError::corrupt(
                at as u64,
                "a reserved header byte is not zero",
            ));
        }
        check_extensions(&bytes[HEADER_FIXED_LEN..bytes.len() - 4], minor)?;
        Ok(Header {
            minor,
            header_len,
            value_encoding: bytes[20],
            entry_count: u64_at(bytes, 24),
            body_len: u64_at(bytes, 32),
        })
    }

    /// The length of the whole file this header describes (`None` if it overflows).
    pub(crate) fn file_len(&self) -> Option<u64> {
        u64::from(self.header_len)
            .checked_add(self.body_len)?
            .checked_add(TRAILER_LEN as u64)
    }
}

/// Walks the extension records (`tag:u16 reserved:u16 len:u32 data[len]`), which start at byte
/// 60. Format 1.0 defines none: unknown records are skipped unless marked critical.
fn check_extensions(mut area: &[u8], minor: u16) -> Result<(), SnapshotError> {
    let mut offset = HEADER_FIXED_LEN as u64;
    while !area.is_empty() {
        if area.len() < 8 {
            return Err(SnapshotError::corrupt(
                offset,
                "a header extension record is cut short",
            ));
        }
        let tag = u16_at(area, 0);
        let len = u64::from(u32_at(area, 4));
        if len > (area.len() - 8) as u64 {
            return Err(SnapshotError::corrupt(
                offset,
                format!("header extension record 0x{tag:04x} claims {len} bytes past the header"),
            ));
        }
        if tag & CRITICAL_EXTENSION != 0 {
            return Err(SnapshotError::unsupported(format!(
                "the file needs header extension 0x{tag:04x}, unknown to this library \
                 (format {FORMAT_MAJOR}.{minor})"
            )));
        }
        area = &area[8 + len as usize..];
        offset += 8 + len;
    }
    Ok(())
}

/// One entry's description, before its key and value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryHead {
    pub(crate) key_len: u32,
    pub(crate) value_len: u32,
    /// Remaining time to live in nanoseconds (at least 1); `None` never expires.
    pub(crate) ttl_ns: Option<u64>,
    /// The weight when it is not `key_len + value_len`.
    pub(crate) weight: Option<u32>,
}

impl EntryHead {
    /// The bytes of the entry before its key: 9, 13, 17 or 21.
    pub(crate) fn encode(&self, out: &mut [u8; 21]) -> usize {
        let mut flags = 0;
        let mut len = ENTRY_FIXED_LEN;
        out[1..5].copy_from_slice(&self.key_len.to_le_bytes());
        out[5..9].copy_from_slice(&self.value_len.to_le_bytes());
        if let Some(ttl) = self.ttl_ns {
            flags |= ENTRY_HAS_TTL;
            out[len..len + 8].copy_from_slice(&ttl.to_le_bytes());
            len += 8;
        }
        if let Some(weight) = self.weight {
            flags |= ENTRY_HAS_WEIGHT;
            out[len..len + 4].copy_from_slice(&weight.to_le_bytes());
            len += 4;
        }
        out[0] = flags;
        len
    }

    /// The flags and lengths of an entry: returns the entry flags and how many more head bytes
    /// (TTL, weight) follow.
    pub(crate) fn decode_fixed(bytes: &[u8]) -> Result<(u8, u32, u32, usize), SnapshotError> {
        let flags = bytes[0];
        if flags & !KNOWN_ENTRY_FLAGS != 0 {
            return Err(SnapshotError::corrupt(
                0,
                format!("unknown entry flags 0x{flags:02x}"),
            ));
        }
        let optional = if flags & ENTRY_HAS_TTL != 0 { 8 } else { 0 }
            + if flags & ENTRY_HAS_WEIGHT != 0 { 4 } else { 0 };
        Ok((flags, u32_at(bytes, 1), u32_at(bytes, 5), optional))
    }

    /// Completes an entry's head from its flags, lengths and optional fields, checking them
    /// against the engine's limits. Offsets in errors are relative to the entry's start.
    pub(crate) fn decode(
        flags: u8,
        key_len: u32,
        value_len: u32,
        optional: &[u8],
    ) -> Result<EntryHead, SnapshotError> {
        let mut at = 0;
        let ttl_ns = if flags & ENTRY_HAS_TTL != 0 {
            let ttl = u64_at(optional, 0);
            if ttl == 0 {
                return Err(SnapshotError::corrupt(
                    ENTRY_FIXED_LEN as u64,
                    "remaining TTL of 0 (an expired entry is never saved)",
                ));
            }
            at = 8;
            Some(ttl)
        } else {
            None
        };
        let weight = (flags & ENTRY_HAS_WEIGHT != 0).then(|| u32_at(optional, at));
        let size = u64::from(key_len) + u64::from(value_len);
        if u64::from(key_len) > MAX_ENTRY_SIZE || size > MAX_ENTRY_SIZE + 1 {
            return Err(SnapshotError::corrupt(
                1,
                format!(
                    "key of {key_len} and value of {value_len} bytes exceed the engine's limits"
                ),
            ));
        }
        let effective = weight.map_or(size, u64::from);
        if effective > MAX_ENTRY_SIZE {
            return Err(SnapshotError::corrupt(
                1,
                format!("weight {effective} exceeds the engine's limit of {MAX_ENTRY_SIZE}"),
            ));
        }
        Ok(EntryHead {
            key_len,
            value_len,
            ttl_ns,
            weight,
        })
    }

    /// The weight the entry counts for.
    pub(crate) fn weight(&self) -> u32 {
        self.weight.unwrap_or(self.key_len + self.value_len)
    }

    /// Bytes of the whole entry in the file.
    pub(crate) fn encoded_len(&self) -> u64 {
        ENTRY_FIXED_LEN as u64
            + if self.ttl_ns.is_some() { 8 } else { 0 }
            + if self.weight.is_some() { 4 } else { 0 }
            + u64::from(self.key_len)
            + u64::from(self.value_len)
    }
}

fn nonzero_at(bytes: &[u8], range: std::ops::Range<usize>) -> Option<usize> {
    let start = range.start;
    bytes[range].iter().position(|&b| b != 0).map(|i| start + i)
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = Header::new(1, 3, 99);
        let bytes = header.encode();
        assert_eq!(&bytes[..8], b"\x89AFC\r\n\x1a\n");
        assert_eq!(Header::check_prefix(&bytes).unwrap(), (0, 64));
        assert_eq!(Header::decode(&bytes).unwrap(), header);
        assert_eq!(header.file_len(), Some(64 + 99 + 4));
    }

    #[test]
    fn entry_head_round_trips() {
        for (ttl, weight) in [
            (None, None),
            (Some(5), None),
            (None, Some(7)),
            (Some(1), Some(0)),
        ] {
            let head = EntryHead {
                key_len: 3,
                value_len: 4,
                ttl_ns: ttl,
                weight,
            };
            let mut buf = [0u8; 21];
            let len = head.encode(&mut buf);
            assert_eq!(len as u64 + 7, head.encoded_len());
            let (flags, k, v, optional) = EntryHead::decode_fixed(&buf).unwrap();
            assert_eq!(ENTRY_FIXED_LEN + optional, len);
            let decoded = EntryHead::decode(flags, k, v, &buf[ENTRY_FIXED_LEN..len]).unwrap();
            assert_eq!(decoded, head);
        }
    }

    #[test]
    fn extension_records_are_skipped_unless_critical() {
        let optional = [1u8, 0, 0, 0, 2, 0, 0, 0, 0xAA, 0xBB];
        assert!(check_extensions(&optional, 1).is_ok());
        let critical = [1u8, 0x80, 0, 0, 0, 0, 0, 0];
        let err = check_extensions(&critical, 1).unwrap_err();
        assert!(err.to_string().contains("extension 0x8001"), "{err}");
        let cut = [1u8, 0, 0, 0, 9, 0, 0, 0, 0];
        assert!(check_extensions(&cut, 1).is_err());
    }
}

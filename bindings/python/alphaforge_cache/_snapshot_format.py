"""The snapshot file format of ``docs/snapshot-format.md``, in pure Python.

The engine (Rust, and the C ABI over it) writes and reads the same files; for the same entries
this module writes the same bytes. It knows nothing of caches: a writer gives it entries (key,
value, remaining TTL in nanoseconds or ``None``, weight or ``None``) least recently used first,
and a reader gets them back in that order, after the whole file has been checked.

- :func:`write` replaces a file atomically: a temporary file in the same directory, flushed to
  disk (``os.fsync``), renamed over the target, then the directory flushed; a large file it
  replaces is freed on a thread of its own (:mod:`._previous_file`).
- :func:`read` and :func:`verify` check everything (magic, version, lengths, limits, both
  CRC-32 checksums) and raise :class:`SnapshotFileError` on the first problem. Nothing is
  allocated from a length field alone: reads are bounded by the file's real length.
- :class:`Reader` streams the entries of a large file, as :class:`Entry` tuples (for
  ``inspect``) or as the plain rows a cache's load stages (``Reader.rows``); they may be
  trusted only once iteration has finished without an error. :func:`opened` and
  :func:`reading` open a file for that, with errors that name it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import stat
import struct
import zlib
from typing import (
    IO,
    Any,
    Callable,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _previous_file
from ._common import SnapshotError

__all__ = [
    "MAGIC",
    "FORMAT_MAJOR",
    "FORMAT_MINOR",
    "ENCODING_BYTES",
    "ENCODING_PICKLE",
    "ENCODING_CODEC",
    "ENCODING_NAMES",
    "Entry",
    "Header",
    "SnapshotFileError",
    "Reader",
    "write",
    "write_to",
    "read",
    "reading",
    "opened",
    "verify",
]

#: The first 8 bytes of every snapshot.
MAGIC = b"\x89AFC\r\n\x1a\n"
#: The major format version written and read (a file of another major version is refused).
FORMAT_MAJOR = 1
#: The minor format version written (files of any minor version of ``FORMAT_MAJOR`` are read).
FORMAT_MINOR = 0

#: Value encodings recorded in the header (byte 20).
ENCODING_BYTES = 0
ENCODING_PICKLE = 1
ENCODING_CODEC = 2
ENCODING_NAMES = {ENCODING_BYTES: "bytes", ENCODING_PICKLE: "pickle", ENCODING_CODEC: "codec"}

_HEADER_LEN = 64
_MAX_HEADER_LEN = 1 << 16
_HEADER_FIXED_LEN = 60
_TRAILER_LEN = 4
_ENTRY_FIXED_LEN = 9
_HAS_TTL = 0x01
_HAS_WEIGHT = 0x02
_KNOWN_HEADER_FLAGS = 0
_CRITICAL_EXTENSION = 0x8000
_MAX_ENTRY_SIZE = 2**32 - 2
_MAX_U64 = 2**64 - 1
#: Bytes gathered before each write or read (and each checksum update).
_CHUNK = 1 << 20

#: A row as :meth:`Reader.rows` gives it: ``(key, value, ttl_ns or None, weight)``.
Row = Tuple[bytes, bytes, Optional[int], int]
#: ``parse(buf, pos, end, most, limit, out) -> pos``: appends to ``out`` the rows of at most
#: ``most`` entries of ``buf[pos:end]`` that the reader's fast path would take, stopping before
#: the first it would not, and returns where it stopped (``_reads.parse_rows``).
ParseRows = Callable[[bytes, int, int, int, int, List[Row]], int]


class RowPacker(NamedTuple):
    """The fast path of :func:`write_to` in C (``_reads.measure_rows`` and ``pack_rows``, the
    native backend's): the same bytes for the rows it takes, and it takes a list only when it
    can write every row of it as it is."""

    #: ``measure(rows, limit)``: the body length, or None when a row is not one it writes.
    measure: Callable[[List[Any], int], Optional[int]]
    #: ``pack(rows, start, chunk, limit)``: the bytes of rows from ``start`` on, ``chunk``
    #: bytes or a little more, the index of the first row not packed, and whether the last
    #: row packed is one whose key and value are ``chunk`` bytes or more together: the bytes
    #: then end with its fixed fields, and its key and value are written as they are.
    pack: Callable[[List[Any], int, int, int], Tuple[bytes, int, bool]]


_PREFIX = struct.Struct("<8sHHI")
_FIXED_FIELDS = struct.Struct("<IB3xQQ")  # flags, encoding, entry count, body length (16..40)
_ENTRY_FIXED = struct.Struct("<BII")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_EXTENSION = struct.Struct("<HHI")

_Path = Union[str, "os.PathLike[str]"]


class Entry(NamedTuple):
    """One entry of a snapshot."""

    key: bytes
    value: bytes
    #: Remaining time to live in nanoseconds (at least 1), or ``None``: never expires.
    ttl_ns: Optional[int] = None
    #: The weight, or ``None`` for ``len(key) + len(value)``.
    weight: Optional[int] = None

    @property
    def effective_weight(self) -> int:
        """The weight the entry counts for."""
        return len(self.key) + len(self.value) if self.weight is None else self.weight


#: ``Entry`` from a 4-tuple in one C call (``Entry(...)`` runs a Python-level ``__new__``).
_new_entry = functools.partial(tuple.__new__, Entry)


class Header(NamedTuple):
    """What a snapshot's header says."""

    format_major: int
    format_minor: int
    header_len: int
    flags: int
    value_encoding: int
    entry_count: int
    body_len: int

    @property
    def file_len(self) -> int:
        """The length of the whole file."""
        return self.header_len + self.body_len + _TRAILER_LEN

    @property
    def encoding_name(self) -> str:
        """``"bytes"``, ``"pickle"``, ``"codec"``, or ``"unknown encoding N"``."""
        return ENCODING_NAMES.get(self.value_encoding, f"unknown encoding {self.value_encoding}")


class SnapshotFileError(SnapshotError):
    """A snapshot that could not be written or read, and why.

    ``kind`` is one of ``"io"`` (the operating system refused; ``__cause__`` is its
    ``OSError``), ``"not_a_snapshot"``, ``"unsupported"`` (another major version, or a feature
    this library does not know), ``"truncated"``, ``"corrupt"`` or ``"encoding_mismatch"``.
    ``offset`` is the byte of the file where the problem was found, when it is about content.
    """

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        offset: Optional[int] = None,
        path: Optional[str] = None,
    ) -> None:
        self.kind = kind
        self.detail = detail
        self.offset = offset
        self.path = path
        super().__init__(self._message())

    def _message(self) -> str:
        prefix = f"snapshot {self.path}: " if self.path is not None else "snapshot: "
        text = self.detail
        if self.kind in ("truncated", "corrupt"):
            text = f"{self.kind}: {text}"
        if self.offset is not None and self.kind != "not_a_snapshot":
            text += f" (at byte {self.offset})"
        return prefix + text

    def with_path(self, path: str) -> SnapshotFileError:
        """This error, naming the file it is about."""
        self.path = path
        self.args = (self._message(),)
        return self


def _io_error(action: str, error: OSError, path: str) -> SnapshotFileError:
    reason = error.strerror or str(error)
    if error.errno is not None:
        reason += f" (os error {error.errno})"
    exc = SnapshotFileError("io", f"{action}: {reason}", path=path)
    exc.__cause__ = error
    return exc


def _not_a_snapshot() -> SnapshotFileError:
    return SnapshotFileError(
        "not_a_snapshot",
        "not an alphaforge-cache snapshot (the file does not start with the snapshot magic "
        "bytes 89 41 46 43 0D 0A 1A 0A)",
        offset=0,
    )


# ----- writing -----------------------------------------------------------------------------


def _check_entry(index: int, entry: Entry) -> Tuple[bytes, bytes, Optional[int], Optional[int]]:
    """The entry's fields in canonical form (a weight equal to the default is left out)."""
    key, value, ttl_ns, weight = entry
    if not isinstance(key, bytes) or not isinstance(value, bytes):
        raise TypeError(f"entry {index}: key and value must be bytes")
    size = len(key) + len(value)
    if len(key) > _MAX_ENTRY_SIZE or size > _MAX_ENTRY_SIZE + 1:
        raise ValueError(f"entry {index}: key and value exceed the engine's limits")
    if ttl_ns is not None and (
        not isinstance(ttl_ns, int) or isinstance(ttl_ns, bool) or not 1 <= ttl_ns <= _MAX_U64
    ):
        raise ValueError(f"entry {index}: ttl_ns must be an int in 1..2**64-1 or None")
    if weight is not None:
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise ValueError(f"entry {index}: weight must be a non-negative int or None")
        if weight == size:
            weight = None
    effective = size if weight is None else weight
    if effective > _MAX_ENTRY_SIZE:
        raise ValueError(f"entry {index}: weight {effective} exceeds {_MAX_ENTRY_SIZE}")
    return key, value, ttl_ns, weight


# CRC-32 of two pieces put together (zlib's crc32_combine, which Python's zlib module lacks): a
# writer that learns the header only after the body (an object cache's save) checksums the body
# alone, and then gets the trailer's CRC of header and body from the two CRCs and the body's
# length. Arithmetic on polynomials over GF(2), bit-reflected as the CRC is: appending n zero
# bytes to a message multiplies its CRC's polynomial by x^(8n) modulo the CRC's polynomial.

_CRC32_POLY = 0xEDB88320  # the polynomial, reflected (x^0 is bit 31)


def _crc32_multiply(a: int, b: int) -> int:
    """``a * b`` modulo the CRC-32 polynomial (reflected: bit 31 is x^0)."""
    product = 0
    bit = 1 << 31
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _CRC32_POLY if b & 1 else b >> 1
    return product


def _crc32_powers() -> List[int]:
    """x^(2^k) modulo the CRC-32 polynomial, for k in 0..63."""
    powers = [1 << 30]  # x^1
    for _ in range(63):
        powers.append(_crc32_multiply(powers[-1], powers[-1]))
    return powers


_CRC32_POWERS = _crc32_powers()


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of ``a + b``, from ``crc1 = zlib.crc32(a)``, ``crc2 = zlib.crc32(b)`` and
    ``len2 = len(b)`` (a length below 2^61)."""
    shift = 1 << 31  # x^0: the product of x^(8 * len2) is built below
    bits, k = len2, 3  # 8 * len2 = len2 * 2^3
    while bits:
        if bits & 1:
            shift = _crc32_multiply(_CRC32_POWERS[k], shift)
        bits >>= 1
        k += 1
    return _crc32_multiply(shift, crc1) ^ crc2


def _encode_header(value_encoding: int, entry_count: int, body_len: int) -> bytes:
    fixed = (
        _PREFIX.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR, _HEADER_LEN)
        + _FIXED_FIELDS.pack(0, value_encoding, entry_count, body_len)
        + bytes(20)
    )
    return fixed + _U32.pack(zlib.crc32(fixed))


#: An ``encode`` of :func:`write_to`: a list of entries to the entries to write.
Encode = Callable[[List[Any]], List[Any]]
#: The most entries :func:`write_to` hands ``encode`` at once.
_ENCODE_RUN_MOST = 4096


def write_to(
    stream: IO[bytes],
    entries: Sequence[Entry],
    *,
    value_encoding: int = 0,
    packer: Optional[RowPacker] = None,
    encode: Optional[Encode] = None,
) -> Header:
    """Writes a snapshot of ``entries`` (least recently used first) to a binary stream.

    No temporary file, no flush to disk: see :func:`write` for that. Raises ``TypeError`` or
    ``ValueError`` for an entry the format cannot hold (before anything is written), and
    ``OSError`` from the stream. ``packer``, when given, is the fast path in C.

    ``encode``, when given, makes the entries to write of a list of ``entries`` (an
    ``"object"`` cache's codec: the same entries, their values encoded). It is given runs of
    entries while the body is written, each run's bytes written and dropped before the next
    is encoded, so that only about 1 MiB of encoded values is held at a time (a run has as
    many entries as made about 1 MiB in the one before, at most 4,096). The header, which
    holds the body's length, is written first with a length of 0 and again once the body is
    written, and the trailer's CRC is combined from the header's and the body's. The stream
    must then be seekable; from one that is not, every value is encoded first. An error of
    ``encode``, or an entry the format cannot hold, can then come after some runs were
    written (:func:`write` removes the temporary file).
    """
    if not isinstance(value_encoding, int) or not 0 <= value_encoding <= 255:
        raise ValueError("value_encoding must be an int in 0..255")
    if encode is not None:
        if stream.seekable():
            return _write_encoding(stream, entries, value_encoding, packer, encode)
        entries = encode(list(entries))  # the header first: the body's length is needed
    body_len, chunks = _body(entries, packer, 1)
    return _write_snapshot(stream, value_encoding, len(entries), body_len, chunks)


def _body(
    entries: Sequence[Entry], packer: Optional[RowPacker], first: int
) -> Tuple[int, Iterator[bytes]]:
    """The length of the body of ``entries`` and its chunks (see :func:`_chunks_of`), every
    entry checked first (``TypeError`` or ``ValueError`` for an entry the format cannot hold,
    ``first``: the number the first entry has in these errors)."""
    if packer is not None and type(entries) is list:
        measured = packer.measure(entries, _MAX_ENTRY_SIZE)
        if measured is not None:  # every entry is one it writes as it is
            return measured, _chunks_packed_by(packer, entries)
    checked: List[Tuple[bytes, bytes, Optional[int], Optional[int]]] = []
    append = checked.append
    body_len = 0
    limit = _MAX_ENTRY_SIZE
    for i, e in enumerate(entries, first):
        if type(e) is not Entry and len(e) != 4:
            e = Entry(*e)
        key, value, ttl_ns, weight = e
        size = len(key) + len(value)
        # The common entries (plain bytes, within the limits; no TTL or an int one; the
        # default weight, or an int one) are checked here, inline; the rest by _check_entry.
        if type(key) is bytes and type(value) is bytes and size <= limit:
            if ttl_ns is None and (weight is None or (type(weight) is int and weight == size)):
                append((key, value, None, None))
                body_len += _ENTRY_FIXED_LEN + size
                continue
            if (ttl_ns is None or (type(ttl_ns) is int and 0 < ttl_ns <= _MAX_U64)) and (
                weight is None or (type(weight) is int and 0 <= weight <= limit)
            ):
                if weight == size:
                    weight = None
                append((key, value, ttl_ns, weight))
                body_len += _ENTRY_FIXED_LEN + size
                body_len += (0 if ttl_ns is None else 8) + (0 if weight is None else 4)
                continue
        key, value, ttl_ns, weight = _check_entry(i, Entry(key, value, ttl_ns, weight))
        body_len += (0 if ttl_ns is None else 8) + (0 if weight is None else 4)
        append((key, value, ttl_ns, weight))
        body_len += _ENTRY_FIXED_LEN + size
    return body_len, _chunks_of(checked)


def _write_snapshot(
    stream: IO[bytes], value_encoding: int, count: int, body_len: int, chunks: Iterable[bytes]
) -> Header:
    """Writes the header of ``count`` entries in ``body_len`` bytes, the body's ``chunks``, and
    the checksum of them all."""
    header = _encode_header(value_encoding, count, body_len)
    stream.write(header)
    crc = _write_chunks(stream, chunks, zlib.crc32(header))
    stream.write(_U32.pack(crc))
    return Header(FORMAT_MAJOR, FORMAT_MINOR, _HEADER_LEN, 0, value_encoding, count, body_len)


def _write_chunks(stream: IO[bytes], chunks: Iterable[bytes], crc: int) -> int:
    """Writes ``chunks``; returns the CRC-32 ``crc`` continued over them."""
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
        stream.write(chunk)
    return crc


def _write_encoding(
    stream: IO[bytes],
    entries: Sequence[Entry],
    value_encoding: int,
    packer: Optional[RowPacker],
    encode: Encode,
) -> Header:
    """:func:`write_to` with ``encode``, to a seekable stream: the header written before the
    body with a length of 0, and again after it."""
    count = len(entries)
    start = stream.tell()
    stream.write(_encode_header(value_encoding, count, 0))
    body_crc = 0
    body_len = 0
    done = 0
    run = 1  # grows to about 1 MiB of body a run (at most _ENCODE_RUN_MOST entries)
    while done < count:
        given = list(entries[done : done + run])
        batch = encode(given)
        if len(batch) != len(given):
            raise ValueError("encode must return one entry for each entry it is given")
        length, chunks = _body(batch, packer, done + 1)
        del batch  # (the run's encoded values: gone once written, before the next are made)
        body_crc = _write_chunks(stream, chunks, body_crc)
        done += len(given)
        body_len += length
        run = max(1, min(2 * run, _ENCODE_RUN_MOST, len(given) * _CHUNK // length))
    header = _encode_header(value_encoding, count, body_len)
    end = stream.tell()
    stream.seek(start)
    stream.write(header)
    stream.seek(end)
    stream.write(_U32.pack(_crc32_combine(zlib.crc32(header), body_crc, body_len)))
    return Header(FORMAT_MAJOR, FORMAT_MINOR, _HEADER_LEN, 0, value_encoding, count, body_len)


def _chunks_packed_by(packer: RowPacker, rows: List[Any]) -> Iterator[bytes]:
    """The body of ``rows`` (which ``packer`` measured), in chunks of about ``_CHUNK`` bytes,
    and the keys and values of ``_CHUNK`` bytes or more as they are."""
    start = 0
    while start < len(rows):
        chunk, start, whole = packer.pack(rows, start, _CHUNK, _MAX_ENTRY_SIZE)
        yield chunk
        if whole:
            yield rows[start - 1][0]
            yield rows[start - 1][1]


def _chunks_of(checked: List[Tuple[bytes, bytes, Optional[int], Optional[int]]]) -> Iterator[bytes]:
    """The body of entries in canonical form (``_check_entry``'s), in chunks of about
    ``_CHUNK`` bytes (the last one possibly empty), and the keys and values of entries whose
    key and value are ``_CHUNK`` bytes or more as they are (never copied into a chunk)."""
    pieces: List[bytes] = []
    pending = 0
    pack_fixed, pack_u64, pack_u32 = _ENTRY_FIXED.pack, _U64.pack, _U32.pack
    add = pieces.append
    for key, value, ttl_ns, weight in checked:
        if ttl_ns is None and weight is None:
            add(pack_fixed(0, len(key), len(value)))
        else:
            flags = (0 if ttl_ns is None else _HAS_TTL) | (0 if weight is None else _HAS_WEIGHT)
            add(pack_fixed(flags, len(key), len(value)))
            if ttl_ns is not None:
                add(pack_u64(ttl_ns))
            if weight is not None:
                add(pack_u32(weight))
        size = len(key) + len(value)
        if size >= _CHUNK:
            yield b"".join(pieces)
            pieces.clear()
            pending = 0
            yield key
            yield value
            continue
        add(key)
        add(value)
        pending += 21 + size
        if pending >= _CHUNK:
            yield b"".join(pieces)
            pieces.clear()
            pending = 0
    yield b"".join(pieces)


_temp_counter = itertools.count()

#: The longest file name, in bytes, that common file systems accept (NAME_MAX on Linux; ext4,
#: XFS, Btrfs, tmpfs, APFS). A temporary file's name stays within it.
_NAME_MAX = 255


def _temp_name(name: str) -> str:
    """The temporary file's name for a target named ``name``: ``.NAME.PID.N.tmp``, with
    ``NAME`` cut short (between characters when it is valid UTF-8, by bytes otherwise) when the
    whole would be longer than 255 bytes, as the engine names it. ``PID.N`` alone makes it
    unique; ``NAME`` only tells a person whose it is."""
    suffix = f".{os.getpid()}.{next(_temp_counter)}.tmp"
    room = _NAME_MAX - 1 - len(suffix)
    encoded = os.fsencode(name)
    if len(encoded) > room:
        try:
            encoded.decode("utf-8")
        except UnicodeDecodeError:
            name = os.fsdecode(encoded[:room])
        else:  # a cut character's first bytes are dropped
            name = encoded[:room].decode("utf-8", "ignore")
    return f".{name}{suffix}"


def write(
    path: _Path,
    entries: Sequence[Entry],
    *,
    value_encoding: int = 0,
    packer: Optional[RowPacker] = None,
    encode: Optional[Encode] = None,
) -> Header:
    """Writes a snapshot of ``entries`` (least recently used first) to ``path`` atomically
    (``packer`` and ``encode``: as :func:`write_to` takes them).

    The bytes go to a temporary file ``.NAME.PID.N.tmp`` in the same directory, which is
    flushed to disk and renamed over ``path``; the directory is then flushed. On any failure
    the temporary file is removed and a previous file at ``path`` is left as it was.
    """
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    directory, name = os.path.split(target)
    if not name:
        raise _io_error(
            "cannot save", IsADirectoryError(errno.EISDIR, "the path does not name a file"), target
        )
    try:
        mode: Optional[int] = os.stat(target).st_mode
    except (OSError, ValueError):  # absent (or a path open will refuse, and say why)
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise _io_error(
            "cannot save", IsADirectoryError(errno.EISDIR, "the path is a directory"), target
        )
    if mode is not None and not stat.S_ISREG(mode):
        # A device, a pipe or a socket: the rename would replace it with a regular file (as
        # root, /dev/null with a snapshot).
        raise _io_error(
            "cannot save",
            OSError(
                errno.EINVAL,
                "the path is not a regular file (a device, a pipe or a socket), which a save "
                "would replace",
            ),
            target,
        )
    temp = os.path.join(directory, _temp_name(name))
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise _io_error(f"cannot create the temporary file {temp}", e, target) from e
    committed = False
    try:
        with os.fdopen(fd, "wb") as stream:
            try:
                header = write_to(
                    stream, entries, value_encoding=value_encoding, packer=packer, encode=encode
                )
                stream.flush()
            except OSError as e:
                raise _io_error("cannot write the snapshot", e, target) from e
            try:
                os.fsync(stream.fileno())
            except OSError as e:
                raise _io_error("cannot flush the temporary file to disk", e, target) from e
        previous = _previous_file.hold(target)
        try:
            os.replace(temp, target)
        except OSError as e:
            if previous is not None:
                os.close(previous)
            raise _io_error("cannot rename the temporary file over the target", e, target) from e
        committed = True
        try:
            _fsync_directory(directory or ".", target)
        finally:
            if previous is not None:
                _previous_file.release_in_background(previous)
        return header
    finally:
        if not committed:
            try:
                os.unlink(temp)
            except OSError:
                pass


def _fsync_directory(directory: str, target: str) -> None:
    if os.name != "posix":  # Windows cannot open a directory to flush it.
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise _io_error("saved, but cannot flush the directory to disk", e, target) from e


# ----- reading -----------------------------------------------------------------------------


class _Input:
    """A buffered reader that computes the CRC-32 of every byte consumed so far.

    ``known_len``: how many bytes the stream has from its start, when that is known (a regular
    file, whose length the reader has checked against the header's); a key or value larger
    than the buffer is then read straight into the ``bytes`` object that keeps it.
    """

    def __init__(self, stream: IO[bytes], known_len: Optional[int] = None) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        self._crc_from = 0
        self._crc = 0
        #: The file offset of the next byte to consume.
        self.offset = 0
        self._known_len = known_len
        self._seekable: Optional[bool] = None  # asked of the stream the first time it matters

    def _flush_crc(self) -> None:
        if self._pos > self._crc_from:
            self._crc = zlib.crc32(memoryview(self._buf)[self._crc_from : self._pos], self._crc)
        self._crc_from = self._pos

    def checksum(self) -> int:
        """The CRC-32 of every byte consumed so far."""
        self._flush_crc()
        return self._crc

    def _read(self, want: int, parts: List[bytes]) -> int:
        """Up to ``want`` more bytes from the stream, read in steps of at most ``_CHUNK``
        bytes (so that a length field claiming more than there is costs only what there is)
        and appended to ``parts``; returns how many."""
        got = 0
        while got < want:
            part = self._stream.read(min(want - got, _CHUNK))
            if not part:
                break
            parts.append(part)
            got += len(part)
        return got

    def take(self, n: int) -> Optional[bytes]:
        """The next ``n`` bytes, or ``None`` if the stream ends first."""
        end = self._pos + n
        if end <= len(self._buf):
            self._pos = end
            self.offset += n
            return self._buf[end - n : end]
        self._flush_crc()
        if n > _CHUNK:
            return self._take_large(n)
        rest = self._buf[self._pos :]
        parts = [rest] if rest else []  # (one part is joined without a copy)
        self._read(max(n - len(rest), _CHUNK), parts)
        self._buf = b"".join(parts)
        self._pos = 0
        self._crc_from = 0
        if len(self._buf) < n:
            return None  # nothing consumed: the bytes there are stay buffered
        self._pos = n
        self.offset += n
        return self._buf[:n]

    def _take_large(self, n: int) -> Optional[bytes]:
        """``take(n)`` of more than the buffer holds (the CRC flushed): the bytes object made
        once, by one read of exactly ``n`` bytes from where they start, when the stream's
        length is known to hold them and it can seek back over what is buffered; otherwise
        (a pipe) read in steps and joined, so that it exists twice for a moment."""
        buffered = len(self._buf) - self._pos
        parts: List[bytes] = []
        if self._known_len is not None and self.offset + n <= self._known_len:
            if self._seekable is None:
                self._seekable = self._stream.seekable()
            if self._seekable:
                if buffered:
                    self._stream.seek(-buffered, os.SEEK_CUR)
                    self._buf, self._pos, buffered = b"", 0, 0
                part = self._stream.read(n)
                if len(part) == n:
                    self._buf, self._pos, self._crc_from = b"", 0, 0
                    self._crc = zlib.crc32(part, self._crc)
                    self.offset += n
                    return part
                if part:  # a short read: the rest in steps, as from a pipe
                    parts.append(part)
        if buffered:
            parts.insert(0, self._buf[self._pos :])
            self._buf, self._pos = b"", 0
        got = sum(map(len, parts))
        got += self._read(n - got, parts)
        data = b"".join(parts)
        del parts
        self._pos = 0
        self._crc_from = 0
        if got < n:
            self._buf = data
            return None  # nothing consumed: the bytes there are stay buffered
        self._buf = b""
        self._crc = zlib.crc32(data, self._crc)
        self.offset += n
        return data

    def buffered(self) -> bytes:
        """Bytes read but not consumed."""
        return self._buf[self._pos :]

    def at_end(self) -> bool:
        """Whether the stream has no byte left."""
        return not self.buffered() and not self._stream.read(1)


@contextlib.contextmanager
def _naming(name: Optional[str]) -> Iterator[None]:
    """Makes the errors of reading a snapshot raised in the block name its file ``name`` (an
    ``OSError`` becomes a ``SnapshotFileError`` of kind ``"io"``); with no name, leaves them."""
    try:
        yield
    except SnapshotFileError as e:
        if name is None:
            raise
        raise e.with_path(name) from None
    except OSError as e:
        if name is None:
            raise
        raise _io_error("cannot read the snapshot", e, name) from e


class Reader:
    """Reads a snapshot from a binary stream: the header at once (checked), then the entries
    by iteration, then the trailer. Any problem raises :class:`SnapshotFileError`; entries may
    be trusted only once iteration ends without one.

    ``file_len``, when known, is checked against the length the header gives, so that a
    truncated file is recognised before its entries are read. ``name``, when given, is the
    file's: the errors of the entries name it.
    """

    def __init__(
        self, stream: IO[bytes], file_len: Optional[int] = None, *, name: Optional[str] = None
    ) -> None:
        self._input = _Input(stream, file_len)
        self._name = name
        with _naming(name):
            self.header = self._read_header(file_len)
        self._done = False

    def _read_header(self, file_len: Optional[int]) -> Header:
        inp = self._input
        minimum = _HEADER_LEN + _TRAILER_LEN
        if file_len == 0:
            raise SnapshotFileError("truncated", "the file is empty", offset=0)
        prefix = inp.take(16)
        if prefix is None:
            seen = inp.buffered()
            if not seen:
                raise SnapshotFileError("truncated", "the file is empty", offset=0)
            if not MAGIC.startswith(seen[:8]):
                raise _not_a_snapshot()
            raise self._too_short(len(seen), minimum)
        magic, major, minor, header_len = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise _not_a_snapshot()
        if major != FORMAT_MAJOR:
            raise SnapshotFileError(
                "unsupported",
                f"format version {major}.{minor} is not supported (this library reads "
                f"{FORMAT_MAJOR}.x)",
            )
        if not _HEADER_LEN <= header_len <= _MAX_HEADER_LEN:
            raise SnapshotFileError(
                "corrupt",
                f"header length {header_len} is outside {_HEADER_LEN}..={_MAX_HEADER_LEN}",
                offset=12,
            )
        rest = inp.take(header_len - _TRAILER_LEN - 16)
        if rest is None:
            raise self._too_short(inp.offset + len(inp.buffered()), minimum)
        computed = inp.checksum()
        stored_bytes = inp.take(_TRAILER_LEN)
        if stored_bytes is None:
            raise self._too_short(inp.offset + len(inp.buffered()), minimum)
        (stored,) = _U32.unpack(stored_bytes)
        if stored != computed:
            raise SnapshotFileError(
                "corrupt",
                f"header checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})",
                offset=header_len - _TRAILER_LEN,
            )
        header_bytes = prefix + rest
        flags, encoding, entry_count, body_len = _FIXED_FIELDS.unpack_from(header_bytes, 16)
        unknown = flags & ~_KNOWN_HEADER_FLAGS
        if unknown:
            raise SnapshotFileError(
                "unsupported",
                f"the file uses features this library does not know (header flags "
                f"0x{unknown:08x}, format {FORMAT_MAJOR}.{minor})",
            )
        for at in itertools.chain(range(21, 24), range(40, 60)):
            if header_bytes[at]:
                raise SnapshotFileError("corrupt", "a reserved header byte is not zero", offset=at)
        self._check_extensions(header_bytes[_HEADER_FIXED_LEN:], minor)
        header = Header(major, minor, header_len, flags, encoding, entry_count, body_len)
        if header.file_len > _MAX_U64:
            raise SnapshotFileError("corrupt", f"body length {body_len} is impossible", offset=32)
        if file_len is not None and file_len < header.file_len:
            raise SnapshotFileError(
                "truncated",
                f"the file has {file_len} bytes, its header says {header.file_len}",
                offset=file_len,
            )
        if file_len is not None and file_len > header.file_len:
            raise SnapshotFileError(
                "corrupt",
                f"{file_len - header.file_len} unexpected bytes after the end the header gives",
                offset=header.file_len,
            )
        return header

    @staticmethod
    def _too_short(have: int, minimum: int) -> SnapshotFileError:
        return SnapshotFileError(
            "truncated",
            f"the file has only {have} bytes; a snapshot has at least {minimum} (its header "
            "and checksum)",
            offset=have,
        )

    @staticmethod
    def _check_extensions(area: bytes, minor: int) -> None:
        offset = _HEADER_FIXED_LEN
        while area:
            if len(area) < 8:
                raise SnapshotFileError(
                    "corrupt", "a header extension record is cut short", offset=offset
                )
            tag, _, length = _EXTENSION.unpack_from(area)
            if length > len(area) - 8:
                raise SnapshotFileError(
                    "corrupt",
                    f"header extension record 0x{tag:04x} claims {length} bytes past the header",
                    offset=offset,
                )
            if tag & _CRITICAL_EXTENSION:
                raise SnapshotFileError(
                    "unsupported",
                    f"the file needs header extension 0x{tag:04x}, unknown to this library "
                    f"(format {FORMAT_MAJOR}.{minor})",
                )
            area = area[8 + length :]
            offset += 8 + length

    def __iter__(self) -> Iterator[Entry]:
        """The entries, as :class:`Entry` tuples."""
        return itertools.chain.from_iterable(self._batches(False))

    def rows(self, parse: Optional[ParseRows] = None) -> Iterator[Row]:
        """The entries as plain tuples ``(key, value, ttl_ns, weight)``, the weight always an
        int (the default one, ``len(key) + len(value)``, when the file gives none): what a
        cache's load stages, made without an :class:`Entry` each. ``parse``, when given, is
        the fast path in C (``_reads.parse_rows``, the native backend's): the same rows, the
        same errors."""
        return itertools.chain.from_iterable(self._batches(True, parse))

    def row_batches(self, parse: Optional[ParseRows] = None) -> Iterator[List[Row]]:
        """:meth:`rows` in lists, one per run of entries read (a buffer's worth at most)."""
        return self._batches(True, parse)

    def _batches(self, rows: bool, parse: Optional[ParseRows] = None) -> Iterator[List[Any]]:
        if self._done:
            raise RuntimeError("a snapshot Reader can be iterated once")
        self._done = True
        with _naming(self._name):
            yield from self._parse(rows, parse)

    def _parse(self, rows: bool, parse: Optional[ParseRows]) -> Iterator[List[Any]]:
        inp = self._input
        header = self.header
        count = header.entry_count
        body_end = header.header_len + header.body_len
        take, unpack_fixed, unpack_u64, unpack_u32 = (
            inp.take,
            _ENTRY_FIXED.unpack,
            _U64.unpack,
            _U32.unpack,
        )

        def truncated(at: int, what: str) -> SnapshotFileError:
            return SnapshotFileError(
                "truncated",
                f"the file ends in {what} (its header says it has {body_end + 4} bytes)",
                offset=at,
            )

        def corrupt(at: int, what: str, detail: str) -> SnapshotFileError:
            return SnapshotFileError("corrupt", f"{what}: {detail}", offset=at)

        # The fast path: an entry whose bytes are all buffered and pass every check is parsed
        # in place. Anything else (a buffer to refill, a field to refuse) goes through the
        # general path below, which reads it again from the same place and says what is wrong.
        unpack_from, unpack_u64_from, unpack_u32_from = (
            _ENTRY_FIXED.unpack_from,
            _U64.unpack_from,
            _U32.unpack_from,
        )
        limit = _MAX_ENTRY_SIZE
        new_entry = _new_entry
        buf, pos = inp._buf, inp._pos
        base = inp.offset - pos  # the file offset of buf[0]
        fast_end = min(len(buf), body_end - base)  # where buffered body bytes end
        batch: List[Any] = []  # the rows (or entries) read since the last batch given
        append = batch.append
        index = 1
        while index <= count:
            if pos + _ENTRY_FIXED_LEN <= fast_end:
                if parse is not None:  # the fast path below, for a run of entries in one call
                    before = len(batch)
                    most = min(count - index + 1, fast_end)  # (an entry has 9 bytes or more)
                    pos = parse(buf, pos, fast_end, most, limit, batch)
                    if len(batch) > before:
                        index += len(batch) - before
                        continue
                flags, key_len, value_len = unpack_from(buf, pos)
                at = pos + _ENTRY_FIXED_LEN
                size = key_len + value_len
                if flags == 0:
                    if at + size <= fast_end and key_len <= limit and size <= limit:
                        pos = at + size
                        key = buf[at : at + key_len]
                        append(
                            (key, buf[at + key_len : pos], None, size)
                            if rows
                            else new_entry((key, buf[at + key_len : pos], None, None))
                        )
                        index += 1
                        continue
                elif not flags & ~(_HAS_TTL | _HAS_WEIGHT):
                    has_ttl, has_weight = flags & _HAS_TTL, flags & _HAS_WEIGHT
                    end = at + (8 if has_ttl else 0) + (4 if has_weight else 0) + size
                    if end <= fast_end and key_len <= limit and size <= limit + 1:
                        fast_ttl = fast_weight = None
                        if has_ttl:
                            (fast_ttl,) = unpack_u64_from(buf, at)
                            at += 8
                        if has_weight:
                            (fast_weight,) = unpack_u32_from(buf, at)
                            at += 4
                        if (
                            fast_ttl != 0
                            and (size if fast_weight is None else fast_weight) <= limit
                        ):
                            pos = end
                            key = buf[at : at + key_len]
                            append(
                                (
                                    key,
                                    buf[at + key_len : end],
                                    fast_ttl,
                                    size if fast_weight is None else fast_weight,
                                )
                                if rows
                                else new_entry(
                                    (key, buf[at + key_len : end], fast_ttl, fast_weight)
                                )
                            )
                            index += 1
                            continue
            if batch:  # (at least once per buffer read)
                yield batch
                batch = []
                append = batch.append
            inp._pos = pos  # the general path takes over from here
            inp.offset = base + pos
            start = inp.offset
            if start + _ENTRY_FIXED_LEN > body_end:
                raise SnapshotFileError(
                    "corrupt",
                    f"entry {index} of {count} does not fit in the {header.body_len} body "
                    "bytes the header gives",
                    offset=start,
                )
            fixed = take(_ENTRY_FIXED_LEN)
            if fixed is None:
                raise truncated(start, f"entry {index} of {count}")
            flags, key_len, value_len = unpack_fixed(fixed)
            what = f"entry {index} of {count}"
            if flags & ~(_HAS_TTL | _HAS_WEIGHT):
                raise corrupt(start, what, f"unknown entry flags 0x{flags:02x}")
            ttl_ns: Optional[int] = None
            weight: Optional[int] = None
            if flags & _HAS_TTL:
                raw = take(8)
                if raw is None:
                    raise truncated(start, what)
                (ttl_ns,) = unpack_u64(raw)
                if ttl_ns == 0:
                    raise corrupt(
                        start + _ENTRY_FIXED_LEN,
                        what,
                        "remaining TTL of 0 (an expired entry is never saved)",
                    )
            if flags & _HAS_WEIGHT:
                raw = take(4)
                if raw is None:
                    raise truncated(start, what)
                (weight,) = unpack_u32(raw)
            size = key_len + value_len
            if key_len > _MAX_ENTRY_SIZE or size > _MAX_ENTRY_SIZE + 1:
                raise corrupt(
                    start + 1,
                    what,
                    f"key of {key_len} and value of {value_len} bytes exceed the engine's limits",
                )
            effective = size if weight is None else weight
            if effective > _MAX_ENTRY_SIZE:
                raise corrupt(
                    start + 1,
                    what,
                    f"weight {effective} exceeds the engine's limit of {_MAX_ENTRY_SIZE}",
                )
            data_start = inp.offset
            if data_start + size > body_end:
                raise corrupt(
                    start,
                    what,
                    f"claims {size} bytes of key and value, but only "
                    f"{max(body_end - data_start, 0)} remain before the end of the body",
                )
            # The key and the value each read into the bytes object that keeps it.
            whole_key = take(key_len)
            value = None if whole_key is None else take(value_len)
            if whole_key is None or value is None:
                raise truncated(data_start, what)
            if rows:
                append((whole_key, value, ttl_ns, effective))
            else:
                append(Entry(whole_key, value, ttl_ns, weight))
            del whole_key, value  # (only the batch holds them)
            index += 1
            buf, pos = inp._buf, inp._pos
            base = inp.offset - pos
            fast_end = min(len(buf), body_end - base)
        if batch:
            yield batch
        inp._pos = pos
        inp.offset = base + pos
        if inp.offset != body_end:
            raise SnapshotFileError(
                "corrupt",
                f"the {count} entries end at byte {inp.offset}, but the header says the body "
                f"ends at byte {body_end}",
                offset=inp.offset,
            )
        computed = inp.checksum()
        raw = take(_TRAILER_LEN)
        if raw is None:
            raise truncated(body_end, "the checksum")
        (stored,) = unpack_u32(raw)
        if stored != computed:
            raise SnapshotFileError(
                "corrupt",
                f"checksum mismatch: the file is damaged (stored 0x{stored:08x}, computed "
                f"0x{computed:08x})",
                offset=body_end,
            )
        if not inp.at_end():
            raise SnapshotFileError(
                "corrupt", "unexpected bytes after the checksum", offset=inp.offset
            )


def _open(path: _Path) -> Tuple[IO[bytes], Optional[int], str]:
    """Opens a snapshot for reading, with its length. Only a regular file (or a link to one) is
    read, as by the engine: a directory, a device, a pipe or a socket is refused. It is opened
    with ``O_NONBLOCK`` where there is one, so that the open of a FIFO without a writer returns
    (to be refused) instead of waiting for one forever; the flag changes nothing for a file."""
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise _io_error("cannot open", e, name) from e
    try:
        st = os.fstat(fd)
    except OSError as e:
        os.close(fd)
        raise _io_error("cannot open", e, name) from e
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise _io_error(
            "cannot open", IsADirectoryError(errno.EISDIR, "the path is a directory"), name
        )
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        reason = (
            "the path is not a regular file (a device, a pipe or a socket): only a file can be "
            "read as a snapshot"
        )
        raise _io_error("cannot open", OSError(reason), name)
    return os.fdopen(fd, "rb"), st.st_size, name  # closed by the caller


@contextlib.contextmanager
def opened(path: _Path) -> Iterator[Reader]:
    """Opens the snapshot at ``path``: ``with opened(path) as reader`` gives its
    :class:`Reader` (the header checked), whose errors name the file; the file is closed when
    the block ends."""
    stream, file_len, name = _open(path)
    with stream:
        yield Reader(stream, file_len, name=name)


@contextlib.contextmanager
def reading(path: _Path) -> Iterator[Tuple[Header, Iterator[Entry]]]:
    """Opens the snapshot at ``path`` for streaming: ``with reading(path) as (header, entries)``
    gives its header (checked) and an iterator over its entries, least recently used first;
    the file is closed when the block ends. Every error names the file. As with
    :class:`Reader`, the entries may be trusted only once the iterator has ended without an
    error (that is when the trailer checksum has been checked)."""
    with opened(path) as reader:
        yield reader.header, iter(reader)


def read(path: _Path, *, expect_encoding: Optional[int] = None) -> Tuple[Header, List[Entry]]:
    """The header and the entries (least recently used first) of the snapshot at ``path``,
    after checking the whole file. ``expect_encoding``: refuse a file whose value encoding is
    not this one."""
    with opened(path) as reader:
        header = reader.header
        if expect_encoding is not None and header.value_encoding != expect_encoding:
            expected = ENCODING_NAMES.get(expect_encoding, f"encoding {expect_encoding}")
            raise SnapshotFileError(
                "encoding_mismatch",
                f"its values are encoded as {header.encoding_name}, not {expected} as asked",
                path=os.fspath(path),
            )
        return header, list(reader)


def verify(path: _Path) -> Header:
    """Checks the whole snapshot at ``path`` without keeping its entries; returns its header."""
    with opened(path) as reader:
        for _ in reader:
            pass
        return reader.header

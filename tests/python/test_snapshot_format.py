"""The pure-Python snapshot format (``alphaforge_cache._snapshot_format``): the shared vectors of
``tests/vectors`` (the Rust and C writers' files read here, and written here byte for byte; the
``future-*.afcs`` files of later format versions read or refused as the format's Compatibility
rules say), and every kind of bad input and fault."""

from __future__ import annotations

import importlib.util
import io
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from typing import Any, Callable, Dict, List, Tuple

import pytest
from _unprivileged import as_nobody, shared_temp_dir
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphaforge_cache import SnapshotError
from alphaforge_cache import _snapshot_format as fmt

try:  # (PyPy has no tracemalloc: the memory tests are skipped there)
    import tracemalloc
except ImportError:  # pragma: no cover - depends on the interpreter
    tracemalloc = None  # type: ignore[assignment]
#: For the tests that measure memory with tracemalloc.
needs_tracemalloc = pytest.mark.skipif(tracemalloc is None, reason="no tracemalloc here (PyPy)")

try:  # the native backend's fast paths of reading and writing (absent without its build)
    from alphaforge_cache._reads import (  # type: ignore[import-not-found,unused-ignore]
        measure_rows,
        pack_rows,
        parse_rows,
    )
except ImportError:  # pragma: no cover - depends on the build
    ROW_PARSERS: List[Any] = [None]
    ROW_PACKERS: List[Any] = [None]
else:
    ROW_PARSERS = [None, parse_rows]
    ROW_PACKERS = [None, fmt.RowPacker(measure_rows, pack_rows)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS = os.path.join(ROOT, "tests", "vectors")
NAMES = ("empty", "small", "random", "large")
WRITERS = ("rust", "c", "python")


def manifest(name: str) -> List[fmt.Entry]:
    entries = []
    with open(os.path.join(VECTORS, f"{name}.entries"), encoding="ascii") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields: Dict[str, str] = dict(part.split("=", 1) for part in line.split())
            ttl = None if fields["ttl_ns"] == "none" else int(fields["ttl_ns"])
            weight = None if fields["weight"] == "default" else int(fields["weight"])
            key, value = bytes.fromhex(fields["key"]), bytes.fromhex(fields["value"])
            entries.append(fmt.Entry(key, value, ttl, weight))
    return entries


def vector(writer: str, name: str) -> str:
    return os.path.join(VECTORS, f"{writer}-{name}.afcs")


def encode(entries: List[fmt.Entry], value_encoding: int = 0) -> bytes:
    """The snapshot of ``entries``: the same bytes through the native backend's fast path of
    writing (when it is built)."""
    written = []
    for packer in ROW_PACKERS:
        out = io.BytesIO()
        fmt.write_to(out, list(entries), value_encoding=value_encoding, packer=packer)
        written.append(out.getvalue())
    assert all(data == written[0] for data in written[1:])
    return written[0]


def parse(data: bytes) -> List[fmt.Entry]:
    entries = list(fmt.Reader(io.BytesIO(data), len(data)))
    # The rows a load stages: the same entries, the default weight written out (and the same
    # through the native backend's fast path in C, when it is built).
    for parser in ROW_PARSERS:
        rows = list(fmt.Reader(io.BytesIO(data), len(data)).rows(parser))
        assert rows == [(e.key, e.value, e.ttl_ns, e.effective_weight) for e in entries]
        assert all(type(row) is tuple for row in rows)
    return entries


def refused(data: bytes, *, with_length: bool = True) -> fmt.SnapshotFileError:
    """The error reading ``data`` raises: the same as entries, as rows, and as rows through
    the fast path in C."""
    errors = []
    for rows, parser in [(False, None)] + [(True, parser) for parser in ROW_PARSERS]:
        with pytest.raises(fmt.SnapshotFileError) as info:
            reader = fmt.Reader(io.BytesIO(data), len(data) if with_length else None)
            list(reader.rows(parser) if rows else reader)
        errors.append(info.value)
    entries_error = errors[0]
    for error in errors[1:]:
        assert (error.kind, error.offset, str(error)) == (
            entries_error.kind,
            entries_error.offset,
            str(entries_error),
        )
    return entries_error


def reseal(data: bytes) -> bytes:
    """Both checksums rewritten, after a test changed bytes on purpose."""
    b = bytearray(data)
    header_len = struct.unpack_from("<I", b, 12)[0]
    b[header_len - 4 : header_len] = struct.pack("<I", zlib.crc32(bytes(b[: header_len - 4])))
    b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
    return bytes(b)


SMALL = [
    fmt.Entry(b"a", b"1"),
    fmt.Entry(b"", b"empty key", 5_000_000_000),
    fmt.Entry(b"w", b"xyz", None, 77),
    fmt.Entry(b"\x00\xff", b"", 1, 0),
]


# ----- the shared vectors ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_python_writes_the_rust_and_c_bytes(name: str) -> None:
    data = encode(manifest(name))
    for writer in WRITERS:
        with open(vector(writer, name), "rb") as f:
            assert f.read() == data, f"{writer}-{name}.afcs differs from the Python writer's"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("writer", WRITERS)
def test_every_writers_file_reads_as_its_manifest(writer: str, name: str) -> None:
    header, entries = fmt.read(vector(writer, name))
    assert entries == manifest(name)
    assert (header.format_major, header.format_minor, header.value_encoding) == (1, 0, 0)
    assert header.entry_count == len(entries)
    assert header.file_len == os.path.getsize(vector(writer, name))
    assert fmt.verify(vector(writer, name)) == header


# ----- the future vectors: later versions of the format --------------------------------------

#: The future vectors a 1.x reader must refuse as unsupported, and the reason its message gives.
FUTURE_REFUSED = {
    "future-critical": "needs header extension 0xffff",
    "future-flag": "header flags 0x80000000",
    "future-major": "format version 2.0 is not supported",
}


def future(name: str) -> str:
    return os.path.join(VECTORS, f"{name}.afcs")


def file_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_the_future_vectors_are_what_gen_vectors_derives_from_the_small_file(
    monkeypatch: Any,
) -> None:
    # The committed files are the generator's, from the small state's committed file; each is
    # that file with another header: the same fixed fields after the flags, the same body.
    monkeypatch.setattr(sys, "path", list(sys.path))  # gen_vectors.py prepends to it
    spec = importlib.util.spec_from_file_location(
        "gen_vectors", os.path.join(VECTORS, "gen_vectors.py")
    )
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    small = file_bytes(vector("python", "small"))
    derived = gen.future_vectors(small)
    names = ["future-minor", *sorted(FUTURE_REFUSED)]
    assert sorted(derived) == sorted(f"{name}.afcs" for name in names)
    for name in names:
        data = file_bytes(future(name))
        assert derived[f"{name}.afcs"] == data, f"{name}.afcs is not what gen_vectors.py writes"
        header_len = struct.unpack_from("<I", data, 12)[0]
        assert data[:8] == small[:8] and data[20:60] == small[20:60], name
        assert data[header_len:-4] == small[64:-4], name


@pytest.mark.parametrize("name", ["future-minor", *sorted(FUTURE_REFUSED)])
def test_the_future_vectors_checksums_are_right(name: str) -> None:
    # So that a refusal is for what the file shows, never for a checksum (the header CRC over
    # bytes 0 .. header_len - 4, the trailer CRC over every byte before it).
    data = file_bytes(future(name))
    assert reseal(data) == data


def test_the_future_minor_vector_reads_as_the_small_state() -> None:
    path = future("future-minor")
    header, entries = fmt.read(path)
    assert (header.format_major, header.format_minor) == (1, 7)
    assert (header.flags, header.value_encoding) == (0, 0)
    assert header.header_len == 64 + (8 + 46) + (8 + 0)  # two records: 46 bytes of data, none
    assert entries == manifest("small")
    assert header.entry_count == len(entries)
    assert header.file_len == os.path.getsize(path)
    assert fmt.verify(path) == header
    data = file_bytes(path)
    # As entries and as rows (through the fast path in C too), from a stream of known length
    # and of unknown length.
    assert parse(data) == manifest("small")
    assert list(fmt.Reader(io.BytesIO(data))) == manifest("small")
    # Written again: the small state's 1.0 file (the records the reader skipped are gone).
    assert encode(entries) == file_bytes(vector("python", "small"))


@pytest.mark.parametrize("name", sorted(FUTURE_REFUSED))
def test_the_future_vectors_a_reader_must_refuse_are_unsupported(name: str) -> None:
    path, reason = future(name), FUTURE_REFUSED[name]
    for call in (fmt.read, fmt.verify):
        with pytest.raises(fmt.SnapshotFileError) as info:
            call(path)
        assert info.value.kind == "unsupported", str(info.value)
        assert reason in str(info.value)
        assert path in str(info.value)
    data = file_bytes(path)
    for with_length in (True, False):
        error = refused(data, with_length=with_length)
        assert (error.kind, reason in str(error)) == ("unsupported", True), str(error)


# ----- writing -----------------------------------------------------------------------------


def test_write_and_read_round_trip(tmp_path: Any) -> None:
    path = str(tmp_path / "small.afcs")
    header = fmt.write(path, SMALL, value_encoding=fmt.ENCODING_PICKLE)
    assert os.listdir(str(tmp_path)) == ["small.afcs"], "no temporary file is left"
    assert header.encoding_name == "pickle"
    read_header, entries = fmt.read(path)
    assert read_header == header
    assert entries == SMALL
    assert [e.effective_weight for e in entries] == [2, 9, 77, 0]
    assert fmt.read(path, expect_encoding=fmt.ENCODING_PICKLE)[1] == SMALL
    # Overwriting replaces the file whole.
    fmt.write(path, SMALL[:1])
    assert fmt.read(path)[1] == SMALL[:1]


def test_a_weight_equal_to_the_default_is_left_out() -> None:
    assert encode([fmt.Entry(b"ab", b"cde", None, 5)]) == encode([fmt.Entry(b"ab", b"cde")])
    assert parse(encode([fmt.Entry(b"ab", b"cde", None, 5)])) == [fmt.Entry(b"ab", b"cde")]


def test_the_header_is_the_documented_layout() -> None:
    data = encode(SMALL)
    assert data[:8] == b"\x89AFC\r\n\x1a\n"
    magic, major, minor, header_len, flags, encoding, count, body_len = struct.unpack_from(
        "<8sHHIIB3xQQ", data
    )
    assert (major, minor, header_len, flags, encoding, count) == (1, 0, 64, 0, 0, 4)
    assert body_len == len(data) - 64 - 4
    assert data[40:60] == bytes(20)
    assert struct.unpack_from("<I", data, 60)[0] == zlib.crc32(data[:60])
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == zlib.crc32(data[:-4])
    # The first entry: flags 0, key length 1, value length 1, "a", "1".
    assert data[64:75] == b"\x00\x01\x00\x00\x00\x01\x00\x00\x00a1"


def test_the_worked_example_of_the_format_document() -> None:
    example = bytes.fromhex(
        "894146430d0a1a0a0100000040000000"
        "00000000000000000100000000000000"
        "0b000000000000000000000000000000"
        "000000000000000000000000e41fbfff"
        "0001000000010000006131a0e175de"
    )
    assert encode([fmt.Entry(b"a", b"1")]) == example
    assert parse(example) == [fmt.Entry(b"a", b"1")]


@pytest.mark.parametrize(
    "entry, error",
    [
        (fmt.Entry("text", b"v"), TypeError),  # a str key
        (fmt.Entry(b"k", b"v", 0), ValueError),
        (fmt.Entry(b"k", b"v", 2**64), ValueError),
        (fmt.Entry(b"k", b"v", None, -1), ValueError),
        (fmt.Entry(b"k", b"v", None, 2**32 - 1), ValueError),
    ],
)
def test_entries_the_format_cannot_hold_are_refused_before_writing(
    tmp_path: Any, entry: fmt.Entry, error: type
) -> None:
    path = str(tmp_path / "snap.afcs")
    fmt.write(path, SMALL)
    for packer in ROW_PACKERS:
        with pytest.raises(error):
            fmt.write(path, [fmt.Entry(b"ok", b"1"), entry], packer=packer)
        assert fmt.read(path)[1] == SMALL, "the previous snapshot changed"
        assert os.listdir(str(tmp_path)) == ["snap.afcs"]


class Recording(io.BytesIO):
    """A stream that keeps every object written to it too."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: List[Any] = []

    def write(self, data: Any) -> int:
        self.objects.append(data)
        return super().write(data)


def test_keys_and_values_of_a_chunk_or_more_are_written_as_they_are() -> None:
    # Not copied into a chunk: the very objects are handed to the stream (and checksummed).
    key, value = os.urandom(1 << 20), os.urandom((1 << 20) + 5)
    entries = [fmt.Entry(b"a", b"1"), fmt.Entry(b"k", value, 7), fmt.Entry(key, b"", None, 3)]
    for packer in ROW_PACKERS:
        out = Recording()
        fmt.write_to(out, list(entries), packer=packer)
        assert any(obj is value for obj in out.objects), packer
        assert any(obj is key for obj in out.objects), packer
        assert max(len(obj) for obj in out.objects if obj is not value and obj is not key) < 100
        assert parse(out.getvalue()) == entries


class NoSeek(io.BytesIO):
    """A stream that cannot seek (as a pipe)."""

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        raise io.UnsupportedOperation("seek")


def reverse_values(entries: List[Any]) -> List[Any]:
    """An ``encode``: each value's bytes reversed (so that the stream shows it ran)."""
    return [(e[0], e[1][::-1], e[2], e[3]) for e in entries]


def written_encoding(entries: List[Any], packer: Any, stream: Any, prefix: bytes = b"") -> bytes:
    """What write_to with ``encode`` writes after ``prefix`` on ``stream``, its Header checked."""
    stream.write(prefix)
    header = fmt.write_to(stream, entries, packer=packer, encode=reverse_values)
    data = stream.getvalue()
    assert data[: len(prefix)] == prefix
    assert header.file_len == len(data) - len(prefix)
    return data[len(prefix) :]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(max_size=12),
            st.binary(max_size=300),
            st.one_of(st.none(), st.integers(1, 2**64 - 1)),
            st.one_of(st.none(), st.integers(0, 2**32 - 2)),
        ),
        max_size=40,
    ),
    st.sampled_from([1 << 20, 64, 1]),
    st.sampled_from([4096, 3, 1]),
)
def test_encoding_while_writing_writes_the_bytes_of_encoding_first(
    entries: List[Any], chunk: int, most: int
) -> None:
    # The header written again at the end, the trailer's CRC combined: the same bytes as the
    # entries encoded first and written at once, in runs of any size, through both writers,
    # from any position of a stream; a stream that cannot seek gets them encoded first.
    expected = encode([fmt.Entry(*e) for e in reverse_values(entries)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fmt, "_CHUNK", chunk)
        patch.setattr(fmt, "_ENCODE_RUN_MOST", most)
        for packer in ROW_PACKERS:
            assert written_encoding(list(entries), packer, io.BytesIO()) == expected
            assert written_encoding(list(entries), packer, io.BytesIO(), b"before") == expected
            assert written_encoding(list(entries), packer, NoSeek()) == expected
    assert [(e.key, e.value, e.ttl_ns, e.effective_weight) for e in parse(expected)] == [
        (e.key, e.value, e.ttl_ns, e.effective_weight)
        for e in map(fmt.Entry._make, reverse_values(entries))
    ]


def test_encoding_while_writing_runs_grow_to_about_a_chunk() -> None:
    runs: List[int] = []

    def encode_counting(entries: List[Any]) -> List[Any]:
        runs.append(len(entries))
        return entries

    entries = [fmt.Entry(b"%05d" % i, b"v" * 1000) for i in range(6000)]  # 1,014 body bytes
    fmt.write_to(io.BytesIO(), entries, encode=encode_counting)
    assert sum(runs) == 6000
    assert runs[:11] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]  # doubling...
    assert set(runs[11:-1]) == {1034}  # ...up to about 1 MiB of body a run
    runs.clear()
    fmt.write_to(
        io.BytesIO(), [fmt.Entry(b"k%d" % i, b"") for i in range(20_000)], encode=encode_counting
    )
    assert max(runs) == 4096 and sum(runs) == 20_000
    with pytest.raises(ValueError, match="one entry for each entry"):
        fmt.write_to(io.BytesIO(), entries, encode=lambda e: e[1:])


def test_writing_to_a_directory_or_a_missing_directory_fails_clearly(tmp_path: Any) -> None:
    with pytest.raises(fmt.SnapshotFileError, match="directory") as info:
        fmt.write(str(tmp_path), SMALL)
    assert info.value.kind == "io"
    with pytest.raises(SnapshotError, match="cannot create the temporary file"):
        fmt.write(str(tmp_path / "no" / "such.afcs"), SMALL)


def test_a_full_device_fails_with_an_os_error() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    for packer in ROW_PACKERS:
        with open("/dev/full", "wb", buffering=0) as stream:
            with pytest.raises(OSError) as info:
                fmt.write_to(stream, list(SMALL), packer=packer)
        assert info.value.errno == 28


FULL_DISK_CHILD = """
import os, sys
from alphaforge_cache import _snapshot_format as fmt
path = os.path.join(sys.argv[1], "cache.afcs")
small = [fmt.Entry(b"k%d" % i, b"v" * 100) for i in range(100)]
fmt.write(path, small)
saved = open(path, "rb").read()
try:
    fmt.write(path, [fmt.Entry(b"k%d" % i, b"w" * 100) for i in range(30000)])
except fmt.SnapshotFileError as e:
    assert e.kind == "io" and e.__cause__.errno == 28, e
    print("full disk:", e)
else:
    raise SystemExit("the save did not fail")
assert open(path, "rb").read() == saved, "the previous snapshot changed"
assert os.listdir(sys.argv[1]) == ["cache.afcs"], os.listdir(sys.argv[1])
print("ok")
"""


def test_a_full_disk_keeps_the_previous_snapshot(tmp_path: Any) -> None:
    """A 256 KiB tmpfs in a private mount namespace (root, or a user namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available")
    directory = str(tmp_path)
    wrapper = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        wrapper.append("--map-root-user")
    script = f'mount -t tmpfs -o size=256k afc-snapshot-test \'{directory}\' && exec "$0" "$@"'
    done = subprocess.run(
        [*wrapper, "sh", "-c", script, sys.executable, "-c", FULL_DISK_CHILD, directory],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 and ("unshare:" in done.stderr or "mount:" in done.stderr):
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout


KILL_CHILD = """
import sys
from alphaforge_cache import _snapshot_format as fmt
path = sys.argv[1]
generation = 0
while True:
    fmt.write(path, [fmt.Entry(b"%d" % i, bytes([generation % 256]) * 100) for i in range(5000)])
    generation += 1
"""


def test_a_process_killed_while_writing_never_leaves_a_partial_snapshot(tmp_path: Any) -> None:
    path = str(tmp_path / "cache.afcs")
    rng = random.Random()
    kills = mid_write = 0
    deadline = time.monotonic() + 15
    while kills < 20 and time.monotonic() < deadline:
        child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, path])
        time.sleep(rng.uniform(0.02, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
        if os.path.exists(path):
            header = fmt.verify(path)  # a whole, valid snapshot, or none at all
            assert header.entry_count == 5000
        for name in os.listdir(str(tmp_path)):
            if name.endswith(".tmp"):
                mid_write += 1
                os.unlink(str(tmp_path / name))
    assert kills >= 5
    assert mid_write > 0, "no kill landed during a write"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=5000), st.integers(0, 2**32 - 1))
@example(b"", b"", 0)
@example(b"header", b"", 0)
@example(b"", b"body", 0)
def test_crc32_combine_is_the_crc_of_the_concatenation(a: bytes, b: bytes, start: int) -> None:
    # (``start``: a CRC carried on from earlier bytes, as zlib.crc32's second argument.)
    crc_a = zlib.crc32(a, start)
    assert fmt._crc32_combine(crc_a, zlib.crc32(b), len(b)) == zlib.crc32(b, crc_a)


crcs = st.integers(0, 2**32 - 1)


@settings(max_examples=200, deadline=None)
@given(crcs, crcs, crcs, st.integers(0, 2**58), st.integers(0, 2**58))
def test_crc32_combine_of_long_pieces_agrees_with_zlib_and_with_itself(
    c1: int, c2: int, c3: int, n: int, m: int
) -> None:
    # Lengths far beyond what a test can checksum: the combine is associative, so a piece of
    # n + m bytes is the same as one of n followed by one of m, whatever the split.
    assert fmt._crc32_combine(fmt._crc32_combine(c1, c2, n), c3, m) == fmt._crc32_combine(
        c1, fmt._crc32_combine(c2, c3, m), n + m
    )
    # And runs of zeros up to a few MiB long, against zlib itself.
    zeros = bytes(n % (3 << 20))
    assert fmt._crc32_combine(c1, zlib.crc32(zeros), len(zeros)) == zlib.crc32(zeros, c1)


# ----- bad input: a clear error ------------------------------------------------------------


def test_an_empty_file_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "empty.afcs"
    path.write_bytes(b"")
    with pytest.raises(fmt.SnapshotFileError, match="the file is empty") as info:
        fmt.read(str(path))
    assert info.value.kind == "truncated"
    assert str(path) in str(info.value)


def test_truncation_at_every_offset_is_refused(tmp_path: Any) -> None:
    data = encode(SMALL)
    path = tmp_path / "cut.afcs"
    for length in range(len(data)):
        assert refused(data[:length]).kind == "truncated"
        assert refused(data[:length], with_length=False).kind == "truncated"
        path.write_bytes(data[:length])
        with pytest.raises(fmt.SnapshotFileError) as info:
            fmt.read(str(path))
        assert info.value.kind == "truncated", str(info.value)


def test_every_single_bit_flip_is_refused() -> None:
    data = encode(SMALL)
    kinds: Dict[str, int] = {}
    for bit in range(len(data) * 8):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        error = refused(bytes(damaged))
        kinds[error.kind] = kinds.get(error.kind, 0) + 1
    assert set(kinds) >= {"corrupt", "not_a_snapshot"}, kinds


def test_the_python_and_rust_readers_agree_on_what_is_wrong() -> None:
    # The Rust reader's messages for the same damage (tests/snapshot.rs checks them there).
    data = encode(SMALL)
    assert "entry 1 of 4: unknown entry flags 0x80" in str(
        refused(reseal(data[:64] + bytes([0x80]) + data[65:]))
    )
    assert "checksum mismatch: the file is damaged" in str(refused(data[:-1] + b"\x00"))


def test_foreign_files_and_other_versions_are_refused() -> None:
    for foreign in (b"PK\x03\x04" + bytes(100), b"hello", b"\x89PNG\r\n\x1a\n" + bytes(80)):
        error = refused(foreign)
        assert error.kind == "not_a_snapshot"
        assert "not an alphaforge-cache snapshot" in str(error)
    data = encode(SMALL)
    future = reseal(data[:8] + struct.pack("<H", 2) + data[10:])
    error = refused(future)
    assert error.kind == "unsupported"
    assert "format version 2.0 is not supported" in str(error)
    flagged = reseal(data[:16] + struct.pack("<I", 4) + data[20:])
    assert "header flags 0x00000004" in str(refused(flagged))
    reserved = reseal(data[:45] + b"\x01" + data[46:])
    assert refused(reserved).kind == "corrupt"


def with_extension(data: bytes, tag: int, payload: bytes) -> bytes:
    header = bytearray(data[:60])
    struct.pack_into("<H", header, 10, 7)  # minor 7
    struct.pack_into("<I", header, 12, 64 + 8 + len(payload))
    record = struct.pack("<HHI", tag, 0, len(payload)) + payload
    return reseal(bytes(header) + record + bytes(4) + data[64:])


def test_a_newer_minor_version_is_read_and_its_optional_fields_skipped() -> None:
    data = encode(SMALL)
    newer = with_extension(data, 0x0001, b"saved-by: a future version")
    reader = fmt.Reader(io.BytesIO(newer), len(newer))
    assert reader.header.format_minor == 7
    assert list(reader) == SMALL
    error = refused(with_extension(data, 0x8001, b""))
    assert error.kind == "unsupported"
    assert "needs header extension 0x8001" in str(error)


@pytest.mark.parametrize(
    "offset, value",
    [
        (24, struct.pack("<Q", 2**64 - 1)),  # entry count
        (32, struct.pack("<Q", 1 << 40)),  # body length
        (32, struct.pack("<Q", 2**64 - 1)),  # body length that overflows
        (65, struct.pack("<I", 2**32 - 2)),  # key length
        (69, struct.pack("<I", 2**32 - 1)),  # value length
    ],
)
def test_absurd_lengths_are_refused_without_reading_them(offset: int, value: bytes) -> None:
    data = encode(SMALL)
    bad = reseal(data[:offset] + value + data[offset + len(value) :])
    for with_length in (True, False):
        error = refused(bad, with_length=with_length)
        assert error.kind in ("corrupt", "truncated"), str(error)


def traced_peak(action: Callable[..., Any], *args: Any) -> int:
    """The peak of the memory Python allocated while ``action(*args)`` ran (``tracemalloc``)."""
    tracemalloc.start()
    try:
        action(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def claims_of_4_gib() -> List[Tuple[str, bytes]]:
    """Files whose one entry claims a value of 4 GiB: within a body of the file's length (a
    reader that checks the claim against what is left refuses it), and within a body that
    claims 1 TiB too (one that does not know the file's length reads until the data ends)."""
    data = bytearray(encode([fmt.Entry(b"k", b"v" * 100)]))
    struct.pack_into("<I", data, 69, 2**32 - 4)
    value_only = reseal(bytes(data))
    struct.pack_into("<Q", data, 32, 1 << 40)
    return [("value", value_only), ("value and body", reseal(bytes(data)))]


@needs_tracemalloc
@pytest.mark.parametrize("with_length", [True, False])
def test_a_huge_claimed_length_allocates_nothing_for_it(with_length: bool) -> None:
    """A length field is never taken for the memory to allocate: reads are bounded by the
    bytes really there. (tracemalloc counts an allocation of the claimed 4 GiB even where the
    system would hand it out lazily and cheaply, as it does for bytes(n).)"""

    def read(data: bytes, rows: bool, parser: Any) -> None:
        with pytest.raises(fmt.SnapshotFileError) as info:
            reader = fmt.Reader(io.BytesIO(data), len(data) if with_length else None)
            list(reader.rows(parser) if rows else reader)
        assert info.value.kind in ("corrupt", "truncated"), str(info.value)

    for what, data in claims_of_4_gib():
        for rows, parser in [(False, None)] + [(True, parser) for parser in ROW_PARSERS]:
            peak = traced_peak(read, data, rows, parser)
            assert peak < 4 << 20, f"{what}, {parser}: {peak} bytes allocated"


class Stream(io.RawIOBase):
    """A raw stream of ``data`` that hands out at most ``step`` bytes a read, and can seek
    or not (as a pipe)."""

    def __init__(self, data: bytes, step: int, seekable: bool) -> None:
        self._data = io.BytesIO(data)
        self._step = step
        self._seekable = seekable

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        return self._data.seek(offset, whence)

    def readinto(self, buf: Any) -> int:
        return self._data.readinto(memoryview(buf)[: self._step])


def readings(data: bytes) -> List[Tuple[str, Callable[[], Any], bool]]:
    """The ways a reader meets ``data``: (what, a stream of it, whether its length is known)."""
    step = max(7, len(data) // 50)
    return [
        ("a file's bytes, length known", lambda: io.BytesIO(data), True),
        ("a stream of unknown length", lambda: io.BytesIO(data), False),
        ("a pipe, length known", lambda: io.BufferedReader(Stream(data, 1 << 30, False)), True),
        ("a pipe", lambda: io.BufferedReader(Stream(data, 1 << 30, False)), False),
        ("short reads, length known", lambda: Stream(data, step, True), True),
        ("short reads from a pipe, length known", lambda: Stream(data, step, False), True),
    ]


def outcome(stream: Any, length: Any, rows: bool, parser: Any) -> Any:
    """The entries (as rows) read from ``stream``, or the error: comparable values."""
    try:
        reader = fmt.Reader(stream, length)
        if rows:
            return list(reader.rows(parser))
        return [(e.key, e.value, e.ttl_ns, e.effective_weight) for e in reader]
    except fmt.SnapshotFileError as error:
        return (error.kind, error.offset, str(error))


def every_outcome(data: bytes) -> Any:
    """What reading ``data`` gives, the same every way (checked here): as entries, as rows
    through each parser, from each kind of stream, with a buffer of the usual size and with a
    tiny one (so that keys and values are larger than it)."""
    got = []
    for chunk in (fmt._CHUNK, 16):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fmt, "_CHUNK", chunk)
            for what, stream, known in readings(data):
                for rows, parser in [(False, None)] + [(True, p) for p in ROW_PARSERS]:
                    result = outcome(stream(), len(data) if known else None, rows, parser)
                    got.append(((chunk, what, rows, parser), result))
    first = got[0][1]
    for how, result in got[1:]:
        if isinstance(first, tuple) and isinstance(result, tuple) and not how[1].endswith("known"):
            # Without the length, a cut file is found truncated only where the data ends.
            assert result[0] == first[0], how
        else:
            assert result == first, how
    return first


#: Entries of every kind, with keys and values from empty to 70 bytes: larger than a reader's
#: buffer of 16 bytes, smaller, or just its size.
AROUND_16 = [
    fmt.Entry(b"k" * k, bytes(range(v)), ttl, weight)
    for k, v, ttl, weight in [
        (1, 70, None, None),
        (17, 3, 5, None),
        (16, 16, None, 7),
        (0, 40, 2**64 - 1, 0),
        (40, 0, None, None),
        (3, 15, 1, None),
        (24, 33, None, None),
    ]
]


def test_keys_and_values_larger_than_the_buffer_read_the_same_every_way(tmp_path: Any) -> None:
    data = encode(AROUND_16)
    expected = [(e.key, e.value, e.ttl_ns, e.effective_weight) for e in AROUND_16]
    assert every_outcome(data) == expected
    # And from a file (as a load reads), with a buffer of 16 bytes.
    path = tmp_path / "around16.afcs"
    path.write_bytes(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fmt, "_CHUNK", 16)
        assert fmt.read(str(path))[1] == AROUND_16


def test_a_key_and_a_value_of_megabytes_are_read_whole() -> None:
    entries = [
        fmt.Entry(b"small", b"1"),
        fmt.Entry(os.urandom(3 << 19), os.urandom(5 << 20), 9),  # 1.5 MiB key, 5 MiB value
        fmt.Entry(b"small again", b"2"),
    ]
    data = encode(entries)
    assert every_outcome(data) == [(e.key, e.value, e.ttl_ns, e.effective_weight) for e in entries]


def test_cut_and_damaged_large_entries_are_refused_the_same_every_way() -> None:
    """Every truncation, and a bit flipped in every byte, of a file of entries larger than the
    reader's buffer: the same error however the bytes arrive and whatever the buffer's size."""
    data = encode(AROUND_16)
    kinds = set()
    for length in range(len(data)):
        got = every_outcome(data[:length])
        assert got[0] == "truncated", (length, got)
    for at in range(len(data)):
        damaged = bytearray(data)
        damaged[at] ^= 1 << (at % 8)
        got = every_outcome(bytes(damaged))
        kinds.add(got[0])
    assert kinds == {"corrupt", "not_a_snapshot", "unsupported", "truncated"}, kinds


def test_missing_paths_directories_and_encodings(tmp_path: Any) -> None:
    with pytest.raises(fmt.SnapshotFileError, match="No such file or directory") as info:
        fmt.read(str(tmp_path / "missing.afcs"))
    assert info.value.kind == "io"
    assert isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(SnapshotError, match="directory"):
        fmt.read(str(tmp_path))
    path = str(tmp_path / "pickled.afcs")
    fmt.write(path, SMALL, value_encoding=fmt.ENCODING_PICKLE)
    with pytest.raises(fmt.SnapshotFileError, match="encoded as pickle, not bytes") as info:
        fmt.read(path, expect_encoding=fmt.ENCODING_BYTES)
    assert info.value.kind == "encoding_mismatch"


def permission_checks(directory: str) -> None:
    with pytest.raises(fmt.SnapshotFileError, match="Permission denied") as info:
        fmt.read(os.path.join(directory, "locked.afcs"))
    assert info.value.kind == "io"
    with pytest.raises(fmt.SnapshotFileError, match="Permission denied") as info:
        fmt.write(os.path.join(directory, "readonly", "new.afcs"), SMALL)
    assert info.value.kind == "io"


def test_no_permission_is_refused_clearly() -> None:
    directory = shared_temp_dir("afc-snapshot-permissions-")
    locked = os.path.join(directory, "locked.afcs")
    readonly = os.path.join(directory, "readonly")
    try:
        fmt.write(locked, SMALL)
        os.chmod(locked, 0o000)
        os.mkdir(readonly, 0o555)
        os.chmod(readonly, 0o555)
        as_nobody(lambda: permission_checks(directory))
    finally:
        os.chmod(readonly, 0o755) if os.path.exists(readonly) else None
        shutil.rmtree(directory)

"""The native backend's fast path of a snapshot's entries (``_reads.parse_rows``,
``_snapshot_rows.c``): it takes exactly the entries the Python reader's fast path takes, makes the
same rows of them, and leaves every other entry to the general path, so that a file reads the same
(or is refused with the same error) either way."""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphaforge_cache import _snapshot_format as fmt

_reads = pytest.importorskip("alphaforge_cache._reads")
parse_rows: Any = _reads.parse_rows

# A raw entry: flags, key, value, the remaining TTL and weight fields as written (None: absent).
RawEntry = Tuple[int, bytes, bytes, Optional[int], Optional[int]]


def raw_entry(
    flags: int, key: bytes, value: bytes, ttl: Optional[int], weight: Optional[int]
) -> bytes:
    out = struct.pack("<BII", flags, len(key), len(value))
    if ttl is not None:
        out += struct.pack("<Q", ttl)
    if weight is not None:
        out += struct.pack("<I", weight)
    return out + key + value


def snapshot(body: bytes, count: int) -> bytes:
    """A snapshot of ``count`` entries whose body is ``body``, both checksums right."""
    empty = io.BytesIO()
    fmt.write_to(empty, [])
    header = bytearray(empty.getvalue()[:-4])  # an empty snapshot is its header and checksum
    struct.pack_into("<QQ", header, 24, count, len(body))
    header_len = struct.unpack_from("<I", header, 12)[0]
    header[header_len - 4 : header_len] = struct.pack(
        "<I", zlib.crc32(bytes(header[: header_len - 4]))
    )
    data = bytes(header) + body
    return data + struct.pack("<I", zlib.crc32(data))


def read(data: bytes, parser: Any) -> Any:
    """The rows of ``data``, or the error reading it raised, as comparable values."""
    try:
        return list(fmt.Reader(io.BytesIO(data), len(data)).rows(parser))
    except fmt.SnapshotFileError as error:
        return (error.kind, error.offset, str(error))


LIMIT = 12  # the engine's entry limit, made small enough to reach in a test

entries = st.tuples(
    st.sampled_from([0, 0, 1, 2, 3, 4, 0x80]),  # no fields, a TTL, a weight, both, unknown
    st.binary(max_size=LIMIT + 2),
    st.binary(max_size=LIMIT + 2),
    st.sampled_from([0, 1, 2**64 - 1]),  # a TTL of 0 is refused
    st.sampled_from([0, 1, LIMIT - 1, LIMIT, LIMIT + 1, 2**32 - 1]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(entries, max_size=12), st.integers(-2, 2))
def test_rows_are_the_python_readers_whatever_the_entries(
    drawn: List[Any], count_error: int
) -> None:
    body = b"".join(
        raw_entry(
            flags,
            key,
            value,
            ttl if flags & 1 else None,
            weight if flags & 2 else None,
        )
        for flags, key, value, ttl, weight in drawn
    )
    data = snapshot(body, max(len(drawn) + count_error, 0))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fmt, "_MAX_ENTRY_SIZE", LIMIT)
        assert read(data, parse_rows) == read(data, None)


def test_a_buffer_of_many_entries_is_read_in_runs() -> None:
    # More than one read buffer's worth (1 MiB), entries of every kind, some cut by the
    # buffer's end: the same rows as the Python reader's.
    written = [
        fmt.Entry(
            b"k%07d" % i, b"v" * (i % 300), (i * 7919) or None if i % 3 else None, i % 5 or None
        )
        for i in range(20_000)
    ]
    out = io.BytesIO()
    fmt.write_to(out, written)
    data = out.getvalue()
    assert len(data) > 2 << 20
    rows = read(data, parse_rows)
    assert rows == read(data, None)
    assert rows == [(e.key, e.value, e.ttl_ns, e.effective_weight) for e in written]


def test_it_stops_before_an_entry_it_does_not_take() -> None:
    good = raw_entry(0, b"key", b"value", None, None)
    timed = raw_entry(3, b"k2", b"v2", 99, 7)
    cut = raw_entry(0, b"key", b"long value", None, None)
    buf = b"xx" + good + timed + cut
    out: List[Any] = []
    # `end` cuts the third entry: two rows, and the position of the third.
    end = len(buf) - 3
    assert parse_rows(buf, 2, end, 10, 2**32 - 2, out) == 2 + len(good) + len(timed)
    assert out == [(b"key", b"value", None, 8), (b"k2", b"v2", 99, 7)]
    # `most` bounds the rows made; a list that holds rows already keeps them.
    assert parse_rows(buf, 2, len(buf), 1, 2**32 - 2, out) == 2 + len(good)
    assert out[2:] == [(b"key", b"value", None, 8)]
    # Entries the general path refuses or must read: none taken, the position unchanged.
    for flags, ttl, weight in ((0x04, None, None), (1, 0, None), (2, None, 2**32 - 1)):
        refused = raw_entry(flags, b"k", b"v", ttl, weight)
        before: List[Any] = []
        assert parse_rows(refused + good, 0, len(refused + good), 5, 2**32 - 2, before) == 0
        assert before == []


def test_bad_arguments_are_refused_not_read() -> None:
    buf = raw_entry(0, b"k", b"v", None, None)
    for pos, end in ((-1, len(buf)), (0, len(buf) + 1), (5, 4)):
        with pytest.raises(ValueError, match="is not within"):
            parse_rows(buf, pos, end, 1, 100, [])
    with pytest.raises(TypeError):
        parse_rows(bytearray(buf), 0, len(buf), 1, 100, [])
    with pytest.raises(TypeError):
        parse_rows(buf, 0, len(buf), 1, 100, ())


def reference_columns(rows: List[Any]) -> Tuple[Any, ...]:
    """What ``restore_columns`` makes, in Python (as ``_native.Cache._restore`` makes it without
    the C read path)."""
    return (
        b"".join(row[0] for row in rows),
        struct.pack(f"@{len(rows)}N", *(len(row[0]) for row in rows)),
        struct.pack(f"@{len(rows)}Q", *(row[3] for row in rows)),
        struct.pack(f"@{len(rows)}Q", *(row[2] or 0 for row in rows)),
        any(row[2] is not None for row in rows),
        [(row[0], row[1]) for row in rows],
        {len(row[0]) for row in rows},
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(max_size=40),  # keys shorter and longer than 16 bytes: the join grows
            st.one_of(st.binary(max_size=8), st.integers(), st.none()),
            st.one_of(st.none(), st.integers(1, 2**64 - 1)),
            st.integers(0, 2**64 - 1),
        ),
        max_size=50,
    )
)
def test_restore_columns_are_the_python_ones(rows: List[Any]) -> None:
    made = _reads.restore_columns(rows)
    assert made == reference_columns(rows)
    assert all(pair[1] is row[1] for pair, row in zip(made[5], rows))  # the values themselves


def test_restore_columns_refuses_rows_of_another_shape() -> None:
    good = (b"k", b"v", None, 2)
    for bad in (
        (b"k", b"v", None),  # three fields
        ("k", b"v", None, 2),  # a str key
        (bytearray(b"k"), b"v", None, 2),
        (b"k", b"v", None, 2.0),  # a float weight
        [b"k", b"v", None, 2],  # a list
    ):
        with pytest.raises(TypeError, match="row 1 is not"):
            _reads.restore_columns([good, bad])
    with pytest.raises(OverflowError):
        _reads.restore_columns([(b"k", b"v", None, -1)])
    with pytest.raises(OverflowError):
        _reads.restore_columns([(b"k", b"v", 2**64, 1)])
    with pytest.raises(TypeError, match="must be a list"):
        _reads.restore_columns((good,))


# ----- saving --------------------------------------------------------------------------------

PACKER = fmt.RowPacker(_reads.measure_rows, _reads.pack_rows)

fields = st.one_of(
    *[st.binary(max_size=LIMIT)] * 4,  # mostly bytes, so that many lists take the fast path
    st.text(max_size=3),  # not bytes: refused
    st.builds(bytearray, st.binary(max_size=3)),
)
numbers = st.one_of(
    st.none(),
    st.sampled_from([0, 1, -1, True, 2**32 - 1, 2**64 - 1, 2**64, 1.0]),
    st.integers(0, LIMIT + 2),
)


def written(rows: List[Any], packer: Any) -> Any:
    """The bytes write_to makes of ``rows``, or the error it raises, as comparable values."""
    out = io.BytesIO()
    try:
        fmt.write_to(out, rows, packer=packer)
    except (TypeError, ValueError) as error:
        assert out.getvalue() == b"", "an error after something was written"
        return (type(error), str(error))
    return out.getvalue()


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(fields, fields, numbers, numbers), max_size=4))
@example([(b"k" * 6, b"v" * 7, None, None)])  # key and value one byte over the limit
@example([(b"k" * 6, b"v" * 7, None, LIMIT)])  # the same, weighed within it
@example([(b"k", b"v", 0, None)])  # a TTL of 0
@example([(b"k", b"v", None, LIMIT + 1)])  # a weight over the limit
@example([(b"k", b"vv", 9, 3)])  # a weight equal to the default one: left out
def test_written_bytes_are_the_python_writers_whatever_the_rows(rows: List[Any]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fmt, "_MAX_ENTRY_SIZE", LIMIT)  # keys and values around the limit
        assert written(rows, PACKER) == written(rows, None)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(max_size=20),
            st.binary(max_size=40),
            st.one_of(st.none(), st.integers(1, 2**64 - 1)),
            st.one_of(st.none(), st.integers(0, 2**32 - 2)),
        ),
        max_size=8,
    ),
    st.integers(1, 24),
)
def test_keys_and_values_of_a_chunk_or_more_are_written_the_same_both_ways(
    rows: List[Any], chunk: int
) -> None:
    # A chunk of a few bytes: many entries have a key and value of a chunk or more, which
    # both writers hand over as they are, between chunks.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fmt, "_CHUNK", chunk)
        data = written(rows, PACKER)
        assert data == written(rows, None)
    assert data == written(rows, None)


def test_rows_are_packed_in_chunks_in_order() -> None:
    rows: List[Any] = [
        (b"k%06d" % i, b"v" * (i % 50) * (100 if i % 1000 == 999 else 1), i or None, i % 7 or None)
        for i in range(5000)
    ]
    body = _reads.measure_rows(rows, 2**32 - 2)
    chunks, start, wholes = [], 0, 0
    while start < len(rows):
        chunk, after, whole = _reads.pack_rows(rows, start, 4096, 2**32 - 2)
        assert after > start and (len(chunk) >= 4096 or after == len(rows) or whole)
        chunks.append(chunk)
        if whole:  # the last row's key and value, 4,096 bytes or more, are the caller's
            key, value = rows[after - 1][:2]
            assert len(key) + len(value) >= 4096
            assert all(len(k) + len(v) < 4096 for k, v, _, _ in rows[start : after - 1])
            chunks += [key, value]
            wholes += 1
        start = after
    assert wholes == 5
    assert len(b"".join(chunks)) == body
    assert written(rows, PACKER) == written(rows, None)
    assert _reads.measure_rows([(b"k", "not bytes", None, None)], 2**32 - 2) is None
    with pytest.raises(ValueError, match="row 1 is not"):
        _reads.pack_rows([rows[0], (b"k", "not bytes", None, None)], 0, 1 << 20, 2**32 - 2)
    with pytest.raises(ValueError, match="out of range"):
        _reads.pack_rows(rows, len(rows) + 1, 10, 2**32 - 2)


def test_saved_rows_pair_the_engines_records_with_the_mirrors_values() -> None:
    mirror = _reads.Mirror()
    mirror.update([(b"a", "value of a"), (b"bb", "value of bb")])
    head = struct.Struct("=4Q")
    records = (
        head.pack(1, 8, 2**64 - 1, 3) + b"a" + bytes(8) + head.pack(2, 8, 5, 9) + b"bb" + bytes(8)
    )
    rows = _reads.saved_rows(records, 2, mirror, 2**64 - 1)
    assert rows == [(b"a", "value of a", None, 3), (b"bb", "value of bb", 5, 9)]
    assert rows[0][1] is mirror[b"a"]
    # A key the mirror lacks: None, for Python to find it elsewhere.
    absent = head.pack(1, 8, 1, 1) + b"z" + bytes(8)
    assert _reads.saved_rows(records + absent, 3, mirror, 2**64 - 1) is None
    # Records that are not `count` records.
    for data, count in ((records, 3), (records, 1), (records[:-1], 2), (records + b"x", 2)):
        with pytest.raises(ValueError):
            _reads.saved_rows(data, count, mirror, 2**64 - 1)
    with pytest.raises(ValueError):
        _reads.saved_rows(head.pack(2**63, 0, 0, 0), 1, mirror, 2**64 - 1)
    with pytest.raises(TypeError, match="must be a Mirror"):
        _reads.saved_rows(records, 2, {}, 2**64 - 1)


def test_damaged_files_read_the_same_both_ways() -> None:
    # Random edits of a snapshot of entries of every kind (bytes changed, cut out or put in,
    # the checksums mostly rewritten so that the entries themselves are read): the same rows,
    # or the same error, through the fast path in C as through Python alone.
    rng = random.Random(7)

    def some_bytes(most: int) -> bytes:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(most)))

    entries = [
        fmt.Entry(
            some_bytes(20),
            some_bytes(40),
            rng.choice([None, 1, 5, 2**64 - 1]),
            rng.choice([None, 0, 3, 2**32 - 2]),
        )
        for _ in range(100)
    ]
    out = io.BytesIO()
    fmt.write_to(out, entries)
    base = out.getvalue()
    outcomes = set()
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(64, len(data))
            edit = rng.randrange(3)
            if edit == 0:
                data[at] = rng.randrange(256)
            elif edit == 1:
                del data[at : at + rng.randrange(1, 30)]
            else:
                data[at:at] = some_bytes(12)
        if rng.random() < 0.9:
            data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
        got = read(bytes(data), parse_rows)
        assert got == read(bytes(data), None)
        outcomes.add(got[0] if isinstance(got, tuple) else "read")
    assert outcomes == {"read", "truncated", "corrupt"}

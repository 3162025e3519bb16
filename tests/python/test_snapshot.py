"""``Cache.save`` and ``Cache.load`` on every backend: round trips in every mode, the shared
vectors of ``tests/vectors`` (loaded, and written again byte for byte; the ``future-*.afcs`` files
of later format versions loaded or refused as the format's Compatibility rules say), bad files
refused with the cache unchanged, smaller bounds, the listener, object-mode codecs, and no value
kept alive."""

from __future__ import annotations

import gc
import io
import json
import os
import pickle
import random
import stat
import struct
import threading
import weakref
import zlib
from typing import Any, Callable, Dict, List, Tuple

import pytest
from _unprivileged import as_nobody, check_refused_without_permission, no_permission_places

from alphaforge_cache import (
    CacheClosedError,
    ManualClock,
    SnapshotError,
    SnapshotFileError,
    SnapshotInfo,
)
from alphaforge_cache import _snapshot_format as fmt

try:  # (PyPy has no tracemalloc: the memory tests are skipped there)
    import tracemalloc
except ImportError:  # pragma: no cover - depends on the interpreter
    tracemalloc = None  # type: ignore[assignment]
#: For the tests that measure memory with tracemalloc.
needs_tracemalloc = pytest.mark.skipif(tracemalloc is None, reason="no tracemalloc here (PyPy)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS = os.path.join(ROOT, "tests", "vectors")
NAMES = ("empty", "small", "random", "large")
WRITERS = ("rust", "c", "python")
#: The time every vector's state was saved at (tests/vectors/README.md): 1000 s.
VECTOR_TIME = 1000


def manifest(name: str) -> List[fmt.Entry]:
    """The entries of a vector's manifest, least recently used first."""
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


def read_bytes(path: Any) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path: Any, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def encode(entries: List[fmt.Entry], value_encoding: int = 0) -> bytes:
    out = io.BytesIO()
    fmt.write_to(out, entries, value_encoding=value_encoding)
    return out.getvalue()


def reseal(data: bytes) -> bytes:
    """Both checksums rewritten, after a test changed bytes on purpose."""
    b = bytearray(data)
    header_len = struct.unpack_from("<I", b, 12)[0]
    b[header_len - 4 : header_len] = struct.pack("<I", zlib.crc32(bytes(b[: header_len - 4])))
    b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])))
    return bytes(b)


def state(cache: Any) -> Tuple[Any, ...]:
    """Everything a load could change: entries in order (values and TTLs), weight, statistics."""
    keys = cache.keys()
    return (
        keys,
        [cache.peek(k) for k in keys],
        [cache.ttl_of(k) for k in keys],
        cache.weight,
        cache.stats(),
    )


def assert_load_refused(cache: Any, path: Any, error: Any, match: str, **load: Any) -> None:
    """``cache.load(path, **load)`` raises ``error`` (its message matching ``match``) and leaves
    the cache as it was."""
    before = state(cache)
    with pytest.raises(error, match=match):
        cache.load(path, **load)
    assert state(cache) == before


def put_exactly(cache: Any, clock: ManualClock, entries: List[fmt.Entry], at: int) -> None:
    """Puts ``entries`` in order so that at ``at`` seconds each has exactly its ``ttl_ns``
    left: the TTL is given in whole seconds, and the put is made that much earlier."""
    for key, value, ttl_ns, _ in entries:
        if ttl_ns is None:
            clock.set(at)
            cache.put(key, value)
        else:
            seconds = -(-ttl_ns // 10**9)
            clock.set((at * 10**9 + ttl_ns - seconds * 10**9) / 10**9)
            cache.put(key, value, ttl=seconds)
    clock.set(at)


class Value:
    """A weak-referenceable, picklable value."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Value) and other.tag == self.tag

    def __repr__(self) -> str:
        return f"Value({self.tag!r})"

    __hash__ = object.__hash__


class JsonCodec:
    """A codec of the application's own (value encoding 2)."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, sort_keys=True).encode()

    @staticmethod
    def loads(data: bytes) -> Any:
        return json.loads(data)


def value_for(mode: str, i: int) -> Any:
    if mode == "bytes":
        return b"value-%d" % i
    if mode == "pickle":
        return {"i": i, "tags": ("a", "b")}
    return Value(f"v{i}")


# ----- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bytes", "pickle", "object"])
def test_round_trip_restores_entries_order_ttls_weights(
    make_cache: Any, tmp_path: Any, mode: str
) -> None:
    clock = ManualClock(5000)
    getsizeof = (lambda v: 10 + len(v.tag)) if mode == "object" else None
    source = make_cache(32, mode=mode, timer=clock, getsizeof=getsizeof)
    for i in range(10):
        source.put(f"k{i}", value_for(mode, i), ttl=None if i % 3 else 60 + i)
    source.get("k0")
    source.get("k5")
    clock.advance(7)
    source.put("short", value_for(mode, 99), ttl=1)
    clock.advance(1)  # "short" has expired: never saved
    path = tmp_path / "round.afcs"
    info = source.save(path)
    encoding = 0 if mode == "bytes" else 1
    assert info == SnapshotInfo(1, 0, encoding, 10, 10, os.path.getsize(path))
    assert os.listdir(tmp_path) == ["round.afcs"], "no temporary file is left"

    later = ManualClock(123)  # another clock at another time: the remaining TTLs are kept
    heard: List[Tuple[bytes, Any, str]] = []
    target = make_cache(
        32, mode=mode, timer=later, getsizeof=getsizeof, on_evict=lambda *a: heard.append(a)
    )
    assert target.load(path) == SnapshotInfo(1, 0, encoding, 10, 10, os.path.getsize(path))
    assert target.keys() == source.keys()
    assert target.items() == source.items()
    assert [target.ttl_of(k) for k in target.keys()] == [source.ttl_of(k) for k in source.keys()]
    assert target.weight == source.weight
    assert target.stats().inserts == 10 and heard == []
    if mode != "bytes":
        assert target.peek("k1") is not source.peek("k1"), "values are new objects"
    # Saved again at the same remaining times: the same bytes.
    again = tmp_path / "again.afcs"
    target.save(again)
    assert read_bytes(again) == read_bytes(path)
    # Deadlines count from the load.
    later.advance(53)  # k0 had 52 s left, k3 55 s
    assert "k0" not in target and "k3" in target and "k1" in target


def test_a_file_saved_by_one_backend_loads_in_the_other(backend: Any, tmp_path: Any) -> None:
    import alphaforge_cache

    clock = ManualClock(10)
    classes = [alphaforge_cache.PythonCache]
    if alphaforge_cache.NativeCache is not None:
        classes.append(alphaforge_cache.NativeCache)
    for other in classes:
        source = backend(8, mode="pickle", timer=clock)
        source.put_many({"a": [1], "b": {"x": 2}, "c": None}, ttl=30)
        source.get("a")
        path = tmp_path / f"{other.backend}.afcs"
        source.save(path)
        target = other(8, mode="pickle", timer=clock)
        target.load(path)
        assert target.items() == source.items() == [(b"a", [1]), (b"c", None), (b"b", {"x": 2})]
        again = tmp_path / f"{other.backend}-again.afcs"
        target.save(again)
        assert read_bytes(again) == read_bytes(path)


@pytest.mark.parametrize("shards", [1, 4])
def test_several_shards_round_trip(make_cache: Any, tmp_path: Any, shards: int) -> None:
    source = make_cache(1000, shards=shards)
    for i in range(600):
        source.put(b"%05d" % i, b"v%d" % i)
    for i in range(0, 600, 7):
        source.get(b"%05d" % i)
    path = tmp_path / "sharded.afcs"
    source.save(path)
    target = make_cache(1000, shards=shards)
    assert target.load(path).entries_kept == 600
    assert sorted(target.items()) == sorted(source.items())
    if shards == 1:
        assert target.keys() == source.keys()


def test_an_empty_cache_round_trips_and_a_load_of_nothing_clears(
    make_cache: Any, tmp_path: Any, recorder: Any
) -> None:
    path = tmp_path / "empty.afcs"
    assert make_cache(4).save(path).entries == 0
    assert os.path.getsize(path) == 68
    target = make_cache(4, on_evict=recorder)
    target.put("old", b"1")
    assert target.load(path).entries_kept == 0
    assert len(target) == 0 and recorder.calls == [(b"old", b"1", "cleared")]


# ----- the shared vectors -------------------------------------------------------------------


def assert_holds(cache: Any, entries: List[fmt.Entry]) -> None:
    """``cache`` holds exactly ``entries`` (least recently used first), with their TTLs left and
    their weights."""
    assert cache.items() == [(e.key, e.value) for e in reversed(entries)]
    assert [cache.ttl_of(e.key) for e in reversed(entries)] == [
        None if e.ttl_ns is None else e.ttl_ns / 10**9 for e in reversed(entries)
    ]
    assert cache.weight == sum(e.effective_weight for e in entries)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("name", NAMES)
def test_every_vector_loads_as_its_manifest_and_saves_byte_for_byte(
    make_cache: Any, tmp_path: Any, name: str, writer: str
) -> None:
    entries = manifest(name)
    clock = ManualClock(VECTOR_TIME)
    cache = make_cache(256, timer=clock)
    info = cache.load(vector(writer, name))
    assert (info.entries, info.entries_kept) == (len(entries), len(entries))
    assert_holds(cache, entries)
    # The state a load leaves, saved at the time the vector was saved: the vector's bytes
    # (the file's explicit weights are the entries' weights, as in the engine).
    out = tmp_path / f"{writer}-{name}.afcs"
    cache.save(out)
    assert read_bytes(out) == read_bytes(vector(writer, name))


@pytest.mark.parametrize("name", NAMES)
def test_the_same_state_built_by_puts_saves_the_vector_bytes(
    make_cache: Any, tmp_path: Any, name: str
) -> None:
    # Puts cannot give a bytes entry a weight of its own, so the entries that have one are
    # left out here; the three writers' files for the same entries are byte-identical
    # (test_snapshot_format.py), so the Python writer's bytes stand for the Rust and C ones.
    entries = [e for e in manifest(name) if e.weight is None]
    clock = ManualClock(0)
    cache = make_cache(256, timer=clock)
    put_exactly(cache, clock, entries, VECTOR_TIME)
    out = tmp_path / "built.afcs"
    cache.save(out)
    assert read_bytes(out) == encode(entries)
    if name == "empty":
        assert read_bytes(out) == read_bytes(vector("rust", "empty"))


def test_the_small_vector_built_by_puts_in_object_mode_has_its_weights(
    make_cache: Any, tmp_path: Any
) -> None:
    # An object cache weighs with getsizeof and saves the weights; with a codec that keeps
    # bytes as they are, its file differs from the bytes vector only in the value encoding.
    entries = manifest("small")
    weights = {e.key: e.effective_weight for e in entries}

    class Raw:
        @staticmethod
        def dumps(obj: Any) -> bytes:
            return bytes(obj[1])

        @staticmethod
        def loads(data: bytes) -> Any:
            return data

    clock = ManualClock(0)
    cache = make_cache(16, mode="object", timer=clock, getsizeof=lambda v: weights[v[0]])
    put_exactly(cache, clock, [fmt.Entry(e.key, (e.key, e.value), e.ttl_ns) for e in entries], 1000)
    out = tmp_path / "object.afcs"
    assert cache.save(out, codec=Raw()).value_encoding == 2
    expected = bytearray(read_bytes(vector("rust", "small")))
    expected[20] = 2
    assert read_bytes(out) == reseal(bytes(expected))


# ----- the future vectors: later versions of the format --------------------------------------


def test_the_future_minor_vector_loads_as_the_small_state(make_cache: Any, tmp_path: Any) -> None:
    # Format 1.7 with two extension records that are not critical: skipped, the minor reported.
    entries = manifest("small")
    path = os.path.join(VECTORS, "future-minor.afcs")
    clock = ManualClock(VECTOR_TIME)
    cache = make_cache(256, timer=clock)
    cache.put("replaced", b"by the load")
    info = cache.load(path)
    assert (info.format_major, info.format_minor, info.value_encoding) == (1, 7, 0)
    assert (info.entries, info.entries_kept) == (len(entries), len(entries))
    assert info.file_bytes == os.path.getsize(path)
    assert_holds(cache, entries)
    # Saved again: the small state's 1.0 file (the records the reader skipped are gone).
    out = tmp_path / "again.afcs"
    cache.save(out)
    assert read_bytes(out) == read_bytes(vector("python", "small"))


#: The future vectors a 1.x reader must refuse as unsupported, and the reason its message gives.
FUTURE_REFUSED = {
    "future-critical": "needs header extension 0xffff",
    "future-flag": "header flags 0x80000000",
    "future-major": "format version 2.0 is not supported",
}


@pytest.mark.parametrize("name", sorted(FUTURE_REFUSED))
def test_future_vectors_a_reader_must_refuse_are_unsupported_and_change_nothing(
    make_cache: Any, recorder: Any, name: str
) -> None:
    # A critical extension record, an unknown required flag, another major version: the
    # checksums are right, so the refusal is for that.
    path, reason = os.path.join(VECTORS, f"{name}.afcs"), FUTURE_REFUSED[name]
    clock = ManualClock(50)
    cache = make_cache(8, max_bytes=1000, timer=clock, on_evict=recorder)
    cache.put("keep", b"me", ttl=30)
    cache.put("also", b"this")
    cache.get("keep")
    before = state(cache)
    with pytest.raises(SnapshotFileError) as info:
        cache.load(path)
    assert info.value.kind == "unsupported", str(info.value)
    assert isinstance(info.value, SnapshotError)
    assert reason in str(info.value) and path in str(info.value)
    assert state(cache) == before
    assert len(before[0]) == 2 and recorder.calls == []


# ----- bad files ----------------------------------------------------------------------------


def bad_files(tmp_path: Any) -> List[Tuple[str, str, str]]:
    """(what, path, kind) of files a load must refuse."""
    good = read_bytes(vector("rust", "small"))
    flipped = bytearray(good)
    flipped[100] ^= 0x10
    future = bytearray(good)
    future[8:10] = struct.pack("<H", 2)
    absurd = bytearray(good)
    struct.pack_into("<I", absurd, 64 + 5, 0xFFFFFFFE)  # the first value claims 4 GiB
    cases = [
        ("empty", b"", "truncated"),
        ("truncated header", good[:40], "truncated"),
        ("truncated body", good[:-9], "truncated"),
        ("bit flip", bytes(flipped), "corrupt"),
        ("wrong magic", b"PK\x03\x04" + good[4:], "not_a_snapshot"),
        ("future version", reseal(bytes(future)), "unsupported"),
        ("absurd length", reseal(bytes(absurd)), "corrupt"),
        ("pickles", encode(manifest("small"), fmt.ENCODING_PICKLE), "encoding_mismatch"),
    ]
    files = [
        (what, write_bytes(tmp_path / f"bad{i}.afcs", data), kind)
        for i, (what, data, kind) in enumerate(cases)
    ]
    files.append(("missing", str(tmp_path / "missing.afcs"), "io"))
    files.append(("directory", str(tmp_path), "io"))
    return files


def test_bad_files_are_refused_clearly_and_the_cache_is_unchanged(
    make_cache: Any, tmp_path: Any, recorder: Any
) -> None:
    clock = ManualClock(50)
    cache = make_cache(8, max_bytes=1000, timer=clock, on_evict=recorder)
    cache.put("keep", b"me", ttl=30)
    cache.put("also", b"this")
    cache.get("keep")
    cache.get("nothing")
    before = state(cache)
    for what, path, kind in bad_files(tmp_path):
        with pytest.raises(SnapshotFileError) as info:
            cache.load(path)
        assert info.value.kind == kind, what
        assert isinstance(info.value, SnapshotError)
        assert path in str(info.value), f"{what}: {info.value}"
        assert state(cache) == before, what
    assert recorder.calls == []
    mismatch = [p for w, p, _ in bad_files(tmp_path) if w == "pickles"][0]
    with pytest.raises(SnapshotFileError, match="encoded as pickle; a cache in mode 'bytes'"):
        cache.load(mismatch)


def test_a_file_of_another_mode_is_refused(make_cache: Any, tmp_path: Any) -> None:
    files = {}
    for mode in ("bytes", "pickle"):
        source = make_cache(4, mode=mode)
        source.put("k", value_for(mode, 1))
        files[mode] = str(tmp_path / f"{mode}.afcs")
        source.save(files[mode])
    source = make_cache(4, mode="object")
    source.put("k", {"a": 1})
    source.save(tmp_path / "codec.afcs", codec=JsonCodec)
    files["codec"] = str(tmp_path / "codec.afcs")

    def refused(cache: Any, path: str, **kwargs: Any) -> str:
        with pytest.raises(SnapshotFileError) as info:
            cache.load(path, **kwargs)
        assert info.value.kind == "encoding_mismatch"
        return str(info.value)

    assert "encoded as pickle" in refused(make_cache(4), files["pickle"])
    assert "encoded as bytes" in refused(make_cache(4, mode="pickle"), files["bytes"])
    assert "with the default codec loads pickle" in refused(
        make_cache(4, mode="object"), files["codec"]
    )
    assert "codec of its own" in refused(
        make_cache(4, mode="object"), files["pickle"], codec=JsonCodec
    )
    # A pickle cache's file and an object cache's default-codec file are both pickles.
    obj = make_cache(4, mode="object")
    obj.load(files["pickle"])
    assert obj["k"] == {"i": 1, "tags": ("a", "b")}
    with pytest.raises(ValueError, match="codec is for mode='object'"):
        make_cache(4).load(files["bytes"], codec=JsonCodec)
    with pytest.raises(TypeError, match="codec must have dumps"):
        make_cache(4, mode="object").save(tmp_path / "x.afcs", codec=object())  # type: ignore[arg-type]


# ----- bounds, listener, statistics ---------------------------------------------------------


def test_a_load_into_smaller_bounds_keeps_the_most_recent_entries_that_fit(
    make_cache: Any, tmp_path: Any, recorder: Any
) -> None:
    source = make_cache(100)
    for i in range(100):
        source.put(bytes([i]), bytes([i]) * 9)  # weight 10 each
    path = tmp_path / "hundred.afcs"
    source.save(path)
    newest = [bytes([i]) for i in range(99, 89, -1)]

    by_count = make_cache(10, on_evict=recorder)
    info = by_count.load(path)
    assert (info.entries, info.entries_kept) == (100, 10)
    assert by_count.keys() == newest
    assert recorder.calls == [], "entries that did not fit are not evictions"
    stats = by_count.stats()
    assert (stats.evictions, stats.inserts, stats.entries) == (0, 10, 10)

    by_bytes = make_cache(100, max_bytes=105)
    assert by_bytes.load(path).entries_kept == 10
    assert by_bytes.keys() == newest and by_bytes.weight == 100

    # An entry heavier than the bound on its own is skipped; older ones that fit stay.
    heavy = make_cache(10)
    heavy.put("a", b"1")
    heavy.put("b", b"2")
    heavy.put("heavy", b"x" * 200)
    heavy.save(path)
    target = make_cache(10, max_bytes=100)
    assert target.load(path).entries_kept == 2
    assert target.keys() == [b"b", b"a"]


def test_a_key_given_twice_loads_as_two_puts_in_turn(make_cache: Any, tmp_path: Any) -> None:
    # No writer gives a key twice, but a file may: its later entry counts, where it stands,
    # as if every entry were put in turn into an empty cache of the same bounds.
    entries = [
        fmt.Entry(b"a", b"first", None, None),
        fmt.Entry(b"b", b"b", None, None),
        fmt.Entry(b"a", b"second", 5 * 10**9, None),
        fmt.Entry(b"c", b"c", None, None),
        fmt.Entry(b"b", b"b again", None, None),
    ]
    path = write_bytes(tmp_path / "twice.afcs", encode(entries))
    for shards in (1, 2):
        for max_entries, max_bytes in ((10, None), (2, None), (10, 12), (3, None)):
            clock = ManualClock()
            clock.set(100)
            bounds = dict(shards=shards, timer=clock, max_bytes=max_bytes)
            loaded = make_cache(max_entries, **bounds)
            info = loaded.load(path)
            reference = make_cache(max_entries, **bounds)
            for key, value, ttl_ns, _ in entries:
                reference.put(key, value, ttl=None if ttl_ns is None else ttl_ns / 10**9)
            what = f"{shards} shards, max_entries {max_entries}, max_bytes {max_bytes}"
            got, expected = state(loaded), state(reference)
            assert info.entries == 5 and info.entries_kept == len(got[0]), what
            if shards == 1:
                assert got[:4] == expected[:4], what
                continue
            # Each shard is an exact LRU of its own keys, and each cache hashes with a seed of
            # its own: with room for all, the same entries; else some of the last ones only.
            final = {b"a": b"second", b"b": b"b again", b"c": b"c"}
            items = dict(zip(got[0], got[1]))
            if max_entries == 10 and max_bytes is None:
                assert items == final, what
            else:
                assert items.items() <= final.items() and 0 < len(items) <= max_entries, what


def test_several_shards_keep_their_bounds_on_a_smaller_load(make_cache: Any, tmp_path: Any) -> None:
    big = make_cache(100_000, shards=4)
    big.put_many([(i.to_bytes(4, "little"), bytes(16)) for i in range(5000)])
    path = tmp_path / "big.afcs"
    big.save(path)
    small = make_cache(1000, shards=4, max_bytes=10_000)
    info = small.load(path)
    assert len(small) == info.entries_kept and 0 < len(small) <= 500
    assert small.weight <= 10_000


def test_the_listener_hears_the_old_entries_as_cleared_or_expired(
    make_cache: Any, tmp_path: Any, recorder: Any
) -> None:
    source = make_cache(8)
    source.put("alpha", b"new")
    source.put("beta", b"2")
    path = tmp_path / "two.afcs"
    source.save(path)
    clock = ManualClock()
    target = make_cache(8, timer=clock, on_evict=recorder)
    target.put("old", b"1")
    target.put("alpha", b"stale")
    target.put("gone", b"x", ttl=1)
    target.get("old")
    target.get("missing")
    clock.advance(1)
    target.load(path)
    assert recorder.calls == [
        (b"old", b"1", "cleared"),
        (b"gone", b"x", "expired"),
        (b"alpha", b"stale", "cleared"),
    ]
    assert target.items() == [(b"beta", b"2"), (b"alpha", b"new")]
    stats = target.stats()
    # As the engine's load: the old entries count as removals (or expirations), the loaded
    # ones as inserts; hits and misses stay.
    assert (stats.hits, stats.misses, stats.inserts, stats.removals, stats.expirations) == (
        1,
        1,
        3 + 2,
        2,
        1,
    )
    assert (stats.entries, stats.weight) == (2, 8 + 5)


def test_the_default_ttl_does_not_apply_to_loaded_entries(make_cache: Any, tmp_path: Any) -> None:
    source = make_cache(4)
    source.put("forever", b"1")
    source.save(tmp_path / "f.afcs")
    clock = ManualClock()
    target = make_cache(4, ttl=5, timer=clock)
    target.load(tmp_path / "f.afcs")
    assert target.ttl_of("forever") is None
    clock.advance(100)
    assert target["forever"] == b"1"


def test_a_closed_cache_neither_saves_nor_loads(make_cache: Any, tmp_path: Any) -> None:
    cache = make_cache(4)
    cache.save(tmp_path / "c.afcs")
    cache.close()
    with pytest.raises(CacheClosedError):
        cache.save(tmp_path / "d.afcs")
    with pytest.raises(CacheClosedError):
        cache.load(tmp_path / "c.afcs")
    assert not os.path.exists(tmp_path / "d.afcs")


def test_a_failed_save_keeps_the_previous_file(make_cache: Any, tmp_path: Any) -> None:
    cache = make_cache(4)
    cache.put("a", b"1")
    path = tmp_path / "keep.afcs"
    cache.save(path)
    before = read_bytes(path)
    with pytest.raises(SnapshotFileError) as info:
        cache.save(tmp_path / "no-such-dir" / "x.afcs")
    assert info.value.kind == "io"
    with pytest.raises(SnapshotFileError):
        cache.save(tmp_path)
    obj = make_cache(4, mode="object")
    obj.put("lock", threading.Lock())
    with pytest.raises(SnapshotError):
        obj.save(path)
    assert read_bytes(path) == before and os.listdir(tmp_path) == ["keep.afcs"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX permissions, checked in a fork")
@pytest.mark.parametrize("mode", ["bytes", "object"])
def test_no_permission_is_refused_clearly_and_changes_nothing(
    make_cache: Any, recorder: Any, mode: str
) -> None:
    """A snapshot nobody may read, and a directory nobody may write in (a previous snapshot
    there, or a new name): ``SnapshotFileError`` of kind ``"io"`` naming the path and the OS's
    "Permission denied"; the cache, the previous file and the directory stay as they were. As
    root, checked in a forked child that drops to user nobody (_unprivileged.py)."""
    source = make_cache(4, mode=mode)
    source.put("saved", value_for(mode, 7))
    with no_permission_places("afc-cache-permissions-", source.save) as places:

        def checks() -> None:
            clock = ManualClock(50)
            cache = make_cache(8, mode=mode, timer=clock, on_evict=recorder)
            cache.put("keep", value_for(mode, 1), ttl=30)
            cache.put("also", value_for(mode, 2))
            cache.put("third", value_for(mode, 3))
            cache.get("keep")
            cache.get("nothing")
            before = state(cache)
            assert before[0] == [b"keep", b"third", b"also"]
            held = [cache.peek(key) for key in before[0]]

            def unchanged() -> None:
                assert state(cache) == before

            check_refused_without_permission(places, cache, unchanged)
            if mode == "object":  # the very objects held before
                assert all(a is b for a, b in zip(held, map(cache.peek, before[0])))
            assert recorder.calls == []

        as_nobody(checks)


@pytest.mark.skipif(os.name != "posix", reason="a directory is flushed on POSIX only")
@pytest.mark.parametrize("mode", ["bytes", "object"])
def test_a_save_flushes_the_whole_file_renames_it_then_flushes_the_directory(
    make_cache: Any, tmp_path: Any, monkeypatch: Any, mode: str
) -> None:
    """The order that makes a save crash-safe, as the writer calls the OS: the temporary file
    flushed to disk (os.fsync) holding the complete snapshot, then renamed over the target
    (os.replace), then the directory flushed so that the rename itself is on disk."""
    cache = make_cache(8, mode=mode)
    cache.put("a", b"1")
    cache.put("b", b"2" * 3000)
    path = str(tmp_path / "synced.afcs")
    events: List[Tuple[Any, ...]] = []
    opened: Dict[int, str] = {}
    real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

    def open_(name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(name, flags, *args, **kwargs)
        opened[fd] = os.fspath(name)
        return fd

    def fsync(fd: Any) -> None:
        real_fsync(fd)
        name = opened[fd if isinstance(fd, int) else fd.fileno()]
        if os.path.isdir(name):
            events.append(("fsync directory", name))
        else:
            events.append(("fsync", name, read_bytes(name)))

    def replace(source: Any, target: Any) -> None:
        events.append(("replace", os.fspath(source), os.fspath(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    cache.save(path)
    monkeypatch.undo()
    assert [event[0] for event in events] == ["fsync", "replace", "fsync directory"], events
    temp = events[0][1]
    assert os.path.dirname(temp) == str(tmp_path) and temp.endswith(".tmp")
    assert os.path.basename(temp).startswith(".synced.afcs.")
    assert events[0][2] == read_bytes(path), "the file was flushed before it was complete"
    fmt.verify(path)
    assert events[1][1:] == (temp, path)
    assert events[2][1] == str(tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/null") or os.name != "posix", reason="no /dev/null")
def test_a_device_is_never_replaced_by_a_snapshot(make_cache: Any) -> None:
    """The rename of an atomic save would put a regular file in a device's place (as root,
    /dev/null itself): refused before anything is written."""
    cache = make_cache(4)
    cache.put("a", b"1")
    with pytest.raises(SnapshotFileError) as info:
        cache.save("/dev/null")
    assert info.value.kind == "io" and "not a regular file" in str(info.value)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_gets_racing_a_load_see_the_old_or_the_new_value(make_cache: Any, tmp_path: Any) -> None:
    source = make_cache(64)
    source.put_many([(b"k%02d" % i, b"new") for i in range(64)])
    path = tmp_path / "new.afcs"
    source.save(path)
    target = make_cache(64)
    target.put_many([(b"k%02d" % i, b"old") for i in range(64)])
    seen: List[Any] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.extend(target.get_many([b"k%02d" % i for i in range(64)]))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(20):
        target.load(path)
    stop.set()
    for t in threads:
        t.join()
    assert set(seen) <= {b"old", b"new"}, "a key both states hold is never missing"
    assert target.items() == source.items()


@pytest.mark.parametrize("mode", ["bytes", "object"])
def test_saves_racing_puts_each_hold_one_moment_of_the_cache(
    make_cache: Any, tmp_path: Any, mode: str
) -> None:
    # One thread puts k1, k2, ... (after each, k0 again with a new value) and another reads,
    # while this one saves ten times: each file must hold one moment of the cache: k0..km
    # with nothing missing, in the order they were put (k0 and the keys read aside), km's
    # value, and k0's from the put before or after km's.
    def value(tag: str, i: int) -> Any:
        return b"%s%d" % (tag.encode(), i) if mode == "bytes" else (tag, i)

    def key(i: int) -> bytes:
        return b"k%d" % i

    cache = make_cache(1_000_000, mode=mode)
    cache.put(key(0), value("0:", 0))
    stop = threading.Event()

    def put() -> None:
        # At most 100k keys, far from the bound: on PyPy the puts can outrun the saves (each
        # slower as the cache grows) until the cache is full and evicts, which the checks
        # below do not allow for.
        i = 1
        while not stop.is_set() and i < 100_000:
            cache.put(key(i), value("v", i))
            cache.put(key(0), value("0:", i))
            i += 1

    def read() -> None:
        while not stop.is_set():
            cache.get_many([key(i) for i in range(1, 50)])

    workers = [threading.Thread(target=put), threading.Thread(target=read)]
    for worker in workers:
        worker.start()
    saved: List[List[Any]] = []
    path = tmp_path / "racing.afcs"
    try:
        while len(saved) < 10:
            cache.save(path)
            loaded = make_cache(1_000_000, mode=mode)
            loaded.load(path)
            saved.append(loaded.items()[::-1])  # least recently used first
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    sizes = [len(items) for items in saved]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0], sizes  # the puts ran meanwhile
    for items in saved:
        m = len(items) - 1
        got = dict(items)
        assert sorted(got, key=lambda k: int(k[1:])) == [key(i) for i in range(m + 1)], m
        unread = [k for k, _ in items if int(k[1:]) >= 50]
        assert unread == [key(i) for i in range(50, m + 1)], m
        assert m == 0 or got[key(m)] == value("v", m)
        assert got[key(0)] in (value("0:", m - 1), value("0:", m)), m


# ----- object mode: codecs ------------------------------------------------------------------


def test_object_mode_saves_through_a_codec_of_its_own(make_cache: Any, tmp_path: Any) -> None:
    cache = make_cache(8, mode="object")
    cache.put("a", {"x": [1, 2]})
    cache.put("b", "text")
    path = tmp_path / "json.afcs"
    info = cache.save(path, codec=JsonCodec)
    assert info.value_encoding == fmt.ENCODING_CODEC
    header, entries = fmt.read(path)
    assert [(e.key, e.value, e.weight) for e in entries] == [
        (b"a", b'{"x": [1, 2]}', 1),
        (b"b", b'"text"', 1),
    ]
    target = make_cache(8, mode="object")
    target.load(path, codec=JsonCodec)
    assert target.items() == [(b"b", "text"), (b"a", {"x": [1, 2]})]
    # The pickle module itself is the default codec.
    cache.save(path, codec=pickle)  # type: ignore[arg-type]
    assert fmt.read(path)[0].value_encoding == fmt.ENCODING_PICKLE


def test_the_codec_runs_with_the_cache_unlocked(make_cache: Any, tmp_path: Any) -> None:
    # Encoding runs after the entries were taken under the lock, while the file is written:
    # another thread's put completes meanwhile (it would wait for a save holding the lock).
    cache = make_cache(8000, mode="object")
    for i in range(5000):
        cache.put(b"k%d" % i, i)
    done: List[bool] = []

    class PutMeanwhile:
        @staticmethod
        def dumps(obj: Any) -> bytes:
            if obj == 4000:  # far into the save: runs were written before
                other = threading.Thread(target=lambda: done.append(cache.put("new", 1)))
                other.start()
                other.join(5)
                done.append(not other.is_alive())
            return pickle.dumps(obj)

        loads = staticmethod(pickle.loads)

    cache.save(tmp_path / "unlocked.afcs", codec=PutMeanwhile)  # type: ignore[arg-type]
    assert done[-1], "a put waited for the save's encoding"
    assert "new" in cache and fmt.verify(str(tmp_path / "unlocked.afcs")).entry_count == 5000


def test_an_object_that_cannot_be_encoded_is_named(make_cache: Any, tmp_path: Any) -> None:
    cache = make_cache(8, mode="object")
    cache.put("fine", 1)
    cache.put(b"\x00lock", threading.Lock())
    path = tmp_path / "x.afcs"
    with pytest.raises(SnapshotError, match=r"key b'\\x00lock'.*pickle codec cannot encode lock"):
        cache.save(path)
    assert not os.path.exists(path)

    class Text:
        @staticmethod
        def dumps(obj: Any) -> Any:
            return str(obj)

        loads = staticmethod(str)

    with pytest.raises(SnapshotError, match=r"key b'fine'.*Text codec returned str, not bytes"):
        cache.save(path, codec=Text)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_a_value_that_cannot_be_decoded_is_named_and_the_cache_unchanged(
    make_cache: Any, tmp_path: Any
) -> None:
    entries = [fmt.Entry(b"good", b'{"a": 1}'), fmt.Entry(b"bad", b"{not json")]
    path = write_bytes(tmp_path / "bad.afcs", encode(entries, fmt.ENCODING_CODEC))
    cache = make_cache(8, mode="object")
    cache.put("keep", [1])
    named = r"cannot load the value of key b'bad' \(entry 2\)"
    assert_load_refused(cache, path, SnapshotError, named, codec=JsonCodec)
    # Pickles that do not unpickle, the same.
    path = write_bytes(tmp_path / "bad-pickle.afcs", encode([fmt.Entry(b"p", b"\x80junk")], 1))
    assert_load_refused(cache, path, SnapshotError, r"key b'p'.*pickle codec cannot decode")


def test_a_value_that_cannot_be_decoded_far_into_the_file_is_named_by_its_entry(
    make_cache: Any, tmp_path: Any
) -> None:
    # 3 MB of entries (the reader hands them over in a few batches): the entry's number counts
    # every entry before it, in every batch.
    entries = [fmt.Entry(b"k%06d" % i, b'[%d, "%s"]' % (i, b"x" * 80)) for i in range(30_000)]
    entries[25_000] = fmt.Entry(b"bad one", b"{not json")
    path = write_bytes(tmp_path / "far.afcs", encode(entries, fmt.ENCODING_CODEC))
    assert os.path.getsize(path) > 3_000_000
    cache = make_cache(40_000, mode="object")
    cache.put("keep", [1])
    assert_load_refused(
        cache, path, SnapshotError, r"key b'bad one' \(entry 25001\)", codec=JsonCodec
    )
    entries[25_000] = fmt.Entry(b"good one", b"[1]")
    write_bytes(tmp_path / "far.afcs", encode(entries, fmt.ENCODING_CODEC))
    assert cache.load(path, codec=JsonCodec).entries_kept == 30_000
    assert cache.peek(b"good one") == [1] and cache.peek(b"k029999")[0] == 29_999


def test_object_mode_weighs_loaded_values_with_its_getsizeof(
    make_cache: Any, tmp_path: Any
) -> None:
    source = make_cache(8, mode="object", getsizeof=len, max_bytes=100)
    source.put("a", "x" * 10)
    source.put("b", "y" * 20)
    path = tmp_path / "w.afcs"
    source.save(path)
    assert [e.weight for e in fmt.read(path)[1]] == [10, 20], "the weights are saved"
    # Another weigher: the loaded objects are weighed as a put would weigh them.
    target = make_cache(8, mode="object", getsizeof=lambda s: 2 * len(s), max_bytes=50)
    assert target.load(path).entries_kept == 1
    assert target.items() == [(b"b", "y" * 20)] and target.weight == 40
    plain = make_cache(8, mode="object")
    plain.load(path)
    assert plain.weight == 2

    # A getsizeof that fails on a loaded object fails the load, as it fails a put.
    def fussy(value: str) -> int:
        if value.startswith("y"):
            raise RuntimeError("no y")
        return 1

    picky = make_cache(8, mode="object", getsizeof=fussy, max_bytes=10)
    picky.put("keep", "x")
    assert_load_refused(picky, path, RuntimeError, "no y")


# ----- no value kept alive ------------------------------------------------------------------


def dead(ref: "weakref.ref[Any]") -> bool:
    gc.collect()
    return ref() is None


def test_a_load_releases_the_old_values_and_a_failed_load_keeps_nothing(
    make_cache: Any, tmp_path: Any
) -> None:
    source = make_cache(8, mode="object")
    for i in range(4):
        source.put(f"new{i}", Value(f"n{i}"))
    good = tmp_path / "good.afcs"
    source.save(good)
    source.close()

    told: List[Any] = []
    cache = make_cache(8, mode="object", on_evict=lambda k, v, c: told.append(c))
    old = [Value(f"o{i}") for i in range(3)]
    for i, value in enumerate(old):
        cache.put(f"old{i}", value)
    refs = [weakref.ref(v) for v in old]
    del old, value
    cache.load(good)
    assert told == ["cleared"] * 3
    told.clear()
    assert all(dead(r) for r in refs), "a value the load replaced is still alive"
    loaded = [weakref.ref(v) for v in cache.values()]
    assert not any(dead(r) for r in loaded)

    # A load that fails on its last entry: the values decoded before it do not survive.
    seen: List["weakref.ref[Any]"] = []

    class Failing:
        @staticmethod
        def dumps(obj: Any) -> bytes:
            return pickle.dumps(obj)

        @staticmethod
        def loads(data: bytes) -> Any:
            value = pickle.loads(data)
            if value.tag == "n3":
                raise ValueError("the last one")
            seen.append(weakref.ref(value))
            return value

    source = make_cache(8, mode="object")
    for i in range(4):
        source.put(f"new{i}", Value(f"n{i}"))
    codec_file = tmp_path / "codec.afcs"
    source.save(codec_file, codec=Failing)
    source.close()
    with pytest.raises(SnapshotError):
        cache.load(codec_file, codec=Failing)
    assert len(seen) == 3 and all(dead(r) for r in seen), "a failed load kept a decoded value"
    assert not any(dead(r) for r in loaded), "a failed load changed the cache"
    cache.clear()
    assert all(dead(r) for r in loaded)


def test_putting_after_a_load_evicts_in_the_loaded_order(
    make_cache: Any, tmp_path: Any, recorder: Any
) -> None:
    source = make_cache(3)
    for key in ("a", "b", "c"):
        source.put(key, b"1")
    source.get("a")
    path = tmp_path / "abc.afcs"
    source.save(path)
    target = make_cache(3, on_evict=recorder)
    target.load(path)
    target.get("b")
    target.put("d", b"2")
    assert recorder.calls == [(b"c", b"1", "evicted")]
    assert target.keys() == [b"d", b"b", b"a"]
    assert target.stats().hits == 1


# ----- memory: large values and many entries are streamed, never held twice -----------------

MIB = 1 << 20
#: The large value of the memory tests: many times every buffer of a save or a load (1 MiB).
LARGE = 24 * MIB


def traced_peak(action: Callable[..., Any], *args: Any) -> int:
    """The peak of the memory Python allocated while ``action(*args)`` ran (``tracemalloc``;
    the native engine's own memory is not counted, but a native cache's values are Python's)."""
    gc.collect()
    tracemalloc.start()
    try:
        action(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@needs_tracemalloc
@pytest.mark.parametrize("mode", ["bytes", "object"])
def test_a_large_value_is_loaded_without_a_copy(make_cache: Any, tmp_path: Any, mode: str) -> None:
    """A load reads the value into the bytes object the cache keeps ("bytes" mode) or that the
    codec decodes ("object" mode, where the encoded value and the decoded one exist together
    for a moment): its memory peak is that, plus buffers."""
    value = os.urandom(LARGE)
    source = make_cache(4, mode=mode)
    source.put("before", b"1")
    source.put("large", value)
    source.put("after", b"2")
    path = tmp_path / "large.afcs"
    source.save(path)
    source.close()
    target = make_cache(4, mode=mode)
    peak = traced_peak(target.load, path)
    copies = 1 if mode == "bytes" else 2
    assert peak < copies * LARGE + LARGE // 4 + 4 * MIB, f"{peak / MIB:.1f} MiB"
    assert target.peek("large") == value and target.keys() == [b"after", b"large", b"before"]


@needs_tracemalloc
def test_a_large_value_is_saved_without_a_copy(make_cache: Any, tmp_path: Any) -> None:
    """A save writes the stored value object itself, between chunks: its memory peak is a few
    buffers, whatever the value's size."""
    cache = make_cache(4)
    cache.put("before", b"1")
    cache.put("large", os.urandom(LARGE))
    cache.put("after", b"2")
    path = tmp_path / "large.afcs"
    peak = traced_peak(cache.save, path)
    assert peak < LARGE // 4 + 4 * MIB, f"{peak / MIB:.1f} MiB"
    assert fmt.read(path)[1][1] == fmt.Entry(b"large", cache.peek("large"))


@needs_tracemalloc
def test_an_object_cache_encodes_while_it_writes(make_cache: Any, tmp_path: Any) -> None:
    """8,000 values of 4 KiB: each run of encoded values is written and dropped before the next
    is encoded, so a save's memory peak is a small part of the file (the whole encoded body
    was in memory at once before)."""
    cache = make_cache(10_000, mode="object")
    for i in range(8000):
        cache.put(b"k%d" % i, os.urandom(4096))
    path = tmp_path / "many.afcs"
    peak = traced_peak(cache.save, path)
    size = os.path.getsize(path)
    assert size > 30 * MIB
    assert peak < 8 * MIB, f"{peak / MIB:.1f} MiB for a file of {size / MIB:.1f} MiB"
    target = make_cache(10_000, mode="object")
    assert target.load(path).entries_kept == 8000 and target.items() == cache.items()


def test_an_object_cache_saves_the_bytes_of_its_encoded_entries(
    make_cache: Any, tmp_path: Any
) -> None:
    # Many runs of entries of every size, with TTLs and weights: the bytes of the entries
    # encoded first and written at once (the header written last must be the same).
    rng = random.Random(5)
    clock = ManualClock(100)
    cache = make_cache(30_000, mode="object", timer=clock, getsizeof=len)
    expected = []
    for i in range(20_000):
        value = bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 40, 700])))
        ttl = rng.choice([None, 5, 1000])
        cache.put(b"k%d" % i, value, ttl=ttl)
        expected.append(
            fmt.Entry(
                b"k%d" % i,
                pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL),
                None if ttl is None else ttl * 10**9,
                len(value),
            )
        )
    path = tmp_path / "encoded.afcs"
    cache.save(path)
    assert read_bytes(path) == encode(expected, fmt.ENCODING_PICKLE)


def test_a_value_that_cannot_be_encoded_after_runs_were_written_leaves_nothing(
    make_cache: Any, tmp_path: Any
) -> None:
    path = tmp_path / "keep.afcs"
    cache = make_cache(8000, mode="object")
    cache.put("old", 1)
    cache.save(path)
    before = read_bytes(path)
    lock = threading.Lock()
    for i in range(6000):
        cache.put(b"k%d" % i, "v" * 400 if i != 5000 else lock)
    temp_sizes = []

    class Watching:
        """pickle, noting what the temporary file holds when the lock comes."""

        @staticmethod
        def dumps(obj: Any) -> bytes:
            if obj is lock:
                temp_sizes.extend(
                    os.path.getsize(tmp_path / name)
                    for name in os.listdir(tmp_path)
                    if name.endswith(".tmp")
                )
            return pickle.dumps(obj)

        loads = staticmethod(pickle.loads)

    for codec in (None, Watching):
        with pytest.raises(
            SnapshotError, match=r"key b'k5000'.*codec cannot encode lock.*nothing was written"
        ):
            cache.save(path, codec=codec)  # type: ignore[arg-type]
        assert read_bytes(path) == before and os.listdir(tmp_path) == ["keep.afcs"]
    assert temp_sizes and min(temp_sizes) > 1 * MIB, "the runs before were written"


@needs_tracemalloc
def test_a_huge_claimed_length_allocates_nothing_for_it_in_a_load(
    make_cache: Any, tmp_path: Any
) -> None:
    """A file whose one entry claims a 4 GiB value (and one whose body claims 1 TiB too):
    refused, and never more than a few MiB allocated for it. (A stream whose length is not
    known is the format module's to read: test_snapshot_format.py; a load reads files only.)"""
    data = bytearray(encode([fmt.Entry(b"k", b"v" * 100)]))
    struct.pack_into("<I", data, 69, 2**32 - 4)
    value_only = reseal(bytes(data))
    struct.pack_into("<Q", data, 32, 1 << 40)
    body_too = reseal(bytes(data))
    cache = make_cache(4)
    cache.put("keep", b"me")
    kinds = []

    def load(path: str) -> None:
        with pytest.raises(SnapshotFileError) as info:
            cache.load(path)
        kinds.append(info.value.kind)

    for data in (value_only, body_too):
        before = state(cache)
        path = write_bytes(tmp_path / "claim.afcs", data)
        assert traced_peak(load, path) < 4 * MIB
        assert state(cache) == before
    assert kinds == ["corrupt", "truncated"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_load_refuses_a_pipe_or_a_device_at_once(make_cache: Any, tmp_path: Any) -> None:
    """As the engine does: only a regular file is loaded. A FIFO without a writer is refused at
    once (its open does not wait for a writer), as is a device; the cache is unchanged."""
    pipe = str(tmp_path / "pipe")
    os.mkfifo(pipe)
    cache = make_cache(4)
    cache.put("keep", b"me")
    before = state(cache)
    outcome: List[BaseException] = []

    def load(path: str) -> None:
        try:
            cache.load(path)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            outcome.append(e)

    for path in (pipe, "/dev/null"):
        loader = threading.Thread(target=load, args=(path,), daemon=True)
        loader.start()
        loader.join(10)
        if loader.is_alive():  # unblock it, then fail
            with open(pipe, "wb"):
                pass
            pytest.fail(f"the load of {path} waited for a writer")
        error = outcome.pop()
        assert isinstance(error, SnapshotFileError) and error.kind == "io", error
        assert "not a regular file" in str(error) and path in str(error), error
        assert state(cache) == before

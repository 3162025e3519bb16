"""``PackedCache`` and ``Packed``: the batch API over packed buffers, on every backend.

Both backends must give the same results and statistics as each other and as ``Cache`` in
bytes mode (one shard: one exact LRU), for every operation; the native one must also hold up
under threads that call it without any Python lock.
"""

from __future__ import annotations

import os
import random
import threading
from array import array
from typing import Any, Dict, List, Optional

import pytest
from _unprivileged import as_nobody, check_refused_without_permission, no_permission_places

import alphaforge_cache
from alphaforge_cache import (
    MISSING,
    CacheClosedError,
    EntryTooHeavyError,
    ManualClock,
    Packed,
    PackedHits,
)

PACKED: List[Any] = [alphaforge_cache.PythonPackedCache]
IDS = ["python"]
if alphaforge_cache.NativePackedCache is not None:
    PACKED.append(alphaforge_cache.NativePackedCache)
    IDS.append("native")


@pytest.fixture(params=PACKED, ids=IDS)
def packed_cache(request: Any) -> Any:
    """A ``PackedCache`` class of one backend."""
    return request.param


def keys_of(*items: bytes) -> Packed:
    return Packed.of(items)


# ----- Packed --------------------------------------------------------------------------------


def test_packed_of_fixed_and_explicit_lengths_hold_the_same_strings() -> None:
    of = Packed.of([b"ab", "cd", bytearray(b"ef")])
    fixed = Packed.fixed(b"abcdef", 2)
    explicit = Packed(b"abcdef", [2, 2, 2])
    for packed in (of, fixed, explicit):
        assert len(packed) == 3
        assert list(packed) == [b"ab", b"cd", b"ef"]
        assert packed[1] == b"cd" and packed[-1] == b"ef"
        assert packed[0:2] == [b"ab", b"cd"]
        assert packed.nbytes == 6
        assert bytes(packed.data) == b"abcdef" and list(packed.lengths) == [2, 2, 2]
    assert of == fixed == explicit
    assert Packed.of([b"a", b"bc"]) != Packed.of([b"ab", b"c"])
    assert "Packed([b'ab', b'cd', b'ef'], n=3)" == repr(of)


def test_packed_takes_any_contiguous_buffer_and_variable_lengths() -> None:
    data = bytearray(b"xyyzzz")
    packed = Packed(data, array("Q", [1, 2, 3]))
    fixed = Packed.fixed(data, 3)
    data[0:1] = b"!"  # a writable buffer is copied: changing it later changes neither
    data.extend(b"more")
    assert list(packed) == [b"x", b"yy", b"zzz"] and list(fixed) == [b"xyy", b"zzz"]
    source = bytearray(b"abcd")
    read_only = Packed.fixed(memoryview(source).toreadonly(), 2)  # read-only, yet changeable
    source[0:1] = b"!"
    assert list(read_only) == [b"ab", b"cd"]
    whole = b"0123456789"
    assert list(Packed.fixed(memoryview(whole)[2:6], 2)) == [b"23", b"45"]  # a view of bytes
    assert list(Packed(memoryview(b"abcd"), [0, 4, 0])) == [b"", b"abcd", b""]
    assert list(Packed(array("B", b"ab"), [1, 1])) == [b"a", b"b"]
    assert len(Packed(b"", [])) == 0 and list(Packed.fixed(b"", 8)) == []


def test_packed_copies_the_lengths_it_is_given() -> None:
    lengths = array("Q", [1, 1])
    packed = Packed(b"ab", lengths)
    lengths[0] = 2
    assert list(packed) == [b"a", b"b"]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Packed(b"abc", [1, 1]), ValueError, "add up to 2 bytes, but data holds 3"),
        (lambda: Packed(b"abc", [5]), ValueError, "add up to 5"),
        (lambda: Packed(b"abc", [-1, 4]), ValueError, "between 0 and 2\\*\\*64 - 1"),
        (lambda: Packed(b"abc", b"\x03"), TypeError, "sequence of ints"),
        (lambda: Packed(b"abc", [1.5]), TypeError, "sequence of ints"),
        (lambda: Packed("abc", [3]), TypeError, "data must be bytes-like"),
        (lambda: Packed.fixed(b"abc", 2), ValueError, "not a multiple of the width 2"),
        (lambda: Packed.fixed(b"abc", 0), ValueError, "width must be > 0"),
        (lambda: Packed.fixed(b"abc", True), TypeError, "width must be an int"),
        (lambda: Packed.of([b"a", 3]), TypeError, "bytes-like or str"),
    ],
)
def test_packed_refuses_what_does_not_add_up(make: Any, error: Any, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_packed_indexes_like_a_sequence() -> None:
    packed = Packed.fixed(b"aabbcc", 2)
    with pytest.raises(IndexError):
        packed[3]
    with pytest.raises(IndexError):
        packed[-4]
    assert packed.index(b"bb") == 1 and b"cc" in packed and b"dd" not in packed


# ----- the cache -----------------------------------------------------------------------------


def test_get_many_reports_hits_values_and_the_missing_keys(packed_cache: Any) -> None:
    with packed_cache(8, shards=1) as cache:
        cache.put_many(keys_of(b"a", b"bb", b"ccc"), Packed.of([b"1", b"", b"333"]))
        hits = cache.get_many(keys_of(b"a", b"x", b"ccc", b"bb", b"yy"))
        assert isinstance(hits, PackedHits)
        assert len(hits) == 5 and hits.found == 3
        assert list(hits) == [b"1", None, b"333", b"", None]
        assert hits[2] == b"333" and hits[1] is None and hits[-1] is None
        assert hits[0:3] == [b"1", None, b"333"]
        assert list(hits.missing) == [b"x", b"yy"] and list(hits.missing_at) == [1, 4]
        view = hits.view(2)
        assert view is not None and view.readonly and view.tobytes() == b"333"
        assert hits.view(1) is None
        assert hits.offsets[1] == MISSING and hits.lengths[1] == MISSING
        for i, value in enumerate(hits):
            if value is not None:
                start = hits.offsets[i]
                assert bytes(hits.values[start : start + hits.lengths[i]]) == value
        assert repr(hits) == "PackedHits(n=5, found=3)"
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.inserts, stats.entries) == (3, 2, 3, 3)
        assert stats.weight == cache.weight == 2 + 2 + 6


def test_the_missing_keys_feed_put_many(packed_cache: Any) -> None:
    with packed_cache(100, shards=1) as cache:
        cache.put_many(Packed.fixed(b"k1k2", 2), Packed.fixed(b"v1v2", 2))
        hits = cache.get_many(Packed.fixed(b"k1k3k2k4", 2))
        cache.put_many(hits.missing, Packed.fixed(b"V3V4", 2))
        assert list(cache.get_many(Packed.fixed(b"k1k2k3k4", 2))) == [b"v1", b"v2", b"V3", b"V4"]
        # ... also into another cache, and before Python looked at them
        hits = cache.get_many(Packed.fixed(b"k9k8", 2))
        with packed_cache(10, shards=1) as other:
            other.put_many(hits.missing, Packed.fixed(b"xxyy", 2))
            assert other.get(b"k8") == b"yy"


def test_an_empty_batch_is_no_operation(packed_cache: Any) -> None:
    with packed_cache(4) as cache:
        hits = cache.get_many(Packed.of([]))
        assert len(hits) == 0 and hits.found == 0 and len(hits.missing) == 0
        cache.put_many(Packed.of([]), Packed.of([]))
        assert len(cache) == 0 and cache.stats().misses == 0


def test_single_key_methods(packed_cache: Any) -> None:
    with packed_cache(2, shards=1) as cache:
        cache.put("k", bytearray(b"v"))
        cache.put(b"j", memoryview(b"w"))
        assert cache.get(b"k") == b"v" and cache.get("j") == b"w"
        assert cache.peek(b"k") == b"v" and cache.get(b"nope") is None
        assert b"k" in cache and b"nope" not in cache
        cache.put(b"l", b"x")  # evicts the least recently used: k (peeked, not touched)
        assert cache.peek(b"k") is None and cache.peek(b"j") == b"w"
        assert cache.remove(b"j") is True and cache.remove(b"j") is False
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.evictions, stats.removals) == (2, 1, 1, 1)
        cache.reset_stats()
        assert cache.stats().hits == 0 and len(cache) == 1
        cache.clear()
        assert len(cache) == 0 and cache.weight == 0


def test_bounds_ttl_and_the_clock(packed_cache: Any) -> None:
    clock = ManualClock()
    with packed_cache(10, max_bytes=20, ttl=5.0, shards=1, timer=clock) as cache:
        cache.put_many(Packed.fixed(b"aabb", 2), Packed.fixed(b"12345678", 4))  # 6 bytes each
        cache.put(b"cc", b"4444", ttl=1.0)
        cache.put_many(Packed.of([b"dd"]), Packed.of([b"5555"]), ttl=60)  # evicts aa
        assert list(cache.get_many(Packed.fixed(b"aabbccdd", 2))) == [
            None,
            b"5678",
            b"4444",
            b"5555",
        ]
        clock.advance(2.0)  # cc expires
        assert cache.get(b"cc") is None
        clock.advance(4.0)  # bb expires (the default 5 s), dd lives on
        hits = cache.get_many(Packed.fixed(b"bbdd", 2))
        assert list(hits) == [None, b"5555"]
        stats = cache.stats()
        assert (stats.evictions, stats.expirations, stats.entries) == (1, 2, 1)
        with pytest.raises(EntryTooHeavyError):
            cache.put_many(Packed.fixed(b"eeff", 2), Packed.of([b"1", b"x" * 30]))
        assert cache.peek(b"ee") is None  # all or none
        with pytest.raises(EntryTooHeavyError):
            cache.put(b"gg", b"x" * 30)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: c.get_many([b"a"]), TypeError, "keys must be an alphaforge_cache.Packed"),
        (lambda c: c.put_many(Packed.of([b"a"]), [b"v"]), TypeError, "values must be"),
        (
            lambda c: c.put_many(Packed.of([b"a", b"b"]), Packed.of([b"v"])),
            ValueError,
            "2 keys but 1 values",
        ),
        (lambda c: c.put(b"a", "text"), TypeError, "value must be bytes-like"),
        (lambda c: c.put(3, b"v"), TypeError, "bytes-like or str"),
        (lambda c: c.put(b"a", b"v", ttl=0), ValueError, "ttl must be > 0"),
        (lambda c: c.put_many(Packed.of([]), Packed.of([]), ttl=-1), ValueError, "ttl"),
    ],
)
def test_bad_calls_are_refused_clearly(
    packed_cache: Any, call: Any, error: Any, message: str
) -> None:
    with packed_cache(4) as cache:
        with pytest.raises(error, match=message):
            call(cache)
        assert len(cache) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_entries": 0}, ValueError, "max_entries"),
        ({"max_entries": 4, "shards": 5}, ValueError, "shards"),
        ({"max_entries": 4, "max_bytes": 0}, ValueError, "max_bytes"),
        ({"max_entries": 4, "ttl": "1"}, TypeError, "ttl"),
        ({"max_entries": 4, "timer": 3}, TypeError, "ManualClock"),
    ],
)
def test_bad_settings_are_refused(packed_cache: Any, kwargs: Any, error: Any, message: str) -> None:
    with pytest.raises(error, match=message):
        packed_cache(**kwargs)


def test_a_closed_cache_refuses_every_call(packed_cache: Any) -> None:
    cache = packed_cache(4)
    cache.put(b"a", b"1")
    cache.close()
    cache.close()  # harmless
    calls = [
        lambda: cache.get_many(Packed.of([b"a"])),
        lambda: cache.put_many(Packed.of([b"a"]), Packed.of([b"1"])),
        lambda: cache.get(b"a"),
        lambda: cache.peek(b"a"),
        lambda: cache.put(b"a", b"1"),
        lambda: cache.remove(b"a"),
        lambda: len(cache),
        lambda: cache.weight,
        lambda: cache.stats(),
        lambda: cache.reset_stats(),
        lambda: cache.clear(),
    ]
    for call in calls:
        with pytest.raises(CacheClosedError):
            call()
    assert "closed" in repr(cache)


def test_values_longer_than_the_reserve_are_read_again_without_counting_twice(
    packed_cache: Any, monkeypatch: Any
) -> None:
    if packed_cache.backend == "native":
        from alphaforge_cache import _packed_native

        monkeypatch.setattr(_packed_native, "_RESERVE_LIMIT", 3)  # room for 3 bytes of values
    with packed_cache(8, shards=1) as cache:
        cache.put_many(Packed.of([b"a", b"b", b"c"]), Packed.of([b"12", b"3456", b"7"]))
        hits = cache.get_many(Packed.of([b"b", b"x", b"c", b"a"]))
        assert list(hits) == [b"3456", None, b"7", b"12"]
        assert list(hits.missing) == [b"x"] and list(hits.missing_at) == [1]
        assert cache.stats().hits == 3 and cache.stats().misses == 1
        # recency as a get_many's: a is now the most recent, b the least
        new = [bytes([i]) * 9 for i in range(6)]  # 9 entries for 8 places: one goes
        cache.put_many(Packed.of(new), Packed.of([b""] * 6))
        assert cache.peek(b"b") is None and cache.peek(b"a") == b"12"


# ----- the same results everywhere -----------------------------------------------------------


def _replay(cache: Any, ops: List[Any], clock: ManualClock) -> List[Any]:
    """Runs ``ops`` on ``cache``; everything each returned, and the stats after it."""
    seen: List[Any] = []
    for op in ops:
        kind = op[0]
        try:
            if kind == "get_many":
                hits = cache.get_many(op[1])
                got: Any = (list(hits), list(hits.missing), list(hits.missing_at))
            elif kind == "put_many":
                got = cache.put_many(op[1], op[2], op[3])
            elif kind == "get":
                got = cache.get(op[1])
            elif kind == "peek":
                got = cache.peek(op[1])
            elif kind == "put":
                got = cache.put(op[1], op[2], op[3])
            elif kind == "remove":
                got = cache.remove(op[1])
            elif kind == "advance":
                got = clock.advance(op[1])
            else:
                got = cache.clear()
        except EntryTooHeavyError:
            got = "too heavy"
        seen.append((op[0], got, cache.stats(), len(cache)))
    return seen


def _random_ops(rng: random.Random, count: int) -> List[Any]:
    universe = [bytes([65 + i]) * rng.randint(1, 3) for i in range(24)]

    def value() -> bytes:
        return bytes([rng.randrange(256)]) * rng.choice([0, 1, 4, 9, 40])

    def ttl() -> Optional[float]:
        return rng.choice([None, None, 0.5, 3.0])

    ops: List[Any] = []
    for _ in range(count):
        roll = rng.random()
        keys = rng.sample(universe, rng.randint(0, 8))
        if roll < 0.3:
            ops.append(("get_many", Packed.of(keys + rng.sample(universe, 2))))
        elif roll < 0.55:
            ops.append(("put_many", Packed.of(keys), Packed.of([value() for _ in keys]), ttl()))
        elif roll < 0.65:
            ops.append(("get", rng.choice(universe)))
        elif roll < 0.7:
            ops.append(("peek", rng.choice(universe)))
        elif roll < 0.85:
            ops.append(("put", rng.choice(universe), value(), ttl()))
        elif roll < 0.92:
            ops.append(("remove", rng.choice(universe)))
        elif roll < 0.99:
            ops.append(("advance", rng.choice([0.1, 0.6, 2.0])))
        else:
            ops.append(("clear",))
    return ops


class _CacheAsPacked:
    """``Cache`` in bytes mode, called as a ``PackedCache``: the reference both must match."""

    def __init__(self, **kwargs: Any) -> None:
        self.cache = alphaforge_cache.PythonCache(mode="bytes", **kwargs)

    def get_many(self, keys: Packed) -> Any:
        values = self.cache.get_many(list(keys))
        at = [i for i, v in enumerate(values) if v is None]

        class Hits(list):  # type: ignore[type-arg]
            missing = [keys[i] for i in at]
            missing_at = at

        return Hits(values)

    def put_many(self, keys: Packed, values: Packed, ttl: Optional[float]) -> None:
        self.cache.put_many(list(zip(keys, values)), ttl)

    def get(self, key: bytes) -> Any:
        return self.cache.get(key)

    def peek(self, key: bytes) -> Any:
        return self.cache.peek(key)

    def put(self, key: bytes, value: bytes, ttl: Optional[float]) -> None:
        self.cache.put(key, value, ttl)

    def remove(self, key: bytes) -> bool:
        return self.cache.pop(key, None) is not None

    def clear(self) -> None:
        self.cache.clear()

    def stats(self) -> Any:
        return self.cache.stats()

    def __len__(self) -> int:
        return len(self.cache)


@pytest.mark.parametrize("seed", range(12))
def test_every_backend_gives_the_results_of_cache_in_bytes_mode(seed: int) -> None:
    ops = _random_ops(random.Random(seed), 300)
    settings: Dict[str, Any] = {"max_entries": 12, "max_bytes": 150, "ttl": 2.0, "shards": 1}
    reference_clock = ManualClock()
    expected = _replay(_CacheAsPacked(timer=reference_clock, **settings), ops, reference_clock)
    for cls in PACKED:
        clock = ManualClock()
        with cls(timer=clock, **settings) as cache:
            assert _replay(cache, ops, clock) == expected, cls.backend


# ----- threads -------------------------------------------------------------------------------


def test_threads_without_a_lock_keep_every_value_whole(packed_cache: Any) -> None:
    """Four threads get_many and put_many over shared keys: every value read is the one its key
    stands for, the bounds hold, and every get is counted."""
    cache = packed_cache(500, max_bytes=40_000)
    universe = [i.to_bytes(4, "big") * 4 for i in range(2000)]
    errors: List[BaseException] = []
    batches = 60

    def value_of(key: bytes) -> bytes:
        return key * (1 + key[3] % 5)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(batches):
                keys = rng.sample(universe, 50)
                hits = cache.get_many(Packed.of(keys))
                for key, value in zip(keys, hits):
                    assert value is None or value == value_of(key)
                missing = list(hits.missing)
                cache.put_many(hits.missing, Packed.of([value_of(k) for k in missing]))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    stats = cache.stats()
    assert stats.hits + stats.misses == 4 * batches * 50
    assert len(cache) <= 500 and cache.weight <= 40_000
    for key in universe:
        value = cache.peek(key)
        assert value is None or value == value_of(key)
    cache.close()


def _until_closed(cache: Any, outcomes: List[str]) -> None:
    keys = Packed.fixed(bytes(range(64)), 16)
    values = Packed.fixed(bytes(256), 64)
    try:
        while True:  # until the cache is closed under it
            cache.put_many(keys, values)
            cache.get_many(keys)
    except CacheClosedError:
        outcomes.append("closed")


def test_close_while_other_threads_call_never_crashes(packed_cache: Any) -> None:
    for _ in range(5):
        cache = packed_cache(100)
        outcomes: List[str] = []
        threads = [threading.Thread(target=_until_closed, args=(cache, outcomes)) for _ in range(2)]
        for thread in threads:
            thread.start()
        cache.close()
        for thread in threads:
            thread.join()
        assert outcomes == ["closed", "closed"]


def test_results_are_read_only(packed_cache: Any) -> None:
    with packed_cache(8) as cache:
        cache.put(b"k", b"value")
        hits = cache.get_many(Packed.of([b"k", b"x"]))
        for view in (memoryview(hits.values), memoryview(hits.missing.data)):
            with pytest.raises(TypeError):
                view[0] = 0
        assert list(hits) == [b"value", None] and list(hits.missing) == [b"x"]


# ----- snapshots -----------------------------------------------------------------------------


def _filled(cls: Any, clock: ManualClock) -> Any:
    cache = cls(6, shards=1, timer=clock, ttl=100.0)
    cache.put_many(Packed.of([b"a", b"bb", b"c"]), Packed.of([b"1", b"22", b""]))
    cache.put(b"d", b"4444", ttl=5.0)
    cache.put(b"e", b"5")
    cache.get(b"a")  # recency now: bb c d e a
    return cache


def test_a_snapshot_keeps_entries_recency_and_ttls(packed_cache: Any, tmp_path: Any) -> None:
    clock = ManualClock()
    path = tmp_path / "packed.afcs"
    with _filled(packed_cache, clock) as cache:
        info = cache.save(path)
        assert (info.entries, info.entries_kept, info.value_encoding) == (5, 5, 0)
        assert info.file_bytes == path.stat().st_size
    clock.advance(2.0)
    with packed_cache(6, shards=1, timer=clock) as loaded:
        loaded.put(b"old", b"gone")  # replaced by the load
        info = loaded.load(str(path))
        assert (info.entries, info.entries_kept) == (5, 5)
        assert loaded.peek(b"old") is None and len(loaded) == 5
        assert list(loaded.get_many(Packed.of([b"a", b"bb", b"c", b"d", b"e"]))) == [
            b"1",
            b"22",
            b"",
            b"4444",
            b"5",
        ]
        clock.advance(5.0)  # d had 5 s left at the save, counted from the load: gone now
        assert loaded.get(b"d") is None and loaded.get(b"e") == b"5"
    with packed_cache(2, shards=1, timer=clock) as smaller:  # keeps the most recent that fit
        info = smaller.load(path)
        assert info.entries_kept == 2 and len(smaller) == 2


def test_snapshots_cross_backends_and_cache_classes(tmp_path: Any) -> None:
    """A file any backend's PackedCache writes loads in every other and in Cache(mode="bytes"),
    and back; the native and pure-Python writers write the same bytes for the same state."""
    files = {}
    for cls in PACKED:
        clock = ManualClock(10.0)
        with _filled(cls, clock) as cache:
            files[cls.backend] = tmp_path / f"{cls.backend}.afcs"
            cache.save(files[cls.backend])
    contents = {name: path.read_bytes() for name, path in files.items()}
    assert len(set(contents.values())) == 1, "the writers differ"
    probe = Packed.of([b"a", b"bb", b"c", b"d", b"e", b"x"])
    expected = [b"1", b"22", b"", b"4444", b"5", None]
    for path in files.values():
        for cls in PACKED:
            with cls(10, shards=1, timer=ManualClock(10.0)) as cache:
                cache.load(path)
                assert list(cache.get_many(probe)) == expected
        for cache_cls in BYTE_CACHES:
            with cache_cls(10, shards=1, timer=ManualClock(10.0)) as plain:
                plain.load(path)
                assert plain.get_many(list(probe)) == expected
                back = tmp_path / "back.afcs"
                plain.save(back)
            for cls in PACKED:
                with cls(10, shards=1, timer=ManualClock(10.0)) as cache:
                    cache.load(back)
                    assert list(cache.get_many(probe)) == expected


BYTE_CACHES: List[Any] = [alphaforge_cache.PythonCache]
if alphaforge_cache.NativeCache is not None:
    BYTE_CACHES.append(alphaforge_cache.NativeCache)


def _bad_files(tmp_path: Any) -> Dict[str, Any]:
    good = tmp_path / "good.afcs"
    with alphaforge_cache.PythonCache(4, mode="bytes") as cache:
        cache.put(b"k", b"v")
        cache.save(good)
    data = good.read_bytes()
    files = {
        "missing": tmp_path / "missing.afcs",
        "directory": tmp_path,
        "empty": tmp_path / "empty.afcs",
        "not a snapshot": tmp_path / "text.afcs",
        "truncated": tmp_path / "truncated.afcs",
        "bit flipped": tmp_path / "flipped.afcs",
        "pickle values": tmp_path / "pickle.afcs",
    }
    files["empty"].write_bytes(b"")
    files["not a snapshot"].write_bytes(b"hello, this is not a snapshot file at all" * 3)
    files["truncated"].write_bytes(data[: len(data) - 3])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    files["bit flipped"].write_bytes(bytes(flipped))
    with alphaforge_cache.PythonCache(4, mode="pickle") as pickled:
        pickled.put(b"k", {"a": 1})
        pickled.save(files["pickle values"])
    return files


BAD_FILE_KINDS = {
    "missing": "io",
    "directory": "io",
    "empty": "truncated",
    "not a snapshot": "not_a_snapshot",
    "truncated": "truncated",
    "bit flipped": "corrupt",
    "pickle values": "encoding_mismatch",
}


def test_a_bad_file_fails_alike_everywhere_and_changes_nothing(tmp_path: Any) -> None:
    for what, path in _bad_files(tmp_path).items():
        kinds = set()
        told = set()  # each backend's message, and the type of its cause
        for cls in PACKED:
            with cls(4, shards=1) as cache:
                cache.put(b"kept", b"1")
                with pytest.raises(alphaforge_cache.SnapshotFileError) as caught:
                    cache.load(path)
                kinds.add(caught.value.kind)
                assert str(caught.value).count(str(path)) == 1, (what, str(caught.value))
                told.add((str(caught.value), type(caught.value.__cause__)))
                assert cache.peek(b"kept") == b"1" and len(cache) == 1, what
        assert kinds == {BAD_FILE_KINDS[what]}, (what, kinds)
        assert len(told) == 1, (what, told)  # the same words (and OSError) on every backend
        if kinds == {"io"}:
            assert all(issubclass(cause, OSError) for _, cause in told), (what, told)


def test_saving_where_it_cannot_fails_clearly(packed_cache: Any, tmp_path: Any) -> None:
    """A missing directory, a device. (A directory nobody may write in, the previous file kept:
    test_no_permission_is_refused_clearly_and_changes_nothing, as user nobody.)"""
    with packed_cache(4) as cache:
        cache.put(b"k", b"v")
        target = tmp_path / "no" / "such" / "dir.afcs"
        with pytest.raises(alphaforge_cache.SnapshotFileError) as caught:
            cache.save(target)
        assert caught.value.kind == "io"
        assert str(caught.value).startswith(f"snapshot {target}: cannot create the temporary")
        assert str(caught.value).count(str(target)) == 1, str(caught.value)
        assert isinstance(caught.value.__cause__, FileNotFoundError), repr(caught.value.__cause__)
        if os.name == "posix":  # never replaces a device (the engine's check, and the format's)
            with pytest.raises(alphaforge_cache.SnapshotFileError, match="not a regular file"):
                cache.save("/dev/null")


def _packed_state(cache: Any, keys: List[bytes]) -> Any:
    """What can be seen of a PackedCache without changing it: the values of ``keys`` (peeked),
    the length, the weight and the statistics."""
    return [cache.peek(key) for key in keys], len(cache), cache.weight, cache.stats()


def _leaving_order(cache: Any, keys: List[bytes]) -> List[bytes]:
    """The order in which ``keys`` leave as new keys are put one by one (an exact LRU with one
    shard: least recently used first). Changes the cache."""
    order: List[bytes] = []
    for n in range(2 * len(keys)):
        cache.put(b"new-%d" % n, b"")
        order += [key for key in keys if key not in order and cache.peek(key) is None]
    return order


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX permissions, checked in a fork")
def test_no_permission_is_refused_clearly_and_changes_nothing(packed_cache: Any) -> None:
    """A snapshot nobody may read, and a directory nobody may write in (a previous snapshot
    there, or a new name): ``SnapshotFileError`` of kind ``"io"`` naming the path and the OS's
    "Permission denied"; the cache (values, TTLs, recency, statistics), the previous file and
    the directory stay as they were. As root, checked in a forked child that drops to user
    nobody (_unprivileged.py)."""
    source = packed_cache(4)
    source.put(b"saved", b"before")
    with no_permission_places("afc-packed-permissions-", source.save) as places:
        source.close()

        def checks() -> None:
            clock = ManualClock(10.0)
            keys = [b"a", b"bb", b"c", b"d"]
            cache = packed_cache(4, shards=1, timer=clock)
            cache.put(b"a", b"1")
            cache.put(b"bb", b"22", ttl=5.0)
            cache.put(b"c", b"333")
            cache.put(b"d", b"4444")
            cache.get(b"a")  # recency, least recent first: bb c d a
            cache.get(b"nothing")
            before = _packed_state(cache, keys)
            assert before[0] == [b"1", b"22", b"333", b"4444"] and before[1] == 4

            def unchanged() -> None:
                assert _packed_state(cache, keys) == before

            check_refused_without_permission(places, cache, unchanged)
            # The TTL and the recency order as they were: bb expires 5 s after its put, then
            # c, d and a leave in that order.
            clock.advance(4.5)
            assert cache.peek(b"bb") == b"22"
            clock.advance(0.5)
            assert cache.peek(b"bb") is None
            assert _leaving_order(cache, [b"c", b"d", b"a"]) == [b"c", b"d", b"a"]
            cache.close()

        as_nobody(checks)


def test_a_non_key_is_refused_as_cache_refuses_it(packed_cache: Any) -> None:
    cache = packed_cache(4)
    cache.put(b"a", b"1")
    for bad in (1, None, 1.5, (b"a",)):
        assert (bad in cache) is False
        for call in (cache.get, cache.peek, cache.remove):
            with pytest.raises(TypeError, match="a cache key must be bytes-like or str"):
                call(bad)
    assert cache.get(b"a") == b"1"
    cache.close()

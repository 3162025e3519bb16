"""The behaviour contract (shared/CONTRACT.md, docs/semantics.md, docs/python-api.md), checked on
every available backend. Tests where order matters use ``shards=1`` (``make_cache``'s default)."""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import pickle
import threading
import time
from typing import Any, List

import pytest
from _backends import Recorder

import alphaforge_cache
from alphaforge_cache import (
    CacheClosedError,
    CacheError,
    EntryTooHeavyError,
    ManualClock,
    Stats,
)

NAN = float("nan")


def stats_tuple(cache: Any) -> tuple:
    return dataclasses.astuple(cache.stats())


# ----------------------------------------------------------------------------------------------
# Construction
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "max_entries, error",
    [
        (0, ValueError),
        (-1, ValueError),
        (2**32 - 1, ValueError),
        (1.5, TypeError),
        (3.0, TypeError),
        ("3", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_bad_max_entries(backend: Any, max_entries: Any, error: type) -> None:
    with pytest.raises(error):
        backend(max_entries)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"max_bytes": 0}, ValueError),
        ({"max_bytes": -5}, ValueError),
        ({"max_bytes": 10.0}, TypeError),
        ({"max_bytes": "10"}, TypeError),
        ({"ttl": 0}, ValueError),
        ({"ttl": 0.0}, ValueError),
        ({"ttl": -1}, ValueError),
        ({"ttl": -0.5}, ValueError),
        ({"ttl": NAN}, ValueError),
        ({"ttl": -math.inf}, ValueError),
        ({"ttl": 1e-12}, ValueError),  # rounds to zero nanoseconds
        ({"ttl": "1"}, TypeError),
        ({"ttl": True}, TypeError),
        ({"mode": "bogus"}, ValueError),
        ({"mode": "BYTES"}, ValueError),
        ({"shards": 0}, ValueError),
        ({"shards": 17}, ValueError),  # more shards than max_entries (16)
        ({"shards": "2"}, TypeError),
        ({"getsizeof": 5, "mode": "object"}, TypeError),
        ({"getsizeof": len, "mode": "bytes"}, ValueError),
        ({"getsizeof": len, "mode": "pickle"}, ValueError),
        ({"timer": time.monotonic}, TypeError),
        ({"timer": 0.0}, TypeError),
        ({"on_evict": "print"}, TypeError),
    ],
)
def test_bad_settings(backend: Any, kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        backend(16, **kwargs)


def test_shards_above_1024_refused(backend: Any) -> None:
    with pytest.raises(ValueError):
        backend(4096, shards=1025)
    backend(4096, shards=1024).close()


def test_max_entries_is_keyword_or_positional_and_others_keyword_only(backend: Any) -> None:
    cache = backend(max_entries=3)
    assert cache.max_entries == 3
    with pytest.raises(TypeError):
        backend(3, 100)  # max_bytes is keyword-only


def test_object_mode_with_max_bytes_requires_getsizeof(backend: Any) -> None:
    # docs/python-api.md: "object mode with max_bytes requires getsizeof, else ValueError".
    with pytest.raises(ValueError):
        backend(16, mode="object", max_bytes=100)
    backend(16, mode="object", max_bytes=100, getsizeof=lambda v: 1).close()


def test_properties(make_cache: Any, clock: Any) -> None:
    cache = make_cache(7, max_bytes=100, ttl=2.5, timer=clock, mode="pickle")
    assert cache.max_entries == 7
    assert cache.max_bytes == 100
    assert cache.ttl == 2.5
    assert cache.mode == "pickle"
    plain = make_cache(3)
    assert plain.max_bytes is None
    assert plain.ttl is None
    assert plain.mode == "bytes"
    assert plain.weight == 0
    assert len(plain) == 0


def test_backend_attribute(backend: Any) -> None:
    assert backend.backend in ("python", "native")
    if backend is alphaforge_cache.PythonCache:
        assert backend.backend == "python"
    else:
        assert issubclass(backend, alphaforge_cache.NativeCache)
        assert backend.backend == "native"


def test_error_hierarchy() -> None:
    assert issubclass(EntryTooHeavyError, CacheError)
    assert issubclass(EntryTooHeavyError, ValueError)
    assert issubclass(CacheClosedError, CacheError)
    assert issubclass(alphaforge_cache.SnapshotError, CacheError)
    assert not issubclass(CacheError, ValueError)
    assert alphaforge_cache.CAUSES == ("evicted", "expired", "removed", "replaced", "cleared")
    assert alphaforge_cache.MODES == ("bytes", "pickle", "object")


# ----------------------------------------------------------------------------------------------
# Keys
# ----------------------------------------------------------------------------------------------


def test_key_types_are_the_same_key(make_cache: Any) -> None:
    cache = make_cache()
    cache.put(b"key", b"1")
    for alias in (b"key", bytearray(b"key"), memoryview(b"key"), "key"):
        assert cache.get(alias) == b"1"
        assert cache.peek(alias) == b"1"
        assert alias in cache
        assert cache[alias] == b"1"
    cache.put("key", b"2")
    assert len(cache) == 1
    assert cache.get(b"key") == b"2"
    cache.put(bytearray(b"key"), b"3")
    cache.put(memoryview(b"xkeyx")[1:4], b"4")
    assert len(cache) == 1
    assert cache[b"key"] == b"4"
    assert list(cache) == [b"key"]
    assert type(list(cache)[0]) is bytes
    assert cache.pop("key") == b"4"
    assert len(cache) == 0


def test_str_key_is_utf8(make_cache: Any) -> None:
    cache = make_cache()
    cache.put("é€😀", b"v")
    assert cache.get("é€😀".encode()) == b"v"
    assert cache.keys() == ["é€😀".encode()]
    assert cache.get("é€😀".encode("latin-1", "ignore")) is None


def test_empty_key(make_cache: Any) -> None:
    cache = make_cache()
    cache.put(b"", b"empty")
    cache.put("", b"again")
    assert cache.get(b"") == b"again"
    assert len(cache) == 1
    assert cache.keys() == [b""]


def test_keys_are_copied(make_cache: Any) -> None:
    cache = make_cache()
    key = bytearray(b"abc")
    cache.put(key, b"v")
    key[0] = ord("z")
    assert cache.get(b"abc") == b"v"
    assert cache.get(b"zbc") is None


@pytest.mark.parametrize("bad", [1, 1.5, None, ("a",), ["a"], object(), {"a": 1}])
def test_bad_key_types(make_cache: Any, bad: Any) -> None:
    cache = make_cache()
    cache.put(b"a", b"1")
    with pytest.raises(TypeError):
        cache.get(bad)
    with pytest.raises(TypeError):
        cache.peek(bad)
    with pytest.raises(TypeError):
        cache.put(bad, b"1")
    with pytest.raises(TypeError):
        cache[bad] = b"1"
    with pytest.raises(TypeError):
        cache[bad]
    with pytest.raises(TypeError):
        del cache[bad]
    with pytest.raises(TypeError):
        cache.pop(bad, None)
    with pytest.raises(TypeError):
        cache.ttl_of(bad)
    with pytest.raises(TypeError):
        cache.get_many([b"a", bad])
    with pytest.raises(TypeError):
        cache.put_many([(b"b", b"2"), (bad, b"1")])
    with pytest.raises(TypeError):
        cache.get_or_set(bad, lambda: b"1")
    assert (bad in cache) is False
    assert cache.items() == [(b"a", b"1")]
    s = cache.stats()
    assert (s.hits, s.misses, s.inserts) == (0, 0, 1)


class SubBytes(bytes):
    pass


class SubStr(str):
    pass


#: Every kind of key that names the stored b"key", made fresh for each call.
KEY_ALIASES = {
    "bytes": lambda: b"key",
    "bytearray": lambda: bytearray(b"key"),
    "memoryview": lambda: memoryview(b"key"),
    "writable memoryview": lambda: memoryview(bytearray(b"key..."))[:3],
    "memoryview slice": lambda: memoryview(b"xkeyx")[1:4],
    "bytes subclass": lambda: SubBytes(b"key"),
    "str": lambda: "key",
    "str subclass": lambda: SubStr("key"),
}


@pytest.mark.parametrize("mode", ["bytes", "pickle"])
@pytest.mark.parametrize("alias", sorted(KEY_ALIASES))
def test_every_bytes_like_key_works_on_every_path(
    make_cache: Any, clock: ManualClock, recorder: Recorder, alias: str, mode: str
) -> None:
    # One rule for every method, on live and expired entries alike: a bytes-like or str key is
    # converted to bytes first; the listener hears bytes. (A memoryview used to reach the
    # native engine call as it was on an expired entry, "initializer for ctype 'char *' must
    # be a cdata pointer", and the fallback told on_evict the memoryview; a writable one was
    # refused by get, [], in, peek and get_many, "cannot hash writable memoryview object".)
    key = KEY_ALIASES[alias]
    cache = make_cache(mode=mode, timer=clock, on_evict=recorder)
    cache.put(key(), b"1")
    cache.put(key(), b"2", ttl=1.0)
    assert cache.get(key()) == b"2"
    assert cache[key()] == b"2"
    assert key() in cache
    assert cache.peek(key()) == b"2"
    assert cache.get_many([key(), b"other"]) == [b"2", None]
    assert cache.get_or_set(key(), lambda: pytest.fail("factory called")) == b"2"
    assert cache.ttl_of(key()) == 1.0
    clock.advance(1.0)  # expired: each read finds it so and reclaims it
    for read in (
        lambda: cache.get(key()),
        lambda: cache.peek(key()),
        lambda: cache.get_many([key()])[0],
    ):
        cache.put(b"key", b"3", ttl=1.0)
        clock.advance(1.0)
        assert read() is None
    cache.put(b"key", b"4", ttl=1.0)
    clock.advance(1.0)
    assert key() not in cache
    cache.put(key(), b"5")
    assert cache.pop(key()) == b"5"
    cache.put(key(), b"6")
    del cache[key()]
    assert cache.items() == []
    heard = recorder.take()
    assert [cause for _, _, cause in heard] == ["replaced"] + ["expired"] * 5 + ["removed"] * 2
    assert all(type(k) is bytes and k == b"key" for k, _, _ in heard)
    s = cache.stats()
    assert (s.hits, s.misses, s.expirations) == (4, 3, 5)


class LooksLikeAKey:
    """Not a key (not bytes-like, not str), though it hashes and compares as the stored b"a"."""

    def __hash__(self) -> int:
        return hash(b"a")

    def __eq__(self, other: object) -> bool:
        return other == b"a"


@pytest.mark.parametrize("ttl", [None, 60.0], ids=["no ttl", "ttl"])
def test_an_object_equal_to_a_stored_key_is_not_a_key(make_cache: Any, ttl: Any) -> None:
    # It used to be served by the mirror before any type check; on native, buffered as it
    # was, it then broke the next put ("sequence item 0: expected a bytes-like object") and
    # the hit was lost, while the fallback counted it.
    cache = make_cache(ttl=ttl)
    cache.put(b"a", b"1")
    bad = LooksLikeAKey()
    message = "a cache key must be bytes-like or str, not LooksLikeAKey"
    calls = {
        "get": lambda: cache.get(bad),
        "getitem": lambda: cache[bad],
        "peek": lambda: cache.peek(bad),
        "get_many": lambda: cache.get_many([bad]),
        "get_or_set": lambda: cache.get_or_set(bad, lambda: b"2"),
        "setdefault": lambda: cache.setdefault(bad, b"2"),
        "pop": lambda: cache.pop(bad),
        "ttl_of": lambda: cache.ttl_of(bad),
        "put": lambda: cache.put(bad, b"2"),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError) as raised:
            call()
        assert str(raised.value) == message, name
    assert (bad in cache) is False
    cache.put(b"b", b"2")  # the next put works
    assert cache.items() == [(b"b", b"2"), (b"a", b"1")]
    s = cache.stats()
    assert (s.hits, s.misses, s.inserts) == (0, 0, 2)


# ----------------------------------------------------------------------------------------------
# Modes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["text", 1, None, [1, 2], 1.0, object()])
def test_bytes_mode_refuses_non_bytes(make_cache: Any, bad: Any) -> None:
    cache = make_cache()
    cache.put(b"k", b"old")
    with pytest.raises(TypeError):
        cache.put(b"k", bad)
    with pytest.raises(TypeError):
        cache[b"k"] = bad
    with pytest.raises(TypeError):
        cache.put(b"new", bad)
    assert cache.items() == [(b"k", b"old")]
    s = cache.stats()
    assert (s.inserts, s.updates) == (1, 0)


def test_bytes_mode_accepts_bytes_like_and_returns_bytes(make_cache: Any) -> None:
    cache = make_cache()
    cache.put(b"a", bytearray(b"xyz"))
    cache.put(b"b", memoryview(b"0123")[1:3])
    cache.put(b"c", b"")
    value = cache.get(b"a")
    assert value == b"xyz" and type(value) is bytes
    assert cache.get(b"b") == b"12" and type(cache.get(b"b")) is bytes
    assert cache.get(b"c") == b""
    assert cache.get(b"missing") is None
    source = bytearray(b"mutable")
    cache.put(b"d", source)
    source[0] = 0
    assert cache.get(b"d") == b"mutable"


def test_bytes_mode_weight(make_cache: Any) -> None:
    cache = make_cache(max_bytes=1000)
    cache.put(b"abc", b"12345")
    cache.put("é", b"")
    assert cache.weight == 3 + 5 + 2
    assert cache.stats().weight == 10


def test_pickle_mode_round_trip_new_object(make_cache: Any) -> None:
    cache = make_cache(mode="pickle")
    value = {"a": [1, 2, (3, 4)], "b": {1.5, None}, "c": "text"}
    cache.put(b"k", value)
    first = cache.get(b"k")
    second = cache[b"k"]
    assert first == value and second == value
    assert first is not value and second is not value and first is not second
    value["a"].append(99)  # the cache stored a copy
    assert cache.get(b"k")["a"] == [1, 2, (3, 4)]
    assert cache.peek(b"k") == first
    cache.put(b"none", None)
    assert b"none" in cache
    assert cache.get(b"none", "default") is None
    cache.put(b"int", 5)
    assert cache.values()[0] == 5
    assert cache.pop(b"int") == 5


def test_pickle_mode_weight_is_pickled_size(make_cache: Any) -> None:
    cache = make_cache(mode="pickle", max_bytes=10_000)
    value = {"x": list(range(20))}
    cache.put(b"key", value)
    assert cache.weight == 3 + len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def test_pickle_mode_unpicklable_refused_unchanged(make_cache: Any) -> None:
    cache = make_cache(mode="pickle")
    cache.put(b"k", 1)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        cache.put(b"k", lambda: None)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        cache.put(b"other", threading.Lock())
    assert cache.items() == [(b"k", 1)]


def test_object_mode_identity(make_cache: Any) -> None:
    cache = make_cache(mode="object")
    value: List[Any] = [1, 2]  # unhashable, mutable
    cache.put(b"k", value)
    assert cache.get(b"k") is value
    assert cache[b"k"] is value
    assert cache.peek(b"k") is value
    assert cache.values()[0] is value
    assert cache.items()[0][1] is value
    assert cache.get_many([b"k"])[0] is value
    value.append(3)
    assert cache.get(b"k") == [1, 2, 3]
    sentinel = object()
    cache.put(b"s", sentinel)
    assert cache.pop(b"s") is sentinel
    cache.put(b"n", None)
    assert b"n" in cache
    assert cache.get(b"n", "default") is None


def test_object_mode_weight_is_getsizeof(make_cache: Any) -> None:
    cache = make_cache(mode="object", max_bytes=100, getsizeof=len)
    cache.put(b"a-long-key", [0] * 7)
    assert cache.weight == 7  # the key does not count in object mode
    cache.put(b"b", "xyz")
    assert cache.weight == 10


@pytest.mark.parametrize(
    "bad, error", [(-1, ValueError), (1.5, TypeError), ("3", TypeError), (None, TypeError)]
)
def test_object_mode_bad_getsizeof_result(make_cache: Any, bad: Any, error: type) -> None:
    cache = make_cache(mode="object", max_bytes=100, getsizeof=lambda v: v if v != "ok" else 1)
    cache.put(b"k", "ok")
    with pytest.raises(error):
        cache.put(b"k", bad)
    assert cache.items() == [(b"k", "ok")]


# ----------------------------------------------------------------------------------------------
# Basic operations
# ----------------------------------------------------------------------------------------------


def test_get_peek_contains_put_pop_del(make_cache: Any) -> None:
    cache = make_cache()
    assert cache.get(b"a") is None
    assert cache.get(b"a", b"dflt") == b"dflt"
    assert cache.peek(b"a", 7) == 7
    assert b"a" not in cache
    with pytest.raises(KeyError):
        cache[b"a"]
    with pytest.raises(KeyError):
        del cache[b"a"]
    with pytest.raises(KeyError):
        cache.pop(b"a")
    with pytest.raises(KeyError):
        cache.ttl_of(b"a")
    assert cache.pop(b"a", None) is None
    assert cache.pop(b"a", b"x") == b"x"

    cache.put(b"a", b"1")
    cache[b"b"] = b"2"
    assert cache[b"a"] == b"1" and cache.get(b"b") == b"2"
    assert len(cache) == 2
    cache.put(b"a", b"11")
    assert cache.get(b"a") == b"11" and len(cache) == 2
    assert cache.pop(b"a") == b"11"
    assert b"a" not in cache
    del cache[b"b"]
    assert len(cache) == 0
    s = cache.stats()
    assert (s.inserts, s.updates, s.removals, s.entries, s.weight) == (2, 1, 2, 0, 0)


def test_clear(make_cache: Any) -> None:
    cache = make_cache(max_bytes=100)
    cache.put_many({b"a": b"1", b"b": b"2", b"c": b"3"})
    cache.clear()
    assert len(cache) == 0 and cache.weight == 0 and list(cache) == []
    s = cache.stats()
    assert (s.removals, s.entries, s.weight) == (3, 0, 0)
    cache.put(b"a", b"again")
    assert cache.items() == [(b"a", b"again")]
    assert cache.stats().inserts == 4


# ----------------------------------------------------------------------------------------------
# Recency
# ----------------------------------------------------------------------------------------------


def test_get_makes_most_recent(make_cache: Any) -> None:
    cache = make_cache(3)
    cache.put_many([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    assert cache.keys() == [b"c", b"b", b"a"]
    assert cache.get(b"a") == b"1"
    assert cache.keys() == [b"a", b"c", b"b"]
    cache[b"b"]  # __getitem__ is a get
    assert cache.keys() == [b"b", b"a", b"c"]
    cache.put(b"d", b"4")
    assert cache.keys() == [b"d", b"b", b"a"]


def test_get_arguments(make_cache: Any) -> None:
    """get(key, default=None): positional or keyword, as a dict's (the C read path too)."""
    cache = make_cache(4)
    cache[b"a"] = b"1"
    assert cache.get(b"a") == cache.get(key=b"a") == cache.get(b"a", default=b"x") == b"1"
    assert cache.get(b"b") is None
    assert cache.get(b"b", b"x") == cache.get(b"b", default=b"x") == b"x"
    assert cache.get(key=b"b", default=b"y") == b"y"
    for args, kwargs in [((), {}), ((b"a", 1, 2), {}), ((b"a",), {"other": 1})]:
        with pytest.raises(TypeError):
            cache.get(*args, **kwargs)
    with pytest.raises(TypeError):
        cache.get(b"a", 1, default=2)
    assert (cache.stats().hits, cache.stats().misses) == (3, 4)  # refused calls count nothing


def test_put_makes_most_recent(make_cache: Any) -> None:
    cache = make_cache(3)
    cache.put_many([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    cache.put(b"a", b"1bis")
    cache.put(b"d", b"4")
    assert cache.keys() == [b"d", b"a", b"c"]
    assert b"b" not in cache


def test_get_many_makes_most_recent_in_order(make_cache: Any) -> None:
    cache = make_cache(4)
    cache.put_many([(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"d", b"4")])
    assert cache.get_many([b"b", b"x", b"a"]) == [b"2", None, b"1"]
    assert cache.keys() == [b"a", b"b", b"d", b"c"]


def test_reads_without_recency(make_cache: Any) -> None:
    cache = make_cache(3)
    cache.put_many([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    cache.get(b"missing")
    assert cache.peek(b"a") == b"1"
    assert b"a" in cache
    assert len(cache) == 3
    assert list(cache) == [b"c", b"b", b"a"]
    cache.keys(), cache.values(), cache.items(), cache.stats(), cache.weight
    cache.ttl_of(b"a")
    assert cache.keys() == [b"c", b"b", b"a"]
    cache.put(b"d", b"4")
    assert b"a" not in cache
    assert cache.keys() == [b"d", b"c", b"b"]


def test_peek_contains_do_not_count_hits(make_cache: Any) -> None:
    cache = make_cache()
    cache.put(b"a", b"1")
    cache.peek(b"a"), cache.peek(b"z"), b"a" in cache, b"z" in cache, cache.ttl_of(b"a")
    s = cache.stats()
    assert (s.hits, s.misses) == (0, 0)


# ----------------------------------------------------------------------------------------------
# Bounds and eviction
# ----------------------------------------------------------------------------------------------


def test_eviction_by_entries(make_cache: Any, recorder: Recorder) -> None:
    cache = make_cache(2, on_evict=recorder)
    cache.put(b"a", b"1")
    cache.put(b"b", b"2")
    cache.put(b"c", b"3")
    assert cache.keys() == [b"c", b"b"]
    assert recorder.calls == [(b"a", b"1", "evicted")]
    cache.put(b"d", b"4")
    assert recorder.calls[-1] == (b"b", b"2", "evicted")
    s = cache.stats()
    assert (s.inserts, s.evictions, s.entries) == (4, 2, 2)


def test_single_entry_cache(make_cache: Any) -> None:
    cache = make_cache(1)
    for i in range(10):
        cache.put(str(i), b"v")
        assert cache.keys() == [str(i).encode()]
    assert cache.stats().evictions == 9


def test_eviction_by_bytes(make_cache: Any, recorder: Recorder) -> None:
    cache = make_cache(100, max_bytes=10, on_evict=recorder)
    cache.put(b"a", b"1234")  # 5
    cache.put(b"b", b"1234")  # 10
    assert cache.weight == 10 and len(cache) == 2
    cache.put(b"c", b"1")  # 12 > 10: evicts a
    assert cache.keys() == [b"c", b"b"] and cache.weight == 7
    cache.put(b"d", b"12345678")  # 9: evicts b then c, LRU first
    assert cache.keys() == [b"d"] and cache.weight == 9
    assert recorder.calls == [
        (b"a", b"1234", "evicted"),
        (b"b", b"1234", "evicted"),
        (b"c", b"1", "evicted"),
    ]
    cache.put(b"e", b"123456789")  # exactly max_bytes: accepted, evicts d
    assert cache.keys() == [b"e"] and cache.weight == 10
    s = cache.stats()
    assert (s.evictions, s.entries, s.weight) == (4, 1, 10)


def test_update_growing_evicts_others(make_cache: Any, recorder: Recorder) -> None:
    cache = make_cache(100, max_bytes=10, on_evict=recorder)
    cache.put(b"a", b"1")
    cache.put(b"b", b"1")
    cache.put(b"c", b"1")  # weight 6
    cache.put(b"a", b"12345")  # weight 10: fits
    assert cache.weight == 10
    cache.put(b"b", b"12345")  # b:6 + a:6 + c:2 = 14: evicts c (LRU), then a
    assert cache.keys() == [b"b"]
    assert recorder.causes() == ["replaced", "replaced", "evicted", "evicted"]
    assert recorder.keys("evicted") == [b"c", b"a"]


def test_eviction_by_getsizeof_in_object_mode(make_cache: Any, recorder: Recorder) -> None:
    cache = make_cache(100, mode="object", max_bytes=10, getsizeof=len, on_evict=recorder)
    first, second = [0] * 6, [0] * 4
    cache.put(b"a", first)
    cache.put(b"b", second)
    assert cache.weight == 10
    cache.put(b"c", [0])
    assert cache.keys() == [b"c", b"b"]
    assert recorder.calls[0][0] == b"a" and recorder.calls[0][1] is first
    assert recorder.calls[0][2] == "evicted"
    assert cache.weight == 5


def test_object_mode_without_getsizeof_weighs_one(make_cache: Any) -> None:
    cache = make_cache(5, mode="object")
    cache.put(b"a", "x" * 1000)
    cache.put(b"b", [1] * 1000)
    assert cache.weight == 2


@pytest.mark.parametrize("mode", ["bytes", "pickle"])
def test_too_heavy_refused_cache_unchanged(make_cache: Any, recorder: Recorder, mode: str) -> None:
    cache = make_cache(10, max_bytes=77, mode=mode, on_evict=recorder)
    cache.put(b"k", b"old")
    cache.put(b"j", b"other")
    assert len(cache) == 2
    before = (cache.items(), cache.weight, stats_tuple(cache))
    with pytest.raises(EntryTooHeavyError) as info:
        cache.put(b"k", b"x" * 80)
    assert isinstance(info.value, ValueError) and isinstance(info.value, CacheError)
    assert "77" in str(info.value)  # a clear message names the bound
    with pytest.raises(EntryTooHeavyError):
        cache[b"new"] = b"x" * 80
    with pytest.raises(EntryTooHeavyError):
        cache.put(b"x" * 78, b"")  # the key counts
    assert (cache.items(), cache.weight, stats_tuple(cache)) == before
    assert cache.get(b"k") == b"old"
    assert recorder.calls == []


def test_too_heavy_object_mode(make_cache: Any, recorder: Recorder) -> None:
    cache = make_cache(10, max_bytes=5, mode="object", getsizeof=len, on_evict=recorder)
    old = [1]
    cache.put(b"k", old)
    with pytest.raises(EntryTooHeavyError):
        cache.put(b"k", [1] * 6)
    assert cache.get(b"k") is old
    assert recorder.calls == []
    assert cache.stats().updates == 0


def test_multi_shard_cache_accepts_any_entry_that_fits(backend: Any) -> None:
    # A small cache must never refuse an entry that fits its global bounds, whatever the shards.
    cache = backend(1024, shards=16, max_bytes=100)
    try:
        for i in range(50):
            cache.put(f"k{i}", b"x" * 10)
        cache.put(b"big", b"x" * 97)  # weight 100 == max_bytes
        assert cache.get(b"big") == b"x" * 97
        assert cache.weight == 100 and len(cache) == 1
        for i in range(300):
            cache.put(f"k{i}", b"x" * (i % 20))
            assert cache.weight <= 100
        assert len(cache) <= 1024
    finally:
        cache.close()


@pytest.mark.parametrize("shards", [None, 2, 8])
def test_bounds_hold_with_several_shards(backend: Any, shards: Any) -> None:
    cache = backend(64, shards=shards, max_bytes=500)
    try:
        for i in range(2000):
            cache.put(str(i), b"v" * (i % 13))
            if i % 97 == 0:
                assert len(cache) <= 64 and cache.weight <= 500
        assert len(cache) <= 64 and cache.weight <= 500
        assert cache.weight == sum(len(k) + len(v) for k, v in cache.items())
        s = cache.stats()
        assert s.inserts - s.evictions == s.entries == len(cache)
    finally:
        cache.close()


# ----------------------------------------------------------------------------------------------
# Time
# ----------------------------------------------------------------------------------------------


def test_ttl_deadline(make_cache: Any, clock: ManualClock) -> None:
    clock.set(100.0)
    cache = make_cache(ttl=10, timer=clock)
    cache.put(b"k", b"v")
    clock.advance(5)
    assert cache.get(b"k") == b"v"  # does not extend the deadline
    assert cache.ttl_of(b"k") == 5.0
    clock.advance(4.999999999)
    assert cache.get(b"k") == b"v"
    assert cache.ttl_of(b"k") == pytest.approx(1e-9)
    clock.set(110.0)  # now == deadline: expired
    assert cache.get(b"k") is None
    assert b"k" not in cache
    with pytest.raises(KeyError):
        cache.ttl_of(b"k")


def test_ttl_restarts_on_put(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(ttl=10, timer=clock)
    cache.put(b"k", b"1")
    clock.advance(8)
    cache.put(b"k", b"2")
    clock.advance(8)
    assert cache.get(b"k") == b"2"
    assert cache.ttl_of(b"k") == 2.0


def test_per_entry_ttl_overrides_default(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(ttl=10, timer=clock)
    cache.put(b"short", b"v", ttl=2)
    cache.put(b"long", b"v", ttl=20)
    cache.put(b"default", b"v")
    assert cache.ttl_of(b"short") == 2.0
    assert cache.ttl_of(b"long") == 20.0
    assert cache.ttl_of(b"default") == 10.0
    clock.advance(2)
    assert cache.keys() == [b"default", b"long"]
    clock.advance(8)
    assert cache.keys() == [b"long"]
    clock.advance(9.5)
    assert cache.ttl_of(b"long") == 0.5
    clock.advance(0.5)
    assert len(cache) == 0


def test_no_default_ttl_never_expires(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(timer=clock)
    cache.put(b"k", b"v")
    cache.put(b"t", b"v", ttl=1.5)
    assert cache.ttl_of(b"k") is None
    assert cache.ttl_of(b"t") == 1.5
    clock.advance(10**9)
    assert cache.get(b"k") == b"v" and cache.ttl_of(b"k") is None
    assert b"t" not in cache


def test_huge_ttl_never_expires(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(timer=clock)
    cache.put(b"inf", b"v", ttl=math.inf)
    cache.put(b"big", b"v", ttl=1e30)
    clock.advance(10**10)
    assert cache.keys() == [b"big", b"inf"]


@pytest.mark.parametrize("huge", [math.inf, 1e300, 1e20, 2**200, 10**20], ids=repr)
def test_a_ttl_too_long_to_represent_means_never_on_every_path(
    make_cache: Any, clock: ManualClock, huge: Any
) -> None:
    # Every duration too long to count in nanoseconds saturates as math.inf does (1e300 used
    # to raise OverflowError from round(), while inf and 2**200 were accepted), and the
    # cache's ttl reads math.inf for it, not 18446744073.7.
    cache = make_cache(timer=clock, ttl=huge)
    assert cache.ttl == math.inf
    cache.put(b"default", b"v")
    cache.put(b"given", b"v", ttl=huge)
    cache.put_many([(b"many", b"v")], ttl=huge)
    assert cache.get_or_set(b"computed", lambda: b"v", ttl=huge) == b"v"
    assert cache.ttl_of(b"given") is None and cache.ttl_of(b"default") is None
    clock.advance(huge)  # the clock saturates too
    assert sorted(cache.keys()) == [b"computed", b"default", b"given", b"many"]
    later = alphaforge_cache.ManualClock(huge)
    later.set(huge)
    assert later.now() == clock.now()
    assert make_cache(ttl=1.0).ttl == 1.0


def test_a_ttl_whose_deadline_is_past_the_clocks_range_expires_at_its_end(
    make_cache: Any, tmp_path: Any
) -> None:
    # A finite TTL whose deadline lies past the clock's last instant (2**64 - 2 ns) ends there,
    # as in the engine: it still expires when the clock gets there; only an endless TTL (inf)
    # never does. 18,446,744,063 s is 10.709551614 s before the clock's end.
    early = alphaforge_cache.ManualClock(0)
    saved = make_cache(timer=early)
    saved.put(b"loaded", b"v", ttl=1000)
    saved.save(tmp_path / "early.afcs")
    clock = alphaforge_cache.ManualClock(18_446_744_063)
    cache = make_cache(timer=clock, ttl=100)
    cache.load(tmp_path / "early.afcs")
    cache.put(b"given", b"v", ttl=100)
    cache.put(b"default", b"v")
    cache.put_many([(b"many", b"v")], ttl=100)
    assert cache.get_or_set(b"computed", lambda: b"v") == b"v"
    cache.put(b"endless", b"v", ttl=math.inf)
    finite = [b"computed", b"default", b"given", b"loaded", b"many"]
    for key in finite:
        assert cache.ttl_of(key) == pytest.approx(10.709551614), key
    assert cache.ttl_of(b"endless") is None
    clock.advance(20)  # past the end: the clock stops at its last instant
    assert sorted(cache.keys()) == [b"endless"]


@pytest.mark.parametrize(
    "bad, error", [(0, ValueError), (-1, ValueError), (NAN, ValueError), ("1", TypeError)]
)
def test_bad_per_entry_ttl_changes_nothing(
    make_cache: Any, clock: ManualClock, bad: Any, error: type
) -> None:
    cache = make_cache(timer=clock, ttl=5)
    cache.put(b"k", b"old")
    with pytest.raises(error):
        cache.put(b"k", b"new", ttl=bad)
    with pytest.raises(error):
        cache.put_many([(b"x", b"1")], ttl=bad)
    assert cache.items() == [(b"k", b"old")]
    assert cache.ttl_of(b"k") == 5.0
    assert cache.stats().updates == 0


def test_clock_set_backwards_keeps_deadlines(make_cache: Any, clock: ManualClock) -> None:
    clock.set(100)
    cache = make_cache(timer=clock)
    cache.put(b"k", b"v", ttl=10)  # deadline 110
    clock.set(50)
    assert cache.ttl_of(b"k") == 60.0
    clock.set(109)
    assert cache.get(b"k") == b"v"
    clock.set(110)
    assert cache.get(b"k") is None


def test_manual_clock() -> None:
    clock = ManualClock()
    assert clock.now() == 0.0
    clock.advance(1.5)
    assert clock.now() == 1.5
    clock.set(0.25)
    assert clock.now() == 0.25
    assert ManualClock(3).now() == 3.0
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.advance(NAN)
    with pytest.raises(TypeError):
        clock.advance("1")


def test_shared_clock_between_caches(make_cache: Any, clock: ManualClock) -> None:
    one = make_cache(ttl=1, timer=clock)
    two = make_cache(ttl=2, timer=clock)
    one.put(b"k", b"v")
    two.put(b"k", b"v")
    clock.advance(1)
    assert b"k" not in one and b"k" in two


def test_expired_get_counts_one_miss_and_one_expiration(
    make_cache: Any, clock: ManualClock, recorder: Recorder
) -> None:
    cache = make_cache(ttl=1, timer=clock, on_evict=recorder)
    cache.put(b"k", b"v")
    clock.advance(1)
    assert cache.get(b"k") is None
    assert recorder.calls == [(b"k", b"v", "expired")]
    s = cache.stats()
    assert (s.hits, s.misses, s.expirations, s.entries, s.weight) == (0, 1, 1, 0, 0)
    assert cache.get(b"k") is None
    s = cache.stats()
    assert (s.misses, s.expirations) == (2, 1)


@pytest.mark.parametrize("op", ["peek", "contains", "ttl_of", "pop", "put"])
def test_access_reclaims_expired(
    make_cache: Any, clock: ManualClock, recorder: Recorder, op: str
) -> None:
    cache = make_cache(ttl=1, timer=clock, on_evict=recorder)
    cache.put(b"k", b"v")
    cache.put(b"other", b"v", ttl=100)
    clock.advance(1)
    if op == "peek":
        assert cache.peek(b"k") is None
    elif op == "contains":
        assert b"k" not in cache
    elif op == "ttl_of":
        with pytest.raises(KeyError):
            cache.ttl_of(b"k")
    elif op == "pop":
        assert cache.pop(b"k", None) is None
    else:
        cache.put(b"k", b"new")
    assert recorder.calls == [(b"k", b"v", "expired")]
    s = cache.stats()
    assert (s.hits, s.misses, s.expirations, s.removals) == (0, 0, 1, 0)
    if op == "put":  # a put over an expired entry is an insert, not an update
        assert (s.inserts, s.updates) == (3, 0)
        assert cache.ttl_of(b"k") == 1.0


def test_iteration_skips_expired_without_reclaiming(
    make_cache: Any, clock: ManualClock, recorder: Recorder
) -> None:
    cache = make_cache(timer=clock, on_evict=recorder)
    cache.put(b"a", b"1", ttl=1)
    cache.put(b"b", b"2", ttl=5)
    cache.put(b"c", b"3", ttl=1)
    clock.advance(1)
    assert [key for key in cache] == [b"b"]  # (list(cache) would call len(), which reclaims)
    assert cache.keys() == [b"b"] and cache.values() == [b"2"] and cache.items() == [(b"b", b"2")]
    assert recorder.calls == []
    assert sorted(cache.expire()) == [b"a", b"c"]
    assert sorted(recorder.keys("expired")) == [b"a", b"c"]
    assert cache.expire() == []
    assert cache.stats().expirations == 2


@pytest.mark.parametrize("view", ["len", "weight", "stats"])
def test_len_weight_stats_reclaim_expired(
    make_cache: Any, clock: ManualClock, recorder: Recorder, view: str
) -> None:
    cache = make_cache(timer=clock, max_bytes=100, on_evict=recorder)
    cache.put(b"a", b"1", ttl=1)
    cache.put(b"b", b"2")
    clock.advance(2)
    if view == "len":
        assert len(cache) == 1
    elif view == "weight":
        assert cache.weight == 2
    else:
        assert cache.stats().entries == 1
    assert recorder.calls == [(b"a", b"1", "expired")]
    assert cache.expire() == []


def test_expire_returns_keys(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(timer=clock)
    for i in range(6):
        cache.put(str(i), b"v", ttl=1 + i % 2)
    clock.advance(1)
    removed = cache.expire()
    assert sorted(removed) == [b"0", b"2", b"4"]
    assert all(type(k) is bytes for k in removed)
    assert sorted(cache.keys()) == [b"1", b"3", b"5"]
    s = cache.stats()
    assert (s.expirations, s.entries) == (3, 3)


def test_eviction_of_expired_lru_counts_as_expiration(
    make_cache: Any, clock: ManualClock, recorder: Recorder
) -> None:
    cache = make_cache(2, timer=clock, on_evict=recorder)
    cache.put(b"a", b"1", ttl=1)
    cache.put(b"b", b"2")
    clock.advance(1)
    cache.put(b"c", b"3")
    assert recorder.calls == [(b"a", b"1", "expired")]
    s = cache.stats()
    assert (s.evictions, s.expirations, s.entries) == (0, 1, 2)


def test_expired_entries_do_not_accumulate(
    make_cache: Any, clock: ManualClock, recorder: Recorder
) -> None:
    # A steady workload of short-lived entries, with no expire() call: the entry bound also bounds
    # what expired entries hold, so everything put has been reported gone but the live ones.
    cache = make_cache(50, ttl=1, timer=clock, on_evict=recorder)
    for i in range(5000):
        cache.put(str(i), b"v")
        clock.advance(0.3)
    gone = len(recorder.calls)
    assert gone >= 5000 - 50
    s = cache.stats()
    assert s.inserts - s.evictions - s.expirations == s.entries <= 50


# ----------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------


def test_stats_counters(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(2, timer=clock, max_bytes=100)
    assert cache.stats() == Stats()
    assert cache.stats().hit_ratio == 0.0
    cache.put(b"a", b"1")  # insert
    cache.put(b"a", b"22")  # update
    cache.get(b"a")  # hit
    cache.get(b"zz")  # miss
    cache.get_many([b"a", b"a", b"q"])  # 2 hits, 1 miss
    cache.put(b"b", b"3", ttl=1)  # insert
    cache.put(b"c", b"4")  # insert, evicts a (LRU)
    clock.advance(1)  # b expires
    cache.put(b"d", b"5")  # insert; the entry bound reaches b (expired)
    cache.pop(b"c")  # removal
    s = cache.stats()
    assert s == Stats(
        hits=3,
        misses=2,
        inserts=4,
        updates=1,
        evictions=1,
        expirations=1,
        removals=1,
        entries=1,
        weight=2,
    )
    assert s.hit_ratio == 0.6
    assert s.inserts - s.evictions - s.expirations - s.removals == s.entries


def test_stats_is_frozen_dataclass() -> None:
    s = Stats(hits=1, misses=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.hits = 2  # type: ignore[misc]
    assert s.hit_ratio == 0.25
    assert [f.name for f in dataclasses.fields(Stats)] == [
        "hits",
        "misses",
        "inserts",
        "updates",
        "evictions",
        "expirations",
        "removals",
        "entries",
        "weight",
    ]


def test_reset_stats(make_cache: Any) -> None:
    cache = make_cache(2, max_bytes=100)
    for key in (b"a", b"b", b"c", b"a"):
        cache.get(key)
        cache.put(key, b"xy")
    cache.pop(b"c")
    cache.reset_stats()
    s = cache.stats()
    assert s == Stats(entries=1, weight=3)
    assert s.hit_ratio == 0.0
    cache.get(b"a")
    assert cache.stats().hits == 1 and cache.stats().hit_ratio == 1.0


def test_clear_counts_live_as_removals_and_expired_as_expirations(
    make_cache: Any, clock: ManualClock, recorder: Recorder
) -> None:
    cache = make_cache(timer=clock, on_evict=recorder)
    cache.put(b"a", b"1", ttl=1)
    cache.put(b"b", b"2")
    cache.put(b"c", b"3")
    clock.advance(1)
    cache.clear()
    assert sorted(recorder.calls) == [
        (b"a", b"1", "expired"),
        (b"b", b"2", "cleared"),
        (b"c", b"3", "cleared"),
    ]
    s = cache.stats()
    assert (s.removals, s.expirations, s.entries) == (2, 1, 0)


# ----------------------------------------------------------------------------------------------
# Iteration and snapshots
# ----------------------------------------------------------------------------------------------


def test_iteration_is_mru_first_snapshot(make_cache: Any) -> None:
    cache = make_cache()
    for key in (b"a", b"b", b"c"):
        cache.put(key, key.upper())
    cache.get(b"a")
    it = iter(cache)
    keys, values, items = cache.keys(), cache.values(), cache.items()
    cache.put(b"d", b"D")
    del cache[b"b"]
    cache.clear()
    assert list(it) == [b"a", b"c", b"b"]
    assert keys == [b"a", b"c", b"b"]
    assert values == [b"A", b"C", b"B"]
    assert items == [(b"a", b"A"), (b"c", b"C"), (b"b", b"B")]
    for key in (b"x", b"y"):
        cache.put(key, b"v")
    seen = []
    for key in cache:  # changing the cache while iterating is safe
        seen.append(key)
        cache.put(key + b"!", b"v")
        cache.pop(key)
    assert seen == [b"y", b"x"]


# ----------------------------------------------------------------------------------------------
# resize and set_max_bytes
# ----------------------------------------------------------------------------------------------


def test_resize(make_cache: Any, recorder: Recorder) -> None:
    cache = make_cache(5, on_evict=recorder)
    for key in (b"a", b"b", b"c", b"d", b"e"):
        cache.put(key, b"v")
    cache.get(b"a")
    cache.resize(2)
    assert cache.max_entries == 2
    assert cache.keys() == [b"a", b"e"]
    assert recorder.calls == [
        (b"b", b"v", "evicted"),
        (b"c", b"v", "evicted"),
        (b"d", b"v", "evicted"),
    ]
    cache.put(b"f", b"v")
    assert cache.keys() == [b"f", b"a"]
    cache.resize(4)
    for key in (b"g", b"h"):
        cache.put(key, b"v")
    assert len(cache) == 4
    assert cache.stats().evictions == 4
    with pytest.raises(ValueError):
        cache.resize(0)
    with pytest.raises(TypeError):
        cache.resize("3")
    with pytest.raises(TypeError):
        cache.resize(2.0)
    assert cache.max_entries == 4 and len(cache) == 4


def test_resize_below_shard_count_refused(make_cache: Any) -> None:
    # docs/semantics.md: "resize below the shard count is refused" (every backend).
    cache = make_cache(200, shards=4)
    for i in range(10):
        cache.put(str(i), b"v")
    with pytest.raises(ValueError):
        cache.resize(3)
    assert cache.max_entries == 200 and len(cache) == 10
    cache.resize(4)
    assert cache.max_entries == 4
    assert 1 <= len(cache) <= 4  # one entry per shard now; keys spread unevenly over the shards


def test_set_max_bytes(make_cache: Any, recorder: Recorder) -> None:
    cache = make_cache(10, max_bytes=100, on_evict=recorder)
    for key in (b"a", b"b", b"c", b"d"):
        cache.put(key, b"123")  # 4 each
    cache.get(b"a")
    cache.set_max_bytes(9)
    assert cache.max_bytes == 9
    assert cache.keys() == [b"a", b"d"] and cache.weight == 8
    assert recorder.keys("evicted") == [b"b", b"c"]
    with pytest.raises(EntryTooHeavyError):
        cache.put(b"e", b"123456789")
    cache.set_max_bytes(1000)
    cache.put(b"e", b"123456789")
    assert cache.weight == 18
    with pytest.raises(ValueError):
        cache.set_max_bytes(0)
    with pytest.raises(TypeError):
        cache.set_max_bytes(5.0)
    assert cache.max_bytes == 1000
    unbounded = make_cache(3)
    with pytest.raises(ValueError):
        unbounded.set_max_bytes(10)


# ----------------------------------------------------------------------------------------------
# get_many / put_many
# ----------------------------------------------------------------------------------------------


def test_get_many(make_cache: Any) -> None:
    cache = make_cache()
    cache.put_many({b"a": b"1", "b": b"2"})
    assert cache.get_many([b"a", "b", bytearray(b"c")]) == [b"1", b"2", None]
    assert cache.get_many([b"c", b"a"], default=b"?") == [b"?", b"1"]
    assert cache.get_many([]) == []
    assert cache.get_many(iter([b"a"])) == [b"1"]


def test_put_many_forms_order_and_ttl(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(3, timer=clock)
    cache.put_many([(b"a", b"1"), ("b", b"2")])
    cache.put_many({b"c": b"3"}, ttl=2)
    cache.put_many(iter([(b"d", b"4")]), ttl=1)
    assert cache.keys() == [b"d", b"c", b"b"]
    assert cache.ttl_of(b"c") == 2.0 and cache.ttl_of(b"d") == 1.0 and cache.ttl_of(b"b") is None
    cache.put_many([(str(i), str(i).encode()) for i in range(10)])
    assert cache.keys() == [b"9", b"8", b"7"]
    cache.put_many([])
    assert len(cache) == 3


@pytest.mark.parametrize(
    "items, error, message",
    [
        ([b"ab", b"cd"], TypeError, "put_many takes (key, value) pairs: item 0 is a bytes"),
        ([(b"a", b"1"), "ab"], TypeError, "put_many takes (key, value) pairs: item 1 is a str"),
        ([(b"a", b"1"), 3], TypeError, "put_many takes (key, value) pairs: item 1 is a int"),
        ([(b"a", b"1", 3)], ValueError, "put_many takes (key, value) pairs: item 0 has 3 elem"),
        ([(b"a",)], ValueError, "put_many takes (key, value) pairs: item 0 has 1 elements"),
        (lambda: iter([(b"a", b"1"), b"xy"]), TypeError, "item 1 is a bytes, not a pair"),
        ([[b"a", b"1"], "ab"], TypeError, "item 1 is a str, not a pair"),
        ("ab", TypeError, "put_many takes a mapping or an iterable of (key, value) pairs, not"),
        (b"ab", TypeError, "put_many takes a mapping or an iterable of (key, value) pairs, not"),
        (3, TypeError, "put_many takes a mapping or an iterable of (key, value) pairs, not int"),
    ],
    ids=[
        "bytes items",
        "str item",
        "int item",
        "triple",
        "single",
        "iterator",
        "list pair",
        "str",
        "bytes",
        "int",
    ],
)
def test_put_many_of_what_is_not_pairs_says_so(
    make_cache: Any, items: Any, error: type, message: str
) -> None:
    # It used to fail inside the unpacking ("not enough values to unpack", or a bytes item
    # unpacked into two ints: "a cache key must be bytes-like or str, not int").
    cache = make_cache(mode="object")  # where a 2-character str would unpack as a pair
    with pytest.raises(error) as raised:
        cache.put_many(items() if callable(items) else items)
    assert message in str(raised.value)
    assert len(cache) == 0  # all or none


@pytest.mark.parametrize("keys", ["ab", b"ab", bytearray(b"ab"), memoryview(b"ab")], ids=repr)
def test_get_many_of_one_key_says_so(make_cache: Any, keys: Any) -> None:
    # A str used to be read as its characters: get_many("ab") looked up "a" and "b".
    cache = make_cache()
    cache.put_many([(b"a", b"1"), (b"ab", b"2")])
    with pytest.raises(TypeError, match="get_many takes an iterable of keys, not one"):
        cache.get_many(keys)
    assert cache.stats().misses == 0 and cache.stats().hits == 0


def test_put_many_duplicate_keys_last_wins(make_cache: Any) -> None:
    cache = make_cache()
    cache.put_many([(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])
    assert cache.items() == [(b"a", b"3"), (b"b", b"2")]
    s = cache.stats()
    assert (s.inserts, s.updates) == (2, 1)


@pytest.mark.parametrize("bad_value, error", [(b"x" * 50, EntryTooHeavyError), ("str", TypeError)])
def test_put_many_all_or_none(
    make_cache: Any, recorder: Recorder, bad_value: Any, error: type
) -> None:
    cache = make_cache(3, max_bytes=20, on_evict=recorder)
    cache.put(b"a", b"old")
    cache.put(b"b", b"old")
    before = (cache.items(), stats_tuple(cache))
    with pytest.raises(error):
        cache.put_many([(b"a", b"new"), (b"c", b"new"), (b"d", bad_value), (b"e", b"new")])
    assert (cache.items(), stats_tuple(cache)) == before
    assert recorder.calls == []


# ----------------------------------------------------------------------------------------------
# get_or_set
# ----------------------------------------------------------------------------------------------


def test_get_or_set_calls_factory_once(make_cache: Any) -> None:
    cache = make_cache()
    calls = []

    def factory() -> bytes:
        calls.append(1)
        return b"computed"

    assert cache.get_or_set(b"k", factory) == b"computed"
    assert cache.get_or_set("k", factory) == b"computed"
    assert cache.get(b"k") == b"computed"
    assert len(calls) == 1
    s = cache.stats()
    assert (s.inserts, s.misses, s.hits) == (1, 1, 2)


def test_get_or_set_existing_value_not_computed(make_cache: Any) -> None:
    cache = make_cache()
    cache.put(b"k", b"stored")
    assert cache.get_or_set(b"k", lambda: pytest.fail("factory called")) == b"stored"


def test_get_or_set_ttl(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(timer=clock, ttl=100)
    assert cache.get_or_set(b"k", lambda: b"1", ttl=2) == b"1"
    assert cache.ttl_of(b"k") == 2.0
    clock.advance(2)
    assert cache.get_or_set(b"k", lambda: b"2") == b"2"
    assert cache.ttl_of(b"k") == 100.0


@pytest.mark.parametrize("stored", [False, True], ids=["miss", "hit"])
@pytest.mark.parametrize("ttl", [0, -1, 0.0, float("nan"), "60", True], ids=repr)
def test_get_or_set_refuses_a_bad_ttl_as_put_does(make_cache: Any, ttl: Any, stored: bool) -> None:
    # Checked before the factory runs, hit or miss, with put's exception and message: a
    # mistyped ttl=0 must not silently turn the cache off (the value never stored).
    cache = make_cache()
    if stored:
        cache.put(b"k", b"v")
    with pytest.raises((TypeError, ValueError)) as from_put:
        cache.put(b"other", b"v", ttl=ttl)
    with pytest.raises(type(from_put.value)) as raised:
        cache.get_or_set(b"k", lambda: pytest.fail("factory called"), ttl=ttl)
    assert str(raised.value) == str(from_put.value)
    assert cache.keys() == ([b"k"] if stored else [])


def test_get_or_set_raises_a_listener_error_as_other_operations_do(make_cache: Any) -> None:
    # The value is stored (the listener ran for the entry it evicted); the listener's error is
    # raised afterwards, as put raises it (CONTRACT, eviction listener), even a ValueError.
    def listener(key: bytes, value: Any, cause: str) -> None:
        raise ValueError(f"listener failed on {key!r}")

    cache = make_cache(1, on_evict=listener)
    cache[b"a"] = b"1"
    with pytest.raises(ValueError, match="listener failed on b'a'"):
        cache.get_or_set(b"b", lambda: b"2")
    assert cache.items() == [(b"b", b"2")]
    with pytest.raises(ValueError, match="listener failed on b'b'"):
        cache.put(b"c", b"3")


def test_get_or_set_returns_a_value_too_heavy_to_store(make_cache: Any) -> None:
    cache = make_cache(max_bytes=8)
    assert cache.get_or_set(b"k", lambda: b"x" * 20) == b"x" * 20
    assert b"k" not in cache
    with pytest.raises(EntryTooHeavyError):
        cache.put(b"k", b"x" * 20)


@pytest.mark.parametrize("mode", ["object", "pickle", "bytes"])
def test_get_or_set_racing_threads_compute_once(make_cache: Any, mode: str) -> None:
    cache = make_cache(mode=mode)
    calls = []
    n = 8
    barrier = threading.Barrier(n)
    results: List[Any] = [None] * n

    def factory() -> Any:
        calls.append(threading.get_ident())
        time.sleep(0.2)
        return b"value" if mode == "bytes" else {"v": len(calls)}

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = cache.get_or_set(b"k", factory)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert len(calls) == 1
    expected = b"value" if mode == "bytes" else {"v": 1}
    assert all(r == expected for r in results)
    if mode == "object":
        assert all(r is results[0] for r in results)
    s = cache.stats()
    assert s.inserts == 1 and s.updates == 0


def test_get_or_set_factory_error_propagates_and_waiter_computes(make_cache: Any) -> None:
    cache = make_cache(mode="object")
    started = threading.Event()
    release = threading.Event()
    calls = []

    def failing() -> Any:
        calls.append("failing")
        started.set()
        release.wait(10)
        raise ZeroDivisionError("boom")

    def second() -> Any:
        calls.append("second")
        return "from-waiter"

    outcome: dict = {}

    def first_caller() -> None:
        try:
            cache.get_or_set(b"k", failing)
        except ZeroDivisionError as error:
            outcome["first"] = error

    def waiter() -> None:
        outcome["waiter"] = cache.get_or_set(b"k", second)

    t1 = threading.Thread(target=first_caller)
    t1.start()
    assert started.wait(10)
    t2 = threading.Thread(target=waiter)
    t2.start()
    time.sleep(0.2)  # the waiter is waiting for the failing computation
    assert calls == ["failing"]
    release.set()
    t1.join(10)
    t2.join(10)
    assert not t1.is_alive() and not t2.is_alive()
    assert isinstance(outcome["first"], ZeroDivisionError)
    assert outcome["waiter"] == "from-waiter"
    assert calls == ["failing", "second"]
    assert cache.get(b"k") == "from-waiter"


def test_get_or_set_factory_error_stores_nothing(make_cache: Any) -> None:
    cache = make_cache()

    def boom() -> bytes:
        raise KeyError("inner")

    with pytest.raises(KeyError):
        cache.get_or_set(b"k", boom)
    assert b"k" not in cache
    assert cache.get_or_set(b"k", lambda: b"ok") == b"ok"  # no computation left behind


def test_get_or_set_reentrant_same_key(make_cache: Any) -> None:
    cache = make_cache()
    inner_errors = []

    def factory() -> bytes:
        try:
            cache.get_or_set(b"k", lambda: b"inner")
        except RuntimeError as error:
            inner_errors.append(error)
            raise
        return b"outer"

    with pytest.raises(RuntimeError):
        cache.get_or_set(b"k", factory)
    assert len(inner_errors) == 1
    assert b"k" not in cache
    assert cache.get_or_set(b"k", lambda: b"later") == b"later"


def test_get_or_set_nested_other_key(make_cache: Any) -> None:
    cache = make_cache()

    def fib(n: int) -> int:
        if n < 2:
            return n
        return int(cache.get_or_set(str(n), lambda: str(fib(n - 1) + fib(n - 2)).encode()))

    assert fib(30) == 832040
    assert cache.get(b"30") == b"832040"


def test_get_or_set_too_heavy_returned_not_stored(make_cache: Any) -> None:
    cache = make_cache(max_bytes=10)
    cache.put(b"k", b"old")
    value = cache.get_or_set(b"j", lambda: b"x" * 50)
    assert value == b"x" * 50
    assert b"j" not in cache
    assert cache.items() == [(b"k", b"old")]
    obj = make_cache(mode="object", max_bytes=10, getsizeof=len)
    big = [0] * 20
    assert obj.get_or_set(b"j", lambda: big) is big
    assert len(obj) == 0


def test_get_or_set_bad_value_type_propagates(make_cache: Any) -> None:
    cache = make_cache()
    with pytest.raises(TypeError):
        cache.get_or_set(b"k", lambda: "not bytes")
    assert b"k" not in cache


# ----------------------------------------------------------------------------------------------
# Eviction listener
# ----------------------------------------------------------------------------------------------


def test_listener_causes(make_cache: Any, clock: ManualClock, recorder: Recorder) -> None:
    cache = make_cache(2, timer=clock, on_evict=recorder)
    cache.put("a", b"1")
    cache.put(b"a", b"2")
    assert recorder.take() == [(b"a", b"1", "replaced")]
    cache.put(b"b", b"3")
    cache.put(b"c", b"4")
    assert recorder.take() == [(b"a", b"2", "evicted")]
    assert cache.pop(b"b") == b"3"
    assert recorder.take() == [(b"b", b"3", "removed")]
    cache.put(b"d", b"5", ttl=1)
    del cache[b"c"]
    assert recorder.take() == [(b"c", b"4", "removed")]
    clock.advance(1)
    assert cache.get(b"d") is None
    assert recorder.take() == [(b"d", b"5", "expired")]
    cache.put(b"e", b"6")
    cache.put(b"f", b"7")
    cache.clear()
    assert sorted(recorder.take()) == [(b"e", b"6", "cleared"), (b"f", b"7", "cleared")]
    for key, _, _ in recorder.calls:
        assert type(key) is bytes


def test_listener_values_in_each_mode(make_cache: Any) -> None:
    obj_rec, pkl_rec = Recorder(), Recorder()
    obj = make_cache(1, mode="object", on_evict=obj_rec)
    pkl = make_cache(1, mode="pickle", on_evict=pkl_rec)
    value = {"x": [1]}
    obj.put(b"a", value)
    obj.put(b"b", 2)
    pkl.put(b"a", value)
    pkl.put(b"b", 2)
    assert obj_rec.calls[0][1] is value
    assert pkl_rec.calls[0][1] == value and pkl_rec.calls[0][1] is not value


def test_listener_not_called_without_removal(make_cache: Any, recorder: Recorder) -> None:
    cache = make_cache(3, on_evict=recorder)
    cache.put(b"a", b"1")
    (
        cache.get(b"a"),
        cache.peek(b"a"),
        cache.get(b"x"),
        cache.pop(b"x", None),
        list(cache),
        cache.expire(),
    )
    assert recorder.calls == []


def test_failing_listener(make_cache: Any) -> None:
    calls = []

    class Boom(Exception):
        pass

    def listener(key: bytes, value: Any, cause: str) -> None:
        calls.append((key, cause))
        raise Boom(f"listener failed on {key!r}")

    cache = make_cache(3, on_evict=listener)
    cache.put_many([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    with pytest.raises(Boom) as info:
        cache.put(b"d", b"4")  # evicts a; the put itself stands
    assert "b'a'" in str(info.value)
    assert cache.keys() == [b"d", b"c", b"b"]
    calls.clear()
    with pytest.raises(Boom) as info:
        cache.resize(1)  # evicts b then c: both told, the first failure raised
    assert calls == [(b"b", "evicted"), (b"c", "evicted")]
    assert "b'b'" in str(info.value)
    assert cache.keys() == [b"d"] and len(cache) == 1
    s = cache.stats()
    assert (s.inserts, s.evictions, s.entries) == (4, 3, 1)
    with pytest.raises(Boom):
        cache.put(b"d", b"5")  # replaced
    assert cache.get(b"d") == b"5"
    with pytest.raises(Boom):
        cache.pop(b"d")
    assert len(cache) == 0
    cache.put(b"x", b"1")
    assert cache.get(b"x") == b"1"


@pytest.mark.parametrize("exception", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_a_listener_raising_a_base_exception_loses_no_other_notification(
    make_cache: Any, exception: Any
) -> None:
    # CONTRACT: a failing listener cannot lose other notifications; a BaseException (Ctrl-C
    # in a listener) used to stop the delivery of the rest.
    heard: List[Any] = []

    def listener(key: bytes, value: Any, cause: str) -> None:
        heard.append((key, cause))
        if key == b"a":
            raise exception("listener stopped")

    cache = make_cache(1, on_evict=listener)
    cache[b"a"] = b"1"
    with pytest.raises(exception):
        cache.put_many([(b"b", b"2"), (b"c", b"3")])  # evicts a, then b
    assert heard == [(b"a", "evicted"), (b"b", "evicted")]
    assert cache.items() == [(b"c", b"3")]
    cache.put(b"d", b"4")  # the cache works on
    assert heard[-1] == (b"c", "evicted")


@pytest.mark.parametrize("mode", ["bytes", "pickle", "object"])
def test_a_failing_listener_does_not_lose_the_value_pop_removed(make_cache: Any, mode: str) -> None:
    # pop is atomic: the entry is gone once it returns or raises. When the listener raises,
    # its exception comes out (as for every operation) carrying the removed pair as .popped.
    def listener(key: bytes, value: Any, cause: str) -> None:
        raise ZeroDivisionError("listener failed")

    cache = make_cache(5, mode=mode, on_evict=listener)
    cache[b"k"] = b"precious"
    with pytest.raises(ZeroDivisionError) as raised:
        cache.pop(b"k")
    assert raised.value.popped == (b"k", b"precious")  # type: ignore[attr-defined]
    assert b"k" not in cache
    cache.put_many([(b"a", b"1"), (b"b", b"2")])
    with pytest.raises(ZeroDivisionError) as raised:
        cache.popitem()
    assert raised.value.popped == (b"a", b"1")  # type: ignore[attr-defined]
    with pytest.raises(ZeroDivisionError) as raised:
        del cache["b"]
    assert raised.value.popped == (b"b", b"2")  # type: ignore[attr-defined]
    assert len(cache) == 0 and cache.stats().removals == 3


def test_listener_raising_on_some_only(make_cache: Any) -> None:
    told = []

    def listener(key: bytes, value: Any, cause: str) -> None:
        told.append(key)
        if key in (b"b", b"d"):
            raise ValueError(key)

    cache = make_cache(10, on_evict=listener)
    cache.put_many([(k, b"v") for k in (b"a", b"b", b"c", b"d", b"e")])
    with pytest.raises(ValueError) as info:
        cache.clear()
    assert info.value.args == (b"b",) or info.value.args == (b"d",)
    assert sorted(told) == [b"a", b"b", b"c", b"d", b"e"]
    assert len(cache) == 0 and cache.stats().removals == 5


def test_listener_may_call_back_into_cache(make_cache: Any, clock: ManualClock) -> None:
    seen = []
    holder: dict = {}

    def listener(key: bytes, value: Any, cause: str) -> None:
        cache = holder["cache"]
        seen.append((key, cause, len(cache), cache.get(key), key in cache))
        if key == b"a":
            cache.put(b"re-a", value)  # evicts b, whose notification comes in this listener
        cache.stats()
        list(cache)

    def scenario() -> None:
        cache = holder["cache"] = make_cache(2, timer=clock, on_evict=listener)
        cache.put(b"a", b"1")
        cache.put(b"b", b"2")
        cache.put(b"c", b"3")  # evicts a; the listener puts re-a, which evicts b
        cache.put(b"c", b"4")  # replaced
        cache.pop(b"c")
        cache.put(b"t", b"5", ttl=1)
        clock.advance(1)
        cache.expire()
        cache.clear()
        holder["done"] = True

    thread = threading.Thread(target=scenario, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "a listener calling back into the cache deadlocked"
    assert holder.get("done")
    assert [(key, cause) for key, cause, _, _, _ in seen] == [
        (b"a", "evicted"),
        (b"b", "evicted"),
        (b"c", "replaced"),
        (b"c", "removed"),
        (b"t", "expired"),
        (b"re-a", "cleared"),
    ]
    for _key, cause, _, got, present in seen:
        if cause != "replaced":  # the entry had already left when told
            assert got is None and not present
    cache = holder["cache"]
    s = cache.stats()
    assert s.inserts - s.evictions - s.expirations - s.removals == s.entries == len(cache)


def test_listener_not_under_lock_for_other_threads(make_cache: Any) -> None:
    # While a listener runs (and blocks), other threads can use the cache.
    entered = threading.Event()
    release = threading.Event()

    def listener(key: bytes, value: Any, cause: str) -> None:
        entered.set()
        release.wait(10)

    cache = make_cache(1, on_evict=listener)
    cache.put(b"a", b"1")
    thread = threading.Thread(target=cache.put, args=(b"b", b"2"))
    thread.start()
    try:
        assert entered.wait(10)
        done = threading.Event()

        def other() -> None:
            cache.get(b"b")
            cache.put(b"c", b"3") if False else cache.peek(b"b")
            len(cache)
            done.set()

        t2 = threading.Thread(target=other, daemon=True)
        t2.start()
        assert done.wait(5), "another thread was blocked while the listener ran"
    finally:
        release.set()
        thread.join(10)


# ----------------------------------------------------------------------------------------------
# close and the context manager
# ----------------------------------------------------------------------------------------------

CLOSED_OPS = [
    ("get", lambda c: c.get(b"a")),
    ("peek", lambda c: c.peek(b"a")),
    ("getitem", lambda c: c[b"a"]),
    ("contains", lambda c: b"a" in c),
    ("put", lambda c: c.put(b"a", b"1")),
    ("setitem", lambda c: c.__setitem__(b"a", b"1")),
    ("delitem", lambda c: c.__delitem__(b"a")),
    ("pop", lambda c: c.pop(b"a", None)),
    ("len", lambda c: len(c)),
    ("iter", lambda c: list(c)),
    ("keys", lambda c: c.keys()),
    ("values", lambda c: c.values()),
    ("items", lambda c: c.items()),
    ("clear", lambda c: c.clear()),
    ("expire", lambda c: c.expire()),
    ("resize", lambda c: c.resize(3)),
    ("set_max_bytes", lambda c: c.set_max_bytes(10)),
    ("ttl_of", lambda c: c.ttl_of(b"a")),
    ("stats", lambda c: c.stats()),
    ("reset_stats", lambda c: c.reset_stats()),
    ("weight", lambda c: c.weight),
    ("get_many", lambda c: c.get_many([b"a"])),
    ("put_many", lambda c: c.put_many([(b"a", b"1")])),
    ("get_or_set", lambda c: c.get_or_set(b"a", lambda: b"1")),
]


@pytest.mark.parametrize("op", [op for _, op in CLOSED_OPS], ids=[name for name, _ in CLOSED_OPS])
def test_closed_cache_refuses_use(make_cache: Any, op: Any) -> None:
    cache = make_cache(max_bytes=100)
    cache.put(b"a", b"1")
    cache.close()
    with pytest.raises(CacheClosedError):
        op(cache)
    cache.close()  # closing twice is harmless


def test_close_tells_listener_and_is_idempotent(
    make_cache: Any, clock: ManualClock, recorder: Recorder
) -> None:
    cache = make_cache(timer=clock, on_evict=recorder)
    cache.put(b"a", b"1")
    cache.put(b"b", b"2", ttl=1)
    clock.advance(1)
    cache.close()
    assert sorted(recorder.calls) == [(b"a", b"1", "cleared"), (b"b", b"2", "expired")]
    cache.close()
    assert len(recorder.calls) == 2


def test_context_manager(make_cache: Any, recorder: Recorder) -> None:
    with make_cache(on_evict=recorder) as cache:
        cache.put(b"a", b"1")
        assert cache.get(b"a") == b"1"
    assert recorder.calls == [(b"a", b"1", "cleared")]
    with pytest.raises(CacheClosedError):
        cache.get(b"a")
    with pytest.raises(CacheError):
        cache.put(b"a", b"1")
    cache.close()
    other = make_cache()
    with pytest.raises(KeyError):
        with other as entered:
            assert entered is other
            raise KeyError("propagates")
    with pytest.raises(CacheClosedError):
        len(other)


# ----------------------------------------------------------------------------------------------
# The MutableMapping interface
# ----------------------------------------------------------------------------------------------


def test_mutable_mapping(make_cache: Any) -> None:
    cache = make_cache(10)
    assert isinstance(cache, collections.abc.MutableMapping)
    cache.update({b"a": b"1"}, b=b"2")
    cache.update([(b"c", b"3")])
    assert sorted(cache.items()) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
    assert cache.setdefault(b"a", b"x") == b"1"
    assert cache.setdefault(b"d", b"4") == b"4"
    assert cache[b"d"] == b"4"
    assert dict(cache) == {b"a": b"1", b"b": b"2", b"c": b"3", b"d": b"4"}
    expected = cache.items()[-1]  # (dict(cache) made every key recent in turn)
    key, value = cache.popitem()
    assert (key, value) == expected  # the least recently used first, as cachetools
    assert key not in cache and len(cache) == 3
    assert set(cache.keys()) == {b"a", b"b", b"c", b"d"} - {key}
    assert cache == cache
    assert cache != {b"a": b"1"}
    with pytest.raises(TypeError):
        hash(cache) and {cache: 1}[[]]  # type: ignore[index]
    cache.clear()
    with pytest.raises(KeyError):
        cache.popitem()


@pytest.mark.parametrize("mode", ["bytes", "pickle", "object"])
def test_popitem_removes_the_least_recently_used_entry(
    make_cache: Any, clock: ManualClock, recorder: Recorder, mode: str
) -> None:
    # As cachetools' LRU caches (and compat.LRUCache) do; the inherited MutableMapping.popitem
    # took next(iter(c)), the most recently used, from a snapshot of the whole cache.
    cache = make_cache(5, mode=mode, timer=clock, on_evict=recorder)
    cache.put(b"old", b"0", ttl=1.0)  # the least recent, but expired: passed over
    for key in (b"a", b"b", b"c"):
        cache[key] = key.upper()
    cache.get(b"a")  # b is now the least recently used live entry
    clock.advance(1.0)
    assert cache.popitem() == (b"b", b"B")
    assert cache.keys() == [b"a", b"c"]  # recency of the others unchanged
    assert cache.popitem() == (b"c", b"C")
    assert cache.popitem() == (b"a", b"A")
    with pytest.raises(KeyError):
        cache.popitem()
    assert recorder.take() == [(k, k.upper(), "removed") for k in (b"b", b"c", b"a")]
    s = cache.stats()
    assert (s.removals, s.hits, s.entries) == (3, 1, 0)


def test_mapping_equality_is_identity_and_views_are_lists(make_cache: Any) -> None:
    # Documented (docs/python-api.md, "The mapping interface"): a cache equals only itself,
    # and keys(), values() and items() are snapshots as lists, most recently used first.
    cache = make_cache()
    cache[b"a"] = b"1"
    assert cache == cache and cache != {b"a": b"1"} and cache != make_cache()
    assert dict(cache) == {b"a": b"1"}
    assert cache.keys() == [b"a"] and cache.values() == [b"1"]
    assert cache.items() == [(b"a", b"1")]


def test_repr(make_cache: Any) -> None:
    cache = make_cache(5, max_bytes=50, mode="pickle")
    text = repr(cache)
    assert "max_entries=5" in text and "max_bytes=50" in text and "pickle" in text
    assert cache.backend in text


# ----------------------------------------------------------------------------------------------
# Subclasses
# ----------------------------------------------------------------------------------------------


def test_a_subclass_s_own_methods_are_called_on_every_backend(backend: Any) -> None:
    # A backend's fast paths (the fallback's get closure, the native C get and put) are
    # instance attributes: they must step aside for a subclass's own get or put, which every
    # call then reaches, get_or_set's lookup included.
    calls: List[Any] = []

    class Audited(backend):  # type: ignore[misc,valid-type]
        def get(self, key: Any, default: Any = None) -> Any:
            calls.append(("get", key))
            return super().get(key, default)

        def put(self, key: Any, value: Any, ttl: Any = None) -> None:
            calls.append(("put", key))
            super().put(key, value, ttl)

        def get_many(self, keys: Any, default: Any = None) -> List[Any]:
            calls.append(("get_many", list(keys)))
            return super().get_many(keys, default)

    cache = Audited(10, shards=1)
    cache.put(b"a", b"1")
    assert cache.get(b"a") == b"1"
    assert cache.get_or_set(b"b", lambda: b"2") == b"2"
    assert cache.get_many([b"a"]) == [b"1"]
    assert calls == [("put", b"a"), ("get", b"a"), ("get", b"b"), ("get_many", [b"a"])]
    cache.close()


def test_a_subclass_s_own_put_is_called_when_get_is_the_backend_s(backend: Any) -> None:
    calls: List[Any] = []

    class AuditedPuts(backend):  # type: ignore[misc,valid-type]
        def put(self, key: Any, value: Any, ttl: Any = None) -> None:
            calls.append(key)
            super().put(key, value, ttl)

    cache = AuditedPuts(10, shards=1)
    cache.put(b"a", b"1")
    cache[b"b"] = b"2"  # __setitem__ is its own method: not routed through put
    assert calls == [b"a"]
    assert cache.get(b"a") == b"1" and cache.get(b"b") == b"2"
    cache.close()

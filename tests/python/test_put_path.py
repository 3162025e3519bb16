"""Puts that the native backend's C put path (``put_plain`` in ``_reads.c``) serves, and those
it hands to the Python put: on every backend the results are the same. Where the C path is in
use, the tests also check that it is (so the suite covers it, not only the Python put)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from alphaforge_cache import CacheClosedError, ManualClock


def c_put_path(cache: Any) -> bool:
    reader = getattr(cache, "_reader", None)
    return reader is not None and cache.put == reader.put_plain


@pytest.mark.parametrize("mode", ["bytes", "object"])
def test_common_puts_evict_in_lru_order(make_cache: Any, mode: str) -> None:
    cache = make_cache(3, mode=mode)
    if getattr(cache, "_reader", None) is not None:
        assert c_put_path(cache)
    for k in (b"a", b"b", b"c"):
        cache.put(k, k * 2)
    cache.get(b"a")
    cache[b"d"] = b"dd"  # evicts b, the least recently used
    cache.put(b"c", b"new")  # replaces
    assert cache.keys() == [b"c", b"d", b"a"]
    assert cache[b"c"] == b"new"
    s = cache.stats()
    assert (s.inserts, s.updates, s.evictions, s.hits) == (4, 1, 1, 2)
    if c_put_path(cache):  # one value-table row per entry, none left behind
        assert len(cache._values) == 3


def test_bytes_mode_takes_bytes_like_values_and_refuses_others(make_cache: Any) -> None:
    cache = make_cache(10, mode="bytes")
    cache.put(b"k1", b"x")  # the first put sets the key length the C path needs
    cache.put(b"k2", bytearray(b"ab"))
    cache[b"k3"] = memoryview(b"cd")
    assert cache.get(b"k2") == b"ab" and type(cache.get(b"k2")) is bytes
    assert cache.get(b"k3") == b"cd"
    with pytest.raises(TypeError):
        cache.put(b"k4", "text")
    assert b"k4" not in cache
    assert cache.stats().weight == 2 + 1 + 2 + 2 + 2 + 2


def test_own_ttl_str_keys_and_other_lengths_take_the_python_put(
    make_cache: Any, clock: ManualClock
) -> None:
    cache = make_cache(10, mode="object", ttl=10, timer=clock)
    cache.put(b"aa", 1)
    cache.put(b"bb", 2, ttl=1)  # keyword TTL
    cache.put(b"cc", 3, 2)  # positional TTL
    cache.put("dd", 4)  # str key: its UTF-8 bytes
    cache.put(b"longer", 5)  # another key length
    assert cache.ttl_of(b"aa") == 10 and cache.ttl_of(b"bb") == 1 and cache.ttl_of(b"cc") == 2
    assert cache.get(b"dd") == 4 and cache.get(b"longer") == 5
    clock.advance(1)
    assert cache.get(b"bb") is None and cache.get(b"cc") == 3
    clock.advance(9)
    assert cache.get(b"aa") is None and cache.get(b"dd") is None and cache.get(b"cc") is None


def test_put_on_a_closed_cache_raises(make_cache: Any) -> None:
    cache = make_cache(4, mode="object")
    cache.put(b"k", 1)
    cache.close()
    with pytest.raises(CacheClosedError):
        cache.put(b"j", 2)
    with pytest.raises(CacheClosedError):
        cache[b"j"] = 2


def test_put_while_another_thread_holds_the_lock_waits_for_it(make_cache: Any) -> None:
    cache = make_cache(4, mode="object")
    cache.put(b"k0", 0)
    done = threading.Event()

    def put_later() -> None:
        cache.put(b"k1", 1)  # the lock is held: the Python put waits for it
        done.set()

    with cache._lock:
        worker = threading.Thread(target=put_later)
        worker.start()
        assert not done.wait(0.2)
        assert b"k1" not in cache._mirror
    worker.join(5)
    assert done.is_set() and cache.get(b"k1") == 1


def test_put_is_not_the_c_path_with_a_listener(make_cache: Any) -> None:
    heard: list = []
    cache = make_cache(1, mode="object", on_evict=lambda k, v, c: heard.append((k, v, c)))
    assert not c_put_path(cache)
    cache.put(b"a", 1)
    cache.put(b"b", 2)
    assert heard == [(b"a", 1, "evicted")]

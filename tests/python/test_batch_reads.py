"""``get_many`` on every backend: its reads count and move entries exactly as single gets would,
in order, whether they are replayed within the call (the C read path does so when nothing is
buffered before them and the cache's lock is free) or buffered and replayed later."""

from __future__ import annotations

import threading
from typing import Any


def test_get_many_reads_count_and_move_in_order(make_cache: Any) -> None:
    cache = make_cache(4, mode="object")
    for k in (b"k1", b"k2", b"k3", b"k4"):
        cache.put(k, k)
    assert cache.get_many([b"k2", b"nope", b"k1", b"longer key", b"k2"]) == [
        b"k2",
        None,
        b"k1",
        None,
        b"k2",
    ]
    assert cache.keys() == [b"k2", b"k1", b"k4", b"k3"]
    s = cache.stats()
    assert (s.hits, s.misses) == (3, 2)
    cache.put(b"k5", b"k5")  # evicts k3, the least recently used after the reads
    assert b"k3" not in cache and cache.keys()[0] == b"k5"


def test_get_many_after_buffered_gets_keeps_their_order(make_cache: Any) -> None:
    cache = make_cache(3, mode="object")
    for k in (b"a", b"b", b"c"):
        cache.put(k, k)
    assert cache.get(b"a") == b"a"  # buffered (single gets are replayed later)
    assert cache.get_many([b"b"]) == [b"b"]
    assert cache.get(b"c") == b"c"
    assert cache.keys() == [b"c", b"b", b"a"]
    assert cache.stats().hits == 3


def test_get_many_while_the_lock_is_held_buffers_its_reads(make_cache: Any) -> None:
    cache = make_cache(3, mode="object")
    for k in (b"a", b"b", b"c"):
        cache.put(k, k)
    out: list = []
    with cache._lock:  # another thread is in an engine call: the reads must wait for it
        worker = threading.Thread(target=lambda: out.append(cache.get_many([b"a", b"zz"])))
        worker.start()
        worker.join(5)
    assert out == [[b"a", None]]
    assert cache.keys() == [b"a", b"c", b"b"]
    s = cache.stats()
    assert (s.hits, s.misses) == (1, 1)

"""``get_many`` on every backend: its reads count and move entries exactly as single gets would,
in order, whether they are replayed within the call (the C read path does so when nothing is
buffered before them and the cache's lock is free) or buffered and replayed later."""

from __future__ import annotations

import threading
from typing import Any

from _changing_list import changing


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


def test_get_many_of_a_list_is_one_c_call_and_other_forms_go_through_python(
    make_cache: Any,
) -> None:
    import pytest

    from alphaforge_cache import CacheClosedError

    cache = make_cache(8, mode="object")
    reader = getattr(cache, "_reader", None)
    if reader is not None:
        assert cache.get_many == reader.get_many_entry
    for i in range(4):
        cache.put(b"k%d" % i, i)
    assert cache.get_many([b"k1", b"zz", b"k2"]) == [1, None, 2]
    assert cache.get_many([b"zz"], 0) == [0]  # default given by position
    assert cache.get_many([b"zz"], default=-1) == [-1]  # by keyword
    assert cache.get_many(keys=[b"k3"]) == [3]
    assert cache.get_many((b"k0", b"k1")) == [0, 1]  # a tuple
    assert cache.get_many(b"k%d" % i for i in (2, 3)) == [2, 3]  # a generator
    assert cache.get_many(["k1", bytearray(b"k2")]) == [1, 2]  # str and bytes-like keys
    assert cache.get_many([]) == []
    with pytest.raises(TypeError):
        cache.get_many([b"k1", 5])
    # Reads count and move as single gets (the failed call read nothing): last read in the
    # order k0, k3, k1, k2, so the ninth entry evicts k0, and the tenth k3.
    s = cache.stats()
    assert (s.hits, s.misses) == (9, 3)
    for i in range(4, 9):
        cache.put(b"k%d" % i, i)
    assert b"k0" not in cache and all(b"k%d" % i in cache for i in (1, 2, 3))
    cache.put(b"t", 1, ttl=60)  # an entry with a deadline: Python serves get_many
    assert b"k3" not in cache
    assert cache.get_many([b"t", b"k2"]) == [1, 2]
    cache.close()
    with pytest.raises(CacheClosedError):
        cache.get_many([b"k1"])


def test_get_many_of_a_list_another_thread_changes_counts_what_it_returns(
    make_cache: Any,
) -> None:
    # A batch of 1500 keys (large enough that the C get_many hands its reads over with the GIL
    # released) while another thread clears, extends and shortens the caller's list: each call
    # returns one value per key the list held when it started, each value its key's, and once
    # the threads stop the counters are exactly the hits and misses the calls returned.
    cache = make_cache(2000, mode="object")
    for i in range(2000):
        cache.put(b"k-%05d" % i, i)
    shared = [b"k-%05d" % i for i in range(1400)] + [b"m-%05d" % i for i in range(100)]
    before = cache.stats()
    hits = misses = 0

    def read() -> None:
        nonlocal hits, misses
        for value in cache.get_many(shared):
            if value is None:
                misses += 1
            else:
                assert 0 <= value < 2000
                hits += 1

    read()  # the whole list, before the other thread starts: 1400 hits, 100 misses
    assert (hits, misses) == (1400, 100)
    # keys stored ("k-...") and absent ("m-...") in turn
    with changing(
        shared, lambda i: [b"km"[j % 2 : j % 2 + 1] + b"-%05d" % j for j in range(i % 1500)]
    ):
        for _ in range(60):
            read()
    after = cache.stats()
    assert (after.hits - before.hits, after.misses - before.misses) == (hits, misses)


def test_get_many_of_a_list_a_key_changes_while_it_is_read_counts_what_it_returns(
    make_cache: Any,
) -> None:
    # The deterministic twin of the test above: a key (bytes of a subclass whose hash empties
    # the caller's list, as another thread may at any moment) would change the list in the
    # middle of the call. The call returns one value per key the list held when it started,
    # and counts exactly those reads; on a cache with deadlines too (Python serves get_many
    # there). Such a key is converted to exact bytes before any table sees it, so its own
    # __hash__ never runs (no user code runs while the cache may hold its lock).
    class EmptiesTheList(bytes):
        def __hash__(self) -> int:
            shared.clear()
            return bytes.__hash__(self)

        def __eq__(self, other: object) -> bool:
            return bytes.__eq__(self, other)

    for ttl in (None, 60.0):
        cache = make_cache(100, mode="object")
        for i in range(50):
            cache.put(b"k-%02d" % i, i, ttl=ttl)
        shared = [b"k-%02d" % i for i in range(20)] + [b"m-%02d" % i for i in range(10)]
        shared[5] = EmptiesTheList(shared[5])
        assert cache.get_many(shared) == list(range(20)) + [None] * 10
        assert len(shared) == 30  # the key's own __hash__ did not run
        s = cache.stats()
        assert (s.hits, s.misses) == (20, 10)
        assert cache.keys()[:3] == [b"k-19", b"k-18", b"k-17"]  # the reads moved them, in turn
        cache.close()

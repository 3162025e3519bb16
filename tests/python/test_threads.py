"""Many threads on one cache: afterwards the bounds hold and the counters add up exactly."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any, List, Optional

import pytest

from alphaforge_cache import EntryTooHeavyError, ManualClock

THREADS = 8
OPS = 2500


def hammer(
    cache: Any,
    clock: ManualClock,
    seed: int,
    lookups: List[int],
    errors: List[BaseException],
    with_get_or_set: bool,
) -> None:
    rng = random.Random(seed)
    counted = 0
    try:
        for _ in range(OPS):
            key = f"k{rng.randrange(300)}"
            op = rng.randrange(14 if with_get_or_set else 13)
            if op < 3:
                cache.get(key)
                counted += 1
            elif op < 6:
                try:
                    cache.put(key, b"v" * rng.randrange(0, 60), ttl=rng.choice([None, 0.5, 2.0]))
                except EntryTooHeavyError:
                    pass
            elif op == 6:
                cache.pop(key, None)
            elif op == 7:
                cache.peek(key)
                _ = key in cache
            elif op == 8:
                keys = [f"k{rng.randrange(300)}" for _ in range(5)]
                cache.get_many(keys)
                counted += len(keys)
            elif op == 9:
                cache.put_many(
                    [(f"k{rng.randrange(300)}", b"w" * rng.randrange(10)) for _ in range(4)]
                )
            elif op == 10:
                len(cache), cache.items(), cache.stats()
            elif op == 11:
                cache.expire()
                clock.advance(0.01)
            elif op == 12:
                try:
                    cache.ttl_of(key)
                except KeyError:
                    pass
            else:
                cache.get_or_set(key, lambda: b"computed")
    except BaseException as error:  # noqa: BLE001
        errors.append(error)
    lookups.append(counted)


@pytest.mark.parametrize("shards", [1, 4, None])
@pytest.mark.parametrize("with_get_or_set", [False, True], ids=["plain", "get_or_set"])
def test_hammer(backend: Any, shards: Optional[int], with_get_or_set: bool) -> None:
    clock = ManualClock()
    told: Counter = Counter()
    lock = threading.Lock()

    def listener(key: bytes, value: Any, cause: str) -> None:
        with lock:
            told[cause] += 1

    max_entries, max_bytes = 128, 3000
    cache = backend(
        max_entries, max_bytes=max_bytes, ttl=1.0, shards=shards, timer=clock, on_evict=listener
    )
    lookups: List[int] = []
    errors: List[BaseException] = []
    threads = [
        threading.Thread(target=hammer, args=(cache, clock, seed, lookups, errors, with_get_or_set))
        for seed in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock?)"
    assert errors == []

    assert len(cache) <= max_entries
    assert cache.weight <= max_bytes
    s = cache.stats()
    items = cache.items()
    assert s.entries == len(items) <= max_entries
    assert s.weight == sum(len(k) + len(v) for k, v in items) <= max_bytes
    assert s.inserts - s.evictions - s.expirations - s.removals == s.entries
    assert told["evicted"] == s.evictions
    assert told["expired"] == s.expirations
    assert told["removed"] + told["cleared"] == s.removals
    assert told["replaced"] == s.updates
    if not with_get_or_set:  # get_or_set's waiters may look up twice
        assert s.hits + s.misses == sum(lookups)
    assert s.inserts > 0 and s.hits > 0 and s.evictions > 0 and s.expirations > 0 and s.removals > 0

    cache.clear()
    s = cache.stats()
    assert s.entries == 0 and s.weight == 0
    assert s.inserts - s.evictions - s.expirations - s.removals == 0
    cache.close()


def test_threads_with_resize_and_set_max_bytes(backend: Any) -> None:
    cache = backend(256, max_bytes=5000, shards=4)
    stop = threading.Event()
    errors: List[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                cache.put(f"k{rng.randrange(1000)}", b"x" * rng.randrange(40))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    rng = random.Random(99)
    try:
        for _ in range(200):
            cache.resize(rng.randrange(4, 257))
            cache.set_max_bytes(rng.randrange(100, 5001))
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert errors == []
    assert len(cache) <= cache.max_entries
    assert cache.weight <= cache.max_bytes
    s = cache.stats()
    assert s.inserts - s.evictions - s.removals - s.expirations == s.entries == len(cache.items())
    cache.close()


def test_close_while_threads_run(backend: Any) -> None:
    from alphaforge_cache import CacheClosedError

    cache = backend(64)
    errors: List[BaseException] = []
    started = threading.Barrier(5)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        started.wait()
        try:
            while True:
                cache.put(f"k{rng.randrange(100)}", b"v")
                cache.get(f"k{rng.randrange(100)}")
        except CacheClosedError:
            return
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    started.wait()
    cache.close()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

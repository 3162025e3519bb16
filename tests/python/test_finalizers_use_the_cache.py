"""A value whose finalizer (``__del__``) uses the cache: however the cache lets go of it (evicted,
replaced, removed, expired, cleared, closed), it is released once the operation has let go of
the cache's lock, which is not reentrant, so the finalizer's own calls run and nothing hangs.
Both backends, with and without an ``on_evict`` listener, each case on a watchdog thread."""

from __future__ import annotations

import gc
from typing import Any, List

import pytest
from _within_time import within_time

from alphaforge_cache import CacheClosedError

HUNG_BECAUSE = "a value was released with the cache's lock held"


class UsesTheCache:
    """A value whose finalizer writes to and reads from the cache that held it."""

    def __init__(self, cache: Any, name: str, log: List[str]) -> None:
        self.cache, self.name, self.log = cache, name, log

    def __del__(self) -> None:
        try:
            self.cache.put(b"from-del", 1)
            self.cache.get(b"kept")
            self.log.append(self.name)
        except CacheClosedError:
            self.log.append(self.name + " (closed)")


CASES = [
    "evicted by put",
    "evicted by put_many",
    "evicted by resize",
    "replaced by put",
    "popped",
    "deleted",
    "expired by expire()",
    "expired, reclaimed by a get",
    "cleared",
    "closed",
]


@pytest.mark.parametrize("listener", [False, True], ids=["no listener", "listener"])
@pytest.mark.parametrize("case", CASES)
def test_a_released_value_may_use_the_cache(
    backend: Any, clock: Any, case: str, listener: bool
) -> None:
    heard: List[str] = []
    on_evict = (lambda key, value, cause: heard.append(cause)) if listener else None
    # Not make_cache: its closing at teardown would wait forever for a lock a hung case holds.
    cache = backend(3, shards=1, mode="object", ttl=10, timer=clock, on_evict=on_evict)
    log: List[str] = []

    def run() -> None:
        cache.put(b"k", UsesTheCache(cache, case, log))  # the least recent entry
        cache.put(b"kept", 0, ttl=1000)
        if case == "evicted by put":
            cache.put(b"a", 1)
            cache.put(b"b", 2)  # the cache holds 3
        elif case == "evicted by put_many":
            cache.put_many([(b"a", 1), (b"b", 2)])
        elif case == "evicted by resize":
            cache.resize(1)
        elif case == "replaced by put":
            cache.put(b"k", 5)
        elif case == "popped":
            assert isinstance(cache.pop(b"k"), UsesTheCache)
        elif case == "deleted":
            del cache[b"k"]
        elif case == "expired by expire()":
            clock.advance(11)
            assert b"k" in cache.expire()
        elif case == "expired, reclaimed by a get":
            clock.advance(11)
            assert cache.get(b"k") is None
        elif case == "cleared":
            cache.clear()
        else:
            cache.close()
        gc.collect()

    within_time(run, HUNG_BECAUSE)
    assert log == [case + (" (closed)" if case == "closed" else "")]
    if case != "closed":
        assert cache.get(b"from-del") == 1  # the finalizer's put landed
        cache.close()
    if listener and case != "popped":
        assert heard  # the listener heard of the removal too

"""A key's own code (``__hash__``, ``__eq__`` of a ``bytes`` subclass) never runs while the cache
holds its lock (CONTRACT, Concurrency): such a key is converted to exact ``bytes`` before any
table or read buffer sees it, so a ``__hash__`` that uses the cache does not hang it, on any
path (served reads, buffered reads replayed later, expired entries, writes). Every case runs on
a watchdog thread."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import pytest
from _within_time import within_time

HUNG_BECAUSE = "a key's own code ran with the cache's lock held"


class UsesTheCache(bytes):
    """A key whose ``__hash__`` and ``__eq__`` write to and read from the cache."""

    cache: Any = None
    calls = 0

    def _use(self) -> None:
        cls = type(self)
        cls.calls += 1
        cls.cache.put(b"side", b"effect")
        cls.cache.peek(b"other")

    def __hash__(self) -> int:
        self._use()
        return bytes.__hash__(self)

    def __eq__(self, other: object) -> bool:
        self._use()
        return bytes.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other


#: Each operation with such a key, and what it returns (the key ``b"k"`` holds ``b"v"``).
OPERATIONS: Dict[str, Callable[[Any, bytes], Any]] = {
    "get": lambda c, k: c.get(k),
    "getitem": lambda c, k: c[k],
    "contains": lambda c, k: k in c,
    "peek": lambda c, k: c.peek(k),
    "get_many": lambda c, k: c.get_many([k, b"absent"]),
    "get_or_set": lambda c, k: c.get_or_set(k, lambda: b"computed"),
    "setdefault": lambda c, k: c.setdefault(k, b"other"),
    "ttl_of": lambda c, k: c.ttl_of(k) is None or c.ttl_of(k) > 0,
    "put": lambda c, k: c.put(k, b"w"),
    "setitem": lambda c, k: c.__setitem__(k, b"w"),
    "put_many": lambda c, k: c.put_many([(k, b"w")]),
    "pop": lambda c, k: c.pop(k),
    "delitem": lambda c, k: c.__delitem__(k),
}

EXPECTED = {
    "get": b"v",
    "getitem": b"v",
    "contains": True,
    "peek": b"v",
    "get_many": [b"v", None],
    "get_or_set": b"v",
    "setdefault": b"v",
    "ttl_of": True,
    "pop": b"v",
}


@pytest.mark.parametrize("expired", [False, True], ids=["live", "expired"])
@pytest.mark.parametrize("mode", ["bytes", "pickle"])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_key_whose_hash_uses_the_cache_does_not_hang_it(
    backend: Any, clock: Any, operation: str, mode: str, expired: bool
) -> None:
    # Not make_cache: its closing at teardown would wait forever for a lock a hung case holds.
    heard: List[Any] = []
    ttl = 1.0 if expired else None
    cache = backend(10, shards=1, mode=mode, timer=clock, on_evict=lambda *a: heard.append(a))
    UsesTheCache.cache = cache
    UsesTheCache.calls = 0

    def run() -> None:
        cache.put(b"k", b"v", ttl=ttl)
        cache.put(b"other", b"o")
        if expired:
            clock.advance(2.0)
        try:
            result = OPERATIONS[operation](cache, UsesTheCache(b"k"))
        except KeyError:
            assert expired and operation in ("getitem", "ttl_of", "pop", "delitem")
        else:
            if not expired and operation in EXPECTED:
                assert result == EXPECTED[operation]
        for _ in range(600):  # fill the read buffer: it is replayed under the lock
            cache.get(b"other")
        cache.stats()
        len(cache)
        assert all(type(key) is bytes for key, _, _ in heard)
        assert all(type(key) is bytes for key in cache.keys())
        cache.close()

    within_time(run, HUNG_BECAUSE)

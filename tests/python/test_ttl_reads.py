"""Gets of entries with deadlines as the clock passes them: on every backend, an expired entry is
never served and a live one always is, whatever was stored, replaced or removed before.

The C read path keeps a *horizon* (no deadline in the mirror is earlier; before it, a get reads
the clock and serves the mirror without looking at the entry's deadline). Where that path is in
use, the tests also check the horizon itself: lowered by every store with a deadline, raised
again after enough checked reads once the entries that held it back are gone, and kept behind
the clock while an expired entry is still stored."""

from __future__ import annotations

import time
from typing import Any, Optional

import pytest

from alphaforge_cache import ManualClock

NEVER = 2**64 - 1
SECOND = 10**9


def horizon(cache: Any) -> Optional[int]:
    """The C read path's horizon, or None where the cache does not use that path."""
    reader = getattr(cache, "_reader", None)
    return None if reader is None else int(reader.horizon)


def test_expired_entry_is_never_served_while_others_are(
    make_cache: Any, clock: ManualClock
) -> None:
    cache = make_cache(100, timer=clock)
    cache.put(b"short", b"s", ttl=1)
    cache.put(b"long", b"l", ttl=100)
    cache.put(b"plain", b"p")
    h = horizon(cache)
    assert h is None or h == 1 * SECOND
    clock.advance(0.5)
    assert [cache.get(k) for k in (b"short", b"long", b"plain")] == [b"s", b"l", b"p"]
    clock.advance(0.5)  # now == the short entry's deadline: expired
    assert cache.get(b"short") is None
    assert cache[b"long"] == b"l"
    assert cache.get(b"plain") == b"p"
    assert b"short" not in cache and cache.peek(b"short") is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.expirations) == (5, 1, 1)


def test_replacing_a_dated_entry_by_a_plain_one(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(100, timer=clock)
    cache.put(b"k", b"old", ttl=1)
    cache.put(b"k", b"new")  # no TTL now: never expires
    clock.advance(5)
    assert cache.get(b"k") == b"new"
    assert cache.peek(b"k") == b"new" and b"k" in cache
    assert cache.ttl_of(b"k") is None


def test_replacing_a_plain_entry_by_a_dated_one(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(100, timer=clock)
    cache.put(b"k", b"old")
    cache.put(b"k", b"new", ttl=1)
    assert cache.get(b"k") == b"new"
    clock.advance(1)
    assert cache.get(b"k") is None
    assert len(cache) == 0


def test_horizon_rises_once_the_early_entries_are_gone(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(1000, timer=clock)
    cache.put(b"early", b"e", ttl=1)
    keys = [b"k%03d" % i for i in range(300)]
    for k in keys:
        cache.put(k, k, ttl=100)
    assert cache.pop(b"early") == b"e"
    if horizon(cache) is not None:
        assert horizon(cache) == 1 * SECOND  # a lower bound: not raised by a removal
    clock.advance(2)  # past the removed entry's deadline, before every stored one
    for _ in range(3):
        assert [cache.get(k) for k in keys] == keys
    if horizon(cache) is not None:
        assert horizon(cache) == 100 * SECOND  # raised by the checked reads
    clock.advance(98)  # now == every deadline
    assert [cache.get(k) for k in keys[:10]] == [None] * 10
    assert cache.stats().hits == 900


def test_an_expired_entry_still_stored_keeps_every_read_checked(
    make_cache: Any, clock: ManualClock
) -> None:
    cache = make_cache(10_000, timer=clock)
    cache.put(b"stale", b"s", ttl=1)
    keys = [b"k%04d" % i for i in range(2000)]
    for k in keys:
        cache.put(k, k, ttl=1000)
    clock.advance(1)  # "stale" expired, never read again: it stays stored until reclaimed
    for _ in range(5):
        assert [cache.get(k) for k in keys] == keys
    h = horizon(cache)
    assert h is None or h <= 1 * SECOND
    assert cache.get(b"stale") is None  # reclaimed now
    assert cache.stats().expirations == 1
    for _ in range(3):
        assert [cache.get(k) for k in keys] == keys
    h = horizon(cache)
    assert h is None or h == 1000 * SECOND


def test_load_and_clear_keep_the_horizon_a_lower_bound(
    make_cache: Any, clock: ManualClock, tmp_path: Any
) -> None:
    path = str(tmp_path / "snap.afc")
    source = make_cache(100, timer=clock)
    source.put(b"a", b"1", ttl=3)
    source.put(b"b", b"2", ttl=30)
    source.save(path)
    cache = make_cache(100, timer=clock)
    cache.put(b"c", b"3", ttl=60)
    cache.load(path)
    h = horizon(cache)
    assert h is None or h <= 3 * SECOND
    clock.advance(3)
    assert cache.get(b"a") is None and cache.get(b"b") == b"2" and cache.get(b"c") is None
    cache.clear()
    cache.put(b"d", b"4")
    clock.advance(100)
    assert cache.get(b"d") == b"4"


@pytest.mark.parametrize("mode", ["bytes", "object"])
def test_no_deadline_keeps_no_horizon(make_cache: Any, mode: str) -> None:
    cache = make_cache(10, mode=mode)
    value: Any = b"v" if mode == "bytes" else object()
    cache.put(b"k", value)
    assert cache.get(b"k") is value
    h = horizon(cache)
    assert h is None or h == NEVER


def test_real_clock_reads_never_serve_an_entry_past_its_deadline(make_cache: Any) -> None:
    # The real clock: the C read path bounds the time between two exact readings (with the
    # time-stamp counter) and must still send every get at or past a deadline to the exact
    # clock. Gets as fast as they come, across the deadlines and many such readings.
    cache = make_cache(100)
    ttls = {b"a": 0.02, b"b": 0.06, b"c": 0.1}
    for key, ttl in ttls.items():
        cache.put(key, key, ttl=ttl)
    put_done = time.monotonic()
    served: dict = {key: [] for key in ttls}
    missed: dict = {key: None for key in ttls}
    while time.monotonic() < put_done + 0.3:
        for key in ttls:
            before = time.monotonic()
            got = cache.get(key)
            if got is None:
                if missed[key] is None:
                    missed[key] = before
            else:
                assert got == key
                assert missed[key] is None, f"{key!r} served again after a miss"
                served[key].append(before)
    # Each deadline is at most `ttl` after the puts ended: a get begun at or after it is never
    # served, and every key has expired since. (A key may never be served at all when this
    # thread is held up past its deadline on a busy machine; not all three, in 100 ms.)
    assert any(served.values())
    for key, ttl in ttls.items():
        assert all(t < put_done + ttl for t in served[key]), f"{key!r} served past its deadline"
        assert missed[key] is not None
    assert cache.stats().expirations == 3

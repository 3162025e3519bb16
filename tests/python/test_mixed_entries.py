"""Caches holding entries with and without deadlines side by side, in every value mode: every
read, view, removal and listener call gives the stored values themselves, in recency order.

The read path keeps the two kinds in different tables (a mirror that serves entries as they are,
and ``_timed`` for those that need a check first); the pure-Python backend keeps every entry in
its recency ``OrderedDict``, with a marker where the value lives in ``_timed``. No marker, and no
entry of the wrong table, may ever reach a caller."""

from __future__ import annotations

from typing import Any, List, Tuple

import pytest

from alphaforge_cache import ManualClock

MODES = ["bytes", "pickle", "object"]


def value_for(mode: str, i: int) -> Any:
    return b"v%d" % i if mode == "bytes" else ("value", i)


def fill(cache: Any, mode: str) -> List[bytes]:
    """Six keys, least recently used first: even ones without a TTL, odd ones with one."""
    keys = [b"k%d" % i for i in range(6)]
    for i, key in enumerate(keys):
        cache.put(key, value_for(mode, i), ttl=None if i % 2 == 0 else 10.0)
    return keys


@pytest.mark.parametrize("mode", MODES)
def test_reads_and_views_give_the_values(make_cache: Any, clock: ManualClock, mode: str) -> None:
    cache = make_cache(8, mode=mode, timer=clock)
    keys = fill(cache, mode)
    expected = [(key, value_for(mode, i)) for i, key in enumerate(keys)]
    assert cache.items() == expected[::-1]
    assert cache.values() == [value for _, value in expected[::-1]]
    assert list(cache) == keys[::-1]
    assert cache.get_many(keys) == [value for _, value in expected]
    for i, key in enumerate(keys):
        assert cache.peek(key) == value_for(mode, i)
        assert key in cache
        assert cache[key] == value_for(mode, i)
    assert cache.get_many(keys[::-1]) == [value for _, value in expected[::-1]]
    assert list(cache) == keys  # the last get_many read them last to first
    assert cache.ttl_of(keys[0]) is None and cache.ttl_of(keys[1]) == pytest.approx(10.0)


@pytest.mark.parametrize("mode", MODES)
def test_removals_tell_the_values(
    make_cache: Any, clock: ManualClock, mode: str, recorder: Any
) -> None:
    cache = make_cache(6, mode=mode, timer=clock, on_evict=recorder)
    keys = fill(cache, mode)
    cache.put(b"new", value_for(mode, 99))  # evicts k0, the least recently used
    assert cache.pop(keys[1]) == value_for(mode, 1)
    cache.put(keys[2], value_for(mode, 22), ttl=5.0)  # replaces an entry without TTL
    cache.put(keys[3], value_for(mode, 33))  # replaces an entry with a TTL
    clock.advance(10.0)  # k2 (5 s) and k5 (10 s) expire; k1 is gone and k3 lost its TTL
    assert cache.expire() == [keys[2], keys[5]]  # most recently used first
    told: List[Tuple[bytes, Any, str]] = list(recorder.calls)
    assert told[:4] == [
        (keys[0], value_for(mode, 0), "evicted"),
        (keys[1], value_for(mode, 1), "removed"),
        (keys[2], value_for(mode, 2), "replaced"),
        (keys[3], value_for(mode, 3), "replaced"),
    ]
    assert told[4:] == [
        (keys[2], value_for(mode, 22), "expired"),
        (keys[5], value_for(mode, 5), "expired"),
    ]
    assert cache.items() == [
        (keys[3], value_for(mode, 33)),
        (b"new", value_for(mode, 99)),
        (keys[4], value_for(mode, 4)),
    ]
    cache.clear()
    assert recorder.calls[-3:] == [
        (keys[3], value_for(mode, 33), "cleared"),
        (b"new", value_for(mode, 99), "cleared"),
        (keys[4], value_for(mode, 4), "cleared"),
    ]
    assert len(cache) == 0 and cache.items() == []


@pytest.mark.parametrize("mode", MODES)
def test_a_load_over_mixed_entries_keeps_the_files(
    make_cache: Any, clock: ManualClock, mode: str, tmp_path: Any
) -> None:
    source = make_cache(8, mode=mode, timer=clock)
    keys = fill(source, mode)
    path = str(tmp_path / "mixed.afcs")
    source.save(path)
    target = make_cache(8, mode=mode, timer=clock)
    # Every key of the file, with the other kind of TTL, and one key the file does not have.
    for i, key in enumerate(keys):
        target.put(key, value_for(mode, 100 + i), ttl=10.0 if i % 2 == 0 else None)
    target.put(b"only-here", value_for(mode, 7), ttl=1.0)
    target.load(path)
    assert target.items() == [(key, value_for(mode, i)) for i, key in enumerate(keys)][::-1]
    assert [target.ttl_of(key) is None for key in keys] == [True, False] * 3
    assert b"only-here" not in target
    clock.advance(20.0)
    assert target.items() == [
        (keys[4], value_for(mode, 4)),
        (keys[2], value_for(mode, 2)),
        (keys[0], value_for(mode, 0)),
    ]

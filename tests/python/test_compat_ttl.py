"""compat.TTLCache's time behaviour as cachetools documents it: ttl, expiry, the timer property
(callable, attributes of the user's timer, a nestable context manager that freezes time), one
timer read per operation, expire() returning the expired items, len/iteration/``in`` ignoring
expired items, and timers that are not numbers (datetime with a timedelta ttl)."""

from __future__ import annotations

import copy
import pickle
import time
from datetime import datetime, timedelta
from typing import Any, List

import pytest

from alphaforge_cache import compat


class Timer:
    """A manual timer; with ``auto``, every read advances it by 1 (so reads are counted)."""

    def __init__(self, auto: bool = False) -> None:
        self.auto = auto
        self.time = 0
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        if self.auto:
            self.time += 1
        return self.time

    def tick(self) -> None:
        self.time += 1


def test_ttl() -> None:
    cache = compat.TTLCache(maxsize=2, ttl=2, timer=Timer())
    assert cache.timer() == 0
    assert cache.ttl == 2
    cache[1] = 1
    assert (cache[1], len(cache), set(cache)) == (1, 1, {1})
    cache.timer.tick()  # attributes of the user's timer are reachable through the property
    assert (cache[1], len(cache), set(cache)) == (1, 1, {1})
    cache[2] = 2
    assert (cache[1], cache[2], len(cache), set(cache)) == (1, 2, 2, {1, 2})
    cache.timer.tick()
    assert 1 not in cache
    assert (cache[2], len(cache), set(cache)) == (2, 1, {2})
    cache[3] = 3
    assert 1 not in cache
    assert (cache[2], cache[3], len(cache), set(cache)) == (2, 3, 2, {2, 3})
    cache.timer.tick()
    assert 1 not in cache and 2 not in cache
    assert (cache[3], len(cache), set(cache)) == (3, 1, {3})
    cache.timer.tick()
    assert 1 not in cache and 2 not in cache and 3 not in cache
    with pytest.raises(KeyError):
        del cache[1]
    with pytest.raises(KeyError):
        cache.pop(2)
    with pytest.raises(KeyError):
        del cache[3]  # expired: removed, and KeyError all the same
    assert len(cache) == 0 and set(cache) == set()


def test_ttl_lru() -> None:
    cache = compat.TTLCache(maxsize=2, ttl=1, timer=Timer())
    cache[1] = 1
    cache[2] = 2
    cache[3] = 3
    assert len(cache) == 2 and 1 not in cache and (cache[2], cache[3]) == (2, 3)
    cache[2]
    cache[4] = 4
    assert len(cache) == 2 and 3 not in cache and (cache[2], cache[4]) == (2, 4)
    cache[5] = 5
    assert len(cache) == 2 and 2 not in cache and (cache[4], cache[5]) == (4, 5)


def test_expire_returns_expired_items() -> None:
    cache = compat.TTLCache(maxsize=3, ttl=3, timer=Timer())
    with cache.timer as now:
        assert now == cache.timer()
    cache[1] = 1
    cache.timer.tick()
    cache[2] = 2
    cache.timer.tick()
    cache[3] = 3
    assert cache.timer() == 2
    assert (set(cache), len(cache)) == ({1, 2, 3}, 3)
    assert cache.expire() == []
    assert cache.expire(3) == [(1, 1)]
    assert (set(cache), len(cache)) == ({2, 3}, 2)
    assert cache.expire(4) == [(2, 2)]
    assert cache.expire(5) == [(3, 3)]
    assert (set(cache), len(cache), cache.currsize) == (set(), 0, 0)


def test_expired_items_are_invisible_until_removed() -> None:
    timer = Timer()
    cache = compat.TTLCache(maxsize=5, ttl=2, timer=timer)
    cache.update({"a": 1, "b": 2})
    timer.time = 1
    cache["c"] = 3
    timer.time = 2  # a and b expired, c alive
    assert "a" not in cache and cache.get("a") is None and cache.get("a", 0) == 0
    assert list(cache) == ["c"] and dict(cache.items()) == {"c": 3}
    with pytest.raises(KeyError):
        cache["a"]
    assert cache.pop("a", None) is None
    assert cache.setdefault("b", 9) == 9  # b is replaced (it had expired)
    assert len(cache) == 2 and cache.currsize == 2
    assert cache.popitem() == ("c", 3)  # the least recently used live item


def test_each_operation_reads_the_timer_once() -> None:
    cache = compat.TTLCache(maxsize=1, ttl=2, timer=Timer(auto=True))
    cache[1] = 1
    assert cache[1] == 1
    cache[1] = 1
    assert cache.get(1) == 1
    cache[1] = 1
    assert cache.pop(1) == 1
    cache[1] = 1
    assert cache.setdefault(1) == 1
    cache[1] = 1
    cache.clear()
    assert len(cache) == 0

    timer = Timer()
    counted = compat.TTLCache(maxsize=2, ttl=10, timer=timer)
    for operation, reads in [
        (lambda: counted.__setitem__(1, 1), 1),
        (lambda: counted[1], 1),
        (lambda: counted.get(1), 1),
        (lambda: counted.get(9), 1),  # a miss reads it too, as in cachetools
        (lambda: 1 in counted, 1),
        (lambda: 9 in counted, 0),
        (lambda: len(counted), 1),
        (lambda: counted.setdefault(2, 2), 1),
        (lambda: counted.pop(2), 1),
        (lambda: counted.popitem(), 1),
        (lambda: counted.expire(), 1),
        (lambda: counted.expire(5), 0),
        (lambda: counted.currsize, 1),
        (lambda: repr(counted), 1),
        (lambda: counted.clear(), 0),
    ]:
        before = timer.reads
        operation()
        assert timer.reads - before == reads


def test_timer_context_freezes_time_and_nests() -> None:
    timer = Timer(auto=True)
    cache = compat.TTLCache(maxsize=3, ttl=2, timer=timer)
    with cache.timer as now:
        assert cache.timer() == now
        with cache.timer as inner:
            assert inner == now and cache.timer() == now
        assert cache.timer() == now
        cache[1] = 1
        cache[2] = 2
        assert cache.get(1) == 1 and 2 in cache and len(cache) == 2
    assert timer.reads == 1  # one read for the whole block
    assert cache.timer() == now + 1  # time runs again
    assert cache.timer() == now + 2
    assert 1 not in cache  # expires = now + 2 <= now + 3


def test_iteration_freezes_time_for_each_key() -> None:
    timer = Timer(auto=True)
    cache = compat.TTLCache(maxsize=3, ttl=100, timer=timer)
    cache.update({1: 1, 2: 2, 3: 3})
    seen: List[Any] = []
    for key in cache:
        seen.append((key, cache.timer(), cache.timer()))  # frozen while the key is handled
    assert [a == b for _, a, b in seen] == [True, True, True]
    assert [k for k, _, _ in seen] == [1, 2, 3]


def test_timer_wraps_the_user_timer() -> None:
    class Clock:
        def __call__(self) -> float:
            return 5.0

        def label(self) -> str:
            return "clock"

    cache = compat.TTLCache(maxsize=2, ttl=1, timer=Clock())
    assert cache.timer() == 5.0
    assert cache.timer.label() == "clock"
    with pytest.raises(AttributeError):
        cache.timer.missing  # noqa: B018
    default = compat.TTLCache(maxsize=2, ttl=1)
    assert abs(default.timer() - time.monotonic()) < 1.0


def test_tuple_keys() -> None:
    cache = compat.TTLCache(maxsize=1, ttl=1, timer=Timer())
    cache[(1, 2, 3)] = 42
    assert cache[(1, 2, 3)] == 42
    cache.timer.tick()
    with pytest.raises(KeyError):
        cache[(1, 2, 3)]
    assert (1, 2, 3) not in cache


def test_datetime_timer_with_timedelta_ttl() -> None:
    cache = compat.TTLCache(maxsize=1, ttl=timedelta(days=1), timer=datetime.now)
    cache[1] = 1
    assert len(cache) == 1
    assert cache.expire(datetime.now()) == []
    assert len(cache) == 1
    assert cache.expire(datetime.now() + timedelta(days=1)) == [(1, 1)]
    assert len(cache) == 0
    with cache.timer as now:
        assert isinstance(now, datetime)


def test_ttl_with_getsizeof() -> None:
    timer = Timer()
    cache = compat.TTLCache(maxsize=3, ttl=2, timer=timer, getsizeof=lambda v: v)
    cache["a"] = 2
    cache["b"] = 1
    assert cache.currsize == 3
    timer.time = 1
    cache["c"] = 2  # evicts a (least recently used) for room
    assert list(cache) == ["b", "c"] and cache.currsize == 3
    timer.time = 2  # b expires
    assert cache.currsize == 2
    with pytest.raises(ValueError, match="value too large"):
        cache["d"] = 4
    assert list(cache) == ["c"]


def test_copy_pickle_deepcopy_keep_times() -> None:
    timer = Timer()
    cache = compat.TTLCache(maxsize=3, ttl=5)
    cache._timer = type(cache.timer)(timer)  # a picklable timer would do; this one is local
    cache.update({1: 1, 2: 2})
    clone = copy.copy(cache)
    assert clone.timer is not cache.timer and clone.timer() == cache.timer()
    assert list(clone.items()) == [(1, 1), (2, 2)]
    real = compat.TTLCache(maxsize=3, ttl=3600)
    real.update({1: 1, 2: 2})
    loaded = pickle.loads(pickle.dumps(real))
    assert list(loaded.items()) == [(1, 1), (2, 2)] and loaded.ttl == 3600
    deep = copy.deepcopy(real)
    assert list(deep.items()) == [(1, 1), (2, 2)]
    expired = compat.TTLCache(maxsize=3, ttl=1e-9)
    expired[1] = 1
    time.sleep(0.001)
    assert len(pickle.loads(pickle.dumps(expired))._od) == 0  # expired on load, as cachetools


def test_subclass_expire_hook_is_called() -> None:
    calls: List[Any] = []

    class Logged(compat.TTLCache):  # type: ignore[type-arg]
        def expire(self, time: Any = None) -> Any:
            items = super().expire(time)
            calls.append((time, items))
            return items

    timer = Timer()
    cache = Logged(maxsize=2, ttl=1, timer=timer)
    cache[1] = 1
    timer.tick()
    cache[2] = 2
    assert calls == [(0, []), (1, [(1, 1)])]
    assert len(cache) == 1 and calls[-1] == (1, [])


def test_default_monotonic_timer_expires_in_real_time() -> None:
    # With time.monotonic (the default), the C read path reads the clock itself: the same
    # clock, so items set through Python expire when time.monotonic says so.
    cache = compat.TTLCache(maxsize=10, ttl=0.5)  # room for a sleep that oversleeps
    cache["a"] = 1
    time.sleep(0.05)
    cache["b"] = 2
    assert cache.get("a") == 1 and "a" in cache and cache["b"] == 2
    deadline = time.monotonic() + 5
    while "a" in cache and time.monotonic() < deadline:
        time.sleep(0.01)
    assert time.monotonic() >= 0.2  # sanity
    assert cache.get("a") is None and "a" not in cache
    with pytest.raises(KeyError):
        cache["a"]
    with cache.timer as now:  # frozen: the reader is no longer time.monotonic itself
        assert cache.timer() == now
        assert ("b" in cache) == (now < cache._exp["b"])
    while "b" in cache and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(cache) == 0
    fresh = compat.TTLCache(maxsize=2, ttl=3600)
    fresh[1] = 1
    fresh._floor = None  # no floor: each read compares with the item's own expiry time
    assert fresh.get(1) == 1 and 1 in fresh and fresh[1] == 1

"""Values leave memory when they leave the cache: a weak reference to a value dies after eviction,
expiry (once reclaimed), removal, replacement, clear and close."""

from __future__ import annotations

import gc
import weakref
from typing import Any, Callable, List

import pytest

from alphaforge_cache import ManualClock


class Value:
    """A weak-referenceable, picklable value."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Value) and other.tag == self.tag

    __hash__ = object.__hash__


def dead(ref: "weakref.ref[Any]") -> bool:
    gc.collect()
    return ref() is None


def fill(cache: Any, n: int, mode: str) -> List["weakref.ref[Any]"]:
    refs = []
    for i in range(n):
        value = Value(f"v{i}")
        cache.put(f"k{i}", value)
        refs.append(weakref.ref(value))
        del value
    return refs


REMOVALS: List[Any] = [
    ("evicted", lambda c, clock: [c.put(f"new{i}", Value("n")) for i in range(3)]),
    ("resize", lambda c, clock: c.resize(1)),
    ("expired-get", lambda c, clock: (clock.advance(10), [c.get(f"k{i}") for i in range(3)])),
    ("expired-expire", lambda c, clock: (clock.advance(10), c.expire())),
    ("expired-len", lambda c, clock: (clock.advance(10), len(c))),
    (
        "expired-evicted",
        lambda c, clock: (
            clock.advance(10),
            [c.put(f"new{i}", Value("n"), ttl=1000) for i in range(3)],
        ),
    ),
    ("removed-pop", lambda c, clock: [c.pop(f"k{i}") for i in range(3)]),
    ("removed-del", lambda c, clock: [c.__delitem__(f"k{i}") for i in range(3)]),
    ("replaced", lambda c, clock: [c.put(f"k{i}", Value("r")) for i in range(3)]),
    ("cleared", lambda c, clock: c.clear()),
    ("closed", lambda c, clock: c.close()),
]


RESIZE = REMOVALS[1][1]


@pytest.mark.parametrize("action", [a for _, a in REMOVALS], ids=[n for n, _ in REMOVALS])
def test_object_mode_values_are_released(
    make_cache: Any, action: Callable[[Any, Any], Any]
) -> None:
    clock = ManualClock()
    told: List[Any] = []
    cache = make_cache(
        3, mode="object", ttl=5, timer=clock, on_evict=lambda k, v, c: told.append(c)
    )
    refs = fill(cache, 3, "object")
    assert not any(dead(r) for r in refs), "the cache must keep its values alive"
    action(cache, clock)
    told.clear()  # the listener's arguments are gone with the call
    gone = refs[:2] if action is RESIZE else refs  # resize(1) keeps the most recent entry
    assert all(dead(r) for r in gone), "a value the cache no longer holds is still alive"
    if action is RESIZE:
        assert not dead(refs[2])


def test_expired_value_alive_until_reclaimed(make_cache: Any) -> None:
    clock = ManualClock()
    cache = make_cache(3, mode="object", ttl=1, timer=clock)
    (ref,) = fill(cache, 1, "object")
    clock.advance(2)
    assert [k for k in cache] == []  # iteration skips without reclaiming
    assert not dead(ref)
    assert cache.expire() == [b"k0"]
    assert dead(ref)


def test_listener_drops_its_references(make_cache: Any) -> None:
    seen: List[str] = []
    cache = make_cache(1, mode="object", on_evict=lambda k, v, c: seen.append(v.tag))
    (ref,) = fill(cache, 1, "object")
    cache.put(b"other", Value("x"))
    assert seen == ["v0"]
    assert dead(ref)


def test_get_or_set_releases_failed_and_too_heavy_values(make_cache: Any) -> None:
    cache = make_cache(
        3, mode="object", max_bytes=5, getsizeof=lambda v: 10 if v.tag == "big" else 1
    )
    refs = []

    def big() -> Value:
        value = Value("big")
        refs.append(weakref.ref(value))
        return value

    cache.get_or_set(b"k", big)
    assert b"k" not in cache
    assert dead(refs[0])


def test_many_evictions_keep_memory_bounded(make_cache: Any, backend: Any) -> None:
    clock = ManualClock()
    cache = make_cache(50, mode="object", ttl=1, timer=clock)
    refs = []
    for i in range(2000):
        value = Value(str(i))
        refs.append(weakref.ref(value))
        cache.put(str(i), value)
        del value
        clock.advance(0.3)
    for _ in range(3):  # PyPy may need more than one pass to clear weak references
        gc.collect()
    alive = sum(1 for r in refs if r() is not None)
    assert alive <= 50


@pytest.mark.parametrize("action", ["evict", "pop", "replace", "clear", "close"])
def test_pickle_mode_holds_no_objects(make_cache: Any, action: str) -> None:
    told: List[Any] = []
    cache = make_cache(2, mode="pickle", on_evict=lambda k, v, c: told.append(weakref.ref(v)))
    value = Value("p")
    ref = weakref.ref(value)
    cache.put(b"k", value)
    got = cache.get(b"k")
    assert got == value and got is not value
    got_ref = weakref.ref(got)
    del value, got
    assert dead(ref) and dead(got_ref), "pickle mode must not keep the object"
    {
        "evict": lambda: [cache.put(f"x{i}", 1) for i in range(2)],
        "pop": lambda: cache.pop(b"k"),
        "replace": lambda: cache.put(b"k", 2),
        "clear": cache.clear,
        "close": cache.close,
    }[action]()
    assert len(told) >= 1
    assert all(dead(r) for r in told), "a value given to the listener is still alive"


def test_keys_released(make_cache: Any) -> None:
    # Keys given as bytearray/memoryview are copied: the caller's buffer is not held.
    cache = make_cache(2)

    class Buffer(bytearray):
        pass

    key = Buffer(b"key")
    ref = weakref.ref(key)
    cache.put(key, b"v")
    view = memoryview(Buffer(b"vk"))
    cache.put(view, b"v")
    view.release()
    del key, view
    assert dead(ref)
    assert sorted(cache.keys()) == [b"key", b"vk"]

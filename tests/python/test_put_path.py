"""Puts that the native backend's C put path (``put_plain`` in ``_reads.c``) serves, and those
it hands to the Python put: on every backend the results are the same. Where the C path is in
use, the tests also check that it is (so the suite covers it, not only the Python put)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from _changing_list import changing

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
    assert sorted(cache._mirror) == [b"a", b"c", b"d"]  # the mirror holds the engine's keys


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


@pytest.mark.parametrize(
    "store",
    [
        pytest.param(lambda cache: cache.put(b"k1", 1), id="put"),
        pytest.param(lambda cache: cache.put_many([(b"k1", 1), (b"k2", 1)]), id="put_many"),
    ],
)
def test_a_write_while_another_thread_holds_the_lock_waits_for_it(
    make_cache: Any, store: Any
) -> None:
    cache = make_cache(4, mode="object")
    cache.put(b"k0", 0)
    done = threading.Event()

    def store_later() -> None:
        store(cache)  # the lock is held: the write waits for it
        done.set()

    with cache._lock:
        worker = threading.Thread(target=store_later)
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


# ----- put_many: the C path (put_many_plain) and the Python one give the same results ----------


def c_put_many_path(cache: Any) -> bool:
    return getattr(cache, "_put_many_plain", None) is not None


@pytest.mark.parametrize("mode", ["bytes", "object"])
def test_put_many_evicts_replaces_and_keeps_the_last_of_a_key(make_cache: Any, mode: str) -> None:
    cache = make_cache(4, mode=mode)
    if getattr(cache, "_reader", None) is not None:
        assert c_put_many_path(cache)
    cache.put_many([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
    assert cache.get(b"a") == b"1"  # buffered: replayed before the next batch's puts
    # d fills the cache; b is replaced twice; e evicts c (a was read), f evicts a.
    cache.put_many([(b"d", b"4"), (b"b", b"22"), (b"e", b"5"), (b"b", b"222"), (b"f", b"6")])
    expected = [b"f", b"b", b"e", b"d"]
    assert cache.keys() == expected
    assert [cache.peek(k) for k in expected] == [b"6", b"222", b"5", b"4"]
    assert b"a" not in cache and b"c" not in cache
    s = cache.stats()
    assert (s.hits, s.inserts, s.updates, s.evictions) == (1, 6, 2, 2)
    assert set(cache._mirror) == set(expected)  # the mirror holds the engine's keys


def test_put_many_with_the_default_ttl_expires(make_cache: Any, clock: ManualClock) -> None:
    cache = make_cache(8, mode="object", ttl=5, timer=clock)
    cache.put(b"k0", 0)  # sets the key length the C path needs
    cache.put_many([(b"k1", 1), (b"k2", 2)])
    assert cache.ttl_of(b"k1") == 5
    clock.advance(4)
    cache.put_many([(b"k3", 3)])
    clock.advance(1)
    assert cache.get(b"k1") is None and cache.get(b"k2") is None and cache.get(b"k0") is None
    assert cache.get(b"k3") == 3 and cache.ttl_of(b"k3") == 4


def test_put_many_of_uncommon_items_takes_the_python_path(make_cache: Any) -> None:
    cache = make_cache(8, mode="bytes")
    cache.put(b"k0", b"0")
    cache.put_many([(b"k1", b"1"), ("k2", b"2")])  # a str key
    cache.put_many([(b"k3", bytearray(b"3")), (b"k4", b"4")])  # a bytes-like value
    cache.put_many([(b"longer", b"5")])  # another key length
    with pytest.raises(TypeError):
        cache.put_many([(b"k5", b"5"), (b"k6", "text")])  # all or none
    assert b"k5" not in cache
    assert cache.get_many([b"k1", b"k2", b"k3", b"k4", b"longer"]) == [
        b"1",
        b"2",
        b"3",
        b"4",
        b"5",
    ]
    assert cache.stats().weight == sum(len(k) + len(v) for k, v in cache.items())


def test_put_many_on_a_closed_cache_raises(make_cache: Any) -> None:
    cache = make_cache(4, mode="object")
    cache.put(b"k", 1)
    cache.close()
    with pytest.raises(CacheClosedError):
        cache.put_many([(b"j", 2)])


def test_put_many_keeps_no_evicted_value_alive(make_cache: Any) -> None:
    import gc
    import weakref

    class Value:
        pass

    cache = make_cache(3, mode="object")
    cache.put(b"k0", Value())
    values = [Value() for _ in range(10)]
    refs = [weakref.ref(v) for v in values]
    cache.put_many([(b"k%d" % i, v) for i, v in enumerate(values)])
    del values
    gc.collect()
    alive = [i for i, r in enumerate(refs) if r() is not None]
    assert alive == [7, 8, 9]
    cache.clear()
    gc.collect()
    assert all(r() is None for r in refs)


@pytest.mark.parametrize("mode", ["bytes", "object"])
def test_put_many_and_get_many_agree_with_a_reference_lru(make_cache: Any, mode: str) -> None:
    import random
    from collections import OrderedDict

    rng = random.Random(7)
    cache = make_cache(50, mode=mode)
    model: "OrderedDict[bytes, bytes]" = OrderedDict()
    hits = 0
    for _ in range(300):
        batch = [b"%03d" % rng.randrange(120) for _ in range(rng.randrange(1, 20))]
        got = cache.get_many(batch)
        for key, value in zip(batch, got):
            expected = model.get(key)
            if expected is not None:
                model.move_to_end(key)
                hits += 1
            assert value == expected
        misses = [(k, k + b"!") for k, v in zip(batch, got) if v is None]
        cache.put_many(misses)
        for key, value in misses:
            model[key] = value
            model.move_to_end(key)
            while len(model) > 50:
                model.popitem(last=False)
    assert cache.keys() == list(reversed(model))
    assert cache.stats().hits == hits


def test_put_many_of_a_list_of_pairs_is_one_c_call_and_other_forms_go_through_python(
    make_cache: Any,
) -> None:
    cache = make_cache(16, mode="object")
    reader = getattr(cache, "_reader", None)
    if reader is not None and c_put_path(cache):
        assert cache.put_many == reader.put_many
    cache.put(b"k0", 0)  # sets the key length the C path needs
    cache.put_many([(b"k1", 1), (b"k2", 2)])
    cache.put_many([[b"k3", 3]])  # pairs as lists
    cache.put_many(((b"k4", 4),))  # a tuple
    cache.put_many((b"k%d" % i, i) for i in (5, 6))  # a generator
    cache.put_many({b"k7": 7})
    cache.put_many([])
    cache.put_many([(b"k8", 8)], ttl=60)
    cache.put_many(items=[(b"k9", 9)])
    assert cache.keys() == [b"k%d" % i for i in range(9, -1, -1)]
    assert [cache.peek(b"k%d" % i) for i in range(10)] == list(range(10))
    with pytest.raises(ValueError):
        cache.put_many([(b"x",)])


@pytest.mark.parametrize("pairs, calls", [(40, 2000), (1500, 60)])
def test_put_many_of_a_list_another_thread_changes_stores_whole_pairs(
    make_cache: Any, pairs: int, calls: int
) -> None:
    # The C put_many works on a copy of the list (on a large batch the engine runs without the
    # GIL): while another thread appends to, shortens and clears the caller's list, every call
    # stores whole pairs (each key with its own value), nothing crashes, and the mirror stays
    # the engine's. Both sizes: a batch of 40 keeps the GIL, one of 1500 releases it.
    cache = make_cache(64, mode="object")
    cache.put(b"k-00000", 0)
    shared = [(b"k-%05d" % i, i) for i in range(pairs)]
    with changing(shared, lambda i: [(b"m-%05d" % j, j) for j in range(i % pairs)]):
        for _ in range(calls):
            cache.put_many(shared)
    for key, value in cache.items():
        assert int(key[2:]) == value
    mirror = getattr(cache, "_mirror", None)
    if mirror is not None:
        assert sorted(mirror) == sorted(cache.keys())

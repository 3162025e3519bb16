"""The native backend's cache lock (``_reads.CacheLock``, ``_cache_lock.c``): a mutex that the C
paths take without calls and Python code takes with ``with``; waits let the GIL go, only its
holder may release it, and a native cache with the C read path uses it."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest

import alphaforge_cache

reads = pytest.importorskip("alphaforge_cache._reads")
CacheLock = reads.CacheLock


def test_acquire_release_and_locked() -> None:
    lock = CacheLock()
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False  # not reentrant: a second take fails at once
    assert lock.acquire(blocking=False) is False
    lock.release()
    assert not lock.locked()
    with lock as entered:
        assert entered is True
        assert lock.locked()
    assert not lock.locked()


def test_release_of_a_lock_not_held_is_refused() -> None:
    lock = CacheLock()
    with pytest.raises(RuntimeError, match="does not hold"):
        lock.release()
    held = threading.Event()
    done = threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            done.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(10)
        with pytest.raises(RuntimeError, match="does not hold"):
            lock.release()  # another thread holds it: it stays held
        assert lock.locked()
    finally:
        done.set()
        t.join()
    assert not lock.locked()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        CacheLock(1)
    with pytest.raises(TypeError):
        CacheLock().acquire(timeout=1)


def test_a_waiting_thread_lets_the_holder_run_python_code() -> None:
    # The waiter blocks with the GIL released: the holder keeps running Python code (it would
    # hang here otherwise) and the waiter gets the lock once it is released.
    lock = CacheLock()
    events: List[str] = []
    lock.acquire()
    waiter_started = threading.Event()

    def waiter() -> None:
        waiter_started.set()
        with lock:
            events.append("waiter")

    t = threading.Thread(target=waiter)
    t.start()
    assert waiter_started.wait(10)
    deadline = time.monotonic() + 0.2
    spins = 0
    while time.monotonic() < deadline:  # Python code on this thread while the other waits
        spins += 1
    events.append("holder")
    lock.release()
    t.join(10)
    assert not t.is_alive()
    assert events == ["holder", "waiter"]
    assert spins > 0


def test_threads_exclude_each_other() -> None:
    lock = CacheLock()
    inside = [0]
    overlaps = [0]
    counter = [0]

    def worker() -> None:
        for _ in range(20_000):
            with lock:
                inside[0] += 1
                if inside[0] != 1:
                    overlaps[0] += 1
                counter[0] += 1
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps[0] == 0
    assert counter[0] == 80_000


@pytest.mark.parametrize("mode", ["object", "bytes"])
def test_a_native_cache_with_the_c_read_path_uses_it(mode: str) -> None:
    cache = alphaforge_cache.NativeCache(4, mode=mode)
    assert isinstance(cache._lock, CacheLock)
    value = b"v" * 8
    for i in range(10):  # puts that evict, through the C put path and its lock
        cache.put(bytes([i]) * 4, value)
    assert not cache._lock.locked()
    assert list(cache.keys()) == [bytes([i]) * 4 for i in range(9, 5, -1)]
    cache.put_many([(bytes([i]) * 4, value) for i in range(20, 30)])
    assert not cache._lock.locked()
    assert len(cache) == 4
    cache.close()


def test_every_native_cache_has_the_lock_that_mends_its_tables() -> None:
    # No C read path for pickled values, but the same lock: it has the tables mended after an
    # operation cut short under it (test_recursion_limit.py).
    for mode in ("bytes", "object", "pickle"):
        cache = alphaforge_cache.NativeCache(4, mode=mode)
        assert isinstance(cache._lock, CacheLock)
        assert not cache._lock.dirty
        with pytest.raises(KeyError):
            with cache._lock:
                raise KeyError("cut short")
        assert cache._lock.dirty
        cache.put(b"k", b"v" if mode == "bytes" else 1)  # mends first
        assert not cache._lock.dirty
        cache.close()


def test_the_c_paths_refuse_a_lock_of_another_type() -> None:
    # They take the lock without calls, so it must be a CacheLock; the one set stays in use.
    cache = alphaforge_cache.NativeCache(4, mode="object")
    with pytest.raises(TypeError, match="CacheLock"):
        cache._reader.set_lock(threading.Lock())
    cache.put(b"k", 1)
    assert cache.get(b"k") == 1
    assert not cache._lock.locked()
    cache.close()

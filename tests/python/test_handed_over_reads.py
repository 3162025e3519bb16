"""Reads handed over to the engine's background thread (native backend): one thread for the
whole process, whatever the number of caches, and a cache used before ``os.fork()`` works in
the child (the thread holds none of the engine's locks while a process forks)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def threads_of_this_process() -> set[str]:
    """The ids of this process's threads. A set, not a count: a thread of an earlier test may
    still be exiting while this one runs, and its leaving must not hide (or fake) a new one."""
    return set(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_many_caches_share_one_background_thread(make_cache: Any) -> None:
    keys = [b"key-%04d" % i for i in range(1000)]
    first = make_cache(2000, mode="bytes")
    first.put_many([(k, b"v") for k in keys])
    first.get_many(keys)  # starts the background thread (native backend), if not yet running
    before = threads_of_this_process()
    caches = [make_cache(2000, mode="bytes") for _ in range(30)]
    for cache in caches:
        cache.put_many([(k, b"v") for k in keys])
        cache.get_many(keys)  # hands 1000 reads over
    assert threads_of_this_process() - before == set()  # no thread started by these caches
    for cache in caches:
        assert cache.stats().hits == len(keys)


def wait_for(pid: int, seconds: float) -> int:
    """The child's exit status; kills it and fails when it has not exited in time (a lock left
    held in the child would hang it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        time.sleep(0.005)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung: a lock was held across the fork")


@needs_fork
def test_a_child_forked_while_reads_are_replayed_uses_the_cache(make_cache: Any) -> None:
    cache = make_cache(20_000, mode="bytes")
    keys = [b"key-%05d" % i for i in range(20_000)]
    cache.put_many([(k, b"v") for k in keys])
    for _ in range(40):
        cache.get_many(keys)  # hands 20k reads over: the engine's thread is replaying them
        pid = os.fork()
        if pid == 0:  # the child: every call must work
            code = 1
            try:
                hits = cache.stats().hits
                cache.get_many(keys[:100])
                cache.put(b"child", b"c")
                ok = cache.get(b"child") == b"c" and cache.stats().hits == hits + 101
                code = 0 if ok else 2
            finally:
                os._exit(code)
        assert wait_for(pid, 20) == 0
    assert cache.stats().hits == 40 * len(keys)

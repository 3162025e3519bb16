"""A cache used before ``os.fork()`` works in the child: the native engine's thread that replays
handed-over reads holds none of the engine's locks while a process forks."""

import os
import time
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


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

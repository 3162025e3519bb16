"""alphaforge_cache.compat on both backends.

The compat classes and decorators are written in Python over dicts and do not call the engine
(``docs/python-api.md`` says why: cachetools' hooks and eviction rules, and the cost of a second
lookup per read), so they behave identically whichever backend ``ALPHAFORGE_CACHE_BACKEND``
selects. This runs one script of every compat feature under each available backend, each in
its own process (the backend is chosen at import), and requires identical transcripts; the
other compat test modules run in-process on the default backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import List

import pytest
from _backends import BACKEND_IDS, package_root

SCRIPT = r"""
import copy, pickle, functools, threading
import alphaforge_cache
from alphaforge_cache import compat
out = [alphaforge_cache.BACKEND]
lru = compat.LRUCache(3, getsizeof=len)
for key, value in [(1, "a"), (1.0, "bb"), (True, "c"), ("k", "dd"), ((1, 2), "e")]:
    lru[key] = value
lru.get("k")
out.append(repr(lru))
out.append(repr(pickle.loads(pickle.dumps(lru, 2))))
out.append(repr(copy.deepcopy(lru)))
out.append(str(lru.popitem()))
now = [0]
ttl = compat.TTLCache(2, 5, timer=lambda: now[0])
ttl["x"] = 1
now[0] = 3
ttl["y"] = 2
now[0] = 5
out.append(str((list(ttl), len(ttl), "x" in ttl, ttl.expire())))
with ttl.timer as t:
    out.append(str((t, ttl.get("y"))))
@compat.lru_cache(maxsize=2, typed=True)
def f(x):
    return x
for x in (1, 1.0, 1, "a", 1):
    f(x)
out.append(str(f.cache_info()))
@compat.cached(compat.LRUCache(2), info=True, lock=threading.Lock())
def g(x):
    return x
for x in (1, 2, 1, 3, 2):
    g(x)
out.append(str(g.cache_info()))
out.append(str(compat.LRUCache[str, int]))
print("\n".join(out))
"""


def transcript(backend: str) -> List[str]:
    env = dict(os.environ)
    env["ALPHAFORGE_CACHE_BACKEND"] = backend
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root(), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("backend", BACKEND_IDS)
def test_compat_behaves_the_same_on_every_backend(backend: str) -> None:
    lines = transcript(backend)
    assert lines[0] == backend
    reference = transcript("python")
    assert lines[1:] == reference[1:]
    assert reference[1] == "LRUCache({'k': 'dd', (1, 2): 'e'}, maxsize=3, currsize=3)"

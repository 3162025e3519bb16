"""alphaforge_cache.compat on both backends.

The compat caches keep their items in Python dicts and do not call the engine
(``docs/python-api.md`` says why); what the backend selects is their read path: C
(``compat._speedups``) with the native backend where it is built, Python with the pure-Python
backend (and on PyPy). The other compat test modules run in-process on the default selection;
this module runs them all again in a subprocess under the other backend, and compares one
transcript of every compat feature under each backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import List

import pytest
from _backends import package_root

import alphaforge_cache
from alphaforge_cache.compat import _core

HERE = os.path.dirname(os.path.abspath(__file__))

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


def run(backend: str, args: List[str], timeout: int = 60) -> "subprocess.CompletedProcess[str]":
    env = dict(os.environ)
    env["ALPHAFORGE_CACHE_BACKEND"] = backend
    # The child's backends are the one forced here, whichever a sanitizer run chose for this one.
    env.pop("AFC_TEST_BACKENDS", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root(), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def native_available() -> bool:
    """Whether ALPHAFORGE_CACHE_BACKEND=native imports here (whatever this process chose)."""
    if alphaforge_cache.NativeCache is not None:
        return True
    return run("native", ["-c", "import alphaforge_cache"]).returncode == 0


#: The ALPHAFORGE_CACHE_BACKEND values that work here.
POLICIES = ["python"] + (["native"] if native_available() else [])


def transcript(backend: str) -> List[str]:
    done = run(backend, ["-c", SCRIPT])
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("backend", POLICIES)
def test_compat_behaves_the_same_on_every_backend(backend: str) -> None:
    lines = transcript(backend)
    assert lines[0] == backend
    reference = transcript("python")
    assert lines[1:] == reference[1:]
    assert reference[1] == "LRUCache({'k': 'dd', (1, 2): 'e'}, maxsize=3, currsize=3)"


def test_compat_suite_under_the_other_backend() -> None:
    """The whole compat suite again, with the other read path (C here: Python there)."""
    other = "python" if _core.ACCELERATED else "native"
    if other not in POLICIES:
        pytest.skip("the native backend is not built: one read path only")
    probe = run(
        other, ["-c", "from alphaforge_cache.compat import _core; print(_core.ACCELERATED)"]
    )
    assert probe.returncode == 0, probe.stderr
    if (probe.stdout.strip() == "True") == _core.ACCELERATED:
        pytest.skip("both backends use the same compat read path here (no C extension / PyPy)")
    modules = sorted(
        os.path.join(HERE, name)
        for name in os.listdir(HERE)
        if name.startswith("test_compat_") and name != "test_compat_backends.py"
    )
    plain = ["--assert=plain"] if sys.implementation.name == "pypy" else []
    done = run(other, ["-m", "pytest", "-q", "-p", "no:cacheprovider", *plain, *modules], 900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

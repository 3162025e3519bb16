"""compat.cached, compat.keys and compat.ttl_cache as cachetools documents them (in the style of
cachetools' test_cached.py and test_func.py), and against cachetools 8 when it is installed."""

from __future__ import annotations

import copy
import pickle
import threading
import time
from typing import Any, List

import pytest

from alphaforge_cache import compat
from alphaforge_cache.compat import keys


class CountedLock:
    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        pass


@compat.cached(compat.LRUCache(4))
def module_level(x: int) -> int:
    return x


def test_keys() -> None:
    assert keys.hashkey(1, 2) == (1, 2)
    assert keys.hashkey(1, 2) == keys.hashkey(1.0, 2.0)
    assert keys.hashkey(b=2, a=1) == keys.hashkey(a=1, b=2)  # keyword order does not matter
    assert keys.hashkey(1, a=1) != keys.hashkey(1, 1)
    assert keys.typedkey(1) != keys.typedkey(1.0)
    assert keys.typedkey(1, a=1) != keys.typedkey(1, a=1.0)
    assert keys.methodkey(object(), 1, x=2) == keys.hashkey(1, x=2)
    assert keys.typedmethodkey(object(), 1) == keys.typedkey(1)
    assert pickle.loads(pickle.dumps(keys.hashkey(1, a=2))) == keys.hashkey(1, a=2)
    with pytest.raises(TypeError):
        hash(keys.hashkey([1]))


@pytest.mark.parametrize("make", [lambda: compat.LRUCache(2), lambda: {}], ids=["LRU", "dict"])
def test_cached_basic(make: Any) -> None:
    cache = make()
    calls: List[Any] = []

    @compat.cached(cache)
    def f(x: Any) -> Any:
        calls.append(x)
        return x * 2

    assert f(1) == 2 and f(1) == 2 and f(1.0) == 2  # 1 and 1.0 are one key
    assert calls == [1]
    assert len(cache) == 1
    assert f.cache is cache and f.cache_key is keys.hashkey
    assert f.cache_lock is None and f.cache_condition is None
    assert not hasattr(f, "cache_info")
    f.cache_clear()
    assert len(cache) == 0


def test_cached_info_lock_and_typed_key() -> None:
    lock = CountedLock()
    cache = compat.LRUCache(2)

    @compat.cached(cache, key=keys.typedkey, lock=lock, info=True)
    def f(x: Any) -> Any:
        return x

    assert f.cache_info() == (0, 0, 2, 0)
    f(1)
    f(1)
    f(1.0)
    assert f.cache_info() == (1, 2, 2, 2)
    assert lock.count == 7  # two per miss, one per hit, one per cache_info
    f.cache_clear()
    assert f.cache_info() == (0, 0, 2, 0)

    plain: Any = {}

    @compat.cached(plain, info=True)
    def g(x: Any) -> Any:
        return x

    g(1)
    assert g.cache_info() == (0, 1, None, 1)  # a dict has no maxsize: None and len()


def test_value_too_large_is_returned_not_cached() -> None:
    cache = compat.LRUCache(maxsize=1, getsizeof=lambda v: v)

    for lock in (None, threading.Lock()):

        @compat.cached(cache, lock=lock)
        def f(x: int) -> int:
            return x

        assert f(5) == 5
        assert len(cache) == 0
        assert f(1) == 1 and len(cache) == 1
        cache.clear()


def test_condition_computes_once_for_concurrent_calls() -> None:
    computed: List[int] = []
    gate = threading.Event()

    @compat.cached(compat.LRUCache(10), condition=threading.Condition(), info=True)
    def slow(x: int) -> int:
        computed.append(x)
        gate.wait(5)
        return x

    threads = [threading.Thread(target=slow, args=(1,)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    gate.set()
    for t in threads:
        t.join()
    assert computed == [1]
    assert slow.cache_info() == (3, 1, 10, 1)


def test_wrapper_is_a_descriptor_and_copies_by_reference() -> None:
    class A:
        def __init__(self, n: int) -> None:
            self.n = n

        @compat.cached(compat.LRUCache(4), key=keys.methodkey)
        def m(self, x: int) -> int:
            return self.n + x

    a, b = A(1), A(10)
    assert a.m(1) == 2
    assert b.m(1) == 2  # methodkey leaves self out: one entry for both
    assert A.m.__wrapped__.__name__ == "m"
    assert copy.copy(module_level) is module_level
    assert copy.deepcopy(module_level) is module_level
    assert pickle.loads(pickle.dumps(module_level)) is module_level
    assert repr(module_level).startswith("<cached <function module_level")
    assert module_level.__name__ == "module_level" and module_level.__doc__ is None


def test_cached_rejects_none() -> None:
    with pytest.raises(TypeError):
        compat.cached(None)


def test_ttl_cache_decorator() -> None:
    now = [0]

    @compat.ttl_cache(maxsize=2, ttl=10, timer=lambda: now[0])
    def f(x: int) -> int:
        return x

    f(1)
    f(1)
    assert f.cache_info() == (1, 1, 2, 1)
    assert f.cache_parameters() == {"maxsize": 2, "typed": False}
    now[0] = 10
    f(1)  # expired
    assert f.cache_info() == (1, 2, 2, 1)
    assert isinstance(f.cache, compat.TTLCache)

    @compat.ttl_cache
    def g(x: int) -> int:
        return x

    g(1)
    assert g.cache_info() == (0, 1, 128, 1)
    assert g.cache.ttl == 600

    @compat.ttl_cache(maxsize=None, ttl=1, typed=True)
    def h(x: Any) -> Any:
        return x

    h(1)
    h(1.0)
    assert h.cache_info() == (0, 2, None, 2)
    assert h.cache_parameters() == {"maxsize": None, "typed": True}


def test_same_as_cachetools_decorators() -> None:
    cachetools = pytest.importorskip("cachetools")
    if int(cachetools.__version__.split(".")[0]) < 8:  # pragma: no cover
        pytest.skip("the reference is cachetools 8")
    import cachetools.func

    now = [0]
    ours = compat.ttl_cache(maxsize=3, ttl=4, timer=lambda: now[0])(lambda x: x)
    theirs = cachetools.func.ttl_cache(maxsize=3, ttl=4, timer=lambda: now[0])(lambda x: x)
    ours_c = compat.cached(compat.LRUCache(3), info=True)(lambda x, y=0: (x, y))
    theirs_c = cachetools.cached(cachetools.LRUCache(3), info=True)(lambda x, y=0: (x, y))
    for step, x in enumerate([1, 2, 1, 3, 4, 1, 2, 2, 5, 1, 1, 3]):
        now[0] = step
        assert ours(x) == theirs(x)
        assert ours.cache_info() == theirs.cache_info()
        assert ours_c(x, y=step % 2) == theirs_c(x, y=step % 2)
        assert ours_c.cache_info() == theirs_c.cache_info()
        assert list(ours.cache.items()) == list(theirs.cache.items())

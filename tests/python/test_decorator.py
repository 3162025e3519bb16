"""``@alphaforge_cache.cached`` on both backends: functions, methods, coroutines, statistics,
argument matching like ``functools.lru_cache``, TTL, exceptions, threads."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any, List

import pytest

import alphaforge_cache
from alphaforge_cache import ManualClock, cached


def test_memoizes_and_reports_like_lru_cache(backend: Any) -> None:
    calls: List[int] = []

    @cached(2, cache_type=backend)
    def double(x: int) -> int:
        calls.append(x)
        return x * 2

    assert [double(1), double(1), double(2), double(3), double(1)] == [2, 2, 4, 6, 2]
    assert calls == [1, 2, 3, 1], "1 was evicted by 3 (LRU of 2), so it is computed again"
    info = double.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (1, 4, 2, 2)
    assert double.__name__ == "double"
    double.cache_clear()  # type: ignore[attr-defined]
    assert double.cache_info() == alphaforge_cache.CacheInfo(0, 0, 2, 0)  # type: ignore[attr-defined]


def test_arguments_match_as_in_lru_cache(backend: Any) -> None:
    calls: List[Any] = []

    @cached(16, cache_type=backend)
    def f(*args: Any, **kwargs: Any) -> int:
        calls.append((args, kwargs))
        return len(calls)

    assert f(1) == f(1.0) == f(True) == 1, "equal arguments are one key (typed=False)"
    assert f(1, b=2) == 2 and f(1, b=2) == 2
    assert f(x=1, y=2) == 3 and f(y=2, x=1) == 4, "keyword order matters, as in functools"

    @cached(16, typed=True, cache_type=backend)
    def g(x: Any) -> str:
        return type(x).__name__

    assert (g(1), g(1.0)) == ("int", "float")
    with pytest.raises(TypeError):
        f([1])


def test_methods_cache_per_instance(backend: Any) -> None:
    class Quotes:
        def __init__(self, base: int) -> None:
            self.base = base
            self.calls = 0

        @cached(8, cache_type=backend)
        def price(self, n: int) -> int:
            self.calls += 1
            return self.base + n

    a, b = Quotes(100), Quotes(200)
    assert (a.price(1), a.price(1), b.price(1)) == (101, 101, 201)
    assert (a.calls, b.calls) == (1, 1)


def test_coroutines(backend: Any) -> None:
    calls: List[int] = []

    @cached(8, cache_type=backend)
    async def fetch(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0)
        return x + 1

    async def main() -> List[int]:
        return [await fetch(1), await fetch(1), await fetch(2)]

    assert asyncio.run(main()) == [2, 2, 3]
    assert calls == [1, 2]


def test_ttl_and_exceptions(backend: Any) -> None:
    clock = ManualClock()
    calls: List[int] = []

    @cached(8, ttl=10, timer=clock, cache_type=backend)
    def f(x: int) -> int:
        calls.append(x)
        if x < 0:
            raise ValueError("negative")
        return x

    f(1)
    clock.advance(9)
    f(1)
    clock.advance(1)
    f(1)
    assert calls == [1, 1], "recomputed once the result expired"
    with pytest.raises(ValueError):
        f(-1)
    with pytest.raises(ValueError):
        f(-1)
    assert calls == [1, 1, -1, -1], "exceptions are not cached"


@pytest.mark.parametrize("kind", ["function", "coroutine"])
def test_an_expired_result_is_computed_once_and_leaves_no_orphan(backend: Any, kind: str) -> None:
    # The call that finds its result expired reclaims the entry (on_evict drops the argument's
    # mapping) and stores the new result under the same token: the mapping must come back, or
    # the next call computes again under a new token and the old entry stays, orphaned.
    clock = ManualClock()
    calls: List[str] = []

    def compute(symbol: str) -> int:
        calls.append(symbol)
        return len(calls)

    if kind == "function":
        price: Any = cached(10, ttl=1.0, timer=clock, cache_type=backend)(compute)
        call = price
    else:

        async def fetch(symbol: str) -> int:
            return compute(symbol)

        price = cached(10, ttl=1.0, timer=clock, cache_type=backend)(fetch)

        def call(symbol: str) -> int:
            return int(asyncio.run(price(symbol)))

    assert call("AAPL") == 1
    for cycle in range(1, 4):
        clock.advance(2.0)
        assert [call("AAPL"), call("AAPL"), call("AAPL")] == [cycle + 1] * 3
        assert len(calls) == cycle + 1, "one computation per expiry"
        info = price.cache_info()
        assert info.currsize == 1, "no orphan entry"
        assert len(price.cache.keys()) == 1
    assert (info.hits, info.misses) == (6, 4)


def test_a_result_too_heavy_to_store_is_returned_each_time(backend: Any) -> None:
    calls: List[int] = []

    @cached(4, max_bytes=10, getsizeof=len, cache_type=backend)
    def rows(n: int) -> bytes:
        calls.append(n)
        return b"x" * n

    assert [rows(20), rows(20), rows(3), rows(3)] == [b"x" * 20, b"x" * 20, b"xxx", b"xxx"]
    assert calls == [20, 20, 3], "the heavy result is computed again, the light one kept"
    assert rows.cache_info().currsize == 1  # type: ignore[attr-defined]


def test_threads_compute_once(backend: Any) -> None:
    calls: List[int] = []
    start = threading.Barrier(6)

    @cached(8, cache_type=backend)
    def slow(x: int) -> int:
        calls.append(x)
        time.sleep(0.05)
        return x

    def worker() -> None:
        start.wait()
        assert slow(7) == 7

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [7]


def test_bare_cached_uses_the_defaults(backend: Any, monkeypatch: Any) -> None:
    # As @functools.lru_cache: the function came as max_entries. It used to be taken for
    # the decorator's argument, and f became the inner decorator: f(1) then raised
    # "max_entries must be an int, not function".
    monkeypatch.setattr(alphaforge_cache, "Cache", backend)  # the backend @cached builds
    calls: List[int] = []

    @cached
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    assert [double(1), double(1), double(2)] == [2, 2, 4]
    assert calls == [1, 2]
    assert double.__name__ == "double"
    assert double.cache_info() == alphaforge_cache.CacheInfo(1, 2, 128, 2)
    assert type(double.cache) is backend


def _deepest(decorate: Any) -> int:
    """The deepest recursion a function decorated by ``decorate`` reaches from here."""
    low, high = 1, 5000
    while low < high:
        mid = (low + high + 1) // 2

        @decorate
        def down(n: int) -> int:
            return 0 if n == 0 else down(n - 1) + 1

        try:
            down(mid)
            low = mid
        except RecursionError:
            high = mid - 1
        except TypeError as error:  # PyPy: the limit hit again while chaining the error
            if "exception context" not in str(error):
                raise
            high = mid - 1
    return low


def test_a_memoized_recursion_costs_three_frames_a_level(backend: Any, without_gc: None) -> None:
    # Each level is the wrapper, get_or_set and the function (a lambda around the call made it
    # four: recursive memoized functions failed at a quarter of the plain depth). Before 3.11
    # a call through C code (functools.partial's) counts against the limit too: one more.
    # Every probe that fails leaves nothing held (on PyPy too, where it once hung:
    # test_recursion_limit.py).
    plain = _deepest(lambda f: f)
    memoized = _deepest(cached(100_000, cache_type=backend))
    per_level = 3 if sys.version_info >= (3, 11) else 4
    assert memoized * per_level >= plain - 60, (memoized, plain)


def test_an_argument_whose_hash_and_eq_call_the_memoized_function_does_not_hang(
    backend: Any,
) -> None:
    # The decorator's own lock guards its map of arguments to entries; an argument's
    # __hash__ or __eq__ that calls the memoized function (user code) must not wait for it.
    class Arg:
        def __init__(self, n: int) -> None:
            self.n = n

        def __hash__(self) -> int:
            return square(self.n % 3) if self.n >= 10 else self.n

        def __eq__(self, other: object) -> bool:
            square(1)
            return isinstance(other, Arg) and other.n == self.n

    @cached(16, cache_type=backend)
    def square(x: Any) -> int:
        return x.n * x.n if isinstance(x, Arg) else x * x

    results: List[int] = []
    worker = threading.Thread(
        target=lambda: results.extend(square(Arg(n)) for n in (10, 11, 10, 11)), daemon=True
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "a memoized call waited for itself"
    assert results == [100, 121, 100, 121]

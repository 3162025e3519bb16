"""The documented Python API as a user's code type-checked with ``mypy --strict`` uses it (tox's
``type`` env checks this file with the package; ``test_typed_usage.py`` runs it on every
backend, so that what it shows also works). Each ``assert_type`` says what a type checker must
infer; they run only under the type checker."""

from __future__ import annotations

import asyncio
import functools
import os
import pathlib
from typing import TYPE_CHECKING, Any, Coroutine, Dict, List, Optional, Type

import alphaforge_cache as afc
from alphaforge_cache import compat

if TYPE_CHECKING:
    from typing_extensions import assert_type


def main(folder: str) -> None:
    cache = afc.Cache(10)
    cache.put_many({b"a": b"1"})  # the documented Mapping forms
    cache.put_many({"b": b"2"})
    cache.put_many([(b"c", b"3"), ("d", b"4")])
    values: List[Any] = cache.get_many([b"a", "b"])
    assert values == [b"1", b"2"]

    with afc.Cache(10, ttl=60.0) as inner:  # `with Cache(...) as c:` gives the class
        stats: afc.Stats = inner.stats()
        bound: int = inner.max_entries
        limit: Optional[int] = inner.max_bytes
        gone: List[bytes] = inner.expire()
        inner.resize(20)
        weight: int = inner.weight
        assert (stats.hits, bound, limit, gone, weight) == (0, 10, None, [], 0)
    with afc.PackedCache(10) as packed:
        packed.put(b"k", b"v")
        assert packed.stats().inserts == 1

    cache.save(os.path.join(folder, "a.afcs"))  # str, bytes or PathLike
    cache.save(os.fsencode(os.path.join(folder, "b.afcs")))
    cache.load(pathlib.Path(folder) / "a.afcs")

    @afc.cached(128, ttl=30.0)
    def instrument(symbol: str) -> int:
        return len(symbol)

    assert instrument("AAPL") == 4
    info: afc.CacheInfo = instrument.cache_info()
    assert info.misses == 1
    instrument.cache_clear()
    assert instrument.cache.stats().hits == 0

    @afc.cached  # bare, as @functools.lru_cache
    def bare_cached(n: int) -> int:
        return n

    assert bare_cached(2) == 2 and bare_cached.cache_info().maxsize == 128

    @afc.cached()
    async def fetch(symbol: str) -> str:
        return symbol.lower()

    assert asyncio.run(fetch("AAPL")) == "aapl"
    assert fetch.cache_info().misses == 1

    @compat.lru_cache(maxsize=None)  # "change the import only", as functools'
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    @functools.lru_cache(maxsize=None)
    def fib0(n: int) -> int:
        return n if n < 2 else fib0(n - 1) + fib0(n - 2)

    assert fib(20) == fib0(20)
    assert fib.cache_info().hits == fib0.cache_info().hits
    assert fib.cache_parameters()["maxsize"] is None

    @compat.lru_cache
    def bare(n: int) -> int:
        return n

    @compat.cache
    def square(n: int) -> int:
        return n * n

    assert bare(1) + square(2) == 5
    bare.cache_clear()

    @compat.cached(compat.LRUCache(256), info=True)
    def quote(symbol: str) -> float:
        return 1.0

    @compat.cached(cache={})
    def plain(symbol: str) -> float:
        return 2.0

    assert quote("X") + plain("Y") == 3.0
    assert quote.cache_info().misses == 1
    plain.cache_clear()

    @compat.ttl_cache(maxsize=10, ttl=1)
    def tq(x: int) -> int:
        return x

    @compat.ttl_cache
    def tq_bare(x: int) -> int:
        return x

    assert tq(1) + tq_bare(2) == 3
    assert tq.cache_info().misses == 1
    assert tq_bare.cache_parameters()["maxsize"] == 128

    native: Optional[Type[afc.Cache]] = None
    if afc.NativeCache is not None:  # a class, or None where the extension is not built
        made = afc.NativeCache(10)
        made.put(b"k", b"v")
        made.close()

    if TYPE_CHECKING:
        assert_type(inner, afc.Cache)
        assert_type(packed, afc.PackedCache)
        assert_type(instrument("X"), int)
        assert_type(bare_cached(1), int)
        assert_type(fetch, afc.CachedFunction[Coroutine[Any, Any, str]])
        assert_type(fib(3), int)
        assert_type(quote("X"), float)
        assert_type(tq(3), int)
        assert_type(tq_bare(3), int)
        assert_type(afc.NativeCache, Optional[Type[afc._native.Cache]])
        config: Dict[str, Any] = fib.cache_parameters()
        assert native is None and config


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        main(folder)
    print("ok", afc.BACKEND)

"""``ttl_cache``: a memoizing decorator over a ``TTLCache``, as ``cachetools.func.ttl_cache``."""

from __future__ import annotations

import math
import time
from threading import Condition
from typing import Any, Callable, Dict, Optional, Protocol, TypeVar, Union, overload

from . import keys
from ._cached import CachedInfoWrapper, cached
from ._ttl import TTLCache

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class TTLCacheWrapper(CachedInfoWrapper[_T_co], Protocol[_T_co]):
    """What ``ttl_cache`` makes of a function returning ``_T_co``, for type checkers: a
    ``cached(..., info=True)`` wrapper with ``cache_parameters()``."""

    def cache_parameters(self) -> Dict[str, Any]: ...


class _UnboundTTLCache(TTLCache[Any, Any]):
    """The cache of ``ttl_cache(maxsize=None)``: no bound; ``maxsize`` reads ``None``."""

    __slots__ = ()

    def __init__(self, ttl: Any, timer: Callable[[], Any]) -> None:
        TTLCache.__init__(self, math.inf, ttl, timer)

    @property
    def maxsize(self) -> None:
        """``None``: the cache has no bound."""
        return None


def _cache(
    cache: Any, maxsize: Optional[int], typed: bool
) -> Callable[[Callable[..., _T]], TTLCacheWrapper[_T]]:
    def decorator(func: Callable[..., _T]) -> TTLCacheWrapper[_T]:
        # Like functools.lru_cache this must be thread-safe; the condition also makes
        # concurrent calls with one key wait for a single computation.
        key = keys.typedkey if typed else keys.hashkey
        wrapper = cached(cache=cache, key=key, condition=Condition(), info=True)(func)
        wrapper.cache_parameters = lambda: {"maxsize": maxsize, "typed": typed}  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


@overload
def ttl_cache(
    maxsize: Callable[..., _T],
    ttl: Any = ...,
    timer: Callable[[], Any] = ...,
    typed: bool = ...,
) -> TTLCacheWrapper[_T]: ...


@overload
def ttl_cache(
    maxsize: Optional[float] = ...,
    ttl: Any = ...,
    timer: Callable[[], Any] = ...,
    typed: bool = ...,
) -> Callable[[Callable[..., _T]], TTLCacheWrapper[_T]]: ...


def ttl_cache(
    maxsize: Any = 128,
    ttl: Any = 600,
    timer: Callable[[], Any] = time.monotonic,
    typed: bool = False,
) -> Union[TTLCacheWrapper[Any], Callable[[Callable[..., Any]], TTLCacheWrapper[Any]]]:
    """Decorator to wrap a function with a memoizing callable that saves up to ``maxsize``
    results based on a Least Recently Used (LRU) algorithm with a per-item time-to-live
    (``ttl``, measured by ``timer``), as ``cachetools.func.ttl_cache``.

    ``maxsize=None`` keeps any number of results; ``@ttl_cache`` without parentheses uses the
    defaults. The wrapper has ``cache_info()``, ``cache_clear()``, ``cache_parameters()`` and
    ``cache`` (the ``TTLCache``); it is thread-safe.
    """
    if maxsize is None:
        return _cache(_UnboundTTLCache(ttl, timer), None, typed)
    if callable(maxsize):
        return _cache(TTLCache(128, ttl, timer), 128, typed)(maxsize)
    return _cache(TTLCache(maxsize, ttl, timer), maxsize, typed)

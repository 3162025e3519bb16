"""``cached``: the memoizing decorator of cachetools, for any mutable mapping as the cache.

``cached(cache, key=hashkey, lock=None, condition=None, info=False)`` wraps a function in an
object that looks its result up in ``cache`` under ``key(*args, **kwargs)``, and calls the
function and stores the result on a miss (a ``ValueError`` from the store, "value too large", is
ignored: the result is returned, not cached). With ``lock``, every access to the cache happens
under it (the function runs outside it); with ``condition``, concurrent calls with one key wait
for the first one's result instead of computing it again. With ``info=True`` the wrapper counts
hits and misses (``cache_info()``).

The wrapper behaves as cachetools' (8.x): it binds as a method (``__get__``), copies and deep
copies as itself, pickles by reference (its qualified name), and exposes ``cache``,
``cache_key``, ``cache_lock``, ``cache_condition``, ``cache_clear()`` and ``__wrapped__``.
"""

from __future__ import annotations

import functools
import types
from typing import (
    Any,
    Callable,
    Dict,
    Hashable,
    Literal,
    NamedTuple,
    Protocol,
    Set,
    TypeVar,
    overload,
)

from . import keys

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class CacheInfo(NamedTuple):
    """Statistics of a ``cached(..., info=True)`` function: ``(hits, misses, maxsize,
    currsize)``; ``maxsize`` and ``currsize`` are the cache's (``None`` and ``len(cache)`` for a
    mapping without them, such as a ``dict``)."""

    hits: int
    misses: int
    maxsize: Any
    currsize: Any


class CachedWrapper(Protocol[_T_co]):
    """What ``cached`` makes of a function returning ``_T_co``, for type checkers (as the
    typeshed stubs of cachetools type it: the arguments are any values)."""

    __name__: str
    __qualname__: str
    cache: Any
    cache_key: Callable[..., Hashable]
    cache_lock: Any
    cache_condition: Any

    @property
    def __wrapped__(self) -> Callable[..., _T_co]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> _T_co: ...

    def cache_clear(self) -> None: ...


class CachedInfoWrapper(CachedWrapper[_T_co], Protocol[_T_co]):
    """What ``cached(..., info=True)`` makes of a function: with ``cache_info()``."""

    def cache_info(self) -> "CacheInfo": ...


def make_info(cache: Any, hits: int, misses: int) -> CacheInfo:
    """The ``CacheInfo`` of a cache (a cachetools-style cache has ``maxsize``/``currsize``)."""
    if hasattr(cache, "maxsize") and hasattr(cache, "currsize"):
        return CacheInfo(hits, misses, cache.maxsize, cache.currsize)
    return CacheInfo(hits, misses, None, len(cache))


class _Wrapper:
    """The callable ``cached`` returns (one subclass per combination of lock and info)."""

    cache: Any
    cache_key: Callable[..., Hashable]
    cache_lock: Any
    cache_condition: Any
    __wrapped__: Callable[..., Any]
    __qualname__: str

    def __init__(
        self, func: Callable[..., Any], cache: Any, key: Any, lock: Any, cond: Any
    ) -> None:
        # The function's attributes first, so that its __dict__ cannot hide the wrapper's.
        functools.update_wrapper(self, func)
        self.cache = cache
        self.cache_key = key
        self.cache_lock = lock
        self.cache_condition = cond
        self._func = func
        self._hits = 0
        self._misses = 0
        self._pending: Set[Hashable] = set()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else types.MethodType(self, obj)

    def __copy__(self) -> "_Wrapper":
        return self

    def __deepcopy__(self, memo: Dict[int, Any]) -> "_Wrapper":
        return self

    def __reduce__(self) -> str:
        return self.__qualname__

    def __repr__(self) -> str:
        return f"<cached {self.__wrapped__!r}>"

    def cache_clear(self) -> None:
        """Clear the cache (under the lock, if any) and, with ``info``, the statistics."""
        lock = self.cache_lock
        if lock is None:
            self.cache.clear()
            self._hits = self._misses = 0
        else:
            with lock:
                self.cache.clear()
                self._hits = self._misses = 0


class _InfoWrapper(_Wrapper):
    def cache_info(self) -> CacheInfo:
        """``CacheInfo(hits, misses, maxsize, currsize)``."""
        lock = self.cache_lock
        if lock is None:
            return make_info(self.cache, self._hits, self._misses)
        with lock:
            return make_info(self.cache, self._hits, self._misses)


class _Basic(_Wrapper):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        try:
            return cache[key]
        except KeyError:
            pass
        value = self._func(*args, **kwargs)
        try:
            cache[key] = value
        except ValueError:
            pass  # value too large
        return value


class _Locked(_Wrapper):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        lock = self.cache_lock
        with lock:
            try:
                return cache[key]
            except KeyError:
                pass
        value = self._func(*args, **kwargs)
        with lock:
            try:
                # Another thread may have stored a value meanwhile: that one is returned.
                return cache.setdefault(key, value)
            except ValueError:
                return value  # value too large


class _Condition(_Wrapper):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        lock = self.cache_lock
        cond = self.cache_condition
        pending = self._pending
        with lock:
            while key in pending:
                cond.wait()
            try:
                return cache[key]
            except KeyError:
                pending.add(key)
        try:
            value = self._func(*args, **kwargs)
            with lock:
                try:
                    cache[key] = value
                except ValueError:
                    pass  # value too large
                return value
        finally:
            with lock:
                pending.remove(key)
                cond.notify_all()


class _BasicInfo(_InfoWrapper):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        try:
            result = cache[key]
            self._hits += 1
            return result
        except KeyError:
            self._misses += 1
        value = self._func(*args, **kwargs)
        try:
            cache[key] = value
        except ValueError:
            pass  # value too large
        return value


class _LockedInfo(_InfoWrapper):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        lock = self.cache_lock
        with lock:
            try:
                result = cache[key]
                self._hits += 1
                return result
            except KeyError:
                self._misses += 1
        value = self._func(*args, **kwargs)
        with lock:
            try:
                return cache.setdefault(key, value)
            except ValueError:
                return value  # value too large


class _ConditionInfo(_InfoWrapper):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        lock = self.cache_lock
        cond = self.cache_condition
        pending = self._pending
        with lock:
            while key in pending:
                cond.wait()
            try:
                result = cache[key]
                self._hits += 1
                return result
            except KeyError:
                pending.add(key)
                self._misses += 1
        try:
            value = self._func(*args, **kwargs)
            with lock:
                try:
                    cache[key] = value
                except ValueError:
                    pass  # value too large
                return value
        finally:
            with lock:
                pending.remove(key)
                cond.notify_all()


@overload
def cached(
    cache: Any,
    key: Callable[..., Hashable] = ...,
    lock: Any = ...,
    condition: Any = ...,
    *,
    info: Literal[True],
) -> Callable[[Callable[..., _T]], CachedInfoWrapper[_T]]: ...


@overload
def cached(
    cache: Any,
    key: Callable[..., Hashable],
    lock: Any,
    condition: Any,
    info: Literal[True],
) -> Callable[[Callable[..., _T]], CachedInfoWrapper[_T]]: ...


@overload
def cached(
    cache: Any,
    key: Callable[..., Hashable] = ...,
    lock: Any = ...,
    condition: Any = ...,
    info: bool = ...,
) -> Callable[[Callable[..., _T]], CachedWrapper[_T]]: ...


def cached(
    cache: Any,
    key: Callable[..., Hashable] = keys.hashkey,
    lock: Any = None,
    condition: Any = None,
    info: bool = False,
) -> Callable[[Callable[..., _T]], CachedWrapper[_T]]:
    """Decorator to wrap a function with a memoizing callable that saves results in a cache
    (``cachetools.cached``).

    ``cache`` is any mutable mapping (``LRUCache``, ``TTLCache``, a ``dict``, ...); ``key``
    makes the key of a call (``keys.hashkey``: the arguments); ``lock`` (a context manager) is
    held around every access to the cache; ``condition`` (a ``threading.Condition``, which is
    also the lock when ``lock`` is None) makes concurrent calls with the same key wait for one
    computation; ``info=True`` adds ``cache_info()``.
    """
    if cache is None:
        raise TypeError("cache must not be None")

    def decorator(func: Callable[..., _T]) -> CachedWrapper[_T]:
        wrapper: _Wrapper
        if condition is not None:
            cls = _ConditionInfo if info else _Condition
            wrapper = cls(func, cache, key, condition if lock is None else lock, condition)
        elif lock is not None:
            wrapper = (_LockedInfo if info else _Locked)(func, cache, key, lock, None)
        else:
            wrapper = (_BasicInfo if info else _Basic)(func, cache, key, None, None)
        return wrapper  # type: ignore[return-value]

    return decorator

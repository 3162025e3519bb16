"""``@cached``: memoize a function (plain, method or coroutine) in an ``alphaforge_cache.Cache``.

Arguments are matched as ``functools.lru_cache`` matches them (any hashable arguments, Python
equality; ``typed=True`` separates ``1`` from ``1.0``). The cache stores each result as a live
object (``mode="object"``) under a small token; a Python dict maps argument keys to tokens and is
trimmed as the cache evicts, so bounds, TTLs and statistics are the engine's.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Hashable,
    NamedTuple,
    Optional,
    Protocol,
    TypeVar,
    cast,
    overload,
)

from ._common import EntryTooHeavyError, EntryTooLargeError, ManualClock

if TYPE_CHECKING:
    from ._shared import CacheBase

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class CacheInfo(NamedTuple):
    """Statistics of a memoized function, shaped like ``functools.lru_cache``'s."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


def _make_key(args: tuple, kwargs: Dict[str, Any], typed: bool) -> Hashable:  # type: ignore[type-arg]
    key: tuple = args  # type: ignore[type-arg]
    if kwargs:
        key += (_KWARGS_MARK,) + tuple(kwargs.items())
    if typed:
        key += tuple(type(v) for v in args) + tuple(type(v) for v in kwargs.values())
    return key


_KWARGS_MARK = object()


class CachedFunction(Protocol[_T_co]):
    """What ``@cached`` makes of a function returning ``_T_co``, for type checkers: typed as
    typeshed types ``functools.lru_cache``'s wrapper (the arguments are any hashables; a
    coroutine function's ``_T_co`` is its coroutine)."""

    __name__: str
    __qualname__: str
    #: The ``Cache`` that holds the results.
    cache: "CacheBase"

    @property
    def __wrapped__(self) -> Callable[..., _T_co]:
        """The function memoized."""
        ...

    def __call__(self, *args: Hashable, **kwargs: Hashable) -> _T_co: ...

    def cache_info(self) -> CacheInfo:
        """Hits, misses, ``max_entries`` and the entries held, as ``functools``' ``CacheInfo``."""
        ...

    def cache_clear(self) -> None:
        """Removes every result and sets the statistics to zero."""
        ...


@overload
def cached(max_entries: Callable[..., _T]) -> CachedFunction[_T]: ...


@overload
def cached(
    max_entries: int = 128,
    *,
    ttl: Optional[float] = None,
    typed: bool = False,
    max_bytes: Optional[int] = None,
    getsizeof: Optional[Callable[[Any], int]] = None,
    timer: Optional[ManualClock] = None,
    cache_type: Optional[Callable[..., Any]] = None,
) -> Callable[[Callable[..., _T]], CachedFunction[_T]]: ...


def cached(
    max_entries: Any = 128,
    *,
    ttl: Optional[float] = None,
    typed: bool = False,
    max_bytes: Optional[int] = None,
    getsizeof: Optional[Callable[[Any], int]] = None,
    timer: Optional[ManualClock] = None,
    cache_type: Optional[Callable[..., Any]] = None,
) -> Any:
    """Memoizes a function: ``@alphaforge_cache.cached(1024, ttl=60)``, or ``@cached``
    without parentheses (the defaults, as ``@functools.lru_cache``).

    The wrapper has ``cache_info()``, ``cache_clear()`` and ``cache`` (the underlying
    ``Cache``; ``cache_type`` picks another class, e.g. ``PythonCache``). Concurrent calls with
    the same arguments compute once (threads); a coroutine function's results are cached when
    awaited.
    """
    if callable(max_entries):  # @cached without parentheses: the function came as max_entries
        return cached(
            ttl=ttl,
            typed=typed,
            max_bytes=max_bytes,
            getsizeof=getsizeof,
            timer=timer,
            cache_type=cache_type,
        )(max_entries)
    from . import Cache  # the selected backend

    make_cache = Cache if cache_type is None else cache_type

    def decorator(func: Callable[..., _T]) -> CachedFunction[_T]:
        # key -> token and token -> key, a pair for each mapped key. No lock: each step below
        # is one dict call, atomic (the GIL; a dict's lookup that runs an argument's __hash__
        # or __eq__, user code that may even call the memoized function, restarts if the dict
        # changed meanwhile), and the steps are ordered so that threads interleaving them
        # leave whole pairs. Nothing is held that a frame unwound without its handlers (PyPy,
        # at the recursion limit: docs/python-api.md, Errors) would leave held.
        tokens: Dict[Hashable, bytes] = {}
        keys: Dict[bytes, Hashable] = {}
        counter = itertools.count()

        def forget(token: bytes, _value: object, cause: str) -> None:
            if cause != "replaced":
                key = keys.pop(token, _ABSENT)  # one caller gets the key of a token
                if key is not _ABSENT and tokens.get(key) == token:
                    # Still this token's key: no other call replaces a mapping (they add one
                    # only where the key has none), so the pair leaves whole.
                    tokens.pop(key, None)

        cache = make_cache(
            max_entries,
            ttl=ttl,
            max_bytes=max_bytes,
            getsizeof=getsizeof,
            timer=timer,
            mode="object",
            on_evict=forget,
        )

        def token_of(key: Hashable) -> bytes:
            token = tokens.get(key)
            if token is None:
                fresh = next(counter).to_bytes(8, "little")
                keys[fresh] = key  # first: the pair is whole once tokens has it
                token = tokens.setdefault(key, fresh)
                if token is not fresh:  # another call mapped the key first: its token
                    keys.pop(fresh, None)
            return token

        def settle(key: Hashable, token: bytes) -> None:
            """After a call that may have stored under ``token``: the mapping ``key -> token``
            holds while the cache holds ``token``, and only then. An entry that expired is
            reclaimed by the call's own lookup, and ``forget`` drops its mapping before the
            call stores the new result under the same token: the mapping comes back here
            (without it the next call would compute again, under a new token, and leave the
            stored result behind as an orphan entry)."""
            orphan = False
            if token not in keys:
                keys[token] = key
                if tokens.setdefault(key, token) != token:
                    # Another call mapped the key to a new token meanwhile.
                    keys.pop(token, None)
                    orphan = True
            if orphan:
                cache.pop(token, None)
            elif token not in cache:  # not stored (an error, too heavy), or evicted since
                forget(token, None, "removed")

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                key = _make_key(args, kwargs, typed)
                token = token_of(key)
                found = cache.get(token, _ABSENT)
                if found is not _ABSENT:
                    return found
                try:
                    value = await func(*args, **kwargs)
                except BaseException:
                    settle(key, token)
                    raise
                try:
                    cache.put(token, value)
                except (EntryTooHeavyError, EntryTooLargeError):
                    pass  # too heavy to store: returned, not kept (settle drops the mapping)
                settle(key, token)
                return value

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                key = _make_key(args, kwargs, typed)
                token = token_of(key)
                try:
                    # A partial, not a lambda: one Python frame less per level of a
                    # recursive memoized function (the recursion limit comes later).
                    value = cache.get_or_set(token, functools.partial(func, *args, **kwargs))
                except BaseException:
                    settle(key, token)
                    raise
                if max_bytes is not None or token not in keys:
                    # A result too heavy to store was returned, not kept; or the call reclaimed
                    # an expired entry, which dropped the mapping (a hit needs neither).
                    settle(key, token)
                return value

            wrapper = sync_wrapper

        def cache_info() -> CacheInfo:
            stats = cache.stats()
            return CacheInfo(stats.hits, stats.misses, max_entries, stats.entries)

        def cache_clear() -> None:
            cache.clear()
            cache.reset_stats()

        wrapper.cache_info = cache_info
        wrapper.cache_clear = cache_clear
        wrapper.cache = cache
        return cast("CachedFunction[_T]", wrapper)

    return decorator


_ABSENT: Any = object()

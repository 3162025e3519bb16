"""``lru_cache`` and ``cache`` with the behaviour of ``functools``' (its C implementation).

Keys are built as CPython's C ``lru_cache`` builds them: one ``str`` or ``int`` argument is its
own key; otherwise the key is the tuple of the arguments, then (with keyword arguments) a marker
and the keyword items in call order, then (``typed``) the argument types. So exactly the calls
that share a cache entry in ``functools`` share one here.

The wrapper binds as a method, pickles and copies by reference and is weak-referenceable, as
the C ``functools`` wrapper, and has ``cache_info()``, ``cache_clear()``,
``cache_parameters()`` and ``__wrapped__``.

Bounded caches keep results in one ``OrderedDict`` in least-recently-used-first order: a hit is
a lookup and a ``move_to_end``; a miss calls the function, then ``setdefault`` stores the
result unless the key was stored meanwhile (by a recursive call or another thread), and the
least recently used entries are popped until the bound holds. Each step is one C call, atomic
under the GIL, so no lock is taken (a key whose ``__eq__`` calls the function cannot deadlock).
The wrapper is ``_speedups.LRUWrapper`` (C: the key, both paths and the counters in one call)
when the compat read paths are C (``_core.ACCELERATED``), else a Python closure whose hits and
misses are counted by ``itertools.count`` objects (atomic increments: concurrent calls are all
counted). A key's ``__hash__`` is called once
per call, as ``functools`` promises: when an argument's hash could be Python code (not a
built-in scalar, nor the default identity hash), the key carries its hash computed once.
"""

from __future__ import annotations

import functools
import itertools
from collections import OrderedDict
from typing import Any, Callable, Dict, Hashable, Protocol, Tuple, TypeVar, Union, overload

from ._core import ACCELERATED

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

#: ``functools``' own CacheInfo type, so that ``cache_info()`` results are the very same type.
CacheInfo = functools._CacheInfo

# Argument types whose hash runs no Python code: hashing such a key twice is not observable.
_TRUSTED = frozenset({int, str, bytes, float, complex, bool, type(None), frozenset, type})
_SCALARS = frozenset({int, str})
_object_hash: Any = object.__hash__
_KWD_MARK: Tuple[object, ...] = (object(),)
_len = len  # bound here: a program may replace builtins.len with a cached function
_type = type
_tuple: Any = tuple


class _HashedKey(tuple):  # type: ignore[type-arg]
    """A key tuple that computes its hash once (its elements' ``__hash__`` may be Python code).
    It equals, and hashes as, the plain tuple of the same items."""

    def __init__(self, items: Any) -> None:
        self.hashvalue = _tuple.__hash__(self)

    def __hash__(self) -> int:
        return self.hashvalue  # type: ignore[no-any-return]


def _finish(key: Tuple[Any, ...]) -> Hashable:
    """``key``, or the same key hashing once when an item's hash may be Python code."""
    if _TRUSTED.issuperset(map(_type, key)):
        return key
    for item in key:
        kind = _type(item)
        if kind not in _TRUSTED and kind.__hash__ is not _object_hash:
            return _HashedKey(key)
    return key


def _make_key(args: Tuple[Any, ...], kwds: Dict[str, Any], typed: bool) -> Hashable:
    """The key of a call with keyword arguments or ``typed`` (see the module docstring)."""
    key = args
    if kwds:
        key += _KWD_MARK
        for item in kwds.items():
            key += item
    if typed:
        key += _tuple([_type(v) for v in args])
        if kwds:
            key += _tuple([_type(v) for v in kwds.values()])
    return _finish(key)


def _count_of(counter: "itertools.count[int]") -> int:
    """The next value of an ``itertools.count`` without advancing it (``count(5)`` -> 5)."""
    return int(repr(counter)[6:-1])


def _py_lru_cache_wrapper(
    user_function: Callable[..., Any], maxsize: Union[int, None], typed: Any
) -> Callable[..., Any]:
    """The wrapper in Python: a closure (used without the C extension)."""
    if not callable(user_function):
        raise TypeError("the first argument must be callable")
    typed = bool(typed)
    sentinel: Any = object()
    scalars, trusted, object_hash, finish, make_key = (
        _SCALARS,
        _TRUSTED,
        _object_hash,
        _finish,
        _make_key,
    )
    length, kind = _len, _type
    hits = itertools.count()
    misses = itertools.count()
    hit = hits.__next__
    miss = misses.__next__
    cache: Any

    if maxsize == 0:
        cache = {}

        def wrapper(*args: Any, **kwds: Any) -> Any:
            miss()
            return user_function(*args, **kwds)

    elif maxsize is None:
        cache = {}
        cache_get = cache.get

        def wrapper(*args: Any, **kwds: Any) -> Any:
            if kwds or typed:
                key = make_key(args, kwds, typed)
            elif length(args) == 1:
                arg_type = kind(args[0])
                if arg_type in scalars:
                    key = args[0]
                elif arg_type in trusted or arg_type.__hash__ is object_hash:
                    key = args
                else:
                    key = finish(args)
            else:
                key = finish(args)
            result = cache_get(key, sentinel)
            if result is not sentinel:
                hit()
                return result
            miss()
            result = user_function(*args, **kwds)
            cache[key] = result
            return result

    else:
        cache = OrderedDict()
        cache_get = cache.get
        move_to_end = cache.move_to_end
        popitem = cache.popitem
        setdefault = cache.setdefault
        bound = maxsize

        def wrapper(*args: Any, **kwds: Any) -> Any:
            if kwds or typed:
                key = make_key(args, kwds, typed)
            elif length(args) == 1:
                arg_type = kind(args[0])
                if arg_type in scalars:
                    key = args[0]
                elif arg_type in trusted or arg_type.__hash__ is object_hash:
                    key = args
                else:
                    key = finish(args)
            else:
                key = finish(args)
            result = cache_get(key, sentinel)
            if result is not sentinel:
                hit()
                try:
                    move_to_end(key)
                except KeyError:  # evicted by another thread meanwhile: still a hit
                    pass
                return result
            miss()
            result = user_function(*args, **kwds)
            # Stored unless it was stored while the function ran (a recursive call, another
            # thread): that entry stays, and this call's result is returned. Then the least
            # recently used entries go until the bound holds. Each step is one C call, atomic
            # under the GIL: no lock, so a key whose __eq__ calls the function cannot deadlock.
            setdefault(key, result)
            while length(cache) > bound:
                try:
                    popitem(False)
                except KeyError:  # emptied by another thread meanwhile
                    break
            return result

    reported = None if maxsize is None else int(maxsize)  # the C wrapper's Py_ssize_t

    def cache_info() -> Any:
        """Report cache statistics: ``CacheInfo(hits, misses, maxsize, currsize)``."""
        return CacheInfo(_count_of(hits), _count_of(misses), reported, length(cache))

    def cache_clear() -> None:
        """Clear the cache and cache statistics."""
        nonlocal hits, misses, hit, miss
        cache.clear()
        hits = itertools.count()
        misses = itertools.count()
        hit = hits.__next__
        miss = misses.__next__

    wrapper.cache_info = cache_info  # type: ignore[attr-defined]
    wrapper.cache_clear = cache_clear  # type: ignore[attr-defined]
    return wrapper


if ACCELERATED:
    from ._speedups import LRUWrapper

    class _CLRUWrapper(LRUWrapper):
        """The wrapper in C (``_speedups.LRUWrapper``: key, lookup, hit and miss paths), with
        the attributes a function has: ``__dict__`` (for ``functools.update_wrapper``), weak
        references, and pickling and copying by reference (as the C ``functools`` wrapper)."""

        __slots__ = ("__dict__", "__weakref__")

        def __reduce__(self) -> str:
            return self.__qualname__  # type: ignore[attr-defined,no-any-return]

        def __copy__(self) -> "_CLRUWrapper":
            return self

        def __deepcopy__(self, memo: Dict[int, Any]) -> "_CLRUWrapper":
            return self


def _lru_cache_wrapper(
    user_function: Callable[..., Any], maxsize: Union[int, None], typed: Any
) -> Callable[..., Any]:
    """The wrapper of ``user_function``: in C when the read paths are (see ``_core``)."""
    if not ACCELERATED:
        return _py_lru_cache_wrapper(user_function, maxsize, typed)
    if not callable(user_function):
        raise TypeError("the first argument must be callable")
    cache: Any = {} if maxsize is None or maxsize == 0 else OrderedDict()
    return _CLRUWrapper(user_function, maxsize, bool(typed), cache, _make_key, _finish, CacheInfo)


class LRUCacheWrapper(Protocol[_T_co]):
    """What ``lru_cache`` makes of a function returning ``_T_co``, for type checkers: the
    members typeshed gives ``functools._lru_cache_wrapper`` (so that code checked against
    ``functools.lru_cache`` checks the same against this one)."""

    __name__: str
    __qualname__: str

    @property
    def __wrapped__(self) -> Callable[..., _T_co]: ...

    def __call__(self, *args: Hashable, **kwargs: Hashable) -> _T_co: ...

    def cache_info(self) -> CacheInfo: ...

    def cache_clear(self) -> None: ...

    def cache_parameters(self) -> Dict[str, Any]: ...


@overload
def lru_cache(maxsize: Callable[..., _T], typed: bool = False) -> LRUCacheWrapper[_T]: ...


@overload
def lru_cache(
    maxsize: Union[int, None] = 128, typed: bool = False
) -> Callable[[Callable[..., _T]], LRUCacheWrapper[_T]]: ...


def lru_cache(maxsize: Any = 128, typed: Any = False) -> Any:
    """Least-recently-used cache decorator, as ``functools.lru_cache``.

    ``maxsize=None`` caches without bound; ``maxsize=0`` (or a negative size) does not cache;
    ``typed=True`` caches arguments of different types separately (``f(3)`` and ``f(3.0)``).
    Arguments must be hashable. ``@lru_cache`` without parentheses uses ``maxsize=128``. The
    wrapper has ``cache_info()``, ``cache_clear()``, ``cache_parameters()`` and
    ``__wrapped__``; it is thread-safe, and the function may call itself.
    """
    if isinstance(maxsize, int):
        if maxsize < 0:  # a negative size is treated as 0
            maxsize = 0
    elif callable(maxsize) and isinstance(typed, bool):
        # @lru_cache without parentheses: the function came as maxsize.
        user_function, maxsize = maxsize, 128
        return _decorate(user_function, maxsize, typed)
    elif maxsize is not None:
        raise TypeError("Expected first argument to be an integer, a callable, or None")

    def decorating_function(user_function: Callable[..., _T]) -> LRUCacheWrapper[_T]:
        return _decorate(user_function, maxsize, typed)  # type: ignore[return-value]

    return decorating_function


def _decorate(user_function: Callable[..., Any], maxsize: Any, typed: Any) -> Callable[..., Any]:
    """The wrapper, with functools' attributes in functools' order: ``cache_parameters`` goes
    in before the wrapped function's ``__dict__`` is copied, ``cache_info`` and ``cache_clear``
    (methods of the C wrapper, which a ``__dict__`` cannot hide) after."""
    cached = _lru_cache_wrapper(user_function, maxsize, typed)
    info, clear = cached.cache_info, cached.cache_clear  # type: ignore[attr-defined]
    cached.cache_parameters = lambda: {"maxsize": maxsize, "typed": typed}  # type: ignore[attr-defined]
    functools.update_wrapper(cached, user_function)
    if not ACCELERATED:  # (methods of the C wrapper's type already)
        cached.cache_info = info  # type: ignore[attr-defined]
        cached.cache_clear = clear  # type: ignore[attr-defined]
    return cached


def cache(user_function: Callable[..., _T]) -> LRUCacheWrapper[_T]:
    """Simple lightweight unbounded cache, as ``functools.cache``: ``lru_cache(maxsize=None)``."""
    return lru_cache(maxsize=None)(user_function)

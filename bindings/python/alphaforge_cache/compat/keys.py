"""Key functions for ``cached``, as ``cachetools.keys``: the key of a call is the tuple of its
positional arguments, followed (when there are keyword arguments) by a marker and the keyword
items sorted by name; the typed variants append the type of every argument."""

from __future__ import annotations

from typing import Any, Hashable, Tuple

__all__ = ["hashkey", "methodkey", "typedkey", "typedmethodkey"]


class _KwMark(tuple):  # type: ignore[type-arg]
    """The class whose only use is to separate positional from keyword arguments in a key: the
    marker is ``(_KwMark,)``, a tuple holding a class, so it pickles by reference and equals
    itself in every process."""

    __slots__ = ()


_kwmark: Tuple[Any, ...] = (_KwMark,)


def hashkey(*args: Hashable, **kwargs: Hashable) -> Tuple[Hashable, ...]:
    """Return a cache key for the specified hashable arguments."""
    if kwargs:
        return args + _kwmark + tuple(sorted(kwargs.items()))
    return args


def methodkey(self: Any, /, *args: Hashable, **kwargs: Hashable) -> Tuple[Hashable, ...]:
    """Return a cache key for use with cached methods (``self`` is left out)."""
    if kwargs:
        return args + _kwmark + tuple(sorted(kwargs.items()))
    return args


def typedkey(*args: Hashable, **kwargs: Hashable) -> Tuple[Hashable, ...]:
    """Return a typed cache key for the specified hashable arguments."""
    if kwargs:
        items = tuple(sorted(kwargs.items()))
        key = args + _kwmark + items + tuple([type(v) for _, v in items])
    else:
        key = args
    return key + tuple(map(type, args))


def typedmethodkey(self: Any, /, *args: Hashable, **kwargs: Hashable) -> Tuple[Hashable, ...]:
    """Return a typed cache key for use with cached methods (``self`` is left out)."""
    if kwargs:
        items = tuple(sorted(kwargs.items()))
        key = args + _kwmark + items + tuple([type(v) for _, v in items])
    else:
        key = args
    return key + tuple(map(type, args))

"""The read paths of ``LRUCache`` and ``TTLCache``: ``get``, ``__getitem__`` and
``__contains__``, the base class of both (``Core``).

A cache's values are ``_od``, an ``OrderedDict`` in least-recently-used-first order; a TTL
cache also has a ``_timer`` (``None`` for an LRU cache), ``_exp`` (key to expiry time) and
``_floor`` (a time before which no item expires, or ``None``; see ``_ttl.py``). A read is one
lookup in ``_od``, for a TTL cache one read of the timer and a comparison with the floor (the
item's own expiry time only when the floor has passed), and a hit is ``_od.move_to_end(key)``:
the recency order is exact at every moment.

``Core`` is the C type of ``alphaforge_cache.compat._speedups`` (the same code in one C call)
when the package runs its native backend (``alphaforge_cache.BACKEND == "native"``) and that
extension is built, and the Python class below otherwise (the pure-Python backend, PyPy, an
install without a compiler, ``ALPHAFORGE_CACHE_BACKEND=python``); both behave identically (the
test suite runs on both).
"""

from __future__ import annotations

import platform
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Optional

#: A marker for "no value" (never a value a cache stores).
MISSING: Any = object()


class PyCore:
    """The read paths in Python (see the module docstring)."""

    __slots__ = ("_od", "_timer", "_exp", "_floor")

    _od: "OrderedDict[Any, Any]"
    _timer: Any
    _exp: "OrderedDict[Any, Any]"
    _floor: Any

    def _alive(self, key: Any, now: Any) -> bool:
        """Whether the stored ``key`` of a TTL cache is alive at ``now``."""
        floor = self._floor
        if floor is not None and now < floor:
            return True
        return bool(now < self._exp[key])

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key`` if it is there (and, for a TTL cache, not expired); it becomes
        the most recently used. Else ``default``; ``__missing__`` is not called."""
        od = self._od
        timer = self._timer
        if timer is None:
            value = od.get(key, MISSING)
            if value is MISSING:
                return default
            try:
                od.move_to_end(key)
            except KeyError:  # removed by another thread meanwhile: still a hit
                pass
            return value
        now = timer._Timer__read()  # a TTL cache reads the timer first, hit or miss
        value = od.get(key, MISSING)
        if value is MISSING:
            return default
        floor = self._floor
        if (floor is not None and now < floor) or now < self._exp[key]:
            try:
                od.move_to_end(key)
            except KeyError:
                pass
            return value
        return default

    def __getitem__(self, key: Any) -> Any:
        od = self._od
        value = od.get(key, MISSING)
        if value is MISSING:
            value = self.__missing__(key)  # type: ignore[attr-defined]
            if self._timer is None and key in od:  # __missing__ may have stored it
                od.move_to_end(key)
            return value
        od.move_to_end(key)
        timer = self._timer
        if timer is None or self._alive(key, timer._Timer__read()):
            return value
        return self.__missing__(key)  # type: ignore[attr-defined]

    def __contains__(self, key: object) -> bool:
        timer = self._timer
        if timer is None:
            return key in self._od
        if key not in self._od:
            return False
        return self._alive(key, timer._Timer__read())


def _c_core() -> Optional[type]:
    """The C ``Core`` when the package runs its native backend (the selection of
    ``alphaforge_cache.BACKEND``, ``ALPHAFORGE_CACHE_BACKEND``) and the extension is built."""
    import alphaforge_cache  # initialized up to BACKEND: it imports compat last

    if alphaforge_cache.BACKEND != "native" or platform.python_implementation() != "CPython":
        return None
    try:
        from ._speedups import Core as CCore
    except ImportError:
        return None
    return CCore


_C = _c_core()

if TYPE_CHECKING:
    Core = PyCore
else:
    #: The base class of the compat caches: the C read paths, or ``PyCore``.
    Core = PyCore if _C is None else _C

#: Whether the read paths are the C extension's.
ACCELERATED: bool = _C is not None

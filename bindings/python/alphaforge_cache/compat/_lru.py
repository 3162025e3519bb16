"""``LRUCache``: cachetools' least-recently-used cache, with reads in one dict lookup.

The items live in one ``OrderedDict`` in least-recently-used-first order (``_od``, see
``_base.py``): a hit is a lookup and a ``move_to_end`` of that same dict, an eviction is its
``popitem(last=False)``. Iteration and ``repr`` follow insertion order, as cachetools' do.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, TypeVar

from ._base import CacheBase, routes
from ._core import MISSING

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")


class LRUCache(CacheBase[_KT, _VT]):
    """Least Recently Used (LRU) cache implementation, as ``cachetools.LRUCache``.

    ``LRUCache(maxsize, getsizeof=None)``: a mutable mapping holding at most ``maxsize`` worth of
    items (each of size ``getsizeof(value)``, 1 by default); storing an item in a full cache first
    evicts the least recently used ones with ``popitem()``. Keys are any hashables, compared as
    a ``dict`` compares them; values are kept as they are (by identity). Not thread-safe: share
    one between threads behind a lock (``cached(cache, lock=...)`` takes one).
    """

    __slots__ = ()

    def __init__(self, maxsize: Any, getsizeof: Optional[Callable[[_VT], Any]] = None) -> None:
        CacheBase.__init__(self, maxsize, getsizeof)

    # ----- reads (get, __getitem__ and __contains__ are Core's) --------------------------------

    def _get_generic(self, key: _KT, default: Any = None) -> Any:
        if key in self:
            return self[key]
        return default

    # ----- writes -------------------------------------------------------------------------------

    def __setitem__(self, key: _KT, value: _VT) -> None:
        od = self._od
        if self._sizes is not None:
            self._store(key, value)
            return
        maxsize = self._maxsize
        if maxsize < 1:
            raise ValueError("value too large")
        if key in od:
            od[key] = value
            od.move_to_end(key)
            return
        ins = self._ins
        while len(od) + 1 > maxsize:  # what popitem() does, inline
            del ins[od.popitem(last=False)[0]]
        od[key] = value
        ins[key] = None

    def _store(self, key: _KT, value: _VT) -> None:
        """cachetools' ``Cache.__setitem__`` (eviction through ``self.popitem()``, sizes through
        ``self.getsizeof``), then the key becomes the most recently used."""
        od = self._od
        sizes = self._sizes
        maxsize = self._maxsize
        if sizes is None:
            if maxsize < 1:
                raise ValueError("value too large")
            if key not in od:
                while len(od) + 1 > maxsize:
                    self.popitem()
        else:
            itemsize = self.getsizeof(value)
            if itemsize > maxsize:
                raise ValueError("value too large")
            if itemsize < 0:
                raise ValueError("value size must be non-negative")
            if key not in od:
                diffsize = itemsize
                while self._currsize + diffsize > maxsize:
                    self.popitem()
            else:
                diffsize = itemsize - sizes[key]
                while self._currsize + diffsize > maxsize:
                    self.popitem()
                    if key not in od:
                        diffsize = itemsize
            sizes[key] = itemsize
            self._currsize += diffsize
        if key in od:
            od[key] = value
            od.move_to_end(key)
        else:
            od[key] = value
            self._ins[key] = None

    def __delitem__(self, key: _KT) -> None:
        self._drop(key)

    def pop(self, key: _KT, default: Any = MISSING) -> Any:
        """Remove ``key`` and return its value, else ``default`` (``KeyError`` without one)."""
        od = self._od
        value = od.pop(key, MISSING)
        if value is not MISSING:
            del self._ins[key]
            sizes = self._sizes
            if sizes is not None:
                self._currsize -= sizes.pop(key)
            return value
        if default is MISSING:
            raise KeyError(key)
        return default

    def _pop_generic(self, key: _KT, default: Any = MISSING) -> Any:
        if key in self:
            value = self[key]
            del self[key]
        elif default is MISSING:
            raise KeyError(key)
        else:
            value = default
        return value

    def setdefault(self, key: _KT, default: Any = None) -> Any:
        """The value of ``key`` if present (it becomes the most recently used), else store
        ``default`` under ``key`` and return it."""
        od = self._od
        value = od.get(key, MISSING)
        if value is not MISSING:
            od.move_to_end(key)
            return value
        self[key] = default
        return default

    def _setdefault_generic(self, key: _KT, default: Any = None) -> Any:
        if key in self:
            value = self[key]
        else:
            self[key] = value = default
        return value

    def popitem(self) -> Tuple[_KT, _VT]:
        """Remove and return the ``(key, value)`` pair least recently used."""
        od = self._od
        if not od:
            raise KeyError("%s is empty" % type(self).__name__) from None
        key, value = od.popitem(last=False)
        del self._ins[key]
        sizes = self._sizes
        if sizes is not None:
            self._currsize -= sizes.pop(key)
        return key, value

    def _popitem_generic(self) -> Tuple[_KT, _VT]:
        od = self._od
        try:
            key = next(iter(od))
        except StopIteration:
            raise KeyError("%s is empty" % type(self).__name__) from None
        value = od[key]
        del self[key]
        return key, value


routes(
    LRUCache,
    {
        "get": ("_get_generic", ("__contains__", "__getitem__")),
        "pop": ("_pop_generic", ("__contains__", "__getitem__", "__delitem__")),
        "setdefault": ("_setdefault_generic", ("__contains__", "__getitem__")),
        "__setitem__": ("_store", ("popitem", "__delitem__")),
        "popitem": ("_popitem_generic", ("__delitem__",)),
    },
)

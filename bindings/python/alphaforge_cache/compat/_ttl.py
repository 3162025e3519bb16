"""``TTLCache``: cachetools' LRU cache with a per-item time-to-live.

Each item's entry in ``_od`` (least recently used first, see ``_base.py``) is ``(value,
expires)`` with ``expires = time + ttl`` at the time it was stored, so a read is one lookup, one
read of the timer and one comparison. ``_exp`` holds the keys in the order they were last stored,
which is the order in which cachetools expires them: ``expire(time)`` removes items from its
front while ``not (time < expires)``. Times are whatever the timer returns (numbers,
``datetime``s with a ``timedelta`` ttl, ...): they are only added to ``ttl`` and compared.

Every operation reads the timer at most once, exactly as cachetools' does; inside ``with
cache.timer:`` it reads the frozen time instead.
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

from ._base import CacheBase, routes
from ._core import MISSING
from ._timer import Timer

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")


class TTLCache(CacheBase[_KT, _VT]):
    """LRU cache implementation with per-item time-to-live (TTL) value, as
    ``cachetools.TTLCache``.

    ``TTLCache(maxsize, ttl, timer=time.monotonic, getsizeof=None)``: an ``LRUCache`` whose
    items expire ``ttl`` after they were stored, as measured by ``timer``. Expired items are
    invisible to ``in``, ``get``, ``len`` and iteration, and are removed by the next change of
    the cache or by ``expire()``. ``cache.timer`` reads the time, and ``with cache.timer as
    now:`` freezes it for the operations inside (nesting allowed). Not thread-safe.
    """

    __slots__ = ("_exp", "_ttl")

    _exp: "OrderedDict[Any, None]"
    _ttl: Any

    def __init__(
        self,
        maxsize: Any,
        ttl: Any,
        timer: Callable[[], Any] = time.monotonic,
        getsizeof: Optional[Callable[[_VT], Any]] = None,
    ) -> None:
        CacheBase.__init__(self, maxsize, getsizeof)
        self._timer = Timer(timer)
        self._exp = OrderedDict()
        self._ttl = ttl

    @property
    def timer(self) -> Timer:
        """The timer function used by the cache (callable, and a context manager freezing the
        time it returns)."""
        timer: Timer = self._timer
        return timer

    @property
    def ttl(self) -> Any:
        """The time-to-live value of the cache's items."""
        return self._ttl

    def _value(self, entry: Any) -> Any:
        return entry[0]

    def _drop(self, key: Any) -> Any:
        entry = CacheBase._drop(self, key)
        del self._exp[key]
        return entry

    # ----- expiry -------------------------------------------------------------------------------

    def expire(self, time: Any = None) -> List[Tuple[_KT, _VT]]:
        """Remove expired items from the cache and return a list of the expired ``(key, value)``
        pairs (``time`` defaults to the timer's current time)."""
        if time is None:
            time = self._timer._Timer__read()
        return self._expire(time)

    def _expire(self, time: Any) -> List[Tuple[_KT, _VT]]:
        exp = self._exp
        if not exp:
            return []
        od = self._od
        key = next(iter(exp))
        if time < od[key][1]:
            return []  # nothing has expired
        ins, sizes = self._ins, self._sizes
        expired = []
        while True:
            value, expires = od[key]
            if time < expires:
                break
            expired.append((key, value))
            del od[key]
            del ins[key]
            del exp[key]
            if sizes is not None:
                self._currsize -= sizes.pop(key)
            if not exp:
                break
            key = next(iter(exp))
        return expired

    # ----- reads (get, __getitem__ and __contains__ are Core's) -------------------------------

    def _get_generic(self, key: _KT, default: Any = None) -> Any:
        with self._timer:
            if key in self:
                return self[key]
            return default

    def pop(self, key: _KT, default: Any = MISSING) -> Any:
        """Remove ``key`` and return its value if it is there and not expired, else return
        ``default`` (``KeyError`` without one)."""
        with self._timer:
            if key in self:
                value = self[key]
                del self[key]
            elif default is MISSING:
                raise KeyError(key)
            else:
                value = default
            return value

    def setdefault(self, key: _KT, default: Any = None) -> Any:
        """The value of ``key`` if it is there and not expired, else store ``default`` under
        ``key`` and return it."""
        with self._timer:
            if key in self:
                value = self[key]
            else:
                self[key] = value = default
            return value

    def __iter__(self) -> Iterator[_KT]:
        # A snapshot of the keys in insertion order, each yielded if it is alive at the time
        # read for it (time stays frozen while the caller handles the key, as in cachetools).
        od, timer = self._od, self._timer
        for key in list(self._ins):
            with timer as now:
                entry = od.get(key)
                if entry is not None and now < entry[1]:
                    yield key

    def __len__(self) -> int:
        now = self._timer._Timer__read()
        exp = self._exp
        if exp and not now < self._od[next(iter(exp))][1]:
            self._expire(now)
        return len(self._od)

    def _len_generic(self) -> int:
        with self._timer as now:
            self.expire(now)
            return len(self._od)

    @property
    def currsize(self) -> Any:
        """The current size of the cache, expired items removed first."""
        with self._timer as now:
            self.expire(now)
            return len(self._od) if self._sizes is None else self._currsize

    def __repr__(self) -> str:
        with self._timer as now:
            self.expire(now)
            return CacheBase.__repr__(self)

    # ----- writes -------------------------------------------------------------------------------

    def __setitem__(self, key: _KT, value: _VT) -> None:
        if self._sizes is not None:
            self._store(key, value)
            return
        now = self._timer._Timer__read()
        expires = now + self._ttl
        od, exp = self._od, self._exp
        if exp and not now < od[next(iter(exp))][1]:  # expire(now), inline
            self._expire(now)
        maxsize = self._maxsize
        if maxsize < 1:
            raise ValueError("value too large")
        if key in od:
            od[key] = (value, expires)
            od.move_to_end(key)
            exp.move_to_end(key)
            return
        ins = self._ins
        while len(od) + 1 > maxsize:  # popitem(), inline
            old, entry = od.popitem(last=False)
            del ins[old]
            del exp[old]
            if not now < entry[1]:  # as cachetools' __delitem__ of an expired item
                raise KeyError(old)
        od[key] = (value, expires)
        exp[key] = None
        ins[key] = None

    def _store(self, key: _KT, value: _VT) -> None:
        """cachetools' ``TTLCache.__setitem__``: with time frozen, ``self.expire(now)``, then
        ``Cache.__setitem__`` (``self.popitem()``, ``self.getsizeof``), then the link."""
        od = self._od
        with self._timer as now:
            expires = now + self._ttl
            self.expire(now)
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
                od[key] = (value, expires)
                od.move_to_end(key)
                self._exp.move_to_end(key)
            else:
                od[key] = (value, expires)
                self._exp[key] = None
                self._ins[key] = None

    def __delitem__(self, key: _KT) -> None:
        entry = self._drop(key)
        if not self._timer._Timer__read() < entry[1]:
            raise KeyError(key)

    def popitem(self) -> Tuple[_KT, _VT]:
        """Remove and return the ``(key, value)`` pair least recently used that has not already
        expired."""
        now = self._timer._Timer__read()
        od, exp = self._od, self._exp
        if exp and not now < od[next(iter(exp))][1]:
            self._expire(now)
        if not od:
            raise KeyError("%s is empty" % type(self).__name__) from None
        key, entry = od.popitem(last=False)
        del self._ins[key]
        del exp[key]
        sizes = self._sizes
        if sizes is not None:
            self._currsize -= sizes.pop(key)
        if not now < entry[1]:
            raise KeyError(key)
        return key, entry[0]

    def _popitem_generic(self) -> Tuple[_KT, _VT]:
        with self._timer as now:
            self.expire(now)
            od = self._od
            try:
                key = next(iter(od))
            except StopIteration:
                raise KeyError("%s is empty" % type(self).__name__) from None
            value = od[key][0]
            del self[key]
            return key, value

    def clear(self) -> None:
        """Remove every item (expired or not; no hook is called)."""
        CacheBase.clear(self)
        self._exp.clear()

    # ----- copying and pickling -----------------------------------------------------------------

    def _copy_into(self, new: CacheBase[Any, Any]) -> None:
        CacheBase._copy_into(self, new)
        assert isinstance(new, TTLCache)
        new._exp = self._exp.copy()
        new._timer = copy.copy(self._timer)
        new._ttl = self._ttl

    def __getstate__(self) -> Dict[str, Any]:
        state = CacheBase.__getstate__(self)
        state["timer"] = self._timer
        state["ttl"] = self._ttl
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        CacheBase.__setstate__(self, state)
        self._timer = state["timer"]
        self._ttl = state["ttl"]
        # As cachetools: the expiry order is rebuilt by expiry time (ties in recency order),
        # then whatever has expired by now is removed.
        od = self._od
        self._exp = OrderedDict.fromkeys(sorted(od, key=lambda key: od[key][1]))
        self.expire(self.timer())


routes(
    TTLCache,
    {
        "get": ("_get_generic", ("__contains__", "__getitem__")),
        "__len__": ("_len_generic", ("expire",)),
        "__setitem__": ("_store", ("expire", "popitem", "__delitem__")),
        "popitem": ("_popitem_generic", ("expire", "__delitem__")),
    },
)

"""``TTLCache``: cachetools' LRU cache with a per-item time-to-live.

The values live in ``_od`` (least recently used first, as an ``LRUCache``'s, see ``_base.py``);
``_exp`` maps each key to its expiry time (``time + ttl`` when it was stored) in the order the
keys were last stored, which is the order in which cachetools expires them: ``expire(time)``
removes items from its front while ``not (time < expires)``. Times are whatever the timer
returns (numbers, ``datetime``s with a ``timedelta`` ttl, ...): they are only added to ``ttl``
and compared.

``_floor`` is a time no item expires before (or ``None``): while ``now < _floor`` every stored
item is alive, and a read checks only that, not the item's own expiry time (which would cost a
second lookup and, in a large cache, a cache miss per read). While times are stored in
non-decreasing order (``_rising``: a timer that does not go back), the front of ``_exp`` expires
first and ``_floor`` is its time, refreshed whenever the front is looked at; a timer going back
makes the floor the minimum seen (still a bound, possibly a low one, so reads check their own
item) until the cache empties.

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

    __slots__ = ("_ttl", "_rising", "_last")

    _exp: "OrderedDict[Any, Any]"
    _floor: Any
    _ttl: Any
    _rising: bool
    _last: Any

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
        self._floor = None
        self._rising = True
        self._last = None

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

    def _drop(self, key: Any) -> Any:
        """Removes ``key`` (no hook, no timer); its expiry time."""
        CacheBase._drop(self, key)
        return self._exp.pop(key)

    def _stored(self, expires: Any) -> None:
        """Keeps ``_floor`` and ``_rising`` true of an item just stored to expire at
        ``expires`` (it is already the last of ``_exp``)."""
        if len(self._exp) == 1:
            self._floor = expires
            self._rising = True
        elif self._rising and expires < self._last:
            self._rising = False  # a timer went back: the front no longer expires first
            if self._floor is not None and expires < self._floor:
                self._floor = expires
        elif not self._rising and self._floor is not None and expires < self._floor:
            self._floor = expires
        self._last = expires

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
        key = next(iter(exp))
        expires = exp[key]
        if time < expires:  # nothing has expired
            if self._rising:
                self._floor = expires
            return []
        od, ins, sizes = self._od, self._ins, self._sizes
        expired = []
        while True:
            expired.append((key, od.pop(key)))
            del ins[key]
            del exp[key]
            if sizes is not None:
                self._currsize -= sizes.pop(key)
            if not exp:
                self._floor = None
                break
            key = next(iter(exp))
            expires = exp[key]
            if time < expires:
                if self._rising:
                    self._floor = expires
                break
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
        exp, timer = self._exp, self._timer
        for key in list(self._ins):
            with timer as now:
                expires = exp.get(key, MISSING)
                if expires is not MISSING and now < expires:
                    yield key

    def __len__(self) -> int:
        now = self._timer._Timer__read()
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
        if exp:  # expire(now), its first test inline
            first = exp[next(iter(exp))]
            if now < first:
                if self._rising:
                    self._floor = first
            else:
                self._expire(now)
        maxsize = self._maxsize
        if maxsize < 1:
            raise ValueError("value too large")
        if key in od:
            od[key] = value
            od.move_to_end(key)
            exp[key] = expires
            exp.move_to_end(key)
            self._stored(expires)
            return
        ins = self._ins
        while len(od) + 1 > maxsize:  # popitem(), inline
            old = od.popitem(last=False)[0]
            del ins[old]
            if not now < exp.pop(old):  # as cachetools' __delitem__ of an expired item
                raise KeyError(old)
        od[key] = value
        exp[key] = expires
        ins[key] = None
        self._stored(expires)

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
            exp = self._exp
            if key in od:
                od[key] = value
                od.move_to_end(key)
                exp[key] = expires
                exp.move_to_end(key)
            else:
                od[key] = value
                exp[key] = expires
                self._ins[key] = None
            self._stored(expires)

    def __delitem__(self, key: _KT) -> None:
        expires = self._drop(key)
        if not self._timer._Timer__read() < expires:
            raise KeyError(key)

    def popitem(self) -> Tuple[_KT, _VT]:
        """Remove and return the ``(key, value)`` pair least recently used that has not already
        expired."""
        now = self._timer._Timer__read()
        self._expire(now)
        od = self._od
        if not od:
            raise KeyError("%s is empty" % type(self).__name__) from None
        key, value = od.popitem(last=False)
        del self._ins[key]
        expires = self._exp.pop(key)
        sizes = self._sizes
        if sizes is not None:
            self._currsize -= sizes.pop(key)
        if not now < expires:
            raise KeyError(key)
        return key, value

    def _popitem_generic(self) -> Tuple[_KT, _VT]:
        with self._timer as now:
            self.expire(now)
            od = self._od
            try:
                key = next(iter(od))
            except StopIteration:
                raise KeyError("%s is empty" % type(self).__name__) from None
            value = od[key]
            del self[key]
            return key, value

    def clear(self) -> None:
        """Remove every item (expired or not; no hook is called)."""
        CacheBase.clear(self)
        self._exp.clear()
        self._floor = None
        self._rising = True

    # ----- copying and pickling -----------------------------------------------------------------

    def _copy_into(self, new: CacheBase[Any, Any]) -> None:
        CacheBase._copy_into(self, new)
        assert isinstance(new, TTLCache)
        new._exp = self._exp.copy()
        new._timer = copy.copy(self._timer)
        new._ttl = self._ttl
        new._floor = self._floor
        new._rising = self._rising
        new._last = self._last

    def __getstate__(self) -> Dict[str, Any]:
        state = CacheBase.__getstate__(self)
        state["exp"] = self._exp
        state["timer"] = self._timer
        state["ttl"] = self._ttl
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        CacheBase.__setstate__(self, state)
        self._timer = state["timer"]
        self._ttl = state["ttl"]
        # As cachetools: the expiry order is rebuilt by expiry time (ties in recency order),
        # then whatever has expired by now is removed.
        exp = state["exp"]
        self._exp = OrderedDict((key, exp[key]) for key in sorted(self._od, key=exp.__getitem__))
        self._rising = True
        self._floor = self._last = None
        if self._exp:
            self._floor = self._exp[next(iter(self._exp))]
            self._last = self._exp[next(reversed(self._exp))]
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

"""The pure-Python backend: one exact LRU (an ``OrderedDict``) behind one lock.

It behaves exactly as the native backend with one shard (``docs/semantics.md``); it accepts a
``shards`` argument for compatibility and is always a single exact LRU. The ``OrderedDict`` is
both the recency list and the shared read path's mirror (``_shared.py``): a get is one lookup
of it, without the lock, and its key is replayed in a batch (``move_to_end``) into the same
table, whose lines that lookup has just brought into the CPU's cache. An entry that needs a check
first (one with a deadline, or any entry of a pickle cache) holds ``ABSENT`` there, so that the
mirror does not serve it, and its value and deadline in ``_timed``.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._common import (
    MAX_CLOCK_NANOS,
    ManualClock,
    Stats,
    check_int,
    check_resize,
    check_settings,
)
from ._shared import (
    ABSENT,
    NEVER,
    CacheBase,
    Notifications,
    SavedEntry,
    attach_popped,
    bound_get,
)

#: ``_order.get``'s answer for a key that is not stored (``ABSENT`` is a stored key's marker).
_GONE: Any = object()

#: Counter indexes of the causes of a removal.
_CAUSE_COUNTER = {"evicted": 4, "expired": 5, "removed": 6, "cleared": 6}


class Cache(CacheBase):
    """A thread-safe LRU cache with entry and byte bounds and TTLs (pure-Python backend).

    See ``alphaforge_cache.Cache`` for the documentation of every method.
    """

    backend = "python"

    def __init__(
        self,
        max_entries: int,
        *,
        max_bytes: Optional[int] = None,
        ttl: Optional[float] = None,
        shards: Optional[int] = None,
        mode: str = "bytes",
        getsizeof: Optional[Callable[[Any], int]] = None,
        timer: Optional[ManualClock] = None,
        on_evict: Optional[Callable[[bytes, Any, str], object]] = None,
    ) -> None:
        settings = check_settings(
            max_entries, max_bytes, ttl, shards, mode, getsizeof, timer, on_evict
        )
        super().__init__(settings)
        # Every entry, least recently used first: key -> stored value, or ABSENT for an entry
        # in _timed. It is the mirror gets are served from.
        self._order: "OrderedDict[bytes, Any]" = OrderedDict()
        self._mirror = self._order
        self._weights: Dict[bytes, int] = {}  # key -> weight, for every entry
        self._max_entries = settings.max_entries
        # The fallback is one exact LRU whatever the shard count; the count is kept so that
        # resize accepts and refuses exactly what the engine does.
        self._shards = settings.shards
        self._weight = 0
        self._origin = time.monotonic_ns()
        self._counters = [0] * 7  # hits misses inserts updates evictions expirations removals
        # The table of gets is never replaced (a load refills it in place): get binds it once,
        # unless a subclass has a get of its own (an instance attribute would hide it).
        if type(self).get is Cache.get:
            self.get = self._get_bytes = bound_get(self)  # type: ignore[method-assign]

    # ----- time and storage ------------------------------------------------------------------

    def _now(self) -> int:
        timer = self._settings.timer
        if timer is not None:
            return min(timer._nanos, MAX_CLOCK_NANOS)
        return time.monotonic_ns() - self._origin

    # ----- under the lock ----------------------------------------------------------------------

    def _repair(self) -> None:
        # An operation cut short may have left a key in one table and not in another, or the
        # total weight not yet counted: an entry the tables disagree on leaves them (untold:
        # its removal was never decided), and the total is counted again. A bound exceeded
        # meanwhile is enforced by the next put, which evicts while the cache is full.
        order, timed, weights = self._order, self._timed, self._weights
        for key in [
            key
            for key, stored in order.items()
            if key not in weights or (stored is ABSENT and key not in timed)
        ]:
            del order[key]
            weights.pop(key, None)
        for key in [key for key in weights if key not in order]:
            del weights[key]
        for key in [key for key in timed if order.get(key, _GONE) is not ABSENT]:
            del timed[key]
        self._weight = sum(weights.values())

    def _replay(self, keys: List[Any], misses: int) -> None:
        order = self._order
        try:
            deque(map(order.move_to_end, keys), 0)
            hits = len(keys)
        except KeyError:  # some key left meanwhile: again one by one (moving twice is harmless)
            hits = 0
            for key in keys:
                if key in order:
                    order.move_to_end(key)
                    hits += 1
                else:
                    misses += 1
        self._counters[0] += hits
        self._counters[1] += misses

    def _deadline(self, key: bytes, stored: Any) -> int:
        """The deadline of a stored key, given its ``_order`` value."""
        return self._timed[key][1] if stored is ABSENT else NEVER

    def _take(self, key: bytes, cause: str, out: Notifications) -> Any:
        """Removes a stored key (counted and told as ``cause``); its stored value."""
        # Out of the mirror first: a get racing this finds the entry in both or in neither.
        stored = self._order.pop(key)
        if stored is ABSENT:
            stored = self._timed.pop(key)[0]
        self._weight -= self._weights.pop(key)
        self._counters[_CAUSE_COUNTER[cause]] += 1
        out.add(key, stored, cause)
        return stored

    def _find_live(self, key: bytes, now: int, out: Notifications) -> Any:
        """The stored value of a live key, or ``_GONE`` (an expired entry is reclaimed)."""
        stored = self._order.get(key, _GONE)
        if stored is ABSENT:
            stored, deadline = self._timed[key]
            if now >= deadline:
                self._take(key, "expired", out)
                return _GONE
        return stored

    def _evict_lru(self, now: int, out: Notifications) -> None:
        key, stored = next(iter(self._order.items()))
        expired = now >= self._deadline(key, stored)
        self._take(key, "expired" if expired else "evicted", out)

    def _store(
        self,
        key: bytes,
        stored: Any,
        weight: int,
        ttl_nanos: Optional[int],
        now: int,
        out: Notifications,
    ) -> None:
        # An endless TTL (saturated) never expires; any other deadline past the clock's range is
        # its last instant, when the entry still expires (as in the engine).
        if ttl_nanos is None or ttl_nanos >= NEVER:
            deadline = NEVER
        else:
            deadline = min(now + ttl_nanos, MAX_CLOCK_NANOS)
        order = self._order
        old = self._find_live(key, now, out)
        if old is not _GONE:
            out.add(key, old, "replaced")
            self._weight += weight - self._weights[key]
            self._counters[3] += 1
        else:
            while len(order) >= self._max_entries:
                self._evict_lru(now, out)
            self._weight += weight
            self._counters[2] += 1
        self._weights[key] = weight
        # The key length first: a flush must never see a key of a length it does not know of.
        if self._key_len != len(key):
            self._note_key_lengths((len(key),))
        self._place(key, stored, deadline)
        order.move_to_end(key)
        max_bytes = self._max_bytes
        if max_bytes is not None:
            while self._weight > max_bytes and len(order) > 1:
                self._evict_lru(now, out)

    def _place(self, key: bytes, stored: Any, deadline: int) -> None:
        """Sets a key's value in ``_order`` (a key new there goes last) and ``_timed``: into the
        new place before out of the old one, so that a concurrent get sees one of the two."""
        if deadline == NEVER and not self._pickled:
            self._order[key] = stored
            if self._timed:
                self._timed.pop(key, None)
        else:
            self._timed[key] = (stored, deadline)
            self._order[key] = ABSENT

    def _expire_locked(self, now: int, out: Notifications) -> List[bytes]:
        if not self._timed:
            return []
        dead = {key for key, (_, deadline) in self._timed.items() if now >= deadline}
        if not dead:
            return []
        expired = [key for key in reversed(self._order) if key in dead]  # most recent first
        for key in expired:
            self._take(key, "expired", out)
        return expired

    # ----- reads -------------------------------------------------------------------------------

    def _lookup(self, key: bytes, touch: bool) -> Tuple[bool, Any]:
        out = Notifications(self)
        with self._lock:
            self._begin()
            stored = self._find_live(key, self._now(), out)
            if touch:
                if stored is _GONE:
                    self._counters[1] += 1
                else:
                    self._counters[0] += 1
                    self._order.move_to_end(key)
        out.deliver()
        return (False, None) if stored is _GONE else (True, stored)

    def _remaining_ttl(self, key: bytes) -> Tuple[bool, Optional[int]]:
        out = Notifications(self)
        with self._lock:
            self._begin()
            now = self._now()
            found = self._find_live(key, now, out) is not _GONE
            left = None
            if found:
                deadline = self._deadline(key, self._order[key])
                left = None if deadline == NEVER else deadline - now
        out.deliver()
        return found, left

    # ----- writes ------------------------------------------------------------------------------

    def _put(self, key: bytes, value: Any, ttl: Optional[float]) -> None:
        stored, weight, ttl_nanos = self._admit(key, value, ttl)
        out = Notifications(self)
        with self._lock:
            self._begin()
            self._store(key, stored, weight, ttl_nanos, self._now(), out)
        out.deliver()

    def _put_many(self, items: List[Tuple[bytes, Any]], ttl: Optional[float]) -> None:
        admitted = [(key, self._admit(key, value, ttl)) for key, value in items]
        out = Notifications(self)
        with self._lock:
            self._begin()
            now = self._now()
            for key, (stored, weight, ttl_nanos) in admitted:
                self._store(key, stored, weight, ttl_nanos, now, out)
        out.deliver()

    def _remove(self, key: bytes) -> Tuple[bool, Any]:
        out = Notifications(self)
        with self._lock:
            self._begin()
            stored = self._find_live(key, self._now(), out)
            if stored is not _GONE:
                self._take(key, "removed", out)
        try:
            out.deliver()
        except BaseException as error:
            if stored is not _GONE:
                attach_popped(error, key, lambda: self._decode(stored))
            raise
        return (False, None) if stored is _GONE else (True, self._decode(stored))

    def _pop_lru(self) -> Tuple[bool, bytes, Any]:
        out = Notifications(self)
        with self._lock:
            self._begin()
            now, timed = self._now(), self._timed
            found: Tuple[bool, bytes, Any] = (False, b"", None)
            for key, stored in self._order.items():
                if stored is ABSENT and now >= timed[key][1]:
                    continue  # expired: passed over, as the engine's snapshot does
                found = (True, key, self._take(key, "removed", out))
                break
        try:
            out.deliver()
        except BaseException as error:
            if found[0]:
                attach_popped(error, found[1], lambda: self._decode(found[2]))
            raise
        return found

    def _take_all(self, out: Notifications) -> None:
        """Removes every entry, most recently used first, each told as cleared (or expired)."""
        now = self._now()
        for key, stored in reversed(list(self._order.items())):
            expired = now >= self._deadline(key, stored)
            self._take(key, "expired" if expired else "cleared", out)

    def clear(self) -> None:
        out = Notifications(self)
        with self._lock:
            self._begin()
            self._take_all(out)
        out.deliver()

    def expire(self) -> List[bytes]:
        out = Notifications(self)
        with self._lock:
            self._begin()
            expired = self._expire_locked(self._now(), out)
        out.deliver()
        return expired

    def resize(self, max_entries: int) -> None:
        check_resize(max_entries, self._shards)
        out = Notifications(self)
        with self._lock:
            self._begin()
            self._max_entries = max_entries
            now = self._now()
            while len(self._order) > max_entries:
                self._evict_lru(now, out)
        out.deliver()

    def set_max_bytes(self, max_bytes: int) -> None:
        check_int(max_bytes, "max_bytes", 1, 2**64 - 1)
        if self._max_bytes is None:
            raise ValueError("this cache was built without max_bytes: there is no bound to change")
        out = Notifications(self)
        with self._lock:
            self._begin()
            self._max_bytes = max_bytes
            now = self._now()
            while self._weight > max_bytes and self._order:
                self._evict_lru(now, out)
        out.deliver()

    # ----- whole-cache views -------------------------------------------------------------------

    def _swept(self, read: Callable[[], Any]) -> Any:
        out = Notifications(self)
        with self._lock:
            self._begin()
            self._expire_locked(self._now(), out)
            result = read()
        out.deliver()
        return result

    def __len__(self) -> int:
        return int(self._swept(lambda: len(self._order)))

    @property
    def weight(self) -> int:
        """The total weight of the live entries."""
        return int(self._swept(lambda: self._weight))

    def stats(self) -> Stats:
        counters = self._swept(lambda: (tuple(self._counters), len(self._order), self._weight))
        c, entries, weight = counters
        return Stats(c[0], c[1], c[2], c[3], c[4], c[5], c[6], entries, weight)

    def reset_stats(self) -> None:
        with self._lock:
            self._begin()
            self._counters = [0] * 7

    def _live(self, now: int) -> List[Tuple[bytes, Any, Optional[int]]]:
        """The live entries, least recently used first: (key, stored value, nanoseconds left
        or None)."""
        timed = self._timed
        live: List[Tuple[bytes, Any, Optional[int]]] = []
        for key, stored in self._order.items():
            if stored is not ABSENT:
                live.append((key, stored, None))
                continue
            stored, deadline = timed[key]
            if now < deadline:
                live.append((key, stored, None if deadline == NEVER else deadline - now))
        return live

    def _snapshot(self) -> List[Tuple[bytes, Any, Optional[int]]]:
        with self._lock:
            self._begin()
            live = self._live(self._now())
        live.reverse()  # most recently used first
        return [(key, self._decode(stored), left) for key, stored, left in live]

    def _saved_entries(self) -> List[SavedEntry]:
        with self._lock:
            self._begin()
            weights = self._weights
            return [
                (key, stored, left, weights[key]) for key, stored, left in self._live(self._now())
            ]

    def _stages_exactly(self) -> bool:
        return True  # always one exact LRU

    def _restore(self, entries: List[SavedEntry]) -> int:
        out = Notifications(self)
        with self._lock:
            self._begin()
            now = self._now()
            order, timed, counters = self._order, self._timed, self._counters
            for key, stored in reversed(list(order.items())):  # as clear reports them
                expired = now >= self._deadline(key, stored)
                counters[5 if expired else 6] += 1
                out.add(
                    key,
                    timed[key][0] if stored is ABSENT else stored,
                    "expired" if expired else "cleared",
                )
            # The key lengths first: a flush must never see a key of a length it does not know.
            self._note_key_lengths({len(entry[0]) for entry in entries})
            # Into the new entries before out of the old ones, so that a get racing the load
            # finds a key that both hold; then in the new order. Entries are staged: distinct
            # keys, within the bounds.
            weights: Dict[bytes, int] = {}
            had_entries = bool(order)
            for key, stored, ttl, weight in entries:
                if ttl is None or ttl >= NEVER:  # endless
                    self._place(key, stored, NEVER)
                else:
                    self._place(key, stored, min(now + ttl, MAX_CLOCK_NANOS))
                weights[key] = weight
            if had_entries:
                for key in [key for key in order if key not in weights]:
                    del order[key]
                    timed.pop(key, None)
                deque(map(order.move_to_end, [entry[0] for entry in entries]), 0)
            self._weights = weights
            self._weight = sum(weights.values())
            counters[2] += len(weights)
            # Bounds lowered since the entries were staged (no lock was held meanwhile).
            while len(order) > self._max_entries:
                self._evict_lru(now, out)
            max_bytes = self._max_bytes
            while max_bytes is not None and self._weight > max_bytes and order:
                self._evict_lru(now, out)
            kept = len(order)
        out.deliver()
        return kept

    @property
    def max_entries(self) -> int:
        """The entry bound."""
        return self._max_entries

    @property
    def max_bytes(self) -> Optional[int]:
        """The byte (weight) bound, if any."""
        return self._max_bytes

    def close(self) -> None:
        if self._closed:
            return
        out = Notifications(self)
        with self._lock:
            if not self._closed:
                self._take_all(out)
                self._closed = True
                self._take_reads()
        out.deliver()

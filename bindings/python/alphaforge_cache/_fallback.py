"""The pure-Python backend: one exact LRU (an ``OrderedDict``) behind one lock.

It behaves exactly as the native backend with one shard (``docs/semantics.md``); it accepts a
``shards`` argument for compatibility and is always a single exact LRU. Its ``OrderedDict`` plays
the engine's part behind the shared mirror and read buffer (``_shared.py``): gets are served by
the mirror without the lock, and replayed into the ``OrderedDict`` in batches.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Any, Callable, List, Optional, Tuple

from ._common import (
    MAX_CLOCK_NANOS,
    ManualClock,
    Stats,
    check_int,
    check_resize,
    check_settings,
)
from ._shared import CacheBase, Notifications, SavedEntry

_NO_DEADLINE = 2**64 - 1
_ABSENT: Any = object()


class _Entry:
    __slots__ = ("stored", "weight", "deadline")

    def __init__(self, stored: Any, weight: int, deadline: int) -> None:
        self.stored = stored
        self.weight = weight
        self.deadline = deadline


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
        self._entries: "OrderedDict[bytes, _Entry]" = OrderedDict()
        self._max_entries = settings.max_entries
        # The fallback is one exact LRU whatever the shard count; the count is kept so that
        # resize accepts and refuses exactly what the engine does.
        self._shards = settings.shards
        self._weight = 0
        self._origin = time.monotonic_ns()
        self._counters = [0] * 7  # hits misses inserts updates evictions expirations removals

    # ----- time and storage ------------------------------------------------------------------

    def _now(self) -> int:
        timer = self._settings.timer
        if timer is not None:
            return min(timer._nanos, MAX_CLOCK_NANOS)
        return time.monotonic_ns() - self._origin

    # ----- under the lock ----------------------------------------------------------------------

    def _replay(self, keys: List[Any], misses: int) -> None:
        entries = self._entries
        try:
            deque(map(entries.move_to_end, keys), 0)
            hits = len(keys)
        except KeyError:  # some key left meanwhile: again one by one (moving twice is harmless)
            hits = 0
            for key in keys:
                if key in entries:
                    entries.move_to_end(key)
                    hits += 1
                else:
                    misses += 1
        self._counters[0] += hits
        self._counters[1] += misses

    def _take(self, key: bytes, cause: str, out: Notifications) -> _Entry:
        entry = self._entries.pop(key)
        self._mirror_drop(key)
        self._weight -= entry.weight
        index = {"evicted": 4, "expired": 5, "removed": 6, "cleared": 6}[cause]
        self._counters[index] += 1
        out.add(key, entry.stored, cause)
        return entry

    def _find_live(self, key: bytes, now: int, out: Notifications) -> Optional[_Entry]:
        entry = self._entries.get(key)
        if entry is not None and now >= entry.deadline:
            self._take(key, "expired", out)
            return None
        return entry

    def _evict_lru(self, now: int, out: Notifications) -> None:
        key, entry = next(iter(self._entries.items()))
        self._take(key, "expired" if now >= entry.deadline else "evicted", out)

    def _store(
        self,
        key: bytes,
        stored: Any,
        weight: int,
        ttl_nanos: Optional[int],
        now: int,
        out: Notifications,
    ) -> None:
        deadline = _NO_DEADLINE if ttl_nanos is None else min(now + ttl_nanos, _NO_DEADLINE)
        entries = self._entries
        entry = self._find_live(key, now, out)
        if entry is not None:
            out.add(key, entry.stored, "replaced")
            self._weight += weight - entry.weight
            entries[key] = _Entry(stored, weight, deadline)
            entries.move_to_end(key)
            self._counters[3] += 1
        else:
            while len(entries) >= self._max_entries:
                self._evict_lru(now, out)
            entries[key] = _Entry(stored, weight, deadline)
            self._weight += weight
            self._counters[2] += 1
        self._mirror_store(key, stored, None if deadline == _NO_DEADLINE else deadline)
        max_bytes = self._max_bytes
        if max_bytes is not None:
            while self._weight > max_bytes and len(entries) > 1:
                self._evict_lru(now, out)

    def _expire_locked(self, now: int, out: Notifications) -> List[bytes]:
        expired = [k for k, e in reversed(self._entries.items()) if now >= e.deadline]
        for key in expired:
            self._take(key, "expired", out)
        return expired

    # ----- reads -------------------------------------------------------------------------------

    def _lookup(self, key: bytes, touch: bool) -> Tuple[bool, Any]:
        out = Notifications(self)
        with self._lock:
            self._begin()
            entry = self._find_live(key, self._now(), out)
            if touch:
                if entry is None:
                    self._counters[1] += 1
                else:
                    self._counters[0] += 1
                    self._entries.move_to_end(key)
        out.deliver()
        return (False, None) if entry is None else (True, entry.stored)

    def _remaining_ttl(self, key: bytes) -> Tuple[bool, Optional[int]]:
        out = Notifications(self)
        with self._lock:
            self._begin()
            now = self._now()
            entry = self._find_live(key, now, out)
            left = None if entry is None or entry.deadline == _NO_DEADLINE else entry.deadline - now
        out.deliver()
        return entry is not None, left

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
            entry = self._find_live(key, self._now(), out)
            if entry is not None:
                self._take(key, "removed", out)
        out.deliver()
        return (False, None) if entry is None else (True, self._decode(entry.stored))

    def clear(self) -> None:
        out = Notifications(self)
        with self._lock:
            self._begin()
            now = self._now()
            for key, entry in reversed(list(self._entries.items())):
                self._take(key, "expired" if now >= entry.deadline else "cleared", out)
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
            while len(self._entries) > max_entries:
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
            while self._weight > max_bytes and self._entries:
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
        return int(self._swept(lambda: len(self._entries)))

    @property
    def weight(self) -> int:
        """The total weight of the live entries."""
        return int(self._swept(lambda: self._weight))

    def stats(self) -> Stats:
        counters = self._swept(lambda: (tuple(self._counters), len(self._entries), self._weight))
        c, entries, weight = counters
        return Stats(c[0], c[1], c[2], c[3], c[4], c[5], c[6], entries, weight)

    def reset_stats(self) -> None:
        with self._lock:
            self._begin()
            self._counters = [0] * 7

    def _snapshot(self) -> List[Tuple[bytes, Any, Optional[int]]]:
        with self._lock:
            self._begin()
            now = self._now()
            live = [
                (key, e.stored, None if e.deadline == _NO_DEADLINE else e.deadline - now)
                for key, e in reversed(self._entries.items())
                if now < e.deadline
            ]
        return [(key, self._decode(stored), left) for key, stored, left in live]

    def _saved_entries(self) -> List[SavedEntry]:
        with self._lock:
            self._begin()
            now = self._now()
            return [
                (key, e.stored, None if e.deadline == _NO_DEADLINE else e.deadline - now, e.weight)
                for key, e in self._entries.items()
                if now < e.deadline
            ]

    def _stages_exactly(self) -> bool:
        return True  # always one exact LRU

    def _restore(self, entries: List[SavedEntry]) -> int:
        out = Notifications(self)
        with self._lock:
            self._begin()
            now = self._now()
            old = self._entries
            new: "OrderedDict[bytes, _Entry]" = OrderedDict()
            weight = 0
            for key, stored, ttl, w in entries:  # staged: distinct keys, within the bounds
                deadline = _NO_DEADLINE if ttl is None else min(now + ttl, _NO_DEADLINE)
                new[key] = _Entry(stored, w, deadline)
                weight += w
            counters = self._counters
            for key, entry in reversed(old.items()):  # as clear reports them
                expired = now >= entry.deadline
                counters[5 if expired else 6] += 1
                out.add(key, entry.stored, "expired" if expired else "cleared")
            self._entries, self._weight = new, weight
            counters[2] += len(new)
            # The mirror: into the new entries before out of the old ones, so that a get racing
            # the load finds a key that both hold.
            pairs = [(key, e.stored) for key, e in new.items()]
            deadlines = None
            if any(e.deadline != _NO_DEADLINE for e in new.values()):
                deadlines = [
                    None if e.deadline == _NO_DEADLINE else e.deadline for e in new.values()
                ]
            self._mirror_store_all(pairs, deadlines)
            for key in old:
                if key not in new:
                    self._mirror_drop(key)
            # Bounds lowered since the entries were staged (no lock was held meanwhile).
            while len(new) > self._max_entries:
                self._evict_lru(now, out)
            max_bytes = self._max_bytes
            while max_bytes is not None and self._weight > max_bytes and new:
                self._evict_lru(now, out)
            kept = len(new)
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
                now = self._now()
                for key, entry in reversed(list(self._entries.items())):
                    self._take(key, "expired" if now >= entry.deadline else "cleared", out)
                self._closed = True
                self._take_reads()
        out.deliver()

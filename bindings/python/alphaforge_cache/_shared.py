"""The public interface both backends share, written once on top of a few primitives that each
backend implements (``_replay``, ``_lookup``, ``_remaining_ttl``, ``_put``, ``_put_many``,
``_remove``, ``_snapshot``, ``clear``, ``expire``, ``resize``, ``set_max_bytes``, ``__len__``,
``weight``, ``stats``, ``reset_stats``, ``close``, ``max_entries``, ``max_bytes``).

Reads are served from a **mirror** without a lock and without crossing into the engine, as in
Caffeine (``docs/design.md``, "Python reads"): two dicts hold every stored key, ``_mirror`` those
served as they are (key -> stored value) and ``_timed`` those that need a check first (key ->
``(stored value, deadline)``: an entry with a deadline, or any entry of a pickle cache, which must
be unpickled).
Every change of the engine's entries goes through the backend under ``_lock``, which updates the
mirror before it releases the lock.
A get served by the mirror appends its key to the **read buffer**; the backend replays the
buffer into the engine (recency, hit and miss counters) before every other engine operation and
whenever the buffer fills, so eviction order and statistics are those of a cache that had seen
each get as it happened. ``dict.get`` and ``list.append`` are atomic under the GIL, which is
what makes the lock-free read path safe.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import MutableMapping
from itertools import repeat
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from ._common import NANOS, CacheClosedError, Key, Settings, key_bytes

_MISSING: Any = object()
_loads = pickle.loads
_D = TypeVar("_D")


class Notifications:
    """Entries removed during one operation, told to ``on_evict`` once the operation has released
    its lock. A listener that raises does not stop the others; the first exception is re-raised
    after every notification has been delivered."""

    __slots__ = ("_cache", "_items")

    def __init__(self, cache: "CacheBase") -> None:
        self._cache = cache
        self._items: List[Tuple[bytes, Any, str]] = []

    def add(self, key: bytes, stored: Any, cause: str) -> None:
        """Records one removal (``stored`` in the backend's stored form)."""
        if self._cache._on_evict is not None:
            self._items.append((key, stored, cause))

    def deliver(self) -> None:
        """Calls the listener for every recorded removal, in order."""
        listener = self._cache._on_evict
        if listener is None or not self._items:
            return
        first: Optional[BaseException] = None
        for key, stored, cause in self._items:
            try:
                listener(key, self._cache._decode(stored), cause)
            except Exception as error:  # noqa: BLE001 - re-raised below, after the others
                if first is None:
                    first = error
        self._items.clear()
        if first is not None:
            raise first


class _Computation:
    """A ``get_or_set`` computation in flight: others asking for the key wait for it."""

    __slots__ = ("done", "owner")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.owner = threading.get_ident()


#: ``dict.get``'s answer for a key the mirror does not hold.
ABSENT: Any = object()

#: The deadline of a ``_timed`` entry that never expires (a pickle cache's entry without TTL).
NEVER = 2**64 - 1


def _pair(stored: Any, deadline: int) -> Tuple[Any, int]:
    return (stored, deadline)


#: Reads buffered before they are replayed into the engine.
FLUSH_AT = 256


class CacheBase(MutableMapping):  # type: ignore[type-arg]
    """The interface of ``alphaforge_cache.Cache`` (see its documentation)."""

    backend: str = ""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._mode = settings.mode
        self._pickled = settings.mode == "pickle"
        self._on_evict = settings.on_evict
        self._computing: Dict[bytes, _Computation] = {}
        self._computing_lock = threading.Lock()
        self._closed = False
        # Every engine call and mirror change happens under this lock.
        self._lock = threading.Lock()
        # The engine's entries: key -> stored value, or key -> (stored value, deadline).
        self._mirror: Dict[Any, Any] = {}
        self._timed: Dict[Any, Tuple[Any, int]] = {}
        # Makes a _timed entry: a (stored, deadline) pair, or an object that reads as one.
        self._timed_entry: Callable[[Any, int], Any] = _pair
        # Keys of gets served by the mirror (hits, and misses of a stored key length), and one
        # item per other miss, not yet replayed.
        self._reads: List[Any] = []
        self._misses: List[None] = []
        # The length every stored key has had: -1 before the first put, -2 once two differ.
        # While it is one length, a flush passes it instead of one length per key, and a miss
        # of another length is counted without its key (no such key can be stored).
        self._key_len = -1

    # ----- backend primitives (overridden) -----------------------------------------------------

    def _now(self) -> int:
        """The time in nanoseconds, as the mirror's deadlines count it."""
        raise NotImplementedError

    def _replay(self, keys: List[Any], misses: int) -> None:
        """Replays buffered gets into the engine (lock held): a key still stored counts a hit
        and becomes the most recently used entry, a key not stored counts a miss; ``misses``
        more misses are counted."""
        raise NotImplementedError

    def _decode(self, stored: Any) -> Any:
        return _loads(stored) if self._pickled else stored

    def _lookup(self, key: bytes, touch: bool) -> Tuple[bool, Any]:
        """A read decided by the engine (the read buffer is flushed first): (found, the stored
        form of the value)."""
        raise NotImplementedError

    def _remaining_ttl(self, key: bytes) -> Tuple[bool, Optional[int]]:
        raise NotImplementedError

    def _put(self, key: bytes, value: Any, ttl: Optional[float]) -> None:
        raise NotImplementedError

    def _put_many(self, items: List[Tuple[bytes, Any]], ttl: Optional[float]) -> None:
        raise NotImplementedError

    def _remove(self, key: bytes) -> Tuple[bool, Any]:
        raise NotImplementedError

    def _snapshot(self) -> List[Tuple[bytes, Any, Optional[int]]]:
        raise NotImplementedError

    def close(self) -> None:
        """Releases every entry (``on_evict`` hears them as cleared, or expired); any later use
        raises ``CacheClosedError``. Closing twice is harmless."""
        raise NotImplementedError

    # ----- the mirror and the read buffer ------------------------------------------------------

    def _take_reads(self) -> Tuple[List[Any], int]:
        """Takes the buffered reads (lock held). Only appends happen meanwhile, so reads
        buffered while this runs stay for the next flush."""
        reads = self._reads
        n = len(reads)
        keys = reads[:n]
        del reads[:n]
        misses = self._misses
        m = len(misses)
        if m:
            del misses[:m]
        return keys, m

    def _flush(self) -> None:
        """Replays the read buffer into the engine."""
        with self._lock:
            if self._reads or self._misses:
                self._replay(*self._take_reads())

    def _mirror_store(self, key: bytes, stored: Any, deadline: Optional[int]) -> None:
        """A key's entry as stored in the engine (lock held)."""
        # The key length first: a flush must never see a key of a length it does not know of.
        if self._key_len != len(key):
            self._key_len = len(key) if self._key_len == -1 else -2
            self._key_len_changed()
        # Into the new place before out of the old one: a concurrent get sees one of the two.
        if deadline is None and not self._pickled:
            self._mirror[key] = stored
            if self._timed:
                self._timed.pop(key, None)
        else:
            self._timed[key] = self._timed_entry(stored, NEVER if deadline is None else deadline)
            self._mirror.pop(key, None)

    def _key_len_changed(self) -> None:
        """``_key_len`` changed (lock held): a backend that keeps a copy updates it."""

    def _mirror_drop(self, key: Any) -> None:
        """A key's entry left the engine (lock held)."""
        if self._mirror.pop(key, ABSENT) is ABSENT and self._timed:
            self._timed.pop(key, None)

    def _mirror_clear(self) -> None:
        self._mirror.clear()
        self._timed.clear()

    def _read_miss(self, key: Any) -> None:
        """Buffers a get that the mirror could not serve."""
        if len(key) == self._key_len or self._key_len == -2:
            reads = self._reads
            reads.append(key)
            if len(reads) > FLUSH_AT:
                self._flush()
        else:
            misses = self._misses
            misses.append(None)
            if len(misses) > FLUSH_AT:
                self._flush()

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosedError("the cache is closed")

    # ----- reads -------------------------------------------------------------------------------

    def get(self, key: Key, default: Any = None) -> Any:
        """The value of ``key`` (which becomes the most recently used), or ``default``."""
        try:
            stored = self._mirror.get(key, ABSENT)
        except TypeError:  # unhashable (bytearray): normalized on the other path
            stored = ABSENT
        if stored is ABSENT:
            return self._get_other(key, default)
        reads = self._reads
        reads.append(key)
        if len(reads) > 256:  # FLUSH_AT, inlined
            self._flush()
        return stored

    def __getitem__(self, key: Key) -> Any:
        try:
            stored = self._mirror.get(key, ABSENT)
        except TypeError:
            stored = ABSENT
        if stored is ABSENT:
            stored = self._get_other(key, ABSENT)
            if stored is ABSENT:
                raise KeyError(key)
            return stored
        reads = self._reads
        reads.append(key)
        if len(reads) > 256:  # FLUSH_AT, inlined
            self._flush()
        return stored

    def _get_other(self, key: Any, default: Any) -> Any:
        """A get the plain mirror cannot serve: an entry to check first, another key type, or a
        miss."""
        try:
            entry = self._timed.get(key)
        except TypeError:
            entry = None
        if entry is None:
            if type(key) is not bytes:
                return self.get(key_bytes(key), default)
            self._check_open()
            self._read_miss(key)
            return default
        stored, deadline = entry
        if self._now() < deadline:
            reads = self._reads
            reads.append(key)
            if len(reads) > FLUSH_AT:
                self._flush()
            return _loads(stored) if self._pickled else stored
        found, stored = self._lookup(key, True)  # expired: the engine decides, and reclaims
        return self._decode(stored) if found else default

    def _peeked(self, key: Any) -> Any:
        """The stored value of a live key, or ``ABSENT``; recency and counters unchanged."""
        try:
            stored = self._mirror.get(key, ABSENT)
            entry = self._timed.get(key) if stored is ABSENT else None
        except TypeError:
            return self._peeked(key_bytes(key))
        if entry is None:
            if stored is ABSENT and type(key) is not bytes:
                return self._peeked(key_bytes(key))
            if stored is ABSENT:
                self._check_open()
            return stored
        if self._now() < entry[1]:
            return entry[0]
        found, stored = self._lookup(key, False)
        return stored if found else ABSENT

    def peek(self, key: Key, default: Any = None) -> Any:
        """Like ``get`` without changing recency or the hit/miss counters."""
        stored = self._peeked(key)
        if stored is ABSENT:
            return default
        return self._decode(stored)

    def __contains__(self, key: object) -> bool:
        try:
            return self._peeked(key) is not ABSENT
        except TypeError:
            return False

    def ttl_of(self, key: Key) -> Optional[float]:
        """Seconds ``key`` has left (``None`` if it never expires); ``KeyError`` if absent."""
        found, left = self._remaining_ttl(key_bytes(key))
        if not found:
            raise KeyError(key)
        return None if left is None else left / NANOS

    def get_many(self, keys: Iterable[Key], default: Any = None) -> List[Any]:
        """The values of many keys in one call (``default`` for a miss), in order."""
        keys = keys if type(keys) is list else list(keys)
        if not self._timed:
            try:
                # A str key makes the join raise: such calls take the general path below.
                joined = b"".join(keys)  # type: ignore[arg-type]
                values = list(map(self._mirror.get, keys, repeat(default, len(keys))))
            except TypeError:
                pass
            else:
                self._check_open()
                n = len(keys)
                key_len = self._key_len
                if key_len == -2 or (
                    len(joined) == n * key_len and max(map(len, keys), default=key_len) == key_len
                ):
                    reads = self._reads
                    reads.extend(keys)
                    if len(reads) > FLUSH_AT:
                        self._flush()
                else:
                    for key in keys:
                        self._read_miss(key)
                return values
        raws = [key_bytes(key) for key in keys]  # every key is checked before any is read
        return [self.get(raw, default) for raw in raws]

    # ----- writes ------------------------------------------------------------------------------

    def put(self, key: Key, value: Any, ttl: Optional[float] = None) -> None:
        """Stores ``key -> value`` as the most recently used entry, expiring ``ttl`` seconds
        from now (default: the cache's TTL). ``EntryTooHeavyError`` leaves the cache unchanged."""
        self._put(key if type(key) is bytes else key_bytes(key), value, ttl)

    def __setitem__(self, key: Key, value: Any) -> None:
        self._put(key if type(key) is bytes else key_bytes(key), value, None)

    def put_many(
        self,
        items: Union[Mapping[Key, Any], Iterable[Tuple[Key, Any]]],
        ttl: Optional[float] = None,
    ) -> None:
        """Stores many entries in one call, in order: all of them, or (on an error) none."""
        pairs = items.items() if isinstance(items, Mapping) else items
        self._put_many([(k if type(k) is bytes else key_bytes(k), v) for k, v in pairs], ttl)

    def __delitem__(self, key: Key) -> None:
        if not self._remove(key_bytes(key))[0]:
            raise KeyError(key)

    def pop(self, key: Key, default: Any = _MISSING) -> Any:
        """Removes ``key`` and returns its value; ``default`` (or ``KeyError``) if absent."""
        found, value = self._remove(key_bytes(key))
        if found:
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def get_or_set(self, key: Key, factory: Callable[[], Any], ttl: Optional[float] = None) -> Any:
        """The value of ``key``; on a miss, ``factory()`` computes it (no lock held) and it is
        stored. When threads race on one key, one computes and the others wait for its value.
        A value too heavy to store is returned but not stored. A factory asking for its own key
        again raises ``RuntimeError`` (it would wait for itself)."""
        raw = key_bytes(key)
        while True:
            value = self.get(raw, _MISSING)
            if value is not _MISSING:
                return value
            with self._computing_lock:
                running = self._computing.get(raw)
                if running is None:
                    mine = self._computing[raw] = _Computation()
            if running is None:
                break
            if running.owner == threading.get_ident():
                raise RuntimeError(
                    "get_or_set: computing a key asked for the same key again "
                    "(a reentrant computation would wait for itself forever)"
                )
            running.done.wait()
        try:
            value = factory()
            try:
                self._put(raw, value, ttl)
            except ValueError:
                pass  # too heavy or too large to store: returned, not cached (documented)
            return value
        finally:
            with self._computing_lock:
                if self._computing.get(raw) is mine:
                    del self._computing[raw]
            mine.done.set()

    # ----- views -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        """The keys of a snapshot, most recently used first."""
        return iter([key for key, _, _ in self._snapshot()])

    def keys(self) -> List[bytes]:  # type: ignore[override]
        """The keys, most recently used first (a snapshot; recency unchanged)."""
        return [key for key, _, _ in self._snapshot()]

    def values(self) -> List[Any]:  # type: ignore[override]
        """The values, most recently used first (a snapshot; recency unchanged)."""
        return [value for _, value, _ in self._snapshot()]

    def items(self) -> List[Tuple[bytes, Any]]:  # type: ignore[override]
        """The (key, value) pairs, most recently used first (a snapshot; recency unchanged)."""
        return [(key, value) for key, value, _ in self._snapshot()]

    @property
    def mode(self) -> str:
        """How values are stored: ``"bytes"``, ``"pickle"`` or ``"object"``."""
        return self._mode

    @property
    def ttl(self) -> Optional[float]:
        """The default TTL in seconds, if any."""
        nanos = self._settings.ttl_nanos
        return None if nanos is None else nanos / NANOS

    def __enter__(self) -> "CacheBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        bounds = f"max_entries={self.max_entries}, max_bytes={self.max_bytes}"  # type: ignore[attr-defined]
        rest = f"ttl={self.ttl}, mode={self._mode!r}, backend={self.backend!r}"
        return f"alphaforge_cache.Cache({bounds}, {rest})"

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

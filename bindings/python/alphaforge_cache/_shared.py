"""The public interface both backends share, written once on top of a few primitives that each
backend implements (``_lookup``, ``_get_many``, ``_remaining_ttl``, ``_put``, ``_put_many``,
``_remove``, ``_snapshot``, ``clear``, ``expire``, ``resize``, ``set_max_bytes``, ``__len__``,
``weight``, ``stats``, ``reset_stats``, ``close``, ``max_entries``, ``max_bytes``)."""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
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

from ._common import NANOS, Key, Settings, key_bytes

_MISSING: Any = object()
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


class CacheBase(MutableMapping):  # type: ignore[type-arg]
    """The interface of ``alphaforge_cache.Cache`` (see its documentation)."""

    backend: str = ""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._mode = settings.mode
        self._on_evict = settings.on_evict
        self._computing: Dict[bytes, _Computation] = {}
        self._computing_lock = threading.Lock()

    # ----- backend primitives (overridden) -----------------------------------------------------

    def _decode(self, stored: Any) -> Any:
        raise NotImplementedError

    def _lookup(self, key: bytes, touch: bool) -> Tuple[bool, Any]:
        raise NotImplementedError

    def _get_many(self, keys: List[bytes]) -> List[Tuple[bool, Any]]:
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

    # ----- reads -------------------------------------------------------------------------------

    def get(self, key: Key, default: Any = None) -> Any:
        """The value of ``key`` (which becomes the most recently used), or ``default``."""
        found, value = self._lookup(key_bytes(key), True)
        return value if found else default

    def peek(self, key: Key, default: Any = None) -> Any:
        """Like ``get`` without changing recency or the hit/miss counters."""
        found, value = self._lookup(key_bytes(key), False)
        return value if found else default

    def __getitem__(self, key: Key) -> Any:
        found, value = self._lookup(key_bytes(key), True)
        if not found:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        try:
            raw = key_bytes(key)
        except TypeError:
            return False
        return self._lookup(raw, False)[0]

    def ttl_of(self, key: Key) -> Optional[float]:
        """Seconds ``key`` has left (``None`` if it never expires); ``KeyError`` if absent."""
        found, left = self._remaining_ttl(key_bytes(key))
        if not found:
            raise KeyError(key)
        return None if left is None else left / NANOS

    def get_many(self, keys: Iterable[Key], default: Any = None) -> List[Any]:
        """The values of many keys in one call (``default`` for a miss), in order."""
        results = self._get_many([key_bytes(k) for k in keys])
        return [value if found else default for found, value in results]

    # ----- writes ------------------------------------------------------------------------------

    def put(self, key: Key, value: Any, ttl: Optional[float] = None) -> None:
        """Stores ``key -> value`` as the most recently used entry, expiring ``ttl`` seconds
        from now (default: the cache's TTL). ``EntryTooHeavyError`` leaves the cache unchanged."""
        self._put(key_bytes(key), value, ttl)

    def __setitem__(self, key: Key, value: Any) -> None:
        self._put(key_bytes(key), value, None)

    def put_many(
        self,
        items: Union[Mapping[Key, Any], Iterable[Tuple[Key, Any]]],
        ttl: Optional[float] = None,
    ) -> None:
        """Stores many entries in one call, in order: all of them, or (on an error) none."""
        pairs = items.items() if isinstance(items, Mapping) else items
        self._put_many([(key_bytes(k), v) for k, v in pairs], ttl)

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
            found, value = self._lookup(raw, True)
            if found:
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

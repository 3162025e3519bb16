"""``PackedCache``'s interface, written once for both backends (``_packed_native.py``, the
engine's byte cache called without a lock; ``_packed_fallback.py``, the pure-Python ``Cache``).
"""

from __future__ import annotations

from typing import Any, NoReturn, Optional, TypeVar

from ._common import (
    CacheClosedError,
    ManualClock,
    Settings,
    SnapshotInfo,
    SnapshotPath,
    Stats,
    check_settings,
    refuse_copy,
    seconds_to_nanos,
)
from ._packed import Packed, PackedHits

_P = TypeVar("_P", bound="PackedCacheBase")


def check_packed(value: Any, name: str) -> Packed:
    """``value`` if it is a ``Packed``, else a clear ``TypeError``."""
    if not isinstance(value, Packed):
        raise TypeError(
            f"{name} must be an alphaforge_cache.Packed (Packed.fixed, Packed.of or "
            f"Packed(data, lengths)), not {type(value).__name__}"
        )
    return value


def ttl_nanos(ttl: Any) -> int:
    """A per-call TTL in nanoseconds, 0 for the cache's default."""
    return 0 if ttl is None else seconds_to_nanos(ttl, "ttl")


class PackedCacheBase:
    """A thread-safe LRU cache of byte strings whose batches are packed buffers (``Packed``):
    the throughput API for many threads.

    ``get_many`` and ``put_many`` take the keys (and values) of a batch as one buffer and one
    array of lengths, and ``get_many`` returns the values the same way (``PackedHits``), so a
    batch makes no Python object per key and the native backend runs all of it in the engine
    without the GIL: threads that call it run in parallel. There is no lock in Python and no
    mirror: every call, single-key calls too, goes to the engine (``Cache`` serves single-key
    reads faster; this class is for batches).

    The entries, bounds, TTLs, clock and statistics are those of ``Cache`` in bytes mode: an
    entry weighs its key's and value's lengths, ``max_bytes`` bounds their sum, ``ttl`` is the
    default time to live (seconds; ``put``/``put_many`` may give their own), ``timer`` a
    ``ManualClock``. ``shards``: by default the engine picks a count that lets threads work on
    different shards; each shard is an exact LRU of its keys, and ``shards=1`` makes the whole
    cache one exact LRU, as the pure-Python backend always is. Keys are bytes-like, or ``str``
    (UTF-8) in the single-key methods. No ``on_evict`` listener (values leave as they came:
    bytes in the engine). ``save``/``load`` write and read the snapshot format every backend
    shares.
    """

    #: ``"native"`` (the Rust engine) or ``"python"`` (the pure-Python fallback).
    backend = ""

    def __init__(
        self,
        max_entries: int,
        *,
        max_bytes: Optional[int] = None,
        ttl: Optional[float] = None,
        shards: Optional[int] = None,
        timer: Optional[ManualClock] = None,
    ) -> None:
        settings = check_settings(max_entries, max_bytes, ttl, shards, "bytes", None, timer, None)
        self._open(settings, ttl, None if shards is None else settings.shards)

    def _open(self, settings: Settings, ttl: Optional[float], shards: Optional[int]) -> None:
        """Makes the backend's cache of these checked settings; ``ttl`` as given, ``shards``
        as given (``None``: the backend's default; ``settings.shards`` is 1 then)."""
        raise NotImplementedError

    def get_many(self, keys: Packed) -> PackedHits:
        """Gets every key of ``keys`` in order (each hit becomes the most recently used, as
        ``get`` would): a ``PackedHits``, whose ``missing`` are the keys that missed."""
        raise NotImplementedError

    def put_many(self, keys: Packed, values: Packed, ttl: Optional[float] = None) -> None:
        """Stores ``keys[i] -> values[i]`` for every ``i``, in order: all of them, or (on an
        error, e.g. an entry heavier than ``max_bytes``) none."""
        raise NotImplementedError

    def get(self, key: Any) -> Optional[bytes]:
        """The value of ``key`` (which becomes the most recently used), or ``None``."""
        raise NotImplementedError

    def peek(self, key: Any) -> Optional[bytes]:
        """The value of ``key`` without touching recency or statistics, or ``None``."""
        raise NotImplementedError

    def put(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        """Stores ``key -> value`` (bytes-like) as the most recently used entry."""
        raise NotImplementedError

    def remove(self, key: Any) -> bool:
        """Removes ``key``; whether it was there."""
        raise NotImplementedError

    def save(self, path: SnapshotPath) -> SnapshotInfo:
        """Saves every live entry, with its remaining TTL, in recency order, to ``path``, in
        the snapshot format every backend shares (``docs/snapshot-format.md``; values encoded
        as bytes, so ``Cache(mode="bytes")`` loads it too): written to a temporary file in the
        same directory, flushed to disk and renamed over ``path``. ``SnapshotFileError``
        (kind ``"io"``) if the file cannot be written; a previous file at ``path`` stays."""
        raise NotImplementedError

    def load(self, path: SnapshotPath) -> SnapshotInfo:
        """Replaces the entries with those saved in ``path`` (by any backend's bytes cache),
        restoring their recency order and remaining TTLs; with smaller bounds than the saving
        cache's, the most recently used entries that fit are kept. The whole file is checked
        first: on any error the cache is unchanged and ``SnapshotFileError`` says why (its
        ``kind``: ``"io"``, ``"not_a_snapshot"``, ``"unsupported"``, ``"truncated"``,
        ``"corrupt"`` or ``"encoding_mismatch"``)."""
        raise NotImplementedError

    def __contains__(self, key: object) -> bool:
        try:
            return self.peek(key) is not None
        except TypeError:  # not a key: never in the cache (as Cache answers)
            return False

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def weight(self) -> int:
        """The sum of the live entries' weights (key and value lengths)."""
        raise NotImplementedError

    def stats(self) -> Stats:
        """The statistics (expired entries are reclaimed first)."""
        raise NotImplementedError

    def reset_stats(self) -> None:
        """Sets the counters to zero."""
        raise NotImplementedError

    def clear(self) -> None:
        """Removes every entry."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases every entry; any later use raises ``CacheClosedError``. Closing twice is
        harmless. A call already running in another thread finishes first."""
        raise NotImplementedError

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    _NO_COPY = "use save()/load() for a copy on disk, or build a new PackedCache"

    def __copy__(self) -> NoReturn:
        refuse_copy("PackedCache", self._NO_COPY)

    def __deepcopy__(self, memo: Any) -> NoReturn:
        refuse_copy("PackedCache", self._NO_COPY)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        refuse_copy("PackedCache", self._NO_COPY)

    def __reduce__(self) -> NoReturn:
        refuse_copy("PackedCache", self._NO_COPY)

    def __repr__(self) -> str:
        try:
            state = f"entries={len(self)}"
        except CacheClosedError:
            state = "closed"
        return f"alphaforge_cache.PackedCache(backend={self.backend!r}, {state})"

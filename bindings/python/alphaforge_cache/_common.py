"""What both backends share: errors, statistics, the manual clock, and argument checking.

Every check that decides whether an argument is valid lives here, so that the native and the
pure-Python backends accept and refuse exactly the same things, with the same messages.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Optional, Protocol, Union

__all__ = [
    "CacheError",
    "CacheClosedError",
    "EntryTooHeavyError",
    "SnapshotError",
    "SnapshotInfo",
    "Codec",
    "Stats",
    "ManualClock",
    "Key",
    "CAUSES",
    "MODES",
    "MAX_ENTRIES_LIMIT",
    "MAX_ENTRY_SIZE",
    "MAX_SHARDS",
]

#: The key types a cache accepts: bytes-like objects, or ``str`` (encoded as UTF-8).
Key = Union[bytes, bytearray, memoryview, str]

#: Why an entry left the cache, as ``on_evict`` hears it.
CAUSES = ("evicted", "expired", "removed", "replaced", "cleared")

#: The value modes of a cache.
MODES = ("bytes", "pickle", "object")

#: The largest ``max_entries`` (the engine indexes a shard's entries with 32 bits).
MAX_ENTRIES_LIMIT = 2**32 - 2

#: The largest key, value or weight an entry may have.
MAX_ENTRY_SIZE = 2**32 - 2

#: The largest shard count.
MAX_SHARDS = 1024

#: Nanoseconds in a second.
NANOS = 1_000_000_000

#: A duration too long to represent in nanoseconds (``math.inf`` seconds, say), as
#: ``seconds_to_nanos`` saturates it: a TTL that long never expires.
SATURATED = 2**64 - 1

#: The latest time a clock reports, in nanoseconds (2**64 - 2, as in the engine).
MAX_CLOCK_NANOS = 2**64 - 2


class CacheError(Exception):
    """Base class of the errors this package raises (besides ``KeyError``, ``TypeError`` and
    ``ValueError`` for bad arguments)."""


class CacheClosedError(CacheError):
    """The cache was closed."""


class EntryTooHeavyError(CacheError, ValueError):
    """An entry heavier than the cache's ``max_bytes`` on its own; the cache is unchanged."""


class EntryTooLargeError(ValueError):
    """An entry beyond the engine's limit for a key or a weight (``MAX_ENTRY_SIZE``); the cache
    is unchanged. A ``ValueError`` as any other bad argument; its own class so that
    ``get_or_set`` can tell it (a value it returns without storing) from other errors."""


class SnapshotError(CacheError):
    """A snapshot could not be written or read."""


@dataclass(frozen=True)
class SnapshotInfo:
    """What ``Cache.save`` wrote or ``Cache.load`` read (as the engine's ``SnapshotInfo``)."""

    #: The file's format version.
    format_major: int
    format_minor: int
    #: The value encoding in the header: 0 bytes, 1 pickle, 2 a codec of the application's.
    value_encoding: int
    #: The entries in the file.
    entries: int
    #: After a load, the entries the cache holds (fewer than ``entries`` when its bounds are
    #: smaller than the saving cache's); after a save, ``entries``.
    entries_kept: int
    #: The file's length in bytes.
    file_bytes: int


class Codec(Protocol):
    """How an ``"object"`` cache's values become bytes in a snapshot and back: any object with
    these two methods (the ``pickle`` module is one, and the default)."""

    def dumps(self, obj: Any, /) -> bytes: ...

    def loads(self, data: bytes, /) -> Any: ...


@dataclass(frozen=True)
class Stats:
    """A cache's statistics at one moment."""

    hits: int = 0
    misses: int = 0
    inserts: int = 0
    updates: int = 0
    evictions: int = 0
    expirations: int = 0
    removals: int = 0
    entries: int = 0
    weight: int = 0

    @property
    def hit_ratio(self) -> float:
        """``hits / (hits + misses)``, or 0.0 when both are 0."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class ClockBacking(Protocol):
    """A native clock behind a ``ManualClock`` (the engine's ``afc_clock``)."""

    def set_nanos(self, nanos: int) -> None: ...


class ManualClock:
    """A clock that moves only when told: pass it as ``Cache(..., timer=clock)``.

    Time is kept in integer nanoseconds (as in the engine), starting at ``start`` seconds. Once a
    native cache uses the clock, a native clock that the engine reads holds the same time (every
    change goes to both, so the engine and Python see one time, and several caches can share it).
    """

    __slots__ = ("_nanos", "_lock", "_backing", "__weakref__")

    def __init__(self, start: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._nanos = seconds_to_nanos(start, "start", allow_zero=True)
        self._backing: Optional[ClockBacking] = None

    def _attach(self, make: Callable[[int], ClockBacking]) -> ClockBacking:
        """The native clock behind this one, made by ``make(now_nanos)`` on first use."""
        with self._lock:
            if self._backing is None:
                self._backing = make(min(self._nanos, MAX_CLOCK_NANOS))
            return self._backing

    def now(self) -> float:
        """The current time in seconds."""
        return self._nanos / NANOS

    def now_nanos(self) -> int:
        """The current time in nanoseconds, at most 2**64 - 2."""
        return min(self._nanos, MAX_CLOCK_NANOS)

    def advance(self, seconds: float) -> None:
        """Moves time forward by ``seconds`` (>= 0)."""
        step = seconds_to_nanos(seconds, "seconds", allow_zero=True)
        with self._lock:
            nanos = min(self._nanos + step, 2**64 - 1)
            if self._backing is not None:
                self._backing.set_nanos(nanos)
            self._nanos = nanos

    def set(self, seconds: float) -> None:
        """Sets the time (it may move backwards, as a backtest rewinding)."""
        nanos = seconds_to_nanos(seconds, "seconds", allow_zero=True)
        with self._lock:
            if self._backing is not None:
                self._backing.set_nanos(nanos)
            self._nanos = nanos

    def __repr__(self) -> str:
        return f"ManualClock({self.now()!r})"


def seconds_to_nanos(seconds: Any, name: str, *, allow_zero: bool = False) -> int:
    """Checks a duration in seconds and converts it to whole nanoseconds, saturating at
    2**64-1 (``SATURATED``: ``math.inf``, or any duration too long to represent)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(seconds).__name__}")
    if math.isnan(seconds):
        raise ValueError(f"{name} must not be NaN")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(
            f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds, got {seconds!r}"
        )
    if isinstance(seconds, float) and seconds * NANOS >= 2.0**64:
        # Infinity, or a float too long to count in nanoseconds (1e300 overflowed round()):
        # saturated, as ints are below; a TTL that long never expires.
        return 2**64 - 1
    nanos = round(seconds * NANOS) if isinstance(seconds, float) else seconds * NANOS
    if nanos == 0 and not allow_zero:
        raise ValueError(f"{name} must be at least one nanosecond, got {seconds!r}")
    return min(int(nanos), 2**64 - 1)


def key_bytes(key: Any) -> bytes:
    """A key as bytes: bytes-like objects as they are, ``str`` encoded as UTF-8."""
    if type(key) is bytes:
        return key
    if isinstance(key, str):
        return str.encode(key, "utf-8")  # a subclass's own encode() is not asked
    if isinstance(key, (bytes, bytearray, memoryview)):
        # Exact bytes whatever the type (a subclass's __bytes__ is not asked).
        return bytes(memoryview(key))
    raise TypeError(f"a cache key must be bytes-like or str, not {type(key).__name__}")


def refuse_copy(kind: str, instead: str) -> NoReturn:
    """The error of ``copy.copy``, ``copy.deepcopy`` or pickling of a cache: a cache owns its
    engine, lock and entries, which a copy cannot share (it would corrupt both) and which
    pickling cannot carry."""
    raise TypeError(
        f"alphaforge_cache.{kind} objects cannot be copied or pickled (each owns its engine, "
        f"lock and entries): {instead}"
    )


#: A snapshot's path, as ``save`` and ``load`` take it.
SnapshotPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def snapshot_path(path: Any) -> str:
    """A snapshot's path as ``str``: ``str``, ``bytes`` (decoded as the file system does) or
    an ``os.PathLike`` of either; ``TypeError`` for anything else (``os.fspath``'s)."""
    return os.fsdecode(os.fspath(path))


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """Checks an integer setting against ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """The checked configuration of a cache."""

    max_entries: int
    max_bytes: Optional[int]
    ttl_nanos: Optional[int]
    shards: int
    mode: str
    getsizeof: Optional[Callable[[Any], int]]
    timer: Optional[ManualClock]
    on_evict: Optional[Callable[[bytes, Any, str], object]]


def check_settings(
    max_entries: Any,
    max_bytes: Any,
    ttl: Any,
    shards: Any,
    mode: Any,
    getsizeof: Any,
    timer: Any,
    on_evict: Any,
) -> Settings:
    """Checks every constructor argument; raises ``TypeError``/``ValueError`` with a clear
    message on the first bad one."""
    check_int(max_entries, "max_entries", 1, MAX_ENTRIES_LIMIT)
    if max_bytes is not None:
        check_int(max_bytes, "max_bytes", 1, 2**64 - 1)
    ttl_nanos = None if ttl is None else seconds_to_nanos(ttl, "ttl")
    if shards is None:
        # One shard unless told otherwise: the binding serializes its calls into the engine
        # (see docs/design.md), so more shards would cost without adding concurrency, and one
        # shard makes the whole cache one exact LRU, as the pure-Python backend is.
        shards = 1
    check_int(shards, "shards", 1, min(MAX_SHARDS, max_entries))
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if getsizeof is not None and not callable(getsizeof):
        raise TypeError("getsizeof must be callable")
    if getsizeof is not None and mode != "object":
        raise ValueError("getsizeof is for mode='object' (bytes and pickle modes weigh the bytes)")
    if mode == "object" and max_bytes is not None and getsizeof is None:
        raise ValueError("mode='object' with max_bytes needs getsizeof to weigh the values")
    if timer is not None and not isinstance(timer, ManualClock):
        raise TypeError("timer must be None (monotonic time) or an alphaforge_cache.ManualClock")
    if on_evict is not None and not callable(on_evict):
        raise TypeError("on_evict must be callable")
    return Settings(max_entries, max_bytes, ttl_nanos, shards, mode, getsizeof, timer, on_evict)


def check_resize(max_entries: Any, shards: int) -> int:
    """Checks a new entry bound against the shard count (each shard keeps room for one entry)."""
    check_int(max_entries, "max_entries", 1, MAX_ENTRIES_LIMIT)
    if max_entries < shards:
        raise ValueError(
            f"shards must be between 1 and min({MAX_SHARDS}, max_entries = {max_entries}) "
            f"(got {shards})"
        )
    return int(max_entries)


def check_weight(weight: Any) -> int:
    """Checks what a ``getsizeof`` callable returned."""
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise TypeError(f"getsizeof must return an int, not {type(weight).__name__}")
    if not 0 <= weight <= MAX_ENTRY_SIZE:
        raise ValueError(f"getsizeof returned {weight}, outside 0..{MAX_ENTRY_SIZE}")
    return weight

"""The public interface both backends share, written once on top of a few primitives that each
backend implements (``_replay``, ``_lookup``, ``_remaining_ttl``, ``_put``, ``_put_many``,
``_remove``, ``_snapshot``, ``_saved_entries``, ``_restore``, ``clear``, ``expire``, ``resize``,
``set_max_bytes``, ``__len__``, ``weight``, ``stats``, ``reset_stats``, ``close``,
``max_entries``, ``max_bytes``).

Reads are served from a **mirror** without a lock and without crossing into the engine, as in
Caffeine (``docs/design.md``, "Python reads"): two tables hold every stored key, ``_mirror`` those
served as they are (key -> stored value; with the native backend's C read path its own hash table,
``_reads.Mirror``; with the fallback its recency ``OrderedDict``, where an entry of ``_timed`` holds
``ABSENT``, which reads as "not served here") and ``_timed`` those that need a check first (a dict:
key -> ``(stored value, deadline)``: an entry with a deadline, or any entry of a pickle cache, which
must be unpickled). Where the read path keeps a horizon (the native backend's C read path), an entry
with a deadline is in both: the mirror serves it unchecked while the clock is before the horizon, a
time no deadline in the mirror precedes, and ``_timed`` is consulted only past it.
Every change of the engine's entries goes through the backend under ``_lock``, which updates the
mirror before it releases the lock.
A get served by the mirror appends its key to the **read buffer**; the backend replays the
buffer into the engine (recency, hit and miss counters) before every other engine operation and
whenever the buffer fills, so eviction order and statistics are those of a cache that had seen
each get as it happened. A lookup of either table and ``list.append`` are atomic under the GIL,
which is what makes the lock-free read path safe.
"""

from __future__ import annotations

import math
import os
import pickle
import sys
import threading
from collections import OrderedDict
from collections.abc import MutableMapping
from itertools import chain, repeat
from operator import itemgetter
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NoReturn,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from . import _snapshot_format as _fmt
from ._common import (
    MAX_ENTRY_SIZE,
    NANOS,
    SATURATED,
    CacheClosedError,
    Codec,
    EntryTooHeavyError,
    EntryTooLargeError,
    Key,
    Settings,
    SnapshotError,
    SnapshotInfo,
    SnapshotPath,
    Stats,
    check_weight,
    key_bytes,
    refuse_copy,
    seconds_to_nanos,
    snapshot_path,
)

_MISSING: Any = object()
_BYTES_ONLY = frozenset((bytes,))
_loads = pickle.loads
_D = TypeVar("_D")
_C = TypeVar("_C", bound="CacheBase")


class Notifications:
    """Entries removed during one operation, told to ``on_evict`` once the operation has released
    its lock. A listener that raises does not stop the others; the first exception is re-raised
    after every notification has been delivered. Without a listener the removed values are kept
    all the same, until ``deliver`` (or until this object goes): a value's last reference must
    not go while the lock is held, since its finalizer (``__del__``, a weakref callback) may use
    the cache, and the lock is not reentrant."""

    __slots__ = ("_cache", "_items", "_kept")

    def __init__(self, cache: "CacheBase") -> None:
        self._cache = cache
        self._items: List[Tuple[bytes, Any, str]] = []
        self._kept: List[Any] = []  # without a listener: the removed values alone

    def add(self, key: bytes, stored: Any, cause: str) -> None:
        """Records one removal (``stored`` in the backend's stored form)."""
        if self._cache._on_evict is not None:
            self._items.append((key, stored, cause))
        else:
            self._kept.append(stored)

    def deliver(self) -> None:
        """Calls the listener for every recorded removal, in order."""
        listener = self._cache._on_evict
        if listener is None or not self._items:
            self._kept.clear()  # the removed values go now, the lock released
            return
        first: Optional[BaseException] = None
        for key, stored, cause in self._items:
            try:
                listener(key, self._cache._decode(stored), cause)
            except BaseException as error:  # noqa: BLE001 - re-raised below, after the others
                # Any exception, KeyboardInterrupt and SystemExit too: the other removals are
                # told all the same (the contract), then the first exception is raised.
                if first is None:
                    first = error
        self._items.clear()
        if first is not None:
            raise first


def attach_popped(error: BaseException, key: bytes, value: Callable[[], Any]) -> None:
    """A listener's ``error``, raised by a ``pop`` (or ``popitem``, ``del``) that removed
    ``key``, carries the removed pair as ``error.popped`` (``value()`` gives the value), so
    that the value is not lost (a note says so where exceptions have notes)."""
    try:
        error.popped = (key, value())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - an exception that takes no attributes: raised as it is
        return
    add_note = getattr(error, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(f"alphaforge_cache: {key!r} was removed all the same; its value is error.popped")


class _Computation:
    """A ``get_or_set`` computation in flight: others asking for the key wait for it."""

    __slots__ = ("done", "owner", "thread")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.owner = threading.get_ident()
        self.thread = threading.current_thread()


#: How often (seconds) a ``get_or_set`` waiting for another thread's computation checks that
#: the computation is still running (see ``_computation_running``).
_CHECK_EVERY = 0.1

#: Whether a ``finally`` can be skipped: PyPy skips the handlers of the frames nearest the stack
#: limit while a ``RecursionError`` unwinds them (``docs/python-api.md``, Errors). CPython runs
#: every one.
FINALLY_CAN_BE_SKIPPED = sys.implementation.name == "pypy"


def _runs_in(frame: Any, computation: _Computation) -> bool:
    """Whether ``frame`` or one of its callers executes ``get_or_set`` with ``computation`` as
    ``mine``."""
    while frame is not None:
        if frame.f_code is _GET_OR_SET_CODE and frame.f_locals.get("mine") is computation:
            return True
        frame = frame.f_back
    return False


def _computation_running(computation: _Computation) -> bool:
    """Whether the ``get_or_set`` call that started ``computation`` is still running. Not so
    when its thread is gone, or when the call's frame was unwound without its ``finally``
    (``FINALLY_CAN_BE_SKIPPED``): then nobody will ever finish it.

    This thread's own computation is looked for among its own frames (``sys._getframe``).
    Another thread's frames are looked at only where a ``finally`` can be skipped: on CPython a
    live thread's computation always ends with its call, and ``sys._current_frames()`` can
    deadlock there (CPython 3.11, gh-106883: a garbage collection inside it, under the
    interpreter's thread-list lock, can hand the GIL to a thread that waits for that lock)."""
    if computation.owner == threading.get_ident():
        return _runs_in(sys._getframe(1), computation)
    if not computation.thread.is_alive():
        return False
    if not FINALLY_CAN_BE_SKIPPED:
        return True
    return _runs_in(sys._current_frames().get(computation.owner), computation)


class ReclaimingLock:
    """The cache's lock on PyPy, where a ``with`` block's exit is not certain to run: while a
    ``RecursionError`` unwinds a deep recursion, PyPy skips the ``finally`` and ``__exit__`` of
    the frames nearest the stack limit (with JIT-compiled frames, the last few dozen: see
    ``docs/python-api.md``, Errors), so an operation cut short there keeps the lock held, and the
    next one would wait for it forever.

    No operation ever takes the cache's lock while its own thread holds it (no user code runs
    under it), so a thread that finds it holds it already knows that an operation of its own was
    cut short: it takes the lock over instead of waiting (an ``RLock`` records its owner when
    acquired, atomically, and lets it in again), and its release lets go of every level. Another
    thread waits until then (the next use of the cache by the thread that left it held; for good
    if that thread never uses it again). A finalizer that the garbage collector runs in the middle
    of an operation and that uses the same cache (which waited for itself forever with a plain
    lock) is taken for such a thread too.

    An operation cut short, whether its ``__exit__`` ran (an exception raised under the lock; on
    PyPy a ``RecursionError`` can be raised at any call near the limit) or not (the lock taken
    over), may have left the backend's tables half changed: the next holder has the backend mend
    them first (``mend``, under the lock). ``__enter__`` and ``__exit__`` are inlined by PyPy's
    JIT; CPython, whose handlers always run, keeps a plain ``threading.Lock``."""

    __slots__ = ("_lock", "_mend", "_release_all", "_dirty")

    def __init__(self, mend: Callable[[], None]) -> None:
        self._lock = threading.RLock()
        self._mend = mend
        self._release_all = False  # a level taken over is held under the current one
        self._dirty = False  # an operation was cut short: the tables are to be mended

    def acquire(self, blocking: bool = True) -> bool:
        lock = self._lock
        if lock._is_owned():  # type: ignore[attr-defined]
            lock.acquire()  # one more level: never waits, this thread holds it
            self._release_all = True
            self._dirty = True
        elif not lock.acquire(blocking):
            return False
        if self._dirty:
            self._mended()
        return True

    __enter__ = acquire

    def _mended(self) -> None:
        try:
            self._mend()
        except BaseException:
            self.release()  # still dirty: the next holder tries again
            raise
        self._dirty = False

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is not None:
            self._dirty = True  # cut short under the lock
        self.release()

    def release(self) -> None:
        lock = self._lock
        if self._release_all:
            self._release_all = False
            lock._release_save()  # type: ignore[attr-defined]  # every level, at once
        else:
            lock.release()

    def locked(self) -> bool:
        """Whether a thread (this one included) holds it."""
        lock = self._lock
        if lock._is_owned():  # type: ignore[attr-defined]
            return True
        if lock.acquire(False):
            lock.release()
            return False
        return True


#: Whether the cache's lock is a ``ReclaimingLock`` (PyPy; see there).
RECLAIMING_LOCK = FINALLY_CAN_BE_SKIPPED


#: ``dict.get``'s answer for a key the mirror does not hold.
ABSENT: Any = object()

#: The deadline of a ``_timed`` entry that never expires (a pickle cache's entry without TTL).
NEVER = 2**64 - 1


#: What ``put_many`` takes: a mapping (a ``dict`` of ``bytes`` or of ``str`` keys: ``Mapping``
#: is invariant in its key type, so each is named) or an iterable of ``(key, value)`` pairs.
PutManyItems = Union[
    Mapping[bytes, Any], Mapping[str, Any], Mapping[Key, Any], Iterable[Tuple[Key, Any]]
]


_ONE_KEY = (str, bytes, bytearray, memoryview)
_TUPLES_ONLY = frozenset((tuple,))


def _key_iterable(keys: Any) -> Any:
    """``get_many``'s ``keys``, refused when it is one key (a ``str`` would be read as its
    characters)."""
    if isinstance(keys, _ONE_KEY):
        raise TypeError(
            f"get_many takes an iterable of keys, not one {type(keys).__name__} key: "
            "get_many([key]), or get(key)"
        )
    return keys


def _pair_list(items: Any) -> Any:
    """``put_many``'s ``items`` when not a mapping: a list or tuple as it is, any other iterable
    as a list (gone over twice when an item turns out not to be a pair)."""
    if type(items) is list or type(items) is tuple:
        return items
    if isinstance(items, _ONE_KEY):
        raise TypeError(
            "put_many takes a mapping or an iterable of (key, value) pairs, not a "
            f"{type(items).__name__}"
        )
    try:
        return list(items)
    except TypeError:
        raise TypeError(
            "put_many takes a mapping or an iterable of (key, value) pairs, not "
            f"{type(items).__name__}"
        ) from None


def _check_pairs(pairs: Iterable[Any]) -> None:
    """Raises a clear error for the first item of ``pairs`` that is not a (key, value) pair
    (``TypeError``, or ``ValueError`` for a sequence of another length, as ``dict()`` does);
    returns if every item is one."""
    for index, item in enumerate(pairs):
        if isinstance(item, _ONE_KEY):
            raise TypeError(
                f"put_many takes (key, value) pairs: item {index} is a {type(item).__name__}, "
                "not a pair"
            )
        try:
            length = len(item)
        except TypeError:
            raise TypeError(
                f"put_many takes (key, value) pairs: item {index} is a {type(item).__name__}, "
                "not a pair"
            ) from None
        if length != 2:
            raise ValueError(
                f"put_many takes (key, value) pairs: item {index} has {length} elements, not 2"
            )


def _pair(stored: Any, deadline: int) -> Tuple[Any, int]:
    return (stored, deadline)


def bound_get(cache: "CacheBase") -> Callable[..., Any]:
    """``cache.get`` as a closure over the tables it reads (``CacheBase.get`` without an
    attribute lookup per call): for a cache whose ``_mirror``, ``_reads`` and ``_flush`` are
    never replaced, to be set as its ``get``."""
    mirror_get, reads, flush, other = (
        cache._mirror.get,
        cache._reads,
        cache._flush,
        cache._get_other,
    )

    def get(key: Key, default: Any = None) -> Any:
        # Only an exact ``bytes`` key is looked up here and buffered: hashing it runs no user
        # code, now or when the buffer is replayed under the lock (any other key is converted
        # first, on the other path).
        if type(key) is bytes:
            stored = mirror_get(key, ABSENT)
            if stored is not ABSENT:
                reads.append(key)
                if len(reads) > 256:  # FLUSH_AT, inlined
                    flush()
                return stored
        return other(key, default)

    get.__doc__ = CacheBase.get.__doc__
    return get


def _ignore(deadline: int) -> None:
    """The ``_lower_horizon`` of a backend without a horizon."""


#: Reads buffered before they are replayed into the engine.
FLUSH_AT = 256

#: An entry as a snapshot holds it: (key, stored value, remaining TTL in nanoseconds or None,
#: weight), in a save (stored value as the cache keeps it) and in a load (as it will keep it).
SavedEntry = Tuple[bytes, Any, Optional[int], int]


def _pickle_dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _codec_name(codec: Any) -> str:
    return str(getattr(codec, "__name__", None) or type(codec).__name__)


class _SnapshotCodec:
    """How a cache's values are written to a snapshot and read back: the value encoding of the
    header, and for an ``"object"`` cache the codec's two functions."""

    __slots__ = ("encoding", "dumps", "loads", "name", "expected")

    def __init__(self, mode: str, codec: Optional[Codec]) -> None:
        self.dumps: Optional[Callable[[Any], Any]] = None
        self.loads: Optional[Callable[[bytes], Any]] = None
        if mode != "object":
            if codec is not None:
                raise ValueError(
                    f"codec is for mode='object': a {mode!r} cache saves its values as they "
                    "are stored"
                )
            self.encoding = _fmt.ENCODING_BYTES if mode == "bytes" else _fmt.ENCODING_PICKLE
            self.name = mode
            self.expected = f"a cache in mode {mode!r} loads {mode} snapshots"
        elif codec is None or codec is pickle:
            self.encoding = _fmt.ENCODING_PICKLE
            self.dumps, self.loads, self.name = _pickle_dumps, pickle.loads, "pickle"
            self.expected = (
                "a cache in mode 'object' with the default codec loads pickle snapshots "
                "(value encoding 1)"
            )
        else:
            dumps, loads = getattr(codec, "dumps", None), getattr(codec, "loads", None)
            if not callable(dumps) or not callable(loads):
                raise TypeError(
                    "codec must have dumps(obj) -> bytes and loads(bytes) -> obj (as the pickle "
                    f"module has), not {type(codec).__name__}"
                )
            self.encoding = _fmt.ENCODING_CODEC
            self.dumps, self.loads, self.name = dumps, loads, _codec_name(codec)
            self.expected = (
                "a cache in mode 'object' with a codec of its own loads codec snapshots (value "
                "encoding 2)"
            )

    def encode(self, key: bytes, value: Any) -> bytes:
        """A value's bytes in the file (``SnapshotError`` naming the key if the codec fails)."""
        if self.dumps is None:
            data: Any = value
        else:
            try:
                data = self.dumps(value)
            except Exception as error:  # noqa: BLE001 - any codec failure means "cannot save"
                raise SnapshotError(
                    f"cannot save the value of key {key!r}: the {self.name} codec cannot "
                    f"encode {type(value).__name__} ({type(error).__name__}: {error}); nothing "
                    "was written"
                ) from error
            if type(data) is not bytes:
                if not isinstance(data, (bytearray, memoryview)):
                    raise SnapshotError(
                        f"cannot save the value of key {key!r}: the {self.name} codec returned "
                        f"{type(data).__name__}, not bytes; nothing was written"
                    )
                data = bytes(data)
        if len(key) + len(data) > MAX_ENTRY_SIZE + 1:
            raise SnapshotError(
                f"cannot save the value of key {key!r}: {len(data)} bytes encoded, beyond the "
                "format's limit for an entry; nothing was written"
            )
        return data  # type: ignore[no-any-return]

    def encode_all(self, rows: List[SavedEntry]) -> List[SavedEntry]:
        """``rows`` with every value encoded (``SnapshotError`` naming the first key whose
        value the codec cannot encode)."""
        dumps = self.dumps
        assert dumps is not None
        try:
            encoded = [(key, dumps(obj), ttl, weight) for key, obj, ttl, weight in rows]
        except Exception:  # noqa: BLE001 - found again below, with its key
            encoded = []
        if len(encoded) == len(rows) and all(
            type(data) is bytes and len(key) + len(data) <= MAX_ENTRY_SIZE + 1
            for key, data, _, _ in encoded
        ):
            return encoded
        # A value could not be encoded, or not into bytes that fit: entry by entry, to say
        # which (the one pass above is the common case, at a fraction of the cost).
        return [(key, self.encode(key, obj), ttl, weight) for key, obj, ttl, weight in rows]

    def decode_failure(self, path: str, index: int, key: bytes, error: Exception) -> SnapshotError:
        """The error of a value the codec cannot decode."""
        return SnapshotError(
            f"snapshot {path}: cannot load the value of key {key!r} (entry {index}): the "
            f"{self.name} codec cannot decode it ({type(error).__name__}: {error}); the "
            "cache is unchanged"
        )


class _Staging:
    """The entries a load keeps, chosen while the file streams in (``add`` each entry).

    With ``exact`` (a cache that is one exact LRU), it keeps what an empty cache with these
    bounds keeps when the entries are put into it in order, as the engine stages a load: an
    entry heavier than ``max_bytes`` on its own is skipped, a key put again moves to the end
    with its new entry, and the least recently used entries leave while a bound is exceeded;
    memory stays within the bounds however many entries the file has. When the file's entries
    cannot exceed the bounds (no byte bound, no more entries than ``max_entries``), they are
    simply collected. Without ``exact`` (several shards, which only the engine can apportion),
    every entry is kept, in order. ``dedupe`` False: the restore applies a key given twice
    itself, so a collected list is passed on as it is.
    """

    __slots__ = ("add", "_lru", "_all", "_dedupe", "_total", "_max_entries", "_max_bytes")

    def __init__(
        self,
        max_entries: int,
        max_bytes: Optional[int],
        exact: bool,
        expected: int,
        dedupe: bool = True,
    ) -> None:
        self._all: List[SavedEntry] = []
        self._lru: "Optional[OrderedDict[bytes, SavedEntry]]" = None
        # A key given twice in a collected list: moved to the end here, unless the restore
        # does it (the engine's load stages the entries as puts in turn).
        self._dedupe = exact and dedupe
        self._total = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.add: Callable[[SavedEntry], None]
        if exact and (max_bytes is not None or expected > max_entries):
            self._lru = OrderedDict()
            self.add = self._add_lru
        else:
            self.add = self._all.append

    def add_batches(self, batches: Iterable[List[SavedEntry]]) -> None:
        """``add`` of each entry of each batch, in order (a batch collected in one C call when
        its entries are simply collected)."""
        if self._lru is None:
            extend = self._all.extend
            for batch in batches:
                extend(batch)
        else:
            add = self._add_lru
            for batch in batches:
                for entry in batch:
                    add(entry)

    def _add_lru(self, entry: SavedEntry) -> None:
        lru = self._lru
        assert lru is not None
        key, weight = entry[0], entry[3]
        max_bytes = self._max_bytes
        if max_bytes is not None and weight > max_bytes:
            return
        old = lru.pop(key, None)
        if old is not None:
            self._total -= old[3]
        elif len(lru) >= self._max_entries:
            self._total -= lru.popitem(last=False)[1][3]
        lru[key] = entry
        self._total += weight
        if max_bytes is not None:
            while self._total > max_bytes and len(lru) > 1:
                self._total -= lru.popitem(last=False)[1][3]

    def entries(self) -> List[SavedEntry]:
        """The entries kept, least recently used first."""
        if self._lru is not None:
            return list(self._lru.values())
        entries = self._all
        if self._dedupe and len(set(map(itemgetter(0), entries))) != len(entries):
            # A key given twice (no writer does this): its later entry moves to the end, as
            # a put would move it (no bound can be exceeded here).
            lru: "OrderedDict[bytes, SavedEntry]" = OrderedDict()
            for entry in entries:
                lru.pop(entry[0], None)
                lru[entry[0]] = entry
            return list(lru.values())
        return entries

    def clear(self) -> None:
        """Lets go of every entry (after a failure: no decoded value may outlive it)."""
        self._all.clear()
        if self._lru is not None:
            self._lru.clear()


class CacheBase(MutableMapping):  # type: ignore[type-arg]
    """The interface of ``alphaforge_cache.Cache`` (see its documentation)."""

    backend: str = ""
    #: The fast path of a load's reading of the file, in C (the native backend's, when its
    #: module ``_reads`` is built): see ``_snapshot_format.Reader.row_batches``.
    _parse_rows: Optional[_fmt.ParseRows] = None
    #: The fast path of a save's writing of the file, in C (the native backend's): see
    #: ``_snapshot_format.write_to``.
    _row_packer: Optional[_fmt.RowPacker] = None
    #: Whether ``_restore`` takes a key given twice as two puts in turn itself (the native one:
    #: the engine's load stages every entry as a put), so that a load need not look for one.
    _restore_dedupes = False

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._mode = settings.mode
        self._max_bytes = settings.max_bytes  # changed by set_max_bytes
        self._pickled = settings.mode == "pickle"
        self._on_evict = settings.on_evict
        self._computing: Dict[bytes, _Computation] = {}
        self._computing_lock = threading.Lock()
        self._closed = False
        # Every engine call and mirror change happens under this lock (on PyPy one that a thread
        # takes over when an operation of its own was cut short holding it: ReclaimingLock).
        self._lock: Any = ReclaimingLock(self._repair) if RECLAIMING_LOCK else threading.Lock()
        # The engine's entries: key -> stored value, or key -> (stored value, deadline). The
        # native backend's read path replaces the first dict with its own table (_mirror.h).
        self._mirror: MutableMapping[Any, Any] = {}
        self._timed: Dict[Any, Tuple[Any, int]] = {}
        # Makes a _timed entry: a (stored, deadline) pair, or an object that reads as one.
        self._timed_entry: Callable[[Any, int], Any] = _pair
        # Set by a backend whose read path keeps a horizon (see _mirror_store): an entry with a
        # deadline is then in ``_mirror`` too, served there while the clock is before the
        # horizon, a time no deadline of the mirror precedes; ``_lower_horizon`` lowers it.
        self._dated_in_mirror = False
        self._lower_horizon: Callable[[int], None] = _ignore
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

    def _repair(self) -> None:
        """Mends what an operation cut short under the lock left half done (lock held; see
        ``ReclaimingLock``): the backend's tables agree again."""

    def _replay(self, keys: List[Any], misses: int) -> None:
        """Replays buffered gets into the engine (lock held): a key still stored counts a hit
        and becomes the most recently used entry, a key not stored counts a miss; ``misses``
        more misses are counted."""
        raise NotImplementedError

    def _decode(self, stored: Any) -> Any:
        return _loads(stored) if self._pickled else stored

    def _admit(
        self, key: bytes, value: Any, ttl: Optional[float]
    ) -> Tuple[Any, int, Optional[int]]:
        """The stored form, weight and TTL (nanoseconds, or None) of an entry, checked alike on
        both backends (no lock held: encoding may run user code)."""
        mode = self._mode
        if mode == "bytes":
            if type(value) is not bytes:
                if not isinstance(value, (bytes, bytearray, memoryview)):
                    raise TypeError(
                        f"a bytes cache stores bytes-like values, not {type(value).__name__}"
                    )
                value = bytes(value)
            stored, weight = value, len(value) + len(key)
        elif mode == "pickle":
            stored = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            weight = len(stored) + len(key)
        else:
            getsizeof = self._settings.getsizeof
            stored, weight = value, (1 if getsizeof is None else check_weight(getsizeof(value)))
        if len(key) > MAX_ENTRY_SIZE:
            raise EntryTooLargeError(
                f"key of {len(key)} bytes exceeds the limit of {MAX_ENTRY_SIZE}"
            )
        if weight > MAX_ENTRY_SIZE:
            raise EntryTooLargeError(f"entry weight {weight} exceeds the limit of {MAX_ENTRY_SIZE}")
        max_bytes = self._max_bytes
        if max_bytes is not None and weight > max_bytes:
            raise EntryTooHeavyError(
                f"entry weight {weight} exceeds max_bytes {max_bytes}; the cache is unchanged"
            )
        ttl_nanos = self._settings.ttl_nanos if ttl is None else seconds_to_nanos(ttl, "ttl")
        return stored, weight, ttl_nanos

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

    def _pop_lru(self) -> Tuple[bool, bytes, Any]:
        """Removes the least recently used live entry (told and counted as removed), in one
        locked step: (found, key, its stored value). Expired entries are passed over, left
        for their reclaiming."""
        raise NotImplementedError

    def _saved_entries(self) -> List[SavedEntry]:
        """The live entries as a snapshot lists them, least recently used first (one atomic
        view, the TTLs from one reading of the clock): (key, stored value, nanoseconds left or
        None, weight)."""
        raise NotImplementedError

    def _stages_exactly(self) -> bool:
        """Whether ``_Staging`` with the cache's bounds selects exactly the entries a load keeps
        (the cache is one exact LRU), so that only those need to be held and passed on."""
        raise NotImplementedError

    def _restore(self, entries: List[SavedEntry]) -> int:
        """Replaces every entry with ``entries`` (least recently used first, in stored form),
        atomically, as a clear followed by puts: the old entries are told to ``on_evict`` as
        cleared (or expired) and counted as removals; the entries that fit count as inserts,
        those that do not are neither counted nor told. Returns how many entries it holds."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases every entry (``on_evict`` hears them as cleared, or expired); any later use
        raises ``CacheClosedError``. Closing twice is harmless."""
        raise NotImplementedError

    # ----- the rest of the public interface, each backend's (declared here for type checkers)

    def clear(self) -> None:
        """Removes every entry (``on_evict`` hears them as cleared, or expired)."""
        raise NotImplementedError

    def expire(self) -> List[bytes]:
        """Reclaims every expired entry now; returns their keys, most recently used first."""
        raise NotImplementedError

    def resize(self, max_entries: int) -> None:
        """Changes the entry bound, evicting least recently used entries beyond it."""
        raise NotImplementedError

    def set_max_bytes(self, max_bytes: int) -> None:
        """Changes the byte bound (the cache must have been built with one)."""
        raise NotImplementedError

    def stats(self) -> Stats:
        """The statistics (expired entries are reclaimed first)."""
        raise NotImplementedError

    def reset_stats(self) -> None:
        """Sets every counter back to zero."""
        raise NotImplementedError

    @property
    def weight(self) -> int:
        """The total weight of the live entries."""
        raise NotImplementedError

    @property
    def max_entries(self) -> int:
        """The entry bound."""
        raise NotImplementedError

    @property
    def max_bytes(self) -> Optional[int]:
        """The byte (weight) bound, if any."""
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

    def _drain_reads(self) -> None:
        """Replays the read buffer into the engine (lock held)."""
        self._replay(*self._take_reads())

    def _flush(self) -> None:
        """Replays the read buffer into the engine."""
        with self._lock:
            if self._reads or self._misses:
                self._drain_reads()

    def _begin(self) -> None:
        """Starts a locked operation: the cache must be open; buffered reads are replayed."""
        self._check_open()
        if self._reads or self._misses:
            self._drain_reads()

    def _mirror_store(self, key: bytes, stored: Any, deadline: Optional[int]) -> None:
        """A key's entry as stored in the engine (lock held)."""
        # The key length first: a flush must never see a key of a length it does not know of.
        if self._key_len != len(key):
            self._note_key_lengths((len(key),))
        # Into the new place before out of the old one: a concurrent get sees one of the two.
        if deadline is None and not self._pickled:
            self._mirror[key] = stored
            if self._timed:
                self._timed.pop(key, None)
        elif self._dated_in_mirror and deadline is not None:
            # Checked in _timed before the horizon lets the mirror serve it unchecked.
            self._timed[key] = self._timed_entry(stored, deadline)
            self._lower_horizon(deadline)
            self._mirror[key] = stored
        else:
            self._timed[key] = self._timed_entry(stored, NEVER if deadline is None else deadline)
            self._mirror.pop(key, None)

    def _note_key_lengths(self, lengths: Iterable[int]) -> None:
        """Stored keys of these lengths (lock held): ``_key_len`` follows, and a backend that
        keeps a copy of it hears of a change."""
        before = key_len = self._key_len
        for length in lengths:
            if key_len != length:
                key_len = length if key_len == -1 else -2
        if key_len != before:
            self._key_len = key_len
            self._key_len_changed()

    def _key_len_changed(self) -> None:
        """``_key_len`` changed (lock held): a backend that keeps a copy updates it."""

    def _mirror_store_all(
        self,
        pairs: List[Tuple[bytes, Any]],
        deadlines: Optional[List[Optional[int]]],
        key_lengths: Optional[Iterable[int]] = None,
    ) -> None:
        """``_mirror_store`` of many entries, a load's: (key, stored value) pairs and their
        deadlines (``None`` for the whole list when no entry has one); ``key_lengths``, when
        known, the lengths of the keys."""
        if key_lengths is None:
            key_lengths = {len(key) for key, _ in pairs}
        self._note_key_lengths(key_lengths)
        mirror, timed = self._mirror, self._timed
        if deadlines is None and not self._pickled:
            plain, dated = pairs, []
        elif self._pickled:
            plain = []
            dated = list(zip(pairs, deadlines or repeat(None, len(pairs))))
        else:
            assert deadlines is not None
            plain = [pair for pair, d in zip(pairs, deadlines) if d is None]
            dated = [(pair, d) for pair, d in zip(pairs, deadlines) if d is not None]
        if plain:
            mirror.update(plain)
            if timed:
                for key, _ in plain:
                    timed.pop(key, None)
        if dated:
            make = self._timed_entry
            timed.update(
                [(key, make(stored, NEVER if d is None else d)) for (key, stored), d in dated]
            )
            if self._dated_in_mirror:  # never a pickle cache: every d is a deadline
                self._lower_horizon(min(d for _, d in dated if d is not None))
                mirror.update([pair for pair, _ in dated])
            elif mirror:
                for (key, _), _ in dated:
                    mirror.pop(key, None)

    def _mirror_drop(self, key: Any) -> None:
        """A key's entry left the engine (lock held)."""
        # Out of both: with a horizon, an entry with a deadline is in both.
        if (self._mirror.pop(key, ABSENT) is ABSENT or self._dated_in_mirror) and self._timed:
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
        # Only an exact ``bytes`` key is served and buffered here (see bound_get).
        if type(key) is bytes:
            stored = self._mirror.get(key, ABSENT)
            if stored is not ABSENT:
                reads = self._reads
                reads.append(key)
                if len(reads) > 256:  # FLUSH_AT, inlined
                    self._flush()
                return stored
        return self._get_other(key, default)

    def __getitem__(self, key: Key) -> Any:
        if type(key) is bytes:
            stored = self._mirror.get(key, ABSENT)
            if stored is not ABSENT:
                reads = self._reads
                reads.append(key)
                if len(reads) > 256:  # FLUSH_AT, inlined
                    self._flush()
                return stored
        stored = self._get_other(key, ABSENT)
        if stored is ABSENT:
            raise KeyError(key)
        return stored

    def _get_bytes(self, key: bytes, default: Any) -> Any:
        """``get`` of a key already converted to ``bytes``: the cache's own get, never a
        subclass's override (a backend with a get of its own sets this attribute to it)."""
        return CacheBase.get(self, key, default)

    def _get_other(self, key: Any, default: Any) -> Any:
        """A get the plain mirror cannot serve: an entry to check first, another key type, or a
        miss."""
        if type(key) is not bytes:
            # Converted before any table sees it (TypeError for a non-key): the tables and the
            # read buffer only ever hash and compare exact ``bytes``, which runs no user code.
            return self._get_bytes(key_bytes(key), default)
        entry = self._timed.get(key)
        if entry is None:
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
        if type(key) is not bytes:
            key = key_bytes(key)  # before any table sees it, as in _get_other
        stored = self._mirror.get(key, ABSENT)
        # With a horizon, an entry with a deadline is in both dicts: _timed tells.
        entry = self._timed.get(key) if stored is ABSENT or self._dated_in_mirror else None
        if entry is None:
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
        # A copy even of a list: the reads below go over the keys more than once, and the
        # caller's list may change meanwhile (another thread, or a key's own __hash__).
        keys = list(_key_iterable(keys))
        # Only exact ``bytes`` keys are served and buffered here (see bound_get); any other
        # key is converted first, on the general path below.
        if not self._timed and set(map(type, keys)) <= _BYTES_ONLY:
            joined = b"".join(keys)  # type: ignore[arg-type]
            values = list(map(self._mirror.get, keys, repeat(default, len(keys))))
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

    def put_many(self, items: PutManyItems, ttl: Optional[float] = None) -> None:
        """Stores many entries in one call, in order: all of them, or (on an error) none."""
        if isinstance(items, Mapping):
            pairs: Any = items.items()
        else:
            pairs = _pair_list(items)
            if not set(map(type, pairs)) <= _TUPLES_ONLY:
                _check_pairs(pairs)  # not only tuples: a str "ab" must not pass as a pair
        try:
            raws = [(k if type(k) is bytes else key_bytes(k), v) for k, v in pairs]
        except (TypeError, ValueError):
            _check_pairs(pairs)  # a clear error for an item that is not a (key, value) pair
            raise
        self._put_many(raws, ttl)

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

    def popitem(self) -> Tuple[bytes, Any]:
        """Removes and returns the least recently used ``(key, value)``, as cachetools' LRU
        caches do (``KeyError`` when empty); told to ``on_evict`` and counted as removed."""
        found, key, stored = self._pop_lru()
        if not found:
            raise KeyError("popitem(): the cache is empty")
        return key, self._decode(stored)

    def get_or_set(self, key: Key, factory: Callable[[], Any], ttl: Optional[float] = None) -> Any:
        """The value of ``key``; on a miss, ``factory()`` computes it (no lock held) and it is
        stored. When threads race on one key, one computes and the others wait for its value.
        A value too heavy to store is returned but not stored. A factory asking for its own key
        again raises ``RuntimeError`` (it would wait for itself)."""
        raw = key_bytes(key)
        if ttl is not None:
            seconds_to_nanos(ttl, "ttl")  # checked as put checks it, before anything runs
        computing = self._computing
        while True:
            value = self.get(raw, _MISSING)
            if value is not _MISSING:
                return value
            # No lock: one dict call claims the key (a bytes key runs no code), and nothing is
            # held that a frame unwound without its finally (PyPy, at the recursion limit)
            # would leave held.
            mine = _Computation()
            running = computing.setdefault(raw, mine)
            if running is mine:
                break
            if running.owner == mine.owner:
                if _computation_running(running):
                    raise RuntimeError(
                        "get_or_set: computing a key asked for the same key again "
                        "(a reentrant computation would wait for itself forever)"
                    )
                self._drop_computation(raw, running)  # abandoned by this thread: see there
                continue
            while not running.done.wait(_CHECK_EVERY):
                if not _computation_running(running):
                    self._drop_computation(raw, running)
                    break
        try:
            value = factory()
            try:
                self._put(raw, value, ttl)
            except (EntryTooHeavyError, EntryTooLargeError):
                pass  # too heavy or too large to store: returned, not cached (documented)
            return value
        finally:
            if computing.get(raw) is mine:
                del computing[raw]  # only this call removes its own computation
            mine.done.set()

    def _drop_computation(self, raw: bytes, computation: _Computation) -> None:
        """Forgets a computation that no running call will finish (``_computation_running``:
        its frame was unwound without its ``finally``), and wakes whoever waits for it."""
        with self._computing_lock:  # one dropper at a time: never a newer computation
            if self._computing.get(raw) is computation:
                del self._computing[raw]
        computation.done.set()

    # ----- snapshots ---------------------------------------------------------------------------

    def save(self, path: SnapshotPath, *, codec: Optional[Codec] = None) -> SnapshotInfo:
        """Saves every live entry, with its remaining TTL and weight, in recency order, to
        ``path`` (``docs/snapshot-format.md``): written to a temporary file in the same
        directory, flushed to disk and renamed over ``path``, so a previous file there stays
        intact if anything fails. ``"bytes"`` and ``"pickle"`` caches save their stored bytes
        as they are; an ``"object"`` cache encodes each value with ``codec`` (``dumps``; pickle
        by default), after the cache's lock is released. ``SnapshotError`` if a value cannot be
        encoded (naming its key) or the file cannot be written."""
        path = snapshot_path(path)  # str, bytes or PathLike, as load takes them
        how = _SnapshotCodec(self._mode, codec)
        rows: List[Any] = self._saved_entries()  # bytes and pickle modes: written as they are
        # Object mode: the values encoded run by run while the file is written (the lock is
        # released: _saved_entries took the entries under it).
        encode = None if how.dumps is None else how.encode_all
        header = _fmt.write(
            path, rows, value_encoding=how.encoding, packer=self._row_packer, encode=encode
        )
        del rows
        return SnapshotInfo(
            header.format_major,
            header.format_minor,
            header.value_encoding,
            header.entry_count,
            header.entry_count,
            header.file_len,
        )

    def load(self, path: SnapshotPath, *, codec: Optional[Codec] = None) -> SnapshotInfo:
        """Replaces the entries with those saved in ``path``, restoring their recency order
        and remaining TTLs. The whole file is read and checked (and, in ``"object"`` mode,
        every value decoded with ``codec.loads``) before the cache changes: on any error it is
        unchanged. The old entries are told to ``on_evict`` as cleared; with smaller bounds
        than the saving cache's, the most recently used entries that fit are kept. Raises
        ``SnapshotError`` (``SnapshotFileError`` with a ``kind`` for a bad file, including one
        whose value encoding does not match this cache's mode)."""
        path = snapshot_path(path)  # messages name a str path, as save's do
        how = _SnapshotCodec(self._mode, codec)
        self._check_open()
        name = os.fspath(path)
        max_entries, max_bytes = self.max_entries, self.max_bytes
        getsizeof = self._settings.getsizeof
        loads = how.loads
        stored: Any = None
        staging: Optional[_Staging] = None
        try:
            with _fmt.opened(path) as reader:
                header = reader.header
                if header.value_encoding != how.encoding:
                    raise _fmt.SnapshotFileError(
                        "encoding_mismatch",
                        f"its values are encoded as {header.encoding_name}; {how.expected}",
                        path=name,
                    )
                staging = _Staging(
                    max_entries,
                    max_bytes,
                    self._stages_exactly(),
                    header.entry_count,
                    not self._restore_dedupes,
                )
                # (key, stored, ttl, weight): the file's weights, as the engine takes them.
                batches = reader.row_batches(self._parse_rows)
                if loads is None:
                    staging.add_batches(batches)
                else:
                    add = staging.add
                    rows = chain.from_iterable(batches)
                    for index, (key, stored, ttl, _) in enumerate(rows, 1):
                        try:
                            stored = loads(stored)
                        except Exception as error:  # noqa: BLE001 - any codec failure
                            raise how.decode_failure(name, index, key, error) from error
                        # A new object, weighed as a put weighs it (getsizeof, or 1).
                        weight = 1 if getsizeof is None else check_weight(getsizeof(stored))
                        add((key, stored, ttl, weight))
                stored = None
            kept = self._restore(staging.entries())
        finally:
            # Nothing read from the file stays referenced from here (a failed load leaves no
            # decoded value alive through this frame).
            stored = None
            if staging is not None:
                staging.clear()
        return SnapshotInfo(
            header.format_major,
            header.format_minor,
            header.value_encoding,
            header.entry_count,
            kept,
            header.file_len,
        )

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
        """The default TTL in seconds, if any: ``math.inf`` for one too long to represent
        (``math.inf`` itself, or ``1e300``), whose entries never expire."""
        nanos = self._settings.ttl_nanos
        if nanos is None:
            return None
        return math.inf if nanos >= SATURATED else nanos / NANOS

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        bounds = f"max_entries={self.max_entries}, max_bytes={self.max_bytes}"
        rest = f"ttl={self.ttl}, mode={self._mode!r}, backend={self.backend!r}"
        return f"alphaforge_cache.Cache({bounds}, {rest})"

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    # ----- copies ------------------------------------------------------------------------------

    _NO_COPY = (
        "use save()/load() for a copy on disk, or build a new cache and put_many(cache.items())"
    )

    def __copy__(self) -> NoReturn:
        refuse_copy("Cache", self._NO_COPY)

    def __deepcopy__(self, memo: Any) -> NoReturn:
        refuse_copy("Cache", self._NO_COPY)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        refuse_copy("Cache", self._NO_COPY)

    def __reduce__(self) -> NoReturn:
        refuse_copy("Cache", self._NO_COPY)


_GET_OR_SET_CODE = CacheBase.get_or_set.__code__

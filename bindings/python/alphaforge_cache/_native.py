"""The native backend: the Rust engine through the cffi extension ``_alphaforge_cache_cffi``.

The engine keeps a *handle cache*: keys, weights, deadlines, recency, statistics and eviction
are the engine's, and the values stay in Python, in the mirror (key -> stored value; see
``_shared.py``), which holds exactly the engine's keys. So a value is never copied across the
boundary, in any mode: bytes are returned as the very object stored, objects by identity. Each
engine entry carries a handle (an integer, unique per cache) that tells the entries one call
stores apart from those it removes (a batch may replace or evict its own entries).

Reads are served from the shared mirror and replayed in batches (``_shared.py``); every other
operation crosses into C once, under the cache's lock (cffi releases the GIL meanwhile). The
engine reports the entries a call removed without calling back into Python: their keys, handles
and causes wait in a per-thread C list (the code of a call that removed one says so, and which).
Python then takes them out of the mirror, still under the lock, and tells ``on_evict`` once the
lock is released.

Time: with a ``ManualClock`` the engine reads a native copy of the clock, which Python keeps
equal to its own. With real time, mirror deadlines count from ``time.monotonic_ns()`` minus an
origin read just after the engine's clock started, and are computed before the engine reads its
clock for the put: a mirror deadline is never later than the engine's, so the mirror never serves
an entry the engine holds as expired (an entry the mirror holds as expired is read from the
engine, which decides).
"""

from __future__ import annotations

import dataclasses
import struct
import sys
import time
import weakref
from collections.abc import MutableMapping
from functools import partial
from operator import itemgetter
from typing import Any, Callable, Iterator, List, Optional, Tuple, Type, TypeVar

from . import _snapshot_format as _fmt
from ._alphaforge_cache_cffi import ffi, lib  # type: ignore[import-not-found,unused-ignore]
from ._common import (
    CAUSES,
    MAX_CLOCK_NANOS,
    MAX_ENTRY_SIZE,
    CacheClosedError,
    CacheError,
    EntryTooHeavyError,
    EntryTooLargeError,
    ManualClock,
    Stats,
    check_int,
    check_settings,
)
from ._shared import (
    ABSENT,
    CacheBase,
    Notifications,
    SavedEntry,
    _key_iterable,
    attach_popped,
)

try:  # the read path in C (absent on PyPy, or when it could not be built): _shared.py otherwise
    from ._reads import CacheLock as _CacheLock  # type: ignore[import-not-found,unused-ignore]
    from ._reads import Mirror as _Mirror  # type: ignore[import-not-found,unused-ignore]
    from ._reads import Reader as _Reader  # type: ignore[import-not-found,unused-ignore]
    from ._reads import TimedEntry as _TimedEntry  # type: ignore[import-not-found,unused-ignore]
    from ._reads import measure_rows, pack_rows  # type: ignore[import-not-found,unused-ignore]
    from ._reads import parse_rows as _parse_rows  # type: ignore[import-not-found,unused-ignore]
    from ._reads import (  # type: ignore[import-not-found,unused-ignore]
        restore_columns as _restore_columns,
    )
    from ._reads import saved_rows as _saved_rows  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the build
    _Reader = _TimedEntry = _Mirror = _CacheLock = None
    _parse_rows = _restore_columns = _saved_rows = _row_packer = None
else:
    _row_packer = _fmt.RowPacker(measure_rows, pack_rows)
    MutableMapping.register(_Mirror)  # the mapping methods the front uses, and a few more

if lib.afc_abi_version() != lib.AFC_ABI_VERSION:  # pragma: no cover - a broken install
    raise ImportError(
        f"alphaforge_cache: the engine's ABI version {lib.afc_abi_version()} differs from the "
        f"one the extension was built for ({lib.AFC_ABI_VERSION})"
    )

_ERR: int = lib.AFCPY_ERR
_ONE: int = lib.AFCPY_ONE
_MANY: int = lib.AFCPY_MANY
_CLOSED: int = lib.AFCPY_CLOSED
_PAYLOAD = _ONE - 1
_REMOVED = CAUSES.index("removed")
_NO_TTL = 2**64 - 1
_ENTRY = struct.Struct("=QQQ")
_WEIGHED_ENTRY = struct.Struct("=QQQQ")


def _order_records(data: bytes, count: int) -> Iterator[Tuple[bytes, int, int]]:
    """``(key, ttl_ns, weight)`` of each of the ``count`` records of ``afcpy_snapshot_order``'s
    bytes ``data`` (``_WEIGHED_ENTRY``, then the key and the value), in their order."""
    at = 0
    unpack = _WEIGHED_ENTRY.unpack_from
    for _ in range(count):
        key_len, value_len, ttl, weight = unpack(data, at)
        at += 32
        yield data[at : at + key_len], ttl, weight
        at += key_len + value_len


_HANDLE = struct.Struct("<Q")
_NULL = ffi.NULL
_FIRST, _SECOND, _THIRD, _FOURTH = (itemgetter(i) for i in range(4))
#: The per-entry heads of a drained buffer are native integers, the handles little-endian.
_LITTLE_ENDIAN = sys.byteorder == "little"

_put_call = lib.afcpy_put
_monotonic_ns = time.monotonic_ns


def _error(status: int) -> Exception:
    """The exception for a failed call (the one place status codes become exceptions)."""
    if status == _CLOSED:
        return CacheClosedError("the cache is closed")
    message = ffi.string(lib.afc_last_error()).decode("utf-8", "replace")
    if status == lib.AFC_ENTRY_TOO_HEAVY:
        return EntryTooHeavyError(message)
    if status == lib.AFC_ENTRY_TOO_LARGE:
        return EntryTooLargeError(message)
    if status in (lib.AFC_INVALID_ARGUMENT, lib.AFC_INVALID_CONFIG):
        return ValueError(message)
    name = ffi.string(lib.afc_status_name(status)).decode("ascii", "replace")
    if status == lib.AFC_PANIC:
        return RuntimeError(f"alphaforge_cache engine panic ({name}): {message}")
    return CacheError(f"{name}: {message}")


def _check(status: int) -> None:
    """Raises the exception of a failed engine call (``status`` not 0)."""
    if status:
        raise _error(status)


_Record = TypeVar("_Record")


def from_struct(cls: Type[_Record], struct: Any) -> _Record:
    """The dataclass ``cls`` (``Stats``, ``SnapshotInfo``) of a C struct with the same fields."""
    return cls(*(getattr(struct, field.name) for field in dataclasses.fields(cls)))  # type: ignore[arg-type]


class _NativeClock:
    """An ``afc_clock``: the native copy of a ``ManualClock`` shared with native caches."""

    __slots__ = ("ptr",)

    def __init__(self, start_nanos: int) -> None:
        out = ffi.new("afc_clock **")
        _check(lib.afc_clock_new(start_nanos, out))
        self.ptr = ffi.gc(out[0], lib.afc_clock_free)

    def set_nanos(self, nanos: int) -> None:
        lib.afc_clock_set(self.ptr, min(nanos, 2**64 - 1))


class Cache(CacheBase):
    """A thread-safe, sharded LRU cache with entry and byte bounds and TTLs (the Rust engine).

    See ``alphaforge_cache.Cache`` for the documentation of every method.
    """

    backend = "native"
    _parse_rows = _parse_rows  # a builtin function: not bound to the cache
    _row_packer = _row_packer
    _restore_dedupes = True  # afc_cache_load_handles stages every entry as a put

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
        self._max_entries = settings.max_entries
        self._timer = timer
        # Handles are per cache, taken under the lock; the C puts (_reads.c) take theirs from
        # 2**57 on, a counter of their own.
        self._next_handle = 1
        clock = _NULL if timer is None else timer._attach(_NativeClock).ptr  # type: ignore[attr-defined]
        out = ffi.new("afcpy_cache **")
        _check(
            lib.afcpy_open(
                settings.max_entries,
                settings.max_bytes or 0,
                settings.ttl_nanos or 0,
                settings.shards,
                clock,
                out,
            )
        )
        self._ptr = ffi.gc(out[0], lib.afcpy_destroy)
        # Read after the engine's monotonic clock started: mirror time never runs ahead of it.
        self._origin = _monotonic_ns()
        self._plain_objects = mode == "object" and getsizeof is None and max_bytes is None
        self._reader: Any = None
        self._put_many_plain: Optional[Callable[[List[Tuple[bytes, Any]]], bool]] = None
        self._getitem: Callable[[Any], Any] = partial(CacheBase.__getitem__, self)
        self._setitem: Callable[[Any, Any], None] = partial(CacheBase.__setitem__, self)
        if _CacheLock is not None:
            # A lock the C paths take without calls (see _cache_lock.h), and which has the
            # tables mended after an operation cut short under it (a RecursionError raised in
            # its bookkeeping after an engine call: see _repair). Weakly: the cache holds it.
            self._lock = _CacheLock()
            self._lock.set_mend(weakref.WeakMethod(self._repair))
        if _Reader is not None and type(self).get is Cache.get and not self._pickled:
            # The same get as CacheBase.get, in C: an instance attribute, so one call serves it.
            # Its mirror is a table of its own (see _mirror.h), still empty here.
            self._mirror = _Mirror()
            self._reader = _Reader(
                self._mirror,
                self._reads,
                self._get_other,
                self._flush,
                ABSENT,
                self._timed,
                timer,
                _monotonic_ns,
                self._origin,
                self._misses,
                self._ptr,
                int(ffi.cast("uintptr_t", self._ptr)),
                int(ffi.cast("uintptr_t", ffi.addressof(lib, "afcpy_put"))),
                int(ffi.cast("uintptr_t", ffi.addressof(lib, "afcpy_replay"))),
                int(ffi.cast("uintptr_t", ffi.addressof(lib, "afcpy_removals"))),
            )
            self.get = self._reader.get  # type: ignore[method-assign]
            self._get_bytes = self._reader.get  # type: ignore[method-assign]
            if type(self).get_many is Cache.get_many:
                # get_many in one C call too (a list of keys on a cache without deadlines;
                # anything else through Cache.get_many).
                self._reader.enable_get_many(partial(Cache.get_many, self))
                self.get_many = self._reader.get_many_entry  # type: ignore[method-assign]
            self._timed_entry = _TimedEntry
            self._getitem = self._reader.getitem
            self._dated_in_mirror = True
            self._reader.set_lock(self._lock)
            self._lower_horizon = self._reader.lower_horizon
            plain = 2 if mode == "bytes" and max_bytes is None else int(self._plain_objects)
            if plain and settings.on_evict is None and type(self)._put is Cache._put:
                # The common put in one C call as well (see put_plain in _reads.c).
                self._reader.enable_put(
                    self._lock,
                    partial(CacheBase.put, self),
                    self._stored,
                    self._finish,
                    plain,
                    settings.ttl_nanos or 0,
                )
                if type(self).put is Cache.put:  # a subclass's own put is not hidden
                    self.put = self._reader.put_plain  # type: ignore[method-assign]
                self._setitem = self._reader.put_plain
                # put_many too (a list of pairs in one C call, the engine's work outside the
                # GIL if the batch is large; anything else through CacheBase.put_many).
                self._reader.enable_put_many(
                    int(ffi.cast("uintptr_t", ffi.addressof(lib, "afcpy_put_many"))),
                    partial(CacheBase.put_many, self),
                )
                self._put_many_plain = self._reader.put_many_plain
                if type(self).put_many is CacheBase.put_many:
                    self.put_many = self._reader.put_many  # type: ignore[method-assign]

    if _Reader is not None:

        def __getitem__(self, key: Any) -> Any:
            return self._getitem(key)

        def __setitem__(self, key: Any, value: Any) -> None:
            self._setitem(key, value)

    def get_many(self, keys: Any, default: Any = None) -> List[Any]:
        """The values of many keys in one call (``default`` for a miss), in order."""
        reader = self._reader
        if reader is not None and not self._timed:
            keys = keys if type(keys) is list else list(_key_iterable(keys))
            self._check_open()
            values = reader.get_many(keys, default, self._key_len, self._misses)
            if values is not None:
                return values  # type: ignore[no-any-return]
        return super().get_many(keys, default)

    # ----- time, removals, errors --------------------------------------------------------------

    def _now(self) -> int:
        timer = self._timer
        if timer is not None:
            return min(timer._nanos, MAX_CLOCK_NANOS)
        return _monotonic_ns() - self._origin

    def _deadline(self, ttl_nanos: Optional[int], now: int) -> Optional[int]:
        # As the engine: an endless TTL (saturated) never expires; any other deadline past the
        # clock's range is its last instant, when the entry still expires.
        if ttl_nanos is None or ttl_nanos >= _NO_TTL:
            return None
        return min(now + ttl_nanos, MAX_CLOCK_NANOS)

    def _removed_entries(
        self, code: int, first: int = 0, new: Optional[List[Tuple[bytes, Any]]] = None
    ) -> List[Tuple[bytes, Any, int]]:
        """The entries a call removed (lock held), not yet out of the mirror: (key, stored
        value, cause) in order. ``new``: the (key, stored value) pairs the call stored, under
        the handles from ``first`` on (an entry of theirs the call removed again has its value
        there); any other removed entry's value is the mirror's."""
        if not code & (_ONE | _MANY):
            return []
        listed = lib.afcpy_removals()
        n = listed.n
        items = ffi.unpack(listed.items, n)
        lens = ffi.unpack(listed.key_lens, n)
        blob = ffi.buffer(listed.keys, sum(lens))[:]
        last = first + len(new) if new else first
        stored_of = self._mirror_stored
        removed = []
        at = 0
        for item, length in zip(items, lens):
            handle = item >> 3
            if first <= handle < last:
                assert new is not None
                key, stored = new[handle - first]
            else:
                key = blob[at : at + length]
                stored = stored_of(key)
            at += length
            removed.append((key, stored, item & 7))
        return removed

    def _mirror_stored(self, key: bytes) -> Any:
        """The stored value of a key the engine holds (lock held), from the mirror."""
        stored = self._mirror.get(key, ABSENT)
        if stored is ABSENT:
            entry = self._timed.get(key)
            if entry is None:
                raise RuntimeError(
                    f"alphaforge_cache: the engine removed {key!r}, which the mirror lacks"
                )
            stored = entry[0]
        return stored

    def _removed(
        self,
        code: int,
        keep: Optional[bytes] = None,
        first: int = 0,
        new: Optional[List[Tuple[bytes, Any]]] = None,
    ) -> List[Tuple[bytes, Any, int]]:
        """The entries a call removed (lock held): they leave the mirror (except ``keep``, the
        key a put is storing). (key, stored value, cause) in order; ``first`` and ``new`` as
        for ``_removed_entries``."""
        removed = self._removed_entries(code, first, new)
        drop = self._mirror_drop
        for key, _, _ in removed:
            if key != keep:
                drop(key)
        return removed

    def _notify(self, removed: List[Tuple[bytes, Any, int]]) -> None:
        """Tells ``on_evict`` of removals (no lock held)."""
        if self._on_evict is None or not removed:
            return
        out = Notifications(self)
        for key, stored, cause in removed:
            out.add(key, stored, CAUSES[cause])
        out.deliver()

    def _finish(self, code: int, removed: List[Tuple[bytes, Any, int]]) -> None:
        """After a call (lock released): notifications first, then the call's error if any."""
        self._notify(removed)
        if code & _ERR:
            raise _error(code & 0xFFFFFFFF)

    def _pack(self, keys: List[Any]) -> Tuple[bytes, Any, int]:
        """Buffered keys for C: concatenated, with their lengths (or the one length they share)."""
        joined = b"".join(keys)
        key_len = self._key_len
        if key_len >= 0:
            return joined, _NULL, key_len
        return joined, ffi.new("size_t[]", [len(key) for key in keys]), 0

    def _key_len_changed(self) -> None:
        if self._reader is not None:
            self._reader.set_key_len(self._key_len)

    def _drain_reads(self) -> None:
        """Through the C read path when it can (the GIL kept), else through cffi."""
        reader = self._reader
        code = None if reader is None else reader.replay(self._key_len)
        if code is None:
            self._replay(*self._take_reads())
        elif code & _ERR:
            raise _error(code & 0xFFFFFFFF)

    def _replay(self, keys: List[Any], misses: int) -> None:
        joined, lens, key_len = self._pack(keys)
        code = lib.afcpy_replay(self._ptr, joined, lens, key_len, len(keys), misses)
        if code & _ERR:
            raise _error(code & 0xFFFFFFFF)

    def _repair(self) -> None:
        # (PyPy: see ReclaimingLock.) An operation cut short between its engine call and its
        # mirror change leaves the two disagreeing: a key the engine no longer holds leaves
        # the mirror, and a key whose value the mirror lacks leaves the engine (untold: its
        # value is not known here).
        drained = lib.afcpy_snapshot_order(self._ptr)
        if drained.code & _ERR:
            return
        data = ffi.buffer(drained.data, drained.size)[:] if drained.size else b""
        live = {key for key, _, _ in _order_records(data, int(drained.count))}
        mirror, timed = self._mirror, self._timed
        for key in [key for key in list(mirror) + list(timed) if key not in live]:
            self._mirror_drop(key)
        for key in live:
            if key not in mirror and key not in timed:
                lib.afcpy_remove(self._ptr, key, len(key))

    def _call(self, call: Callable[..., int], *args: Any) -> None:
        """One engine call that stores nothing, under the lock, and its removals."""
        with self._lock:
            self._begin()
            code = call(self._ptr, *args)
            removed = self._removed(code)
        self._finish(code, removed)

    # ----- reads the mirror cannot serve -------------------------------------------------------

    def _lookup(self, key: bytes, touch: bool) -> Tuple[bool, Any]:
        handle = ffi.new("uint64_t *")
        with self._lock:
            self._begin()
            code = lib.afcpy_lookup(self._ptr, key, len(key), touch, handle)
            removed = self._removed(code)
            found = handle[0] != 0  # a live entry, which the mirror holds
            stored = self._mirror_stored(key) if found else None
        self._finish(code, removed)
        return found, stored

    def _remaining_ttl(self, key: bytes) -> Tuple[bool, Optional[int]]:
        out = ffi.new("uint64_t[2]")
        self._call(lib.afcpy_remaining_ttl, key, len(key), out)
        if not out[1]:
            return False, None
        left = int(out[0])
        return True, None if left == _NO_TTL else left

    # ----- writes ------------------------------------------------------------------------------

    def _put(self, key: bytes, value: Any, ttl: Optional[float]) -> None:
        if self._plain_objects and ttl is None:  # object mode, weight 1, no byte bound
            stored, weight, ttl_nanos = value, 1, self._settings.ttl_nanos
            if len(key) > MAX_ENTRY_SIZE:
                raise EntryTooLargeError(
                    f"key of {len(key)} bytes exceeds the limit of {MAX_ENTRY_SIZE}"
                )
        else:
            stored, weight, ttl_nanos = self._admit(key, value, ttl)
        with self._lock:
            self._check_open()
            handle = self._next_handle
            self._next_handle = handle + 1
            # The mirror's deadline is computed before the engine reads its clock.
            deadline = None if ttl_nanos is None else self._deadline(ttl_nanos, self._now())
            reader = self._reader
            result = None
            if reader is not None:
                # The common put in one C call, the GIL kept (see _reads.c).
                result = reader.put(
                    key, stored, weight, ttl_nanos or 0, deadline, handle, self._key_len
                )
            if result is None:
                if self._reads or self._misses:
                    keys, misses = self._take_reads()
                    joined, lens, key_len = self._pack(keys)
                    n = len(keys)
                else:
                    joined, lens, key_len, n, misses = b"", _NULL, 0, 0, 0
                code = _put_call(
                    self._ptr, joined, lens, key_len, n, misses, key, len(key), handle, weight,
                    ttl_nanos or 0,
                )  # fmt: skip
                removed = self._stored(code, key, stored, handle, deadline)
            elif type(result) is tuple:
                code, gone_key, gone_value = result
                removed = [(gone_key, gone_value, code & 7)]
            else:
                code = result
                if not code:
                    return
                removed = self._stored(code, key, stored, handle, deadline)
        self._finish(code, removed)

    def _stored(
        self, code: int, key: bytes, stored: Any, handle: int, deadline: Optional[int]
    ) -> List[Tuple[bytes, Any, int]]:
        """After the engine call of a put (lock held): the mirror follows it; the entries it
        removed."""
        if code & _ERR:
            return self._removed(code)
        if not code:
            self._mirror_store(key, stored, deadline)
            return []
        removed = self._removed(code, key, handle, [(key, stored)])
        if handle in self._removed_handles():  # the new entry did not stay (not seen so far)
            self._mirror_drop(key)
        else:
            self._mirror_store(key, stored, deadline)
        return removed

    def _put_many(self, items: List[Tuple[bytes, Any]], ttl: Optional[float]) -> None:
        if ttl is None and self._put_many_plain is not None and self._put_many_plain(items):
            return  # the common case, done in C (see put_many_plain in _reads.c)
        n = len(items)
        keys = [key for key, _ in items]
        if self._plain_objects and ttl is None and max(map(len, keys), default=0) <= MAX_ENTRY_SIZE:
            stored = [value for _, value in items]
            weights = [1] * n
            ttl_nanos = self._settings.ttl_nanos
        else:
            admitted = [self._admit(key, value, ttl) for key, value in items]
            stored = [entry[0] for entry in admitted]
            weights = [entry[1] for entry in admitted]
            ttl_nanos = admitted[0][2] if admitted else None
        with self._lock:
            self._begin()
            first = self._next_handle
            self._next_handle = first + n
            handles = list(range(first, first + n))
            now = 0 if ttl_nanos is None else self._now()
            code = lib.afcpy_put_many(
                self._ptr,
                b"".join(keys),
                ffi.new("size_t[]", list(map(len, keys))),
                ffi.new("uint64_t[]", handles),
                ffi.new("uint64_t[]", weights),
                n,
                ttl_nanos or 0,
            )
            if code & _ERR:
                removed = self._removed(code)
            else:
                new = list(zip(keys, stored))
                removed = self._removed(code, None, first, new)
                gone = {h for h in self._removed_handles() if first <= h < first + n}
                last = dict(zip(keys, zip(handles, stored)))  # a key's last entry wins
                deadline = self._deadline(ttl_nanos, now)
                for key, (handle, value) in last.items():
                    if handle not in gone:
                        self._mirror_store(key, value, deadline)
                    else:  # evicted by a later entry of the same batch
                        self._mirror_drop(key)
        self._finish(code, removed)

    @staticmethod
    def _removed_handles() -> List[int]:
        """The handles of the entries the last call on this thread removed."""
        listed = lib.afcpy_removals()
        if not listed.n:
            return []
        return [item >> 3 for item in ffi.unpack(listed.items, listed.n)]

    def _remove(self, key: bytes) -> Tuple[bool, Any]:
        with self._lock:
            self._begin()
            code = lib.afcpy_remove(self._ptr, key, len(key))
            removed = self._removed(code)
        taken: Any = ABSENT
        for k, stored, cause in removed:
            if cause == _REMOVED and k == key:
                taken = stored
        try:
            self._finish(code, removed)
        except BaseException as error:
            if taken is not ABSENT:
                attach_popped(error, key, lambda: self._decode(taken))
            raise
        return (False, None) if taken is ABSENT else (True, self._decode(taken))

    def _pop_lru(self) -> Tuple[bool, bytes, Any]:
        key: Optional[bytes] = None
        with self._lock:
            self._begin()
            # The live entries, least recently used first: only the first one's key is read.
            drained = lib.afcpy_snapshot_order(self._ptr)
            code = drained.code
            if not code & _ERR and drained.count:
                key_len = _WEIGHED_ENTRY.unpack_from(ffi.buffer(drained.data, 32))[0]
                key = ffi.buffer(drained.data + 32, key_len)[:]
            removed = self._removed(code)  # none: a snapshot reclaims nothing
            if key is not None:
                code = lib.afcpy_remove(self._ptr, key, len(key))
                removed += self._removed(code)
        found: Tuple[bool, bytes, Any] = (False, b"", None)
        for k, stored, cause in removed:
            if cause == _REMOVED and k == key:
                found = (True, k, stored)
        try:
            self._finish(code, removed)
        except BaseException as error:
            if found[0]:
                attach_popped(error, found[1], lambda: self._decode(found[2]))
            raise
        return found

    def clear(self) -> None:
        """Removes every entry (``on_evict`` hears them as cleared, or expired)."""
        self._call(lib.afcpy_clear)

    def expire(self) -> List[bytes]:
        """Reclaims every expired entry now; returns their keys, most recently used first."""
        with self._lock:
            self._begin()
            drained = lib.afcpy_expire_keys(self._ptr)
            entries = self._parse(drained)
            removed = self._removed(drained.code)
        self._finish(drained.code, removed)
        return [key for key, _, _ in entries]

    def resize(self, max_entries: int) -> None:
        """Changes the entry bound, evicting least recently used entries beyond it."""
        check_int(max_entries, "max_entries", 1, 2**32 - 2)
        self._call(lib.afcpy_resize, max_entries)
        self._max_entries = max_entries

    def set_max_bytes(self, max_bytes: int) -> None:
        """Changes the byte bound (the cache must have been built with one)."""
        check_int(max_bytes, "max_bytes", 1, 2**64 - 1)
        if self._max_bytes is None:
            raise ValueError("this cache was built without max_bytes: there is no bound to change")
        self._call(lib.afcpy_set_max_bytes, max_bytes)
        self._max_bytes = max_bytes

    # ----- whole-cache views -------------------------------------------------------------------

    def _parse(self, drained: Any) -> List[Tuple[bytes, int, int]]:
        """The entries an iterator was drained into: (key, handle, ttl_ns)."""
        data = ffi.buffer(drained.data, drained.size)[:] if drained.size else b""
        entries = []
        at = 0
        for _ in range(int(drained.count)):
            key_len, value_len, ttl = _ENTRY.unpack_from(data, at)
            at += 24
            key = data[at : at + key_len]
            (handle,) = _HANDLE.unpack_from(data, at + key_len) if value_len == 8 else (0,)
            entries.append((key, handle, ttl))
            at += key_len + value_len
        return entries

    def _snapshot(self) -> List[Tuple[bytes, Any, Optional[int]]]:
        with self._lock:
            self._begin()
            drained = lib.afcpy_snapshot(self._ptr)
            entries = self._parse(drained)
            removed = self._removed(drained.code)  # none: a snapshot reclaims nothing
            stored_of = self._mirror_stored
            live = [
                (key, stored_of(key), None if ttl == _NO_TTL else ttl) for key, _, ttl in entries
            ]
        self._finish(drained.code, removed)
        return [(key, self._decode(stored), left) for key, stored, left in live]

    def _saved_entries(self) -> List[SavedEntry]:
        with self._lock:
            self._begin()
            drained = lib.afcpy_snapshot_order(self._ptr)
            code = drained.code
            data = ffi.buffer(drained.data, drained.size)[:] if drained.size else b""
            removed = self._removed(code)  # none: a snapshot reclaims nothing
            stored_of = self._mirror_stored
            count = int(drained.count)
            key_len = self._key_len
            made = None
            if _saved_rows is not None and self._reader is not None:  # the C read path's
                made = _saved_rows(data, count, self._mirror, _NO_TTL)
            if made is not None:
                entries: List[SavedEntry] = made
            elif _LITTLE_ENDIAN and key_len >= 0 and len(data) == count * (40 + key_len):
                # Every key has one length: every record has one layout, parsed in C.
                records: Any = struct.iter_unpack(f"<4Q{key_len}sQ", data)
                entries = [
                    (key, stored_of(key), None if ttl == _NO_TTL else ttl, weight)
                    for _, _, ttl, weight, key, _ in records
                ]
            else:
                entries = [
                    (key, stored_of(key), None if ttl == _NO_TTL else ttl, weight)
                    for key, ttl, weight in _order_records(data, count)
                ]
        self._finish(code, removed)
        return entries

    def _stages_exactly(self) -> bool:
        return self._settings.shards == 1

    def _restore(self, entries: List[SavedEntry]) -> int:
        n = len(entries)
        key_lens: Any
        weights: Any
        ttls: Any
        if _restore_columns is not None and self._reader is not None:  # the C read path's
            joined, key_lens_bytes, weights_bytes, ttls_bytes, timed, pairs, lengths = (
                _restore_columns(entries)
            )
            key_lens = ffi.from_buffer("size_t[]", key_lens_bytes)
            weights = ffi.from_buffer("uint64_t[]", weights_bytes)
            ttls = ffi.from_buffer("uint64_t[]", ttls_bytes)
        else:
            keys = list(map(_FIRST, entries))
            pairs = list(zip(keys, map(_SECOND, entries)))
            key_lengths = list(map(len, keys))
            key_lens = ffi.new("size_t[]", key_lengths)
            lengths = set(key_lengths)
            weights = ffi.new("uint64_t[]", list(map(_FOURTH, entries)))
            timed = list(map(_THIRD, entries)).count(None) != n
            ttls = ffi.new("uint64_t[]", [e[2] or 0 for e in entries] if timed else n)  # 0: none
            joined = b"".join(keys)
            del keys, key_lengths
        ttl_list = list(map(_THIRD, entries)) if timed else None
        kept = ffi.new("uint8_t[]", n)
        handles = ffi.new("uint64_t[]", n)
        with self._lock:
            self._begin()
            first = self._next_handle
            self._next_handle = first + n
            # The mirror's deadlines count from a time read before the engine reads its clock.
            now = self._now()
            code = lib.afcpy_load(
                self._ptr, joined, key_lens, first, handles, weights, ttls, n, kept
            )
            if code & _ERR:
                removed = self._removed(code)
                held = 0
            else:
                taken = ffi.buffer(kept, n)[:]
                live: Any = range(n) if taken.count(1) == n else [i for i in range(n) if taken[i]]
                # The entries the load removed: the old ones (cleared, or expired).
                removed = self._removed_entries(code, first, pairs)
                gone = {h - first for h in self._removed_handles() if first <= h < first + n}
                if gone:
                    # New entries removed in the same call (a bound lowered meanwhile: not
                    # possible under this lock, but handled all the same).
                    live = [i for i in live if i not in gone]
                live_pairs = pairs if len(live) == n else [pairs[i] for i in live]
                deadlines = None
                if ttl_list is not None:
                    deadlines = [
                        None if t is None or t >= _NO_TTL else min(now + t, MAX_CLOCK_NANOS)
                        for t in (ttl_list[i] for i in live)
                    ]
                self._mirror_store_all(live_pairs, deadlines, lengths)
                if removed:  # out of the old entries after into the new ones
                    new_keys = {key for key, _ in live_pairs}
                    for key, _, _ in removed:
                        if key not in new_keys:
                            self._mirror_drop(key)
                held = len(live)
        self._finish(code, removed)
        return held

    def __len__(self) -> int:
        out = ffi.new("size_t *")
        self._call(lib.afcpy_len, out)
        return int(out[0])

    @property
    def weight(self) -> int:
        """The total weight of the live entries."""
        out = ffi.new("uint64_t *")
        self._call(lib.afcpy_weight, out)
        return int(out[0])

    def stats(self) -> Stats:
        """The statistics (expired entries are reclaimed first)."""
        out = ffi.new("afc_stats *")
        self._call(lib.afcpy_stats, out)
        return from_struct(Stats, out[0])

    def reset_stats(self) -> None:
        """Sets every counter back to zero."""
        self._call(lib.afcpy_reset_stats)

    @property
    def max_entries(self) -> int:
        """The entry bound."""
        return self._max_entries

    @property
    def max_bytes(self) -> Optional[int]:
        """The byte (weight) bound, if any."""
        return self._max_bytes

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._reader is not None:
                self._reader.set_closed()
            self._take_reads()
            code = lib.afcpy_close(self._ptr)
            removed = self._removed(code)
            self._mirror_clear()  # every entry was reported above; nothing may stay referenced
        self._finish(code, removed)

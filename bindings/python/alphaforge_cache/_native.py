"""The native backend: the Rust engine through the cffi extension ``_alphaforge_cache_cffi``.

Every operation crosses into C once (the ``afcpy_*`` helpers of ``_ffi_build.py``); cffi releases
the GIL during the call. ``"bytes"`` and ``"pickle"`` modes use a byte cache; ``"object"`` mode a
handle cache whose handles index a dict of the live objects. Entries that leave the cache are
recorded by the C callbacks into a per-thread pending list (nothing else runs in a callback);
once the call has returned, Python releases the objects and tells ``on_evict`` (with no engine
lock held).
"""

from __future__ import annotations

import itertools
import pickle
import struct
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._alphaforge_cache_cffi import ffi, lib  # type: ignore[import-not-found,unused-ignore]
from ._common import (
    CAUSES,
    MAX_ENTRY_SIZE,
    CacheClosedError,
    CacheError,
    EntryTooHeavyError,
    ManualClock,
    Stats,
    check_int,
    check_settings,
    check_weight,
    key_bytes,
    seconds_to_nanos,
)
from ._shared import CacheBase, Notifications

if lib.afc_abi_version() != lib.AFC_ABI_VERSION:  # pragma: no cover - a broken install
    raise ImportError(
        f"alphaforge_cache: the engine's ABI version {lib.afc_abi_version()} differs from the "
        f"one the extension was built for ({lib.AFC_ABI_VERSION})"
    )

_ERR: int = lib.AFCPY_ERR
_REL: int = lib.AFCPY_REL
_CLOSED: int = lib.AFCPY_CLOSED
_NOT_FOUND: int = lib.AFC_NOT_FOUND
_NO_TTL = 2**64 - 1
_MISSING_LEN = 2**64 - 1
_MISSING: Any = object()
_ENTRY = struct.Struct("=QQQ")

_get = lib.afcpy_get
_get_handle = lib.afcpy_get_handle
_contains = lib.afcpy_contains
_put = lib.afcpy_put
_put_handle = lib.afcpy_put_handle
_unpack = ffi.unpack
_loads = pickle.loads

_tags = itertools.count(1)
_handles = itertools.count(1)
_local = threading.local()


def _pending() -> List[Tuple[Any, ...]]:
    """This thread's removals recorded by the callbacks and not yet taken by their cache."""
    try:
        return _local.items  # type: ignore[no-any-return]
    except AttributeError:
        items: List[Tuple[Any, ...]] = []
        _local.items = items
        return items


@ffi.def_extern()  # type: ignore[misc,untyped-decorator,unused-ignore]
def afcpy_py_release(tag: int, key: Any, key_len: int, handle: int, cause: int) -> None:
    """A handle left a handle cache: only recorded (the cache's lock may be held)."""
    _pending().append((tag, _unpack(key, key_len), handle, cause))


@ffi.def_extern()  # type: ignore[misc,untyped-decorator,unused-ignore]
def afcpy_py_listen(
    tag: int, key: Any, key_len: int, value: Any, value_len: int, cause: int
) -> None:
    """An entry left a byte cache: only recorded."""
    _pending().append((tag, _unpack(key, key_len), _unpack(value, value_len), cause))


def _error(status: int) -> Exception:
    """The exception for a failed call (the one place status codes become exceptions)."""
    if status == _CLOSED:
        return CacheClosedError("the cache is closed")
    message = ffi.string(lib.afc_last_error()).decode("utf-8", "replace")
    if status == lib.AFC_ENTRY_TOO_HEAVY:
        return EntryTooHeavyError(message)
    if status in (lib.AFC_INVALID_ARGUMENT, lib.AFC_INVALID_CONFIG, lib.AFC_ENTRY_TOO_LARGE):
        return ValueError(message)
    name = ffi.string(lib.afc_status_name(status)).decode("ascii", "replace")
    if status == lib.AFC_PANIC:
        return RuntimeError(f"alphaforge_cache engine panic ({name}): {message}")
    return CacheError(f"{name}: {message}")


class _NativeClock:
    """An ``afc_clock``: the native time of a ``ManualClock`` shared with native caches."""

    __slots__ = ("ptr",)

    def __init__(self, start_nanos: int) -> None:
        out = ffi.new("afc_clock **")
        status = lib.afc_clock_new(start_nanos, out)
        if status:
            raise _error(status)
        self.ptr = ffi.gc(out[0], lib.afc_clock_free)

    def now_nanos(self) -> int:
        out = ffi.new("uint64_t *")
        lib.afc_clock_now(self.ptr, out)
        return int(out[0])

    def set_nanos(self, nanos: int) -> None:
        lib.afc_clock_set(self.ptr, min(nanos, 2**64 - 1))

    def advance_nanos(self, nanos: int) -> None:
        lib.afc_clock_advance(self.ptr, min(nanos, 2**64 - 1))


class Cache(CacheBase):
    """A thread-safe, sharded LRU cache with entry and byte bounds and TTLs (the Rust engine).

    See ``alphaforge_cache.Cache`` for the documentation of every method.
    """

    backend = "native"

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
        self._closed = False
        self._max_entries = settings.max_entries
        self._max_bytes = settings.max_bytes
        self._objects: Dict[int, Any] = {}
        self._is_object = mode == "object"
        self._is_pickle = mode == "pickle"
        self._tag = next(_tags)
        clock = ffi.NULL if timer is None else timer._attach(_NativeClock).ptr  # type: ignore[attr-defined]
        kind = 2 if self._is_object else (1 if on_evict is not None else 0)
        out = ffi.new("afcpy_cache **")
        status = lib.afcpy_open(
            settings.max_entries,
            settings.max_bytes or 0,
            settings.ttl_nanos or 0,
            settings.shards or 0,
            clock,
            kind,
            self._tag,
            out,
        )
        if status:
            raise _error(status)
        self._ptr = ffi.gc(out[0], lib.afcpy_destroy)

    # ----- the slow path: removals, errors ------------------------------------------------------

    def _collect(self) -> List[Tuple[bytes, Any, int]]:
        """Takes this cache's pending removals: (key, stored value, cause); a handle's object
        leaves the handle table here."""
        pending = _pending()
        tag = self._tag
        mine = [record for record in pending if record[0] == tag]
        if len(mine) == len(pending):
            pending.clear()
        else:
            pending[:] = [record for record in pending if record[0] != tag]
        if self._is_object:
            objects = self._objects
            return [(key, objects.pop(handle, None), cause) for _, key, handle, cause in mine]
        return [(key, value, cause) for _, key, value, cause in mine]

    def _notify(self, removed: List[Tuple[bytes, Any, int]]) -> None:
        if self._on_evict is None or not removed:
            return
        out = Notifications(self)
        for key, stored, cause in removed:
            out.add(key, stored, CAUSES[cause])
        out.deliver()

    def _settle(self, code: int) -> None:
        """After a call: tells ``on_evict`` of the removals it made, raises its error if any."""
        error = _error(code & 0xFFFFFFFF) if code & _ERR else None
        if code & _REL:
            self._notify(self._collect())
        if error is not None:
            raise error

    # ----- encoding --------------------------------------------------------------------------

    def _decode(self, stored: Any) -> Any:
        return _loads(stored) if self._is_pickle else stored

    def _admit(self, key: bytes, value: Any, ttl: Optional[float]) -> Tuple[Any, int, int]:
        """The stored form, weight and TTL argument of an entry (checked as the fallback does)."""
        mode = self._mode
        if mode == "bytes":
            if type(value) is not bytes:
                if not isinstance(value, (bytes, bytearray, memoryview)):
                    raise TypeError(
                        f"a bytes cache stores bytes-like values, not {type(value).__name__}"
                    )
                value = bytes(value)
            stored, weight = value, len(value)
        elif mode == "pickle":
            stored = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            weight = len(stored)
        else:
            getsizeof = self._settings.getsizeof
            stored, weight = value, (1 if getsizeof is None else check_weight(getsizeof(value)))
        if len(key) > MAX_ENTRY_SIZE:
            raise ValueError(f"key of {len(key)} bytes exceeds the limit of {MAX_ENTRY_SIZE}")
        if mode != "object":
            weight += len(key)
        if weight > MAX_ENTRY_SIZE:
            raise ValueError(f"entry weight {weight} exceeds the limit of {MAX_ENTRY_SIZE}")
        max_bytes = self._max_bytes
        if max_bytes is not None and weight > max_bytes:
            raise EntryTooHeavyError(
                f"entry weight {weight} exceeds max_bytes {max_bytes}; the cache is unchanged"
            )
        ttl_nanos = 0 if ttl is None else seconds_to_nanos(ttl, "ttl")
        return stored, weight, ttl_nanos

    # ----- reads (the hot paths first) ---------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key`` (which becomes the most recently used), or ``default``."""
        if type(key) is not bytes:
            key = key_bytes(key)
        if self._is_object:
            code = _get_handle(self._ptr, key, len(key), 1)
            if code < _REL:
                return self._objects.get(code, default) if code else default
        else:
            result = _get(self._ptr, key, len(key), 1)
            code = result.code
            if not code:
                data = _unpack(result.data, result.size)
                return _loads(data) if self._is_pickle else data
            if code == _NOT_FOUND:
                return default
        found, value = self._lookup_slow(key, code, result=None if self._is_object else result)
        return value if found else default

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def peek(self, key: Any, default: Any = None) -> Any:
        """Like ``get`` without changing recency or the hit/miss counters."""
        found, value = self._lookup(key_bytes(key), False)
        return value if found else default

    def __contains__(self, key: object) -> bool:
        try:
            raw = key_bytes(key)
        except TypeError:
            return False
        code = _contains(self._ptr, raw, len(raw))
        if code >= _REL:
            self._settle(code)
        return bool(code & 1)

    def _lookup_slow(self, key: bytes, code: int, result: Any) -> Tuple[bool, Any]:
        self._settle(code)  # raises on an error
        if self._is_object:
            handle = code & (_REL - 1)
            if handle:
                value = self._objects.get(handle, _MISSING)
                if value is not _MISSING:
                    return True, value
            return False, None
        if code & 0xFFFFFFFF == _NOT_FOUND:
            return False, None
        return True, self._decode(_unpack(result.data, result.size))

    def _lookup(self, key: bytes, touch: bool) -> Tuple[bool, Any]:
        if self._is_object:
            code = _get_handle(self._ptr, key, len(key), touch)
            if code < _REL:
                value = self._objects.get(code, _MISSING) if code else _MISSING
                return (False, None) if value is _MISSING else (True, value)
            return self._lookup_slow(key, code, None)
        result = _get(self._ptr, key, len(key), touch)
        code = result.code
        if not code:
            return True, self._decode(_unpack(result.data, result.size))
        if code == _NOT_FOUND:
            return False, None
        return self._lookup_slow(key, code, result)

    def _get_many(self, keys: List[bytes]) -> List[Tuple[bool, Any]]:
        n = len(keys)
        lens = ffi.new("size_t[]", [len(k) for k in keys])
        joined = b"".join(keys)
        if self._is_object:
            result = lib.afcpy_get_many_handles(self._ptr, joined, lens, n)
            self._settle(result.code)
            handles = ffi.unpack(ffi.cast("uint64_t *", result.data), n) if n else []
            found = ffi.unpack(result.data + 8 * n, n) if n else b""
            objects = self._objects
            out: List[Tuple[bool, Any]] = []
            for i in range(n):
                value = objects.get(handles[i], _MISSING) if found[i] else _MISSING
                out.append((False, None) if value is _MISSING else (True, value))
            return out
        result = lib.afcpy_get_many(self._ptr, joined, lens, n)
        self._settle(result.code)
        head = ffi.unpack(ffi.cast("size_t *", result.data), 2 * n) if n else []
        base = result.data + 16 * n
        stored = [
            (False, None)
            if head[i] == _MISSING_LEN
            else (True, _unpack(base + head[i], head[n + i]))
            for i in range(n)
        ]
        return [(hit, self._decode(data) if hit else None) for hit, data in stored]

    def _remaining_ttl(self, key: bytes) -> Tuple[bool, Optional[int]]:
        result = lib.afcpy_remaining_ttl(self._ptr, key, len(key))
        code = result.code
        self._settle(code)
        if code & 0xFFFFFFFF == _NOT_FOUND:
            return False, None
        left = int(result.value)
        return True, None if left == _NO_TTL else left

    # ----- writes ------------------------------------------------------------------------------

    def _put(self, key: bytes, value: Any, ttl: Optional[float]) -> None:
        stored, weight, ttl_nanos = self._admit(key, value, ttl)
        if self._is_object:
            handle = next(_handles)
            objects = self._objects
            objects[handle] = stored
            code = _put_handle(self._ptr, key, len(key), handle, weight, ttl_nanos)
            if code & _ERR:
                objects.pop(handle, None)  # a refused put did not take its handle
        else:
            code = _put(self._ptr, key, len(key), stored, len(stored), ttl_nanos)
        if code:
            self._settle(code)

    def _put_many(self, items: List[Tuple[bytes, Any]], ttl: Optional[float]) -> None:
        admitted = [(key, self._admit(key, value, ttl)) for key, value in items]
        n = len(admitted)
        keys = b"".join(key for key, _ in admitted)
        key_lens = ffi.new("size_t[]", [len(key) for key, _ in admitted])
        ttl_nanos = 0 if ttl is None else seconds_to_nanos(ttl, "ttl")
        if self._is_object:
            handles = [next(_handles) for _ in range(n)]
            objects = self._objects
            for handle, (_, (stored, _w, _t)) in zip(handles, admitted):
                objects[handle] = stored
            code = lib.afcpy_put_many_handles(
                self._ptr,
                keys,
                key_lens,
                ffi.new("uint64_t[]", handles),
                ffi.new("uint64_t[]", [weight for _, (_s, weight, _t) in admitted]),
                n,
                ttl_nanos,
            )
            if code & _ERR:
                for handle in handles:
                    objects.pop(handle, None)
        else:
            values = [stored for _, (stored, _w, _t) in admitted]
            code = lib.afcpy_put_many(
                self._ptr,
                keys,
                key_lens,
                b"".join(values),
                ffi.new("size_t[]", [len(v) for v in values]),
                n,
                ttl_nanos,
            )
        if code:
            self._settle(code)

    def _remove(self, key: bytes) -> Tuple[bool, Any]:
        result = lib.afcpy_remove(self._ptr, key, len(key))
        code = result.code
        if code & _ERR:
            self._settle(code)
        found = code & 0xFFFFFFFF != _NOT_FOUND
        removed = self._collect() if code & _REL else []
        value: Any = None
        if found:
            if self._is_object:
                for k, stored, cause in removed:
                    if k == key and CAUSES[cause] == "removed":
                        value = stored
            else:
                value = self._decode(_unpack(result.data, result.size))
        self._notify(removed)
        return found, value

    def clear(self) -> None:
        """Removes every entry (``on_evict`` hears them as cleared, or expired)."""
        code = lib.afcpy_clear(self._ptr)
        if code:
            self._settle(code)

    def expire(self) -> List[bytes]:
        """Reclaims every expired entry now; returns their keys, most recently used first."""
        result = lib.afcpy_expire_keys(self._ptr)
        self._settle(result.code)
        return [key for key, _, _ in self._parse(result)]

    def resize(self, max_entries: int) -> None:
        """Changes the entry bound, evicting least recently used entries beyond it."""
        check_int(max_entries, "max_entries", 1, 2**32 - 2)
        self._settle(lib.afcpy_resize(self._ptr, max_entries))
        self._max_entries = max_entries

    def set_max_bytes(self, max_bytes: int) -> None:
        """Changes the byte bound (the cache must have been built with one)."""
        check_int(max_bytes, "max_bytes", 1, 2**64 - 1)
        if self._max_bytes is None:
            raise ValueError("this cache was built without max_bytes: there is no bound to change")
        self._settle(lib.afcpy_set_max_bytes(self._ptr, max_bytes))
        self._max_bytes = max_bytes

    # ----- whole-cache views -------------------------------------------------------------------

    def _parse(self, result: Any) -> List[Tuple[bytes, bytes, int]]:
        """The entries an iterator was drained into: (key, value bytes, ttl_ns)."""
        data = ffi.buffer(result.data, result.size)[:] if result.size else b""
        entries = []
        at = 0
        for _ in range(int(result.value)):
            key_len, value_len, ttl = _ENTRY.unpack_from(data, at)
            at += 24
            entries.append(
                (data[at : at + key_len], data[at + key_len : at + key_len + value_len], ttl)
            )
            at += key_len + value_len
        return entries

    def _snapshot(self) -> List[Tuple[bytes, Any, Optional[int]]]:
        result = lib.afcpy_snapshot(self._ptr)
        self._settle(result.code)
        entries = self._parse(result)
        live: List[Tuple[bytes, Any, Optional[int]]] = []
        for key, raw, ttl in entries:
            left = None if ttl == _NO_TTL else ttl
            if self._is_object:
                value = self._objects.get(int.from_bytes(raw, "little"), _MISSING)
                if value is not _MISSING:
                    live.append((key, value, left))
            else:
                live.append((key, self._decode(raw), left))
        return live

    def __len__(self) -> int:
        result = lib.afcpy_len(self._ptr)
        if result.code:
            self._settle(result.code)
        return int(result.value)

    @property
    def weight(self) -> int:
        """The total weight of the live entries."""
        result = lib.afcpy_weight(self._ptr)
        if result.code:
            self._settle(result.code)
        return int(result.value)

    def stats(self) -> Stats:
        """The statistics (expired entries are reclaimed first)."""
        out = ffi.new("afc_stats *")
        self._settle(lib.afcpy_stats(self._ptr, out))
        s = out[0]
        return Stats(
            s.hits,
            s.misses,
            s.inserts,
            s.updates,
            s.evictions,
            s.expirations,
            s.removals,
            s.entries,
            s.weight,
        )

    def reset_stats(self) -> None:
        """Sets every counter back to zero."""
        self._settle(lib.afcpy_reset_stats(self._ptr))

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
        self._closed = True
        lib.afcpy_close(self._ptr)  # waits for calls in flight, then frees the engine's cache
        removed = self._collect()
        self._objects.clear()  # every handle was released above; nothing may stay referenced
        self._notify(removed)

"""``PackedCache`` on the Rust engine: a byte cache of the engine, called without a lock.

The engine is thread-safe, so no Python lock guards it; cffi releases the GIL for every call,
so a batch (``get_many``, ``put_many``) runs in parallel with other threads' batches. A closed
cache lets go of its pointer; the engine's cache is freed when the last call that still holds
the pointer returns (``ffi.gc``), so a call racing ``close`` never touches freed memory.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Optional, Tuple

from . import _snapshot_format as _fmt
from ._alphaforge_cache_cffi import ffi, lib  # type: ignore[import-not-found,unused-ignore]
from ._common import (
    CacheClosedError,
    Settings,
    SnapshotInfo,
    SnapshotPath,
    Stats,
    key_bytes,
    snapshot_path,
)
from ._native import _check, _error, _NativeClock, from_struct
from ._packed import MISSING, HitParts, Packed, PackedHits, _given
from ._packed_cache import PackedCacheBase, check_packed, ttl_nanos
from ._shared import _SnapshotCodec
from ._snapshot_format import SnapshotFileError

_NULL = ffi.NULL
_SIZE_T_IS_Q = ffi.sizeof("size_t") == 8
#: Output buffers are not zeroed: the engine writes every byte that is read.
_new_raw = ffi.new_allocator(should_clear_after_alloc=False)
#: The most a get_many reserves for values up front (more only if the hits need it).
_RESERVE_LIMIT = 1 << 24
_NOT_FOUND: int = lib.AFC_NOT_FOUND
_TOO_SMALL: int = lib.AFC_BUFFER_TOO_SMALL


def _lengths_ptr(lengths: Any) -> Any:
    """A ``size_t *`` over a ``Packed``'s lengths (an ``array('Q')`` or a view of one)."""
    if _SIZE_T_IS_Q:
        return ffi.from_buffer("size_t[]", lengths)
    return ffi.new("size_t[]", list(lengths))  # pragma: no cover - 32-bit platforms


def _pointers(packed: Packed) -> Any:
    """``(char *data, size_t *lengths, total bytes)`` of a ``Packed``, made once and kept with
    it (its buffers cannot change); ``bytes`` data passes as it is."""
    pointers = packed._native
    if pointers is None:
        if packed._source is _missing_parts:  # another get_many's missed keys, in its block
            block, n, cap, missed = packed._args
            keys = ffi.cast("char *", block + 4 * n + 4) + cap
            pointers = packed._native = (keys, block + 2 * n, block[4 * n + 1])
            return pointers
        data, lengths = packed._data, packed._lengths
        pointers = packed._native = (
            data if type(data) is bytes else ffi.from_buffer(data),
            _lengths_ptr(lengths),
            packed.nbytes,
        )
    return pointers


def _bytes_of(value: Any, name: str) -> Tuple[Any, int]:
    """A bytes-like value as cffi passes it, and its length in bytes."""
    if type(value) is bytes:
        return value, len(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ffi.from_buffer(value), memoryview(value).nbytes
    raise TypeError(f"{name} must be bytes-like, not {type(value).__name__}")


def _words(block: Any) -> memoryview:
    return memoryview(ffi.buffer(block)).cast("Q").toreadonly()


def _missing_parts(block: Any, n: int, cap: int, missed: int) -> Tuple[Any, Any]:
    """The ``(data, lengths)`` of the keys a get_many missed, as views into its block (the
    block, whose layout afcpk_get_many describes, is what the native backend passes)."""
    words = _words(block)
    start = (4 * n + 4) * 8 + cap
    data = memoryview(ffi.buffer(block))[start : start + block[4 * n + 1]].toreadonly()
    return data, words[2 * n : 2 * n + missed]


def _hit_parts(block: Any, n: int, cap: int, missed: int) -> HitParts:
    """A get_many's values, offsets, lengths and missing_at, as views into its block."""
    words = _words(block)
    start = (4 * n + 4) * 8
    values = memoryview(ffi.buffer(block))[start : start + cap].toreadonly()
    return values, words[:n], words[n : 2 * n], words[3 * n : 3 * n + missed]


#: The value encoding of a bytes snapshot (``afc_value_encoding``).
_BYTES_ENCODING = 0


def _path_bytes(name: str) -> bytes:
    """A path as the engine takes it (NUL-terminated by cffi); a NUL inside is refused."""
    raw = os.fsencode(name)
    if b"\0" in raw:
        raise ValueError(f"a snapshot path must not contain NUL: {name!r}")
    return raw


def _snapshot_error(status: int, name: str, *, writing: bool) -> Exception:
    """The error of a failed save or load, as the pure-Python backend raises it: the file is
    read again by the Python format reader, whose error says what is wrong and where (and, for
    an io error, carries the ``OSError`` as its ``__cause__``)."""
    message = ffi.string(lib.afc_last_error()).decode("utf-8", "replace")
    # The engine's message names the file as SnapshotFileError does: once is enough.
    detail = (
        message[len(f"snapshot {name}: ") :]
        if message.startswith(f"snapshot {name}: ")
        else message
    )
    if status == lib.AFC_SNAPSHOT_MISMATCH:
        try:  # in the words of a bytes Cache's load (and the fallback PackedCache's)
            with _fmt.opened(name) as reader:
                found = reader.header.encoding_name
            detail = f"its values are encoded as {found}; {_SnapshotCodec('bytes', None).expected}"
        except SnapshotFileError:
            pass  # the file changed since: the engine's words
        return SnapshotFileError("encoding_mismatch", detail, path=name)
    if not writing and status in (
        lib.AFC_IO_ERROR,
        lib.AFC_SNAPSHOT_INVALID,
        lib.AFC_SNAPSHOT_UNSUPPORTED,
    ):
        try:
            _fmt.verify(name)
        except SnapshotFileError as error:
            if (error.kind == "io") == (status == lib.AFC_IO_ERROR):
                return error
    if status == lib.AFC_IO_ERROR:
        return _io_error_from_engine(detail, name)
    if not writing and status in (lib.AFC_SNAPSHOT_INVALID, lib.AFC_SNAPSHOT_UNSUPPORTED):
        kind = "unsupported" if status == lib.AFC_SNAPSHOT_UNSUPPORTED else "corrupt"
        return SnapshotFileError(kind, detail, path=name)
    return _error(status)


#: The operating system's error number at the end of the engine's io messages (Rust's form).
_OS_ERROR = re.compile(r"\(os error (\d+)\)$")


def _io_error_from_engine(detail: str, name: str) -> SnapshotFileError:
    """An io error the engine reported (a save, or a load the Python reader then got through):
    its message, and as its ``__cause__`` the ``OSError`` of the error number it names."""
    error = SnapshotFileError("io", detail, path=name)
    number = _OS_ERROR.search(detail)
    if number is not None:
        errno = int(number.group(1))
        error.__cause__ = OSError(errno, os.strerror(errno), name)
    return error


class PackedCache(PackedCacheBase):
    """The native ``PackedCache``: see ``alphaforge_cache.PackedCache``."""

    backend = "native"

    def _open(self, settings: Settings, ttl: Optional[float], shards: Optional[int]) -> None:
        # The native clock must outlive the cache that reads it.
        timer = settings.timer
        self._clock = None if timer is None else timer._attach(_NativeClock)
        out = ffi.new("afc_cache **")
        _check(
            lib.afcpk_open(
                settings.max_entries,
                settings.max_bytes or 0,
                settings.ttl_nanos or 0,
                shards or 0,  # 0: the engine's default count for the size
                _NULL if self._clock is None else self._clock.ptr,  # type: ignore[attr-defined]
                out,
            )
        )
        self._ptr: Any = ffi.gc(out[0], lib.afc_cache_free)
        # The longest value stored so far: get_many reserves that much per key.
        self._widest = 0

    def _cache(self) -> Any:
        ptr = self._ptr
        if ptr is None:
            raise CacheClosedError("the cache is closed")
        return ptr

    # ----- batches -----------------------------------------------------------------------------

    def get_many(self, keys: Packed) -> PackedHits:
        cache = self._cache()
        if type(keys) is not Packed:
            check_packed(keys, "keys")
        n = keys._n
        key_data, key_lens, key_total = _pointers(keys)
        cap = min(n * self._widest, _RESERVE_LIMIT)
        # One block (see afcpk_get_many): five arrays of words, the values, the missed keys.
        block = _new_raw("size_t[]", 4 * n + 4 + (cap + key_total + 7) // 8)
        _check(lib.afcpk_get_many(cache, key_data, key_lens, n, cap, block))
        missed = block[4 * n]
        missing = Packed._lazy(missed, _missing_parts, (block, n, cap, missed))
        hits = PackedHits(n, missing, _hit_parts, (block, n, cap, missed))
        if block[4 * n + 3]:  # values longer than any stored before: read them again
            return self._refetch_unfit(cache, keys, hits)
        return hits

    def _refetch_unfit(self, cache: Any, keys: Packed, hits: PackedHits) -> PackedHits:
        """``hits`` with the values that did not fit in the first buffer, peeked one by one
        (their gets were counted). One that another thread removed meanwhile reads as a miss."""
        values = bytearray(hits.values)
        offsets, lengths = list(hits.offsets), list(hits.lengths)
        for i, (offset, length) in enumerate(zip(offsets, lengths)):
            if offset == MISSING and length != MISSING:
                value = self._read(cache, keys[i], 0)
                if value is None:
                    offsets[i] = lengths[i] = MISSING
                else:
                    offsets[i], lengths[i] = len(values), len(value)
                    values += value
        at = [i for i, offset in enumerate(offsets) if offset == MISSING]
        missing = Packed.of(keys[i] for i in at)
        parts = (bytes(values), offsets, lengths, at)
        return PackedHits(len(keys), missing, _given, parts)

    def put_many(self, keys: Packed, values: Packed, ttl: Optional[float] = None) -> None:
        cache = self._cache()
        if type(keys) is not Packed or type(values) is not Packed:
            check_packed(keys, "keys")
            check_packed(values, "values")
        n = keys._n
        if values._n != n:
            raise ValueError(f"{n} keys but {len(values)} values")
        widest = ffi.new("size_t *")
        key_data, key_lens, _ = _pointers(keys)
        value_data, value_lens, _ = _pointers(values)
        _check(
            lib.afcpk_put_many(
                cache, key_data, key_lens, value_data, value_lens, n, ttl_nanos(ttl), widest
            )
        )
        if widest[0] > self._widest:
            self._widest = widest[0]

    # ----- one key -----------------------------------------------------------------------------

    def _read(self, cache: Any, key: bytes, touch: int) -> Optional[bytes]:
        size = max(self._widest, 64)
        while True:
            buf = _new_raw("char[]", size)
            length = ffi.new("size_t *")
            status = lib.afcpk_get(cache, key, len(key), touch, buf, size, length)
            if status == _NOT_FOUND:
                return None
            if status == _TOO_SMALL:  # counted already: read it again without counting
                touch, size = 0, length[0]
                continue
            _check(status)
            if length[0] > self._widest:
                self._widest = length[0]
            return ffi.unpack(buf, length[0])  # type: ignore[no-any-return]

    def get(self, key: Any) -> Optional[bytes]:
        return self._read(self._cache(), key_bytes(key), 1)

    def peek(self, key: Any) -> Optional[bytes]:
        return self._read(self._cache(), key_bytes(key), 0)

    def put(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        cache = self._cache()
        raw = key_bytes(key)
        data, size = _bytes_of(value, "value")
        _check(lib.afcpk_put(cache, raw, len(raw), data, size, ttl_nanos(ttl)))
        if size > self._widest:
            self._widest = size

    def remove(self, key: Any) -> bool:
        raw = key_bytes(key)
        status = lib.afcpk_remove(self._cache(), raw, len(raw))
        if status == _NOT_FOUND:
            return False
        _check(status)
        return True

    # ----- snapshots ---------------------------------------------------------------------------

    def save(self, path: SnapshotPath) -> SnapshotInfo:
        return self._snapshot(lib.afc_cache_save, path, writing=True)

    def load(self, path: SnapshotPath) -> SnapshotInfo:
        return self._snapshot(lib.afc_cache_load, path, writing=False)

    def _snapshot(
        self, call: Callable[..., int], path: SnapshotPath, *, writing: bool
    ) -> SnapshotInfo:
        """``afc_cache_save`` or ``afc_cache_load`` (bytes encoding) of ``path``."""
        name = snapshot_path(path)
        info = ffi.new("afc_snapshot_info *")
        status = call(self._cache(), _path_bytes(name), _BYTES_ENCODING, info)
        if status:
            raise _snapshot_error(status, name, writing=writing)
        return from_struct(SnapshotInfo, info[0])

    # ----- the whole cache ---------------------------------------------------------------------

    def __len__(self) -> int:
        out = ffi.new("size_t *")
        _check(lib.afc_cache_len(self._cache(), out))
        return int(out[0])

    @property
    def weight(self) -> int:
        out = ffi.new("uint64_t *")
        _check(lib.afc_cache_weight(self._cache(), out))
        return int(out[0])

    def stats(self) -> Stats:
        out = ffi.new("afc_stats *")
        _check(lib.afc_cache_stats(self._cache(), out))
        return from_struct(Stats, out[0])

    def reset_stats(self) -> None:
        _check(lib.afc_cache_reset_stats(self._cache()))

    def clear(self) -> None:
        _check(lib.afc_cache_clear(self._cache()))

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.afc_cache_clear(ptr)  # the memory goes now; the cache itself with the last call

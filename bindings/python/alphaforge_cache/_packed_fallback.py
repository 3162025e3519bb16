"""``PackedCache`` in pure Python: the fallback ``Cache`` in bytes mode, fed and read in packed
form. One exact LRU whatever the shard count, as the fallback ``Cache`` is."""

from __future__ import annotations

from array import array
from typing import Any, List, Optional

from ._common import Settings, SnapshotInfo, SnapshotPath, Stats, key_bytes
from ._fallback import Cache
from ._packed import MISSING, Packed, PackedHits, _given
from ._packed_cache import PackedCacheBase, check_packed, ttl_nanos


class PackedCache(PackedCacheBase):
    """The pure-Python ``PackedCache``: see ``alphaforge_cache.PackedCache``."""

    backend = "python"

    def _open(self, settings: Settings, ttl: Optional[float], shards: Optional[int]) -> None:
        self._cache = Cache(
            settings.max_entries,
            max_bytes=settings.max_bytes,
            ttl=ttl,
            shards=settings.shards,
            timer=settings.timer,
        )

    def get_many(self, keys: Packed) -> PackedHits:
        check_packed(keys, "keys")
        found: List[Optional[bytes]] = self._cache.get_many(list(keys))
        offsets, lengths = array("Q"), array("Q")
        missing: List[bytes] = []
        missing_at = array("Q")
        at = 0
        for i, (key, value) in enumerate(zip(keys, found)):
            if value is None:
                offsets.append(MISSING)
                lengths.append(MISSING)
                missing.append(key)
                missing_at.append(i)
            else:
                offsets.append(at)
                lengths.append(len(value))
                at += len(value)
        values = b"".join(value for value in found if value is not None)
        parts = (values, offsets, lengths, missing_at)
        return PackedHits(len(found), Packed.of(missing), _given, parts)

    def put_many(self, keys: Packed, values: Packed, ttl: Optional[float] = None) -> None:
        check_packed(keys, "keys")
        check_packed(values, "values")
        if len(values) != len(keys):
            raise ValueError(f"{len(keys)} keys but {len(values)} values")
        ttl_nanos(ttl)  # checked even for an empty batch, as the engine does
        self._cache.put_many(list(zip(keys, values)), ttl)

    def get(self, key: Any) -> Optional[bytes]:
        value: Optional[bytes] = self._cache.get(key_bytes(key))
        return value

    def peek(self, key: Any) -> Optional[bytes]:
        value: Optional[bytes] = self._cache.peek(key_bytes(key))
        return value

    def put(self, key: Any, value: Any, ttl: Optional[float] = None) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"value must be bytes-like, not {type(value).__name__}")
        self._cache.put(key_bytes(key), bytes(value), ttl)

    def remove(self, key: Any) -> bool:
        return self._cache.pop(key_bytes(key), None) is not None

    def save(self, path: SnapshotPath) -> SnapshotInfo:
        return self._cache.save(path)

    def load(self, path: SnapshotPath) -> SnapshotInfo:
        return self._cache.load(path)

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def weight(self) -> int:
        return self._cache.weight

    def stats(self) -> Stats:
        return self._cache.stats()

    def reset_stats(self) -> None:
        self._cache.reset_stats()

    def clear(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        self._cache.close()

"""alphaforge_cache: a fast, thread-safe LRU/TTL cache with a Rust engine.

``Cache`` is the Rust engine through a cffi extension when it is installed (``BACKEND ==
"native"``), else a pure-Python implementation with identical behaviour (``BACKEND ==
"python"``). Set ``ALPHAFORGE_CACHE_BACKEND=python`` or ``=native`` to force one; forcing
``native`` where it is not installed raises ``ImportError``. ``PackedCache`` (batches as packed
buffers, run without the GIL: the throughput API for many threads) follows the same choice.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Type

from ._common import (
    CAUSES,
    MODES,
    CacheClosedError,
    CacheError,
    Codec,
    EntryTooHeavyError,
    ManualClock,
    SnapshotError,
    SnapshotInfo,
    Stats,
)
from ._decorator import CachedFunction, CacheInfo, cached
from ._fallback import Cache as PythonCache
from ._packed import MISSING, Packed, PackedHits
from ._packed_fallback import PackedCache as PythonPackedCache
from ._snapshot_format import SnapshotFileError

__all__ = [
    "BACKEND",
    "CAUSES",
    "MODES",
    "Cache",
    "CacheClosedError",
    "CacheError",
    "CacheInfo",
    "CachedFunction",
    "Codec",
    "EntryTooHeavyError",
    "MISSING",
    "ManualClock",
    "NativeCache",
    "NativePackedCache",
    "Packed",
    "PackedCache",
    "PackedHits",
    "PythonCache",
    "PythonPackedCache",
    "SnapshotError",
    "SnapshotFileError",
    "SnapshotInfo",
    "Stats",
    "__version__",
    "cached",
]

__version__ = "0.1.0"

_POLICY = os.environ.get("ALPHAFORGE_CACHE_BACKEND", "").strip().lower()
if _POLICY not in ("", "native", "python"):
    raise ImportError(f"ALPHAFORGE_CACHE_BACKEND must be 'native' or 'python', not {_POLICY!r}")

if TYPE_CHECKING:
    from ._native import Cache as _NativeCacheType
    from ._packed_native import PackedCache as _NativePackedCacheType

#: The native backend's classes, or None when the extension is not built.
NativeCache: "Optional[Type[_NativeCacheType]]" = None
NativePackedCache: "Optional[Type[_NativePackedCacheType]]" = None
_native_error: "Exception | None" = None
if _POLICY != "python":
    try:
        from ._native import Cache as NativeCache
        from ._packed_native import PackedCache as NativePackedCache
    except ImportError as error:  # the extension was not built (no Rust toolchain at install)
        _native_error = error
        if _POLICY == "native":
            raise ImportError(
                "ALPHAFORGE_CACHE_BACKEND=native, but the native backend is not installed "
                f"({error}); reinstall with a Rust toolchain, or use the pure-Python backend"
            ) from error

if TYPE_CHECKING:
    from ._fallback import Cache as Cache
    from ._packed_fallback import PackedCache as PackedCache
elif NativeCache is not None:
    Cache, PackedCache = NativeCache, NativePackedCache
else:
    Cache, PackedCache = PythonCache, PythonPackedCache

#: Which backend ``Cache`` is: ``"native"`` or ``"python"``.
BACKEND: str = Cache.backend

# Drop-in replacements for cachetools' and functools' caches (alphaforge_cache.compat).
from . import compat  # noqa: E402

__all__ += ["compat"]

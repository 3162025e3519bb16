"""The backends under test, shared by conftest.py and the test modules that build their own
parametrisation (the hypothesis state machines)."""

from __future__ import annotations

import os
from typing import Any, Callable, List, Tuple

import alphaforge_cache

#: ``(id, Cache class)`` for every backend importable here: always the pure-Python one, and the
#: native one whenever it was built (``alphaforge_cache.NativeCache`` is not None).
BACKENDS: List[Tuple[str, Any]] = [("python", alphaforge_cache.PythonCache)]
if alphaforge_cache.NativeCache is not None:
    BACKENDS.append(("native", alphaforge_cache.NativeCache))
    from alphaforge_cache import _native, _shared

    if _native._Reader is not None:

        class NativePythonReads(alphaforge_cache.NativeCache):  # type: ignore[misc,name-defined]
            """The native backend with its read path in Python (as on PyPy): overriding ``get``
            keeps the C read path (``_reads``) out, so the suite covers both paths. (The
            override must be a function of its own: ``get = CacheBase.get`` would be the very
            function ``NativeCache.get`` inherits, and the C path would stay in use.)"""

            def get(self, key: Any, default: Any = None) -> Any:
                return _shared.CacheBase.get(self, key, default)

        BACKENDS.append(("native-pyreads", NativePythonReads))

#: ``AFC_TEST_BACKENDS=native`` (ids separated by commas) runs only the backends named, as the
#: sanitizer run does (``scripts/python-asan-tests``). Naming one that is not here is an error: a
#: typo must not leave a run testing nothing.
_ONLY = [name for name in os.environ.get("AFC_TEST_BACKENDS", "").split(",") if name]
if _ONLY:
    _missing = sorted(set(_ONLY) - {name for name, _ in BACKENDS})
    if _missing:
        raise RuntimeError(
            f"AFC_TEST_BACKENDS names {', '.join(_missing)}, not among the backends built here:"
            f" {', '.join(name for name, _ in BACKENDS)}"
        )
    BACKENDS = [(name, cls) for name, cls in BACKENDS if name in _ONLY]

BACKEND_IDS = [name for name, _ in BACKENDS]
BACKEND_CLASSES = [cls for _, cls in BACKENDS]

NATIVE_REQUIRED = os.environ.get("ALPHAFORGE_CACHE_REQUIRE_NATIVE", "") == "1"


class Recorder:
    """An ``on_evict`` listener that records ``(key, value, cause)`` in order."""

    def __init__(self) -> None:
        self.calls: List[Tuple[bytes, Any, str]] = []

    def __call__(self, key: bytes, value: Any, cause: str) -> None:
        self.calls.append((key, value, cause))

    def causes(self) -> List[str]:
        return [cause for _, _, cause in self.calls]

    def keys(self, cause: "str | None" = None) -> List[bytes]:
        return [k for k, _, c in self.calls if cause is None or c == cause]

    def take(self) -> List[Tuple[bytes, Any, str]]:
        calls, self.calls = self.calls, []
        return calls


def package_root() -> str:
    """The folder holding the ``alphaforge_cache`` package the tests imported (for subprocesses)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(alphaforge_cache.__file__)))


Factory = Callable[..., Any]

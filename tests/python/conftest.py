"""Fixtures of the Python conformance suite: every test taking ``backend`` or ``make_cache`` runs
once per available backend ("python" always, "native" when the extension is built)."""

from __future__ import annotations

import faulthandler
import gc
import os
import sys
from typing import Any, Generator, Iterator, List

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _backends import BACKEND_CLASSES, BACKEND_IDS, Recorder  # noqa: E402

import alphaforge_cache  # noqa: E402

#: How long one test may run before the run is taken for hung: the tracebacks of every thread
#: are written to the terminal's stderr and the process exits (a C watchdog thread does it, so it
#: works while the GIL is held by a deadlocked thread). Without it, a deadlock would stall CI
#: until its time limit, with nothing to say where. ``AFC_TEST_HANG_SECONDS`` changes it.
HANG_SECONDS = float(os.environ.get("AFC_TEST_HANG_SECONDS", "600"))


def pytest_configure(config: Any) -> None:
    # Output capture is suspended while plugins are configured: this is the terminal's stderr.
    config.afc_hang_report_fd = os.dup(sys.stderr.fileno())


def pytest_unconfigure(config: Any) -> None:
    fd = getattr(config, "afc_hang_report_fd", None)
    if fd is not None:
        os.close(fd)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Generator[None, None, None]:
    """Arms the hang watchdog (``HANG_SECONDS``) around each test: setup, call and teardown."""
    fd = item.config.afc_hang_report_fd
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True, file=fd)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_report_header(config: Any) -> str:
    return (
        f"alphaforge_cache {alphaforge_cache.__version__} from {alphaforge_cache.__file__}; "
        f"backends under test: {', '.join(BACKEND_IDS)}; default BACKEND={alphaforge_cache.BACKEND}"
    )


@pytest.fixture(params=BACKEND_CLASSES, ids=BACKEND_IDS)
def backend(request: Any) -> Any:
    """The ``Cache`` class of one backend."""
    return request.param


@pytest.fixture
def make_cache(backend: Any) -> Iterator[Any]:
    """``make_cache(max_entries=16, **kwargs)`` builds a cache of the backend under test, with
    ``shards=1`` unless told otherwise (exact global LRU order), and closes it after the test."""
    made: List[Any] = []

    def make(max_entries: int = 16, **kwargs: Any) -> Any:
        kwargs.setdefault("shards", 1)
        cache = backend(max_entries, **kwargs)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        try:
            cache.close()
        except Exception:  # noqa: BLE001 - a test's listener may raise on close
            pass


@pytest.fixture
def clock() -> Any:
    """A manual clock at 0 seconds."""
    return alphaforge_cache.ManualClock()


@pytest.fixture
def recorder() -> Recorder:
    """An ``on_evict`` listener recording every call."""
    return Recorder()


@pytest.fixture
def without_gc() -> Iterator[None]:
    """The cyclic garbage collector off, for a test that recurses to the recursion limit.

    Before CPython 3.11, a ``RecursionError`` raised and swallowed at that depth in a
    collection's callback (hypothesis installs one) or in a finalizer leaves the interpreter
    flagged as overflowing, and no ``RecursionError`` is raised again until 50 frames later:
    "Fatal Python error: Cannot recover from stack overflow" (seen on 3.8, once a collection
    happened to start at the deepest frame of test_decorator's frame-cost test)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

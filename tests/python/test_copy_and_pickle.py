"""``copy.copy``, ``copy.deepcopy`` and pickling of a cache fail at once, with one clear
``TypeError`` on every backend, and leave the cache as it was (docs/python-api.md, "Copies").
A shallow copy used to share the engine, lock and read buffer with its original while keeping
counters of its own: each then served or reported another's entries, differently per backend."""

from __future__ import annotations

import copy
import pickle
from typing import Any, Callable, List

import pytest

import alphaforge_cache

PACKED: List[Any] = [alphaforge_cache.PythonPackedCache]
PACKED_IDS = ["python"]
if alphaforge_cache.NativePackedCache is not None:
    PACKED.append(alphaforge_cache.NativePackedCache)
    PACKED_IDS.append("native")

COPIES: List[Callable[[Any], Any]] = [copy.copy, copy.deepcopy] + [
    (lambda c, p=p: pickle.dumps(c, protocol=p)) for p in range(pickle.HIGHEST_PROTOCOL + 1)
]
COPY_IDS = ["copy", "deepcopy"] + [f"pickle{p}" for p in range(pickle.HIGHEST_PROTOCOL + 1)]

CACHE_MESSAGE = (
    "alphaforge_cache.Cache objects cannot be copied or pickled (each owns its engine, lock and "
    "entries): use save()/load() for a copy on disk, or build a new cache and "
    "put_many(cache.items())"
)
PACKED_MESSAGE = (
    "alphaforge_cache.PackedCache objects cannot be copied or pickled (each owns its engine, "
    "lock and entries): use save()/load() for a copy on disk, or build a new PackedCache"
)


@pytest.mark.parametrize("mode", ["bytes", "pickle", "object"])
@pytest.mark.parametrize("make_copy", COPIES, ids=COPY_IDS)
def test_a_cache_cannot_be_copied_or_pickled(
    make_cache: Any, recorder: Any, make_copy: Callable[[Any], Any], mode: str
) -> None:
    cache = make_cache(2, mode=mode, on_evict=recorder)
    cache.put(b"a", b"1")
    cache.get(b"a")
    with pytest.raises(TypeError) as raised:
        make_copy(cache)
    assert str(raised.value) == CACHE_MESSAGE
    # Unchanged and still in use.
    cache.put_many([(b"b", b"2"), (b"c", b"3")])
    assert cache.items() == [(b"c", b"3"), (b"b", b"2")]
    assert recorder.take() == [(b"a", b"1", "evicted")]
    entry_weight = {
        "bytes": 2,
        "object": 1,
        "pickle": 1 + len(pickle.dumps(b"2", protocol=pickle.HIGHEST_PROTOCOL)),
    }[mode]
    assert (cache.stats().hits, len(cache), cache.weight) == (1, 2, 2 * entry_weight)


def test_what_the_docs_suggest_instead_copies_the_entries(make_cache: Any) -> None:
    cache = make_cache(4)
    cache.put_many([(b"a", b"1"), (b"b", b"2")])
    twin = make_cache(4)
    twin.put_many(reversed(cache.items()))  # least recently used first: the same order
    assert twin.items() == cache.items()


@pytest.mark.parametrize("make_copy", COPIES, ids=COPY_IDS)
@pytest.mark.parametrize("packed_cache", PACKED, ids=PACKED_IDS)
def test_a_packed_cache_cannot_be_copied_or_pickled(
    packed_cache: Any, make_copy: Callable[[Any], Any]
) -> None:
    cache = packed_cache(4)
    cache.put(b"a", b"1")
    with pytest.raises(TypeError) as raised:
        make_copy(cache)
    assert str(raised.value) == PACKED_MESSAGE
    assert cache.get(b"a") == b"1"
    assert len(cache) == 1
    cache.close()

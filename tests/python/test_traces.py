"""With one shard, both backends are an exact LRU: on real traces (LIRS set, "get, put on miss")
they score exactly the hits of a reference LRU (an OrderedDict with move_to_end)."""

from __future__ import annotations

import gzip
import os
from collections import OrderedDict
from functools import lru_cache
from typing import Any, List, Tuple

import pytest

TRACES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "traces", "lirs"
)

# (trace, capacities, how many requests to replay: the whole trace, or its start for the long ones)
CASES: List[Tuple[str, List[int], int]] = [
    ("cpp", [64, 500], 0),
    ("cs", [100, 1000], 0),
    ("gli", [250, 1500], 0),
    ("ps", [200, 2000], 0),
    ("multi1", [300, 1500], 0),
    ("multi2", [500, 2500], 20_000),
    ("multi3", [500, 3000], 20_000),
    ("zigzag", [100, 1500], 20_000),
    ("loop", [1000, 1011, 1100], 20_000),
    ("sprite", [100, 1000], 20_000),
    ("2_pools", [100, 5000], 20_000),
]


@lru_cache(maxsize=None)
def requests(name: str, limit: int) -> Tuple[bytes, ...]:
    keys = []
    with gzip.open(os.path.join(TRACES, f"{name}.trace.gz"), "rt") as lines:
        for line in lines:
            line = line.strip()
            if not line or line.startswith("*"):
                continue
            keys.append(line.encode())
            if limit and len(keys) == limit:
                break
    return tuple(keys)


def reference_hits(keys: Tuple[bytes, ...], capacity: int) -> Tuple[int, List[bytes]]:
    lru: "OrderedDict[bytes, bytes]" = OrderedDict()
    hits = 0
    for key in keys:
        if key in lru:
            hits += 1
            lru.move_to_end(key)
        else:
            lru[key] = b"v"
            if len(lru) > capacity:
                lru.popitem(last=False)
    return hits, list(reversed(lru))


def test_traces_present() -> None:
    assert len(requests("cpp", 0)) == 9047
    assert len(requests("cs", 0)) == 6781  # '*' lines skipped
    # The reference itself: loop cycles over 1,011 keys, so an LRU below that never hits.
    assert reference_hits(requests("loop", 20_000), 1000)[0] == 0
    assert reference_hits(requests("loop", 20_000), 1011)[0] == 20_000 - 1011


@pytest.mark.parametrize(
    "name, capacity, limit",
    [(name, cap, limit) for name, caps, limit in CASES for cap in caps],
)
def test_trace_hits_equal_reference_lru(backend: Any, name: str, capacity: int, limit: int) -> None:
    keys = requests(name, limit)
    expected_hits, expected_order = reference_hits(keys, capacity)
    cache = backend(capacity, shards=1)
    get, put = cache.get, cache.put
    hits = 0
    for key in keys:
        if get(key) is None:
            put(key, b"v")
        else:
            hits += 1
    assert hits == expected_hits
    s = cache.stats()
    assert (s.hits, s.misses) == (expected_hits, len(keys) - expected_hits)
    assert cache.keys() == expected_order  # the whole recency order, not just the hit count
    cache.close()

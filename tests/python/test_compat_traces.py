"""compat.LRUCache is an exact LRU: on real traces (the LIRS set and the ARC paper's OLTP trace,
"get, store on miss") it scores exactly the hits of a reference LRU (an OrderedDict with
move_to_end) and ends with the same recency order; on OLTP it reproduces the LRU hit ratios the
ARC paper publishes."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import OrderedDict
from functools import lru_cache
from typing import Any, List, Tuple

import pytest
from test_traces import CASES, reference_hits, requests

from alphaforge_cache import compat

ARC = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "traces", "arc"
)


def replay(keys: Any, capacity: int) -> Tuple[int, List[Any]]:
    cache = compat.LRUCache(capacity)
    get = cache.get
    hits = 0
    for key in keys:
        if get(key) is None:
            cache[key] = b"v"
        else:
            hits += 1
    return hits, list(cache._od)


@pytest.mark.parametrize(
    "name, capacity, limit",
    [(name, cap, limit) for name, caps, limit in CASES for cap in caps],
)
def test_lirs_traces_hit_as_a_reference_lru(name: str, capacity: int, limit: int) -> None:
    keys = requests(name, limit)
    expected_hits, expected_mru_first = reference_hits(keys, capacity)
    hits, order = replay(keys, capacity)
    assert hits == expected_hits
    assert order[::-1] == expected_mru_first  # the whole recency order


@lru_cache(maxsize=None)
def oltp() -> Tuple[int, ...]:
    """The OLTP trace as block requests (a line stands for n_blocks consecutive blocks)."""
    path = os.path.join(ARC, "OLTP.lis.zst")
    zstd = shutil.which("zstd")
    if zstd is not None:
        text = subprocess.run([zstd, "-dc", path], check=True, capture_output=True).stdout
    else:
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            pytest.skip("neither the zstd command nor the zstandard module is available")
        with open(path, "rb") as raw:
            text = zstandard.ZstdDecompressor().stream_reader(raw).read()
    keys: List[int] = []
    for line in text.decode().splitlines():
        fields = line.split()
        if len(fields) >= 2:
            start, count = int(fields[0]), int(fields[1])
            keys.extend(range(start, start + count))
    assert len(keys) == 914_145  # the count the ARC paper's Table III gives
    return tuple(keys)


def reference(keys: Tuple[int, ...], capacity: int) -> Tuple[int, List[int]]:
    lru: "OrderedDict[int, bytes]" = OrderedDict()
    hits = 0
    for key in keys:
        if key in lru:
            hits += 1
            lru.move_to_end(key)
        else:
            lru[key] = b"v"
            if len(lru) > capacity:
                lru.popitem(last=False)
    return hits, list(lru)


@pytest.mark.parametrize("capacity, published", [(1000, 32.83), (5000, 53.65)])
def test_arc_oltp_hits_as_a_reference_lru(capacity: int, published: float) -> None:
    keys = oltp()
    expected_hits, expected_order = reference(keys, capacity)
    hits, order = replay(keys, capacity)
    assert hits == expected_hits
    assert order == expected_order
    assert round(100 * hits / len(keys), 2) == published

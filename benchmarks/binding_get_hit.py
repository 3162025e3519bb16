"""Per-call cost of a get hit through the Python package's native backend, on the workload of
benches/c/bench.c (100,000 entries, default shards, 16-byte keys, 64-byte values, the same
SplitMix64 key sets), for the bindings table of docs/benchmarks.md.

    python benchmarks/binding_get_hit.py [gets_per_round]

Prints the median of 7 rounds, net of the same loop without the call (what Python's loop costs).
"""

from __future__ import annotations

import struct
import sys
import time
from typing import List

import alphaforge_cache

MASK = (1 << 64) - 1
CAPACITY = 100_000
ROUNDS = 7


def mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def bench_keys(start: int, end: int, seed: int) -> List[bytes]:
    """The keys of ids start..end of benches/rust/src/lib.rs, shuffled with ``seed``."""
    ids = list(range(start, end))
    state = seed
    for i in range(len(ids) - 1, 0, -1):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        j = mix(state) % (i + 1)
        ids[i], ids[j] = ids[j], ids[i]
    return [struct.pack("<QQ", mix(i ^ 0x5DEECE66D1CE4E5B), i) for i in ids]


def main() -> None:
    gets = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    if alphaforge_cache.NativeCache is None:
        sys.exit("the native backend is not built")
    cache = alphaforge_cache.NativeCache(CAPACITY)
    value = b"\xa5" * 64
    keys = bench_keys(0, CAPACITY, 1)
    for k in keys:
        cache.put(k, value)
    resident = [k for k in keys if k in cache]
    sequence = (resident * (gets // len(resident) + 1))[:gets]
    get = cache.get
    results = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for k in sequence:
            get(k)
        loaded = time.perf_counter_ns() - start
        start = time.perf_counter_ns()
        for _k in sequence:
            pass
        empty = time.perf_counter_ns() - start
        results.append(((loaded - empty) / gets, loaded / gets))
    results.sort()
    net, gross = results[ROUNDS // 2]
    print(
        f"get_hit python native bytes {net:.1f} ns/get net ({gross:.1f} with the loop; "
        f"median of {ROUNDS} rounds of {gets}; {len(resident)} of {CAPACITY} keys resident)"
    )


if __name__ == "__main__":
    main()

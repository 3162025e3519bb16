#!/usr/bin/env python3
"""alphaforge_cache.compat against the libraries it replaces, in one process, over the same keys.

Pairs (ours / theirs):

* ``compat.LRUCache`` / ``cachetools.LRUCache``;
* ``compat.TTLCache`` / ``cachetools.TTLCache`` (ttl 3600 s: nothing expires during the run);
* ``compat.lru_cache`` / ``functools.lru_cache`` (the C implementation), a memoized function of
  the key returning a constant;
* for information: ``compat.ttl_cache`` / ``cachetools.func.ttl_cache``, ``compat.cached`` /
  ``cachetools.cached`` over each one's LRUCache, and an experiment that routes an LRU through
  the native engine (``NativeCache(mode="object")`` keyed by an 8-byte id, with a Python dict
  from key to id): what the compat classes would cost if the engine kept recency and evicted.

Workloads (``--entries`` entries, 16-byte ``bytes`` keys, a 64-byte value):

* ``get hit``: the cache pre-filled, ``get(k)`` over a shuffled cycle of the stored keys (for
  a memoized function: a call of a stored key);
* ``zipf``: Zipf(0.99) over ``--universe`` keys, ``if c.get(k) is None: c[k] = v`` (for a
  memoized function: the call), on a cache of ``--entries`` entries warmed by a first run.

Method: one warm-up run per case, then ``--repeats`` rounds in which every case runs once
(interleaved, so a noisy minute hits every case alike), garbage collector off while timing;
best and median per case. "net" subtracts the empty loop over the same keys; ratios use net
best times. The floors of issue 7 are checked at the end (PASS/FAIL).

    python benchmarks/python_compat.py           # ~2 minutes
    python benchmarks/python_compat.py --quick   # a smoke run
"""

from __future__ import annotations

# ruff: noqa: B023 - the timing closures are called within their loop iteration
import argparse
import functools
import gc
import itertools
import os
import platform
import random
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

perf = time.perf_counter_ns
VALUE = bytes(range(64))
TTL = 3600


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# loops
# ----------------------------------------------------------------------------------------------


def loop_empty(keys: Sequence[bytes]) -> int:
    t0 = perf()
    for _k in keys:
        pass
    return perf() - t0


def loop_call(get: Callable[[bytes], Any], keys: Sequence[bytes]) -> int:
    t0 = perf()
    for k in keys:
        get(k)
    return perf() - t0


def loop_mix(cache: Any, keys: Sequence[bytes]) -> int:
    get = cache.get
    t0 = perf()
    for k in keys:
        if get(k) is None:
            cache[k] = VALUE
    return perf() - t0


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------


class Data:
    def __init__(self, entries: int, ops: int, universe: int, seed: int) -> None:
        self.entries = entries
        rng = random.Random(seed)
        keys = set()
        while len(keys) < universe:
            keys.add(rng.randbytes(16))
        self.universe = list(keys)
        rng.shuffle(self.universe)
        self.stored = self.universe[:entries]
        hits: List[bytes] = []
        while len(hits) < ops:
            chunk = self.stored[:]
            rng.shuffle(chunk)
            hits.extend(chunk)
        self.hits = hits[:ops]
        weights = [1.0 / (rank**0.99) for rank in range(1, universe + 1)]
        cum = list(itertools.accumulate(weights))
        draws = rng.choices(range(universe), cum_weights=cum, k=ops)
        self.zipf = [self.universe[i] for i in draws]


# ----------------------------------------------------------------------------------------------
# the engine-routed experiment
# ----------------------------------------------------------------------------------------------


class EngineRoutedLRU:
    """An LRU whose recency, bound and eviction are the native engine's: Python keys map to
    8-byte engine keys, the engine (``mode="object"``) holds the values. Get and set only, and
    not exact (the engine evicts on its own: no ``popitem`` hook, no cachetools size rules):
    it measures the cost of the route, nothing else."""

    def __init__(self, maxsize: int) -> None:
        import alphaforge_cache as af

        self._ids: Dict[Any, bytes] = {}
        self._keys: Dict[bytes, Any] = {}
        self._next = itertools.count()
        self._engine = af.NativeCache(maxsize, mode="object", on_evict=self._evicted)

    def _evicted(self, engine_key: bytes, value: Any, cause: str) -> None:
        if cause != "replaced":
            key = self._keys.pop(engine_key, None)
            if key is not None:
                self._ids.pop(key, None)

    def get(self, key: Any, default: Any = None) -> Any:
        engine_key = self._ids.get(key)
        if engine_key is None:
            return default
        return self._engine.get(engine_key, default)

    def __setitem__(self, key: Any, value: Any) -> None:
        engine_key = self._ids.get(key)
        if engine_key is None:
            engine_key = next(self._next).to_bytes(8, "little")
            self._ids[key] = engine_key
            self._keys[engine_key] = key
        self._engine.put(engine_key, value)


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------


class Case:
    """One implementation in one workload: ``make()`` builds it, ``run(obj)`` times one pass."""

    def __init__(
        self,
        name: str,
        workload: str,
        make: Callable[[], Any],
        run: Callable[[Any], int],
        fill: Optional[Callable[[Any], None]] = None,
    ) -> None:
        self.name = name
        self.workload = workload
        self.make = make
        self.run = run
        self.fill = fill
        self.samples: List[int] = []


def build_cases(data: Data, missing: Dict[str, str]) -> List[Case]:
    from alphaforge_cache import compat

    n = data.entries
    cases: List[Case] = []

    def fill_mapping(cache: Any) -> None:
        for k in data.stored:
            cache[k] = VALUE

    def fill_memo(f: Any) -> None:
        for k in data.stored:
            f(k)

    def mapping_cases(name: str, make: Callable[[], Any]) -> None:
        cases.append(
            Case(name, "get hit", make, lambda c: loop_call(c.get, data.hits), fill_mapping)
        )
        cases.append(Case(name, "zipf", make, lambda c: loop_mix(c, data.zipf)))

    def memo_cases(name: str, make: Callable[[], Any]) -> None:
        cases.append(Case(name, "get hit", make, lambda f: loop_call(f, data.hits), fill_memo))
        cases.append(Case(name, "zipf", make, lambda f: loop_call(f, data.zipf)))

    def constant(key: bytes) -> bytes:
        return VALUE

    try:
        import cachetools
        import cachetools.func
    except ImportError as error:
        cachetools = None  # type: ignore[assignment]
        missing["cachetools"] = str(error)

    mapping_cases("compat.LRUCache", lambda: compat.LRUCache(n))
    if cachetools is not None:
        mapping_cases("cachetools.LRUCache", lambda: cachetools.LRUCache(n))
    mapping_cases("compat.TTLCache", lambda: compat.TTLCache(n, TTL))
    if cachetools is not None:
        mapping_cases("cachetools.TTLCache", lambda: cachetools.TTLCache(n, TTL))
    memo_cases("compat.lru_cache", lambda: compat.lru_cache(maxsize=n)(constant))
    memo_cases("functools.lru_cache", lambda: functools.lru_cache(maxsize=n)(constant))
    memo_cases("compat.ttl_cache", lambda: compat.ttl_cache(maxsize=n, ttl=TTL)(constant))
    if cachetools is not None:
        memo_cases(
            "cachetools.func.ttl_cache",
            lambda: cachetools.func.ttl_cache(maxsize=n, ttl=TTL)(constant),
        )
        memo_cases("compat.cached(LRUCache)", lambda: compat.cached(compat.LRUCache(n))(constant))
        memo_cases(
            "cachetools.cached(LRUCache)",
            lambda: cachetools.cached(cachetools.LRUCache(n))(constant),
        )
    import alphaforge_cache as af

    if af.NativeCache is not None:
        mapping_cases("experiment: LRU routed through NativeCache", lambda: EngineRoutedLRU(n))
    else:
        missing["alphaforge native"] = "not built: no engine-routed experiment"
    return cases


# ----------------------------------------------------------------------------------------------
# measuring
# ----------------------------------------------------------------------------------------------


def measure(cases: List[Case], data: Data, repeats: int) -> int:
    """Runs every case ``repeats`` times, interleaved; returns the best empty-loop time."""
    objects = []
    for case in cases:
        obj = case.make()
        if case.fill is not None:
            case.fill(obj)
        case.run(obj)  # warm-up (and, for the Zipf mix, the steady state)
        objects.append(obj)
    empty = []
    for round_ in range(repeats):
        log(f"  round {round_ + 1}/{repeats}")
        for case, obj in zip(cases, objects):
            gc.collect()
            gc.disable()
            try:
                case.samples.append(case.run(obj))
            finally:
                gc.enable()
        gc.disable()
        empty.append(loop_empty(data.hits))
        gc.enable()
    return min(empty)


def fmt(x: Optional[float], digits: int = 0) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--ops", type=int, default=300_000)
    ap.add_argument("--universe", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="20k entries, 60k ops, 3 rounds")
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    args = ap.parse_args(argv)
    if args.quick:
        args.entries, args.ops, args.universe, args.repeats = 20_000, 60_000, 200_000, 3

    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    log(f"keys: {args.entries} entries, {args.ops} ops, universe {args.universe}")
    data = Data(args.entries, args.ops, args.universe, args.seed)
    missing: Dict[str, str] = {}
    cases = build_cases(data, missing)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        cases = [c for c in cases if any(w in c.name for w in wanted)]
    empty = measure(cases, data, args.repeats)
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else None

    ops = args.ops
    best: Dict[Tuple[str, str], float] = {}
    median: Dict[Tuple[str, str], float] = {}
    for case in cases:
        best[(case.name, case.workload)] = min(case.samples) / ops
        median[(case.name, case.workload)] = statistics.median(case.samples) / ops
    e = empty / ops

    def net(name: str, workload: str) -> Optional[float]:
        value = best.get((name, workload))
        return None if value is None else value - e

    def ratio(a: str, b: str, workload: str) -> Optional[float]:
        x, y = net(a, workload), net(b, workload)
        return None if x is None or y is None or y <= 0 else x / y

    def load(x: Any) -> str:
        return "?" if x is None else " ".join(f"{v:.2f}" for v in x)

    print("# alphaforge_cache.compat vs cachetools and functools\n")
    print(
        f"- {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs; load average {load(load0)} at the "
        f"start, {load(load1)} at the end"
    )
    print(f"- command: `{' '.join([os.path.basename(sys.executable)] + sys.argv)}`")
    print(
        f"- {args.entries} entries, 16-byte keys, 64-byte value, {ops} ops per run, Zipf(0.99) "
        f"over {args.universe} keys; {args.repeats} interleaved rounds after a warm-up"
    )
    print(f"- empty loop: {e:.1f} ns/op; 'net' = best minus that")
    for name, why in missing.items():
        print(f"- MISSING {name}: {why}")
    print()
    print("| implementation | get hit: best / median | net | zipf: best / median | net |")
    print("|---|---:|---:|---:|---:|")
    names = list(dict.fromkeys(c.name for c in cases))
    for name in names:
        cells = []
        for workload in ("get hit", "zipf"):
            b, m = best.get((name, workload)), median.get((name, workload))
            cells.append("—" if b is None else f"{b:.0f} / {m:.0f}")
            cells.append(fmt(net(name, workload)))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()

    pairs = [
        ("compat.LRUCache", "cachetools.LRUCache", "get hit", 0.5),
        ("compat.LRUCache", "cachetools.LRUCache", "zipf", 0.5),
        ("compat.TTLCache", "cachetools.TTLCache", "get hit", 0.2),
        ("compat.TTLCache", "cachetools.TTLCache", "zipf", 0.2),
        ("compat.lru_cache", "functools.lru_cache", "zipf", 2.0),
        ("compat.lru_cache", "functools.lru_cache", "get hit", None),
        ("compat.ttl_cache", "cachetools.func.ttl_cache", "zipf", None),
        ("compat.cached(LRUCache)", "cachetools.cached(LRUCache)", "get hit", None),
        ("experiment: LRU routed through NativeCache", "compat.LRUCache", "get hit", None),
        ("experiment: LRU routed through NativeCache", "compat.LRUCache", "zipf", None),
    ]
    print("| ours | theirs | workload | net ratio | floor | result |")
    print("|---|---|---|---:|---:|---|")
    for ours, theirs, workload, floor in pairs:
        r = ratio(ours, theirs, workload)
        if r is None and floor is None:
            continue
        verdict = (
            ""
            if floor is None
            else ("MISSING" if r is None else ("PASS" if r <= floor else "FAIL"))
        )
        shown_floor = "report" if floor is None else f"≤ {floor:.2f}x"
        print(f"| {ours} | {theirs} | {workload} | {fmt(r, 2)}x | {shown_floor} | {verdict} |")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

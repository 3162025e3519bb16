#!/usr/bin/env python3
"""alphaforge_cache (Python binding) against the Python caches people actually use.

Every implementation runs in this one process, over the same key sets:

* alphaforge native (``NativeCache``) in ``bytes``, ``object`` and ``pickle`` mode, and the
  pure-Python fallback (``PythonCache``) in ``object`` mode;
* cachetools.LRUCache / TTLCache, cachebox.LRUCache / TTLCache, lru-dict (``lru.LRU``),
  moka-py (``moka_py.Moka``, with and without TTL), ``functools.lru_cache`` (a memoized
  function of the key), and a plain ``dict`` as the reference line.

Workloads (``--entries`` entries, 16-byte keys, 64-byte ``bytes`` values):

* ``get hit``: pre-filled cache, keys cycling through a shuffled list of the stored keys;
* ``get miss``: keys that were never stored;
* ``put+evict``: the cache is full, every put is a new key (so every put evicts);
* ``zipf 1T``: Zipf(0.99) over ``--universe`` keys, ``if get(k) is None: put(k, v)``, one thread
  walking two sequences of ``--ops`` keys one after the other;
* ``zipf 2T``: the same two sequences on 2 threads sharing the cache, one each (total
  throughput, and the ratio against 1 thread: the same operations on the same keys, so the hit
  ratios match);
* alphaforge only: ``get_many`` of 100 keys (ns per key), and the Zipf mix in batches of 100
  (``get_many`` then ``put_many`` of the misses) on 1 and 2 threads; and the same mix through
  ``PackedCache`` (keys packed in one buffer per batch, ``get_many`` then ``put_many`` of the
  packed missing keys: no Python object per key, the batch runs without the GIL), in batches of
  100 and of 1,000, on 1 and 2 threads;
* with a TTL (3600 s, nothing expires): ``get hit``.

Method: ``time.perf_counter_ns`` around a loop of ``--ops`` operations, one warm-up run, then
``--repeats`` timed runs (the garbage collector is off while timing, as in ``timeit``); the
best and the median are printed. The loop overhead (an empty ``for k in keys: pass`` over the
same keys) is measured and subtracted in the "net" columns; every ratio uses net times.

For each Zipf mix the process's CPU time over its wall time (every thread's) is also noted: how
many of the machine's CPUs the run kept busy, alphaforge's engine thread included.

Progress goes to stderr; markdown tables go to stdout. A peer that is not installed is reported
as missing and skipped. ``--quick`` makes a short run (smaller cache, fewer ops and repeats).

    python benchmarks/python_peers.py            # full run (a few minutes)
    python benchmarks/python_peers.py --quick    # a smoke run (seconds)
"""

from __future__ import annotations

# The timing loops bind their callables in closures called within the same loop iteration
# (B023), and iterate only to time the iteration (B007).
# ruff: noqa: B023, B007
import argparse
import functools
import gc
import itertools
import os
import platform
import random
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

perf = time.perf_counter_ns

KEY_LEN = 16
VALUE = bytes(range(64))  # the 64-byte value every cache stores
BATCH = 100
TTL = 3600


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# implementations
# ----------------------------------------------------------------------------------------------


class Impl:
    """One cache under test: how to build it and how to call it."""

    def __init__(
        self,
        name: str,
        make: Callable[[int], Any],
        get: str = "get",
        put: Optional[str] = "put",
        setitem: bool = False,
        memo: bool = False,
        batched: bool = False,
        group: str = "peer",
        needs_lock: bool = False,
    ) -> None:
        self.name = name
        self.make = make  # make(max_entries) -> cache
        self.get = get  # the name of the get method
        self.put = put  # the name of the put method (None: use ``c[k] = v`` when setitem)
        self.setitem = setitem
        self.memo = memo  # functools.lru_cache: a memoized function, not a mapping
        self.batched = batched  # has get_many / put_many (alphaforge)
        self.group = group
        self.needs_lock = needs_lock  # not thread-safe: 2 threads share it behind a Lock


def _memo(max_entries: int) -> Any:
    @functools.lru_cache(maxsize=max_entries)
    def compute(key: bytes) -> bytes:
        return VALUE

    return compute


def packed_caches() -> List[Tuple[str, Callable[[int], Any]]]:
    """The ``PackedCache`` classes to run the packed Zipf mix on (the native one when built)."""
    try:
        import alphaforge_cache as af
    except ImportError:
        return []
    out: List[Tuple[str, Callable[[int], Any]]] = []
    if af.NativePackedCache is not None:
        out.append(("alphaforge native packed", af.NativePackedCache))
    out.append(("alphaforge fallback packed", af.PythonPackedCache))
    return out


def build_impls(missing: Dict[str, str]) -> Tuple[List[Impl], List[Impl]]:
    """The implementations for the main workloads, and those for the TTL workload."""
    main: List[Impl] = []
    ttl: List[Impl] = []

    try:
        import alphaforge_cache as af

        if af.NativeCache is None:
            missing["alphaforge native"] = f"not built ({af._native_error})"
        else:
            for mode in ("bytes", "object", "pickle"):
                main.append(
                    Impl(
                        f"alphaforge native {mode}",
                        functools.partial(af.NativeCache, mode=mode),
                        batched=True,
                        group="alphaforge",
                    )
                )
            for mode in ("object", "bytes"):
                ttl.append(
                    Impl(
                        f"alphaforge native {mode} ttl",
                        functools.partial(af.NativeCache, mode=mode, ttl=TTL),
                        group="alphaforge",
                    )
                )
        main.append(
            Impl(
                "alphaforge fallback object",
                functools.partial(af.PythonCache, mode="object"),
                batched=True,
                group="alphaforge",
            )
        )
    except ImportError as error:
        missing["alphaforge_cache"] = str(error)

    try:
        import cachetools

        main.append(
            Impl(
                "cachetools.LRUCache", cachetools.LRUCache, put=None, setitem=True, needs_lock=True
            )
        )
        ttl.append(
            Impl(
                "cachetools.TTLCache",
                lambda n: cachetools.TTLCache(n, ttl=TTL),
                put=None,
                setitem=True,
            )
        )
    except ImportError as error:
        missing["cachetools"] = str(error)

    try:
        import cachebox

        main.append(Impl("cachebox.LRUCache", cachebox.LRUCache, put=None, setitem=True))
        if hasattr(cachebox, "TTLCache"):
            ttl.append(
                Impl(
                    "cachebox.TTLCache",
                    lambda n: cachebox.TTLCache(n, TTL),
                    put=None,
                    setitem=True,
                )
            )
        else:
            missing["cachebox.TTLCache"] = "not in this cachebox version"
    except ImportError as error:
        missing["cachebox"] = str(error)

    try:
        import lru

        main.append(Impl("lru-dict (lru.LRU)", lru.LRU, put=None, setitem=True))
    except ImportError as error:
        missing["lru-dict"] = str(error)

    try:
        import moka_py

        main.append(Impl("moka-py Moka", moka_py.Moka, put="set"))
        main.append(Impl("moka-py Moka ttl", lambda n: moka_py.Moka(n, ttl=TTL), put="set"))
        ttl.append(Impl("moka-py Moka ttl", lambda n: moka_py.Moka(n, ttl=TTL), put="set"))
    except ImportError as error:
        missing["moka-py"] = str(error)

    main.append(Impl("functools.lru_cache", _memo, memo=True))
    return main, ttl


# ----------------------------------------------------------------------------------------------
# loops (each returns the elapsed nanoseconds of one run)
# ----------------------------------------------------------------------------------------------


def loop_empty(keys: Sequence[bytes]) -> int:
    t0 = perf()
    for k in keys:
        pass
    return perf() - t0


def loop_get(get: Callable[[bytes], Any], keys: Sequence[bytes]) -> int:
    t0 = perf()
    for k in keys:
        get(k)
    return perf() - t0


def loop_put(put: Callable[[bytes, Any], Any], keys: Sequence[bytes], value: Any) -> int:
    t0 = perf()
    for k in keys:
        put(k, value)
    return perf() - t0


def loop_setitem(cache: Any, keys: Sequence[bytes], value: Any) -> int:
    t0 = perf()
    for k in keys:
        cache[k] = value
    return perf() - t0


def loop_mix(
    get: Callable[[bytes], Any], put: Callable[..., Any], keys: Sequence[bytes], value: Any
) -> int:
    t0 = perf()
    for k in keys:
        if get(k) is None:
            put(k, value)
    return perf() - t0


def loop_mix_setitem(
    get: Callable[[bytes], Any], cache: Any, keys: Sequence[bytes], value: Any
) -> int:
    t0 = perf()
    for k in keys:
        if get(k) is None:
            cache[k] = value
    return perf() - t0


def loop_get_many(get_many: Callable[[List[bytes]], Any], batches: Sequence[List[bytes]]) -> int:
    t0 = perf()
    for batch in batches:
        get_many(batch)
    return perf() - t0


def loop_mix_batched(
    get_many: Callable[..., Any],
    put_many: Callable[..., Any],
    batches: Sequence[List[bytes]],
    value: Any,
) -> int:
    t0 = perf()
    for batch in batches:
        found = get_many(batch)
        misses = [(k, value) for k, v in zip(batch, found) if v is None]
        if misses:
            put_many(misses)
    return perf() - t0


def loop_mix_packed(cache: Any, batches: Sequence[Any], values: Sequence[Any]) -> int:
    """The Zipf mix through ``PackedCache``: ``values[k]`` packs ``k`` copies of the value."""
    get_many, put_many = cache.get_many, cache.put_many
    t0 = perf()
    for keys in batches:
        missing = get_many(keys).missing
        if missing:
            put_many(missing, values[len(missing)])
    return perf() - t0


def timed(run: Callable[[], int], repeats: int) -> List[int]:
    """One warm-up run, then ``repeats`` timed runs with the garbage collector off."""
    run()
    out = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            out.append(run())
        finally:
            gc.enable()
    return out


def cpu_noted(run: Callable[[], int], shares: List[float]) -> Callable[[], int]:
    """``run``, also noting in ``shares`` the process's CPU time over the wall time of each call
    (every thread's, the engine's background thread included): how many CPUs the run kept busy.
    """

    def noted() -> int:
        cpu0, wall0 = time.process_time_ns(), perf()
        elapsed = run()
        shares.append((time.process_time_ns() - cpu0) / max(1, perf() - wall0))
        return elapsed

    return noted


def threaded(runs: List[Callable[[], int]]) -> int:
    """Runs each callable on its own thread, all released together; the wall time in ns."""
    barrier = threading.Barrier(len(runs) + 1)
    errors: List[BaseException] = []

    def worker(run: Callable[[], int]) -> None:
        barrier.wait()
        try:
            run()
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(run,)) for run in runs]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = perf()
    for t in threads:
        t.join()
    elapsed = perf() - t0
    if errors:
        raise errors[0]
    return elapsed


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------


class Data:
    def __init__(self, entries: int, ops: int, universe: int, seed: int) -> None:
        rng = random.Random(seed)
        seen = set()

        def fresh(n: int) -> List[bytes]:
            out = []
            while len(out) < n:
                k = rng.randbytes(KEY_LEN)
                if k not in seen:
                    seen.add(k)
                    out.append(k)
            return out

        self.entries = entries
        self.ops = ops
        self.stored = fresh(entries)  # pre-filled keys
        self.absent = fresh(entries)  # never stored
        self.new = fresh(max(2 * entries, ops))  # put+evict: every put is a new key
        self.universe = fresh(universe)

        def cycle(keys: List[bytes], n: int) -> List[bytes]:
            out: List[bytes] = []
            while len(out) < n:
                chunk = keys[:]
                rng.shuffle(chunk)
                out.extend(chunk)
            return out[:n]

        self.hits = cycle(self.stored, ops)
        self.misses = cycle(self.absent, ops)
        self.puts = self.new  # cycled whole: a key comes back only after > entries others
        # Zipf(0.99) ranks over the universe; 2 * ops draws (one slice per thread)
        weights = [1.0 / (rank**0.99) for rank in range(1, universe + 1)]
        cum = list(itertools.accumulate(weights))
        draws = rng.choices(range(universe), cum_weights=cum, k=2 * ops)
        zipf = [self.universe[i] for i in draws]
        self.zipf = [zipf[:ops], zipf[ops:]]
        self.hit_batches = [self.hits[i : i + BATCH] for i in range(0, ops - BATCH + 1, BATCH)]
        self.zipf_batches = [
            [z[i : i + BATCH] for i in range(0, ops - BATCH + 1, BATCH)] for z in self.zipf
        ]


# ----------------------------------------------------------------------------------------------
# measuring
# ----------------------------------------------------------------------------------------------

Result = Tuple[float, float]  # (best, median) ns per op


def per_op(samples: List[int], n: int) -> Result:
    return min(samples) / n, statistics.median(samples) / n


def fill(impl: Impl, cache: Any, keys: Sequence[bytes]) -> None:
    if impl.memo:
        for k in keys:
            cache(k)
    elif impl.setitem:
        for k in keys:
            cache[k] = VALUE
    else:
        put = getattr(cache, impl.put)
        for k in keys:
            put(k, VALUE)


def make_get(impl: Impl, cache: Any) -> Callable[[bytes], Any]:
    return cache if impl.memo else getattr(cache, impl.get)


def mix_run(
    impl: Impl, cache: Any, keys: Sequence[bytes], lock: Optional[Any] = None
) -> Callable[[], int]:
    if lock is not None:  # a cache that is not thread-safe, as a user would share it
        raw_get = getattr(cache, impl.get)

        def get(k: bytes) -> Any:
            with lock:
                return raw_get(k)

        def put(k: bytes, v: Any) -> None:
            with lock:
                cache[k] = v

        return lambda: loop_mix(get, put, keys, VALUE)
    if impl.memo:
        return lambda: loop_get(cache, keys)
    get = getattr(cache, impl.get)
    if impl.setitem:
        return lambda: loop_mix_setitem(get, cache, keys, VALUE)
    put = getattr(cache, impl.put)
    return lambda: loop_mix(get, put, keys, VALUE)


def hit_ratio(impl: Impl, cache: Any, keys: Sequence[bytes]) -> float:
    if impl.memo:
        before = cache.cache_info().hits
        for k in keys:
            cache(k)
        return (cache.cache_info().hits - before) / len(keys)
    get = getattr(cache, impl.get)
    return sum(1 for k in keys if get(k) is not None) / len(keys)


def bench_impl(
    impl: Impl,
    data: Data,
    repeats: int,
    results: Dict[Tuple[str, str], Result],
    notes: List[str],
    busy: Dict[Tuple[str, str], float],
) -> None:
    n = data.entries
    ops = data.ops
    # get hit / get miss (a memoized function has no pure "miss": a miss computes and inserts)
    cache = impl.make(n)
    fill(impl, cache, data.stored)
    if hasattr(cache, "run_pending_tasks"):
        cache.run_pending_tasks()
    ratio = hit_ratio(impl, cache, data.stored)
    if ratio < 0.999:
        notes.append(f"{impl.name}: only {ratio:.1%} of the pre-filled keys hit")
    get = make_get(impl, cache)
    results[(impl.name, "get hit")] = per_op(timed(lambda: loop_get(get, data.hits), repeats), ops)
    if not impl.memo:
        results[(impl.name, "get miss")] = per_op(
            timed(lambda: loop_get(get, data.misses), repeats), ops
        )
    if impl.batched:
        results[(impl.name, "get_many 100")] = per_op(
            timed(lambda: loop_get_many(cache.get_many, data.hit_batches), repeats),
            len(data.hit_batches) * BATCH,
        )
    # put with eviction (the cache is full; every key is new)
    puts = data.puts
    if impl.memo:
        run = lambda: loop_get(cache, puts)  # noqa: E731 - a miss computes, inserts, evicts
    elif impl.setitem:
        run = lambda: loop_setitem(cache, puts, VALUE)  # noqa: E731
    else:
        put = getattr(cache, impl.put)
        run = lambda: loop_put(put, puts, VALUE)  # noqa: E731
    results[(impl.name, "put+evict")] = per_op(timed(run, repeats), len(puts))
    gc.collect()

    # the Zipf mix on 1 and 2 threads (a fresh cache, warmed by the warm-up run)
    cache = impl.make(n)
    # 1 thread walks both halves of the sequence one after the other, 2 threads one half each:
    # the same operations on the same keys, so the hit ratios (and the share of puts) match.
    one = mix_run(impl, cache, data.zipf[0] + data.zipf[1])
    lock = threading.Lock() if impl.needs_lock else None
    two = [mix_run(impl, cache, z, lock) for z in data.zipf]
    runs = {"zipf 1T": (one, 2 * ops), "zipf 2T": (lambda: threaded(two), 2 * ops)}
    if impl.batched:
        gm, pm = cache.get_many, cache.put_many
        both = data.zipf_batches[0] + data.zipf_batches[1]
        b1 = lambda: loop_mix_batched(gm, pm, both, VALUE)  # noqa: E731
        b2 = [functools.partial(loop_mix_batched, gm, pm, zb, VALUE) for zb in data.zipf_batches]
        nb = len(data.zipf_batches[0]) * BATCH
        runs["zipf batched 1T"] = (b1, 2 * nb)
        runs["zipf batched 2T"] = (lambda: threaded(b2), 2 * nb)
    for work, (run, n_ops) in runs.items():
        shares: List[float] = []
        results[(impl.name, work)] = per_op(timed(cpu_noted(run, shares), repeats), n_ops)
        busy[(impl.name, work)] = statistics.median(shares)
    if hasattr(cache, "close"):
        cache.close()
    gc.collect()


#: The batch sizes of the packed Zipf mix.
PACKED_BATCHES = (100, 1000)


def bench_packed(
    make: Callable[[int], Any],
    name: str,
    data: Data,
    repeats: int,
    results: Dict[Tuple[str, str], Result],
    busy: Dict[Tuple[str, str], float],
) -> None:
    """The Zipf mix through ``PackedCache`` (``make(max_entries)``), per batch size, on 1 and 2
    threads: the same operations on the same keys as the other mixes."""
    import alphaforge_cache as af

    for size in PACKED_BATCHES:
        halves = [
            [af.Packed.fixed(b"".join(z[i : i + size]), KEY_LEN) for i in range(0, len(z), size)]
            for z in data.zipf
        ]
        values = [af.Packed.fixed(VALUE * k, len(VALUE)) for k in range(size + 1)]
        n_ops = sum(len(z) for z in data.zipf)
        cache = make(data.entries)
        one = functools.partial(loop_mix_packed, cache, halves[0] + halves[1], values)
        two = [functools.partial(loop_mix_packed, cache, half, values) for half in halves]
        runs: List[Tuple[str, Callable[[], int]]] = [
            (f"zipf packed {size} 1T", one),
            (f"zipf packed {size} 2T", functools.partial(threaded, two)),
        ]
        for work, call in runs:
            shares: List[float] = []
            results[(name, work)] = per_op(timed(cpu_noted(call, shares), repeats), n_ops)
            busy[(name, work)] = statistics.median(shares)
        cache.close()
        gc.collect()


def bench_ttl(
    impl: Impl, data: Data, repeats: int, results: Dict[Tuple[str, str], Result], notes: List[str]
) -> None:
    cache = impl.make(data.entries)
    fill(impl, cache, data.stored)
    if hasattr(cache, "run_pending_tasks"):
        cache.run_pending_tasks()
    ratio = hit_ratio(impl, cache, data.stored)
    if ratio < 0.999:
        notes.append(f"{impl.name} (ttl): only {ratio:.1%} of the pre-filled keys hit")
    get = make_get(impl, cache)
    results[(impl.name, "ttl get hit")] = per_op(
        timed(lambda: loop_get(get, data.hits), repeats), data.ops
    )
    if hasattr(cache, "close"):
        cache.close()


# ----------------------------------------------------------------------------------------------
# paired rounds: the get-hit floors measured with both caches alternating
# ----------------------------------------------------------------------------------------------

#: (floor, ours, peer, limit): each floor's two caches, by the names of build_impls.
PAIRS = [
    ("object-mode get hit / cachebox.LRUCache", "alphaforge native object",
     "cachebox.LRUCache", 1.3),
    ("bytes-mode get hit / lru-dict", "alphaforge native bytes", "lru-dict (lru.LRU)", 1.0),
    ("TTL get hit (object) / moka-py TTL", "alphaforge native object ttl",
     "moka-py Moka ttl", 0.35),
    ("TTL get hit (object) / cachetools.TTLCache", "alphaforge native object ttl",
     "cachetools.TTLCache", 0.1),
    ("TTL get hit (bytes) / moka-py TTL", "alphaforge native bytes ttl", "moka-py Moka ttl", 0.35),
    ("fallback get hit / cachetools.LRUCache", "alphaforge fallback object",
     "cachetools.LRUCache", 0.8),
]  # fmt: skip


def paired(impls: Dict[str, Impl], data: Data, rounds: int) -> List[Tuple[str, List[float], float]]:
    """Each floor as ``rounds`` rounds in which the two caches' get-hit loops run back to back
    (in alternating order), each net of an empty loop timed in the same round: the ratio of
    every round. On a shared machine whose speed drifts by 2-3x within minutes, a ratio of
    neighbouring timings is far steadier than one of timings minutes apart."""
    out: List[Tuple[str, List[float], float]] = []
    for floor, ours, peer, limit in PAIRS:
        if ours not in impls or peer not in impls:
            continue
        log(f"[{time.strftime('%H:%M:%S')}] paired: {floor}")
        caches = []
        for name in (ours, peer):
            impl = impls[name]
            cache = impl.make(data.entries)
            fill(impl, cache, data.stored)
            if hasattr(cache, "run_pending_tasks"):
                cache.run_pending_tasks()
            caches.append((make_get(impl, cache), cache))
        ratios = []
        for r in range(rounds):
            gc.collect()
            gc.disable()
            try:
                times = {}
                for which in (0, 1) if r % 2 == 0 else (1, 0):
                    get = caches[which][0]
                    loop_get(get, data.hits)  # warm
                    empty = loop_empty(data.hits)
                    times[which] = max(loop_get(get, data.hits) - empty, 1)
            finally:
                gc.enable()
            ratios.append(times[0] / times[1])
        for _, cache in caches:
            if hasattr(cache, "close"):
                cache.close()
        out.append((floor, ratios, limit))
    return out


def fmt(x: Optional[float]) -> str:
    return "—" if x is None else (f"{x:.0f}" if x >= 100 else f"{x:.1f}")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"load average {' '.join(f'{x:.2f}' for x in load)}"
    )


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=100_000, help="cache size (default 100000)")
    ap.add_argument("--ops", type=int, default=300_000, help="operations per timed run")
    ap.add_argument("--universe", type=int, default=1_000_000, help="Zipf key universe")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per cell (best, median)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="a short run: 20k entries, 3 repeats")
    ap.add_argument("--only", default="", help="comma-separated substrings of names to run")
    ap.add_argument(
        "--paired",
        type=int,
        default=9,
        metavar="ROUNDS",
        help="rounds of the paired get-hit floors (0: skip them)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.entries, args.ops, args.universe, args.repeats = 20_000, 60_000, 200_000, 3

    start_machine = machine()
    log(f"machine: {start_machine}")
    log(f"generating keys: {args.entries} entries, {args.ops} ops, universe {args.universe}")
    t0 = time.time()
    data = Data(args.entries, args.ops, args.universe, args.seed)
    log(f"  done in {time.time() - t0:.1f} s")

    missing: Dict[str, str] = {}
    impls, ttl_impls = build_impls(missing)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        impls = [i for i in impls if any(w in i.name for w in wanted)]
        ttl_impls = [i for i in ttl_impls if any(w in i.name for w in wanted)]
    for name, why in missing.items():
        log(f"MISSING {name}: {why}")

    results: Dict[Tuple[str, str], Result] = {}
    busy: Dict[Tuple[str, str], float] = {}  # CPUs busy (process CPU time / wall time), median
    notes: List[str] = []
    empty = per_op(timed(lambda: loop_empty(data.hits), args.repeats), args.ops)
    dict_ref = dict.fromkeys(data.stored, VALUE)
    results[("dict (reference)", "get hit")] = per_op(
        timed(lambda: loop_get(dict_ref.get, data.hits), args.repeats), args.ops
    )
    results[("dict (reference)", "get miss")] = per_op(
        timed(lambda: loop_get(dict_ref.get, data.misses), args.repeats), args.ops
    )
    for impl in impls:
        log(f"[{time.strftime('%H:%M:%S')}] {impl.name}")
        t0 = time.time()
        bench_impl(impl, data, args.repeats, results, notes, busy)
        log(f"    {time.time() - t0:.1f} s")
    packed_impls = [
        (name, make)
        for name, make in packed_caches()
        if not args.only or any(w.strip() in name for w in args.only.split(",") if w.strip())
    ]
    for name, make in packed_impls:
        log(f"[{time.strftime('%H:%M:%S')}] {name} (zipf mix, packed batches)")
        t0 = time.time()
        bench_packed(make, name, data, args.repeats, results, busy)
        log(f"    {time.time() - t0:.1f} s")
    for impl in ttl_impls:
        log(f"[{time.strftime('%H:%M:%S')}] {impl.name} (ttl get hit)")
        bench_ttl(impl, data, args.repeats, results, notes)
    rows_paired: List[Tuple[str, List[float], float]] = []
    if args.paired:
        by_name = {impl.name: impl for impl in impls + ttl_impls}
        rows_paired = paired(by_name, data, args.paired)

    # ---- tables ---------------------------------------------------------------------------
    E = empty[0]
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"

    def net(name: str, work: str) -> Optional[float]:
        r = results.get((name, work))
        if r is None:
            return None
        # per-key workloads carry the loop overhead; batched ones have it once per 100 keys
        return r[0] - (E if "many" not in work and "batched" not in work else E / BATCH)

    def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
        return None if a is None or b is None or b <= 0 else a / b

    names = ["dict (reference)"] + [i.name for i in impls]
    works = ["get hit", "get miss", "put+evict", "zipf 1T", "zipf 2T"]
    print("# alphaforge_cache Python binding vs peers\n")
    print(f"- machine: {start_machine} (at the start; at the end: {load_end})")
    print(f"- command: `{' '.join([os.path.basename(sys.executable)] + sys.argv)}`")
    print(
        f"- {args.entries} entries, 16-byte keys, 64-byte values, {args.ops} ops per run, "
        f"Zipf universe {args.universe}, best of {args.repeats} runs after a warm-up"
    )
    print(
        f"- empty loop over the same keys: {E:.1f} ns/op (best), {empty[1]:.1f} (median); "
        f"'net' = best minus that"
    )
    for name, why in missing.items():
        print(f"- MISSING {name}: {why}")
    for note in notes:
        print(f"- note: {note}")
    print()
    print("## ns per operation: best / median (raw, loop included)\n")
    print("| implementation | " + " | ".join(works) + " | 2T/1T throughput |")
    print("|---|" + "---:|" * (len(works) + 1))
    for name in names:
        cells = []
        for w in works:
            r = results.get((name, w))
            cells.append("—" if r is None else f"{fmt(r[0])} / {fmt(r[1])}")
        one, two = results.get((name, "zipf 1T")), results.get((name, "zipf 2T"))
        scale = ratio(one[0], two[0]) if one and two else None
        cells.append("—" if scale is None else f"{scale:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("## net ns per operation (best minus the empty loop)\n")
    print("| implementation | " + " | ".join(works) + " |")
    print("|---|" + "---:|" * len(works))
    for name in names:
        print(f"| {name} | " + " | ".join(fmt(net(name, w)) for w in works) + " |")
    print()

    peers = [
        n
        for n in (
            "cachetools.LRUCache",
            "cachebox.LRUCache",
            "lru-dict (lru.LRU)",
            "moka-py Moka",
            "functools.lru_cache",
        )
        if n in names
    ]
    ours = [i.name for i in impls if i.group == "alphaforge"]
    if ours and peers:
        print("## ratios: alphaforge net time / peer net time (below 1 = alphaforge faster)\n")
        print("| alphaforge | workload | " + " | ".join(peers) + " |")
        print("|---|---|" + "---:|" * len(peers))
        for name in ours:
            for w in ("get hit", "get miss", "put+evict", "zipf 1T"):
                cells = [fmt2(ratio(net(name, w), net(p, w))) for p in peers]
                print(f"| {name} | {w} | " + " | ".join(cells) + " |")
        print()

    batched = [i.name for i in impls if i.batched]
    if batched:
        print("## alphaforge batched API (ns per key, best / median)\n")
        print(
            "| implementation | get hit (get) | get_many 100 | zipf 1T single-key | "
            "zipf 2T single-key | 2T/1T single | zipf 1T batched | zipf 2T batched | "
            "2T/1T batched | 2T batched vs 1T single |"
        )
        print("|---|" + "---:|" * 9)
        for name in batched:
            g = results.get((name, "get hit"))
            gm = results.get((name, "get_many 100"))
            s1, s2 = results.get((name, "zipf 1T")), results.get((name, "zipf 2T"))
            b1, b2 = results.get((name, "zipf batched 1T")), results.get((name, "zipf batched 2T"))

            def c(r: Optional[Result]) -> str:
                return "—" if r is None else f"{fmt(r[0])} / {fmt(r[1])}"

            print(
                f"| {name} | {c(g)} | {c(gm)} | {c(s1)} | {c(s2)} | "
                f"{fmt2(ratio(s1[0], s2[0]) if s1 and s2 else None)}x | {c(b1)} | {c(b2)} | "
                f"{fmt2(ratio(b1[0], b2[0]) if b1 and b2 else None)}x | "
                f"{fmt2(ratio(s1[0], b2[0]) if s1 and b2 else None)}x |"
            )
        print()

    packed_names = [name for name, _ in packed_impls]
    if packed_names:
        print("## PackedCache: the Zipf mix in packed batches (ns per key, best / median)\n")
        head = " | ".join(f"{size} keys 1T | {size} keys 2T | 2T/1T" for size in PACKED_BATCHES)
        print(f"| implementation | {head} | CPUs busy (1T; 2T) |")
        print("|---|" + "---:|" * (3 * len(PACKED_BATCHES) + 1))
        for name in packed_names:
            cells, shares = [], []
            for size in PACKED_BATCHES:
                one = results.get((name, f"zipf packed {size} 1T"))
                two = results.get((name, f"zipf packed {size} 2T"))
                cells += [
                    "—" if one is None else f"{fmt(one[0])} / {fmt(one[1])}",
                    "—" if two is None else f"{fmt(two[0])} / {fmt(two[1])}",
                    f"{fmt2(ratio(one[0], two[0]) if one and two else None)}x",
                ]
                shares.append(
                    f"{fmt2(busy.get((name, f'zipf packed {size} 1T')))}; "
                    f"{fmt2(busy.get((name, f'zipf packed {size} 2T')))}"
                )
            print(f"| {name} | " + " | ".join(cells) + " | " + " / ".join(shares) + " |")
        print()

    mixes = ["zipf 1T", "zipf 2T", "zipf batched 1T", "zipf batched 2T"]
    print(
        "## CPUs busy on the Zipf mix (process CPU time / wall time, median; the machine has "
        f"{os.cpu_count()})\n"
    )
    print(
        "Every thread of the process counts, alphaforge's engine thread (which replays handed-over "
        "reads, and spins briefly between hand-overs) included: where one Python thread already "
        "keeps the machine's CPUs busy, a second has none left to add.\n"
    )
    print("| implementation | " + " | ".join(mixes) + " |")
    print("|---|" + "---:|" * len(mixes))
    for impl in impls:
        cells = [busy.get((impl.name, w)) for w in mixes]
        print(f"| {impl.name} | " + " | ".join(fmt2(x) for x in cells) + " |")
    print()

    if ttl_impls:
        print(f"## with a TTL ({TTL} s, nothing expires): get hit, ns per op\n")
        print("| implementation | best | median | net |")
        print("|---|---:|---:|---:|")
        for impl in ttl_impls:
            r = results.get((impl.name, "ttl get hit"))
            if r:
                print(
                    f"| {impl.name} | {fmt(r[0])} | {fmt(r[1])} | "
                    f"{fmt(net(impl.name, 'ttl get hit'))} |"
                )
        print()

    # ---- floors -------------------------------------------------------------------------
    floors: List[Tuple[str, Optional[float], float, str]] = []  # (what, measured, limit, unit)
    nat_o, nat_b, fb = (
        "alphaforge native object",
        "alphaforge native bytes",
        "alphaforge fallback object",
    )
    floors.append(
        (
            "object-mode get hit / cachebox.LRUCache get hit",
            ratio(net(nat_o, "get hit"), net("cachebox.LRUCache", "get hit")),
            1.3,
            "x",
        )
    )
    floors.append(
        (
            "bytes-mode get hit / lru-dict get hit",
            ratio(net(nat_b, "get hit"), net("lru-dict (lru.LRU)", "get hit")),
            1.0,
            "x",
        )
    )
    for mode in ("object", "bytes"):
        ours_ttl = net(f"alphaforge native {mode} ttl", "ttl get hit")
        floors.append(
            (
                f"TTL get hit ({mode} mode) / moka-py TTL get hit",
                ratio(ours_ttl, net("moka-py Moka ttl", "ttl get hit")),
                0.35,
                "x",
            )
        )
        floors.append(
            (
                f"TTL get hit ({mode} mode) / cachetools.TTLCache get hit",
                ratio(ours_ttl, net("cachetools.TTLCache", "ttl get hit")),
                0.1,
                "x",
            )
        )
    gm_best = min(
        (results[(n, "get_many 100")][0] for n in (nat_b, nat_o) if (n, "get_many 100") in results),
        default=None,
    )
    floors.append(
        ("get_many of 100 keys, ns per key (best of bytes/object mode)", gm_best, 60.0, "ns")
    )
    # Two threads against one on the Zipf mix: the best 2-thread figure of any API against the
    # best 1-thread figure of any API (each the best run, ns per key), so that no API's 2-thread
    # figure is set against a slower API's 1-thread one.
    native_names = [nat_b, nat_o, "alphaforge native packed"]
    ones = [r[0] for (n, w), r in results.items() if n in native_names and w.endswith("1T")]
    twos = [r[0] for (n, w), r in results.items() if n in native_names and w.endswith("2T")]
    floors.append(
        (
            "2-thread Zipf throughput / 1-thread, the best API each (native: single-key, "
            "batched, packed)",
            ratio(min(ones), min(twos)) if ones and twos else None,
            1.3,
            "min",
        )
    )
    floors.append(
        (
            "fallback get hit / cachetools.LRUCache get hit",
            ratio(net(fb, "get hit"), net("cachetools.LRUCache", "get hit")),
            0.8,
            "x",
        )
    )
    print("## floors (CPython 3.11)\n")
    print("| floor | measured | limit | result |")
    print("|---|---:|---:|---|")
    for what, value, limit, unit in floors:
        if value is None:
            print(f"| {what} | — | | MISSING |")
            continue
        ok = value >= limit if unit == "min" else value <= limit
        shown = f"{value:.1f} ns" if unit == "ns" else f"{value:.2f}x"
        lim = (
            f"≤ {limit:.0f} ns"
            if unit == "ns"
            else (f"≥ {limit:.2f}x" if unit == "min" else f"≤ {limit:.2f}x")
        )
        print(f"| {what} | {shown} | {lim} | {'PASS' if ok else 'FAIL'} |")
    print()

    if rows_paired:
        print(f"## get-hit floors in paired rounds ({args.paired} rounds, alternating order)\n")
        print("| floor | median ratio | min – max | limit | result |")
        print("|---|---:|---:|---:|---|")
        for floor, ratios, limit in rows_paired:
            mid = statistics.median(ratios)
            verdict = "PASS" if mid <= limit else "FAIL"
            spread = f"{min(ratios):.2f} – {max(ratios):.2f}"
            print(f"| {floor} | {mid:.2f}x | {spread} | ≤ {limit:.2f}x | {verdict} |")
        print()
    return 0


def fmt2(x: Optional[float]) -> str:
    return "—" if x is None else f"{x:.2f}"


if __name__ == "__main__":
    sys.exit(main())

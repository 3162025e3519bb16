"""``python -m alphaforge_cache`` (also the ``alphaforge-cache`` command).

- ``bench``: the embedded default workload (a Zipf(0.99) "get, put on miss" mix of 16-byte keys
  and 64-byte values) through every available backend and value mode, then through
  ``PackedCache`` in batches of 1,000 keys on 1 and 2 threads, with a progress bar and a table
  of ns/op and hit ratios.
- ``replay TRACE --capacity N``: the hit ratio of a cache trace (formats of
  ``testdata/traces/README.md``: ``.lis.zst`` arc, ``.trace.gz`` lirs, ``.trace.xz`` cache2k).
- ``inspect SNAPSHOT``: a snapshot file's header, entry count, total bytes and first entries,
  after checking the whole file (``docs/snapshot-format.md``); exits with status 1 and a clear
  message on a bad file. Values are shown as bytes, never unpickled.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import itertools
import lzma
import os
import random
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Type, cast

from . import NativeCache, NativePackedCache, Packed, PythonCache, PythonPackedCache
from . import _snapshot_format as fmt


def _backends(choice: str) -> List[Type[PythonCache]]:
    # Both classes have the same constructor and interface; the fallback's is the typed one.
    available: Dict[str, Optional[Type[PythonCache]]] = {
        "native": cast("Optional[Type[PythonCache]]", NativeCache),
        "python": PythonCache,
    }
    names = ["native", "python"] if choice == "all" else [choice]
    found = [cls for cls in (available[n] for n in names) if cls is not None]
    if not found:
        raise SystemExit(f"alphaforge-cache: backend {choice!r} is not installed")
    return found


class _Progress:
    """A one-line progress bar on stderr (silent when stderr is not a terminal, except at 100%).
    A ``transient`` one is shown on a terminal only, and erased at 100%."""

    def __init__(self, label: str, total: int, transient: bool = False) -> None:
        self.label, self.total, self.shown = label, max(total, 1), -1
        self.tty = sys.stderr.isatty()
        self.transient = transient
        self.drawn = False

    def update(self, done: int) -> None:
        percent = done * 100 // self.total
        if percent == self.shown or not (self.tty or (percent == 100 and not self.transient)):
            return
        self.shown = percent
        line = f"{self.label:<28} [{'#' * (percent // 5):<20}] {percent:3d}%"
        if percent < 100:
            sys.stderr.write(f"\r{line}")
            self.drawn = True
        elif self.transient:
            if self.drawn:  # erased where a bar was drawn
                sys.stderr.write(f"\r{' ' * len(line)}\r")
        else:
            sys.stderr.write(f"\r{line}\n")
        sys.stderr.flush()


#: Keys per batch of the packed runs.
PACKED_BATCH = 1000


def _packed_run(
    cls: Any, capacity: int, batches: List[Packed], value: bytes, threads: int, label: str
) -> Tuple[float, float]:
    """The mix through a ``PackedCache`` of class ``cls``: each batch's get_many, then put_many
    of the keys that missed; ``threads`` threads take every ``threads``-th batch. The seconds
    taken and the hit ratio."""
    cache = cls(capacity)
    values: Dict[int, Packed] = {}
    progress = _Progress(label, len(batches))
    done = [0]
    lock = threading.Lock()

    def work(mine: List[Packed]) -> None:
        get_many, put_many = cache.get_many, cache.put_many
        for keys in mine:
            missing = get_many(keys).missing
            if missing:
                n = len(missing)
                rows = values.get(n)
                if rows is None:
                    rows = values[n] = Packed.fixed(value * n, len(value))
                put_many(missing, rows)
            with lock:
                done[0] += 1
                progress.update(done[0])

    workers = [threading.Thread(target=work, args=(batches[i::threads],)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    ratio = cache.stats().hit_ratio
    cache.close()
    return elapsed, ratio


def _zipf_ranks(n_keys: int, n_ops: int, seed: int) -> List[int]:
    weights = list(itertools.accumulate(1.0 / (rank**0.99) for rank in range(1, n_keys + 1)))
    total = weights[-1]
    rng = random.Random(seed)
    return [bisect.bisect_left(weights, rng.random() * total) for _ in range(n_ops)]


def bench(args: argparse.Namespace) -> int:
    """Runs the embedded default workload and prints a table."""
    ranks = _zipf_ranks(args.keys, args.ops, seed=7)
    keys = [b"bar:%012d" % r for r in range(args.keys)]
    value = b"o=189.70 h=190.10 l=189.55 c=189.98 v=120300".ljust(64)
    print(
        f"workload: Zipf(0.99) get-or-put, {args.ops} ops over {args.keys} keys, "
        f"capacity {args.capacity}, 16-byte keys, 64-byte values"
    )
    rows = []
    for cls in _backends(args.backend):
        for mode in ("bytes", "object"):
            cache = cls(args.capacity, mode=mode)
            progress = _Progress(f"{cls.backend} / {mode}", len(ranks))
            get, put = cache.get, cache.put
            start = time.perf_counter()
            step = max(1, len(ranks) // 50)
            for i in range(0, len(ranks), step):
                for rank in ranks[i : i + step]:
                    key = keys[rank]
                    if get(key) is None:
                        put(key, value)
                progress.update(min(i + step, len(ranks)))
            elapsed = time.perf_counter() - start
            stats = cache.stats()
            rows.append((cls.backend, mode, elapsed * 1e9 / len(ranks), stats.hit_ratio))
            cache.close()
    batches = [
        Packed.fixed(b"".join(keys[rank] for rank in ranks[i : i + PACKED_BATCH]), len(keys[0]))
        for i in range(0, len(ranks), PACKED_BATCH)
    ]
    packed = {"native": NativePackedCache, "python": PythonPackedCache}
    for cls in _backends(args.backend):
        for threads in (1, 2):
            mode = f"PackedCache, {threads} thread{'s' if threads > 1 else ''}"
            label = f"{cls.backend} / packed {threads}T"
            elapsed, ratio = _packed_run(
                packed[cls.backend], args.capacity, batches, value, threads, label
            )
            rows.append((cls.backend, mode, elapsed * 1e9 / len(ranks), ratio))
    print("| backend | mode | ns/op | hit ratio |")
    print("|---|---|---:|---:|")
    for backend, mode, ns, ratio in rows:
        print(f"| {backend} | {mode} | {ns:.0f} | {ratio:.4f} |")
    print(
        f"\nPackedCache takes the keys in batches of {PACKED_BATCH} (get_many, then put_many of "
        "the keys that missed) and runs each batch in the engine without the GIL; a key repeated "
        "within a batch misses each time before the batch's puts (and natively the default shard "
        "count makes each shard an exact LRU of its own keys), hence a slightly lower hit ratio."
    )
    return 0


def read_trace(path: str) -> Iterator[int]:
    """The keys of a trace file, in order (format from the file name)."""
    name = os.path.basename(path)
    if name.endswith(".trace.gz"):
        with gzip.open(path, "rt") as lines:
            for line in lines:
                line = line.strip()
                if line and line != "*" and not line.startswith("*"):
                    yield int(line)
    elif name.endswith(".trace.xz"):
        with lzma.open(path, "rb") as stream:
            while True:
                chunk = stream.read(4 * 65536)
                if not chunk:
                    break
                if len(chunk) % 4:
                    raise ValueError(f"{path}: truncated cache2k trace")
                for i in range(0, len(chunk), 4):
                    yield int.from_bytes(chunk[i : i + 4], "big", signed=True)
    elif name.endswith(".lis.zst") or name.endswith(".lis"):
        yield from _read_arc(path)
    else:
        raise ValueError(f"{path}: unknown trace format (want .lis.zst, .trace.gz or .trace.xz)")


def _read_arc(path: str) -> Iterator[int]:
    if path.endswith(".zst"):
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError as error:
            raise ValueError(
                "reading .zst traces needs the zstandard package: pip install zstandard"
            ) from error
        import io

        with open(path, "rb") as raw:
            text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(raw), "ascii")
            yield from _arc_lines(text)
    else:
        with open(path, "r", encoding="ascii") as text:
            yield from _arc_lines(text)


def _arc_lines(lines: Iterator[str]) -> Iterator[int]:
    for line in lines:
        fields = line.split()
        if len(fields) >= 2:
            start, count = int(fields[0]), int(fields[1])
            yield from range(start, start + count)


def replay(args: argparse.Namespace) -> int:
    """Replays a trace ("get, put on miss") and prints its hit ratio per backend."""
    if not os.path.isfile(args.trace):
        print(f"alphaforge-cache: no such trace file: {args.trace}", file=sys.stderr)
        return 2
    try:
        keys = [k.to_bytes(8, "little", signed=True) for k in read_trace(args.trace)]
    except (ValueError, OSError, EOFError, lzma.LZMAError) as error:
        print(f"alphaforge-cache: cannot read {args.trace}: {error}", file=sys.stderr)
        return 2
    for cls in _backends(args.backend):
        cache = cls(args.capacity, shards=1)
        progress = _Progress(f"replay ({cls.backend})", len(keys))
        step = max(1, len(keys) // 50)
        for i in range(0, len(keys), step):
            for key in keys[i : i + step]:
                if cache.get(key) is None:
                    cache.put(key, b"")
            progress.update(min(i + step, len(keys)))
        stats = cache.stats()
        print(
            f"{cls.backend}: {len(keys)} requests, capacity {args.capacity}: "
            f"{stats.hits} hits, hit ratio {stats.hit_ratio * 100:.2f} %"
        )
    return 0


def _shown(data: bytes, limit: int = 24) -> str:
    """Bytes as a short Python literal, cut after ``limit`` bytes."""
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


def _ttl(ttl_ns: Optional[int]) -> str:
    if ttl_ns is None:
        return "never expires"
    return f"{ttl_ns // 10**9}.{ttl_ns % 10**9:09d} s left"


#: ``inspect`` draws a progress bar (on a terminal) for files of at least this many entries,
#: moved every this many entries.
INSPECT_PROGRESS_FROM = 500_000
INSPECT_PROGRESS_STEP = 1 << 15


def inspect(args: argparse.Namespace) -> int:
    """Prints what a snapshot holds, after checking all of it."""
    first: List[fmt.Entry] = []
    count = data_bytes = weight = timed = 0
    progress: Optional[_Progress] = None
    try:
        with fmt.reading(args.snapshot) as (header, entries):
            print(f"snapshot {args.snapshot}")
            print(
                f"  format      {header.format_major}.{header.format_minor} (header "
                f"{header.header_len} bytes, flags 0x{header.flags:08x})"
            )
            print(f"  values      {header.encoding_name} (value encoding {header.value_encoding})")
            print(f"  entries     {header.entry_count}")
            print(f"  bytes       {header.file_len} in the file, {header.body_len} of entries")
            sys.stdout.flush()
            # A large file takes seconds to check: a bar on a terminal, erased when done.
            progress = _Progress("checking the entries", header.entry_count, transient=True)
            many = header.entry_count >= INSPECT_PROGRESS_FROM
            step = INSPECT_PROGRESS_STEP if many else header.entry_count + 1
            for entry in entries:
                count += 1
                if count % step == 0:
                    progress.update(count)
                data_bytes += len(entry.key) + len(entry.value)
                weight += entry.effective_weight
                timed += entry.ttl_ns is not None
                if len(first) < args.entries:
                    first.append(entry)
    except fmt.SnapshotFileError as error:
        if progress is not None:
            progress.update(progress.total)  # erases the bar, if one was drawn
        print(f"alphaforge-cache: {error}", file=sys.stderr)
        return 1
    assert progress is not None
    progress.update(progress.total)
    print(
        f"  totals      {data_bytes} bytes of keys and values, weight {weight}, "
        f"{timed} {'entry' if timed == 1 else 'entries'} with a TTL"
    )
    print("  checksums   ok (the whole file was read and checked)")
    if first:
        shown = "the first entry" if len(first) == 1 else f"the first {len(first)} entries"
        print(f"{shown} (least recently used first):")
        for i, entry in enumerate(first, 1):
            default = entry.weight is None
            print(
                f"  {i:>4}  key {_shown(entry.key)}  value {_shown(entry.value)}  "
                f"{_ttl(entry.ttl_ns)}  weight {entry.effective_weight}"
                f"{' (default)' if default else ''}"
            )
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="alphaforge-cache", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("bench", help="run the embedded default workload on every backend")
    b.add_argument("--ops", type=int, default=400_000)
    b.add_argument("--keys", type=int, default=1_000_000)
    b.add_argument("--capacity", type=int, default=100_000)
    b.add_argument("--backend", choices=("all", "native", "python"), default="all")
    b.set_defaults(run=bench)
    r = commands.add_parser("replay", help="print the hit ratio of a cache trace")
    r.add_argument("trace")
    r.add_argument("--capacity", type=int, required=True)
    r.add_argument("--backend", choices=("all", "native", "python"), default="all")
    r.set_defaults(run=replay)
    i = commands.add_parser(
        "inspect", help="print a snapshot's header, entry count, total bytes and first entries"
    )
    i.add_argument("snapshot")
    i.add_argument(
        "-n", "--entries", type=int, default=10, help="how many entries to show (default 10)"
    )
    i.set_defaults(run=inspect)
    args = parser.parse_args(argv)
    if getattr(args, "entries", 0) < 0:
        parser.error("--entries must be at least 0")
    for name in ("ops", "keys", "capacity"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name} must be at least 1")
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())

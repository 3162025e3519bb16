"""Python ``Cache.save`` / ``Cache.load`` (and ``PackedCache``'s) of 1M entries (16-byte keys,
64-byte values) on both backends, next to the time the same Python process takes to write (or
read) the same number of bytes as one sequential file, and next to the Rust engine's own save
and load measured in the same run (``benches/rust/src/bin/snapshot.rs``, run first as a child
process).

    python benchmarks/snapshot_python.py [--entries N] [--rounds R] [--dir DIR] [--no-rust]
        [--modes bytes,object]

For each backend and mode, one cache of room for 1.25x the entries is filled once (``put_many``
in batches; not timed); then each round times, alternately:

- save: ``Cache.save(path)`` (the entries read under the cache's lock, encoded when the mode
  needs it, written through ``_snapshot_format.write``: temporary file, fsync, rename,
  directory fsync). Baseline: the same number of bytes written in 1 MiB writes, then fsync.
- load: ``Cache.load(path)`` into a fresh cache of the same configuration (read, checked,
  decoded, staged, handed to the backend). Baselines, from the page cache: the whole file read
  into one new ``bytes`` (a read that keeps the bytes, as a load must: the floor's baseline,
  ``docs/benchmarks.md``, "The floor's baselines"), and the file read in 1 MiB reads into one
  reused buffer (``readinto``: the kernel's copy alone, no byte kept; for context). The load
  finds the file in the page cache too: the engine's save writes past the page cache
  (``O_DIRECT``), so the file is read once, untimed, before the load.

``PackedCache`` (bytes keys and values, filled with packed batches) is measured the same way:
its native backend saves and loads through the engine itself (``afc_cache_save`` /
``afc_cache_load``), with no Python per entry.

Medians over the rounds are printed as a Markdown table, with the verdict of the floor (at most
2x the write + fsync, and the kept read) for each. ``bytes`` mode is the format's own cost;
``object`` mode adds one pickle per value (the default codec). The garbage collector is off
while timing (the loaded cache's objects would otherwise trigger full collections).
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

import alphaforge_cache  # noqa: E402

VALUE = b"\xa5" * 64
BLOCK = 1 << 20


def make_keys(n: int) -> List[bytes]:
    """16-byte keys: a mixed 64-bit prefix (as the Rust benchmark's keys) and the index."""
    pack = struct.Struct("<QQ").pack
    mask = (1 << 64) - 1
    return [pack((i * 0x9E3779B97F4A7C15 ^ 0x5DEECE66D1CE4E5B) & mask, i) for i in range(n)]


def write_plain(path: str, length: int) -> float:
    block = b"\x5a" * BLOCK
    start = time.perf_counter()
    with open(path, "wb") as f:
        left = length
        while left > 0:
            n = min(left, BLOCK)
            f.write(block[:n] if n < BLOCK else block)
            left -= n
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - start


def read_plain(path: str) -> Tuple[float, int]:
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    total = 0
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(view)
            if not n:
                break
            total += n
    return time.perf_counter() - start, total


def read_kept(path: str) -> Tuple[float, int]:
    """The whole file read into one new ``bytes``, kept until the clock stops."""
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        data = f.read()
    took = time.perf_counter() - start
    return took, len(data)


def timed(fn: Callable[[], Any]) -> Tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run_rust(rounds: int, directory: str) -> Optional[str]:
    """The Rust snapshot benchmark's table of medians, or None if it cannot be run."""
    command = [
        "cargo",
        "run",
        "--quiet",
        "--release",
        "-p",
        "alphaforge-cache-bench",
        "--bin",
        "snapshot",
        "--",
        str(rounds),
        directory,
    ]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=3600, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        print(f"(the Rust benchmark could not run: {error})", file=sys.stderr)
        return None
    out = done.stdout
    table = out[out.index("medians of") :] if "medians of" in out else out
    return table.strip()


def batches(keys: List[bytes]) -> Iterator[List[bytes]]:
    """``keys`` in batches of 10,000, the way both caches are filled (not timed)."""
    for i in range(0, len(keys), 10_000):
        yield keys[i : i + 10_000]


def fill_cache(cache: Any, keys: List[bytes]) -> None:
    """``Cache.put_many`` in batches (in ``object`` mode each value a bytes object, pickled on
    save)."""
    for batch in batches(keys):
        cache.put_many(list(zip(batch, [VALUE] * len(batch))))


def fill_packed(cache: Any, keys: List[bytes]) -> None:
    """``PackedCache.put_many`` in packed batches."""
    for batch in batches(keys):
        cache.put_many(
            alphaforge_cache.Packed.of(batch), alphaforge_cache.Packed.of([VALUE] * len(batch))
        )


def bench(
    make: Callable[[int], Any],
    name: str,
    fill: Callable[[Any, List[bytes]], None],
    keys: List[bytes],
    rounds: int,
    directory: str,
) -> Dict[str, float]:
    """Medians of ``rounds`` saves and loads of a cache made by ``make(room)``, filled by
    ``fill`` with ``keys``, against their plain write and read."""
    n = len(keys)
    room = n * 5 // 4
    cache = make(room)
    fill(cache, keys)
    assert len(cache) == n
    path = os.path.join(directory, f"{re.sub(r'[^a-z]+', '-', name)}.afcs")
    plain = os.path.join(directory, "plain.bin")
    info = cache.save(path)
    size = info.file_bytes
    samples: Dict[str, List[float]] = {
        "save": [],
        "write": [],
        "kept read": [],
        "load": [],
        "read": [],
    }
    for round_ in range(rounds):
        gc.disable()
        try:
            took, _ = timed(lambda: cache.save(path))
            samples["save"].append(took)
            samples["write"].append(write_plain(plain, size))
            # Into the page cache, as the baseline reads find it.
            assert read_plain(path)[1] == size
            # Before the load, with the memory the load finds: while a loaded cache lives, the
            # kept read's pages are new to the process and cost 3-7x more on a VM whose freed
            # memory goes back to its host (docs/benchmarks.md).
            took, total = read_kept(path)
            assert total == size
            samples["kept read"].append(took)
            target = make(room)
            start = time.perf_counter()
            loaded = target.load(path)
            samples["load"].append(time.perf_counter() - start)
            assert loaded.entries_kept == n
            took, total = read_plain(path)
            assert total == size
            samples["read"].append(took)
            target.close()
        finally:
            gc.enable()
        gc.collect()
        print(
            f"  {name} round {round_}: "
            + ", ".join(f"{k} {v[-1] * 1e3:.1f} ms" for k, v in samples.items()),
            file=sys.stderr,
        )
    cache.close()
    medians = {k: statistics.median(v) for k, v in samples.items()}
    medians["bytes"] = size
    return medians


def verdict(ratio: float) -> str:
    return "met" if ratio <= 2.0 else "**missed**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp dir)")
    parser.add_argument("--no-rust", action="store_true", help="skip the Rust benchmark")
    parser.add_argument("--modes", default="bytes,object")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="afc-pysnap-bench-", dir=args.dir)
    try:
        rust = None if args.no_rust else run_rust(args.rounds, directory)
        keys = make_keys(args.entries)
        caches = [
            (alphaforge_cache.NativeCache, alphaforge_cache.NativePackedCache),
            (alphaforge_cache.PythonCache, alphaforge_cache.PythonPackedCache),
        ]
        rows = []
        for backend, packed in caches:
            if backend is None:
                continue
            for mode in args.modes.split(","):
                make = functools.partial(backend, mode=mode)
                m = bench(
                    make, f"{backend.backend} {mode}", fill_cache, keys, args.rounds, directory
                )
                rows.append((backend.backend, mode, m))
            if packed is not None:
                name = f"{packed.backend} PackedCache"
                m = bench(packed, name, fill_packed, keys, args.rounds, directory)
                rows.append((packed.backend, "PackedCache (bytes)", m))
        print(f"Python {sys.version.split()[0]}, {args.entries} entries, medians of {args.rounds}")
        print(
            "| backend | mode | file bytes | save | write+fsync | ratio | load | kept read "
            "| ratio | floor (at most 2x) | reused-buffer read | ratio |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
        for name, mode, m in rows:
            save_ratio, load_ratio = m["save"] / m["write"], m["load"] / m["kept read"]
            print(
                f"| {name} | {mode} | {int(m['bytes']):,} | {m['save'] * 1e3:.0f} ms "
                f"| {m['write'] * 1e3:.0f} ms | {save_ratio:.1f}x "
                f"| {m['load'] * 1e3:.0f} ms | {m['kept read'] * 1e3:.1f} ms | {load_ratio:.1f}x "
                f"| save {verdict(save_ratio)}, load {verdict(load_ratio)} "
                f"| {m['read'] * 1e3:.1f} ms | {m['load'] / m['read']:.0f}x |"
            )
        if rust is not None:
            print("\nRust engine, same run (benches/rust/src/bin/snapshot.rs):")
            print(re.sub(r"\n\s*\n", "\n", rust))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()

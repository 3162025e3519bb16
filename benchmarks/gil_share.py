"""How two Python threads scale with the share of their work done without the GIL.

No cache in it: each iteration runs ``--python`` list comprehensions (holding the GIL), then a
``hashlib.sha256`` of ``--hashed`` bytes (which releases the GIL for buffers over 2 KiB). The
same iterations run on one thread, then split over two; the script prints both times per
iteration and the ratio of throughputs. ``docs/benchmarks.md`` ("Why two threads stay near one
thread's throughput") uses it to show what GIL-free share two threads need on this machine.

    python benchmarks/gil_share.py --python 10 --hashed 20000 --iterations 1000
"""

from __future__ import annotations

import argparse
import hashlib
import threading
import time
import timeit
from typing import List, Optional

ITEMS = list(range(100))


def python_part(copies: int) -> None:
    for _ in range(copies):
        [i for i in ITEMS if i & 1]


def work(iterations: int, copies: int, data: bytes) -> None:
    for _ in range(iterations):
        python_part(copies)
        hashlib.sha256(data).digest()


def run(threads: int, iterations: int, copies: int, data: bytes) -> float:
    """Wall time of ``iterations`` iterations split over ``threads`` threads, in seconds."""
    workers = [
        threading.Thread(target=work, args=(iterations // threads, copies, data))
        for _ in range(threads)
    ]
    start = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return time.perf_counter() - start


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=int, default=10, help="comprehensions per iteration")
    parser.add_argument("--hashed", type=int, default=20000, help="bytes hashed per iteration")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    data = b"x" * args.hashed
    held = min(timeit.repeat(lambda: python_part(args.python), number=1000, repeat=5)) / 1000
    free = min(timeit.repeat(lambda: hashlib.sha256(data).digest(), number=200, repeat=5)) / 200
    one = min(run(1, args.iterations, args.python, data) for _ in range(args.repeats))
    two = min(run(2, args.iterations, args.python, data) for _ in range(args.repeats))
    n = args.iterations
    print(
        f"GIL held {held * 1e6:.1f} us, released {free * 1e6:.1f} us per iteration | "
        f"1 thread {one / n * 1e6:.1f} us, 2 threads {two / n * 1e6:.1f} us per iteration | "
        f"2 threads / 1 thread: {one / two:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Summarises one or more logs of `cargo bench -p alphaforge-cache-bench --bench peers`.

Usage: python3 benches/rust/summarize.py LOG [LOG...]

For each benchmark it takes criterion's point estimate (the middle of `time: [lo est hi]`) from
every log and reports the median over the logs (and the min..max spread), then prints the
Markdown tables used in docs/benchmarks.md: ns/op per workload and cache, ratios against
quick_cache and moka, and the 2-thread / 1-thread throughput ratio of each cache.
"""

import re
import statistics
import sys

UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
CACHES = ["alphaforge", "quick_cache", "moka", "lru"]
WORKLOADS = [
    ("get_hit", "get hit"),
    ("get_miss", "get miss"),
    ("put_evict", "put with eviction"),
    ("zipf_mix", "Zipf(0.99) get-or-put, 1 thread"),
    ("zipf_mix_threads/{}/1", "Zipf mix, thread harness, 1 thread"),
    ("zipf_mix_threads/{}/2", "Zipf mix, thread harness, 2 threads (total throughput)"),
]
LINE = re.compile(r"^(?P<name>\S+)\s+time:\s+\[\S+ \S+ (?P<est>[\d.]+) (?P<unit>\S+) \S+ \S+\]")


def parse(path):
    """Benchmark name -> ns/op, from one log (criterion may wrap long names onto two lines)."""
    out = {}
    pending = None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if pending and line.lstrip().startswith("time:"):
                line = pending + " " + line.strip()
            m = LINE.match(line)
            if m:
                out[m["name"]] = float(m["est"]) * UNITS[m["unit"]]
                pending = None
            elif re.match(r"^[a-z_]+/\S+$", line.strip()):
                pending = line.strip()
    return out


def key(workload, cache):
    return workload.format(cache) if "{}" in workload else f"{workload}/{cache}"


def main(paths):
    runs = [parse(p) for p in paths]
    names = sorted({n for r in runs for n in r})
    med = {}
    for n in names:
        values = [r[n] for r in runs if n in r]
        med[n] = (statistics.median(values), min(values), max(values))

    def cell(n):
        if n not in med:
            return "—"
        m, lo, hi = med[n]
        spread = f" ({lo:.0f}–{hi:.0f})" if len(runs) > 1 else ""
        return f"{m:.1f}{spread}"

    print(f"ns/op, median of {len(runs)} run(s) (min–max in parentheses)\n")
    print("| workload | " + " | ".join(CACHES) + " |")
    print("|---|" + "---:|" * len(CACHES))
    for w, label in WORKLOADS:
        print(f"| {label} | " + " | ".join(cell(key(w, c)) for c in CACHES) + " |")
    if "get_hit/alphaforge_get_alloc" in med:
        print(
            f"| get hit, engine's allocating `get` | {cell('get_hit/alphaforge_get_alloc')} | | | |"
        )

    print(
        "\nspeed-up of alphaforge (peer ns/op ÷ alphaforge ns/op; > 1 means alphaforge is faster)\n"
    )
    print("| workload | vs quick_cache | vs moka | vs lru |")
    print("|---|---:|---:|---:|")
    for w, label in WORKLOADS:
        a = med.get(key(w, "alphaforge"))
        if not a:
            continue
        cells = []
        for peer in ["quick_cache", "moka", "lru"]:
            p = med.get(key(w, peer))
            cells.append(f"{p[0] / a[0]:.2f}×" if p else "—")
        print(f"| {label} | " + " | ".join(cells) + " |")

    print("\n2-thread / 1-thread throughput (same harness)\n")
    print("| cache | 1 thread ns/op | 2 threads ns/op | ratio |")
    print("|---|---:|---:|---:|")
    for c in CACHES:
        one = med.get(f"zipf_mix_threads/{c}/1")
        two = med.get(f"zipf_mix_threads/{c}/2")
        if one and two:
            print(f"| {c} | {one[0]:.1f} | {two[0]:.1f} | {one[0] / two[0]:.2f}× |")
    for i, r in enumerate(runs):
        a1 = r.get("zipf_mix_threads/alphaforge/1")
        a2 = r.get("zipf_mix_threads/alphaforge/2")
        if a1 and a2:
            print(f"\nrun {i + 1}: alphaforge 2t/1t = {a1 / a2:.2f}", end="")
    print()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])

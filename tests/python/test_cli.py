"""``python -m alphaforge_cache``: bench and replay, and clear errors on bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import alphaforge_cache

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOOP = os.path.join(ROOT, "testdata", "traces", "lirs", "loop.trace.gz")


def run(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", "alphaforge_cache", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_replay_prints_the_exact_lru_hit_ratio() -> None:
    # loop.trace cycles over 1,011 keys: an exact LRU of 1,010 entries never hits, one of 1,011
    # hits on every request after the first pass.
    miss_all = run("replay", LOOP, "--capacity", "1010", "--backend", "python")
    assert miss_all.returncode == 0, miss_all.stderr
    assert "505500 requests" in miss_all.stdout and " 0 hits" in miss_all.stdout
    hit = run("replay", LOOP, "--capacity", "1011")
    assert hit.returncode == 0, hit.stderr
    assert hit.stdout.count("504489 hits, hit ratio 99.80 %") == len(hit.stdout.splitlines())


def test_bench_prints_a_table_for_every_backend_and_mode() -> None:
    done = run("bench", "--ops", "2000", "--keys", "5000", "--capacity", "1000")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "ns/op" not in line]
    backends = 2 if alphaforge_cache.NativeCache is not None else 1
    assert len(rows) == 2 * backends
    assert "100%" in done.stderr, "progress is shown"


def test_bad_input_fails_clearly() -> None:
    missing = run("replay", "/nonexistent.trace.gz", "--capacity", "10")
    assert missing.returncode == 2 and "no such trace file" in missing.stderr
    bad = run("bench", "--ops", "0")
    assert bad.returncode == 2 and "--ops must be at least 1" in bad.stderr
    unknown = run("replay", __file__, "--capacity", "10")
    assert unknown.returncode == 2 and "unknown trace format" in unknown.stderr

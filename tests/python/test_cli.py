"""``python -m alphaforge_cache``: bench, replay and inspect, and clear errors on bad input."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

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
    assert len(rows) == 4 * backends  # bytes, object, packed on 1 and on 2 threads
    assert sum("PackedCache, 2 threads" in row for row in rows) == backends
    assert "100%" in done.stderr, "progress is shown"


def test_bad_input_fails_clearly() -> None:
    missing = run("replay", "/nonexistent.trace.gz", "--capacity", "10")
    assert missing.returncode == 2 and "no such trace file" in missing.stderr
    bad = run("bench", "--ops", "0")
    assert bad.returncode == 2 and "--ops must be at least 1" in bad.stderr
    unknown = run("replay", __file__, "--capacity", "10")
    assert unknown.returncode == 2 and "unknown trace format" in unknown.stderr


VECTORS = os.path.join(ROOT, "tests", "vectors")


def test_inspect_prints_the_header_counts_and_first_entries() -> None:
    done = run("inspect", os.path.join(VECTORS, "rust-small.afcs"), "--entries", "2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "format      1.0 (header 64 bytes, flags 0x00000000)" in out
    assert "values      bytes (value encoding 0)" in out
    assert "entries     6" in out
    assert "bytes       1233 in the file, 1165 of entries" in out
    assert "totals      1071 bytes of keys and values, weight 130, 4 entries with a TTL" in out
    assert "checksums   ok" in out
    assert "the first 2 entries (least recently used first):" in out
    assert "   1  key b''  value b'empty key'  5.000000000 s left  weight 9 (default)" in out
    assert "   2  key b'gamma'  value b'weighted'  never expires  weight 100" in out
    assert "   3  " not in out and done.stderr == ""


def test_inspect_shows_a_saved_cache(tmp_path: Any) -> None:
    cache = alphaforge_cache.Cache(8, mode="pickle")
    cache.put("k" * 40, list(range(100)))
    cache.put("timed", 1, ttl=60.0)
    path = str(tmp_path / "cache.afcs")
    cache.save(path)
    done = run("inspect", path)
    assert done.returncode == 0, done.stderr
    assert "values      pickle (value encoding 1)" in done.stdout
    assert ", 1 entry with a TTL" in done.stdout
    assert "the first 2 entries (least recently used first):" in done.stdout
    assert f"key {b'k' * 24!r}... (40 bytes)" in done.stdout
    one = run("inspect", path, "--entries", "1")
    assert "the first entry (least recently used first):" in one.stdout


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_inspect_draws_a_progress_bar_on_a_terminal_and_erases_it(
    tmp_path: Any, monkeypatch: Any, capsys: Any
) -> None:
    from alphaforge_cache import __main__ as cli
    from alphaforge_cache import _snapshot_format as fmt

    path = str(tmp_path / "many.afcs")
    fmt.write(path, [fmt.Entry(b"%d" % i, b"v", None, None) for i in range(100)])
    monkeypatch.setattr(cli, "INSPECT_PROGRESS_FROM", 50)
    monkeypatch.setattr(cli, "INSPECT_PROGRESS_STEP", 10)
    for terminal in (True, False):
        err = _Terminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        assert cli.main(["inspect", path, "--entries", "1"]) == 0
        out = capsys.readouterr().out
        assert "entries     100" in out and "checksums   ok" in out
        if terminal:
            drawn = err.getvalue().split("\r")
            bars = [part for part in drawn if part.startswith("checking the entries")]
            assert [bar[-4:] for bar in bars] == [f"{p:3d}%" for p in range(10, 100, 10)]
            assert drawn[-2].strip() == "" and drawn[-1] == ""  # erased at the end
        else:
            assert err.getvalue() == ""  # a file or a pipe gets no bar
    # An error after the bar was drawn erases it before the message.
    with open(path, "rb") as f:
        damaged = bytearray(f.read())
    damaged[-10] ^= 1
    with open(path, "wb") as f:
        f.write(damaged)
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["inspect", path]) == 1
    drawn = err.getvalue().split("\r")
    assert drawn[-2].strip() == "" and drawn[-1].startswith("alphaforge-cache: snapshot ")


def test_inspect_refuses_bad_files_clearly(tmp_path: Any) -> None:
    with open(os.path.join(VECTORS, "rust-random.afcs"), "rb") as f:
        good = f.read()
    damaged = bytearray(good)
    damaged[30_000] ^= 1  # in the body: the header is shown, then the error
    cases = {
        "damaged.afcs": (bytes(damaged), "corrupt: checksum mismatch"),
        "truncated.afcs": (good[:500], "truncated: the file has 500 bytes"),
        "foreign.afcs": (b"GIF89a" + bytes(100), "not an alphaforge-cache snapshot"),
        "empty.afcs": (b"", "truncated: the file is empty"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        done = run("inspect", str(path))
        assert done.returncode == 1, name
        assert done.stderr.startswith(f"alphaforge-cache: snapshot {path}: "), done.stderr
        assert message in done.stderr, done.stderr
        assert ("entries     200" in done.stdout) == (name == "damaged.afcs"), done.stdout
        assert "checksums   ok" not in done.stdout
    missing = run("inspect", str(tmp_path / "missing.afcs"))
    assert missing.returncode == 1 and "cannot open: No such file" in missing.stderr
    directory = run("inspect", str(tmp_path))
    assert directory.returncode == 1 and "is a directory" in directory.stderr.lower()
    usage = run("inspect", str(tmp_path), "--entries", "-1")
    assert usage.returncode == 2 and "--entries must be at least 0" in usage.stderr


def test_inspect_shows_a_newer_minor_version_and_refuses_what_it_cannot_read() -> None:
    # The future vectors of tests/vectors: format 1.7 with extension records it skips is shown
    # (its minor version and longer header); a critical record, an unknown required flag and
    # another major version are refused with the reason.
    done = run("inspect", os.path.join(VECTORS, "future-minor.afcs"))
    assert done.returncode == 0, done.stderr
    assert "format      1.7 (header 126 bytes, flags 0x00000000)" in done.stdout
    assert "entries     6" in done.stdout
    assert "bytes       1295 in the file, 1165 of entries" in done.stdout
    assert "checksums   ok" in done.stdout and done.stderr == ""
    refused = {
        "future-critical.afcs": "needs header extension 0xffff, unknown to this library",
        "future-flag.afcs": "does not know (header flags 0x80000000, format 1.0)",
        "future-major.afcs": "format version 2.0 is not supported (this library reads 1.x)",
    }
    for name, message in refused.items():
        path = os.path.join(VECTORS, name)
        done = run("inspect", path)
        assert done.returncode == 1, name
        assert done.stderr.startswith(f"alphaforge-cache: snapshot {path}: "), done.stderr
        assert message in done.stderr, done.stderr
        assert done.stdout == "", done.stdout


def test_inspect_through_the_installed_command() -> None:
    command = shutil.which("alphaforge-cache", path=os.path.dirname(sys.executable))
    if command is None:
        pytest.skip("the package is not installed here (no alphaforge-cache command)")
    done = subprocess.run(
        [command, "inspect", os.path.join(VECTORS, "c-random.afcs"), "-n", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "entries     200" in done.stdout and "the first entry" in done.stdout

"""The shared operation scripts of ``tests/cases/*.json`` (see the README there), replayed
through the package's public API on every backend. The C, C++, Go and Node.js bindings replay
the same files."""

from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, List, Optional, Tuple

import pytest
from _backends import Recorder

import alphaforge_cache
from alphaforge_cache import EntryTooHeavyError, ManualClock

CASES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cases")
NANOS = 1_000_000_000

#: The exception each error name of the case files maps to in Python.
ERRORS: Dict[str, type] = {
    "invalid_config": ValueError,
    "invalid_argument": ValueError,
    "entry_too_heavy": EntryTooHeavyError,
    # Snapshots (Cache.save / Cache.load): SnapshotFileError (kind "io", "not_a_snapshot"...)
    # once the package has it (branch pysnap).
    "io_error": getattr(alphaforge_cache, "SnapshotFileError", OSError),
    "snapshot_invalid": getattr(alphaforge_cache, "SnapshotFileError", ValueError),
}

#: The operations on snapshot files (tests/cases/snapshot.json).
SNAPSHOT_OPS = {"save", "load", "write_file", "truncate"}

#: Why the snapshot cases are skipped, or None when the package can save and load.
NO_SNAPSHOTS: Optional[str] = (
    None
    if hasattr(alphaforge_cache.Cache, "save") and hasattr(alphaforge_cache.Cache, "load")
    else "alphaforge_cache.Cache has no save/load yet (Python snapshots are on branch pysnap): "
    "the save/load cases are replayed by C, C++, Go and Node.js only"
)


def load_cases() -> List[Tuple[str, Dict[str, Any]]]:
    cases = []
    for path in sorted(glob.glob(os.path.join(CASES_DIR, "*.json"))):
        with open(path, encoding="utf-8") as f:
            for case in json.load(f)["cases"]:
                cases.append((f"{os.path.basename(path)}: {case['name']}", case))
    return cases


CASES = load_cases()


def b(text: Optional[str]) -> Optional[bytes]:
    """A key or value of the case files: the UTF-8 bytes of a JSON string (None stays None)."""
    return None if text is None else text.encode("utf-8")


def seconds(nanos: int) -> float:
    """Nanoseconds as the seconds the Python API takes (exact for the case files' values)."""
    return nanos / NANOS


def event(key: bytes, value: Any, cause: str) -> List[str]:
    return [key.decode("utf-8"), bytes(value).decode("utf-8"), cause]


def test_the_case_files_are_found() -> None:
    assert len(CASES) >= 20, CASES_DIR


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[name for name, _ in CASES])
def test_case(backend: Any, case: Dict[str, Any], tmp_path: Any) -> None:
    if NO_SNAPSHOTS is not None and any(op["op"] in SNAPSHOT_OPS for op in case.get("ops", [])):
        pytest.skip(NO_SNAPSHOTS)
    config = case["cache"]
    clock = ManualClock()
    recorder = Recorder()
    kwargs: Dict[str, Any] = {"timer": clock, "on_evict": recorder}
    if "max_bytes" in config:
        kwargs["max_bytes"] = config["max_bytes"]
    if "ttl_ns" in config:
        kwargs["ttl"] = seconds(config["ttl_ns"])
    if "shards" in config:
        kwargs["shards"] = config["shards"]
    if "create_error" in case:
        with pytest.raises(ERRORS[case["create_error"]]):
            backend(config["max_entries"], **kwargs)
        return
    cache = backend(config["max_entries"], **kwargs)
    try:
        for step, op in enumerate(case["ops"]):
            if "file" in op:
                op = dict(op, file=str(tmp_path / op["file"]))
            replay(cache, clock, recorder, op, f"op {step} {json.dumps(op)}")
    finally:
        cache.close()


def replay(cache: Any, clock: ManualClock, recorder: Recorder, op: Dict[str, Any], at: str) -> None:
    name = op["op"]
    expect = op.get("expect")
    if "error" in op:
        with pytest.raises(ERRORS[op["error"]]):
            call(cache, clock, op)
        return
    got = call(cache, clock, op)
    if name in ("get", "peek"):
        assert got == b(expect), at
    elif name == "get_many":
        assert got == [b(v) for v in expect], at
    elif name in ("contains", "remove", "len", "weight", "expire"):
        assert got == expect, at
    elif name == "keys":
        assert got == [b(k) for k in expect], at
    elif name == "ttl":
        if expect is None:
            assert got == "missing", at
        elif expect == "never":
            assert got is None, at
        else:
            assert round(got * NANOS) == expect, at
    elif name == "stats":
        for field, want in expect.items():
            if field == "hit_ratio":
                assert got.hit_ratio == pytest.approx(want, abs=1e-12), at
            else:
                assert getattr(got, field) == want, f"{at}: {field}"
    elif name == "events":
        events = [event(k, v, c) for k, v, c in recorder.take()]
        if op.get("unordered"):
            assert sorted(events) == sorted(expect), at
        else:
            assert events == expect, at


def call(cache: Any, clock: ManualClock, op: Dict[str, Any]) -> Any:
    """Performs one operation and returns what the API returned (normalised where it differs)."""
    name = op["op"]
    if name == "put":
        ttl = op.get("ttl_ns")
        cache.put(b(op["key"]), b(op["value"]), ttl=None if ttl is None else seconds(ttl))
    elif name == "get":
        return cache.get(b(op["key"]))
    elif name == "peek":
        return cache.peek(b(op["key"]))
    elif name == "contains":
        return b(op["key"]) in cache
    elif name == "remove":
        missing = object()
        return cache.pop(b(op["key"]), missing) is not missing
    elif name == "len":
        return len(cache)
    elif name == "weight":
        return cache.weight
    elif name == "keys":
        return list(cache.keys())
    elif name == "ttl":
        try:
            return cache.ttl_of(b(op["key"]))
        except KeyError:
            return "missing"
    elif name == "advance":
        clock.advance(seconds(op["ns"]))
    elif name == "set_clock":
        clock.set(seconds(op["ns"]))
    elif name == "stats":
        return cache.stats()
    elif name == "reset_stats":
        cache.reset_stats()
    elif name == "get_many":
        return cache.get_many([b(k) for k in op["keys"]])
    elif name == "put_many":
        ttl = op.get("ttl_ns")
        items = [(b(k), b(v)) for k, v in op["items"]]
        cache.put_many(items, ttl=None if ttl is None else seconds(ttl))
    elif name == "expire":
        return len(cache.expire())
    elif name == "clear":
        cache.clear()
    elif name == "resize":
        cache.resize(op["max_entries"])
    elif name == "close":
        cache.close()
    elif name == "save":
        cache.save(op["file"])
    elif name == "load":
        cache.load(op["file"])
    elif name == "write_file":
        with open(op["file"], "wb") as f:
            f.write(op["content"].encode("utf-8"))
    elif name == "truncate":
        os.truncate(op["file"], op["bytes"])
    elif name != "events":
        raise AssertionError(f"unknown operation {name!r}")
    return None

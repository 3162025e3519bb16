#!/usr/bin/env python3
"""Fuzzes the Python side's snapshot reader with atheris (libFuzzer's engine, coverage-guided on
the package's Python code), differentially: every backend must make the same of the same file.

The input is laid out as ``fuzz/fuzz_targets/load.rs``'s, so that its corpus
(``fuzz/corpus/load``) seeds this target too: the first byte chooses a mode, the rest is the
file. The mode's lowest bit set: both checksums are rewritten first (so that mutations get past
them and reach the entries, the limits and the bounds); clear: the file is loaded as it is. Its
second bit clear: the file is also read from a stream of unknown length through a 16-byte
buffer (so that keys and values are larger than it), which must read the same. Its third bit
set: the caches' clock is 40 s before its last instant, where loaded deadlines saturate.

Each file is written to one scratch path and loaded, in bytes mode, by:

- ``PythonCache`` and ``NativeCache`` (the same Python reader; the native one with its fast
  path in C, ``_reads.parse_rows``, and the engine's restore), and ``PythonPackedCache`` and
  ``NativePackedCache`` (the latter loads in the Rust engine itself), each pre-filled with the
  same entries, on a ``ManualClock`` that never moves (TTLs compare exactly), once with roomy
  bounds and once with tight ones (the load's staging then keeps only what fits);
- the format module's ``Reader`` (the reference), and the ``inspect`` command, in process.

Allowed outcomes: success, or ``SnapshotFileError``. Anything else propagates (a finding), and
so does every disagreement (an ``AssertionError`` naming it): the four loads must all succeed
with the same state (keys in recency order, values, remaining TTLs in nanoseconds, weight,
statistics, what ``on_evict`` heard, and the bytes each saves back), or all fail with the same
error (kind, offset, message) as the reference read, leaving every cache as it was. The
process's address space is bounded (1 GiB), so that a read sized by a length field alone is a
MemoryError, a finding, even where its pages would never be touched.

Half of the mutations keep the file's structure (``mutate``): its entries are changed (a TTL or
a weight at a limit, a key given twice, an entry moved, copied or dropped) and the file put
together again with its counts and checksums right, so that the loads are compared on unusual
but valid files, which byte mutations seldom make.

Run it with ``scripts/fuzz-python [SECONDS]``, or by hand in a venv with atheris and the package
built with its native backend: ``python fuzz/python/snapshot_load.py NEW_DIR fuzz/corpus/load
-max_len=131072``. ``TMPDIR`` chooses where the scratch files go (tmpfs is fastest: every save
is flushed to disk).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import random
import resource
import shutil
import struct
import sys
import tempfile
import zlib
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import atheris

# The package's Python code is instrumented for coverage as it is imported (its C and Rust code
# is not: the Rust loader has its own fuzz target, fuzz/fuzz_targets/load.rs).
with atheris.instrument_imports(include=["alphaforge_cache"]):
    import alphaforge_cache
    from alphaforge_cache import _snapshot_format as fmt
    from alphaforge_cache.__main__ import main as command_line

if alphaforge_cache.NativeCache is None or alphaforge_cache.NativePackedCache is None:
    sys.exit(
        "the native backend of alphaforge_cache is not installed: this target compares it with "
        "the pure-Python one (install the package with ALPHAFORGE_CACHE_REQUIRE_NATIVE=1)"
    )

CACHES: Tuple[Tuple[str, Any], ...] = (
    ("python", alphaforge_cache.PythonCache),
    ("native", alphaforge_cache.NativeCache),
)
PACKED: Tuple[Tuple[str, Any], ...] = (
    ("python packed", alphaforge_cache.PythonPackedCache),
    ("native packed", alphaforge_cache.NativePackedCache),
)
#: The C fast path of a load's reading (None where ``_reads`` is not built).
PARSE_ROWS = alphaforge_cache.NativeCache._parse_rows


class Bounds(NamedTuple):
    """A cache's bounds, and the time of its clock (in whole seconds: it never moves)."""

    name: str
    max_entries: int
    max_bytes: Optional[int]
    now: int


#: Roomy: every entry of most files fits (the staging collects them); tight: a load keeps only
#: the most recent entries that fit (the staging is an LRU of its own).
BOUNDS = (Bounds("roomy", 1 << 12, None, 0), Bounds("tight", 4, 64, 0))
#: The clock's time: early, or 40 s before its last instant (2**64 - 2 ns), where the deadline
#: of a loaded entry saturates (the mode's bit 2 chooses).
CLOCKS = (50, (2**64 - 2) // 10**9 - 40)

#: The address space the process may have: about 3 times what it uses (its peak is under 300 MiB).
#: A read sized by a length field alone (a value claiming 4 GiB) then fails with MemoryError, a
#: finding, even where its pages would never be touched (which -rss_limit_mb would not see).
ADDRESS_SPACE = 1 << 30
_soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
if _soft == resource.RLIM_INFINITY or _soft > ADDRESS_SPACE:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, _hard))

SCRATCH = tempfile.mkdtemp(prefix="afc-fuzz-python-")
atexit.register(shutil.rmtree, SCRATCH, True)
PATH = os.path.join(SCRATCH, "input.afcs")


def shown(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def difference(a: Any, b: Any, where: str = "") -> str:
    """Where ``a`` and ``b`` first differ (``a != b``), and how, in a few lines."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and type(a) is type(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return difference(x, y, f"{where}[{i}]")
        if len(a) != len(b):
            return f"at {where or 'the top'}: {len(a)} items / {len(b)} items"
    return f"at {where or 'the top'}:\n  {shown(a)}\n  {shown(b)}"


def check(condition: bool, message: str) -> None:
    """Fails with ``message`` unless ``condition`` (an ``assert`` that ``python -O`` keeps)."""
    if not condition:
        raise AssertionError(message)


def agree(what: str, a: Any, b: Any) -> None:
    """Fails, saying where, unless ``a == b``."""
    if a != b:
        raise AssertionError(f"{what} differ {difference(a, b)}")


def reseal(data: bytearray) -> None:
    """Rewrites the header checksum (where the header length says it is) and the trailer, as
    ``load.rs`` does."""
    if len(data) >= 16:
        (header_len,) = struct.unpack_from("<I", data, 12)
        if 20 <= header_len <= len(data):
            struct.pack_into("<I", data, header_len - 4, zlib.crc32(data[: header_len - 4]))
    if len(data) >= 4:
        struct.pack_into("<I", data, len(data) - 4, zlib.crc32(data[:-4]))


def error_of(error: fmt.SnapshotFileError) -> Tuple[str, Optional[int], str]:
    """What must agree between two refusals of a file."""
    return (error.kind, error.offset, str(error))


class Reference(NamedTuple):
    """The format module's reading of the file: its header (None if refused), its entries as
    ``(key, value, ttl_ns, weight)`` (None if refused), or the error."""

    header: Optional[fmt.Header]
    entries: Optional[List[Tuple[bytes, bytes, Optional[int], int]]]
    error: Optional[Tuple[str, Optional[int], str]]


def reference(path: str) -> Reference:
    header = None
    try:
        with fmt.opened(path) as reader:
            header = reader.header
            entries = [(e.key, e.value, e.ttl_ns, e.effective_weight) for e in reader]
    except fmt.SnapshotFileError as error:
        return Reference(header, None, error_of(error))
    return Reference(header, entries, None)


def read_from_a_stream(data: bytes, parse: Any) -> Any:
    """The rows (or the error's kind) read from a stream of unknown length through a 16-byte
    buffer: as entries when ``parse`` is None, else as rows through ``parse``."""
    chunk = fmt._CHUNK
    fmt._CHUNK = 16
    try:
        reader = fmt.Reader(io.BytesIO(data), None)
        if parse is None:
            return [(e.key, e.value, e.ttl_ns, e.effective_weight) for e in reader]
        return list(reader.rows(parse))
    except fmt.SnapshotFileError as error:
        # Without the length, a cut file is found truncated only where its data ends: the kind
        # is what must agree (as tests/python/test_snapshot_format.py's every_outcome has it).
        return error.kind
    finally:
        fmt._CHUNK = chunk


class Recorder:
    """An ``on_evict`` listener that records what it hears."""

    def __init__(self) -> None:
        self.calls: List[Tuple[bytes, Any, str]] = []

    def __call__(self, key: bytes, value: Any, cause: str) -> None:
        self.calls.append((key, value, cause))


def prefill(cache: Any) -> None:
    """The same entries and statistics in every cache (``Cache`` and ``PackedCache`` alike)."""
    cache.put(b"keep", b"me", ttl=30)
    cache.put(b"also", b"this")
    cache.put(b"\x00", b"")
    cache.get(b"keep")
    cache.get(b"nothing")


def make_cache(cls: Any, bounds: Bounds) -> Tuple[Any, Recorder]:
    heard = Recorder()
    cache = cls(
        bounds.max_entries,
        max_bytes=bounds.max_bytes,
        shards=1,
        timer=alphaforge_cache.ManualClock(bounds.now),
        on_evict=heard,
    )
    prefill(cache)
    return cache, heard


def make_packed(cls: Any, bounds: Bounds) -> Any:
    cache = cls(
        bounds.max_entries,
        max_bytes=bounds.max_bytes,
        shards=1,
        timer=alphaforge_cache.ManualClock(bounds.now),
    )
    prefill(cache)
    return cache


def cache_state(cache: Any) -> Tuple[Any, ...]:
    """Everything a load could change in a ``Cache`` (as tests/python/test_snapshot.py's
    ``state``, with the remaining TTLs in exact nanoseconds)."""
    keys = cache.keys()
    return (
        keys,
        [cache.peek(k) for k in keys],
        [cache._remaining_ttl(k) for k in keys],
        len(cache),
        cache.weight,
        cache.stats(),
    )


def packed_state(cache: Any) -> Tuple[Any, ...]:
    """What a ``PackedCache`` tells without a save: its size, weight and statistics."""
    return (len(cache), cache.weight, cache.stats())


def saved_path(name: str) -> str:
    return os.path.join(SCRATCH, name.replace(" ", "-") + ".afcs")


def saved(cache: Any, name: str) -> bytes:
    """The bytes of a save of ``cache`` (its entries, order, TTLs and weights)."""
    path = saved_path(name)
    cache.save(path)
    with open(path, "rb") as f:
        return f.read()


#: A load's outcome: ``("loaded", SnapshotInfo)`` or ``("refused", error_of(error))``.
Outcome = Tuple[str, Any]


def load(cache: Any, path: str) -> Outcome:
    try:
        info = cache.load(path)
    except fmt.SnapshotFileError as error:
        return ("refused", error_of(error))
    return ("loaded", info)


class Before(NamedTuple):
    """A pre-filled cache before a load (the same every time: the clock never moves)."""

    state: Tuple[Any, ...]
    packed_state: Tuple[Any, ...]
    saved: bytes


def before_the_load(bounds: Bounds) -> Before:
    cache, _ = make_cache(alphaforge_cache.PythonCache, bounds)
    packed = make_packed(alphaforge_cache.PythonPackedCache, bounds)
    return Before(cache_state(cache), packed_state(packed), saved(cache, "before"))


#: Each mode's bounds, the clock set (bit 2 of the mode chooses it).
SETTINGS = [[b._replace(now=now) for b in BOUNDS] for now in CLOCKS]
BEFORE: Dict[Bounds, Before] = {b: before_the_load(b) for each in SETTINGS for b in each}


def expected_error(ref: Reference) -> Optional[Tuple[str, Optional[int], str]]:
    """The error a bytes cache's load must raise, given the reference reading, or None."""
    if ref.header is not None and ref.header.value_encoding != fmt.ENCODING_BYTES:
        # A load refuses another encoding right after the header, whatever follows it.
        detail = (
            f"its values are encoded as {ref.header.encoding_name}; a cache in mode 'bytes' "
            "loads bytes snapshots"
        )
        return error_of(fmt.SnapshotFileError("encoding_mismatch", detail, path=PATH))
    return ref.error


def check_outcomes(where: str, outcomes: List[Tuple[str, Outcome]], ref: Reference) -> None:
    """Every load succeeded on a good file, with the same ``SnapshotInfo``, or was refused
    with the error the reference reading expects."""
    expected = expected_error(ref)
    for name, (what, detail) in outcomes:
        if expected is None:
            check(what == "loaded", f"{where}: {name} refused a good file: {detail}")
            assert ref.header is not None and ref.entries is not None
            agree(f"{where}: {name}'s entries and the file's", detail.entries, len(ref.entries))
            agree(
                f"{where}: {name}'s length and the file's", detail.file_bytes, ref.header.file_len
            )
        else:
            check(what == "refused", f"{where}: {name} loaded a bad file ({expected})")
            agree(f"{where}: {name}'s error and the reference reading's", detail, expected)
    first_name, first = outcomes[0]
    for name, outcome in outcomes[1:]:
        agree(f"{where}: the loads of {first_name} and {name}", first, outcome)


def check_bounds(bounds: Bounds, ref: Reference) -> None:
    """Loads the file into a pre-filled cache of each kind with these bounds, and checks that
    they agree with each other and with the reference reading."""
    where = f"{bounds.name} bounds at {bounds.now} s"
    caches = [(name, *make_cache(cls, bounds)) for name, cls in CACHES]
    packed = [(name, make_packed(cls, bounds)) for name, cls in PACKED]
    outcomes = [(name, load(c, PATH)) for name, c, _ in caches]
    outcomes += [(name, load(c, PATH)) for name, c in packed]
    check_outcomes(where, outcomes, ref)

    # The same entries, order, TTLs, weight, statistics and notifications in every cache.
    (_, state, heard), (_, native_state, native_heard) = [
        (name, cache_state(c), recorder.calls) for name, c, recorder in caches
    ]
    agree(
        f"{where}: python's and native's entries (keys, values, TTLs, stats)", state, native_state
    )
    agree(f"{where}: what python's and native's on_evict heard", heard, native_heard)
    packed_states = [packed_state(c) for _, c in packed]
    for (name, _), got in zip(packed, packed_states):
        # A PackedCache's results and statistics are those of a Cache in bytes mode.
        agree(f"{where}: python's and {name}'s size, weight and stats", state[3:], got)
    files = [(name, saved(c, name)) for name, c, _ in caches]
    files += [(name, saved(c, name)) for name, c in packed]
    for name, data in files[1:]:
        agree(f"{where}: the files python and {name} save", files[0][1], data)

    before = BEFORE[bounds]
    if outcomes[0][1][0] == "refused":  # every cache is as it was
        agree(f"{where}: a cache before and after a refused load", before.state, state)
        agree(f"{where}: on_evict before and after a refused load", [], heard)
        agree(f"{where}: a packed cache before and after", before.packed_state, packed_states[0])
        agree(f"{where}: the file saved before and after a refused load", before.saved, files[0][1])
        return
    # The old entries were heard as cleared, and what was saved loads back the same.
    agree(f"{where}: the causes heard", ["cleared"] * len(heard), [c for _, _, c in heard])
    keys = [entry[0] for entry in ref.entries or ()]
    if bounds.max_bytes is None and len(set(keys)) == len(keys) <= bounds.max_entries:
        agree(f"{where}: the file's keys and the cache's", keys[::-1], state[0])
    again, _ = make_cache(alphaforge_cache.PythonCache, bounds)
    again.load(saved_path("python"))
    agree(f"{where}: the entries saved and loaded back", state[:5], cache_state(again)[:5])


def check_inspect(ref: Reference) -> None:
    """``inspect`` agrees with the reference reading: the entry count of a good file, or its
    error on stderr and status 1."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = command_line(["inspect", PATH, "--entries", "3"])
    if ref.error is None:
        check(status == 0, f"inspect refused a good file: {err.getvalue()}")
        shows = f"  entries     {len(ref.entries or ())}\n"
        check(shows in out.getvalue(), f"inspect does not show {shows!r}: {out.getvalue()}")
        check("  checksums   ok" in out.getvalue(), f"inspect says: {out.getvalue()}")
    else:
        check(status == 1, f"inspect did not refuse a bad file ({ref.error})")
        agree(
            "inspect's error and the reference's",
            f"alphaforge-cache: {ref.error[2]}\n",
            err.getvalue(),
        )


def check_streamed(data: bytes, ref: Reference) -> None:
    """A read from a stream of unknown length through a 16-byte buffer, as entries and as
    rows through the C parser, agrees with the reference reading of the file."""
    for parse in (None, PARSE_ROWS):
        got = read_from_a_stream(data, parse)
        how = f"a read from a stream (parse={parse}) and the reference reading"
        if ref.error is None:
            agree(f"the entries of {how}", ref.entries, got)
        else:
            check(isinstance(got, str), f"{how}: it read a bad file ({ref.error})")
            # A regular file's length is checked before the header's checksum when the file is
            # too short for a header, and right after it (snapshot-format.md, "Reading"): the
            # kinds agree once the length is what the header gives.
            if ref.header is not None and ref.header.file_len == len(data):
                agree(f"the error kinds of {how}", ref.error[0], got)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], bytearray(data[1:])
    if mode & 1:
        reseal(body)
    file = bytes(body)
    with open(PATH, "wb") as f:
        f.write(file)
    ref = reference(PATH)
    check_inspect(ref)
    if not mode & 2:
        check_streamed(file, ref)
    for bounds in SETTINGS[mode >> 2 & 1]:
        check_bounds(bounds, ref)


# ----- mutations that keep a file's structure ---------------------------------------------------
#
# libFuzzer's byte mutations seldom keep a snapshot well formed past the entry they touch (one
# length changed, and every entry after it is misread), so the readers' agreement on unusual but
# valid files (a TTL or a weight at a limit, a key given twice, an entry moved) is seldom tested.
# Half of the mutations are therefore made on the entries: the file is split into its header and
# its entries, a few entries are changed, and it is put together again with its counts right and
# the mode's reseal bit set (the other half are libFuzzer's own).

#: ``[flags, key, value, ttl_ns, weight]`` of an entry (``flags`` None: from the fields).
Fields = List[Any]

_ENTRY_FIXED = struct.Struct("<BII")
_TTLS = (1, 2, 10**9, 2**53 + 1, 2**63, 2**64 - 2, 2**64 - 1)
_WEIGHTS = (0, 1, 2**31, 2**32 - 3, 2**32 - 2, 2**32 - 1)


def split_file(file: bytes) -> Optional[Tuple[bytes, List[Fields]]]:
    """The header and the entries of ``file`` (as many as can be read: the rest is dropped),
    or None when its header cannot be found."""
    if len(file) < 64:
        return None
    (header_len,) = struct.unpack_from("<I", file, 12)
    if not 64 <= header_len <= len(file):
        return None
    (count,) = struct.unpack_from("<Q", file, 24)
    entries: List[Fields] = []
    at = header_len
    while len(entries) < count and at + 9 <= len(file):
        flags, key_len, value_len = _ENTRY_FIXED.unpack_from(file, at)
        at += 9
        ttl = weight = None
        if flags & 1 and at + 8 <= len(file):
            (ttl,) = struct.unpack_from("<Q", file, at)
            at += 8
        if flags & 2 and at + 4 <= len(file):
            (weight,) = struct.unpack_from("<I", file, at)
            at += 4
        if flags & ~3 or at + key_len + value_len > len(file):
            break
        key, value = file[at : at + key_len], file[at + key_len : at + key_len + value_len]
        entries.append([None, key, value, ttl, weight])
        at += key_len + value_len
    return file[:header_len], entries


def join_file(header: bytes, entries: List[Fields]) -> bytes:
    """A file of ``header`` (its entry count and body length set) and ``entries``, its
    checksums left for the reseal."""
    body = []
    for flags, key, value, ttl, weight in entries:
        if flags is None:
            flags = (0 if ttl is None else 1) | (0 if weight is None else 2)
        body.append(_ENTRY_FIXED.pack(flags, len(key), len(value)))
        if flags & 1:
            body.append(struct.pack("<Q", ttl or 0))
        if flags & 2:
            body.append(struct.pack("<I", weight or 0))
        body += [key, value]
    joined = b"".join(body)
    fixed = bytearray(header)
    struct.pack_into("<QQ", fixed, 24, len(entries), len(joined))
    return bytes(fixed) + joined + bytes(4)


def change_entries(rng: random.Random, entries: List[Fields]) -> None:
    """One to three changes of ``entries`` (at least one entry)."""
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(entries))
        entry = entries[i]
        change = rng.randrange(9)
        if change == 0:  # the key and value split elsewhere
            both = entry[1] + entry[2]
            cut = rng.randint(0, len(both))
            entry[1], entry[2] = both[:cut], both[cut:]
        elif change == 1:
            entry[3] = rng.choice((None, rng.choice(_TTLS), rng.getrandbits(64)))
        elif change == 2:
            size = len(entry[1]) + len(entry[2])
            entry[4] = rng.choice((None, size, rng.choice(_WEIGHTS), rng.getrandbits(32)))
        elif change == 3:  # a key given twice
            entry[1] = rng.choice(entries)[1]
        elif change == 4:
            entries.insert(rng.randrange(len(entries) + 1), list(entry))
        elif change == 5 and len(entries) > 1:
            del entries[i]
        elif change == 6:
            j = rng.randrange(len(entries))
            entries[i], entries[j] = entries[j], entries[i]
        elif change == 7:  # a value longer or shorter
            value = entry[2]
            entry[2] = value[: rng.randint(0, len(value))] + rng.randbytes(rng.randint(0, 40))
        else:  # flags of another meaning (an unknown bit: the file is refused)
            entry[0] = rng.choice((0, 1, 2, 3, 1 << rng.randrange(2, 8)))


def mutate(data: bytes, max_size: int, seed: int) -> bytes:
    """libFuzzer's mutation of ``data``, or one that keeps its file's structure."""
    rng = random.Random(seed)
    parts = split_file(data[1:]) if len(data) > 1 and rng.random() < 0.5 else None
    if parts is None or not parts[1]:
        return bytes(atheris.Mutate(data, max_size))
    header, entries = parts
    change_entries(rng, entries)
    mode = data[0] | 1  # resealed
    return (bytes([mode]) + join_file(header, entries))[:max_size]


def main() -> None:
    atheris.Setup(sys.argv, test_one_input, custom_mutator=mutate)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

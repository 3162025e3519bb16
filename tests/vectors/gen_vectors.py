"""Writes the snapshot test vectors' manifests and the Python writer's files.

    python3 tests/vectors/gen_vectors.py        (or tests/vectors/generate for every writer)

- ``small.entries`` is written by hand (every kind of entry); ``empty.entries`` has none;
  ``random.entries`` is drawn here from a fixed seed.
- ``python-NAME.afcs`` is each manifest written by ``alphaforge_cache._snapshot_format``.
- ``future-*.afcs`` are the small state's file as later versions of the format could write it
  (``future_vectors``): a newer minor version with extension records every reader skips, and
  three files every reader must refuse as unsupported (a critical extension record, an unknown
  required flag, another major version). Both checksums are right in each, so that a refusal is
  for what the file is meant to show, never a checksum.

A manifest lists a cache's entries least recently used first, one per line:
``key=HEX value=HEX ttl_ns=N|none weight=N|default``. Every writer (Rust, C, Python) builds that
state on a manual clock and saves it; the files must be byte-identical.
"""

from __future__ import annotations

import os
import random
import struct
import sys
import zlib
from typing import Dict, List, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))

from alphaforge_cache import _snapshot_format as fmt  # noqa: E402

NAMES = ("empty", "small", "random", "large")


def parse_manifest(path: str) -> List[fmt.Entry]:
    """The entries of a manifest file."""
    entries = []
    with open(path, encoding="ascii") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = dict(part.split("=", 1) for part in line.split())
            ttl = None if fields["ttl_ns"] == "none" else int(fields["ttl_ns"])
            weight = None if fields["weight"] == "default" else int(fields["weight"])
            entries.append(
                fmt.Entry(bytes.fromhex(fields["key"]), bytes.fromhex(fields["value"]), ttl, weight)
            )
    return entries


def format_manifest(entries: List[fmt.Entry], comment: str) -> str:
    lines = [f"# {line}" for line in comment.splitlines()]
    lines.append("# key=HEX value=HEX ttl_ns=N|none weight=N|default, least recently used first")
    for e in entries:
        ttl = "none" if e.ttl_ns is None else str(e.ttl_ns)
        weight = "default" if e.weight is None else str(e.weight)
        lines.append(f"key={e.key.hex()} value={e.value.hex()} ttl_ns={ttl} weight={weight}")
    return "\n".join(lines) + "\n"


def random_entries(seed: int = 20240611, count: int = 200) -> List[fmt.Entry]:
    rng = random.Random(seed)
    seen = set()
    entries = []
    while len(entries) < count:
        key = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 24)))
        if key in seen:
            continue
        seen.add(key)
        value = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 8, 64, 200, 1000))))
        ttl = None if rng.random() < 0.5 else rng.randint(1, 2**63)
        weight = None
        if rng.random() < 0.3:
            weight = rng.randint(0, 10**6)
            if weight == len(key) + len(value):
                weight = None
        entries.append(fmt.Entry(key, value, ttl, weight))
    return entries


def large_entries() -> List[fmt.Entry]:
    """Values longer than every reader's buffer: 70,000 bytes (over a stream's 64 KiB) and
    270,000 (over a file's 256 KiB), between small entries, in a pattern that compresses."""
    entries = [fmt.Entry(b"before", b"small", None, None)]
    for i, size in enumerate((70_000, 270_000)):
        value = bytes((j * 31 + i) % 251 for j in range(size))
        entries.append(fmt.Entry(b"large-%d" % i, value, 10**12 if i else None, None))
    entries.append(fmt.Entry(b"after", b"small", 7, 3))
    return entries


#: The minor version of ``future-minor.afcs`` and ``future-critical.afcs``: one no reader knows.
FUTURE_MINOR = 7
#: Their extension records (tag, data): tags no version defines, at the top of the tag range so
#: that none is likely to be defined later. Neither is critical (bit 15 clear): a reader skips
#: them, the one with data and the empty one alike.
FUTURE_RECORDS = ((0x7FFE, b"saved-by: a future version of alphaforge-cache"), (0x7FFF, b""))
#: ``future-critical.afcs``: the same records, the second one's tag with bit 15 set.
CRITICAL_TAG = 0x7FFF | 0x8000
#: ``future-flag.afcs``: a required feature no 1.x reader knows (the highest flag bit).
UNKNOWN_FLAG = 0x8000_0000


def rewrite_header(
    snapshot: bytes,
    *,
    major: int = fmt.FORMAT_MAJOR,
    minor: int = fmt.FORMAT_MINOR,
    flags: int = 0,
    records: Sequence[Tuple[int, bytes]] = (),
) -> bytes:
    """``snapshot`` (a 1.0 file: a 64-byte header) with its version and flags replaced and the
    extension records put between its fixed fields (60 bytes) and the header CRC, ``header_len``
    grown to hold them; the body as it was; the header CRC (bytes ``0 .. header_len - 4``) and
    the trailer CRC (every byte before it) computed anew."""
    assert struct.unpack_from("<I", snapshot, 12)[0] == 64, "a 1.0 file is rewritten"
    area = b"".join(struct.pack("<HHI", tag, 0, len(data)) + data for tag, data in records)
    header = bytearray(snapshot[:60])
    struct.pack_into("<HHII", header, 8, major, minor, 64 + len(area), flags)
    header += area
    header += struct.pack("<I", zlib.crc32(header))
    out = bytes(header) + snapshot[64:-4]
    return out + struct.pack("<I", zlib.crc32(out))


def future_vectors(small: bytes) -> Dict[str, bytes]:
    """The ``future-*.afcs`` files, from the small state's file as the Python writer wrote it."""
    critical = (FUTURE_RECORDS[0], (CRITICAL_TAG, FUTURE_RECORDS[1][1]))
    return {
        "future-minor.afcs": rewrite_header(small, minor=FUTURE_MINOR, records=FUTURE_RECORDS),
        "future-critical.afcs": rewrite_header(small, minor=FUTURE_MINOR, records=critical),
        "future-flag.afcs": rewrite_header(small, flags=UNKNOWN_FLAG),
        "future-major.afcs": rewrite_header(small, major=fmt.FORMAT_MAJOR + 1),
    }


def main() -> None:
    with open(os.path.join(HERE, "empty.entries"), "w", encoding="ascii") as f:
        f.write(format_manifest([], "No entry: a cache with nothing in it."))
    with open(os.path.join(HERE, "random.entries"), "w", encoding="ascii") as f:
        comment = "200 entries drawn by gen_vectors.py (seed 20240611): random keys, values,\n"
        comment += "TTLs and weights."
        f.write(format_manifest(random_entries(), comment))
    with open(os.path.join(HERE, "large.entries"), "w", encoding="ascii") as f:
        comment = "Values longer than the readers' buffers (70,000 and 270,000 bytes), by gen_vectors.py."
        f.write(format_manifest(large_entries(), comment))
    for name in NAMES:
        entries = parse_manifest(os.path.join(HERE, f"{name}.entries"))
        fmt.write(os.path.join(HERE, f"python-{name}.afcs"), entries)
        print(f"python-{name}.afcs: {len(entries)} entries")
    with open(os.path.join(HERE, "python-small.afcs"), "rb") as f:
        small = f.read()
    for file_name, data in future_vectors(small).items():
        with open(os.path.join(HERE, file_name), "wb") as f:
            f.write(data)
        print(f"{file_name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
